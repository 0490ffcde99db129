//! The app's state: the lobby preview, the room (if any), and what the UI is told about them.
//!
//! Commands (`commands.rs`) call in here. One task per room maps engine events to `room`
//! events for the UI and keeps the frame hub in step; a ticker sends audio levels.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use videoroom_client::media::devices::{
    CameraSource, list_cameras, list_microphones, list_speakers,
};
use videoroom_client::media::screen::{
    EnvSnapshot, Picker, ScreenBackend, detect, list_sources, open_source,
};
use videoroom_client::media::{Channels, PatternSource, ToneSource, VideoSource};
use videoroom_client::publish::VideoSendSettings;
use videoroom_client::{
    AudioInput, AudioOutput, ConnectionState, JoinOptions, Room, RoomError, RoomEvent, RoomHandle,
    VideoInput,
};
use videoroom_protocol::MediaKind;

use crate::api::{
    ChatView, DeviceView, Devices, ErrorKind, Joined, Level, LocalState, ModerationView, PeerView,
    RoomInfo, ScreenShareEndView, ScreenSourcesView, Settings, TrackLevel, UiError, UiEvent,
    ViewSizeView,
};
use crate::frames::{FrameServer, PreviewGuard, SharedHub};
use crate::screen::{Thumbnails, shooter};

/// Camera capture size and rate.
const VIDEO: (u32, u32, u32) = (640, 360, 30);
/// Camera bitrate, kbit/s.
const VIDEO_KBPS: u32 = 800;
/// How often the UI gets audio levels.
const LEVEL_INTERVAL: Duration = Duration::from_millis(200);
/// Tone of the synthetic microphone.
const FAKE_TONE_HZ: f64 = 440.0;
/// Device id of the synthetic camera/microphone/speaker.
const FAKE_ID: &str = "synthetic";
/// Screen share capture rate.
const SCREEN_FPS: u32 = 15;
/// Screen share bitrate, kbit/s.
const SCREEN_KBPS: u32 = 1500;
/// The most viewer hints one `set_view_sizes` call may carry (the UI sends one per shown
/// remote video track, and only changes: far fewer).
const MAX_VIEW_SIZES_PER_CALL: usize = 1024;

/// How the app was started (environment).
#[derive(Debug, Clone)]
pub struct Launch {
    /// Synthetic media instead of devices (`VIDEOROOM_FAKE_MEDIA=1`).
    pub fake_media: bool,
    /// Local address for media (`VIDEOROOM_MEDIA_IP`; default: every non-loopback interface).
    pub media_ip: IpAddr,
    /// `VIDEOROOM_TEST_HOOKS=1`.
    pub test_hooks: bool,
    /// `VIDEOROOM_BENCH_OUT=<file>`: the worker's figures are appended there.
    pub bench_out: Option<PathBuf>,
    /// `VIDEOROOM_AUTOJOIN=<url>|<room>|<name>`: join at once.
    pub autojoin: Option<(String, String, String)>,
    /// `VIDEOROOM_DEFAULT_SERVER`: the server URL on first start.
    pub default_server: Option<String>,
    /// `VIDEOROOM_CONFIG_DIR`: where settings are kept (default: the OS config dir).
    pub config_dir: Option<PathBuf>,
}

