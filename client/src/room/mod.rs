//! The room engine: [`Room::join`] connects, joins, publishes and then runs one task per room
//! that owns the media session (signaling socket, PeerConnection, negotiation) and reports what
//! happens as [`RoomEvent`]s. The application acts through the [`RoomHandle`].
//!
//! Negotiation follows `docs/protocol.md`: the client publishes with its own `sdp_offer`, answers
//! the server's offers, and ignores a server offer while its own is unanswered (the glare rule;
//! the server rolls back and re-offers).
//!
//! Local media outlives a session: sources, encoders and their sending tasks keep running while
//! the room task replaces a lost session (socket closed, media connection failed) with a new one
//! ([`ConnectionState::Reconnecting`]), then binds the senders to the new session's tracks.
//! Remote media goes to per-track slots (video: latest decoded frame; audio: the [`Mixer`]
//! played by the playout thread) that also survive a reconnection when the track is still there.
//!
//! Chat, raised hands and moderation (what a person does besides media) are in `social.rs`.

mod social;

pub use social::{Invite, RoomInfo};

use crate::audio::{Mixer, Playout, RemoteAudio};
use crate::media::devices::{CameraSource, DeviceError, MicrophoneSource, SpeakerSink};
use crate::media::{
    AudioSink, AudioSource, NullSink, OpusConfig, OpusEncoder, OpusError, VideoSource, Vp8Error,
};
use crate::peer::{self, PcEvent, PeerError};
use crate::publish::{
    self, AudioControl, EndReports, SendStats, TrackBinding, VideoControl, VideoSendSettings,
};
use crate::receive::{self, ReceiveEvent, RemoteVideo, VideoSlot};
use crate::signaling::{Signaling, SignalingError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;
use videoroom_protocol::{
    ChatMessage, ClientMessage, ErrorCode, IceCandidate, MediaKind, ModerationAction,
    PROTOCOL_VERSION, PeerId, PeerInfo, PublishedTrack, RoomName, ServerMessage, TrackId,
    TrackInfo, TrackSource,
};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription,
    StatsSelector,
};

/// Candidates from the server kept until its description is applied; more are dropped.
const MAX_PENDING_CANDIDATES: usize = 64;
/// Interval of `ping` keep-alives on the signaling socket.
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// PeerConnection events waiting for the room task.
const PC_EVENT_QUEUE: usize = 256;
/// First wait between reconnection attempts; doubles up to [`RECONNECT_MAX_BACKOFF`].
const RECONNECT_FIRST_BACKOFF: Duration = Duration::from_millis(250);
const RECONNECT_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where the camera track's frames come from.
pub enum VideoInput {
    /// Any source (a pattern, a file, a custom device). It is sampled at the track's rate.
    Source(Box<dyn VideoSource>),
    /// A V4L2 camera: `None` is the first one.
    Camera {
        /// Device id from [`crate::media::devices::list_cameras`].
        device: Option<String>,
    },
}

impl std::fmt::Debug for VideoInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VideoInput::Source(_) => f.write_str("Source(..)"),
            VideoInput::Camera { device } => {
                f.debug_struct("Camera").field("device", device).finish()
            }
        }
    }
}

/// Where the microphone track's audio comes from.
pub enum AudioInput {
    /// Any source (a tone, a WAV file, a custom device).
    Source(Box<dyn AudioSource>),
    /// A microphone: `None` is the default one.
    Microphone {
        /// Device id from [`crate::media::devices::list_microphones`].
        device: Option<String>,
    },
}

impl std::fmt::Debug for AudioInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AudioInput::Source(_) => f.write_str("Source(..)"),
            AudioInput::Microphone { device } => f
                .debug_struct("Microphone")
                .field("device", device)
                .finish(),
        }
    }
}

/// Where the room's mixed audio is played.
pub enum AudioOutput {
    /// Nowhere (headless): decoded and mixed at real-time pace, then discarded.
    Null,
    /// A speaker: `None` is the default one. If it cannot be opened the room reports a
    /// [`RoomError::Device`] and plays into [`AudioOutput::Null`].
    Speaker {
        /// Device id from [`crate::media::devices::list_speakers`].
        device: Option<String>,
    },
    /// Any sink.
    Sink(Box<dyn AudioSink>),
}

impl std::fmt::Debug for AudioOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AudioOutput::Null => f.write_str("Null"),
            AudioOutput::Speaker { device } => {
                f.debug_struct("Speaker").field("device", device).finish()
            }
            AudioOutput::Sink(_) => f.write_str("Sink(..)"),
        }
    }
}

/// What to publish as the camera track.
#[derive(Debug)]
pub struct VideoPublish {
    /// Where frames come from.
    pub input: VideoInput,
    /// Frame width (a camera is scaled to it; a source's own size wins if it differs).
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Encoder target bitrate in kbit/s.
    pub target_kbps: u32,
}

/// What to publish as the microphone track.
#[derive(Debug)]
pub struct AudioPublish {
    /// Where audio comes from (mono 48 kHz).
    pub input: AudioInput,
    /// Opus target bitrate in bit/s.
    pub bitrate_bps: i32,
}

/// How to join.
#[derive(Debug)]
#[non_exhaustive]
pub struct JoinOptions {
    /// Publish a camera track.
    pub video: Option<VideoPublish>,
    /// Publish a microphone track.
    pub audio: Option<AudioPublish>,
    /// Where remote audio is played.
    pub audio_output: AudioOutput,
    /// Bound on opening the WebSocket.
    pub connect_timeout: Duration,
    /// Bound on the server's answer to `join`.
    pub join_timeout: Duration,
    /// Local UDP addresses for media. `0.0.0.0:0` (the default) gathers every non-loopback
    /// interface on an ephemeral port; tests against a loopback server use `127.0.0.1:0`.
    pub udp_addrs: Vec<SocketAddr>,
    /// Capacity of the event channel (see [`RoomHandle::dropped_events`]).
    pub event_capacity: usize,
    /// After losing the session (socket closed, media connection failed, server restart), keep
    /// trying to rejoin for this long; `None` ends the room at the first loss.
    pub reconnect_for: Option<Duration>,
    /// Decode remote video (the default). Off, remote video packets are received and dropped:
    /// for load generators that only publish.
    pub decode_video: bool,
    /// The invitation token ([`JoinOptions::with_token`]).
    pub token: Option<String>,
    /// SHA-256 fingerprints (`AA:BB:…`) of certificates trusted for a `wss://` server whose
    /// certificate no system authority signed ([`JoinOptions::with_trusted_certificates`]).
    pub trusted_certificates: Vec<String>,
}

impl Default for JoinOptions {
    fn default() -> Self {
        Self {
            video: None,
            audio: None,
            audio_output: AudioOutput::Speaker { device: None },
            connect_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            udp_addrs: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            event_capacity: 256,
            reconnect_for: Some(Duration::from_secs(60)),
            decode_video: true,
            token: None,
            trusted_certificates: Vec::new(),
        }
    }
}

