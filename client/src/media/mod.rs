//! The media layer: raw frames, synthetic sources and the codecs.
//!
//! Every stage sits behind a trait ([`VideoSource`], [`AudioSource`]) so that a capture device can
//! replace a synthetic source without touching the codec or transport code.

pub mod devices;
pub mod downscale;
pub mod encoded;
pub mod frame;
pub mod opus;
pub mod pattern;
pub mod screen;
pub mod sink;
pub mod tile;
// The one place in this crate that may use `unsafe`: the libvpx FFI. The workspace forbids
// unsafe code; this crate only denies it (see client/Cargo.toml) so this module can opt out.
// Every unsafe block in it carries a SAFETY comment, and its public API is entirely safe.
#[allow(unsafe_code)]
pub mod vp8;
pub mod vp8_multi;
pub mod wav;
pub mod y4m;

pub use devices::{
    CameraSource, DeviceError, DeviceInfo, DeviceKind, MicrophoneSource, SpeakerSink,
};
pub use encoded::{EncodedAudio, EncodedAudioSource, EncodedVideoSource};
pub use frame::{FrameError, I420Frame};
pub use opus::{
    AudioFrame, AudioSource, Channels, OpusConfig, OpusDecoder, OpusEncoder, OpusError, ToneSource,
};
pub use pattern::{PatternClock, PatternSource, VideoSource, read_burned_in};
pub use screen::{MotionDecision, MotionGate, ScreenScaler};
pub use sink::{AudioSink, NullSink, SinkError};
pub use vp8::{EncodedFrame, Vp8Config, Vp8Decoder, Vp8Encoder, Vp8Error};
pub use wav::{WavError, WavSource};

/// Why a source could not produce its next frame.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source has no more frames (a file ended, a device was unplugged).
    #[error("source ended")]
    Ended,
    /// The device or generator failed.
    #[error("source failed: {0}")]
    Failed(String),
}

/// Microseconds since the UNIX epoch, now (0 if the clock is before 1970).
pub fn unix_micros_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
