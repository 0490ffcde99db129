//! Screen capture on X11 with `x11rb` (pure Rust, no libxcb): [`X11Screen`] is a
//! [`VideoSource`] of a whole X screen or one of its monitors.
//!
//! One connection to the display for the source's life. Monitors come from RandR
//! (`RRGetMonitors`), or are the root window when RandR is missing. Each frame is one
//! `ShmGetImage` of the area into a MIT-SHM segment the server creates and we map (SHM ≥ 1.2;
//! see [`shm`]), or a core `GetImage` through the socket when SHM is missing (a remote display).
//! The pixels (ZPixmap, 32 bits per pixel, LSB first: BGRX) become I420 with `yuv` (BT.601,
//! limited range, as the rest of the client).
//!
//! Not here yet: window capture (Composite), the cursor (XFixes).

// The one unsafe part of the capture: mapping the shared-memory segment.
#[allow(unsafe_code)]
mod shm;
mod sources;

pub use sources::{WHOLE_SCREEN_ID, list_sources, open_source, thumbnail};

use super::super::pattern::VideoSource;
use super::super::{I420Frame, SourceError, unix_micros_now};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder, Window};
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

/// One monitor of an X screen (a RandR monitor, or the whole root window without RandR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    /// Its RandR name (e.g. `HDMI-1`), or `screen` for the root window.
    pub name: String,
    /// Left edge on the root window.
    pub x: i16,
    /// Top edge on the root window.
    pub y: i16,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// The primary monitor.
    pub primary: bool,
}

/// What an [`X11Screen`] captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum X11Area {
    /// The whole root window (all monitors).
    #[default]
    Root,
    /// One monitor, by its index in [`X11Screen::monitors`].
    Monitor(usize),
}

/// How frames travel from the X server.
enum Transfer {
    /// `ShmGetImage` into a segment the server created.
    Shm {
        seg: x11rb::protocol::shm::Seg,
        mapping: shm::Mapping,
    },
    /// Core `GetImage`: the pixels come through the socket.
    Socket,
}

/// A [`VideoSource`] capturing an X screen (or one monitor of it) at the engine's pace.
pub struct X11Screen {
    conn: RustConnection,
    display: String,
    root: Window,
    x: i16,
    y: i16,
    width: u16,
    height: u16,
    transfer: Transfer,
    next_number: u64,
    /// The pixels of a `GetImage` capture (the SHM path reads the segment in place).
    socket_pixels: Vec<u8>,
}

impl std::fmt::Debug for X11Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Screen")
            .field("display", &self.display)
            .field("area", &(self.x, self.y, self.width, self.height))
            .field("shm", &self.uses_shm())
            .finish_non_exhaustive()
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

/// The monitors of screen `screen`: RandR's active monitors, else the root window.
fn list_monitors(
    conn: &RustConnection,
    screen: usize,
    display: &str,
) -> Result<Vec<Monitor>, X11Error> {
    let root = &conn.setup().roots[screen];
    let whole = Monitor {
        name: "screen".to_owned(),
        x: 0,
        y: 0,
        width: root.width_in_pixels,
        height: root.height_in_pixels,
        primary: true,
    };
    let has_randr = conn
        .extension_information(x11rb::protocol::randr::X11_EXTENSION_NAME)
        .map_err(|e| protocol(display, "QueryExtension RANDR", e))?
        .is_some();
    if !has_randr {
        return Ok(vec![whole]);
    }
    // RRGetMonitors needs RandR 1.5; an older server answers with an error: use the root.
    let Ok(reply) = conn
        .randr_get_monitors(root.root, true)
        .map_err(|e| protocol(display, "RRGetMonitors", e))?
        .reply()
    else {
        return Ok(vec![whole]);
    };
    let mut monitors = Vec::with_capacity(reply.monitors.len());
    for m in reply.monitors {
        let name = conn
            .get_atom_name(m.name)
            .map_err(|e| protocol(display, "GetAtomName", e))?
            .reply()
            .map(|r| String::from_utf8_lossy(&r.name).into_owned())
            .unwrap_or_else(|_| format!("monitor-{}", m.name));
        monitors.push(Monitor {
            name,
            x: m.x,
            y: m.y,
            width: m.width,
            height: m.height,
            primary: m.primary,
        });
    }
    if monitors.is_empty() {
        monitors.push(whole);
    }
    Ok(monitors)
}

