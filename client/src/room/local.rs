//! Our own tracks. Their sending side (source, encoder, send loop) lives as long as the room and
//! is bound to each session's RTP track in turn. The room task mutes them, switches their inputs
//! (and the audio output), and publishes a track that was not there yet.

use super::handle::lock;
use super::session::{LocalRtp, Session};
use super::task::RoomTask;
use super::{
    AudioInput, AudioOutput, RoomError, RoomEvent, ScreenShareEnd, VideoInput, open_audio,
    open_speaker, open_video,
};
use crate::audio::Playout;
use crate::media::{AudioSink, AudioSource, NullSink, OpusConfig, OpusEncoder, VideoSource};
use crate::peer;
use crate::publish::{
    self, AudioControl, EndReports, TrackBinding, VideoControl, VideoSendSettings,
};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use videoroom_protocol::{ClientMessage, MediaKind, PublishedTrack, TrackId, TrackSource};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

/// The sending side of one of our tracks; lives as long as the room.
pub(super) enum LocalControl {
    Video(Arc<VideoControl>),
    Audio(Arc<AudioControl>),
}

pub(super) struct LocalTrack {
    pub(super) kind: MediaKind,
    /// Camera, microphone or screen: what the others are told and how we find it.
    pub(super) source: TrackSource,
    /// The track's SSRC (a simulcast track's full-size layer's).
    pub(super) ssrc: u32,
    /// Video: the layers it is sent as (one without a `rid` unless it is simulcast).
    pub(super) layers: Vec<publish::LayerSpec>,
    /// Video: the track's size, rate and bitrate (a switched-in camera opens with them).
    pub(super) settings: Option<VideoSendSettings>,
    pub(super) ended: EndReports,
    /// The id in the current session (a new one per session: the server refuses a track id
    /// still held by our previous, not yet removed, session).
    pub(super) track_id: TrackId,
    pub(super) muted: bool,
    pub(super) control: LocalControl,
    /// The current session's RTP track, `Some` while its media connection is up.
    pub(super) binding: watch::Sender<Option<Arc<TrackLocalStaticRTP>>>,
    pub(super) tasks: Vec<JoinHandle<()>>,
}

impl LocalTrack {
    /// A video track from `source`: a camera, sent as simulcast ([`DEFAULT_SIMULCAST`]), or a
    /// screen (single layer, sharp text) when `what` is [`TrackSource::Screen`].
    pub(super) fn video(
        source: Box<dyn VideoSource>,
        encoder: crate::media::Vp8Encoder,
        settings: VideoSendSettings,
        ended: EndReports,
        what: TrackSource,
    ) -> Self {
        let simulcast = what == TrackSource::Camera && DEFAULT_SIMULCAST;
        Self::video_layers(source, encoder, settings, ended, what, simulcast)
    }

    /// A camera track from `source`, sent as three spatial layers (full, half, quarter size)
    /// when `simulcast`, else as one.
    // The room's join path passes the application's choice here (see `JoinOptions`).
    #[allow(dead_code)]
    pub(super) fn camera(
        source: Box<dyn VideoSource>,
        encoder: crate::media::Vp8Encoder,
        settings: VideoSendSettings,
        ended: EndReports,
        simulcast: bool,
    ) -> Self {
        Self::video_layers(
            source,
            encoder,
            settings,
            ended,
            TrackSource::Camera,
            simulcast,
        )
    }

    fn video_layers(
        source: Box<dyn VideoSource>,
        encoder: crate::media::Vp8Encoder,
        settings: VideoSendSettings,
        ended: EndReports,
        what: TrackSource,
        simulcast: bool,
    ) -> Self {
        let ssrc = rand::random::<u32>() | 1;
        let layers = if simulcast && what != TrackSource::Screen {
            publish::camera_layers(ssrc)
        } else {
            vec![publish::LayerSpec::single(ssrc)]
        };
        let (binding, bound): (_, TrackBinding) = watch::channel(None);
        let control = Arc::new(VideoControl::new(true));
        let tasks = publish::spawn_layered_sender(
            bound,
            source,
            encoder,
            settings,
            layers.clone(),
            Arc::clone(&control),
            ended.clone(),
            what == TrackSource::Screen,
        );
        Self {
            kind: MediaKind::Video,
            source: what,
            ssrc,
            layers,
            settings: Some(settings),
            ended,
            track_id: new_track_id(what),
            muted: false,
            control: LocalControl::Video(control),
            binding,
            tasks,
        }
    }

