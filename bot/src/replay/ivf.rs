//! The layers' container: VP8 frames in IVF, each frame's timestamp its capture time in µs
//! (timebase 1/1 000 000), written and read here rather than with rtc-media's
//! `io::ivf_writer::IVFWriter` / `io::ivf_reader::IVFReader`, because:
//! - rtc-media's writer takes RTP packets and stamps frame `n` with the counter `n`: it cannot
//!   store capture times (and a frame the encoder dropped would shift every later one);
//! - rtc-media's reader trusts each frame header's size: it allocates and zero-fills that many
//!   bytes (up to 4 GiB) before reading, so a damaged file costs memory instead of an error.
//!   [`parse`] reads from the bytes in hand and checks every frame length, the fourcc, the
//!   picture size, the timebase, increasing timestamps and the header's frame count.

use super::{MICROS_PER_SECOND, ReplayError};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// IVF: the file header's and each frame header's size.
pub(crate) const HEADER_LEN: usize = 32;
const FRAME_HEADER_LEN: usize = 12;

/// Writes VP8 frames into an IVF file, each stamped with its capture time in µs.
pub(crate) struct IvfWriter {
    path: PathBuf,
    out: BufWriter<File>,
    frames: u32,
}

impl IvfWriter {
    pub(crate) fn create(path: &Path, width: u32, height: u32) -> Result<Self, ReplayError> {
        let file = File::create(path).map_err(|e| ReplayError::io(path, e))?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(b"DKIF");
        header.extend_from_slice(&0u16.to_le_bytes()); // version
        header.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        header.extend_from_slice(b"VP80");
        // Sizes are checked by `FixtureSpec::validate` (≤ u16::MAX).
        header.extend_from_slice(&(width as u16).to_le_bytes());
        header.extend_from_slice(&(height as u16).to_le_bytes());
        // Timebase 1/1 000 000: rate (denominator) then scale (numerator).
        header.extend_from_slice(&(MICROS_PER_SECOND as u32).to_le_bytes());
        header.extend_from_slice(&1u32.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes()); // frame count, set by `finish`
        header.extend_from_slice(&0u32.to_le_bytes()); // unused
        let mut out = BufWriter::new(file);
        out.write_all(&header)
            .map_err(|e| ReplayError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            frames: 0,
        })
    }

    pub(crate) fn write_frame(
        &mut self,
        capture_micros: u64,
        data: &[u8],
    ) -> Result<(), ReplayError> {
        let len = u32::try_from(data.len())
            .map_err(|_| ReplayError::corrupt(&self.path, "a frame of over 4 GiB"))?;
        let result = (|| {
            self.out.write_all(&len.to_le_bytes())?;
            self.out.write_all(&capture_micros.to_le_bytes())?;
            self.out.write_all(data)
        })();
        result.map_err(|e| ReplayError::io(&self.path, e))?;
        self.frames += 1;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<(), ReplayError> {
        let frames = self.frames;
        let result = (|| {
            self.out.seek(SeekFrom::Start(24))?;
            self.out.write_all(&frames.to_le_bytes())?;
            self.out.flush()?;
            self.out.get_ref().sync_all()
        })();
        result.map_err(|e| ReplayError::io(&self.path, e))
    }
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The frames of an IVF file as `(timestamp, data)`, checking that it holds VP8 of `size`.
pub(crate) fn parse(
    path: &Path,
    bytes: &[u8],
    size: (u32, u32),
) -> Result<Vec<(u64, Vec<u8>)>, ReplayError> {
    let corrupt =
        |reason: &str| ReplayError::corrupt(path, format!("not a fixture's IVF: {reason}"));
    if bytes.len() < HEADER_LEN || &bytes[..4] != b"DKIF" {
        return Err(corrupt("no IVF signature"));
    }
    if &bytes[8..12] != b"VP80" {
        return Err(corrupt("not VP8"));
    }
    let header_len = usize::from(le_u16(bytes, 6).unwrap_or(0));
    let width = u32::from(le_u16(bytes, 12).unwrap_or(0));
    let height = u32::from(le_u16(bytes, 14).unwrap_or(0));
    if (width, height) != size {
        return Err(corrupt(&format!(
            "{width}x{height}, meta.json says {}x{}",
            size.0, size.1
        )));
    }
    let (rate, scale) = (le_u32(bytes, 16), le_u32(bytes, 20));
    if rate != Some(MICROS_PER_SECOND as u32) || scale != Some(1) {
        return Err(corrupt("timebase is not 1/1000000"));
    }
    let count = le_u32(bytes, 24).unwrap_or(0) as usize;
    let mut pos = header_len.max(HEADER_LEN);
    // Not `with_capacity(count)`: the count comes from the file.
    let mut frames = Vec::new();
    while pos < bytes.len() {
        let (Some(len), Some(timestamp)) = (le_u32(bytes, pos), le_u64(bytes, pos + 4)) else {
            return Err(corrupt("truncated frame header"));
        };
        let start = pos + FRAME_HEADER_LEN;
        let Some(data) = bytes.get(start..start + len as usize) else {
            return Err(corrupt("truncated frame"));
        };
        if frames
            .last()
            .is_some_and(|&(last, _): &(u64, Vec<u8>)| timestamp <= last)
        {
            return Err(corrupt("timestamps not increasing"));
        }
        frames.push((timestamp, data.to_vec()));
        pos = start + len as usize;
    }
    if frames.len() != count {
        return Err(corrupt(&format!(
            "{} frames, the header says {count}",
            frames.len()
        )));
    }
    Ok(frames)
}
