//! A [`VideoSource`] that plays a YUV4MPEG2 (`.y4m`) file in a loop.
//!
//! Only 8-bit 4:2:0 files are accepted (`C420`, `C420jpeg`, `C420paldv`, `C420mpeg2`, or no `C`
//! tag, which means `C420`); the chroma siting variants differ only in where the chroma samples
//! sit, not in the plane layout, so they are all passed through unchanged as I420.
//!
//! Frames are stamped like [`PatternSource`](super::PatternSource) with the wall clock
//! ([`unix_micros_now`]) and a frame number that keeps counting across loops. Optionally
//! ([`Y4mSource::with_burn_in`]) the number and capture time are also burned into the pixels with
//! [`burn_in`], so a receiver can read them back with
//! [`read_burned_in`](super::read_burned_in).

use super::pattern::{VideoSource, burn_in};
use super::{FrameError, I420Frame, SourceError, unix_micros_now};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Why a Y4M file could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum Y4mError {
    /// The file could not be opened (missing, no permission, ...).
    #[error("cannot open Y4M file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with a valid YUV4MPEG2 header.
    #[error("invalid Y4M header in {path}: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What the parser reported.
        reason: String,
    },
    /// The file is valid Y4M but not 8-bit 4:2:0.
    #[error(
        "unsupported Y4M colorspace {colorspace} in {path}: only 8-bit 4:2:0 \
         (C420, C420jpeg, C420paldv, C420mpeg2) is supported"
    )]
    UnsupportedColorspace {
        /// The file.
        path: PathBuf,
        /// The colorspace the header declares.
        colorspace: String,
    },
    /// The frame size in the header is not usable.
    #[error("unsupported Y4M frame size in {path}: {source}")]
    InvalidSize {
        /// The file.
        path: PathBuf,
        /// Why the size was rejected.
        #[source]
        source: FrameError,
    },
    /// The file has a header but no complete frame.
    #[error("Y4M file {path} contains no complete frame")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A frame could not be read.
    #[error("cannot read a frame from Y4M file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
}

impl From<Y4mError> for SourceError {
    fn from(e: Y4mError) -> Self {
        SourceError::Failed(e.to_string())
    }
}

type Decoder = ::y4m::Decoder<BufReader<File>>;
/// The Y, U and V planes of one frame.
type Planes = (Vec<u8>, Vec<u8>, Vec<u8>);

/// Plays an 8-bit 4:2:0 Y4M file, starting over at its end.
pub struct Y4mSource {
    path: PathBuf,
    decoder: Decoder,
    width: u32,
    height: u32,
    framerate: (usize, usize),
    /// Frames read since the file was (re)opened; 0 at end of file means the file is empty.
    frames_this_pass: u64,
    next_number: u64,
    burn_in: bool,
}

impl std::fmt::Debug for Y4mSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mSource")
            .field("path", &self.path)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("framerate", &self.framerate)
            .field("next_number", &self.next_number)
            .field("burn_in", &self.burn_in)
            .finish_non_exhaustive()
    }
}

fn colorspace_name(c: ::y4m::Colorspace) -> String {
    format!("{c:?}")
}

/// Opens `path` and parses and validates its header.
fn open_decoder(path: &Path) -> Result<(Decoder, u32, u32), Y4mError> {
    let file = File::open(path).map_err(|source| Y4mError::Open {
        path: path.to_owned(),
        source,
    })?;
    let decoder = ::y4m::Decoder::new(BufReader::new(file)).map_err(|e| match e {
        ::y4m::Error::UnknownColorspace => Y4mError::UnsupportedColorspace {
            path: path.to_owned(),
            colorspace: "unknown".to_owned(),
        },
        ::y4m::Error::IoError(source) => Y4mError::Open {
            path: path.to_owned(),
            source,
        },
        other => Y4mError::BadHeader {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    })?;
    match decoder.get_colorspace() {
        ::y4m::Colorspace::C420
        | ::y4m::Colorspace::C420jpeg
        | ::y4m::Colorspace::C420paldv
        | ::y4m::Colorspace::C420mpeg2 => {}
        other => {
            return Err(Y4mError::UnsupportedColorspace {
                path: path.to_owned(),
                colorspace: colorspace_name(other),
            });
        }
    }
    let invalid = |width: u32, height: u32| Y4mError::InvalidSize {
        path: path.to_owned(),
        source: FrameError::InvalidSize { width, height },
    };
    let width = u32::try_from(decoder.get_width()).map_err(|_| invalid(u32::MAX, 0))?;
    let height = u32::try_from(decoder.get_height()).map_err(|_| invalid(width, u32::MAX))?;
    if width == 0 || height == 0 || width > I420Frame::MAX_DIMENSION {
        return Err(invalid(width, height));
    }
    if height > I420Frame::MAX_DIMENSION {
        return Err(invalid(width, height));
    }
    Ok((decoder, width, height))
}

impl Y4mSource {
    /// Opens `path` and checks its header. Fails on a missing file, a malformed header, a
    /// colorspace other than 8-bit 4:2:0 or an unusable frame size.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Y4mError> {
        let path = path.as_ref().to_owned();
        let (decoder, width, height) = open_decoder(&path)?;
        let rate = decoder.get_framerate();
        Ok(Self {
            path,
            framerate: (rate.num, rate.den),
            decoder,
            width,
            height,
            frames_this_pass: 0,
            next_number: 0,
            burn_in: false,
        })
    }

    /// Also burn the frame number and capture time into the top of each frame (see
    /// [`burn_in`]); off by default, so frames are the file's pixels unchanged.
    pub fn with_burn_in(mut self, on: bool) -> Self {
        self.burn_in = on;
        self
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The frame rate the header declares, as (numerator, denominator).
    pub fn framerate(&self) -> (usize, usize) {
        self.framerate
    }

    /// The file being played.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the next frame's planes, reopening the file at its end.
    fn read_planes(&mut self) -> Result<Planes, Y4mError> {
        // At most two attempts: the current pass, then one fresh pass after end of file.
        for _ in 0..2 {
            match self.decoder.read_frame() {
                Ok(frame) => {
                    self.frames_this_pass += 1;
                    return Ok((
                        frame.get_y_plane().to_vec(),
                        frame.get_u_plane().to_vec(),
                        frame.get_v_plane().to_vec(),
                    ));
                }
                // End of file, or a truncated last frame: start over.
                Err(::y4m::Error::EOF) => {
                    if self.frames_this_pass == 0 {
                        return Err(Y4mError::Empty {
                            path: self.path.clone(),
                        });
                    }
                    let (decoder, width, height) = open_decoder(&self.path)?;
                    if (width, height) != (self.width, self.height) {
                        return Err(Y4mError::InvalidSize {
                            path: self.path.clone(),
                            source: FrameError::InvalidSize { width, height },
                        });
                    }
                    self.decoder = decoder;
                    self.frames_this_pass = 0;
                }
                Err(e) => {
                    return Err(Y4mError::Read {
                        path: self.path.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Err(Y4mError::Empty {
            path: self.path.clone(),
        })
    }
}

impl VideoSource for Y4mSource {
    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        let (y, u, v) = self.read_planes()?;
        let mut frame = I420Frame::from_planes(self.width, self.height, y, u, v).map_err(|e| {
            SourceError::Failed(format!("bad frame in {}: {e}", self.path.display()))
        })?;
        let n = self.next_number;
        let capture_micros = unix_micros_now();
        self.next_number += 1;
        if self.burn_in {
            burn_in(&mut frame, n, capture_micros);
        }
        frame.frame_number = n;
        frame.capture_micros = capture_micros;
        Ok(frame)
    }
}