impl JoinOptions {
    /// Trusts these certificate fingerprints (`AA:BB:…`) besides the system's authorities: a
    /// self-signed server the person accepted after comparing its fingerprint.
    pub fn with_trusted_certificates(mut self, fingerprints: Vec<String>) -> Self {
        self.trusted_certificates = fingerprints;
        self
    }

    /// Joins with an invitation token (servers running `--auth token` require one).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.trim().is_empty());
        self
    }

    /// Publishes `source` as the camera at the given size, rate and bitrate.
    pub fn with_video(
        self,
        source: Box<dyn VideoSource>,
        width: u32,
        height: u32,
        fps: u32,
        target_kbps: u32,
    ) -> Self {
        self.with_video_input(VideoInput::Source(source), width, height, fps, target_kbps)
    }

    /// Publishes `input` as the camera at the given size, rate and bitrate.
    pub fn with_video_input(
        mut self,
        input: VideoInput,
        width: u32,
        height: u32,
        fps: u32,
        target_kbps: u32,
    ) -> Self {
        self.video = Some(VideoPublish {
            input,
            width,
            height,
            fps,
            target_kbps,
        });
        self
    }

    /// Publishes `source` as the microphone (Opus, 32 kbit/s).
    pub fn with_audio(self, source: Box<dyn AudioSource>) -> Self {
        self.with_audio_input(AudioInput::Source(source))
    }

    /// Publishes `input` as the microphone (Opus, 32 kbit/s).
    pub fn with_audio_input(mut self, input: AudioInput) -> Self {
        self.audio = Some(AudioPublish {
            input,
            bitrate_bps: OpusConfig::voice().bitrate_bps,
        });
        self
    }

    /// Plays remote audio there.
    pub fn with_audio_output(mut self, output: AudioOutput) -> Self {
        self.audio_output = output;
        self
    }

    /// Binds media sockets to these addresses.
    pub fn with_udp_addrs(mut self, addrs: Vec<SocketAddr>) -> Self {
        self.udp_addrs = addrs;
        self
    }

    /// Decode remote video (`true`, the default) or receive and drop it.
    pub fn with_video_decoding(mut self, decode: bool) -> Self {
        self.decode_video = decode;
        self
    }

    /// How long to keep trying to rejoin after losing the session (`None`: never).
    pub fn with_reconnect(mut self, reconnect_for: Option<Duration>) -> Self {
        self.reconnect_for = reconnect_for;
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
    /// The audio encoder could not be created with the requested settings.
    #[error("audio encoder: {0}")]
    AudioEncoder(#[from] OpusError),
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
    /// A capture or playout device is missing or failed (the room goes on without it).
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// This client publishes no camera track.
    #[error("no camera track is published")]
    NoCamera,
    /// This client publishes no microphone track.
    #[error("no microphone track is published")]
    NoMicrophone,
    /// The audio output failed.
    #[error("audio output: {0}")]
    AudioOutput(String),
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
    /// The session was interrupted: ICE is recovering, or the room is rejoining after losing
    /// the socket or the media connection.
    Reconnecting,
    /// The session is lost for good (see [`RoomEvent::Closed`]).
    Failed,
}

/// What happens in the room.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RoomEvent {
    /// Joined: our id and the others already present. Always the first event; sent again after
    /// a reconnection (with our new id), when the application replaces its list of peers. The
    /// tracks present follow as [`RoomEvent::TrackAdded`] each time.
    Joined {
        /// Our id.
        peer_id: PeerId,
        /// The others, in the order they joined.
        peers: Vec<PeerInfo>,
        /// Whether we moderate, whether the room is locked, and its recent chat (a rejoin
        /// delivers the history again: keep one message per id).
        room: RoomInfo,
    },
    /// Someone joined.
    PeerJoined(PeerInfo),
    /// Someone left.
    PeerLeft {
        /// Who.
        peer_id: PeerId,
    },
    /// Someone changed name or metadata, raised or lowered a hand, or became moderator. Also
    /// sent for our own id (our hand, our moderator grant).
    PeerUpdated(PeerInfo),
    /// A chat message: to everyone, or a private one to or from us (ours come back stamped).
    Chat(ChatMessage),
    /// A moderator locked or unlocked the room.
    RoomLocked {
        /// Locked or not.
        locked: bool,
        /// The moderator.
        by: Option<PeerId>,
    },
    /// A moderator acted on us. For a mute or a stopped camera the engine has already turned
    /// that media off (as [`RoomHandle::set_microphone_enabled`] would); we may turn it on again.
    Moderated {
        /// What was done.
        action: ModerationAction,
        /// The moderator.
        by: PeerId,
    },
    /// A moderator removed us from the room. [`RoomEvent::Closed`] follows; the room does not
    /// rejoin.
    Removed {
        /// The moderator.
        by: PeerId,
        /// Why, if they said.
        reason: Option<String>,
    },
    /// A moderator ended the meeting. [`RoomEvent::Closed`] follows.
    MeetingEnded {
        /// The moderator.
        by: PeerId,
    },
    /// A remote track was published (or was already published when we joined). Its frames are
    /// available through [`RoomHandle::remote_video`] (video) or its statistics through
    /// [`RoomHandle::remote_audio`] (audio) from now on.
    TrackAdded(TrackInfo),
    /// The first frame of a remote track was decoded (video) or played (audio).
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
    /// Connects to `server_url` (`ws://host:port/ws`), joins `room` as `display_name`, opens
    /// the requested devices, starts publishing what `options` says, and returns the handle
    /// and the event stream. The first event is [`RoomEvent::Joined`], followed by a
    /// [`RoomEvent::TrackAdded`] per track already in the room. A camera or microphone that
    /// cannot be opened is not fatal: a [`RoomError::Device`] event says so and the room goes on
    /// without that track.
    pub async fn join(
        server_url: &str,
        room: &str,
        display_name: &str,
        options: JoinOptions,
    ) -> Result<(RoomHandle, mpsc::Receiver<RoomEvent>), JoinError> {
        let link = Link {
            url: server_url.to_owned(),
            room: room.to_owned(),
            display_name: display_name.to_owned(),
            connect_timeout: options.connect_timeout,
            join_timeout: options.join_timeout,
            udp_addrs: options.udp_addrs.clone(),
            resume_token: None,
            token: options.token.clone(),
            trusted_certificates: options.trusted_certificates.clone(),
        };
        // Encoder settings are checked before connecting (a bad setting is a join error); devices
        // are opened once joined (a missing device is not: the room goes on without it).
        let video = match options.video {
            Some(video) => {
                let settings = VideoSendSettings {
                    width: video.width,
                    height: video.height,
                    fps: video.fps,
                    target_kbps: video.target_kbps,
                };
                Some((video.input, publish::new_encoder(&settings)?, settings))
            }
            None => None,
        };
        let audio = match options.audio {
            Some(audio) => {
                let mut config = OpusConfig::voice();
                config.bitrate_bps = audio.bitrate_bps;
                Some((audio.input, OpusEncoder::new(config)?))
            }
            None => None,
        };
        let (session, joined) = Session::connect(&link).await?;
        let mut device_errors = Vec::new();
        let video = match video {
            Some((input, encoder, settings)) => match open_video(input, &settings).await {
                Ok(source) => Some((source, encoder, settings)),
                Err(e) => {
                    device_errors.push(e);
                    None
                }
            },
            None => None,
        };
        let audio = match audio {
            Some((input, encoder)) => match open_audio(input).await {
                Ok(source) => Some((source, encoder)),
                Err(e) => {
                    device_errors.push(e);
                    None
                }
            },
            None => None,
        };
        let sink: Box<dyn AudioSink> = match options.audio_output {
            AudioOutput::Null => Box::new(NullSink::new()),
            AudioOutput::Sink(sink) => sink,
            AudioOutput::Speaker { device } => match open_speaker(device).await {
                Ok(sink) => sink,
                Err(e) => {
                    device_errors.push(e);
                    Box::new(NullSink::new())
                }
            },
        };
        let span = tracing::info_span!("room", room, peer = %joined.peer_id);
        async move {
            tracing::info!(
                peers = joined.peers.len(),
                tracks = joined.tracks.len(),
                "joined"
            );
            let (events_tx, events_rx) = mpsc::channel(options.event_capacity.max(1));
            let (audio_ready_tx, audio_ready) = mpsc::channel(64);
            let mixer = Mixer::new(Some(audio_ready_tx));
            let shared = Arc::new(Shared {
                peer_id: Mutex::new(joined.peer_id.clone()),
                room: Mutex::new(joined.room.clone()),
                local_ids: Mutex::new(LocalIds::default()),
                videos: Mutex::new(HashMap::new()),
                mixer: mixer.clone(),
                dropped_events: AtomicU64::new(0),
            });
            let events = EventSink {
                tx: events_tx,
                shared: Arc::clone(&shared),
            };
            let playout_errors = events.clone_sender();
            let playout = match Playout::start(mixer.clone(), sink, move |e| {
                playout_errors.emit(RoomEvent::Error(RoomError::AudioOutput(e.to_string())));
            }) {
                Ok(p) => Some(p),
                Err(e) => {
                    events.emit(RoomEvent::Error(RoomError::AudioOutput(format!(
                        "cannot start the playout thread: {e}"
                    ))));
                    None
                }
            };

            let (ended_tx, ended_rx) = mpsc::unbounded_channel();
            let mut local = Vec::new();
            if let Some((source, encoder, settings)) = video {
                local.push(LocalTrack::video(
                    source,
                    encoder,
                    settings,
                    ended_tx.clone(),
                ));
            }
            if let Some((source, encoder)) = audio {
                local.push(LocalTrack::audio(source, encoder, ended_tx.clone()));
            }
            let (ready_tx, ready_rx) = mpsc::channel(64);
            let (commands_tx, commands) = mpsc::channel(16);
            let mut task = RoomTask {
                link,
                reconnect_for: options.reconnect_for,
                decode_video: options.decode_video,
                commands,
                events,
                shared: Arc::clone(&shared),
                ready_tx,
                ready_rx,
                audio_ready,
                ended_tx,
                ended_rx,
                local,
                session: None,
                playout,
                old_peer_ids: std::collections::HashSet::new(),
                invites: std::collections::VecDeque::new(),
            };
            task.events.emit(RoomEvent::Joined {
                peer_id: joined.peer_id.clone(),
                peers: joined.peers.clone(),
                room: joined.room.clone(),
            });
            for error in device_errors {
                tracing::warn!("{error}");
                task.events.emit(RoomEvent::Error(RoomError::Device(error)));
            }
            task.install(session, joined).await?;
            let handle = tokio::spawn(task.run().in_current_span());
            Ok((
                RoomHandle {
                    commands: commands_tx,
                    shared,
                    task: Some(handle),
                },
                events_rx,
            ))
        }
        .instrument(span)
        .await
    }
}

