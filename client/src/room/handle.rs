//! The application's side of a room: [`RoomHandle`] and the commands it sends the room task, the
//! state both read (`Shared`), and the sending end of the event stream.

use super::local::LocalIds;
use super::{AudioInput, AudioOutput, RoomError, RoomEvent, RoomInfo, VideoInput, social};
use crate::audio::{Mixer, RemoteAudio};
use crate::publish::SendStats;
use crate::receive::{RemoteVideo, VideoSlot};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use videoroom_protocol::{ClientMessage, MediaKind, PeerId, TrackId, ViewSize};

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) peer_id: Mutex<PeerId>,
    /// The room as of the current session's `joined`, kept up to date with lock changes and
    /// our moderator grant.
    pub(super) room: Mutex<RoomInfo>,
    pub(super) local_ids: Mutex<LocalIds>,
    pub(super) videos: Mutex<HashMap<TrackId, VideoSlot>>,
    pub(super) mixer: Mixer,
    pub(super) dropped_events: AtomicU64,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every update is a
/// single assignment, insert or remove).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The sending end of the event stream. Decision when full: the event is dropped and counted
/// (the room task never waits on the application), see [`RoomHandle::dropped_events`].
#[derive(Debug)]
pub(super) struct EventSink {
    pub(super) tx: mpsc::Sender<RoomEvent>,
    pub(super) shared: Arc<Shared>,
}

impl EventSink {
    pub(super) fn emit(&self, event: RoomEvent) {
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                self.shared.dropped_events.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(?event, "event queue full; event dropped");
            }
            // Nobody listens any more; that is the application's choice.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    pub(super) fn clone_sender(&self) -> EventSink {
        EventSink {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Connection-level figures of the current media session.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// ICE round-trip time of the selected candidate pair, ms.
    pub rtt_ms: Option<f64>,
    /// RTP packets received, all inbound streams.
    pub packets_received: u64,
    /// RTP packets lost (as seen from sequence gaps), all inbound streams.
    pub packets_lost: i64,
    /// Bytes received on the transport.
    pub bytes_received: u64,
    /// Bytes sent on the transport.
    pub bytes_sent: u64,
}

pub(super) enum Command {
    Leave(oneshot::Sender<()>),
    /// Chat, a hand, or a moderator's action: sent as is on the current session.
    Send(ClientMessage, oneshot::Sender<Result<(), RoomError>>),
    /// A moderator's `create_invite`; answered when `invite_created` (or a refusal) arrives.
    CreateInvite(
        u64,
        bool,
        oneshot::Sender<Result<social::Invite, RoomError>>,
    ),
    SetEnabled(MediaKind, bool, oneshot::Sender<Result<(), RoomError>>),
    SwitchVideo(VideoInput, oneshot::Sender<Result<(), RoomError>>),
    SwitchAudio(AudioInput, oneshot::Sender<Result<(), RoomError>>),
    SetOutput(AudioOutput, oneshot::Sender<Result<(), RoomError>>),
    Stats(oneshot::Sender<Option<ConnectionStats>>),
    /// Publish a screen share from this source.
    StartScreen(
        Box<dyn crate::media::VideoSource>,
        crate::publish::VideoSendSettings,
        oneshot::Sender<Result<TrackId, RoomError>>,
    ),
    StopScreen(oneshot::Sender<Result<(), RoomError>>),
    /// Viewer hints: the sizes remote video tracks are shown at.
    SetViewSizes(Vec<ViewSize>),
}

/// The application's handle on a joined room. Dropping it leaves the room.
#[derive(Debug)]
pub struct RoomHandle {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) shared: Arc<Shared>,
    pub(super) task: Option<JoinHandle<()>>,
}

impl RoomHandle {
    /// Our peer id in the current session (it changes when the room rejoins after a loss).
    pub fn peer_id(&self) -> PeerId {
        lock(&self.shared.peer_id).clone()
    }

