//! Video sources: the [`VideoSource`] trait and a synthetic [`PatternSource`].
//!
//! The pattern burns its frame number and capture time into the top of the Y plane as a binary
//! code of large black/white cells, which [`read_burned_in`] reads back from *decoded* pixels.
//! That lets an end-to-end test measure loss, order and latency of real video through the whole
//! pipeline (encoder, RTP, server, decoder) without side channels.
//!
//! Code layout: two rows of [`CODE_COLUMNS`] square cells of `width / CODE_COLUMNS` pixels
//! (at least [`MIN_CELL`]) from the top-left corner, 160 bits, most significant bit first:
//! a 16-bit sync word, the 64-bit frame number, the 64-bit capture time (µs since the UNIX epoch)
//! and a CRC-16 over those two numbers. A one bit is white (Y 235), a zero bit black (Y 16).
//! With 8×8-pixel cells at 640 px wide, each cell covers whole 4×4 transform blocks, so VP8
//! keeps it flat even at low bitrates.

use super::{I420Frame, SourceError, unix_micros_now};

/// Something that produces raw video frames: a camera, a screen, a file, a synthetic pattern.
pub trait VideoSource: Send {
    /// The next frame. A synthetic source returns immediately; a device blocks until one is ready.
    fn next_frame(&mut self) -> Result<I420Frame, SourceError>;

    /// A source of frames already encoded (a replayed recording, see [`super::encoded`]):
    /// the publish path takes its frames from here and never calls `next_frame`.
    fn encoded(&mut self) -> Option<&mut dyn super::EncodedVideoSource> {
        None
    }
}

/// Cells per code row.
pub const CODE_COLUMNS: u32 = 80;
/// Code rows.
pub const CODE_ROWS: u32 = 2;
/// The smallest cell, in pixels; narrower frames (< 320 px) carry no code.
pub const MIN_CELL: u32 = 4;
const SYNC: u16 = 0xA5C3;
const BITS: usize = 160;
const ONE: u8 = 235;
const ZERO: u8 = 16;

/// The cell size for a frame, or `None` if the frame is too small to carry the code.
fn cell_size(width: u32, height: u32) -> Option<usize> {
    let cell = width / CODE_COLUMNS;
    // Even cells keep the code aligned to the 2×2 chroma grid.
    let cell = cell & !1;
    (cell >= MIN_CELL && cell * CODE_ROWS <= height).then_some(cell as usize)
}

/// Height in pixels of the band the code occupies at the top of a frame (0 if none).
pub fn code_band_height(width: u32, height: u32) -> u32 {
    cell_size(width, height).map_or(0, |c| c as u32 * CODE_ROWS)
}

/// CRC-16/CCITT-FALSE.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn payload_bytes(frame_number: u64, capture_micros: u64) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&frame_number.to_be_bytes());
    bytes[8..].copy_from_slice(&capture_micros.to_be_bytes());
    bytes
}

fn code_bits(frame_number: u64, capture_micros: u64) -> [bool; BITS] {
    let payload = payload_bytes(frame_number, capture_micros);
    let mut bytes = [0u8; 20];
    bytes[..2].copy_from_slice(&SYNC.to_be_bytes());
    bytes[2..18].copy_from_slice(&payload);
    bytes[18..].copy_from_slice(&crc16(&payload).to_be_bytes());
    let mut bits = [false; BITS];
    for (i, bit) in bits.iter_mut().enumerate() {
        *bit = bytes[i / 8] & (0x80 >> (i % 8)) != 0;
    }
    bits
}