    pub(super) fn audio(
        source: Box<dyn AudioSource>,
        encoder: OpusEncoder,
        ended: EndReports,
    ) -> Self {
        let ssrc = rand::random::<u32>() | 1;
        let (binding, bound): (_, TrackBinding) = watch::channel(None);
        let control = Arc::new(AudioControl::new(true));
        let task = publish::spawn_audio_sender(
            bound,
            source,
            encoder,
            ssrc,
            Arc::clone(&control),
            ended.clone(),
        );
        Self {
            kind: MediaKind::Audio,
            source: TrackSource::Microphone,
            ssrc,
            layers: Vec::new(),
            settings: None,
            ended,
            track_id: new_track_id(TrackSource::Microphone),
            muted: false,
            control: LocalControl::Audio(control),
            binding,
            tasks: vec![task],
        }
    }

    pub(super) fn declared(&self) -> PublishedTrack {
        PublishedTrack {
            track_id: self.track_id.clone(),
            source: self.source,
            muted: self.muted,
        }
    }

    /// Whether the send loop stopped (its source ended or kept failing).
    fn stopped(&self) -> bool {
        self.tasks.first().is_none_or(JoinHandle::is_finished)
    }

    /// Replaces a stopped send loop with a new one on `source` (same track, same binding).
    fn restart_video(&mut self, source: Box<dyn VideoSource>) -> Result<(), RoomError> {
        let (LocalControl::Video(control), Some(settings)) = (&self.control, self.settings) else {
            return Err(RoomError::NoCamera);
        };
        let encoder =
            publish::new_encoder(&settings).map_err(|e| RoomError::Media(e.to_string()))?;
        control.request_keyframe();
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.tasks = publish::spawn_layered_sender(
            self.binding.subscribe(),
            source,
            encoder,
            settings,
            self.layers.clone(),
            Arc::clone(control),
            self.ended.clone(),
            self.source == TrackSource::Screen,
        );
        Ok(())
    }

    /// Replaces a stopped audio send loop with a new one on `source`.
    fn restart_audio(&mut self, source: Box<dyn AudioSource>) -> Result<(), RoomError> {
        let LocalControl::Audio(control) = &self.control else {
            return Err(RoomError::NoMicrophone);
        };
        let encoder =
            OpusEncoder::new(OpusConfig::voice()).map_err(|e| RoomError::Media(e.to_string()))?;
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.tasks = vec![publish::spawn_audio_sender(
            self.binding.subscribe(),
            source,
            encoder,
            self.ssrc,
            Arc::clone(control),
            self.ended.clone(),
        )];
        Ok(())
    }

    fn set_enabled(&mut self, enabled: bool) {
        self.muted = !enabled;
        match &self.control {
            LocalControl::Video(c) => c.set_enabled(enabled),
            LocalControl::Audio(c) => c.set_enabled(enabled),
        }
    }
}

impl Drop for LocalTrack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Whether a camera is sent as simulcast unless the application says otherwise.
pub(super) const DEFAULT_SIMULCAST: bool = true;

pub(super) fn new_track_id(source: TrackSource) -> TrackId {
    let suffix = match source {
        TrackSource::Camera => "cam",
        TrackSource::Microphone => "mic",
        TrackSource::Screen => "scr",
        TrackSource::ScreenAudio => "sca",
        _ => "trk",
    };
    TrackId::new(format!("{:08x}-{suffix}", rand::random::<u32>()))
}

/// The source our camera (video) or microphone (audio) track has.
pub(super) fn device_source(kind: MediaKind) -> TrackSource {
    match kind {
        MediaKind::Video => TrackSource::Camera,
        MediaKind::Audio => TrackSource::Microphone,
    }
}

/// Our current ids, readable from the handle.
#[derive(Debug, Default, Clone)]
pub(super) struct LocalIds {
    pub(super) camera: Option<(TrackId, Arc<VideoControl>)>,
    pub(super) microphone: Option<(TrackId, Arc<AudioControl>)>,
    pub(super) screen: Option<(TrackId, Arc<VideoControl>)>,
}

