//! I420 → RGBA conversion and scaling into a fixed-size tile (for a video grid UI).
//!
//! Colour conversion is BT.601, limited ("studio") range, as produced by VP8 encoders and by
//! [`PatternSource`](super::PatternSource). Scaling keeps the aspect ratio: the picture is fitted
//! inside the tile and centred, and the remaining bars are opaque black (letterbox/pillarbox).
//!
//! The planes are scaled first (bilinear, each plane on its own) and only the fitted picture is
//! converted to RGBA: a 1920×1080 screen in a 320×180 tile converts 57 600 pixels, not 2 million.
//! [`TileScaler`] keeps every buffer (scaled planes, RGBA picture, output tile, and the resizer's
//! internal buffers) between calls, so once the frame and tile sizes are stable, converting a
//! frame does not allocate.

use super::I420Frame;
use super::devices::camera::resize_plane;
use fast_image_resize::Resizer;
use yuv::{YuvPlanarImage, YuvRange, YuvStandardMatrix};

/// Why a tile could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The requested tile width or height is zero or larger than [`I420Frame::MAX_DIMENSION`].
    #[error("invalid tile size {width}x{height}")]
    InvalidSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// The I420 → RGBA conversion failed.
    #[error("I420 to RGBA conversion failed: {0}")]
    Convert(String),
    /// Scaling failed.
    #[error("scaling failed: {0}")]
    Resize(String),
}

/// An RGBA image, 8 bits per channel, tightly packed (stride `width * 4`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct RgbaImage {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl std::fmt::Debug for RgbaImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RgbaImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl RgbaImage {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels, `width * height * 4` bytes, R G B A, row after row.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The pixels, consuming the image.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The pixel at (`x`, `y`) as `[r, g, b, a]`, or `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        self.data.get(i..i + 4)?.try_into().ok()
    }

    /// Resizes to `width`×`height`, reusing the allocation when it is large enough.
    fn reshape(&mut self, width: u32, height: u32) {
        self.width = width;
        self.height = height;
        self.data.resize(width as usize * height as usize * 4, 0);
    }
}

/// Converts `frame` to RGBA and fits it into a `width`×`height` tile (see the module docs).
///
/// Allocates fresh buffers; for a stream of frames use a [`TileScaler`].
pub fn to_rgba_tile(frame: &I420Frame, width: u32, height: u32) -> Result<RgbaImage, TileError> {
    let mut scaler = TileScaler::new();
    scaler.scale(frame, width, height)?;
    Ok(scaler.into_tile())
}

/// Converts and scales frames into tiles, keeping its buffers between calls.
#[derive(Default)]
pub struct TileScaler {
    /// The frame scaled to its fitted size, still I420.
    small: Option<I420Frame>,
    /// The fitted picture in RGBA (before letterboxing).
    fitted: Vec<u8>,
    /// The output tile.
    tile: RgbaImage,
    resizer: Resizer,
}

impl std::fmt::Debug for TileScaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileScaler")
            .field("tile", &self.tile)
            .finish_non_exhaustive()
    }
}