/// Writes the code into the top band of `frame` (no-op if the frame is too small).
pub fn burn_in(frame: &mut I420Frame, frame_number: u64, capture_micros: u64) {
    let Some(cell) = cell_size(frame.width(), frame.height()) else {
        return;
    };
    let width = frame.width() as usize;
    let chroma_width = frame.chroma_width() as usize;
    let bits = code_bits(frame_number, capture_micros);
    let (y, u, v) = frame.planes_mut();
    for (i, &bit) in bits.iter().enumerate() {
        let (col, row) = (i % CODE_COLUMNS as usize, i / CODE_COLUMNS as usize);
        let value = if bit { ONE } else { ZERO };
        for py in row * cell..(row + 1) * cell {
            let start = py * width + col * cell;
            y[start..start + cell].fill(value);
        }
        for py in row * cell / 2..(row + 1) * cell / 2 {
            let start = py * chroma_width + col * cell / 2;
            u[start..start + cell / 2].fill(128);
            v[start..start + cell / 2].fill(128);
        }
    }
}

/// Reads the frame number and capture time burned in by [`PatternSource`] (or [`burn_in`]).
///
/// Each cell is judged by the mean of its inner half (edges blur under compression). Returns
/// `None` if the frame is too small, the sync word is wrong or the checksum does not match.
pub fn read_burned_in(frame: &I420Frame) -> Option<(u64, u64)> {
    let cell = cell_size(frame.width(), frame.height())?;
    let width = frame.width() as usize;
    let y = frame.y();
    let (inner_start, inner_end) = (cell / 4, cell - cell / 4);
    let mut bytes = [0u8; 20];
    for i in 0..BITS {
        let (col, row) = (i % CODE_COLUMNS as usize, i / CODE_COLUMNS as usize);
        let (mut sum, mut count) = (0u32, 0u32);
        for py in row * cell + inner_start..row * cell + inner_end {
            let start = py * width + col * cell;
            for &p in &y[start + inner_start..start + inner_end] {
                sum += u32::from(p);
                count += 1;
            }
        }
        if sum > count * u32::from((ONE / 2) + (ZERO / 2)) {
            bytes[i / 8] |= 0x80 >> (i % 8);
        }
    }
    if u16::from_be_bytes([bytes[0], bytes[1]]) != SYNC {
        return None;
    }
    let payload: [u8; 16] = bytes[2..18].try_into().ok()?;
    if u16::from_be_bytes([bytes[18], bytes[19]]) != crc16(&payload) {
        return None;
    }
    let frame_number = u64::from_be_bytes(payload[..8].try_into().ok()?);
    let capture_micros = u64::from_be_bytes(payload[8..].try_into().ok()?);
    Some((frame_number, capture_micros))
}

/// How a [`PatternSource`] stamps its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternClock {
    /// The wall clock when `next_frame` is called (for live use; the source does not pace itself).
    Wall,
    /// `start_micros + n × frame interval`: deterministic, for tests and benchmarks.
    Simulated {
        /// Timestamp of frame 0.
        start_micros: u64,
    },
}

/// A synthetic moving picture: a drifting diagonal gradient, a bouncing square, a scrolling
/// random texture, slowly shifting colours, and the burned-in frame number and capture time (see the module docs).
#[derive(Debug)]
pub struct PatternSource {
    width: u32,
    height: u32,
    fps: u32,
    clock: PatternClock,
    next_number: u64,
    /// A black frame of the right size, cloned for every new frame.
    blank: I420Frame,
}

impl PatternSource {
    /// A source of `width`×`height` frames at a nominal `fps`, stamped with the wall clock.
    pub fn new(width: u32, height: u32, fps: u32) -> Result<Self, super::FrameError> {
        let blank = I420Frame::black(width, height)?;
        Ok(Self {
            width,
            height,
            fps: fps.max(1),
            clock: PatternClock::Wall,
            next_number: 0,
            blank,
        })
    }

    /// The same source with another clock.
    pub fn with_clock(mut self, clock: PatternClock) -> Self {
        self.clock = clock;
        self
    }

    /// Nominal frame rate.
    pub fn fps(&self) -> u32 {
        self.fps
    }