impl Launch {
    /// Reads the environment. Bad values are reported and ignored.
    pub fn from_env() -> Self {
        let flag = |name: &str| {
            std::env::var(name).is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes" | "on"))
        };
        let media_ip = match std::env::var("VIDEOROOM_MEDIA_IP") {
            Ok(v) => v.parse().unwrap_or_else(|e| {
                tracing::warn!("VIDEOROOM_MEDIA_IP={v:?} is not an IP address ({e}); using all");
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            }),
            Err(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let autojoin = std::env::var("VIDEOROOM_AUTOJOIN").ok().and_then(|v| {
            let mut parts = v.splitn(3, '|').map(str::to_owned);
            match (parts.next(), parts.next(), parts.next()) {
                (Some(url), Some(room), Some(name)) => Some((url, room, name)),
                _ => {
                    tracing::warn!("VIDEOROOM_AUTOJOIN must be <url>|<room>|<name>");
                    None
                }
            }
        });
        Self {
            fake_media: flag("VIDEOROOM_FAKE_MEDIA"),
            media_ip,
            test_hooks: flag("VIDEOROOM_TEST_HOOKS"),
            bench_out: std::env::var_os("VIDEOROOM_BENCH_OUT").map(PathBuf::from),
            autojoin,
            default_server: std::env::var("VIDEOROOM_DEFAULT_SERVER").ok(),
            config_dir: std::env::var_os("VIDEOROOM_CONFIG_DIR").map(PathBuf::from),
        }
    }
}

/// A joined room.
struct ActiveRoom {
    handle: Arc<RoomHandle>,
    ticker: JoinHandle<()>,
    /// What the person asked for (the room may lack the device).
    camera_wanted: bool,
    mic_wanted: bool,
    /// Devices in use, for reviving a stopped one.
    camera: Option<String>,
    microphone: Option<String>,
    /// The address joined through and the room, for invite links.
    server_url: String,
    room: String,
}

impl ActiveRoom {
    fn local(&self) -> LocalState {
        let has_camera = self.handle.camera_track_id().is_some();
        let has_microphone = self.handle.microphone_track_id().is_some();
        LocalState {
            camera_on: has_camera && self.camera_wanted,
            mic_on: has_microphone && self.mic_wanted,
            has_camera,
            has_microphone,
            screen_on: self.handle.screen_track_id().is_some(),
        }
    }
}

/// The app's state (`tauri::State<AppState>`).
pub struct AppState {
    /// How the app was started.
    pub launch: Launch,
    /// Frames for the UI.
    pub hub: SharedHub,
    /// The frame socket.
    pub frames: FrameServer,
    room: Mutex<Option<ActiveRoom>>,
    /// Serializes join and leave.
    joining: Mutex<()>,
    preview: std::sync::Mutex<Option<PreviewGuard>>,
    /// The picker's thumbnails.
    thumbnails: Thumbnails,
    /// Held while a screen share starts (the system's dialog may take a while).
    screen_starting: Mutex<()>,
}

impl AppState {
    /// A state with no room.
    pub fn new(launch: Launch, hub: SharedHub, frames: FrameServer) -> Self {
        Self {
            launch,
            thumbnails: Thumbnails::new(Arc::clone(&hub)),
            hub,
            frames,
            room: Mutex::new(None),
            joining: Mutex::new(()),
            preview: std::sync::Mutex::new(None),
            screen_starting: Mutex::new(()),
        }
    }

    /// The devices to offer.
    pub fn devices(&self) -> Devices {
        if self.launch.fake_media {
            let fake = |name: &str| {
                vec![DeviceView {
                    id: FAKE_ID.to_owned(),
                    name: name.to_owned(),
                }]
            };
            return Devices {
                cameras: fake("Synthetic camera (moving pattern)"),
                microphones: fake("Synthetic microphone (440 Hz tone)"),
                speakers: fake("No sound (synthetic media)"),
                fake: true,
            };
        }
        detect_devices()
    }

    fn video_input(&self, camera: Option<String>) -> VideoInput {
        if self.launch.fake_media {
            match PatternSource::new(VIDEO.0, VIDEO.1, VIDEO.2) {
                Ok(p) => return VideoInput::Source(Box::new(p)),
                Err(e) => tracing::error!("pattern source: {e}"),
            }
        }
        VideoInput::Camera { device: camera }
    }

    fn audio_input(&self, microphone: Option<String>) -> AudioInput {
        if self.launch.fake_media {
            return AudioInput::Source(Box::new(ToneSource::new(
                FAKE_TONE_HZ,
                0.2,
                Channels::Mono,
            )));
        }
        AudioInput::Microphone { device: microphone }
    }

    fn audio_output(&self, speaker: Option<String>) -> AudioOutput {
        if self.launch.fake_media {
            AudioOutput::Null
        } else {
            AudioOutput::Speaker { device: speaker }
        }
    }

    /// Shows `camera` as the lobby's self view.
    pub fn start_preview(&self, camera: Option<String>) -> Result<(), UiError> {
        self.stop_preview();
        let (source, paced): (Box<dyn VideoSource>, bool) = if self.launch.fake_media {
            let p = PatternSource::new(VIDEO.0, VIDEO.1, VIDEO.2)
                .map_err(|e| UiError::internal(e.to_string()))?;
            (Box::new(p), true)
        } else {
            let c = CameraSource::open(camera.as_deref(), VIDEO.0, VIDEO.1, VIDEO.2)
                .map_err(|e| UiError::from_device(&e))?;
            (Box::new(c), false)
        };
        let (guard, frames) = PreviewGuard::start(source, VIDEO.2, paced);
        self.hub.set_local(Some(frames));
        *self.preview.lock().map_err(poisoned)? = Some(guard);
        Ok(())
    }

    /// Stops the lobby's self view and closes its camera.
    pub fn stop_preview(&self) {
        let guard = self.preview.lock().ok().and_then(|mut p| p.take());
        if guard.is_some() {
            self.hub.set_local(None);
        }
        drop(guard);
    }

    /// Joins a room; events follow on `room`.
    /// Joins the room `settings` name, trusting the `trusted` certificate fingerprints for the
    /// server besides the system's authorities.
    pub async fn join(
        &self,
        app: &AppHandle,
        settings: Settings,
        trusted: Vec<String>,
    ) -> Result<Joined, UiError> {
        let _serial = self.joining.try_lock().map_err(|_| busy())?;
        if self.room.lock().await.is_some() {
            return Err(UiError::new(
                ErrorKind::Busy,
                "Already in a room.",
                Some("Leave it first."),
            ));
        }
        check_settings(&settings)?;
        // The camera is exclusive: the preview lets go of it before the room opens it.
        self.stop_preview();
        let mut options = JoinOptions::default()
            .with_udp_addrs(vec![SocketAddr::new(self.launch.media_ip, 0)])
            .with_audio_output(self.audio_output(settings.speaker.clone()))
            .with_video_input(
                self.video_input(settings.camera.clone()),
                VIDEO.0,
                VIDEO.1,
                VIDEO.2,
                VIDEO_KBPS,
            );
        options = options
            .with_audio_input(self.audio_input(settings.microphone.clone()))
            .with_token(settings.token.clone())
            .with_trusted_certificates(trusted);
        let url = settings.server_url.trim().to_owned();
        let (handle, events) =
            Room::join(&url, settings.room.trim(), settings.name.trim(), options)
                .await
                .map_err(|e| UiError::from_join(&url, &e))?;
        // Joined with camera or microphone off: mute before anything is shown to the others
        // for long (the tracks exist so that turning them on needs no renegotiation).
        if !settings.camera_on {
            let _ = handle.set_camera_enabled(false).await;
        }
        if !settings.mic_on {
            let _ = handle.set_microphone_enabled(false).await;
        }
        let handle = Arc::new(handle);
        self.hub.set_local(handle.local_video());
        let ticker = tokio::spawn(level_ticker(app.clone(), Arc::downgrade(&handle)));
        let active = ActiveRoom {
            handle: Arc::clone(&handle),
            ticker,
            camera_wanted: settings.camera_on,
            mic_wanted: settings.mic_on,
            camera: settings.camera.clone(),
            microphone: settings.microphone.clone(),
            server_url: url.clone(),
            room: settings.room.trim().to_owned(),
        };
        let local = active.local();
        let joined = Joined {
            self_id: handle.peer_id().to_string(),
            peers: Vec::new(),
            local,
            room: RoomInfo::from(&handle.room_info()),
        };
        *self.room.lock().await = Some(active);
        tokio::spawn(pump_events(app.clone(), Arc::downgrade(&handle), events));
        Ok(joined)
    }

    /// Leaves the room (a `closed` event follows).
    pub async fn leave(&self) -> Result<(), UiError> {
        let _serial = self.joining.lock().await;
        let Some(active) = self.room.lock().await.take() else {
            return Err(UiError::not_in_room());
        };
        self.end_room(active).await;
        Ok(())
    }

    async fn end_room(&self, active: ActiveRoom) {
        active.ticker.abort();
        self.thumbnails.stop();
        self.hub.set_local(None);
        self.hub.set_screen(None);
        self.hub.clear_remote();
        let mut handle = active.handle;
        // The event task only holds weak references, briefly.
        for _ in 0..50 {
            match Arc::try_unwrap(handle) {
                Ok(owned) => {
                    owned.leave().await;
                    return;
                }
                Err(shared) => {
                    handle = shared;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        // Dropping the last handle leaves too.
        drop(handle);
    }

    /// Turns the microphone on or off.
    pub async fn set_microphone(&self, on: bool) -> Result<LocalState, UiError> {
        let mut room = self.room.lock().await;
        let active = room.as_mut().ok_or_else(UiError::not_in_room)?;
        if on && active.handle.microphone_track_id().is_none() {
            let input = self.audio_input(active.microphone.clone());
            active
                .handle
                .switch_microphone(input)
                .await
                .map_err(|e| UiError::from_room(&e))?;
        }
        active
            .handle
            .set_microphone_enabled(on)
            .await
            .map_err(|e| UiError::from_room(&e))?;
        active.mic_wanted = on;
        Ok(active.local())
    }

    /// Turns the camera on or off.
    pub async fn set_camera(&self, on: bool) -> Result<LocalState, UiError> {
        let mut room = self.room.lock().await;
        let active = room.as_mut().ok_or_else(UiError::not_in_room)?;
        if on && active.handle.camera_track_id().is_none() {
            let input = self.video_input(active.camera.clone());
            active
                .handle
                .switch_camera(input)
                .await
                .map_err(|e| UiError::from_room(&e))?;
        }
        active
            .handle
            .set_camera_enabled(on)
            .await
            .map_err(|e| UiError::from_room(&e))?;
        active.camera_wanted = on;
        self.hub.set_local(active.handle.local_video());
        Ok(active.local())
    }

    /// Switches devices in a room (in the lobby the choice travels with `join`'s settings).
    pub async fn select_devices(
        &self,
        camera: Option<String>,
        microphone: Option<String>,
        speaker: Option<String>,
    ) -> Result<LocalState, UiError> {
        let mut room = self.room.lock().await;
        let Some(active) = room.as_mut() else {
            return Ok(LocalState::default());
        };
        if camera != active.camera {
            let input = self.video_input(camera.clone());
            active
                .handle
                .switch_camera(input)
                .await
                .map_err(|e| UiError::from_room(&e))?;
            active.camera = camera;
            self.hub.set_local(active.handle.local_video());
        }
        if microphone != active.microphone {
            let input = self.audio_input(microphone.clone());
            active
                .handle
                .switch_microphone(input)
                .await
                .map_err(|e| UiError::from_room(&e))?;
            active.microphone = microphone;
        }
        let output = self.audio_output(speaker);
        active
            .handle
            .set_audio_output(output)
            .await
            .map_err(|e| UiError::from_room(&e))?;
        Ok(active.local())
    }

    /// What this machine can share. With our own picker (X11), thumbnails of every source
    /// follow on frame tracks `source:<id>` until [`AppState::close_screen_picker`],
    /// [`AppState::start_screen_share`], leaving, or a minute.
    pub async fn list_screen_sources(&self) -> Result<ScreenSourcesView, UiError> {
        if self.room.lock().await.is_none() {
            return Err(UiError::not_in_room());
        }
        let backend = detect(&EnvSnapshot::current());
        let listing = backend.clone();
        let sources = tokio::task::spawn_blocking(move || list_sources(&listing))
            .await
            .map_err(|e| UiError::internal(format!("listing screens failed: {e}")))?
            .map_err(|e| UiError::from_screen(&e))?;
        // Only while still in the room (a leave meanwhile stopped the thumbnails already).
        let room = self.room.lock().await;
        if room.is_none() {
            return Err(UiError::not_in_room());
        }
        if sources.picker == Picker::Ours {
            let ids = sources.sources.iter().map(|s| s.id.clone()).collect();
            self.thumbnails.start(ids, shooter(backend));
        }
        tracing::info!(
            sources = sources.sources.len(),
            picker = ?sources.picker,
            "screen sources listed"
        );
        Ok(ScreenSourcesView::from(&sources))
    }

    /// The picker closed without sharing.
    pub fn close_screen_picker(&self) {
        self.thumbnails.stop();
    }

    /// Shares `source_id` (one of [`AppState::list_screen_sources`]; `None`: the system's
    /// dialog picks, or the whole screen on X11) next to the camera.
    pub async fn start_screen_share(
        &self,
        source_id: Option<String>,
    ) -> Result<LocalState, UiError> {
        let _serial = self.screen_starting.try_lock().map_err(|_| {
            UiError::new(
                ErrorKind::Busy,
                "A screen share is starting already.",
                Some("Wait a moment."),
            )
        })?;
        self.thumbnails.stop();
        // Weak while the source opens: a leave meanwhile really leaves.
        let handle = {
            let room = self.room.lock().await;
            let active = room.as_ref().ok_or_else(UiError::not_in_room)?;
            if active.handle.screen_track_id().is_some() {
                return Err(UiError::from_room(&RoomError::ScreenShareActive));
            }
            Arc::downgrade(&active.handle)
        };
        // Without holding the room: the system's dialog may wait for the person.
        let backend: ScreenBackend = detect(&EnvSnapshot::current());
        let opened = open_source(&backend, source_id.as_deref())
            .await
            .map_err(|e| UiError::from_screen(&e))?;
        let settings = VideoSendSettings {
            width: opened.width,
            height: opened.height,
            fps: SCREEN_FPS,
            target_kbps: SCREEN_KBPS,
        };
        let room = self.room.lock().await;
        // Still the room it was opened for (not left meanwhile).
        let active = room
            .as_ref()
            .filter(|a| Weak::ptr_eq(&Arc::downgrade(&a.handle), &handle))
            .ok_or_else(UiError::not_in_room)?;
        let title = opened.title;
        active
            .handle
            .start_screen_share(opened.source, settings)
            .await
            .map_err(|e| UiError::from_room(&e))?;
        self.hub.set_screen(active.handle.screen_preview());
        tracing::info!(%title, width = settings.width, height = settings.height, "sharing a screen");
        Ok(active.local())
    }

    /// Stops our screen share (not sharing is no error: that is what was asked for).
    pub async fn stop_screen_share(&self) -> Result<LocalState, UiError> {
        let room = self.room.lock().await;
        let active = room.as_ref().ok_or_else(UiError::not_in_room)?;
        match active.handle.stop_screen_share().await {
            Ok(()) | Err(RoomError::NoScreenShare) => {}
            Err(e) => return Err(UiError::from_room(&e)),
        }
        self.hub.set_screen(active.handle.screen_preview());
        Ok(active.local())
    }

    /// Runs `call` on the current room's handle (chat, hands, moderation).
    pub async fn room_call<F, Fut, T>(&self, call: F) -> Result<T, UiError>
    where
        F: FnOnce(Arc<RoomHandle>) -> Fut,
        Fut: std::future::Future<Output = Result<T, RoomError>>,
    {
        let handle = {
            let room = self.room.lock().await;
            let active = room.as_ref().ok_or_else(UiError::not_in_room)?;
            Arc::clone(&active.handle)
        };
        call(handle).await.map_err(|e| UiError::from_room(&e))
    }

    /// Viewer hints: how large the UI shows remote video tracks (only the changes; the engine
    /// coalesces repeats, splits long lists and tells them again after a rejoin).
    pub async fn set_view_sizes(&self, views: Vec<ViewSizeView>) -> Result<(), UiError> {
        if views.len() > MAX_VIEW_SIZES_PER_CALL {
            return Err(UiError::new(
                ErrorKind::Rejected,
                format!(
                    "{} view sizes at once (at most {MAX_VIEW_SIZES_PER_CALL}).",
                    views.len()
                ),
                None,
            ));
        }
        let views = views.into_iter().map(Into::into).collect();
        self.room_call(|room| async move { room.set_view_sizes(views).await })
            .await
    }

    /// Moderators: an invite link to the room, valid for `ttl_secs`.
    pub async fn create_invite(
        &self,
        ttl_secs: u64,
        moderator: bool,
    ) -> Result<crate::api::InviteView, UiError> {
        let (server_url, room) = {
            let active = self.room.lock().await;
            let active = active.as_ref().ok_or_else(UiError::not_in_room)?;
            (active.server_url.clone(), active.room.clone())
        };
        let ttl = std::time::Duration::from_secs(ttl_secs);
        let invite = self
            .room_call(|room| async move { room.create_invite(ttl, moderator).await })
            .await?;
        crate::invite::invite_view(&server_url, &room, invite)
    }

    /// A moderator turned our microphone or camera off: the room wants it off now too.
    async fn moderated(&self, action: ModerationView) -> Option<LocalState> {
        let mut room = self.room.lock().await;
        let active = room.as_mut()?;
        match action {
            ModerationView::MuteMicrophone => active.mic_wanted = false,
            ModerationView::StopCamera => active.camera_wanted = false,
            ModerationView::StopScreen | ModerationView::LowerHand => {}
        }
        Some(active.local())
    }

    async fn local_state(&self) -> Option<LocalState> {
        self.room.lock().await.as_ref().map(ActiveRoom::local)
    }

    /// The room ended by itself (lost for good): forget it.
    async fn room_closed(&self, handle: &Weak<RoomHandle>) {
        let mut room = self.room.lock().await;
        let same = room
            .as_ref()
            .is_some_and(|a| Weak::ptr_eq(&Arc::downgrade(&a.handle), handle));
        if same && let Some(active) = room.take() {
            drop(room);
            self.end_room(active).await;
        }
    }
}

fn busy() -> UiError {
    UiError::new(
        ErrorKind::Busy,
        "Already joining or leaving.",
        Some("Wait a moment."),
    )
}

fn poisoned<T>(_: T) -> UiError {
    UiError::internal("internal state is unusable (a task panicked)")
}

/// Checks what the person typed before going to the network.
fn check_settings(s: &Settings) -> Result<(), UiError> {
    let url = s.server_url.trim();
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        return Err(UiError::new(
            ErrorKind::Unreachable,
            format!("\"{url}\" is not a server address."),
            Some("Use ws://host:port/ws (or wss:// behind TLS), e.g. ws://127.0.0.1:8080/ws."),
        ));
    }
    if s.room.trim().is_empty() {
        return Err(UiError::new(
            ErrorKind::Refused,
            "The room needs a name.",
            Some("Type any name; everyone using it meets in the same room."),
        ));
    }
    if s.name.trim().is_empty() {
        return Err(UiError::new(
            ErrorKind::Refused,
            "Your display name is empty.",
            Some("Type the name the others will see."),
        ));
    }
    Ok(())
}

fn emit(app: &AppHandle, event: UiEvent) {
    if let Err(e) = app.emit("room", event) {
        tracing::warn!("cannot send an event to the UI: {e}");
    }
}

/// Maps engine events to UI events until the room ends.
async fn pump_events(
    app: AppHandle,
    handle: Weak<RoomHandle>,
    mut events: mpsc::Receiver<RoomEvent>,
) {
    let state = app.state::<AppState>();
    let mut failed = false;
    // Why a moderator sent us away, shown when the room closes.
    let mut sent_away: Option<UiError> = None;
    let mut names: std::collections::HashMap<String, String> = Default::default();
    while let Some(event) = events.recv().await {
        match &event {
            RoomEvent::Joined { peers, .. } => {
                names = peers
                    .iter()
                    .map(|p| (p.peer_id.to_string(), p.display_name.clone()))
                    .collect();
            }
            RoomEvent::PeerJoined(p) | RoomEvent::PeerUpdated(p) => {
                names.insert(p.peer_id.to_string(), p.display_name.clone());
            }
            _ => {}
        }
        let name_of = |id: &videoroom_protocol::PeerId| {
            names
                .get(id.as_str())
                .cloned()
                .unwrap_or_else(|| "A moderator".to_owned())
        };
        let ui = match event {
            RoomEvent::Joined {
                peer_id,
                peers,
                room,
            } => {
                state.hub.clear_remote();
                // A rejoin republishes our screen share.
                state
                    .hub
                    .set_screen(handle.upgrade().and_then(|h| h.screen_preview()));
                UiEvent::Joined {
                    self_id: peer_id.to_string(),
                    peers: peers.iter().map(PeerView::from).collect(),
                    room: RoomInfo::from(&room),
                }
            }
            RoomEvent::ActiveSpeakers(peer_ids) => UiEvent::ActiveSpeakers {
                peer_ids: peer_ids.iter().map(ToString::to_string).collect(),
            },
            RoomEvent::Chat(message) => UiEvent::Chat {
                message: ChatView::from(&message),
            },
            RoomEvent::RoomLocked { locked, by } => UiEvent::RoomLocked {
                locked,
                by: by.map(|b| b.to_string()),
            },
            RoomEvent::Moderated { action, by } => {
                let Some(action) = ModerationView::from_action(action) else {
                    continue;
                };
                emit(
                    &app,
                    UiEvent::Moderated {
                        action,
                        by: by.to_string(),
                    },
                );
                if let Some(local) = state.moderated(action).await {
                    emit(&app, UiEvent::Local(local));
                }
                continue;
            }
            RoomEvent::Removed { by, reason } => {
                let who = name_of(&by);
                sent_away = Some(UiError::new(
                    ErrorKind::Removed,
                    match reason {
                        Some(reason) => format!("{who} removed you from the room: {reason}"),
                        None => format!("{who} removed you from the room."),
                    },
                    Some("You can join again unless the room is locked."),
                ));
                continue;
            }
            RoomEvent::MeetingEnded { by } => {
                sent_away = Some(UiError::new(
                    ErrorKind::MeetingEnded,
                    format!("{} ended the meeting for everyone.", name_of(&by)),
                    None,
                ));
                continue;
            }
            RoomEvent::PeerJoined(peer) => UiEvent::PeerJoined {
                peer: PeerView::from(&peer),
            },
            RoomEvent::PeerLeft { peer_id } => UiEvent::PeerLeft {
                peer_id: peer_id.to_string(),
            },
            RoomEvent::PeerUpdated(peer) => UiEvent::PeerUpdated {
                peer: PeerView::from(&peer),
            },
            RoomEvent::TrackAdded(track) => {
                if track.kind == MediaKind::Video
                    && let Some(video) = handle
                        .upgrade()
                        .and_then(|h| h.remote_video(&track.track_id))
                {
                    state
                        .hub
                        .add_remote(track.track_id.to_string(), video.frames());
                }
                UiEvent::TrackAdded {
                    track_id: track.track_id.to_string(),
                    peer_id: track.peer_id.to_string(),
                    kind: track.kind.into(),
                    source: track.source.into(),
                    muted: track.muted,
                }
            }
            RoomEvent::TrackReady { track_id } => UiEvent::TrackReady {
                track_id: track_id.to_string(),
            },
            RoomEvent::TrackRemoved { track_id } => {
                state.hub.remove_remote(track_id.as_str());
                UiEvent::TrackRemoved {
                    track_id: track_id.to_string(),
                }
            }
            RoomEvent::TrackMuted { track_id } => UiEvent::TrackMuted {
                track_id: track_id.to_string(),
                muted: true,
            },
            RoomEvent::TrackUnmuted { track_id } => UiEvent::TrackMuted {
                track_id: track_id.to_string(),
                muted: false,
            },
            RoomEvent::ScreenShareEnded { reason } => {
                // What is shared now (a new share may have started since this one ended).
                state
                    .hub
                    .set_screen(handle.upgrade().and_then(|h| h.screen_preview()));
                let (reason, detail) = ScreenShareEndView::from_end(&reason);
                emit(&app, UiEvent::ScreenShareEnded { reason, detail });
                if let Some(local) = state.local_state().await {
                    emit(&app, UiEvent::Local(local));
                }
                continue;
            }
            RoomEvent::ConnectionState(s) => {
                failed |= s == ConnectionState::Failed;
                UiEvent::Connection { state: s.into() }
            }
            RoomEvent::Error(e) => {
                let device = matches!(e, RoomError::Device(_));
                emit(
                    &app,
                    UiEvent::Error {
                        error: UiError::from_room(&e),
                    },
                );
                if device {
                    // A device that failed may have taken its track with it.
                    if let Some(local) = state.local_state().await {
                        emit(&app, UiEvent::Local(local));
                    }
                }
                continue;
            }
            RoomEvent::Closed { reason } => {
                let error = sent_away.take().or_else(|| {
                    failed.then(|| {
                        UiError::new(
                            ErrorKind::Unreachable,
                            format!("Lost the connection to the room: {reason}."),
                            Some("Check the network and the server, then join again."),
                        )
                    })
                });
                state.room_closed(&handle).await;
                emit(&app, UiEvent::Closed { reason, error });
                return;
            }
            other => {
                tracing::debug!(?other, "event not shown");
                continue;
            }
        };
        emit(&app, ui);
    }
    // The engine ended without `Closed` (the handle was dropped).
    state.room_closed(&handle).await;
    emit(
        &app,
        UiEvent::Closed {
            reason: "left".into(),
            error: None,
        },
    );
}

/// Sends audio levels every [`LEVEL_INTERVAL`] while the room lives.
async fn level_ticker(app: AppHandle, handle: Weak<RoomHandle>) {
    let mut tick = tokio::time::interval(LEVEL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let Some(handle) = handle.upgrade() else {
            return;
        };
        let mic = handle
            .microphone_level()
            .map(|(dbov, speaking)| Level { dbov, speaking });
        let tracks = handle
            .remote_audios()
            .iter()
            .map(|a| {
                let stats = a.stats();
                TrackLevel {
                    track_id: a.track_id().to_string(),
                    level: Level {
                        dbov: stats.level_dbov,
                        speaking: stats.speaking,
                    },
                }
            })
            .collect();
        drop(handle);
        emit(&app, UiEvent::Levels { mic, tracks });
    }
}

/// Where settings live.
pub fn settings_path(app: &AppHandle, launch: &Launch) -> Result<PathBuf, UiError> {
    let dir = match &launch.config_dir {
        Some(dir) => dir.clone(),
        None => app
            .path()
            .app_config_dir()
            .map_err(|e| UiError::internal(format!("no config directory: {e}")))?,
    };
    Ok(dir.join("settings.json"))
}

/// Certificates trusted by fingerprint, beside the settings.
pub fn trust_store(app: &AppHandle, launch: &Launch) -> Result<crate::trust::TrustStore, UiError> {
    let settings = settings_path(app, launch)?;
    Ok(crate::trust::TrustStore::new(
        settings.with_file_name("trusted-servers.json"),
    ))
}

/// The saved settings, or defaults (a broken file is reported and replaced on the next save).
pub fn load_settings(path: &std::path::Path, launch: &Launch) -> Settings {
    let mut settings = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!("{}: {e}; using defaults", path.display());
            Settings::default()
        }),
        Err(_) => {
            let mut s = Settings::default();
            if let Some(server) = &launch.default_server {
                s.server_url = server.clone();
            }
            s.name = std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty() && u != "root")
                .unwrap_or_default();
            s
        }
    };
    if let Some((url, room, name)) = &launch.autojoin {
        settings.server_url = url.clone();
        settings.room = room.clone();
        settings.name = name.clone();
    }
    settings
}