/// The largest `w`×`h` with the aspect ratio of `src_w`×`src_h` that fits in `dst_w`×`dst_h`
/// (at least 1×1).
fn fit(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> (u32, u32) {
    let (sw, sh, dw, dh) = (
        u64::from(src_w),
        u64::from(src_h),
        u64::from(dst_w),
        u64::from(dst_h),
    );
    // Compare dw/sw with dh/sh without floating point.
    let (w, h) = if dw * sh <= dh * sw {
        // Width-limited: full width, height rounded.
        (dw, (sh * dw + sw / 2) / sw)
    } else {
        ((sw * dh + sh / 2) / sh, dh)
    };
    let clamp = |v: u64, max: u32| u32::try_from(v).unwrap_or(max).clamp(1, max);
    (clamp(w, dst_w), clamp(h, dst_h))
}

impl TileScaler {
    /// A scaler with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last tile produced.
    pub fn tile(&self) -> &RgbaImage {
        &self.tile
    }

    /// The last tile produced, consuming the scaler.
    pub fn into_tile(self) -> RgbaImage {
        self.tile
    }

    /// Converts `frame` to RGBA and fits it into a `width`×`height` tile, centred, with black
    /// bars where the aspect ratios differ. Returns the tile (valid until the next call).
    pub fn scale(
        &mut self,
        frame: &I420Frame,
        width: u32,
        height: u32,
    ) -> Result<&RgbaImage, TileError> {
        if width == 0
            || height == 0
            || width > I420Frame::MAX_DIMENSION
            || height > I420Frame::MAX_DIMENSION
        {
            return Err(TileError::InvalidSize { width, height });
        }
        let (fw, fh) = (frame.width(), frame.height());
        let (pw, ph) = fit(fw, fh, width, height);

        // 1. Scale the planes to the fitted size (a 1080p screen in a small tile: converting
        //    1.5 bytes a pixel at the small size instead of 4 at the full size).
        let picture: &I420Frame = if (pw, ph) == (fw, fh) {
            frame
        } else {
            let small = match self.small.take() {
                Some(f) if (f.width(), f.height()) == (pw, ph) => f,
                _ => I420Frame::black(pw, ph).map_err(|e| TileError::Resize(e.to_string()))?,
            };
            let small = self.small.insert(small);
            let (scw, sch) = (frame.chroma_width(), frame.chroma_height());
            let (cw, ch) = (small.chroma_width(), small.chroma_height());
            let (y, u, v) = small.planes_mut();
            for (src, src_size, dst, dst_size) in [
                (frame.y(), (fw, fh), y, (pw, ph)),
                (frame.u(), (scw, sch), u, (cw, ch)),
                (frame.v(), (scw, sch), v, (cw, ch)),
            ] {
                resize_plane(&mut self.resizer, src, src_size, dst, dst_size)
                    .map_err(TileError::Resize)?;
            }
            small
        };

        // 2. I420 → RGBA at that size.
        self.fitted.resize(pw as usize * ph as usize * 4, 0);
        let planar = YuvPlanarImage {
            y_plane: picture.y(),
            y_stride: pw,
            u_plane: picture.u(),
            u_stride: picture.chroma_width(),
            v_plane: picture.v(),
            v_stride: picture.chroma_width(),
            width: pw,
            height: ph,
        };
        yuv::yuv420_to_rgba(
            &planar,
            &mut self.fitted,
            pw * 4,
            YuvRange::Limited,
            YuvStandardMatrix::Bt601,
        )
        .map_err(|e| TileError::Convert(e.to_string()))?;
        let picture = &self.fitted;

        // 3. Centre it in the tile over opaque black.
        self.tile.reshape(width, height);
        for px in self.tile.data.chunks_exact_mut(4) {
            px.copy_from_slice(&[0, 0, 0, 255]);
        }
        let (x0, y0) = ((width - pw) / 2, (height - ph) / 2);
        let row_bytes = pw as usize * 4;
        let tile_stride = width as usize * 4;
        for (row, src) in picture
            .chunks_exact(row_bytes)
            .take(ph as usize)
            .enumerate()
        {
            let start = (y0 as usize + row) * tile_stride + x0 as usize * 4;
            if let Some(dst) = self.tile.data.get_mut(start..start + row_bytes) {
                dst.copy_from_slice(src);
            }
        }
        Ok(&self.tile)
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_keeps_aspect() {
        assert_eq!(fit(1280, 720, 320, 180), (320, 180));
        assert_eq!(fit(640, 360, 300, 300), (300, 169));
        assert_eq!(fit(360, 640, 300, 300), (169, 300));
        assert_eq!(fit(10_000, 1, 10, 10), (10, 1));
    }
}