    /// Frame `n` of the pattern, stamped `capture_micros`.
    pub fn render(&self, n: u64, capture_micros: u64) -> I420Frame {
        let (w, h) = (self.width as usize, self.height as usize);
        let band = code_band_height(self.width, self.height) as usize;
        let mut frame = self.blank.clone();
        let shift = (n % 512) as usize * 4;
        // A square of 1/6 of the height bouncing left-right across the frame.
        let side = (h / 6).max(2);
        let span = w.saturating_sub(side).max(1);
        let pos = (n as usize * 6) % (2 * span);
        let sx = if pos < span { pos } else { 2 * span - pos };
        let sy = band + (h.saturating_sub(band + side)) / 2;
        let cw = frame.chroma_width() as usize;
        let ch = frame.chroma_height() as usize;
        let (y, u, v) = frame.planes_mut();
        for py in band..h {
            let row = &mut y[py * w..(py + 1) * w];
            for (px, p) in row.iter_mut().enumerate() {
                let t = (px + py / 2 + shift) % 512;
                let tri = if t < 256 { t } else { 511 - t };
                *p = (16 + tri * 219 / 255) as u8;
            }
            // The lower third: a scrolling texture of 4×4 pseudo-random blocks, so the encoder
            // has detail and motion to work on (like a real scene), not just smooth gradients.
            if py >= h - h / 3 {
                let scroll = n as usize * 2;
                for (px, p) in row.iter_mut().enumerate() {
                    let (bx, by) = ((px + scroll) / 4, py / 4);
                    let hash = (bx as u32).wrapping_mul(0x9E37_79B1)
                        ^ (by as u32).wrapping_mul(0x85EB_CA77);
                    let hash = hash ^ (hash >> 15);
                    *p = (48 + (hash.wrapping_mul(0x2C1B_3C6D) >> 24) * 160 / 255) as u8;
                }
            }
            if (sy..sy + side).contains(&py) {
                let end = (sx + side).min(w);
                row[sx..end].fill(235);
            }
        }
        let phase = (n % 256) as usize;
        for py in band / 2..ch {
            for px in 0..cw {
                u[py * cw + px] = (64 + (px * 128 / cw.max(1) + phase) % 128) as u8;
                v[py * cw + px] = (64 + (py * 128 / ch.max(1) + phase / 2) % 128) as u8;
            }
        }
        burn_in(&mut frame, n, capture_micros);
        frame.frame_number = n;
        frame.capture_micros = capture_micros;
        frame
    }
}

impl VideoSource for PatternSource {
    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        let n = self.next_number;
        let capture_micros = match self.clock {
            PatternClock::Wall => unix_micros_now(),
            PatternClock::Simulated { start_micros } => {
                start_micros.saturating_add(n.saturating_mul(1_000_000) / u64::from(self.fps))
            }
        };
        self.next_number += 1;
        Ok(self.render(n, capture_micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_survives_raw_pixels() {
        let src = PatternSource::new(640, 360, 30).unwrap();
        let f = src.render(123_456_789, 1_763_950_000_123_456);
        assert_eq!(
            read_burned_in(&f),
            Some((123_456_789, 1_763_950_000_123_456))
        );
    }

    #[test]
    fn corrupted_code_is_rejected() {
        let src = PatternSource::new(640, 360, 30).unwrap();
        let mut f = src.render(7, 42);
        // Flip one payload cell (row 0, column 40) to the opposite colour.
        let (y, _, _) = f.planes_mut();
        let cell = 8;
        for py in 0..cell {
            for px in 40 * cell..41 * cell {
                y[py * 640 + px] = 251 - y[py * 640 + px];
            }
        }
        assert_eq!(read_burned_in(&f), None);
    }

    #[test]
    fn tiny_frames_carry_no_code() {
        let src = PatternSource::new(160, 120, 30).unwrap();
        assert_eq!(read_burned_in(&src.render(1, 2)), None);
    }
}