async fn open_video(
    input: VideoInput,
    settings: &VideoSendSettings,
) -> Result<Box<dyn VideoSource>, DeviceError> {
    match input {
        VideoInput::Source(source) => Ok(source),
        VideoInput::Camera { device } => {
            let VideoSendSettings {
                width, height, fps, ..
            } = *settings;
            // Opening a V4L2 device blocks (ioctl, buffer allocation).
            tokio::task::spawn_blocking(move || {
                CameraSource::open(device.as_deref(), width, height, fps)
                    .map(|c| Box::new(c) as Box<dyn VideoSource>)
            })
            .await
            .unwrap_or_else(|e| Err(DeviceError::Failed(format!("camera open task: {e}"))))
        }
    }
}

async fn open_audio(input: AudioInput) -> Result<Box<dyn AudioSource>, DeviceError> {
    match input {
        AudioInput::Source(source) => Ok(source),
        AudioInput::Microphone { device } => tokio::task::spawn_blocking(move || {
            MicrophoneSource::open(device.as_deref()).map(|m| Box::new(m) as Box<dyn AudioSource>)
        })
        .await
        .unwrap_or_else(|e| Err(DeviceError::Failed(format!("microphone open task: {e}")))),
    }
}

async fn open_speaker(device: Option<String>) -> Result<Box<dyn AudioSink>, DeviceError> {
    tokio::task::spawn_blocking(move || {
        SpeakerSink::open(device.as_deref()).map(|s| Box::new(s) as Box<dyn AudioSink>)
    })
    .await
    .unwrap_or_else(|e| Err(DeviceError::Failed(format!("speaker open task: {e}"))))
}

/// Where and how to (re)join.
#[derive(Debug, Clone)]
struct Link {
    url: String,
    room: String,
    display_name: String,
    connect_timeout: Duration,
    join_timeout: Duration,
    udp_addrs: Vec<SocketAddr>,
    /// The last session's resume token: a room locked meanwhile lets us back in with it.
    resume_token: Option<String>,
    /// The invitation, for servers that admit token holders only.
    token: Option<String>,
    /// Certificate fingerprints trusted besides the system's authorities.
    trusted_certificates: Vec<String>,
}

/// The server's `joined`.
#[derive(Debug, Clone)]
struct Joined {
    peer_id: PeerId,
    peers: Vec<PeerInfo>,
    tracks: Vec<TrackInfo>,
    room: RoomInfo,
    resume_token: String,
}

/// One media session: a joined signaling socket and its PeerConnection. Replaced as a whole on
/// reconnection.
struct Session {
    signaling: Signaling,
    pc: Arc<dyn PeerConnection>,
    pc_events: mpsc::Receiver<PcEvent>,
    /// Our tracks' RTP tracks in this session, by index in `RoomTask::local`.
    local_tracks: Vec<Arc<TrackLocalStaticRTP>>,
    /// Remote tracks announced in this session.
    remote: HashMap<TrackId, TrackInfo>,
    peers: HashMap<PeerId, PeerInfo>,
    receivers: HashMap<TrackId, JoinHandle<()>>,
    /// Our offer is out and unanswered (server offers are ignored meanwhile: glare rule).
    making_offer: bool,
    /// Something changed while our offer was out: offer again after the answer.
    offer_again: bool,
    remote_set: bool,
    pending_candidates: Vec<RTCIceCandidateInit>,
    connected: bool,
    /// When the server last sent anything.
    last_inbound: Instant,
    /// `close` ran (otherwise `Drop` closes the PeerConnection).
    closed: bool,
}

