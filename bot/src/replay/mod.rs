//! Replay fixtures: the bot's test pattern and tone, encoded once ahead of time and replayed
//! instead of rendered and encoded live, so that many bots can run on one machine (a desktop
//! benchmark with 9–16 participants) without each spending a core on libvpx.
//!
//! A fixture is a directory:
//! - `layer0.ivf`, `layer1.ivf`, …: the camera's simulcast layers, largest first (the sizes and
//!   bitrates [`camera_layers`] gives the client's live camera track), VP8 in IVF with a
//!   1/1 000 000 timebase: each frame's timestamp is its capture time, µs since the UNIX epoch.
//! - `audio.ogg`: the tone as 20 ms Opus packets in Ogg.
//! - `meta.json`: [`FixtureMeta`].
//!
//! The burned-in stamp of frame `k` says `start_unix_micros + k / fps`: the fixture is made for
//! a start time in the future, and [`ReplayVideo`] sends each frame at its capture time, so a
//! receiver's capture → display latency stays meaningful. Once the start time has passed, a
//! replay starts at the next capture that is still to come; after the last one it ends (make a
//! new fixture for the next run). Audio has no timestamps to honour and loops.
//!
//! Here: the API ([`generate`], [`FixtureSpec`], [`FixtureMeta`], [`ReplayError`]); `video.rs`
//! [`ReplayVideo`]; `audio.rs` the Ogg Opus file and [`ReplayAudio`]; `ivf.rs` the layers'
//! container (ours, and why it is not rtc-media's).
//!
//! Not for: recording what a real camera sees (no device input here), or replaying fixtures
//! made with other encoders (the IVF files must hold VP8 with capture-time timestamps).

mod audio;
mod ivf;
#[cfg(test)]
mod tests;
mod video;

pub use audio::ReplayAudio;
pub use video::ReplayVideo;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use videoroom_client::media::downscale::downscale;
use videoroom_client::media::{
    FrameError, OpusError, PatternSource, SourceError, Vp8Config, Vp8Encoder, Vp8Error,
};
use videoroom_client::publish::camera_layers;

/// The fixture format this module writes and reads ([`FixtureMeta::version`]).
pub const FORMAT_VERSION: u32 = 1;
/// The metadata file in a fixture directory.
pub const META_FILE: &str = "meta.json";
/// The audio file in a fixture directory.
pub const AUDIO_FILE: &str = "audio.ogg";

/// Microseconds per second: the IVF timebase's denominator.
pub(crate) const MICROS_PER_SECOND: u64 = 1_000_000;

/// The name of layer `index`'s file in a fixture directory (`layer0.ivf` is the largest).
pub fn layer_file(index: usize) -> String {
    format!("layer{index}.ivf")
}

/// What to put in a fixture.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureSpec {
    /// The full-size layer's width (the pattern's).
    pub width: u32,
    /// The full-size layer's height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Length of the video and of the audio loop.
    pub seconds: u32,
    /// Capture time of frame 0, µs since the UNIX epoch (in the future: the replay sends frame
    /// `k` at its capture time).
    pub start_unix_micros: u64,
    /// The full-size layer's bitrate; the smaller layers get what the live camera's would.
    pub target_kbps: u32,
    /// A keyframe on every layer every this many frames (frame 0 is one).
    pub keyframe_interval: u32,
    /// The tone's frequency.
    pub tone_hz: f64,
    /// The tone's amplitude, 0.0..=1.0 of full scale.
    pub amplitude: f64,
}

/// A fixture's `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixtureMeta {
    /// [`FORMAT_VERSION`] when written.
    pub version: u32,
    /// The full-size layer's width.
    pub width: u32,
    /// The full-size layer's height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Captures in the recording (frame numbers `0..frames`).
    pub frames: u64,
    /// Capture time of frame 0, µs since the UNIX epoch.
    pub start_unix_micros: u64,
    /// A keyframe on every layer every this many frames.
    pub keyframe_interval: u32,
    /// The full-size layer's bitrate.
    pub target_kbps: u32,
    /// Each layer's size, largest first: `layers[i]` is in [`layer_file`]`(i)`.
    pub layers: Vec<(u32, u32)>,
    /// The tone's RMS level, dBov (for the audio-level extension).
    pub audio_level_dbov: f32,
}

