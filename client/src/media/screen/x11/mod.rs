//! Screen and window capture on X11 with `x11rb` (pure Rust, no libxcb): [`X11Screen`] (a whole
//! X screen or one of its monitors) and [`X11Window`] (one window, through Composite, so it is
//! captured right when other windows cover it) are [`VideoSource`](crate::media::VideoSource)s;
//! [`list_sources`], [`open_source`] and [`thumbnail`] serve the picker; [`PatternWindow`] is a
//! window that draws the moving test pattern (tests, benchmarks, the bot).
//!
//! Each source keeps one connection to the display for its life. A frame is one `ShmGetImage`
//! into a MIT-SHM segment the server creates and we map (SHM ≥ 1.2; [`shm`], [`transfer`]), or a
//! core `GetImage` through the socket when SHM is missing (a remote display). The pixels (ZPixmap,
//! 32 bits per pixel, LSB first: BGRX) become I420 with `yuv` (BT.601, limited range, as the rest
//! of the client). The mouse pointer is drawn in (XFixes; [`X11Screen::without_cursor`] and
//! [`X11Window::without_cursor`] leave it out).
//!
//! | file | what |
//! | --- | --- |
//! | `screen.rs` | [`X11Screen`], RandR monitors |
//! | `windows.rs` | which windows there are: `_NET_CLIENT_LIST` or the root's children, titles, our own skipped |
//! | `window.rs` | [`X11Window`]: Composite capture, resize, unmap, destroy |
//! | `pattern_window.rs` | [`PatternWindow`] |
//! | `sources.rs` | ids (`screen`, `monitor:N`, `window:0x…`), opening, thumbnails |
//! | `thumbnail.rs` | thumbnails scaled down by the X server (RENDER) |
//! | `transfer.rs`, `shm.rs` | SHM segment or socket |
//! | `cursor.rs` | the mouse pointer drawn into frames (XFixes) |

mod cursor;
mod pattern_window;
mod screen;
// The one unsafe part of the capture: mapping the shared-memory segment.
#[allow(unsafe_code)]
mod shm;
mod sources;
mod thumbnail;
mod transfer;
mod window;
mod windows;

pub use pattern_window::PatternWindow;
pub use screen::{Monitor, X11Area, X11Screen};
pub use sources::{WHOLE_SCREEN_ID, list_sources, open_source, thumbnail, window_id};
pub use window::X11Window;
pub use windows::{WindowInfo, list_windows};

use crate::media::{I420Frame, SourceError};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ImageOrder;
use x11rb::rust_connection::RustConnection;
use yuv::{YuvConversionMode, YuvPlanarImage, YuvRange, YuvStandardMatrix};

/// Why an X11 screen cannot be captured. The messages say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum X11Error {
    /// No display was named and `DISPLAY` is unset or empty.
    #[error(
        "no X display: DISPLAY is not set (run inside an X session, or set DISPLAY, e.g. DISPLAY=:0)"
    )]
    NoDisplay,
    /// The X server could not be reached or refused us.
    #[error(
        "cannot connect to the X display {display}: {reason} (is an X server running there, and may this user \
         connect to it? check DISPLAY and XAUTHORITY)"
    )]
    Connect {
        /// The display name tried.
        display: String,
        /// What x11rb reported.
        reason: String,
    },
    /// The screen's pixels are not 24/32-bit TrueColor in 32 bits per pixel, little-endian.
    #[error(
        "the X display {display} uses {detail}; screen capture needs depth 24 or 32 at 32 bits per pixel \
         (start the X server with 24-bit colour, e.g. Xvfb -screen 0 1920x1080x24)"
    )]
    UnsupportedFormat {
        /// The display name.
        display: String,
        /// What it has instead.
        detail: String,
    },
    /// The requested monitor does not exist.
    #[error(
        "the X display {display} has no monitor {index} (it has {count}; see X11Screen::monitors)"
    )]
    NoSuchMonitor {
        /// The display name.
        display: String,
        /// The index asked for.
        index: usize,
        /// How many it has.
        count: usize,
    },
    /// The window asked for does not (or no longer) exist.
    #[error("the X display {display} has no window 0x{window:x} (it was closed)")]
    NoSuchWindow {
        /// The display name.
        display: String,
        /// Its id.
        window: u32,
    },
    /// Window capture needs the Composite extension (0.2 or later).
    #[error(
        "the X display {display} has no Composite extension (0.2 or later), which window capture needs \
         (Xorg and Xvfb have it unless started with `-extension Composite`); share the whole screen instead"
    )]
    NoComposite {
        /// The display name.
        display: String,
    },
    /// An X request failed after connecting.
    #[error("X11 capture failed on {display}: {detail}")]
    Protocol {
        /// The display name.
        display: String,
        /// The request and its error.
        detail: String,
    },
}

impl From<X11Error> for SourceError {
    fn from(e: X11Error) -> Self {
        SourceError::Failed(e.to_string())
    }
}