impl Session {
    /// Connects, joins and builds the PeerConnection.
    async fn connect(link: &Link) -> Result<(Session, Joined), JoinError> {
        let mut signaling =
            Signaling::connect(&link.url, link.connect_timeout, &link.trusted_certificates)
                .await
                .map_err(JoinError::Unreachable)?;
        signaling
            .send(&ClientMessage::Join {
                protocol_version: PROTOCOL_VERSION,
                room: RoomName::new(link.room.clone()),
                display_name: link.display_name.clone(),
                metadata: None,
                resume_token: link.resume_token.clone(),
                token: link.token.clone(),
            })
            .await
            .map_err(JoinError::Unreachable)?;
        let (joined, ice_servers) = match wait_for_join(&mut signaling, link.join_timeout).await {
            Ok(joined) => joined,
            Err(e) => {
                signaling.close().await;
                return Err(e);
            }
        };
        let (pc_events_tx, pc_events) = mpsc::channel(PC_EVENT_QUEUE);
        let pc =
            match peer::build_peer_connection(&ice_servers, &link.udp_addrs, pc_events_tx).await {
                Ok(pc) => pc,
                Err(e) => {
                    signaling.close().await;
                    return Err(e.into());
                }
            };
        Ok((
            Session {
                signaling,
                pc,
                pc_events,
                local_tracks: Vec::new(),
                remote: HashMap::new(),
                peers: joined
                    .peers
                    .iter()
                    .map(|p| (p.peer_id.clone(), p.clone()))
                    .collect(),
                receivers: HashMap::new(),
                making_offer: false,
                offer_again: false,
                remote_set: false,
                pending_candidates: Vec::new(),
                connected: false,
                last_inbound: Instant::now(),
                closed: false,
            },
            joined,
        ))
    }

    async fn send(&mut self, message: ClientMessage) {
        if let Err(e) = self.signaling.send(&message).await {
            // The read side sees the broken socket next and ends the session.
            tracing::debug!("send failed: {e}");
        }
    }