impl LocalIds {
    /// Notes `track`'s current id and control under its source.
    pub(super) fn record(&mut self, track: &LocalTrack) {
        let id = track.track_id.clone();
        match (&track.control, track.source) {
            (LocalControl::Video(c), TrackSource::Screen) => {
                self.screen = Some((id, Arc::clone(c)))
            }
            (LocalControl::Video(c), _) => self.camera = Some((id, Arc::clone(c))),
            (LocalControl::Audio(c), _) => self.microphone = Some((id, Arc::clone(c))),
        }
    }
}

impl RoomTask {
    pub(super) async fn set_enabled(
        &mut self,
        kind: MediaKind,
        enabled: bool,
    ) -> Result<(), RoomError> {
        let source = device_source(kind);
        let Some(local) = self.local.iter_mut().find(|t| t.source == source) else {
            return Err(match kind {
                MediaKind::Video => RoomError::NoCamera,
                MediaKind::Audio => RoomError::NoMicrophone,
            });
        };
        let message = ClientMessage::UpdateTrack {
            track_id: local.track_id.clone(),
            muted: !enabled,
        };
        // Muting stops the media first; unmuting tells the room first, so that the server
        // rarely sees media of a track it still believes muted.
        if !enabled {
            local.set_enabled(false);
        }
        // While reconnecting there is no socket: the new session declares the muted state.
        let sent = match self.session.as_mut() {
            Some(session) => session
                .signaling
                .send(&message)
                .await
                .map_err(|e| RoomError::Signaling(e.to_string())),
            None => Ok(()),
        };
        if enabled && let Some(local) = self.local.iter_mut().find(|t| t.source == source) {
            local.set_enabled(true);
        }
        sent
    }

    pub(super) async fn switch_video(&mut self, input: VideoInput) -> Result<(), RoomError> {
        let existing = self
            .local
            .iter()
            .position(|t| t.source == TrackSource::Camera);
        // A switched-in camera opens at the track's settings; a first camera at 640×360@30.
        let settings = existing
            .and_then(|i| self.local[i].settings)
            .unwrap_or(VideoSendSettings {
                width: 640,
                height: 360,
                fps: 30,
                target_kbps: 800,
            });
        let source = open_video(input, &settings).await?;
        if let Some(i) = existing {
            let track = &mut self.local[i];
            if track.stopped() {
                return track.restart_video(source);
            }
            if let LocalControl::Video(control) = &track.control {
                control.replace_source(source);
            }
            return Ok(());
        }
        let encoder =
            publish::new_encoder(&settings).map_err(|e| RoomError::Media(e.to_string()))?;
        let track = LocalTrack::video(
            source,
            encoder,
            settings,
            self.ended_tx.clone(),
            TrackSource::Camera,
        );
        self.publish_new(track).await
    }

    pub(super) async fn switch_audio(&mut self, input: AudioInput) -> Result<(), RoomError> {
        let existing = self
            .local
            .iter()
            .position(|t| t.source == TrackSource::Microphone);
        let source = open_audio(input).await?;
        if let Some(i) = existing {
            let track = &mut self.local[i];
            if track.stopped() {
                return track.restart_audio(source);
            }
            if let LocalControl::Audio(control) = &track.control {
                control.replace_source(source);
            }
            return Ok(());
        }
        let encoder =
            OpusEncoder::new(OpusConfig::voice()).map_err(|e| RoomError::Media(e.to_string()))?;
        let track = LocalTrack::audio(source, encoder, self.ended_tx.clone());
        self.publish_new(track).await
    }

    /// Adds a new local track to the room and to the current session (renegotiating).
    async fn publish_new(&mut self, mut track: LocalTrack) -> Result<(), RoomError> {
        let peer_id = lock(&self.shared.peer_id).clone();
        if let Some(session) = self.session.as_mut() {
            track.track_id = new_track_id(track.source);
            let sent = add_local_rtp(session, peer_id.as_str(), &track)
                .await
                .map_err(|e| RoomError::Media(format!("add a local transceiver: {e}")))?;
            if session.connected {
                track.binding.send_replace(Some(Arc::clone(&sent.rtp)));
            }
            session.local_tracks.push(sent);
        }
        lock(&self.shared.local_ids).record(&track);
        self.local.push(track);
        self.offer()
            .await
            .map_err(|e| RoomError::Media(e.to_string()))
    }

