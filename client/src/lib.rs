//! Videoroom client engine.
//!
//! - [`room`]: [`Room::join`] joins a room on a Videoroom server, publishes a camera track and
//!   receives everyone else's video; the application gets [`RoomEvent`]s and a [`RoomHandle`].
//! - [`signaling`]: the WebSocket carrying the JSON protocol (`docs/protocol.md`).
//! - [`peer`]: the WebRTC PeerConnection setup (codecs, interceptors, keyframe-request tap).
//! - [`publish`] and [`receive`]: the video send path (source → VP8 → RTP) and receive path
//!   (RTP → VP8 → latest decoded frame).
//! - [`media`]: I420 frames, synthetic video and audio sources behind the
//!   [`media::VideoSource`] and [`media::AudioSource`] traits, a VP8 encoder/decoder over libvpx
//!   and an Opus encoder/decoder over libopus.
//!
//! Needs the system libraries `libvpx` and `libopus` (Debian: `libvpx-dev libopus-dev pkg-config`).

pub mod media;
pub mod peer;
pub mod publish;
pub mod receive;
pub mod room;
pub mod signaling;

pub use publish::SendStats;
pub use receive::{DecodedFrame, RemoteVideo, VideoStats};
pub use room::{
    ConnectionState, JoinError, JoinOptions, Room, RoomError, RoomEvent, RoomHandle, VideoPublish,
};
