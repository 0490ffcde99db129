//! Media that arrives already encoded: a recording replayed instead of a capture (the bot's
//! `--replay`, which lets many participants run on one machine without encoding).
//!
//! Such a source is still a [`VideoSource`] / [`AudioSource`] so that it travels the same way
//! as a camera or a microphone (join options, device switches); its `encoded()` hands the
//! publish path the encoded side, and the publish path then packetizes what it gets instead of
//! encoding. What an encoder would do on request is the source's to honour as far as a
//! recording can: a keyframe request is served by the layer's next recorded keyframe, a paused
//! layer resumes at one, a budget's bitrate is not followed (only its pauses).

use super::{EncodedFrame, SourceError};

/// Encoded simulcast video: per capture, one VP8 frame per layer.
pub trait EncodedVideoSource: Send {
    /// Each layer's size, largest first; layer `i` is sent as the publisher's `i`-th largest
    /// simulcast layer (full, half, quarter). A layer the track has no room for is not sent.
    fn layer_sizes(&self) -> Vec<(u32, u32)>;

    /// The next capture's frames, `(layer index into layer_sizes, frame)`, with the capture time
    /// in each frame. Blocks until the capture is due (a recording paces itself).
    fn next_frames(&mut self) -> Result<Vec<(usize, EncodedFrame)>, SourceError>;
}

/// One 20 ms Opus packet and the level of the audio it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedAudio {
    /// The Opus packet.
    pub payload: Vec<u8>,
    /// The RMS level of its 20 ms, dBov (−127..=0), for the audio-level extension.
    pub level_dbov: f32,
    /// Whether it holds speech (the extension's V bit; also the speaking flag).
    pub voice: bool,
}

/// Encoded audio: one Opus packet per 20 ms (paced by the sender's timer, like a synthetic
/// source).
pub trait EncodedAudioSource: Send {
    /// The next packet.
    fn next_packet(&mut self) -> Result<EncodedAudio, SourceError>;
}