    /// Publishes `source` as our screen share (one at a time); its id in this session.
    pub(super) async fn start_screen(
        &mut self,
        source: Box<dyn VideoSource>,
        settings: VideoSendSettings,
    ) -> Result<TrackId, RoomError> {
        if self.local.iter().any(|t| t.source == TrackSource::Screen) {
            return Err(RoomError::ScreenShareActive);
        }
        let encoder =
            publish::new_screen_encoder(&settings).map_err(|e| RoomError::Media(e.to_string()))?;
        let track = LocalTrack::video(
            source,
            encoder,
            settings,
            self.ended_tx.clone(),
            TrackSource::Screen,
        );
        let id = track.track_id.clone();
        let ssrc = track.ssrc;
        self.publish_new(track).await?;
        Ok(self
            .local
            .iter()
            .find(|t| t.ssrc == ssrc)
            .map_or(id, |t| t.track_id.clone()))
    }

    /// Stops our screen share: its send loop ends, its transceiver stops sending, and the
    /// others see the track removed after the next negotiation. Tells the application why.
    pub(super) async fn stop_screen(&mut self, why: ScreenShareEnd) -> Result<(), RoomError> {
        let Some(i) = self
            .local
            .iter()
            .position(|t| t.source == TrackSource::Screen)
        else {
            return Err(RoomError::NoScreenShare);
        };
        let track = self.local.remove(i);
        track.binding.send_replace(None);
        lock(&self.shared.local_ids).screen = None;
        if let Some(session) = self.session.as_mut()
            && let Some(j) = session
                .local_tracks
                .iter()
                .position(|r| r.ssrc == track.ssrc)
        {
            let sent = session.local_tracks.remove(j);
            let removed = match sent.transceiver.sender().await {
                Ok(Some(sender)) => session.pc.remove_track(&sender).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = removed {
                tracing::warn!("removing the screen's sender failed: {e}");
            }
        }
        drop(track);
        tracing::info!(?why, "screen share stopped");
        self.events
            .emit(RoomEvent::ScreenShareEnded { reason: why });
        if self.session.is_some() {
            self.offer()
                .await
                .map_err(|e| RoomError::Media(e.to_string()))?;
        }
        Ok(())
    }

    pub(super) async fn set_output(&mut self, output: AudioOutput) -> Result<(), RoomError> {
        let sink: Box<dyn AudioSink> = match output {
            AudioOutput::Null => Box::new(NullSink::new()),
            AudioOutput::Sink(sink) => sink,
            AudioOutput::Speaker { device } => open_speaker(device).await?,
        };
        // Stop the old thread first: one playout loop per mixer.
        self.playout = None;
        let errors = self.events.clone_sender();
        let playout = Playout::start(self.shared.mixer.clone(), sink, move |e| {
            errors.emit(RoomEvent::Error(RoomError::AudioOutput(e.to_string())));
        })
        .map_err(|e| RoomError::AudioOutput(format!("cannot start the playout thread: {e}")))?;
        self.playout = Some(playout);
        Ok(())
    }
}

/// Adds `track` to `session`'s PeerConnection (a `sendonly` transceiver around a new RTP track
/// under the track's current id).
pub(super) async fn add_local_rtp(
    session: &Session,
    peer_id: &str,
    track: &LocalTrack,
) -> Result<LocalRtp, webrtc::error::Error> {
    let (rtp, init) = if track.layers.len() > 1 {
        let layers: Vec<(&str, u32)> = track
            .layers
            .iter()
            .map(|l| (l.rid.unwrap_or_default(), l.ssrc))
            .collect();
        videoroom_webrtc::rtp_track_simulcast(peer_id, track.track_id.as_str(), &layers)
    } else {
        peer::rtp_track(peer_id, track.track_id.as_str(), track.kind, track.ssrc)
    };
    let rtp = Arc::new(rtp);
    let transceiver = session
        .pc
        .add_transceiver_from_track(Arc::clone(&rtp) as Arc<dyn TrackLocal>, Some(init))
        .await?;
    // The send loop labels its packets (MID, RID, audio level) from this transceiver; the
    // uplink budget shares the estimate out among the tracks it sends.
    match &track.control {
        LocalControl::Video(c) => {
            c.set_transceiver(&rtp, Arc::clone(&transceiver));
            session
                .budget
                .add_video(c, track.source == TrackSource::Screen);
        }
        LocalControl::Audio(c) => {
            c.set_transceiver(&rtp, Arc::clone(&transceiver));
            session.budget.add_audio(c);
        }
    }
    Ok(LocalRtp {
        ssrc: track.ssrc,
        rtp,
        transceiver,
    })
}