    /// The room as of the current session's join: whether we moderate (kept current), whether
    /// it is locked (kept current), and the chat history it had then.
    pub fn room_info(&self) -> RoomInfo {
        lock(&self.shared.room).clone()
    }

    /// The id of our camera track in the current session, if we publish one.
    pub fn camera_track_id(&self) -> Option<TrackId> {
        lock(&self.shared.local_ids)
            .camera
            .as_ref()
            .map(|c| c.0.clone())
    }

    /// The id of our screen-share track in the current session, if we share one.
    pub fn screen_track_id(&self) -> Option<TrackId> {
        lock(&self.shared.local_ids)
            .screen
            .as_ref()
            .map(|c| c.0.clone())
    }

    /// Shares a screen (or a window, or any video source) as a `screen` track next to the
    /// camera, at `settings`. One at a time ([`RoomError::ScreenShareActive`]). A rejoin
    /// republishes it under a new id; its source ending ends the share
    /// ([`RoomEvent::ScreenShareEnded`]). Returns the track's id in the current session.
    pub async fn start_screen_share(
        &self,
        source: Box<dyn crate::media::VideoSource>,
        settings: crate::publish::VideoSendSettings,
    ) -> Result<TrackId, RoomError> {
        self.call(|tx| Command::StartScreen(source, settings, tx))
            .await?
    }

    /// Stops our screen share ([`RoomEvent::ScreenShareEnded`] with
    /// [`ScreenShareEnd::Stopped`](super::ScreenShareEnd::Stopped) follows).
    pub async fn stop_screen_share(&self) -> Result<(), RoomError> {
        self.call(Command::StopScreen).await?
    }

    /// What our screen share sends, for a self view (latest frame only).
    pub fn screen_preview(&self) -> Option<watch::Receiver<Option<Arc<crate::media::I420Frame>>>> {
        lock(&self.shared.local_ids)
            .screen
            .as_ref()
            .map(|c| c.1.preview())
    }

    /// The id of our microphone track in the current session, if we publish one.
    pub fn microphone_track_id(&self) -> Option<TrackId> {
        lock(&self.shared.local_ids)
            .microphone
            .as_ref()
            .map(|c| c.0.clone())
    }

    /// Counters of our camera track (across sessions).
    pub fn camera_stats(&self) -> Option<SendStats> {
        lock(&self.shared.local_ids)
            .camera
            .as_ref()
            .map(|c| c.1.stats())
    }

    /// Counters of our screen share while it lasts (each share starts from zero).
    pub fn screen_stats(&self) -> Option<SendStats> {
        lock(&self.shared.local_ids)
            .screen
            .as_ref()
            .map(|c| c.1.stats())
    }

    /// Our camera's newest captured frame (self view), if we publish a camera.
    pub fn local_video(&self) -> Option<watch::Receiver<Option<Arc<crate::media::I420Frame>>>> {
        lock(&self.shared.local_ids)
            .camera
            .as_ref()
            .map(|c| c.1.preview())
    }

    /// Our microphone's level (dBov) and whether it counts as speech, if we publish one.
    pub fn microphone_level(&self) -> Option<(f32, bool)> {
        lock(&self.shared.local_ids)
            .microphone
            .as_ref()
            .map(|c| c.1.level())
    }

    /// Counters of our microphone track (across sessions).
    pub fn microphone_stats(&self) -> Option<SendStats> {
        lock(&self.shared.local_ids)
            .microphone
            .as_ref()
            .map(|c| c.1.stats())
    }

    /// A remote video track's frames and counters (available from its `TrackAdded` until its
    /// `TrackRemoved`).
    pub fn remote_video(&self, track_id: &TrackId) -> Option<RemoteVideo> {
        lock(&self.shared.videos)
            .get(track_id)
            .map(VideoSlot::subscribe)
    }

    /// Every remote video track.
    pub fn remote_videos(&self) -> Vec<RemoteVideo> {
        lock(&self.shared.videos)
            .values()
            .map(VideoSlot::subscribe)
            .collect()
    }