/// Writes the settings (atomically: a crash leaves the old file).
pub fn save_settings(path: &std::path::Path, settings: &Settings) -> Result<(), UiError> {
    let io = |e: std::io::Error| {
        UiError::new(
            ErrorKind::Internal,
            format!("Cannot save settings to {}: {e}.", path.display()),
            Some("Check that the directory is writable."),
        )
    };
    let json = serde_json::to_vec_pretty(settings).map_err(|e| UiError::internal(e.to_string()))?;
    crate::trust::write_private(path, &json).map_err(io)
}

/// The machine's real cameras, microphones and speakers (probes V4L2 and ALSA, which can
/// block for a moment).
pub fn detect_devices() -> Devices {
    Devices {
        cameras: list_cameras().into_iter().map(Into::into).collect(),
        microphones: list_microphones().into_iter().map(Into::into).collect(),
        speakers: list_speakers().into_iter().map(Into::into).collect(),
        fake: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_survive_garbage() {
        let dir = std::env::temp_dir().join(format!("vr-settings-{}", std::process::id()));
        let path = dir.join("settings.json");
        let launch = Launch::from_env();
        let s = Settings {
            room: "standup".into(),
            name: "Ada".into(),
            camera_on: false,
            ..Settings::default()
        };
        save_settings(&path, &s).expect("save");
        assert_eq!(load_settings(&path, &launch), s);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("saved")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "settings may hold a token: this user only"
        );
        std::fs::write(&path, b"{not json").expect("write garbage");
        assert_eq!(load_settings(&path, &launch).room, Settings::default().room);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_addresses_and_empty_names_are_refused_before_connecting() {
        let ok = Settings {
            name: "Ada".into(),
            ..Settings::default()
        };
        assert!(check_settings(&ok).is_ok());
        let e = check_settings(&Settings {
            server_url: "http://x".into(),
            ..ok.clone()
        })
        .expect_err("http");
        assert!(e.hint.is_some_and(|h| h.contains("ws://")));
        assert!(
            check_settings(&Settings {
                name: " ".into(),
                ..ok.clone()
            })
            .is_err()
        );
        assert!(
            check_settings(&Settings {
                room: String::new(),
                ..ok
            })
            .is_err()
        );
    }
}
