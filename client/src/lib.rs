//! Videoroom client engine.
//!
//! So far: the media layer ([`media`]): I420 frames, synthetic video and audio sources behind the
//! [`media::VideoSource`] and [`media::AudioSource`] traits, a VP8 encoder/decoder over libvpx
//! and an Opus encoder/decoder over libopus. Needs the system libraries `libvpx` and `libopus`
//! (Debian: `libvpx-dev libopus-dev pkg-config`).

pub mod media;
