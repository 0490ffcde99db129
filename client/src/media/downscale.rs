//! Box-filter downscaling of I420 frames, for simulcast layers: each destination pixel is the
//! average of the source pixels it covers (an exact 2×2 average when halving).

use super::{FrameError, I420Frame};

/// `value / divisor` rounded to the nearest even number, at least 2 (I420 layers keep even sizes
/// so that their chroma planes are exactly half).
pub fn even_fraction(value: u32, divisor: u32) -> u32 {
    let divisor = divisor.max(1);
    ((value + divisor) / (2 * divisor)).max(1) * 2
}

/// `frame` scaled down to `width`×`height` (each no larger than the source's) with a box
/// filter; capture time and frame number are kept.
pub fn downscale(frame: &I420Frame, width: u32, height: u32) -> Result<I420Frame, FrameError> {
    if width == 0 || height == 0 || width > frame.width() || height > frame.height() {
        return Err(FrameError::InvalidSize { width, height });
    }
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let y = box_plane(
        frame.y(),
        frame.width() as usize,
        frame.height() as usize,
        width as usize,
        height as usize,
    );
    let u = box_plane(
        frame.u(),
        frame.chroma_width() as usize,
        frame.chroma_height() as usize,
        cw as usize,
        ch as usize,
    );
    let v = box_plane(
        frame.v(),
        frame.chroma_width() as usize,
        frame.chroma_height() as usize,
        cw as usize,
        ch as usize,
    );
    let mut out = I420Frame::from_planes(width, height, y, u, v)?;
    out.capture_micros = frame.capture_micros;
    out.frame_number = frame.frame_number;
    Ok(out)
}

/// The source span `[start, end)` each destination index covers (never empty).
fn spans(src: usize, dst: usize) -> Vec<(usize, usize)> {
    (0..dst)
        .map(|i| {
            let start = i * src / dst;
            let end = ((i + 1) * src / dst).max(start + 1).min(src);
            (start, end)
        })
        .collect()
}

fn box_plane(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
    let mut out = vec![0u8; dw * dh];
    let columns = spans(sw, dw);
    let rows = spans(sh, dh);
    if sw == 2 * dw && sh == 2 * dh {
        // The common case (halving): a plain 2×2 average, rounded.
        for (row, out_row) in out.chunks_exact_mut(dw).enumerate() {
            let a = &src[2 * row * sw..][..sw];
            let b = &src[(2 * row + 1) * sw..][..sw];
            for (x, o) in out_row.iter_mut().enumerate() {
                let sum = u32::from(a[2 * x])
                    + u32::from(a[2 * x + 1])
                    + u32::from(b[2 * x])
                    + u32::from(b[2 * x + 1]);
                *o = ((sum + 2) / 4) as u8;
            }
        }
        return out;
    }
    let mut sums = vec![0u32; dw];
    for (out_row, &(y0, y1)) in out.chunks_exact_mut(dw).zip(&rows) {
        sums.iter_mut().for_each(|s| *s = 0);
        for line in src[y0 * sw..y1 * sw].chunks_exact(sw) {
            for (sum, &(x0, x1)) in sums.iter_mut().zip(&columns) {
                *sum += line[x0..x1].iter().map(|&p| u32::from(p)).sum::<u32>();
            }
        }
        for ((o, sum), &(x0, x1)) in out_row.iter_mut().zip(&sums).zip(&columns) {
            let count = ((x1 - x0) * (y1 - y0)) as u32;
            *o = ((sum + count / 2) / count) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_fractions() {
        assert_eq!(even_fraction(1280, 2), 640);
        assert_eq!(even_fraction(720, 4), 180);
        assert_eq!(even_fraction(360, 4), 90);
        assert_eq!(even_fraction(1366, 2), 684);
        assert_eq!(even_fraction(3, 4), 2);
    }

    #[test]
    fn halving_averages_two_by_two() {
        let y: Vec<u8> = (0..16).map(|i| (i * 10) as u8).collect();
        let frame = I420Frame::from_planes(4, 4, y, vec![100; 4], vec![200; 4]).expect("frame");
        let half = downscale(&frame, 2, 2).expect("half");
        // (0 + 10 + 40 + 50) / 4 = 25.
        assert_eq!(half.y(), &[25, 45, 105, 125]);
        assert_eq!(half.u(), &[100]);
        assert_eq!(half.v(), &[200]);
        let odd = downscale(&frame, 3, 3).expect("odd size");
        assert_eq!((odd.width(), odd.height()), (3, 3));
        assert!(downscale(&frame, 5, 2).is_err());
    }
}
