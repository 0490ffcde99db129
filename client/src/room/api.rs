//! The room's public types: what to publish and where from, where to play, how to join, the
//! errors, and the events the application receives.

#[cfg(doc)]
use super::RoomHandle;
use super::RoomInfo;
use crate::media::devices::DeviceError;
use crate::media::{AudioSink, AudioSource, OpusConfig, OpusError, VideoSource, Vp8Error};
use crate::peer::PeerError;
use crate::signaling::SignalingError;
use std::net::SocketAddr;
use std::time::Duration;
use videoroom_protocol::{
    ChatMessage, ErrorCode, ModerationAction, PeerId, PeerInfo, TrackId, TrackInfo,
};

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
    /// Decode and play remote audio (the default). Off, remote audio packets are received and
    /// dropped (no mixing, no levels): for load generators.
    pub decode_audio: bool,
    /// The invitation token ([`JoinOptions::with_token`]).
    pub token: Option<String>,
    /// SHA-256 fingerprints (`AA:BB:…`) of certificates trusted for a `wss://` server whose
    /// certificate no system authority signed ([`JoinOptions::with_trusted_certificates`]).
    pub trusted_certificates: Vec<String>,
    /// The size (width, height in device pixels; (0, 0): not shown) to tell the server for
    /// every remote video track as soon as it is added, until
    /// [`RoomHandle::set_view_size`] says otherwise ([`JoinOptions::with_default_view_size`]).
    /// `None` (the default) tells nothing: the server sends such a track large.
    pub default_view_size: Option<(u32, u32)>,
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
            decode_audio: true,
            token: None,
            trusted_certificates: Vec::new(),
            default_view_size: None,
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

    /// Shows every remote video track at `width`×`height` unless told otherwise (see
    /// [`JoinOptions::default_view_size`]); `None` leaves the server's default (large).
    pub fn with_default_view_size(mut self, size: Option<(u32, u32)>) -> Self {
        self.default_view_size = size;
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

    /// Decode and mix remote audio (`true`, the default) or receive and drop it.
    pub fn with_audio_decoding(mut self, decode: bool) -> Self {
        self.decode_audio = decode;
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
    /// No screen is being shared.
    #[error("no screen is being shared")]
    NoScreenShare,
    /// A screen is shared already: one at a time.
    #[error("a screen is being shared already; stop it first")]
    ScreenShareActive,
    /// The audio output failed.
    #[error("audio output: {0}")]
    AudioOutput(String),
    /// The room task has ended (left, or the connection closed).
    #[error("not in the room any more")]
    Closed,
}

/// Why a screen share ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScreenShareEnd {
    /// We stopped it ([`RoomHandle::stop_screen_share`]).
    Stopped,
    /// Its source ended or kept failing (the shared window closed, the capture failed).
    SourceEnded(String),
    /// A moderator stopped it.
    Moderator(PeerId),
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
    /// Who is speaking now according to the server, loudest first (empty: nobody); our own
    /// id is in it when the server hears us.
    ActiveSpeakers(Vec<PeerId>),
    /// A moderator locked or unlocked the room.
    RoomLocked {
        /// Locked or not.
        locked: bool,
        /// The moderator.
        by: Option<PeerId>,
    },
    /// Our screen share ended (the track is unpublished; the others see it removed).
    ScreenShareEnded {
        /// Why.
        reason: ScreenShareEnd,
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
