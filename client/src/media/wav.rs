//! An [`AudioSource`] that plays a WAV file in a loop (read with `hound`).
//!
//! Accepted: PCM with 8- to 32-bit integer samples or 32-bit float samples, mono or stereo, at
//! any sample rate. The output is 48 kHz, 20 ms frames, mono by default ([`WavSource::open`]:
//! stereo files are averaged) or stereo ([`WavSource::open_with`]: mono files are copied to both
//! channels). Files at other rates are resampled with the same converter as the microphone
//! (rubato's FFT resampler), so any ordinary recording can be used as a test voice; the
//! converter's delay puts a few milliseconds of silence at the very start.
//!
//! Like [`ToneSource`](super::ToneSource), frames are stamped from the wall clock at `open` and
//! advance by exactly 20 ms each; the source does not pace itself. At the end of the file it
//! starts over, seamlessly: a file that is not a whole number of frames long continues into its
//! own beginning within the same frame.

use super::devices::audio::{RateConverter, remix, to_i16};
use super::opus::{AudioFrame, AudioSource, Channels, FRAME_MICROS, FRAME_SAMPLES, SAMPLE_RATE};
use super::{SourceError, unix_micros_now};
use rubato::FixedSync;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Why a WAV file could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// The file could not be opened (missing, no permission, ...).
    #[error("cannot open WAV file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a readable WAV file.
    #[error("invalid WAV file {path}: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What the parser reported.
        reason: String,
    },
    /// The file is valid WAV but in a format this source does not play.
    #[error("unsupported WAV file {path}: {detail}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported, and what is.
        detail: String,
    },
    /// The file has no samples.
    #[error("WAV file {path} contains no audio")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Samples could not be read or converted.
    #[error("cannot read WAV file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl From<WavError> for SourceError {
    fn from(e: WavError) -> Self {
        SourceError::Failed(e.to_string())
    }
}

type Reader = hound::WavReader<BufReader<File>>;

/// Plays a WAV file as 48 kHz, 20 ms frames, starting over at its end.
pub struct WavSource {
    path: PathBuf,
    reader: Reader,
    spec: hound::WavSpec,
    channels: Channels,
    resampler: Option<RateConverter>,
    next_micros: u64,
}

impl std::fmt::Debug for WavSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSource")
            .field("path", &self.path)
            .field("spec", &self.spec)
            .field("channels", &self.channels)
            .field("next_micros", &self.next_micros)
            .finish_non_exhaustive()
    }
}

