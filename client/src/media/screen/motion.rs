//! Which captured screen frames to encode: a static screen costs (almost) nothing, a changing
//! one is encoded at the capture rate, and a viewer still gets a frame at least every 200 ms.
//!
//! Sans-I/O: [`MotionGate::observe`] takes the frame and an explicit `now` and returns a
//! [`MotionDecision`]; the caller owns the clock and the encoder.

use std::time::{Duration, Instant};

use crate::media::I420Frame;

/// Side of the square luma blocks compared between frames (one VP8 macroblock).
pub const BLOCK: u32 = 16;

/// Longest time between two encoded frames while the screen does not change (5 fps floor), so
/// that rate control keeps refining a static picture and a lost frame is repaired soon.
pub const FLOOR_INTERVAL: Duration = Duration::from_millis(200);

/// Why a frame is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeReason {
    /// The first frame, or the first at a new size.
    NewSize,
    /// Some blocks changed.
    Changed,
    /// A keyframe is wanted (a viewer joined or lost packets).
    Keyframe,
    /// Nothing changed, but [`FLOOR_INTERVAL`] passed since the last encoded frame.
    Floor,
}

/// What the gate says about one captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MotionDecision {
    /// Why to encode it, or `None` to skip it.
    pub encode: Option<EncodeReason>,
    /// Blocks that differ from the previous frame (all of them after a size change).
    pub changed_blocks: usize,
    /// Blocks in the frame.
    pub total_blocks: usize,
}

impl MotionDecision {
    /// Whether to encode the frame.
    pub fn should_encode(&self) -> bool {
        self.encode.is_some()
    }

    /// Share of the blocks that changed, 0.0..=1.0.
    pub fn changed_fraction(&self) -> f64 {
        if self.total_blocks == 0 {
            0.0
        } else {
            self.changed_blocks as f64 / self.total_blocks as f64
        }
    }
}

/// Compares each captured frame with the previous one, 16×16 luma block by block, and decides
/// whether to encode it. Chroma is not compared: screen content that changes only in colour at
/// constant luma is rare, and the 5 fps floor still sends it.
#[derive(Debug, Clone)]
pub struct MotionGate {
    floor_interval: Duration,
    size: Option<(u32, u32)>,
    hashes: Vec<u64>,
    scratch: Vec<u64>,
    changed: Vec<bool>,
    last_encoded: Option<Instant>,
}

impl Default for MotionGate {
    fn default() -> Self {
        Self::new()
    }
}

impl MotionGate {
    /// A gate with the 5 fps floor ([`FLOOR_INTERVAL`]).
    pub fn new() -> Self {
        Self::with_floor_interval(FLOOR_INTERVAL)
    }

    /// A gate that encodes an unchanged screen every `floor_interval`.
    pub fn with_floor_interval(floor_interval: Duration) -> Self {
        Self {
            floor_interval,
            size: None,
            hashes: Vec::new(),
            scratch: Vec::new(),
            changed: Vec::new(),
            last_encoded: None,
        }
    }

    /// Looks at a captured `frame` at `now` and says whether to encode it. `keyframe_wanted`
    /// (a pending PLI) always encodes. A frame at a new size counts as all blocks changed and
    /// starts over. Every decision to encode restarts the floor interval.
    pub fn observe(
        &mut self,
        frame: &I420Frame,
        now: Instant,
        keyframe_wanted: bool,
    ) -> MotionDecision {
        let size = (frame.width(), frame.height());
        block_hashes(frame, &mut self.scratch);
        let total_blocks = self.scratch.len();
        let new_size = self.size != Some(size);
        let changed_blocks = if new_size {
            self.size = Some(size);
            self.changed.clear();
            self.changed.resize(total_blocks, true);
            total_blocks
        } else {
            let mut count = 0;
            for ((changed, old), new) in
                self.changed.iter_mut().zip(&self.hashes).zip(&self.scratch)
            {
                *changed = old != new;
                count += usize::from(*changed);
            }
            count
        };
        std::mem::swap(&mut self.hashes, &mut self.scratch);

        let floor_due = self
            .last_encoded
            .is_none_or(|last| now.saturating_duration_since(last) >= self.floor_interval);
        let encode = if new_size {
            Some(EncodeReason::NewSize)
        } else if keyframe_wanted {
            Some(EncodeReason::Keyframe)
        } else if changed_blocks > 0 {
            Some(EncodeReason::Changed)
        } else if floor_due {
            Some(EncodeReason::Floor)
        } else {
            None
        };
        if encode.is_some() {
            self.last_encoded = Some(now);
        }
        MotionDecision {
            encode,
            changed_blocks,
            total_blocks,
        }
    }