/// Checks that a ZPixmap of the root is BGRX (32 bits per pixel, LSB first).
fn check_format(conn: &RustConnection, screen: usize, display: &str) -> Result<(), X11Error> {
    let setup = conn.setup();
    let depth = setup.roots[screen].root_depth;
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

/// A SHM segment of `size` bytes, or `None` when SHM < 1.2 is all the server has or the segment
/// cannot be made (a remote display): then frames come through the socket.
fn shm_transfer(conn: &RustConnection, size: u32) -> Option<Transfer> {
    conn.extension_information(x11rb::protocol::shm::X11_EXTENSION_NAME)
        .ok()??;
    let version = conn.shm_query_version().ok()?.reply().ok()?;
    if (version.major_version, version.minor_version) < (1, 2) {
        return None;
    }
    let seg = conn.generate_id().ok()?;
    let reply = conn
        .shm_create_segment(seg, size, false)
        .ok()?
        .reply()
        .ok()?;
    match shm::Mapping::map(&reply.shm_fd, size as usize) {
        Ok(mapping) => Some(Transfer::Shm { seg, mapping }),
        Err(e) => {
            tracing::warn!(
                "cannot map the X shared-memory segment ({e}); capturing through the socket"
            );
            let _ = conn.shm_detach(seg);
            None
        }
    }
}

impl X11Screen {
    /// The monitors of `display` (or `$DISPLAY`), in RandR's order.
    pub fn monitors(display: Option<&str>) -> Result<Vec<Monitor>, X11Error> {
        let (conn, screen, name) = connect(display)?;
        list_monitors(&conn, screen, &name)
    }

    /// Opens `display` (or `$DISPLAY`) to capture `area`, through MIT-SHM when the server offers it.
    pub fn open(display: Option<&str>, area: X11Area) -> Result<Self, X11Error> {
        let (conn, screen, name) = connect(display)?;
        check_format(&conn, screen, &name)?;
        let root = conn.setup().roots[screen].root;
        let (x, y, width, height) = match area {
            X11Area::Root => {
                let r = &conn.setup().roots[screen];
                (0, 0, r.width_in_pixels, r.height_in_pixels)
            }
            X11Area::Monitor(index) => {
                let monitors = list_monitors(&conn, screen, &name)?;
                let m = monitors.get(index).ok_or(X11Error::NoSuchMonitor {
                    display: name.clone(),
                    index,
                    count: monitors.len(),
                })?;
                (m.x, m.y, m.width, m.height)
            }
        };
        let size = u32::from(width) * u32::from(height) * 4;
        let transfer = shm_transfer(&conn, size).unwrap_or(Transfer::Socket);
        tracing::info!(
            display = %name,
            width, height,
            shm = matches!(transfer, Transfer::Shm { .. }),
            "capturing the X screen"
        );
        Ok(Self {
            conn,
            display: name,
            root,
            x,
            y,
            width,
            height,
            transfer,
            next_number: 0,
            socket_pixels: Vec::new(),
        })
    }

    /// The same source capturing through the socket (core `GetImage`), for comparison.
    pub fn without_shm(mut self) -> Self {
        if let Transfer::Shm { seg, .. } = std::mem::replace(&mut self.transfer, Transfer::Socket) {
            let _ = self.conn.shm_detach(seg);
        }
        self
    }

    /// Whether frames come through MIT-SHM.
    pub fn uses_shm(&self) -> bool {
        matches!(self.transfer, Transfer::Shm { .. })
    }

    /// Width of the captured frames.
    pub fn width(&self) -> u32 {
        u32::from(self.width)
    }

    /// Height of the captured frames.
    pub fn height(&self) -> u32 {
        u32::from(self.height)
    }

    /// The display captured (`:0`…).
    pub fn display(&self) -> &str {
        &self.display
    }

    /// One capture of the area, converted to I420.
    fn capture(&mut self) -> Result<I420Frame, X11Error> {
        let (w, h) = (self.width, self.height);
        let len = usize::from(w) * usize::from(h) * 4;
        let pixels: &[u8] = match &self.transfer {
            Transfer::Shm { seg, mapping } => {
                self.conn
                    .shm_get_image(
                        self.root,
                        self.x,
                        self.y,
                        w,
                        h,
                        !0,
                        ImageFormat::Z_PIXMAP.into(),
                        *seg,
                        0,
                    )
                    .map_err(|e| protocol(&self.display, "ShmGetImage", e))?
                    .reply()
                    .map_err(|e| protocol(&self.display, "ShmGetImage", e))?;
                &mapping.bytes()[..len]
            }
            Transfer::Socket => {
                self.socket_pixels = self
                    .conn
                    .get_image(ImageFormat::Z_PIXMAP, self.root, self.x, self.y, w, h, !0)
                    .map_err(|e| protocol(&self.display, "GetImage", e))?
                    .reply()
                    .map_err(|e| protocol(&self.display, "GetImage", e))?
                    .data;
                &self.socket_pixels
            }
        };
        bgrx_to_i420(pixels, u32::from(w), u32::from(h))
            .map_err(|e| protocol(&self.display, "converting BGRX to I420", e))
    }
}

impl Drop for X11Screen {
    fn drop(&mut self) {
        if let Transfer::Shm { seg, .. } = self.transfer {
            let _ = self.conn.shm_detach(seg);
            let _ = self.conn.flush();
        }
    }
}

impl VideoSource for X11Screen {
    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        let capture_micros = unix_micros_now();
        let mut frame = self.capture()?;
        frame.capture_micros = capture_micros;
        frame.frame_number = self.next_number;
        self.next_number += 1;
        Ok(frame)
    }
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
    fn a_display_nobody_serves_is_refused_with_its_name() {
        let e = X11Screen::open(Some(":4242"), X11Area::Root).unwrap_err();
        assert!(
            matches!(e, X11Error::Connect { ref display, .. } if display == ":4242"),
            "{e}"
        );
        assert!(e.to_string().contains("is an X server running"), "{e}");
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