impl WavSource {
    /// Opens `path` for mono output (stereo files are averaged).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WavError> {
        Self::open_with(path, Channels::Mono)
    }

    /// Opens `path` for output with `channels`.
    pub fn open_with(path: impl AsRef<Path>, channels: Channels) -> Result<Self, WavError> {
        let path = path.as_ref().to_owned();
        let file = File::open(&path).map_err(|source| WavError::Open {
            path: path.clone(),
            source,
        })?;
        let reader = hound::WavReader::new(BufReader::new(file)).map_err(|e| match e {
            hound::Error::Unsupported => WavError::Unsupported {
                path: path.clone(),
                detail: "not PCM: only integer or 32-bit float PCM is supported".to_owned(),
            },
            other => WavError::BadHeader {
                path: path.clone(),
                reason: other.to_string(),
            },
        })?;
        let spec = reader.spec();
        let unsupported = |detail: String| WavError::Unsupported {
            path: path.clone(),
            detail,
        };
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, 1..=32) | (hound::SampleFormat::Float, 32) => {}
            (format, bits) => {
                return Err(unsupported(format!(
                    "{bits}-bit {format:?} samples (8- to 32-bit integer or 32-bit float \
                     are supported)"
                )));
            }
        }
        if !matches!(spec.channels, 1 | 2) {
            return Err(unsupported(format!(
                "{} channels (mono or stereo are supported)",
                spec.channels
            )));
        }
        if reader.duration() == 0 {
            return Err(WavError::Empty { path });
        }
        let resampler = if spec.sample_rate == SAMPLE_RATE {
            None
        } else {
            Some(
                RateConverter::new(
                    spec.sample_rate,
                    SAMPLE_RATE,
                    FRAME_SAMPLES,
                    channels.count(),
                    FixedSync::Output,
                )
                .map_err(unsupported)?,
            )
        };
        Ok(Self {
            path,
            reader,
            spec,
            channels,
            resampler,
            next_micros: unix_micros_now(),
        })
    }

    /// The file's format.
    pub fn spec(&self) -> hound::WavSpec {
        self.spec
    }

    /// The file being played.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The output layout.
    pub fn channels(&self) -> Channels {
        self.channels
    }

    fn read_error(&self, e: impl std::fmt::Display) -> WavError {
        WavError::Read {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Appends up to `count` samples from the current position to `out`, as `f32` in [-1, 1].
    /// Stops early at the end of the data (or at a truncated end of the file).
    fn read_samples(&mut self, count: usize, out: &mut Vec<f32>) -> Result<(), WavError> {
        fn push<S>(
            samples: impl Iterator<Item = hound::Result<S>>,
            convert: impl Fn(S) -> f32,
            out: &mut Vec<f32>,
        ) -> Result<(), hound::Error> {
            for s in samples {
                match s {
                    Ok(s) => out.push(convert(s)),
                    // A file cut short: its end is wherever the data stops.
                    Err(hound::Error::IoError(e))
                        if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                    {
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        let result = match self.spec.sample_format {
            hound::SampleFormat::Float => {
                push(self.reader.samples::<f32>().take(count), |s| s, out)
            }
            hound::SampleFormat::Int => {
                // Full scale is 2^(bits - 1); exact in f32 up to 24 bits.
                let scale = 1.0 / (1u64 << (self.spec.bits_per_sample - 1)) as f32;
                let convert = |s: i32| s as f32 * scale;
                push(self.reader.samples::<i32>().take(count), convert, out)
            }
        };
        result.map_err(|e| self.read_error(e))
    }

    /// The next `frames` frames in the file's own layout, wrapping around at the end.
    fn read_frames(&mut self, frames: usize) -> Result<Vec<f32>, WavError> {
        let file_channels = usize::from(self.spec.channels);
        let wanted = frames * file_channels;
        let mut samples = Vec::with_capacity(wanted);
        let mut just_rewound = false;
        while samples.len() < wanted {
            let before = samples.len();
            self.read_samples(wanted - before, &mut samples)?;
            if samples.len() < wanted {
                // End of the data: drop a partial last frame, then start over.
                samples.truncate(samples.len() / file_channels * file_channels);
                if just_rewound && samples.len() == before {
                    return Err(WavError::Empty {
                        path: self.path.clone(),
                    });
                }
                self.reader.seek(0).map_err(|e| self.read_error(e))?;
                just_rewound = true;
            }
        }
        Ok(samples)
    }
}

impl AudioSource for WavSource {
    fn next_frame(&mut self) -> Result<AudioFrame, SourceError> {
        let file_channels = usize::from(self.spec.channels);
        let out_channels = self.channels.count();
        let needed = self
            .resampler
            .as_ref()
            .map_or(FRAME_SAMPLES, RateConverter::input_frames_next);
        let raw = self.read_frames(needed)?;
        let mixed = remix(&raw, file_channels, out_channels);
        let mut samples: Vec<i16> = match &mut self.resampler {
            None => mixed.iter().map(|&s| to_i16(s)).collect(),
            Some(r) => r
                .process(&mixed)
                .map_err(|e| SourceError::Failed(format!("{}: {e}", self.path.display())))?
                .iter()
                .map(|&s| to_i16(s))
                .collect(),
        };
        samples.resize(FRAME_SAMPLES * out_channels, 0);
        let capture_micros = self.next_micros;
        self.next_micros += FRAME_MICROS;
        Ok(AudioFrame {
            samples,
            channels: self.channels,
            capture_micros,
        })
    }
}