    /// Which blocks changed in the last observed frame, row by row
    /// (`width.div_ceil(16)` per row); could drive libvpx's active map.
    pub fn changed_blocks(&self) -> &[bool] {
        &self.changed
    }
}

/// One 64-bit hash per 16×16 block of the Y plane (blocks at the right and bottom edges may be
/// smaller), row by row, into `out`.
///
/// Each block's state absorbs its pixels 8 bytes at a time with `h = (rotl(h, 5) ^ word) * K`
/// (FxHash's step). For a fixed input word every step is a bijection of the state, so two blocks
/// that differ in a single word (e.g. one pixel) always hash differently; larger changes collide
/// with a chance of about 2^-64. About 1 ms for 1920×1080 in a release build.
fn block_hashes(frame: &I420Frame, out: &mut Vec<u64>) {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let width = frame.width() as usize;
    let block = BLOCK as usize;
    let columns = width.div_ceil(block);
    let rows = (frame.height() as usize).div_ceil(block);
    out.clear();
    out.resize(columns * rows, 0);
    for (y, line) in frame.y().chunks_exact(width).enumerate() {
        let states = &mut out[(y / block) * columns..][..columns];
        for (state, pixels) in states.iter_mut().zip(line.chunks(block)) {
            let mut h = *state;
            let mut words = pixels.chunks_exact(8);
            for word in &mut words {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(word);
                h = (h.rotate_left(5) ^ u64::from_le_bytes(bytes)).wrapping_mul(K);
            }
            let rest = words.remainder();
            if !rest.is_empty() {
                let mut bytes = [0u8; 8];
                bytes[..rest.len()].copy_from_slice(rest);
                h = (h.rotate_left(5) ^ u64::from_le_bytes(bytes)).wrapping_mul(K);
            }
            *state = h;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u32, height: u32) -> I420Frame {
        let mut f = I420Frame::black(width, height).unwrap();
        let (y, _, _) = f.planes_mut();
        for (i, p) in y.iter_mut().enumerate() {
            *p = (i * 7 % 251) as u8;
        }
        f
    }

    fn set_pixel(f: &mut I420Frame, x: usize, y: usize, value: u8) {
        let width = f.width() as usize;
        let (plane, _, _) = f.planes_mut();
        plane[y * width + x] = value;
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_frame_is_encoded_as_all_changed() {
        let mut gate = MotionGate::new();
        let d = gate.observe(&frame(64, 48), Instant::now(), false);
        assert_eq!(d.encode, Some(EncodeReason::NewSize));
        assert_eq!((d.changed_blocks, d.total_blocks), (12, 12));
        assert_eq!(d.changed_fraction(), 1.0);
    }

    #[test]
    fn the_same_frame_changes_no_block_and_is_skipped() {
        let t0 = Instant::now();
        let mut gate = MotionGate::new();
        let f = frame(64, 48);
        gate.observe(&f, t0, false);
        let d = gate.observe(&f.clone(), t0 + ms(66), false);
        assert_eq!(d.changed_blocks, 0);
        assert_eq!(d.changed_fraction(), 0.0);
        assert_eq!(d.encode, None);
        assert!(!d.should_encode());
        assert!(gate.changed_blocks().iter().all(|c| !c));
    }

    #[test]
    fn one_pixel_changes_exactly_its_block() {
        let t0 = Instant::now();
        let mut gate = MotionGate::new();
        // 1920x1080: 120 x 68 blocks, the last row only 8 lines tall.
        let mut f = frame(1920, 1080);
        gate.observe(&f, t0, false);
        for (i, (x, y)) in [
            (0, 0),
            (1919, 1079),
            (17 * 16 + 5, 33 * 16 + 15),
            (1000, 1076),
        ]
        .into_iter()
        .enumerate()
        {
            let old = f.y()[y * 1920 + x];
            set_pixel(&mut f, x, y, old ^ 1);
            let d = gate.observe(&f, t0 + ms(66 * (i as u64 + 1)), false);
            assert_eq!(d.changed_blocks, 1, "pixel ({x}, {y})");
            assert_eq!(d.total_blocks, 120 * 68);
            assert_eq!(d.encode, Some(EncodeReason::Changed));
            let block = (y / 16) * 120 + x / 16;
            assert!(gate.changed_blocks()[block], "pixel ({x}, {y})");
            assert_eq!(gate.changed_blocks().iter().filter(|c| **c).count(), 1);
        }
    }

    #[test]
    fn edge_blocks_narrower_than_a_word_see_their_pixels() {
        // 21 = one full block and a 5-pixel column, shorter than one 8-byte word.
        let t0 = Instant::now();
        let mut gate = MotionGate::new();
        let mut f = frame(21, 18);
        gate.observe(&f, t0, false);
        set_pixel(&mut f, 20, 17, 0);
        let d = gate.observe(&f, t0 + ms(66), false);
        assert_eq!((d.changed_blocks, d.total_blocks), (1, 4));
        assert!(gate.changed_blocks()[3]);
    }

    #[test]
    fn a_static_screen_is_still_encoded_at_5_fps() {
        let t0 = Instant::now();
        let mut gate = MotionGate::new();
        let f = frame(64, 48);
        assert!(gate.observe(&f, t0, false).should_encode());
        // Captured at 15 Hz: frames at 66 and 133 ms are skipped, 200 ms is due.
        assert_eq!(gate.observe(&f, t0 + ms(66), false).encode, None);
        assert_eq!(gate.observe(&f, t0 + ms(133), false).encode, None);
        assert_eq!(
            gate.observe(&f, t0 + ms(200), false).encode,
            Some(EncodeReason::Floor)
        );
        // The floor restarts from the frame encoded at 200 ms.
        assert_eq!(gate.observe(&f, t0 + ms(266), false).encode, None);
        assert_eq!(gate.observe(&f, t0 + ms(399), false).encode, None);
        assert_eq!(
            gate.observe(&f, t0 + ms(400), false).encode,
            Some(EncodeReason::Floor)
        );
        // A change resets the floor too.
        let mut moved = f.clone();
        set_pixel(&mut moved, 3, 3, 99);
        assert_eq!(
            gate.observe(&moved, t0 + ms(466), false).encode,
            Some(EncodeReason::Changed)
        );
        assert_eq!(gate.observe(&moved, t0 + ms(600), false).encode, None);
        assert_eq!(
            gate.observe(&moved, t0 + ms(666), false).encode,
            Some(EncodeReason::Floor)
        );
    }

    #[test]
    fn a_wanted_keyframe_is_never_skipped() {
        let t0 = Instant::now();
        let mut gate = MotionGate::new();
        let f = frame(64, 48);
        gate.observe(&f, t0, false);
        for i in 1..10 {
            let d = gate.observe(&f, t0 + ms(i), true);
            assert_eq!(d.encode, Some(EncodeReason::Keyframe), "at {i} ms");
            assert_eq!(d.changed_blocks, 0);
        }
        // And it does not leave a request behind: the next unchanged frame is skipped.
        assert_eq!(gate.observe(&f, t0 + ms(20), false).encode, None);
    }

    #[test]
    fn a_size_change_starts_over() {
        let t0 = Instant::now();
        let mut gate = MotionGate::new();
        let small = frame(64, 48);
        gate.observe(&small, t0, false);
        gate.observe(&small, t0 + ms(10), false);
        let big = frame(80, 48);
        let d = gate.observe(&big, t0 + ms(20), false);
        assert_eq!(d.encode, Some(EncodeReason::NewSize));
        assert_eq!((d.changed_blocks, d.total_blocks), (15, 15));
        assert_eq!(gate.changed_blocks().len(), 15);
        // Compared with the new size from now on.
        let d = gate.observe(&big, t0 + ms(30), false);
        assert_eq!((d.encode, d.changed_blocks), (None, 0));
        // Back to the old size: all changed again, not compared with stale hashes.
        let d = gate.observe(&small, t0 + ms(40), false);
        assert_eq!(d.encode, Some(EncodeReason::NewSize));
        assert_eq!(d.changed_blocks, 12);
    }
}
