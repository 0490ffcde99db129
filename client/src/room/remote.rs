//! Remote tracks: a slot per announced track (video: the latest decoded frame; audio: a mixer
//! input), kept across a reconnection, a receiver per arriving WebRTC track, and the sizes the
//! application shows remote video at (viewer hints, `set_view_sizes`).

use super::RoomEvent;
use super::handle::lock;
use super::task::RoomTask;
use crate::receive::{self, VideoSlot};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tracing::Instrument;
use videoroom_protocol::{
    ClientMessage, MAX_VIEW_SIZES, MediaKind, PeerId, TrackId, TrackInfo, ViewSize,
};
use webrtc::media_stream::track_remote::TrackRemote;

/// A remote track as `set_view_sizes` names it.
type ViewKey = (PeerId, TrackId);

/// The sizes the application shows remote video tracks at: the latest asked for per track, kept
/// across sessions, and what the current session has been told. Pure (no I/O): the room task
/// asks for [`ViewSizes::take_changes`] at the end of each turn and sends them, so several
/// changes made in one turn go out as one message and a size set twice to the same value is
/// sent once.
#[derive(Debug, Default)]
pub(super) struct ViewSizes {
    wanted: HashMap<ViewKey, (u32, u32)>,
    sent: HashMap<ViewKey, (u32, u32)>,
    /// Asked for every remote video track when it is added, unless the application set one.
    default: Option<(u32, u32)>,
}

impl ViewSizes {
    pub(super) fn new(default: Option<(u32, u32)>) -> Self {
        Self {
            default,
            ..Self::default()
        }
    }

    /// The application shows this track at this size (0×0: hidden). A track we do not know
    /// (yet) is told all the same: the server ignores what it cannot use.
    pub(super) fn set(&mut self, view: ViewSize) {
        self.wanted
            .insert((view.peer_id, view.track_id), (view.width, view.height));
    }

    /// A remote video track was announced (again): it gets the default size if the application
    /// asked for none, and its size is sent again (a size sent before the server knew the
    /// track may have been ignored).
    pub(super) fn track_added(&mut self, peer_id: &PeerId, track_id: &TrackId) {
        let key = (peer_id.clone(), track_id.clone());
        self.sent.remove(&key);
        if let Some(size) = self.default {
            self.wanted.entry(key).or_insert(size);
        }
    }

    /// A remote track was removed: its size is forgotten.
    pub(super) fn track_removed(&mut self, track_id: &TrackId) {
        self.wanted.retain(|(_, t), _| t != track_id);
        self.sent.retain(|(_, t), _| t != track_id);
    }

    /// A new session: nothing has been told yet; sizes of tracks it does not announce are
    /// forgotten, the others are sent again.
    pub(super) fn new_session(&mut self, present: &HashSet<ViewKey>) {
        self.sent.clear();
        self.wanted.retain(|key, _| present.contains(key));
    }

    /// What changed since the last call, in messages of at most [`MAX_VIEW_SIZES`] entries
    /// (ordered by peer and track); the changes count as sent from now on.
    pub(super) fn take_changes(&mut self) -> Vec<Vec<ViewSize>> {
        let mut changed: Vec<ViewSize> = self
            .wanted
            .iter()
            .filter(|(key, size)| self.sent.get(*key) != Some(*size))
            .map(|((peer_id, track_id), &(width, height))| ViewSize {
                peer_id: peer_id.clone(),
                track_id: track_id.clone(),
                width,
                height,
            })
            .collect();
        if changed.is_empty() {
            return Vec::new();
        }
        changed.sort_by(|a, b| (&a.peer_id, &a.track_id).cmp(&(&b.peer_id, &b.track_id)));
        for view in &changed {
            self.sent.insert(
                (view.peer_id.clone(), view.track_id.clone()),
                (view.width, view.height),
            );
        }
        changed
            .chunks(MAX_VIEW_SIZES)
            .map(<[ViewSize]>::to_vec)
            .collect()
    }
}