/// `display`, or `$DISPLAY`; [`X11Error::NoDisplay`] when neither names one.
fn display_name(display: Option<&str>) -> Result<String, X11Error> {
    match display {
        Some(d) if !d.is_empty() => Ok(d.to_owned()),
        _ => std::env::var("DISPLAY")
            .ok()
            .filter(|d| !d.is_empty())
            .ok_or(X11Error::NoDisplay),
    }
}

fn connect(display: Option<&str>) -> Result<(RustConnection, usize, String), X11Error> {
    let name = display_name(display)?;
    let (conn, screen) = RustConnection::connect(Some(&name)).map_err(|e| X11Error::Connect {
        display: name.clone(),
        reason: e.to_string(),
    })?;
    Ok((conn, screen, name))
}

fn protocol(display: &str, what: &str, e: impl std::fmt::Display) -> X11Error {
    X11Error::Protocol {
        display: display.to_owned(),
        detail: format!("{what}: {e}"),
    }
}

/// Checks that a ZPixmap of `depth` is BGRX (24 or 32 bits deep, 32 bits per pixel, LSB first).
fn check_depth(conn: &RustConnection, depth: u8, display: &str) -> Result<(), X11Error> {
    let setup = conn.setup();
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == depth)
        .map(|f| f.bits_per_pixel);
    if !matches!(depth, 24 | 32) || bpp != Some(32) {
        return Err(X11Error::UnsupportedFormat {
            display: display.to_owned(),
            detail: format!("depth {depth} at {bpp:?} bits per pixel"),
        });
    }
    if setup.image_byte_order != ImageOrder::LSB_FIRST {
        return Err(X11Error::UnsupportedFormat {
            display: display.to_owned(),
            detail: "most-significant-byte-first images".to_owned(),
        });
    }
    Ok(())
}

/// Packed BGRX (4 bytes a pixel, rows of `width × 4` bytes) → I420, BT.601 limited range.
pub fn bgrx_to_i420(bgrx: &[u8], width: u32, height: u32) -> Result<I420Frame, String> {
    let needed = width as usize * height as usize * 4;
    if bgrx.len() < needed {
        return Err(format!(
            "{} bytes of BGRX for {width}x{height}, expected {needed}",
            bgrx.len()
        ));
    }
    let mut frame = I420Frame::black(width, height).map_err(|e| e.to_string())?;
    let mut planar = crate::media::devices::camera::planar_mut(&mut frame);
    yuv::bgra_to_yuv420(
        &mut planar,
        &bgrx[..needed],
        width * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .map_err(|e| e.to_string())?;
    Ok(frame)
}

/// I420 → packed BGRX (alpha 255), BT.601 limited range: what an X server with a 24-bit
/// TrueColor visual takes in a ZPixmap `PutImage` (test patterns drawn on a screen).
pub fn i420_to_bgrx(frame: &I420Frame) -> Result<Vec<u8>, String> {
    let (w, h) = (frame.width(), frame.height());
    let mut out = vec![0u8; w as usize * h as usize * 4];
    let planar = YuvPlanarImage {
        y_plane: frame.y(),
        y_stride: w,
        u_plane: frame.u(),
        u_stride: frame.chroma_width(),
        v_plane: frame.v(),
        v_stride: frame.chroma_width(),
        width: w,
        height: h,
    };
    yuv::yuv420_to_bgra(
        &planar,
        &mut out,
        w * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
    )
    .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::PatternSource;

    #[test]
    fn no_display_is_an_actionable_error() {
        // A named display wins over DISPLAY (the environment itself is not changed here: it
        // belongs to the whole test process).
        assert!(matches!(display_name(Some(":7")), Ok(d) if d == ":7"));
        let message = X11Error::NoDisplay.to_string();
        assert!(message.contains("DISPLAY"), "{message}");
    }

    #[test]
    fn bgrx_round_trip_keeps_the_pattern() {
        let pattern = PatternSource::new(320, 180, 15).unwrap().render(9, 1234);
        let back = bgrx_to_i420(&i420_to_bgrx(&pattern).unwrap(), 320, 180).unwrap();
        // Greys (U = V = 128) are in gamut: luma comes back within a step. (The pattern's
        // saturated colours clip in RGB, so its luma does not.)
        let mut grey = I420Frame::black(320, 180).unwrap();
        for (i, p) in grey.planes_mut().0.iter_mut().enumerate() {
            *p = 16 + (i % 220) as u8;
        }
        let grey_back = bgrx_to_i420(&i420_to_bgrx(&grey).unwrap(), 320, 180).unwrap();
        let worst = grey
            .y()
            .iter()
            .zip(grey_back.y())
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert!(worst <= Some(1), "luma drifted by {worst:?}");
        assert_eq!(crate::media::read_burned_in(&back), Some((9, 1234)));
        assert!(bgrx_to_i420(&[0; 16], 320, 180).is_err());
    }
}
