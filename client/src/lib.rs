//! Videoroom client engine.
//!
//! - [`room`]: [`Room::join`] joins a room on a Videoroom server, publishes camera and microphone
//!   tracks and receives everyone else's; the application gets [`RoomEvent`]s and a
//!   [`RoomHandle`]. The room rejoins by itself after losing its connection.
//! - [`chat_command`]: chat lines as commands (`/msg`, `/hand`, `/mute`…), for keyboard users.
//! - [`signaling`]: the WebSocket carrying the JSON protocol (`docs/protocol.md`).
//! - [`peer`]: the WebRTC PeerConnection setup (codecs, interceptors, keyframe-request tap).
//! - [`publish`] and [`receive`]: the send paths (source → VP8/Opus → RTP) and receive paths
//!   (RTP → VP8 → latest decoded frame; RTP → jitter buffer).
//! - [`budget`] and [`allocate`]: the uplink bandwidth estimate shared out between our tracks
//!   (layers paused, encoder bitrates).
//! - [`audio`]: jitter buffers, the mixer, the playout thread, level and frequency analysis.
//! - [`media`]: I420 frames, synthetic video and audio sources behind the
//!   [`media::VideoSource`] and [`media::AudioSource`] traits, a VP8 encoder/decoder over libvpx
//!   and an Opus encoder/decoder over libopus.
//!
//! Needs the system libraries `libvpx` and `libopus` (Debian: `libvpx-dev libopus-dev pkg-config`).

pub mod allocate;
mod assembler;
pub mod audio;
pub mod budget;
pub mod chat_command;
pub mod media;
pub mod peer;
pub mod publish;
pub mod receive;
pub mod room;
pub mod signaling;
pub mod tls;

pub use audio::{AudioStats, RemoteAudio};
pub use publish::SendStats;
pub use receive::{DecodedFrame, RemoteVideo, VideoStats};
pub use room::{
    AudioInput, AudioOutput, AudioPublish, ConnectionState, ConnectionStats, Invite, JoinError,
    JoinOptions, Room, RoomError, RoomEvent, RoomHandle, RoomInfo, ScreenShareEnd, VideoInput,
    VideoPublish,
};