impl RoomTask {
    /// Sends the view sizes changed since the last turn on the current session (nothing
    /// without one: they wait for the next).
    pub(super) async fn flush_view_sizes(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        for views in self.views.take_changes() {
            tracing::debug!(entries = views.len(), "sending view sizes");
            session.send(ClientMessage::SetViewSizes { views }).await;
        }
    }

    pub(super) fn add_track(&mut self, info: TrackInfo) {
        match info.kind {
            MediaKind::Video => {
                lock(&self.shared.videos)
                    .entry(info.track_id.clone())
                    .or_insert_with(|| VideoSlot::new(info.track_id.clone(), info.peer_id.clone()));
                self.views.track_added(&info.peer_id, &info.track_id);
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
        } else if !self.decode_audio {
            tracing::debug!(parent: &span, "audio not decoded (decode_audio off)");
            tokio::spawn(receive::drain(track).instrument(span))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn view(peer: &str, track: &str, width: u32, height: u32) -> ViewSize {
        ViewSize {
            peer_id: PeerId::new(peer),
            track_id: TrackId::new(track),
            width,
            height,
        }
    }

    fn key(peer: &str, track: &str) -> ViewKey {
        (PeerId::new(peer), TrackId::new(track))
    }

    #[test]
    fn only_changes_are_sent_batched_per_turn() {
        let mut v = ViewSizes::new(None);
        assert!(v.take_changes().is_empty());
        v.set(view("p", "b", 640, 360));
        v.set(view("p", "a", 320, 180));
        v.set(view("p", "a", 160, 90));
        assert_eq!(
            v.take_changes(),
            vec![vec![view("p", "a", 160, 90), view("p", "b", 640, 360)]]
        );
        v.set(view("p", "a", 160, 90));
        assert!(v.take_changes().is_empty(), "a repeat is not sent");
        v.set(view("p", "b", 0, 0));
        assert_eq!(v.take_changes(), vec![vec![view("p", "b", 0, 0)]]);
    }

    #[test]
    fn large_batches_are_split() {
        let mut v = ViewSizes::new(None);
        for i in 0..(MAX_VIEW_SIZES + 3) {
            v.set(view("p", &format!("t{i:03}"), 320, 180));
        }
        let messages = v.take_changes();
        assert_eq!(
            messages.iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_VIEW_SIZES, 3]
        );
    }

    #[test]
    fn default_size_for_added_tracks_unless_set() {
        let mut v = ViewSizes::new(Some((320, 180)));
        v.set(view("p", "b", 0, 0));
        v.track_added(&PeerId::new("p"), &TrackId::new("a"));
        v.track_added(&PeerId::new("p"), &TrackId::new("b"));
        assert_eq!(
            v.take_changes(),
            vec![vec![view("p", "a", 320, 180), view("p", "b", 0, 0)]]
        );
        // Announced again in the same session: told again.
        v.track_added(&PeerId::new("p"), &TrackId::new("a"));
        assert_eq!(v.take_changes(), vec![vec![view("p", "a", 320, 180)]]);
    }

    #[test]
    fn new_session_resends_present_and_forgets_the_rest() {
        let mut v = ViewSizes::new(None);
        v.set(view("p", "a", 320, 180));
        v.set(view("p", "b", 640, 360));
        v.set(view("q", "c", 160, 90));
        v.take_changes();
        v.track_removed(&TrackId::new("b"));
        assert!(v.take_changes().is_empty());
        v.new_session(&[key("p", "a"), key("p", "b")].into_iter().collect());
        assert_eq!(v.take_changes(), vec![vec![view("p", "a", 320, 180)]]);
        v.set(view("p", "b", 640, 360));
        assert_eq!(
            v.take_changes(),
            vec![vec![view("p", "b", 640, 360)]],
            "a removed track's size was forgotten, so setting it again is a change"
        );
    }
}
