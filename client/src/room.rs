//! The room engine: [`Room::join`] connects, joins, publishes and then runs one task per room
//! that owns the signaling socket and the negotiation, and reports what happens as
//! [`RoomEvent`]s. The application acts through the [`RoomHandle`].
//!
//! Negotiation follows `docs/protocol.md`: the client publishes with its own `sdp_offer`, answers
//! the server's offers, and ignores a server offer while its own is unanswered (the glare rule;
//! the server rolls back and re-offers).

use crate::media::{VideoSource, Vp8Error};
use crate::peer::{self, PcEvent, PeerError};
use crate::publish::{self, SendControl, SendStats, VideoSendSettings};
use crate::receive::{self, ReceiveEvent, RemoteVideo, VideoSlot};
use crate::signaling::{Signaling, SignalingError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;
use videoroom_protocol::{
    ClientMessage, ErrorCode, IceCandidate, MediaKind, PROTOCOL_VERSION, PeerId, PeerInfo,
    PublishedTrack, RoomName, ServerMessage, TrackId, TrackInfo, TrackSource,
};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription,
};

/// Candidates from the server kept until its description is applied; more are dropped.
const MAX_PENDING_CANDIDATES: usize = 64;
/// Interval of `ping` keep-alives on the signaling socket.
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// PeerConnection events waiting for the room task.
const PC_EVENT_QUEUE: usize = 256;

/// What to publish as the camera track.
pub struct VideoPublish {
    /// Where frames come from. It is sampled at `fps` (a device source may block until a frame
    /// is ready; it runs on the blocking pool).
    pub source: Box<dyn VideoSource>,
    /// Frame width (the source must produce this size).
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Encoder target bitrate in kbit/s.
    pub target_kbps: u32,
}

impl std::fmt::Debug for VideoPublish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoPublish")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .field("target_kbps", &self.target_kbps)
            .finish_non_exhaustive()
    }
}

/// How to join.
#[derive(Debug)]
#[non_exhaustive]
pub struct JoinOptions {
    /// Publish a camera track.
    pub video: Option<VideoPublish>,
    /// Bound on opening the WebSocket.
    pub connect_timeout: Duration,
    /// Bound on the server's answer to `join`.
    pub join_timeout: Duration,
    /// Local UDP addresses for media. `0.0.0.0:0` (the default) gathers every non-loopback
    /// interface on an ephemeral port; tests against a loopback server use `127.0.0.1:0`.
    pub udp_addrs: Vec<SocketAddr>,
    /// Capacity of the event channel (see [`RoomHandle::dropped_events`]).
    pub event_capacity: usize,
}

impl Default for JoinOptions {
    fn default() -> Self {
        Self {
            video: None,
            connect_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            udp_addrs: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            event_capacity: 256,
        }
    }
}

impl JoinOptions {
    /// Publishes `source` as the camera at the given size, rate and bitrate.
    pub fn with_video(
        mut self,
        source: Box<dyn VideoSource>,
        width: u32,
        height: u32,
        fps: u32,
        target_kbps: u32,
    ) -> Self {
        self.video = Some(VideoPublish {
            source,
            width,
            height,
            fps,
            target_kbps,
        });
        self
    }

