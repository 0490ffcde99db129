//! The pixels PipeWire hands us, as I420: the packed 32-bit formats we offer (BGRx, BGRA, RGBx,
//! RGBA; alpha and padding ignored), copied out of the stream's buffer row by row
//! ([`copy_rows`]: the buffer goes back to the compositor at once) and converted later, on the
//! encoder's thread ([`to_i420`]: BT.601, limited range, as the rest of the client).

use crate::media::I420Frame;
use yuv::{YuvConversionMode, YuvRange, YuvStandardMatrix};

/// Byte order of a packed 4-byte pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PixelFormat {
    /// B, G, R, padding.
    Bgrx,
    /// B, G, R, alpha.
    Bgra,
    /// R, G, B, padding.
    Rgbx,
    /// R, G, B, alpha.
    Rgba,
}

impl PixelFormat {
    /// Whether blue comes first.
    fn blue_first(self) -> bool {
        matches!(self, PixelFormat::Bgrx | PixelFormat::Bgra)
    }
}

/// One picture copied out of a PipeWire buffer: rows of exactly `width × 4` bytes.
#[derive(Debug)]
pub(crate) struct RawFrame {
    /// Byte order.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width × 4 × height` bytes.
    pub bytes: Vec<u8>,
    /// When it reached us, in microseconds since the UNIX epoch.
    pub capture_micros: u64,
}

/// Copies `height` rows of `width` 4-byte pixels from `src`, the first at `offset`, each
/// `stride` bytes after the previous one (0 = tightly packed), into `dst` (cleared first).
pub(crate) fn copy_rows(
    src: &[u8],
    offset: usize,
    stride: i32,
    width: u32,
    height: u32,
    dst: &mut Vec<u8>,
) -> Result<(), String> {
    let row = width as usize * 4;
    let stride = match usize::try_from(stride) {
        Ok(0) => row,
        Ok(s) if s >= row => s,
        _ => {
            return Err(format!(
                "a stride of {stride} bytes cannot hold rows of {width} pixels"
            ));
        }
    };
    let needed = (height as usize)
        .checked_sub(1)
        .map(|rows| offset + rows * stride + row)
        .ok_or("an empty picture")?;
    if src.len() < needed {
        return Err(format!(
            "a {width}x{height} picture with stride {stride} at offset {offset} needs {needed} bytes, \
             the buffer has {}",
            src.len()
        ));
    }
    dst.clear();
    dst.reserve(row * height as usize);
    for y in 0..height as usize {
        let start = offset + y * stride;
        dst.extend_from_slice(&src[start..start + row]);
    }
    Ok(())
}

/// `frame`'s pixels as I420 (capture time carried over, frame number left at 0).
pub(crate) fn to_i420(frame: &RawFrame) -> Result<I420Frame, String> {
    let (width, height) = (frame.width, frame.height);
    let needed = width as usize * height as usize * 4;
    if frame.bytes.len() != needed {
        return Err(format!(
            "{} bytes for a {width}x{height} picture, expected {needed}",
            frame.bytes.len()
        ));
    }
    let mut out = I420Frame::black(width, height).map_err(|e| e.to_string())?;
    let mut planar = crate::media::devices::camera::planar_mut(&mut out);
    let convert = if frame.format.blue_first() {
        yuv::bgra_to_yuv420
    } else {
        yuv::rgba_to_yuv420
    };
    convert(
        &mut planar,
        &frame.bytes,
        width * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .map_err(|e| e.to_string())?;
    out.capture_micros = frame.capture_micros;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `width`×`height` picture of one colour in `format`, with `pad` junk bytes after each row.
    fn solid(
        format: PixelFormat,
        (r, g, b): (u8, u8, u8),
        width: u32,
        height: u32,
        pad: usize,
    ) -> Vec<u8> {
        let pixel = match format {
            PixelFormat::Bgrx | PixelFormat::Bgra => [b, g, r, 0xff],
            PixelFormat::Rgbx | PixelFormat::Rgba => [r, g, b, 0xff],
        };
        let mut out = Vec::new();
        for _ in 0..height {
            for _ in 0..width {
                out.extend_from_slice(&pixel);
            }
            out.extend(std::iter::repeat_n(0x5a, pad));
        }
        out
    }

    fn mean(plane: &[u8]) -> u8 {
        (plane.iter().map(|&v| u64::from(v)).sum::<u64>() / plane.len() as u64) as u8
    }

    #[test]
    fn red_is_red_in_every_byte_order() {
        // BT.601 limited: pure red is Y 81, U 90, V 240.
        for format in [
            PixelFormat::Bgrx,
            PixelFormat::Bgra,
            PixelFormat::Rgbx,
            PixelFormat::Rgba,
        ] {
            let src = solid(format, (255, 0, 0), 64, 36, 32);
            let mut bytes = Vec::new();
            copy_rows(&src, 0, 64 * 4 + 32, 64, 36, &mut bytes).unwrap();
            let frame = to_i420(&RawFrame {
                format,
                width: 64,
                height: 36,
                bytes,
                capture_micros: 42,
            })
            .unwrap();
            let (y, u, v) = (mean(frame.y()), mean(frame.u()), mean(frame.v()));
            assert!(
                y.abs_diff(81) <= 2 && u.abs_diff(90) <= 2 && v.abs_diff(240) <= 2,
                "{format:?}: {y} {u} {v}"
            );
            assert_eq!(frame.capture_micros, 42);
        }
    }

    #[test]
    fn rows_are_copied_from_the_offset_with_the_stride() {
        // Two rows of 2 pixels, 4 junk bytes before and 8 after each row.
        let mut src = vec![9u8; 4];
        src.extend(1..=8u8);
        src.extend([0u8; 8]);
        src.extend(11..=18u8);
        src.extend([0u8; 8]);
        let mut dst = vec![7u8; 3];
        copy_rows(&src, 4, 16, 2, 2, &mut dst).unwrap();
        assert_eq!(
            dst,
            [1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 17, 18]
        );
        // Stride 0 means packed.
        copy_rows(&src[4..12], 0, 0, 2, 1, &mut dst).unwrap();
        assert_eq!(dst, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn short_or_odd_buffers_are_refused() {
        let mut dst = Vec::new();
        let e = copy_rows(&[0; 30], 0, 16, 4, 2, &mut dst).unwrap_err();
        assert!(e.contains("needs 32 bytes"), "{e}");
        assert!(
            copy_rows(&[0; 64], 0, 8, 4, 2, &mut dst).is_err(),
            "stride shorter than a row"
        );
        assert!(
            copy_rows(&[0; 64], 0, -16, 4, 2, &mut dst).is_err(),
            "bottom-up rows"
        );
        assert!(
            copy_rows(&[0; 64], 0, 16, 4, 0, &mut dst).is_err(),
            "no rows"
        );
        let raw = RawFrame {
            format: PixelFormat::Bgrx,
            width: 4,
            height: 2,
            bytes: vec![0; 31],
            capture_micros: 0,
        };
        assert!(to_i420(&raw).is_err());
    }
}