    /// Closes the socket (sending `leave` first if `leave`) and the PeerConnection.
    async fn close(mut self, leave: bool) {
        for (_, task) in self.receivers.drain() {
            task.abort();
        }
        if leave {
            let _ = self.signaling.send(&ClientMessage::Leave).await;
        }
        self.signaling.close().await;
        self.closed = true;
        if let Err(e) = self.pc.close().await {
            tracing::debug!("closing the PeerConnection: {e}");
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for task in self.receivers.values() {
            task.abort();
        }
        // Dropped without `close` (an error path, a cancelled join): the PeerConnection's
        // driver and sockets would otherwise live on.
        if !self.closed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let pc = Arc::clone(&self.pc);
            runtime.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

async fn wait_for_join(
    signaling: &mut Signaling,
    timeout: Duration,
) -> Result<(Joined, Vec<videoroom_protocol::IceServer>), JoinError> {
    let answer = async {
        loop {
            match signaling.recv().await {
                Ok(Some(ServerMessage::Joined {
                    peer_id,
                    peers,
                    tracks,
                    ice_servers,
                    moderator,
                    locked,
                    chat_history,
                    resume_token,
                    ..
                })) => {
                    let room = RoomInfo {
                        moderator,
                        locked,
                        chat_history,
                    };
                    let joined = Joined {
                        peer_id,
                        peers,
                        tracks,
                        room,
                        resume_token,
                    };
                    return Ok((joined, ice_servers));
                }
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

/// The sending side of one of our tracks; lives as long as the room.
enum LocalControl {
    Video(Arc<VideoControl>),
    Audio(Arc<AudioControl>),
}

struct LocalTrack {
    kind: MediaKind,
    ssrc: u32,
    /// Video: the track's size, rate and bitrate (a switched-in camera opens with them).
    settings: Option<VideoSendSettings>,
    ended: EndReports,
    /// The id in the current session (a new one per session: the server refuses a track id
    /// still held by our previous, not yet removed, session).
    track_id: TrackId,
    muted: bool,
    control: LocalControl,
    /// The current session's RTP track, `Some` while its media connection is up.
    binding: watch::Sender<Option<Arc<TrackLocalStaticRTP>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalTrack {
    fn video(
        source: Box<dyn VideoSource>,
        encoder: crate::media::Vp8Encoder,
        settings: VideoSendSettings,
        ended: EndReports,
    ) -> Self {
        let ssrc = rand::random::<u32>() | 1;
        let (binding, bound): (_, TrackBinding) = watch::channel(None);
        let control = Arc::new(VideoControl::new(true));
        let tasks = publish::spawn_video_sender(
            bound,
            source,
            encoder,
            settings,
            ssrc,
            Arc::clone(&control),
            ended.clone(),
        );
        Self {
            kind: MediaKind::Video,
            ssrc,
            settings: Some(settings),
            ended,
            track_id: new_track_id(MediaKind::Video),
            muted: false,
            control: LocalControl::Video(control),
            binding,
            tasks,
        }
    }

    fn audio(source: Box<dyn AudioSource>, encoder: OpusEncoder, ended: EndReports) -> Self {
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
            ssrc,
            settings: None,
            ended,
            track_id: new_track_id(MediaKind::Audio),
            muted: false,
            control: LocalControl::Audio(control),
            binding,
            tasks: vec![task],
        }
    }

    fn declared(&self) -> PublishedTrack {
        PublishedTrack {
            track_id: self.track_id.clone(),
            source: match self.kind {
                MediaKind::Video => TrackSource::Camera,
                MediaKind::Audio => TrackSource::Microphone,
            },
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
        self.tasks = publish::spawn_video_sender(
            self.binding.subscribe(),
            source,
            encoder,
            settings,
            self.ssrc,
            Arc::clone(control),
            self.ended.clone(),
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

fn new_track_id(kind: MediaKind) -> TrackId {
    let suffix = match kind {
        MediaKind::Video => "cam",
        MediaKind::Audio => "mic",
    };
    TrackId::new(format!("{:08x}-{suffix}", rand::random::<u32>()))
}

/// Our current ids, readable from the handle.
#[derive(Debug, Default, Clone)]
struct LocalIds {
    camera: Option<(TrackId, Arc<VideoControl>)>,
    microphone: Option<(TrackId, Arc<AudioControl>)>,
}

#[derive(Debug)]
struct Shared {
    peer_id: Mutex<PeerId>,
    /// The room as of the current session's `joined`, kept up to date with lock changes and
    /// our moderator grant.
    room: Mutex<RoomInfo>,
    local_ids: Mutex<LocalIds>,
    videos: Mutex<HashMap<TrackId, VideoSlot>>,
    mixer: Mixer,
    dropped_events: AtomicU64,
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every update is a
/// single assignment, insert or remove).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

    fn clone_sender(&self) -> EventSink {
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

enum Command {
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
}

/// The application's handle on a joined room. Dropping it leaves the room.
#[derive(Debug)]
pub struct RoomHandle {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
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

    /// Events dropped because the event channel was full.
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped_events.load(Ordering::Relaxed)
    }

    async fn call<T>(
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

/// The room task: owns the local tracks, the current session and the negotiation state.
struct RoomTask {
    link: Link,
    reconnect_for: Option<Duration>,
    decode_video: bool,
    commands: mpsc::Receiver<Command>,
    events: EventSink,
    shared: Arc<Shared>,
    ready_tx: mpsc::Sender<ReceiveEvent>,
    ready_rx: mpsc::Receiver<ReceiveEvent>,
    audio_ready: mpsc::Receiver<TrackId>,
    /// Send loops that stopped for good report here.
    ended_tx: EndReports,
    ended_rx: mpsc::UnboundedReceiver<(MediaKind, String)>,
    local: Vec<LocalTrack>,
    session: Option<Session>,
    playout: Option<Playout>,
    /// Our ids in earlier sessions: the server may still list that ghost of ours for a while
    /// after a reconnection (until it notices the old socket or ICE is gone); it is not a peer.
    old_peer_ids: std::collections::HashSet<PeerId>,
    /// `create_invite`s sent on the current session, oldest first, waiting for their answer
    /// (dropped with the session: the caller hears the connection was lost).
    invites: std::collections::VecDeque<oneshot::Sender<Result<social::Invite, RoomError>>>,
}

/// How a session ended.
enum SessionEnd {
    Left(Option<oneshot::Sender<()>>),
    Lost(String),
    /// A moderator removed us or ended the meeting: no rejoin.
    Ended(String),
}

/// What a reconnection attempt came to.
enum Rejoin {
    Done,
    Left(Option<oneshot::Sender<()>>),
    GaveUp(String),
}

/// What the current session produced.
enum SessionInput {
    Message(Result<Option<ServerMessage>, SignalingError>),
    Pc(PcEvent),
}

/// The next message or PeerConnection event of the session; pends forever without one.
async fn next_session_input(session: &mut Option<Session>) -> SessionInput {
    let Some(s) = session else {
        return std::future::pending().await;
    };
    tokio::select! {
        message = s.signaling.recv() => SessionInput::Message(message),
        Some(event) = s.pc_events.recv() => SessionInput::Pc(event),
    }
}

impl RoomTask {
    async fn run(mut self) {
        loop {
            let reason = match self.run_session().await {
                SessionEnd::Left(done) => return self.finish_left(done).await,
                SessionEnd::Ended(reason) => return self.finish_ended(reason).await,
                SessionEnd::Lost(reason) => reason,
            };
            tracing::warn!(reason, "session lost");
            self.invites.clear();
            if let Some(session) = self.session.take() {
                session.close(false).await;
            }
            self.unbind_local();
            let Some(reconnect_for) = self.reconnect_for else {
                return self.finish_failed(reason).await;
            };
            self.events
                .emit(RoomEvent::ConnectionState(ConnectionState::Reconnecting));
            match self.rejoin(reconnect_for).await {
                Rejoin::Done => continue,
                Rejoin::Left(done) => return self.finish_left(done).await,
                Rejoin::GaveUp(why) => {
                    return self
                        .finish_failed(format!("{reason}; reconnecting failed: {why}"))
                        .await;
                }
            }
        }
    }

    async fn finish_left(mut self, done: Option<oneshot::Sender<()>>) {
        tracing::info!("leaving");
        if let Some(session) = self.session.take() {
            session.close(true).await;
        }
        self.shutdown();
        self.events.emit(RoomEvent::Closed {
            reason: "left the room".into(),
        });
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    async fn finish_failed(mut self, reason: String) {
        tracing::warn!(reason, "room session ended");
        if let Some(session) = self.session.take() {
            session.close(false).await;
        }
        self.shutdown();
        self.events
            .emit(RoomEvent::ConnectionState(ConnectionState::Failed));
        self.events.emit(RoomEvent::Closed { reason });
    }

    async fn finish_ended(mut self, reason: String) {
        tracing::info!(reason, "removed from the room");
        if let Some(session) = self.session.take() {
            session.close(false).await;
        }
        self.shutdown();
        self.events.emit(RoomEvent::Closed { reason });
    }

    fn shutdown(&mut self) {
        self.unbind_local();
        self.local.clear();
        self.playout = None;
        lock(&self.shared.videos).clear();
        self.shared.mixer.clear();
    }

    fn unbind_local(&self) {
        for track in &self.local {
            track.binding.send_replace(None);
        }
    }

    /// Serves the current session until it ends.
    async fn run_session(&mut self) -> SessionEnd {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut next_ping = 0u64;
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Leave(done)) => return SessionEnd::Left(Some(done)),
                    // The handle was dropped: leave.
                    None => return SessionEnd::Left(None),
                    Some(command) => self.on_command(command).await,
                },
                input = next_session_input(&mut self.session) => match input {
                    SessionInput::Message(Ok(Some(message))) => {
                        if let Some(session) = self.session.as_mut() {
                            session.last_inbound = Instant::now();
                        }
                        if let Some(end) = self.on_server_message(message).await {
                            return end;
                        }
                    }
                    SessionInput::Message(Ok(None)) => {
                        return SessionEnd::Lost("the server closed the connection".into());
                    }
                    SessionInput::Message(Err(SignalingError::InvalidMessage(e))) => {
                        tracing::warn!("invalid server message: {e}");
                        self.events.emit(RoomEvent::Error(RoomError::Signaling(e)));
                    }
                    SessionInput::Message(Err(e)) => return SessionEnd::Lost(e.to_string()),
                    SessionInput::Pc(event) => {
                        if let Some(end) = self.on_pc_event(event).await {
                            return end;
                        }
                    }
                },
                Some(ReceiveEvent::FirstFrame(track_id)) = self.ready_rx.recv() => {
                    tracing::info!(track = %track_id, "first frame decoded");
                    self.events.emit(RoomEvent::TrackReady { track_id });
                }
                Some(track_id) = self.audio_ready.recv() => {
                    tracing::info!(track = %track_id, "first audio played");
                    self.events.emit(RoomEvent::TrackReady { track_id });
                }
                Some((kind, reason)) = self.ended_rx.recv() => {
                    tracing::warn!(?kind, reason, "local track stopped");
                    self.events.emit(RoomEvent::Error(RoomError::Device(DeviceError::Failed(format!(
                        "{reason}; switch to another input to resume"
                    )))));
                }
                _ = ping.tick() => {
                    next_ping += 1;
                    let Some(session) = self.session.as_mut() else {
                        continue;
                    };
                    // The server answers every ping; silence for two intervals means a dead
                    // (half-open) socket.
                    if session.last_inbound.elapsed() > 2 * PING_INTERVAL {
                        return SessionEnd::Lost(format!(
                            "no answer from the server for {:?}",
                            session.last_inbound.elapsed()
                        ));
                    }
                    if let Err(e) = session.signaling.send(&ClientMessage::Ping { id: next_ping }).await {
                        return SessionEnd::Lost(e.to_string());
                    }
                }
            }
        }
    }

    /// Tries to join again until `reconnect_for` has passed, serving commands meanwhile.
    async fn rejoin(&mut self, reconnect_for: Duration) -> Rejoin {
        let ghost = lock(&self.shared.peer_id).clone();
        self.old_peer_ids.insert(ghost);
        let deadline = Instant::now() + reconnect_for;
        let mut backoff = RECONNECT_FIRST_BACKOFF;
        let link = self.link.clone();
        let mut last_error;
        loop {
            let attempt = Session::connect(&link);
            tokio::pin!(attempt);
            let result = loop {
                tokio::select! {
                    result = &mut attempt => break result,
                    command = self.commands.recv() => match command {
                        Some(Command::Leave(done)) => return Rejoin::Left(Some(done)),
                        None => return Rejoin::Left(None),
                        Some(command) => self.on_command(command).await,
                    },
                }
            };
            match result {
                Ok((session, joined)) => {
                    let joined = self.without_ghosts(joined);
                    tracing::info!(peer = %joined.peer_id, "rejoined");
                    self.events.emit(RoomEvent::Joined {
                        peer_id: joined.peer_id.clone(),
                        peers: joined.peers.clone(),
                        room: joined.room.clone(),
                    });
                    return match self.install(session, joined).await {
                        Ok(()) => Rejoin::Done,
                        Err(e) => Rejoin::GaveUp(e.to_string()),
                    };
                }
                // Full (perhaps because our own ghost still holds a seat), restarting, too many
                // joins from our address at once, or a passing server failure: keep trying.
                Err(
                    e @ JoinError::Refused {
                        code:
                            ErrorCode::RoomFull
                            | ErrorCode::ShuttingDown
                            | ErrorCode::RateLimited
                            | ErrorCode::Internal,
                        ..
                    },
                ) => last_error = e.to_string(),
                // Any other refusal (name, version) would be the same next time.
                Err(e @ JoinError::Refused { .. }) => return Rejoin::GaveUp(e.to_string()),
                Err(e) => {
                    tracing::debug!("rejoin attempt failed: {e}");
                    last_error = e.to_string();
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Rejoin::GaveUp(last_error);
            }
            // The last attempt is made at the deadline.
            let sleep = tokio::time::sleep(backoff.min(deadline - now));
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    command = self.commands.recv() => match command {
                        Some(Command::Leave(done)) => return Rejoin::Left(Some(done)),
                        None => return Rejoin::Left(None),
                        Some(command) => self.on_command(command).await,
                    },
                }
            }
            backoff = (backoff * 2).min(RECONNECT_MAX_BACKOFF);
        }
    }

    /// `joined` without our own earlier sessions (see `old_peer_ids`).
    fn without_ghosts(&self, mut joined: Joined) -> Joined {
        joined
            .peers
            .retain(|p| !self.old_peer_ids.contains(&p.peer_id));
        joined
            .tracks
            .retain(|t| !self.old_peer_ids.contains(&t.peer_id));
        joined
    }

    /// Makes `session` current: reconciles the remote tracks with what it announces, adds our
    /// tracks to its PeerConnection (new ids) and offers them.
    async fn install(&mut self, mut session: Session, joined: Joined) -> Result<(), PeerError> {
        *lock(&self.shared.peer_id) = joined.peer_id.clone();
        *lock(&self.shared.room) = joined.room.clone();
        self.link.resume_token = Some(joined.resume_token.clone()).filter(|t| !t.is_empty());
        let mut ids = LocalIds::default();
        for local in &mut self.local {
            local.track_id = new_track_id(local.kind);
            let (track, init) = peer::rtp_track(
                joined.peer_id.as_str(),
                local.track_id.as_str(),
                local.kind,
                local.ssrc,
            );
            let track = Arc::new(track);
            session
                .pc
                .add_transceiver_from_track(Arc::clone(&track) as Arc<dyn TrackLocal>, Some(init))
                .await
                .map_err(PeerError::webrtc("add a local transceiver"))?;
            session.local_tracks.push(track);
            match &local.control {
                LocalControl::Video(c) => {
                    ids.camera = Some((local.track_id.clone(), Arc::clone(c)))
                }
                LocalControl::Audio(c) => {
                    ids.microphone = Some((local.track_id.clone(), Arc::clone(c)))
                }
            }
        }
        *lock(&self.shared.local_ids) = ids;

        // Remote tracks: slots of tracks that are gone are dropped, the others kept (their
        // consumers see frames resume); every present track is announced.
        let present: std::collections::HashSet<TrackId> =
            joined.tracks.iter().map(|t| t.track_id.clone()).collect();
        let gone: Vec<TrackId> = lock(&self.shared.videos)
            .keys()
            .chain(
                self.shared
                    .mixer
                    .remote_audios()
                    .iter()
                    .map(|a| a.track_id())
                    .collect::<Vec<_>>(),
            )
            .filter(|id| !present.contains(*id))
            .cloned()
            .collect();
        for track_id in gone {
            lock(&self.shared.videos).remove(&track_id);
            self.shared.mixer.remove_track(&track_id);
            self.events.emit(RoomEvent::TrackRemoved { track_id });
        }
        self.session = Some(session);
        for info in joined.tracks {
            self.add_track(info);
        }
        if !self.local.is_empty() {
            self.offer().await?;
        }
        self.events
            .emit(RoomEvent::ConnectionState(ConnectionState::Connecting));
        Ok(())
    }

    fn media_error(&self, what: &str, e: impl std::fmt::Display) {
        tracing::warn!("{what}: {e}");
        self.events
            .emit(RoomEvent::Error(RoomError::Media(format!("{what}: {e}"))));
    }

    /// Sends our offer with the declared tracks (or, if one is out, offers again after its
    /// answer).
    async fn offer(&mut self) -> Result<(), PeerError> {
        let tracks: Vec<PublishedTrack> = self.local.iter().map(LocalTrack::declared).collect();
        let Some(session) = self.session.as_mut() else {
            return Ok(());
        };
        if session.making_offer {
            session.offer_again = true;
            return Ok(());
        }
        let offer = session
            .pc
            .create_offer(None)
            .await
            .map_err(PeerError::webrtc("create offer"))?;
        session
            .pc
            .set_local_description(offer)
            .await
            .map_err(PeerError::webrtc("apply own offer"))?;
        let Some(local) = session.pc.local_description().await else {
            return Err(PeerError::WebRtc {
                what: "read own offer",
                source: webrtc::error::Error::Other("no local description".into()),
            });
        };
        session.making_offer = true;
        session
            .send(ClientMessage::SdpOffer {
                sdp: local.sdp,
                tracks,
            })
            .await;
        Ok(())
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            // Handled by the loops.
            Command::Leave(_) => {}
            Command::Send(message, reply) => {
                let _ = reply.send(self.send_now(message).await);
            }
            Command::CreateInvite(ttl_secs, moderator, reply) => {
                let message = ClientMessage::CreateInvite {
                    ttl_secs,
                    moderator,
                };
                match self.send_now(message).await {
                    Ok(()) => self.invites.push_back(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::SetEnabled(kind, enabled, reply) => {
                let _ = reply.send(self.set_enabled(kind, enabled).await);
            }
            Command::SwitchVideo(input, reply) => {
                let _ = reply.send(self.switch_video(input).await);
            }
            Command::SwitchAudio(input, reply) => {
                let _ = reply.send(self.switch_audio(input).await);
            }
            Command::SetOutput(output, reply) => {
                let _ = reply.send(self.set_output(output).await);
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.connection_stats().await);
            }
        }
    }

    async fn set_enabled(&mut self, kind: MediaKind, enabled: bool) -> Result<(), RoomError> {
        let Some(local) = self.local.iter_mut().find(|t| t.kind == kind) else {
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
        if enabled && let Some(local) = self.local.iter_mut().find(|t| t.kind == kind) {
            local.set_enabled(true);
        }
        sent
    }

    async fn switch_video(&mut self, input: VideoInput) -> Result<(), RoomError> {
        let existing = self.local.iter().position(|t| t.kind == MediaKind::Video);
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
        let track = LocalTrack::video(source, encoder, settings, self.ended_tx.clone());
        self.publish_new(track).await
    }

    async fn switch_audio(&mut self, input: AudioInput) -> Result<(), RoomError> {
        let existing = self.local.iter().position(|t| t.kind == MediaKind::Audio);
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
            track.track_id = new_track_id(track.kind);
            let (rtp, init) = peer::rtp_track(
                peer_id.as_str(),
                track.track_id.as_str(),
                track.kind,
                track.ssrc,
            );
            let rtp = Arc::new(rtp);
            session
                .pc
                .add_transceiver_from_track(Arc::clone(&rtp) as Arc<dyn TrackLocal>, Some(init))
                .await
                .map_err(|e| RoomError::Media(format!("add a local transceiver: {e}")))?;
            if session.connected {
                track.binding.send_replace(Some(Arc::clone(&rtp)));
            }
            session.local_tracks.push(rtp);
        }
        {
            let mut ids = lock(&self.shared.local_ids);
            match &track.control {
                LocalControl::Video(c) => {
                    ids.camera = Some((track.track_id.clone(), Arc::clone(c)))
                }
                LocalControl::Audio(c) => {
                    ids.microphone = Some((track.track_id.clone(), Arc::clone(c)))
                }
            }
        }
        self.local.push(track);
        self.offer()
            .await
            .map_err(|e| RoomError::Media(e.to_string()))
    }

    async fn set_output(&mut self, output: AudioOutput) -> Result<(), RoomError> {
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

    async fn connection_stats(&self) -> Option<ConnectionStats> {
        let session = self.session.as_ref()?;
        let report = session
            .pc
            .get_stats(std::time::Instant::now(), StatsSelector::None)
            .await;
        let mut stats = ConnectionStats::default();
        for inbound in report.inbound_rtp_streams() {
            stats.packets_received += inbound.received_rtp_stream_stats.packets_received;
            stats.packets_lost += inbound.received_rtp_stream_stats.packets_lost;
        }
        if let Some(pair) = report
            .candidate_pairs()
            .find(|p| p.nominated)
            .or_else(|| report.candidate_pairs().max_by_key(|p| p.bytes_received))
        {
            stats.bytes_received = pair.bytes_received;
            stats.bytes_sent = pair.bytes_sent;
            if pair.current_round_trip_time > 0.0 {
                stats.rtt_ms = Some(pair.current_round_trip_time * 1000.0);
            }
        }
        Some(stats)
    }

    fn add_track(&mut self, info: TrackInfo) {
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

    async fn on_server_message(&mut self, message: ServerMessage) -> Option<SessionEnd> {
        match message {
            ServerMessage::SdpAnswer { sdp } => self.on_answer(sdp).await,
            ServerMessage::SdpOffer { sdp } => self.on_offer(sdp).await,
            ServerMessage::IceCandidate { candidate } => self.on_candidate(candidate).await,
            ServerMessage::PeerJoined { peer } if self.old_peer_ids.contains(&peer.peer_id) => {}
            ServerMessage::PeerLeft { peer_id } if self.old_peer_ids.contains(&peer_id) => {
                tracing::debug!(peer = %peer_id, "our previous session is gone");
            }
            ServerMessage::PeerUpdated { peer } if self.old_peer_ids.contains(&peer.peer_id) => {}
            ServerMessage::PeerJoined { peer } => {
                if let Some(session) = self.session.as_mut() {
                    session.peers.insert(peer.peer_id.clone(), peer.clone());
                }
                self.events.emit(RoomEvent::PeerJoined(peer))
            }
            ServerMessage::PeerLeft { peer_id } => {
                if let Some(session) = self.session.as_mut() {
                    session.peers.remove(&peer_id);
                }
                self.events.emit(RoomEvent::PeerLeft { peer_id })
            }
            ServerMessage::PeerUpdated { peer } => {
                if peer.peer_id == *lock(&self.shared.peer_id) {
                    lock(&self.shared.room).moderator = peer.moderator;
                }
                if let Some(session) = self.session.as_mut()
                    && let Some(known) = session.peers.get_mut(&peer.peer_id)
                {
                    *known = peer.clone();
                }
                self.events.emit(RoomEvent::PeerUpdated(peer))
            }
            ServerMessage::Chat { message } => self.events.emit(RoomEvent::Chat(message)),
            ServerMessage::RoomUpdated { locked, by } => {
                lock(&self.shared.room).locked = locked;
                self.events.emit(RoomEvent::RoomLocked { locked, by })
            }
            ServerMessage::Moderated { action, by } => self.on_moderated(action, by).await,
            ServerMessage::Removed { by, reason } => {
                let why = self.removal_reason(&by, reason.as_deref());
                self.events.emit(RoomEvent::Removed { by, reason });
                return Some(SessionEnd::Ended(why));
            }
            ServerMessage::MeetingEnded { by } => {
                let why = format!("{} ended the meeting", self.name_of(&by));
                self.events.emit(RoomEvent::MeetingEnded { by });
                return Some(SessionEnd::Ended(why));
            }
            ServerMessage::TracksAdded { tracks } => {
                for info in tracks {
                    if !self.old_peer_ids.contains(&info.peer_id) {
                        self.add_track(info);
                    }
                }
            }
            ServerMessage::TracksRemoved { track_ids } => {
                for track_id in track_ids {
                    if let Some(session) = self.session.as_mut() {
                        if session.remote.remove(&track_id).is_none() {
                            // Not announced to us (a ghost's track): nothing to remove.
                            continue;
                        }
                        if let Some(task) = session.receivers.remove(&track_id) {
                            task.abort();
                        }
                    }
                    lock(&self.shared.videos).remove(&track_id);
                    self.shared.mixer.remove_track(&track_id);
                    self.events.emit(RoomEvent::TrackRemoved { track_id });
                }
            }
            ServerMessage::TrackUpdated { track } => {
                let session = self.session.as_mut()?;
                if !session.remote.contains_key(&track.track_id) {
                    // One of ours (the server echoes our own updates) or unknown.
                    return None;
                }
                let was_muted = session.remote.get(&track.track_id).map(|t| t.muted);
                let track_id = track.track_id.clone();
                let muted = track.muted;
                session.remote.insert(track_id.clone(), track);
                if was_muted != Some(muted) {
                    self.events.emit(if muted {
                        RoomEvent::TrackMuted { track_id }
                    } else {
                        RoomEvent::TrackUnmuted { track_id }
                    });
                }
            }
            ServerMessage::InviteCreated {
                token,
                url,
                expires_at,
            } => {
                if let Some(reply) = self.invites.pop_front() {
                    let _ = reply.send(Ok(social::Invite {
                        token,
                        url,
                        expires_at,
                    }));
                }
            }
            // A refusal of a `create_invite` in flight answers it (the server handles a
            // session's messages in order, so it is the oldest one's).
            ServerMessage::Error { code, message }
                if !self.invites.is_empty()
                    && matches!(
                        code,
                        ErrorCode::NotModerator
                            | ErrorCode::InvalidMessage
                            | ErrorCode::RateLimited
                            | ErrorCode::Internal
                    ) =>
            {
                if let Some(reply) = self.invites.pop_front() {
                    let _ = reply.send(Err(RoomError::Server { code, message }));
                }
            }
            ServerMessage::Error { code, message } => {
                tracing::warn!(?code, message, "server error");
                // An offer of ours the server could not take gets this instead of an answer.
                if matches!(code, ErrorCode::InvalidSdp | ErrorCode::Internal)
                    && self.session.as_ref().is_some_and(|s| s.making_offer)
                {
                    self.abandon_offer().await;
                }
                self.events
                    .emit(RoomEvent::Error(RoomError::Server { code, message }));
            }
            // The server is shutting down or restarting: a session loss like any other; the
            // room rejoins if it may.
            ServerMessage::Closing { reason } => {
                return Some(SessionEnd::Lost(format!("server closing: {reason}")));
            }
            ServerMessage::Pong { .. } => {}
            other => tracing::debug!(?other, "unexpected message ignored"),
        }
        None
    }

    async fn on_answer(&mut self, sdp: String) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if !session.making_offer {
            tracing::warn!("`sdp_answer` without an offer of ours; ignored");
            return;
        }
        session.making_offer = false;
        let applied = match RTCSessionDescription::answer(sdp) {
            Ok(answer) => session.pc.set_remote_description(answer).await,
            Err(e) => Err(e),
        };
        match applied {
            Ok(()) => self.remote_applied().await,
            Err(e) => {
                self.media_error("server answer could not be applied", e);
                self.abandon_offer().await;
            }
        }
        if let Some(session) = self.session.as_mut()
            && std::mem::take(&mut session.offer_again)
            && let Err(e) = self.offer().await
        {
            self.media_error("renegotiation", e);
        }
    }

    /// Drops our unanswered offer (rolls the PeerConnection back to stable), so that the
    /// server's offers are taken again. Not re-offered: the same offer would fail the same way;
    /// the next change offers afresh.
    async fn abandon_offer(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        session.making_offer = false;
        session.offer_again = false;
        match RTCSessionDescription::rollback(None) {
            Ok(rollback) => {
                if let Err(e) = session.pc.set_local_description(rollback).await {
                    tracing::debug!("rollback of our offer: {e}");
                }
            }
            Err(e) => tracing::debug!("rollback description: {e}"),
        }
    }

    async fn on_offer(&mut self, sdp: String) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if session.making_offer {
            // Glare: we win; the server rolls back and offers again after our answer.
            tracing::debug!("server offer crossed ours; ignored");
            return;
        }
        let offer = match RTCSessionDescription::offer(sdp) {
            Ok(offer) => offer,
            Err(e) => return self.media_error("server offer is not valid SDP", e),
        };
        if let Err(e) = session.pc.set_remote_description(offer).await {
            return self.media_error("server offer could not be applied", e);
        }
        self.remote_applied().await;
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let answer = match session.pc.create_answer(None).await {
            Ok(answer) => answer,
            Err(e) => return self.media_error("cannot answer the server offer", e),
        };
        if let Err(e) = session.pc.set_local_description(answer).await {
            return self.media_error("cannot apply own answer", e);
        }
        match session.pc.local_description().await {
            Some(local) => {
                session
                    .send(ClientMessage::SdpAnswer { sdp: local.sdp })
                    .await
            }
            None => self.media_error("own answer", "missing after negotiation"),
        }
    }

    async fn remote_applied(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        session.remote_set = true;
        for candidate in std::mem::take(&mut session.pending_candidates) {
            if let Err(e) = session.pc.add_ice_candidate(candidate).await {
                tracing::debug!("buffered candidate refused: {e}");
            }
        }
    }

    async fn on_candidate(&mut self, c: IceCandidate) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if c.candidate.trim().is_empty() {
            return;
        }
        let init = videoroom_webrtc::to_rtc_candidate(c);
        if !session.remote_set {
            if session.pending_candidates.len() < MAX_PENDING_CANDIDATES {
                session.pending_candidates.push(init);
            } else {
                tracing::warn!("too many candidates before the server's description; dropped");
            }
            return;
        }
        if let Err(e) = session.pc.add_ice_candidate(init).await {
            tracing::debug!("server candidate refused: {e}");
        }
    }

    async fn on_pc_event(&mut self, event: PcEvent) -> Option<SessionEnd> {
        match event {
            PcEvent::LocalCandidate(init) => {
                let candidate = videoroom_webrtc::from_rtc_candidate(init);
                if let Some(session) = self.session.as_mut() {
                    session
                        .send(ClientMessage::IceCandidate { candidate })
                        .await;
                }
            }
            PcEvent::State(state) => {
                tracing::info!(%state, "media connection state");
                let mapped = match state {
                    RTCPeerConnectionState::Connected => ConnectionState::Connected,
                    RTCPeerConnectionState::Disconnected => ConnectionState::Reconnecting,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        return Some(SessionEnd::Lost(format!("media connection {state}")));
                    }
                    _ => ConnectionState::Connecting,
                };
                let connected = mapped == ConnectionState::Connected;
                if let Some(session) = self.session.as_mut() {
                    session.connected = connected;
                    for (local, rtp) in self.local.iter().zip(&session.local_tracks) {
                        local
                            .binding
                            .send_replace(connected.then(|| Arc::clone(rtp)));
                    }
                }
                self.events.emit(RoomEvent::ConnectionState(mapped));
            }
            PcEvent::Track(track) => self.on_remote_track(track).await,
        }
        None
    }

    async fn on_remote_track(&mut self, track: Arc<dyn TrackRemote>) {
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