    /// A remote audio track's counters and level (from its `TrackAdded` until its
    /// `TrackRemoved`).
    pub fn remote_audio(&self, track_id: &TrackId) -> Option<RemoteAudio> {
        self.shared.mixer.remote_audio(track_id)
    }

    /// Every remote audio track.
    pub fn remote_audios(&self) -> Vec<RemoteAudio> {
        self.shared.mixer.remote_audios()
    }

    /// Tells the server how large we show a remote video track, in device pixels (0×0: not
    /// shown, e.g. off screen or paused), so it can forward a smaller layer or none. Only
    /// changes are sent; several made at once go out in one `set_view_sizes`; the sizes are
    /// sent again after a rejoin and forgotten when the track is removed. Until one is set a
    /// track is shown large (or at [`JoinOptions::default_view_size`](super::JoinOptions)).
    /// A track the room does not know is told all the same (the server ignores it).
    pub async fn set_view_size(
        &self,
        peer_id: PeerId,
        track_id: TrackId,
        width: u32,
        height: u32,
    ) -> Result<(), RoomError> {
        self.set_view_sizes(vec![ViewSize {
            peer_id,
            track_id,
            width,
            height,
        }])
        .await
    }

    /// [`RoomHandle::set_view_size`] for several tracks at once (one message, or more when
    /// there are over [`MAX_VIEW_SIZES`](videoroom_protocol::MAX_VIEW_SIZES) changes).
    pub async fn set_view_sizes(&self, views: Vec<ViewSize>) -> Result<(), RoomError> {
        self.commands
            .send(Command::SetViewSizes(views))
            .await
            .map_err(|_| RoomError::Closed)
    }

    /// Events dropped because the event channel was full.
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped_events.load(Ordering::Relaxed)
    }

    pub(super) async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RoomError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(command(tx))
            .await
            .map_err(|_| RoomError::Closed)?;
        rx.await.map_err(|_| RoomError::Closed)
    }

    /// Mutes (`false`) or unmutes (`true`) our camera: tells the room (`update_track`, so the
    /// others see it) and stops or resumes sending frames (resuming starts with a keyframe).
    pub async fn set_camera_enabled(&self, enabled: bool) -> Result<(), RoomError> {
        self.call(|tx| Command::SetEnabled(MediaKind::Video, enabled, tx))
            .await?
    }

    /// Mutes (`false`) or unmutes (`true`) our microphone; the others see it.
    pub async fn set_microphone_enabled(&self, enabled: bool) -> Result<(), RoomError> {
        self.call(|tx| Command::SetEnabled(MediaKind::Audio, enabled, tx))
            .await?
    }

    /// Switches the camera to another input (the track stays, the others see no change but the
    /// picture). If no camera track is published yet, `input` is published as a new one (at
    /// 640×360, 30 fps, 800 kbit/s). A device that cannot be opened gives
    /// [`RoomError::Device`] and the current input stays.
    pub async fn switch_camera(&self, input: VideoInput) -> Result<(), RoomError> {
        self.call(|tx| Command::SwitchVideo(input, tx)).await?
    }

    /// Switches the microphone to another input, publishing a microphone track if there is none.
    pub async fn switch_microphone(&self, input: AudioInput) -> Result<(), RoomError> {
        self.call(|tx| Command::SwitchAudio(input, tx)).await?
    }

    /// Plays remote audio somewhere else. A speaker that cannot be opened gives
    /// [`RoomError::Device`] and the current output stays.
    pub async fn set_audio_output(&self, output: AudioOutput) -> Result<(), RoomError> {
        self.call(|tx| Command::SetOutput(output, tx)).await?
    }

    /// Round-trip time, loss and byte counts of the current media session (`None` while
    /// reconnecting).
    pub async fn connection_stats(&self) -> Result<Option<ConnectionStats>, RoomError> {
        self.call(Command::Stats).await
    }

    /// Leaves the room: sends `leave`, closes the socket and the media connection, and waits
    /// (at most 5 s) for the room task to finish.
    pub async fn leave(mut self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Leave(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}
