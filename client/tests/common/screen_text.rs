//! A synthetic screen full of text (no font files): the hardest common screen content for a
//! video codec, with 1-2 px black strokes on white. Shared by `tests/vp8_screen.rs` and
//! `benches/codec.rs`.

use videoroom_client::media::I420Frame;

/// A small deterministic generator (xorshift), so the "text" is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A page of text-like content as a text editor shows it: black 1-2 px strokes in 8×12 glyphs on
/// a white page, 16 px lines, words of 2-9 glyphs, ragged lines; a dark side bar with light
/// text; a coloured title bar. `scroll` moves the page up by that many text lines.
pub fn text_frame(width: u32, height: u32, scroll: usize) -> I420Frame {
    const WHITE: u8 = 235;
    const BLACK: u8 = 16;
    const GLYPH_W: usize = 8;
    const LINE_H: usize = 16;
    let mut frame = I420Frame::black(width, height).expect("valid size");
    let (w, h) = (width as usize, height as usize);
    let (y, u, v) = frame.planes_mut();
    let sidebar = 240.min(w / 4);
    let title = 32.min(h / 8);
    y.fill(WHITE);
    for row in 0..h {
        for col in 0..sidebar {
            y[row * w + col] = 40;
        }
    }
    for row in 0..title {
        y[row * w..(row + 1) * w].fill(90);
    }
    // Chroma: a blue title bar, neutral elsewhere.
    let cw = w.div_ceil(2);
    for row in 0..title / 2 {
        u[row * cw..(row + 1) * cw].fill(170);
        v[row * cw..(row + 1) * cw].fill(110);
    }

    let draw_glyph = |y: &mut [u8], x0: usize, y0: usize, ink: u8, rng: &mut Rng| {
        // Strokes of a glyph in an 8x12 cell with a 6x9 body (x-height 6, ascender 3).
        let tall = rng.below(3) == 0;
        let top = if tall { 0 } else { 3 };
        let mut put = |x: usize, yy: usize| {
            let (px, py) = (x0 + x, y0 + yy);
            if px < w && py < h {
                y[py * w + px] = ink;
            }
        };
        let strokes = 2 + rng.below(3);
        for _ in 0..strokes {
            let bold = rng.below(4) == 0;
            match rng.below(4) {
                0 => {
                    let x = 1 + rng.below(5) as usize;
                    for yy in top..9 {
                        put(x, yy);
                        if bold {
                            put(x + 1, yy);
                        }
                    }
                }
                1 => {
                    let yy = [3, 5, 8][rng.below(3) as usize];
                    for x in 1..6 {
                        put(x, yy);
                    }
                }
                2 => {
                    for i in 0..6 {
                        put(1 + i, 8 - i);
                    }
                }
                _ => {
                    // A bowl: a small ring.
                    for x in 2..5 {
                        put(x, 4);
                        put(x, 8);
                    }
                    for yy in 5..8 {
                        put(1, yy);
                        put(5, yy);
                    }
                }
            }
        }
    };

    let lines = (h - title) / LINE_H;
    for line in 0..lines {
        // Each text line's content depends on its line number in the document, so scrolling
        // shows the same lines higher up.
        let doc_line = line + scroll;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (doc_line as u64 + 1).wrapping_mul(0x2545_f491));
        let y0 = title + 2 + line * LINE_H;
        // Side bar: a file name per line, light on dark.
        let mut x = 12;
        for _ in 0..(4 + rng.below(14)) {
            draw_glyph(y, x, y0, 200, &mut rng);
            x += GLYPH_W;
        }
        // The page: indented code-like lines, some empty.
        if rng.below(8) == 0 {
            continue;
        }
        let indent = sidebar + 16 + GLYPH_W * 4 * rng.below(4) as usize;
        let end = indent + GLYPH_W * (30 + rng.below(150) as usize);
        let mut x = indent;
        while x + GLYPH_W < end.min(w - 8) {
            let word = 2 + rng.below(8) as usize;
            for _ in 0..word {
                if x + GLYPH_W >= w - 8 {
                    break;
                }
                draw_glyph(y, x, y0, BLACK, &mut rng);
                x += GLYPH_W;
            }
            x += GLYPH_W;
        }
    }
    frame
}
