//! Remote tracks: a slot per announced track (video: the latest decoded frame; audio: a mixer
//! input), kept across a reconnection, and a receiver per arriving WebRTC track.

use super::RoomEvent;
use super::handle::lock;
use super::task::RoomTask;
use crate::receive::{self, VideoSlot};
use std::sync::Arc;
use tracing::Instrument;
use videoroom_protocol::{MediaKind, PeerId, TrackId, TrackInfo};
use webrtc::media_stream::track_remote::TrackRemote;

impl RoomTask {
    pub(super) fn add_track(&mut self, info: TrackInfo) {
        match info.kind {
            MediaKind::Video => {
                lock(&self.shared.videos)
                    .entry(info.track_id.clone())
                    .or_insert_with(|| VideoSlot::new(info.track_id.clone(), info.peer_id.clone()));
            }
            MediaKind::Audio => self
                .shared
                .mixer
                .add_track(info.track_id.clone(), info.peer_id.clone()),
        }
        if let Some(session) = self.session.as_mut() {
            session.remote.insert(info.track_id.clone(), info.clone());
        }
        // Announced again after a reconnection: its slot already has frames to show.
        let ready = match info.kind {
            MediaKind::Video => self
                .remote_video_stats(&info.track_id)
                .is_some_and(|s| s.first_frame_at.is_some()),
            MediaKind::Audio => self
                .shared
                .mixer
                .remote_audio(&info.track_id)
                .is_some_and(|a| a.stats().first_frame_at.is_some()),
        };
        let track_id = info.track_id.clone();
        self.events.emit(RoomEvent::TrackAdded(info));
        if ready {
            self.events.emit(RoomEvent::TrackReady { track_id });
        }
    }

    fn remote_video_stats(&self, track_id: &TrackId) -> Option<crate::VideoStats> {
        lock(&self.shared.videos)
            .get(track_id)
            .map(|slot| slot.subscribe().stats())
    }

    pub(super) async fn on_remote_track(&mut self, track: Arc<dyn TrackRemote>) {
        let track_id = TrackId::new(track.track_id().await);
        let peer_id = PeerId::new(track.stream_id().await);
        let kind = track.kind().await;
        let span = tracing::info_span!("remote_track", track = %track_id, from = %peer_id);
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if !session.remote.contains_key(&track_id) {
            // Removed before its first packet arrived, or a track of our own ghost (see
            // `old_peer_ids`): nothing to receive.
            tracing::debug!(parent: &span, "track not announced (any more); ignored");
            return;
        }
        if session
            .receivers
            .get(&track_id)
            .is_some_and(|t| !t.is_finished())
        {
            return;
        }
        let video = kind == rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video;
        let task = if video && !self.decode_video {
            tracing::debug!(parent: &span, "video not decoded (decode_video off)");
            tokio::spawn(receive::drain(track).instrument(span))
        } else if video {
            let slot = lock(&self.shared.videos)
                .entry(track_id.clone())
                .or_insert_with(|| VideoSlot::new(track_id.clone(), peer_id.clone()))
                .clone();
            tracing::debug!(parent: &span, "receiving video");
            tokio::spawn(
                receive::receive_video(track, slot, self.ready_tx.clone()).instrument(span),
            )
        } else {
            self.shared
                .mixer
                .add_track(track_id.clone(), peer_id.clone());
            tracing::debug!(parent: &span, "receiving audio");
            tokio::spawn(
                receive::receive_audio(track, track_id.clone(), self.shared.mixer.clone())
                    .instrument(span),
            )
        };
        session.receivers.insert(track_id, task);
    }
}
