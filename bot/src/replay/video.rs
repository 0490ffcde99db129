//! [`ReplayVideo`]: a fixture's simulcast layers, sent capture by capture at the capture times.

use super::{FixtureMeta, META_FILE, ReplayError, ivf, layer_file, read_meta};
use std::path::Path;
use videoroom_client::media::{
    EncodedFrame, EncodedVideoSource, SourceError, VideoSource, unix_micros_now,
};

/// One layer's frame of a capture.
#[derive(Debug, Clone)]
pub(super) struct RecordedFrame {
    pub(super) layer: usize,
    pub(super) keyframe: bool,
    pub(super) data: Vec<u8>,
}

/// All layers' frames of one capture time.
#[derive(Debug, Clone)]
pub(super) struct Capture {
    pub(super) capture_micros: u64,
    pub(super) frame_number: u64,
    pub(super) frames: Vec<RecordedFrame>,
}

/// A fixture's video, replayed: an [`EncodedVideoSource`] that sends each capture's frames at
/// its capture time.
#[derive(Debug)]
pub struct ReplayVideo {
    meta: FixtureMeta,
    /// Sorted by capture time; each holds the frames of every layer that has one.
    pub(super) captures: Vec<Capture>,
    /// The next capture to send; `None` before the first call (which picks where to start).
    next: Option<usize>,
}

impl ReplayVideo {
    /// Loads the fixture in `dir` (every layer's frames, into memory).
    pub fn open(dir: &Path) -> Result<Self, ReplayError> {
        let meta = read_meta(dir)?;
        let mut captures: Vec<Capture> = Vec::new();
        for (layer, &(width, height)) in meta.layers.iter().enumerate() {
            let path = dir.join(layer_file(layer));
            let bytes = std::fs::read(&path).map_err(|e| ReplayError::io(&path, e))?;
            let frames = ivf::parse(&path, &bytes, (width, height))?;
            if frames.is_empty() {
                return Err(ReplayError::Empty { path });
            }
            for (capture_micros, data) in frames {
                // VP8 frame tag: bit 0 of the first byte is 0 for a keyframe (RFC 6386 9.1).
                let keyframe = data.first().is_some_and(|b| b & 1 == 0);
                let frame = RecordedFrame {
                    layer,
                    keyframe,
                    data,
                };
                match captures.binary_search_by_key(&capture_micros, |c| c.capture_micros) {
                    Ok(i) => captures[i].frames.push(frame),
                    Err(i) => captures.insert(
                        i,
                        Capture {
                            capture_micros,
                            frame_number: meta.frame_number(capture_micros),
                            frames: vec![frame],
                        },
                    ),
                }
            }
        }
        if captures.is_empty() {
            return Err(ReplayError::Empty {
                path: dir.join(META_FILE),
            });
        }
        Ok(Self {
            meta,
            captures,
            next: None,
        })
    }

    /// The fixture's metadata.
    pub fn meta(&self) -> &FixtureMeta {
        &self.meta
    }
}

impl VideoSource for ReplayVideo {
    fn next_frame(&mut self) -> Result<videoroom_client::media::I420Frame, SourceError> {
        Err(SourceError::Failed(
            "a replayed recording is encoded".into(),
        ))
    }

    fn encoded(&mut self) -> Option<&mut dyn EncodedVideoSource> {
        Some(self)
    }
}

impl EncodedVideoSource for ReplayVideo {
    fn layer_sizes(&self) -> Vec<(u32, u32)> {
        self.meta.layers.clone()
    }

    /// Blocks (a thread sleep: call it from a blocking thread) until the capture is due.
    fn next_frames(&mut self) -> Result<Vec<(usize, EncodedFrame)>, SourceError> {
        let index = match self.next {
            Some(index) => index,
            None => {
                let now = unix_micros_now();
                self.captures.partition_point(|c| c.capture_micros < now)
            }
        };
        self.next = Some(index);
        let Some(capture) = self.captures.get(index) else {
            return Err(SourceError::Ended);
        };
        sleep_until(capture.capture_micros);
        self.next = Some(index + 1);
        Ok(capture
            .frames
            .iter()
            .map(|f| {
                (
                    f.layer,
                    EncodedFrame {
                        data: f.data.clone(),
                        keyframe: f.keyframe,
                        capture_micros: capture.capture_micros,
                        frame_number: capture.frame_number,
                    },
                )
            })
            .collect())
    }
}

/// Sleeps until the wall clock says `unix_micros` (at once if it has passed).
fn sleep_until(unix_micros: u64) {
    loop {
        let now = unix_micros_now();
        if now >= unix_micros {
            return;
        }
        std::thread::sleep(std::time::Duration::from_micros(unix_micros - now));
    }
}