impl FixtureMeta {
    /// The frame number whose capture time is `capture_micros` (the inverse of
    /// [`capture_micros`], whose division rounds down).
    pub fn frame_number(&self, capture_micros: u64) -> u64 {
        let offset = capture_micros.saturating_sub(self.start_unix_micros);
        offset
            .saturating_mul(u64::from(self.fps))
            .div_ceil(MICROS_PER_SECOND)
    }
}

/// Capture time of frame `k` of a recording starting at `start` (µs) at `fps`.
pub(crate) fn capture_micros(start: u64, fps: u32, k: u64) -> u64 {
    start.saturating_add(k.saturating_mul(MICROS_PER_SECOND) / u64::from(fps.max(1)))
}

/// Why a fixture could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// A file or the directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// `meta.json` is not a fixture's metadata.
    #[error("{}: not a replay fixture's metadata ({source}); make the fixture again", path.display())]
    BadMeta {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The fixture was made by another version of the bot.
    #[error("{}: fixture format {found}, this bot reads {FORMAT_VERSION}; make the fixture again", path.display())]
    Version {
        /// The metadata file.
        path: PathBuf,
        /// The version it says.
        found: u32,
    },
    /// A media file is not what a fixture holds (truncated, another codec, a bad checksum).
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A media file holds no frames or packets.
    #[error("{}: no media in it", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The spec cannot be made into a fixture.
    #[error("invalid fixture spec: {0}")]
    InvalidSpec(String),
    /// Rendering or downscaling the pattern failed.
    #[error("pattern: {0}")]
    Frame(#[from] FrameError),
    /// The VP8 encoder failed.
    #[error("VP8: {0}")]
    Vp8(#[from] Vp8Error),
    /// The Opus encoder failed.
    #[error("Opus: {0}")]
    Opus(#[from] OpusError),
    /// The tone source failed.
    #[error("tone: {0}")]
    Source(#[from] SourceError),
    /// The audio file is not an Ogg stream (what the `ogg` crate's reader said).
    #[error("{}: not a fixture's Ogg Opus: {source}; make the fixture again", path.display())]
    Ogg {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        #[source]
        source: ogg::OggReadError,
    },
}

impl ReplayError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

impl FixtureSpec {
    fn validate(&self) -> Result<(), ReplayError> {
        let bad = |what: String| Err(ReplayError::InvalidSpec(what));
        if self.width == 0 || self.height == 0 || self.width > u32::from(u16::MAX) {
            return bad(format!("size {}x{}", self.width, self.height));
        }
        if self.fps == 0 || self.fps > 1000 {
            return bad(format!("{} fps", self.fps));
        }
        if self.seconds == 0 {
            return bad("0 seconds".into());
        }
        if self.keyframe_interval == 0 {
            return bad("keyframe interval 0".into());
        }
        if self.target_kbps == 0 {
            return bad("bitrate 0".into());
        }
        if !(self.tone_hz.is_finite() && self.amplitude.is_finite()) {
            return bad("tone frequency and amplitude must be finite".into());
        }
        Ok(())
    }
}

/// Writes a fixture made to `spec` into `dir` (created if missing; files of an older fixture
/// there are replaced) and returns its metadata, also written to `meta.json`.
///
/// Video: frame `k` of the bot's [`PatternSource`], stamped `start + k / fps`, encoded as the
/// live camera's simulcast layers (full, half, quarter: those [`camera_layers`] says fit), each
/// smaller layer downscaled from the next larger one, all layers keyframes at the same frames.
/// Audio: the bot's [`ToneSource`] as 20 ms Opus packets ([`OpusConfig::voice`]).
pub fn generate(dir: &Path, spec: &FixtureSpec) -> Result<FixtureMeta, ReplayError> {
    spec.validate()?;
    std::fs::create_dir_all(dir).map_err(|e| ReplayError::io(dir, e))?;

    let mut layers: Vec<((u32, u32), u32)> = camera_layers(1)
        .iter()
        .filter_map(|l| {
            l.size(spec.width, spec.height)
                .map(|size| (size, l.target_kbps(spec.target_kbps)))
        })
        .collect();
    layers.sort_by_key(|&((w, h), _)| std::cmp::Reverse(u64::from(w) * u64::from(h)));

    let mut encoders = Vec::with_capacity(layers.len());
    let mut writers = Vec::with_capacity(layers.len());
    for (i, &((w, h), kbps)) in layers.iter().enumerate() {
        let mut config = Vp8Config::new(w, h, kbps);
        config.fps = spec.fps;
        // Keyframes only where we force them, so that every layer has them at the same frames.
        config.keyframe_max_distance = spec.keyframe_interval;
        encoders.push(Vp8Encoder::new(config)?);
        writers.push(ivf::IvfWriter::create(&dir.join(layer_file(i)), w, h)?);
    }

    let pattern = PatternSource::new(spec.width, spec.height, spec.fps)?;
    let frames = u64::from(spec.seconds) * u64::from(spec.fps);
    for k in 0..frames {
        let capture = capture_micros(spec.start_unix_micros, spec.fps, k);
        let mut frame = pattern.render(k, capture);
        for (i, (encoder, writer)) in encoders.iter_mut().zip(&mut writers).enumerate() {
            if i > 0 {
                let (w, h) = layers[i].0;
                frame = downscale(&frame, w, h)?;
            }
            if k.is_multiple_of(u64::from(spec.keyframe_interval)) {
                encoder.force_keyframe();
            }
            // `None`: rate control dropped the frame; the layer has nothing for this capture.
            if let Some(encoded) = encoder.encode(&frame)? {
                writer.write_frame(capture, &encoded.data)?;
            }
        }
    }
    for writer in writers {
        writer.finish()?;
    }

    let audio_level_dbov = audio::write(&dir.join(AUDIO_FILE), spec)?;

    let meta = FixtureMeta {
        version: FORMAT_VERSION,
        width: spec.width,
        height: spec.height,
        fps: spec.fps,
        frames,
        start_unix_micros: spec.start_unix_micros,
        keyframe_interval: spec.keyframe_interval,
        target_kbps: spec.target_kbps,
        layers: layers.iter().map(|&(size, _)| size).collect(),
        audio_level_dbov,
    };
    let path = dir.join(META_FILE);
    let json = serde_json::to_vec_pretty(&meta).map_err(|source| ReplayError::BadMeta {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&path, json).map_err(|e| ReplayError::io(&path, e))?;
    Ok(meta)
}

/// Reads and checks `dir/meta.json`.
pub(crate) fn read_meta(dir: &Path) -> Result<FixtureMeta, ReplayError> {
    let path = dir.join(META_FILE);
    let bytes = std::fs::read(&path).map_err(|e| ReplayError::io(&path, e))?;
    // The version first, so that another version's fields do not make a confusing error.
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let version: Version =
        serde_json::from_slice(&bytes).map_err(|source| ReplayError::BadMeta {
            path: path.clone(),
            source,
        })?;
    if version.version != FORMAT_VERSION {
        return Err(ReplayError::Version {
            path,
            found: version.version,
        });
    }
    let meta: FixtureMeta =
        serde_json::from_slice(&bytes).map_err(|source| ReplayError::BadMeta {
            path: path.clone(),
            source,
        })?;
    if meta.fps == 0 || meta.layers.is_empty() {
        return Err(ReplayError::corrupt(&path, "no frame rate or no layers"));
    }
    Ok(meta)
}
