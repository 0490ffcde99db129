//! Shared screens larger than 1920×1080 are scaled down to fit, keeping their aspect ratio.

use fast_image_resize::Resizer;

use crate::media::I420Frame;
use crate::media::devices::camera::scale_i420;

/// The widest screen frame sent; wider ones are scaled down.
pub const MAX_SCREEN_WIDTH: u32 = 1920;
/// The tallest screen frame sent; taller ones are scaled down.
pub const MAX_SCREEN_HEIGHT: u32 = 1080;

/// Why a screen frame could not be scaled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot scale a {width}x{height} screen frame: {detail}")]
pub struct ScaleError {
    /// Source width.
    pub width: u32,
    /// Source height.
    pub height: u32,
    /// What the scaler said.
    pub detail: String,
}

/// The size a `width`×`height` frame is sent at: itself if it fits in
/// `max_width`×`max_height`, else the largest even size (I420 halves chroma) inside that box
/// with the same aspect ratio, rounded down.
pub fn fit_within(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    if width <= max_width && height <= max_height {
        return (width, height);
    }
    let even = |v: u64| u32::try_from(v & !1).unwrap_or(u32::MAX).max(2);
    let (w, h) = (u64::from(width), u64::from(height));
    let (mw, mh) = (u64::from(max_width), u64::from(max_height));
    if w * mh >= h * mw {
        // Wider than the box: the width limits.
        (even(mw), even(h * mw / w))
    } else {
        (even(w * mh / h), even(mh))
    }
}

/// Scales screen frames above 1920×1080 down to fit (bilinear, the camera's scaler); smaller
/// frames pass through untouched. Keeps its scratch buffers between frames.
#[derive(Debug, Default)]
pub struct ScreenScaler {
    resizer: Resizer,
}

impl ScreenScaler {
    /// A scaler.
    pub fn new() -> Self {
        Self::default()
    }

    /// `frame` at the size it is sent at ([`fit_within`] 1920×1080), with its frame number and
    /// capture time. Borrows the frame when it already fits.
    pub fn fit<'a>(
        &mut self,
        frame: &'a I420Frame,
    ) -> Result<std::borrow::Cow<'a, I420Frame>, ScaleError> {
        let (width, height) = fit_within(
            frame.width(),
            frame.height(),
            MAX_SCREEN_WIDTH,
            MAX_SCREEN_HEIGHT,
        );
        if (width, height) == (frame.width(), frame.height()) {
            return Ok(std::borrow::Cow::Borrowed(frame));
        }
        let mut out =
            scale_i420(frame, width, height, &mut self.resizer).map_err(|detail| ScaleError {
                width: frame.width(),
                height: frame.height(),
                detail,
            })?;
        out.capture_micros = frame.capture_micros;
        out.frame_number = frame.frame_number;
        Ok(std::borrow::Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_that_fit_keep_their_size() {
        assert_eq!(fit_within(1920, 1080, 1920, 1080), (1920, 1080));
        assert_eq!(fit_within(1366, 768, 1920, 1080), (1366, 768));
        assert_eq!(fit_within(1081, 1079, 1920, 1080), (1081, 1079));
    }

    #[test]
    fn larger_frames_fit_with_their_aspect_and_even_sizes() {
        assert_eq!(fit_within(3840, 2160, 1920, 1080), (1920, 1080));
        assert_eq!(fit_within(2560, 1440, 1920, 1080), (1920, 1080));
        // 16:10: the height limits.
        assert_eq!(fit_within(2560, 1600, 1920, 1080), (1728, 1080));
        // Ultra-wide 21:9: 1440 * 1920 / 3440 = 803.7 -> 802 (even).
        assert_eq!(fit_within(3440, 1440, 1920, 1080), (1920, 802));
        // Portrait: 1080 * 1080 / 1920 = 607.5 -> 606.
        assert_eq!(fit_within(1080, 1920, 1920, 1080), (606, 1080));
        // Degenerate strips never reach zero.
        assert_eq!(fit_within(16000, 2, 1920, 1080), (1920, 2));
    }

    #[test]
    fn scaling_keeps_the_stamps_and_passes_small_frames_through() {
        let mut scaler = ScreenScaler::new();
        let mut big = I420Frame::black(2560, 1440).unwrap();
        big.frame_number = 7;
        big.capture_micros = 1234;
        let out = scaler.fit(&big).unwrap();
        assert!(matches!(out, std::borrow::Cow::Owned(_)));
        assert_eq!((out.width(), out.height()), (1920, 1080));
        assert_eq!((out.frame_number, out.capture_micros), (7, 1234));
        let small = I420Frame::black(1280, 720).unwrap();
        assert!(matches!(
            scaler.fit(&small).unwrap(),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