    /// Binds media sockets to these addresses.
    pub fn with_udp_addrs(mut self, addrs: Vec<SocketAddr>) -> Self {
        self.udp_addrs = addrs;
        self
    }
}

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The server could not be reached (connection refused, DNS, TLS, WebSocket upgrade, timeout).
    #[error("server unreachable: {0}")]
    Unreachable(#[source] SignalingError),
    /// The server refused the join (`join_error`): room full, invalid name, unsupported version…
    #[error("join refused ({code:?}): {message}")]
    Refused {
        /// The server's code, e.g. [`ErrorCode::RoomFull`].
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The server did not answer `join` in time.
    #[error("no answer to `join` within {0:?}")]
    Timeout(Duration),
    /// The server broke the protocol (unexpected or invalid message, socket closed during join).
    #[error("protocol error during join: {0}")]
    Protocol(String),
    /// The media connection could not be set up.
    #[error("media setup failed: {0}")]
    Media(#[from] PeerError),
    /// The video encoder could not be created with the requested settings.
    #[error("video encoder: {0}")]
    Encoder(#[from] Vp8Error),
}

impl JoinError {
    /// The server's code, when the server refused the join.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            JoinError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Errors reported while in the room (as [`RoomEvent::Error`]) or by [`RoomHandle`] calls.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The server answered a message with `error`.
    #[error("server error ({code:?}): {message}")]
    Server {
        /// The server's code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The signaling connection failed or the server sent something invalid.
    #[error("signaling: {0}")]
    Signaling(String),
    /// Negotiation or the media connection failed.
    #[error("media: {0}")]
    Media(String),
    /// This client publishes no camera track.
    #[error("no camera track is published")]
    NoCamera,
    /// The room task has ended (left, or the connection closed).
    #[error("not in the room any more")]
    Closed,
}

/// The state of the connection to the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Media connection being established.
    Connecting,
    /// Media flowing.
    Connected,
    /// Media connection interrupted; ICE may still recover.
    Reconnecting,
    /// Media connection failed or closed.
    Failed,
}

/// What happens in the room.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RoomEvent {
    /// Joined: our id and the others already present (always the first event).
    Joined {
        /// Our id.
        peer_id: PeerId,
        /// The others.
        peers: Vec<PeerInfo>,
    },
    /// Someone joined.
    PeerJoined(PeerInfo),
    /// Someone left.
    PeerLeft {
        /// Who.
        peer_id: PeerId,
    },
    /// Someone changed name or metadata.
    PeerUpdated(PeerInfo),
    /// A remote track was published (or was already published when we joined). For video, its
    /// frames are available through [`RoomHandle::remote_video`] from now on.
    TrackAdded(TrackInfo),
    /// The first frame of a remote video track was decoded.
    TrackReady {
        /// The track.
        track_id: TrackId,
    },
    /// A remote track was unpublished.
    TrackRemoved {
        /// The track.
        track_id: TrackId,
    },
    /// A remote track was muted by its publisher.
    TrackMuted {
        /// The track.
        track_id: TrackId,
    },
    /// A remote track was unmuted.
    TrackUnmuted {
        /// The track.
        track_id: TrackId,
    },
    /// The media connection changed state.
    ConnectionState(ConnectionState),
    /// Something failed; the room goes on.
    Error(RoomError),
    /// The room session ended (we left, the server closed it, or the socket failed). Last event.
    Closed {
        /// Why.
        reason: String,
    },
}

/// Entry point.
#[derive(Debug)]
pub struct Room;

impl Room {
    /// Connects to `server_url` (`ws://host:port/ws`), joins `room` as `display_name`, starts
    /// publishing what `options` says, and returns the handle and the event stream. The first
    /// event is [`RoomEvent::Joined`], followed by a [`RoomEvent::TrackAdded`] per track already
    /// in the room.
    pub async fn join(
        server_url: &str,
        room: &str,
        display_name: &str,
        options: JoinOptions,
    ) -> Result<(RoomHandle, mpsc::Receiver<RoomEvent>), JoinError> {
        let mut signaling = Signaling::connect(server_url, options.connect_timeout)
            .await
            .map_err(JoinError::Unreachable)?;
        signaling
            .send(&ClientMessage::Join {
                protocol_version: PROTOCOL_VERSION,
                room: RoomName::new(room),
                display_name: display_name.to_owned(),
                metadata: None,
            })
            .await
            .map_err(JoinError::Unreachable)?;
        let (peer_id, peers, tracks, ice_servers) =
            match wait_for_join(&mut signaling, options.join_timeout).await {
                Ok(joined) => joined,
                Err(e) => {
                    signaling.close().await;
                    return Err(e);
                }
            };
        let span = tracing::info_span!("room", room, peer = %peer_id);
        async move {
            tracing::info!(peers = peers.len(), tracks = tracks.len(), "joined");
            let (pc_events_tx, pc_events) = mpsc::channel(PC_EVENT_QUEUE);
            let pc =
                peer::build_peer_connection(&ice_servers, &options.udp_addrs, pc_events_tx).await?;
            let (connected_tx, connected_rx) = watch::channel(false);
            let mut tasks = Vec::new();
            let mut declared = Vec::new();
            let mut camera = None;
            if let Some(video) = options.video {
                let settings = VideoSendSettings {
                    width: video.width,
                    height: video.height,
                    fps: video.fps,
                    target_kbps: video.target_kbps,
                };
                let encoder = publish::new_encoder(&settings)?;
                let track_id = TrackId::new(format!("{:08x}-cam", rand::random::<u32>()));
                let ssrc = rand::random::<u32>() | 1;
                let (track, init) =
                    peer::rtp_track(peer_id.as_str(), track_id.as_str(), MediaKind::Video, ssrc);
                let track = Arc::new(track);
                pc.add_transceiver_from_track(
                    Arc::clone(&track) as Arc<dyn TrackLocal>,
                    Some(init),
                )
                .await
                .map_err(PeerError::webrtc("add the camera transceiver"))?;
                let control = Arc::new(SendControl::new(true));
                tasks.extend(publish::spawn_video_sender(
                    track,
                    video.source,
                    encoder,
                    settings,
                    ssrc,
                    Arc::clone(&control),
                    connected_rx,
                ));
                declared.push(PublishedTrack {
                    track_id: track_id.clone(),
                    source: TrackSource::Camera,
                    muted: false,
                });
                camera = Some(LocalCamera { track_id, control });
            }

            let (events_tx, events_rx) = mpsc::channel(options.event_capacity.max(1));
            let shared = Arc::new(Shared {
                videos: Mutex::new(HashMap::new()),
                dropped_events: AtomicU64::new(0),
            });
            let events = EventSink {
                tx: events_tx,
                shared: Arc::clone(&shared),
            };
            events.emit(RoomEvent::Joined {
                peer_id: peer_id.clone(),
                peers,
            });
            let (ready_tx, ready_rx) = mpsc::channel(64);
            let (commands_tx, commands) = mpsc::channel(16);
            let mut actor = RoomTask {
                signaling,
                pc,
                pc_events,
                commands,
                ready_tx,
                ready_rx,
                events,
                shared: Arc::clone(&shared),
                tracks: HashMap::new(),
                receivers: HashMap::new(),
                camera: camera.clone(),
                declared,
                making_offer: false,
                remote_set: false,
                pending_candidates: Vec::new(),
                connected: connected_tx,
                tasks,
                next_ping: 0,
            };
            for info in tracks {
                actor.add_track(info);
            }
            if !actor.declared.is_empty() {
                actor.offer().await?;
            }
            actor
                .events
                .emit(RoomEvent::ConnectionState(ConnectionState::Connecting));
            let task = tokio::spawn(actor.run().in_current_span());
            Ok((
                RoomHandle {
                    peer_id,
                    camera,
                    commands: commands_tx,
                    shared,
                    task: Some(task),
                },
                events_rx,
            ))
        }
        .instrument(span)
        .await
    }
}

type Joined = (
    PeerId,
    Vec<PeerInfo>,
    Vec<TrackInfo>,
    Vec<videoroom_protocol::IceServer>,
);

async fn wait_for_join(signaling: &mut Signaling, timeout: Duration) -> Result<Joined, JoinError> {
    let answer = async {
        loop {
            match signaling.recv().await {
                Ok(Some(ServerMessage::Joined {
                    peer_id,
                    peers,
                    tracks,
                    ice_servers,
                    ..
                })) => return Ok((peer_id, peers, tracks, ice_servers)),
                Ok(Some(ServerMessage::JoinError { code, message })) => {
                    return Err(JoinError::Refused { code, message });
                }
                Ok(Some(ServerMessage::Error { code, message })) => {
                    return Err(JoinError::Protocol(format!(
                        "server error ({code:?}) instead of `joined`: {message}"
                    )));
                }
                Ok(Some(ServerMessage::Closing { reason })) => {
                    return Err(JoinError::Protocol(format!(
                        "server is closing the connection: {reason}"
                    )));
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(JoinError::Protocol(
                        "server closed the connection before answering `join`".into(),
                    ));
                }
                Err(e) => return Err(JoinError::Protocol(e.to_string())),
            }
        }
    };
    tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| JoinError::Timeout(timeout))?
}

#[derive(Debug, Clone)]
struct LocalCamera {
    track_id: TrackId,
    control: Arc<SendControl>,
}

#[derive(Debug)]
struct Shared {
    videos: Mutex<HashMap<TrackId, VideoSlot>>,
    dropped_events: AtomicU64,
}

impl Shared {
    fn videos(&self) -> std::sync::MutexGuard<'_, HashMap<TrackId, VideoSlot>> {
        // The map stays consistent even if a holder panicked: every update is a single insert
        // or remove.
        self.videos.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending end of the event stream. Decision when full: the event is dropped and counted
/// (the room task never waits on the application), see [`RoomHandle::dropped_events`].
#[derive(Debug)]
struct EventSink {
    tx: mpsc::Sender<RoomEvent>,
    shared: Arc<Shared>,
}

impl EventSink {
    fn emit(&self, event: RoomEvent) {
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
}

enum Command {
    Leave(oneshot::Sender<()>),
    SetCamera(bool, oneshot::Sender<Result<(), RoomError>>),
}

/// The application's handle on a joined room. Dropping it leaves the room.
#[derive(Debug)]
pub struct RoomHandle {
    peer_id: PeerId,
    camera: Option<LocalCamera>,
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl RoomHandle {
    /// Our peer id.
    pub fn peer_id(&self) -> &PeerId {
        &self.peer_id
    }

    /// The id of our camera track, if we publish one.
    pub fn camera_track_id(&self) -> Option<&TrackId> {
        self.camera.as_ref().map(|c| &c.track_id)
    }

    /// Counters of our camera track.
    pub fn camera_stats(&self) -> Option<SendStats> {
        self.camera.as_ref().map(|c| c.control.stats())
    }

    /// A remote video track's frames and counters (available from its `TrackAdded` until its
    /// `TrackRemoved`).
    pub fn remote_video(&self, track_id: &TrackId) -> Option<RemoteVideo> {
        self.shared.videos().get(track_id).map(VideoSlot::subscribe)
    }

    /// Every remote video track.
    pub fn remote_videos(&self) -> Vec<RemoteVideo> {
        self.shared
            .videos()
            .values()
            .map(VideoSlot::subscribe)
            .collect()
    }

    /// Events dropped because the event channel was full.
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped_events.load(Ordering::Relaxed)
    }

    /// Mutes (`false`) or unmutes (`true`) our camera: tells the room (`update_track`) and stops
    /// or resumes sending frames (resuming starts with a keyframe).
    pub async fn set_camera_enabled(&self, enabled: bool) -> Result<(), RoomError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::SetCamera(enabled, tx))
            .await
            .map_err(|_| RoomError::Closed)?;
        rx.await.map_err(|_| RoomError::Closed)?
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

/// The room task: owns the socket, the PeerConnection and the negotiation state.
struct RoomTask {
    signaling: Signaling,
    pc: Arc<dyn PeerConnection>,
    pc_events: mpsc::Receiver<PcEvent>,
    commands: mpsc::Receiver<Command>,
    ready_tx: mpsc::Sender<ReceiveEvent>,
    ready_rx: mpsc::Receiver<ReceiveEvent>,
    events: EventSink,
    shared: Arc<Shared>,
    tracks: HashMap<TrackId, TrackInfo>,
    receivers: HashMap<TrackId, JoinHandle<()>>,
    camera: Option<LocalCamera>,
    declared: Vec<PublishedTrack>,
    /// Our offer is out and unanswered (server offers are ignored meanwhile: glare rule).
    making_offer: bool,
    remote_set: bool,
    pending_candidates: Vec<RTCIceCandidateInit>,
    connected: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    next_ping: u64,
}

/// How the room task's loop ended.
enum Exit {
    Left(Option<oneshot::Sender<()>>),
    Closed(String),
}

impl RoomTask {
    async fn run(mut self) {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let exit = loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Leave(done)) => break Exit::Left(Some(done)),
                    // The handle was dropped: leave.
                    None => break Exit::Left(None),
                    Some(Command::SetCamera(enabled, reply)) => {
                        let result = self.set_camera(enabled).await;
                        let _ = reply.send(result);
                    }
                },
                message = self.signaling.recv() => match message {
                    Ok(Some(message)) => {
                        if let Some(exit) = self.on_server_message(message).await {
                            break exit;
                        }
                    }
                    Ok(None) => break Exit::Closed("the server closed the connection".into()),
                    Err(SignalingError::InvalidMessage(e)) => {
                        tracing::warn!("invalid server message: {e}");
                        self.events.emit(RoomEvent::Error(RoomError::Signaling(e)));
                    }
                    Err(e) => break Exit::Closed(e.to_string()),
                },
                Some(event) = self.pc_events.recv() => self.on_pc_event(event).await,
                Some(ReceiveEvent::FirstFrame(track_id)) = self.ready_rx.recv() => {
                    tracing::info!(track = %track_id, "first frame decoded");
                    self.events.emit(RoomEvent::TrackReady { track_id });
                }
                _ = ping.tick() => {
                    self.next_ping += 1;
                    if let Err(e) = self.signaling.send(&ClientMessage::Ping { id: self.next_ping }).await {
                        break Exit::Closed(e.to_string());
                    }
                }
            }
        };
        let reason = match exit {
            Exit::Left(done) => {
                tracing::info!("leaving");
                let _ = self.signaling.send(&ClientMessage::Leave).await;
                self.signaling.close().await;
                self.shutdown().await;
                self.events.emit(RoomEvent::Closed {
                    reason: "left the room".into(),
                });
                if let Some(done) = done {
                    let _ = done.send(());
                }
                return;
            }
            Exit::Closed(reason) => reason,
        };
        tracing::warn!(reason, "room session ended");
        self.signaling.close().await;
        self.shutdown().await;
        self.events
            .emit(RoomEvent::ConnectionState(ConnectionState::Failed));
        self.events.emit(RoomEvent::Closed { reason });
    }

    async fn shutdown(&mut self) {
        let _ = self.connected.send(false);
        for task in self.tasks.drain(..) {
            task.abort();
        }
        for (_, task) in self.receivers.drain() {
            task.abort();
        }
        if let Err(e) = self.pc.close().await {
            tracing::debug!("closing the PeerConnection: {e}");
        }
        self.shared.videos().clear();
    }

    async fn send(&mut self, message: ClientMessage) {
        if let Err(e) = self.signaling.send(&message).await {
            // The read side sees the broken socket next and ends the session.
            tracing::debug!("send failed: {e}");
        }
    }

    fn media_error(&self, what: &str, e: impl std::fmt::Display) {
        tracing::warn!("{what}: {e}");
        self.events
            .emit(RoomEvent::Error(RoomError::Media(format!("{what}: {e}"))));
    }

    /// Sends our offer with the declared tracks.
    async fn offer(&mut self) -> Result<(), PeerError> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(PeerError::webrtc("create offer"))?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(PeerError::webrtc("apply own offer"))?;
        let Some(local) = self.pc.local_description().await else {
            return Err(PeerError::WebRtc {
                what: "read own offer",
                source: webrtc::error::Error::Other("no local description".into()),
            });
        };
        self.making_offer = true;
        let tracks = self.declared.clone();
        self.send(ClientMessage::SdpOffer {
            sdp: local.sdp,
            tracks,
        })
        .await;
        Ok(())
    }

    async fn set_camera(&mut self, enabled: bool) -> Result<(), RoomError> {
        let Some(camera) = self.camera.clone() else {
            return Err(RoomError::NoCamera);
        };
        camera.control.set_enabled(enabled);
        for t in self
            .declared
            .iter_mut()
            .filter(|t| t.track_id == camera.track_id)
        {
            t.muted = !enabled;
        }
        self.signaling
            .send(&ClientMessage::UpdateTrack {
                track_id: camera.track_id,
                muted: !enabled,
            })
            .await
            .map_err(|e| RoomError::Signaling(e.to_string()))
    }

    fn add_track(&mut self, info: TrackInfo) {
        if info.kind == MediaKind::Video {
            self.shared
                .videos()
                .entry(info.track_id.clone())
                .or_insert_with(|| VideoSlot::new(info.track_id.clone(), info.peer_id.clone()));
        }
        self.tracks.insert(info.track_id.clone(), info.clone());
        self.events.emit(RoomEvent::TrackAdded(info));
    }

    async fn on_server_message(&mut self, message: ServerMessage) -> Option<Exit> {
        match message {
            ServerMessage::SdpAnswer { sdp } => self.on_answer(sdp).await,
            ServerMessage::SdpOffer { sdp } => self.on_offer(sdp).await,
            ServerMessage::IceCandidate { candidate } => self.on_candidate(candidate).await,
            ServerMessage::PeerJoined { peer } => self.events.emit(RoomEvent::PeerJoined(peer)),
            ServerMessage::PeerLeft { peer_id } => {
                self.events.emit(RoomEvent::PeerLeft { peer_id })
            }
            ServerMessage::PeerUpdated { peer } => self.events.emit(RoomEvent::PeerUpdated(peer)),
            ServerMessage::TracksAdded { tracks } => {
                for info in tracks {
                    self.add_track(info);
                }
            }
            ServerMessage::TracksRemoved { track_ids } => {
                for track_id in track_ids {
                    self.tracks.remove(&track_id);
                    self.shared.videos().remove(&track_id);
                    if let Some(task) = self.receivers.remove(&track_id) {
                        task.abort();
                    }
                    self.events.emit(RoomEvent::TrackRemoved { track_id });
                }
            }
            ServerMessage::TrackUpdated { track } => {
                let was_muted = self.tracks.get(&track.track_id).map(|t| t.muted);
                let track_id = track.track_id.clone();
                let muted = track.muted;
                self.tracks.insert(track_id.clone(), track);
                if was_muted != Some(muted) {
                    self.events.emit(if muted {
                        RoomEvent::TrackMuted { track_id }
                    } else {
                        RoomEvent::TrackUnmuted { track_id }
                    });
                }
            }
            ServerMessage::Error { code, message } => {
                tracing::warn!(?code, message, "server error");
                self.events
                    .emit(RoomEvent::Error(RoomError::Server { code, message }));
            }
            ServerMessage::Closing { reason } => return Some(Exit::Closed(reason)),
            ServerMessage::Pong { .. } => {}
            other => tracing::debug!(?other, "unexpected message ignored"),
        }
        None
    }

    async fn on_answer(&mut self, sdp: String) {
        if !self.making_offer {
            tracing::warn!("`sdp_answer` without an offer of ours; ignored");
            return;
        }
        self.making_offer = false;
        let applied = match RTCSessionDescription::answer(sdp) {
            Ok(answer) => self.pc.set_remote_description(answer).await,
            Err(e) => Err(e),
        };
        match applied {
            Ok(()) => self.remote_applied().await,
            Err(e) => self.media_error("server answer could not be applied", e),
        }
    }

    async fn on_offer(&mut self, sdp: String) {
        if self.making_offer {
            // Glare: we win; the server rolls back and offers again after our answer.
            tracing::debug!("server offer crossed ours; ignored");
            return;
        }
        let offer = match RTCSessionDescription::offer(sdp) {
            Ok(offer) => offer,
            Err(e) => return self.media_error("server offer is not valid SDP", e),
        };
        if let Err(e) = self.pc.set_remote_description(offer).await {
            return self.media_error("server offer could not be applied", e);
        }
        self.remote_applied().await;
        let answer = match self.pc.create_answer(None).await {
            Ok(answer) => answer,
            Err(e) => return self.media_error("cannot answer the server offer", e),
        };
        if let Err(e) = self.pc.set_local_description(answer).await {
            return self.media_error("cannot apply own answer", e);
        }
        match self.pc.local_description().await {
            Some(local) => self.send(ClientMessage::SdpAnswer { sdp: local.sdp }).await,
            None => self.media_error("own answer", "missing after negotiation"),
        }
    }

    async fn remote_applied(&mut self) {
        self.remote_set = true;
        for candidate in std::mem::take(&mut self.pending_candidates) {
            if let Err(e) = self.pc.add_ice_candidate(candidate).await {
                tracing::debug!("buffered candidate refused: {e}");
            }
        }
    }

    async fn on_candidate(&mut self, c: IceCandidate) {
        if c.candidate.trim().is_empty() {
            return;
        }
        let init = videoroom_webrtc::to_rtc_candidate(c);
        if !self.remote_set {
            if self.pending_candidates.len() < MAX_PENDING_CANDIDATES {
                self.pending_candidates.push(init);
            } else {
                tracing::warn!("too many candidates before the server's description; dropped");
            }
            return;
        }
        if let Err(e) = self.pc.add_ice_candidate(init).await {
            tracing::debug!("server candidate refused: {e}");
        }
    }

    async fn on_pc_event(&mut self, event: PcEvent) {
        match event {
            PcEvent::LocalCandidate(init) => {
                let candidate = videoroom_webrtc::from_rtc_candidate(init);
                self.send(ClientMessage::IceCandidate { candidate }).await;
            }
            PcEvent::State(state) => {
                tracing::info!(%state, "media connection state");
                let mapped = match state {
                    RTCPeerConnectionState::Connected => ConnectionState::Connected,
                    RTCPeerConnectionState::Disconnected => ConnectionState::Reconnecting,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        ConnectionState::Failed
                    }
                    _ => ConnectionState::Connecting,
                };
                let _ = self.connected.send(mapped == ConnectionState::Connected);
                self.events.emit(RoomEvent::ConnectionState(mapped));
            }
            PcEvent::Track(track) => self.on_remote_track(track).await,
        }
    }

    async fn on_remote_track(&mut self, track: Arc<dyn TrackRemote>) {
        let track_id = TrackId::new(track.track_id().await);
        let peer_id = PeerId::new(track.stream_id().await);
        let kind = track.kind().await;
        let span = tracing::info_span!("remote_track", track = %track_id, from = %peer_id);
        if self
            .receivers
            .get(&track_id)
            .is_some_and(|t| !t.is_finished())
        {
            return;
        }
        let task = if kind == rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video {
            let slot = self
                .shared
                .videos()
                .entry(track_id.clone())
                .or_insert_with(|| VideoSlot::new(track_id.clone(), peer_id.clone()))
                .clone();
            tracing::debug!(parent: &span, "receiving video");
            tokio::spawn(
                receive::receive_video(track, slot, self.ready_tx.clone()).instrument(span),
            )
        } else {
            // Audio is not played yet: drain it so nothing backs up.
            tokio::spawn(
                async move {
                    while let Some(event) = track.poll().await {
                        if matches!(event, TrackRemoteEvent::OnEnded) {
                            break;
                        }
                    }
                }
                .instrument(span),
            )
        };
        self.receivers.insert(track_id, task);
    }
}

impl Drop for RoomTask {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.receivers.values() {
            task.abort();
        }
    }
}
