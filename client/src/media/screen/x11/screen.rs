//! [`X11Screen`]: a [`VideoSource`] of a whole X screen or one of its monitors (RandR
//! `RRGetMonitors`, or the root window when RandR is missing). One `ShmGetImage` (or `GetImage`)
//! of the area per frame, and the mouse pointer drawn in ([`Cursor`]).

use super::cursor::Cursor;
use super::transfer::Transfer;
use super::{X11Error, bgrx_to_i420, check_depth, connect, protocol};
use crate::media::pattern::VideoSource;
use crate::media::{I420Frame, SourceError, unix_micros_now};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, Window};
use x11rb::rust_connection::RustConnection;

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
    cursor: Cursor,
    next_number: u64,
}

impl std::fmt::Debug for X11Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Screen")
            .field("display", &self.display)
            .field("area", &(self.x, self.y, self.width, self.height))
            .field("shm", &self.uses_shm())
            .field("cursor", &self.cursor.is_on())
            .finish_non_exhaustive()
    }
}

/// The monitors of screen `screen`: RandR's active monitors, else the root window.
pub(super) fn list_monitors(
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

impl X11Screen {
    /// The monitors of `display` (or `$DISPLAY`), in RandR's order.
    pub fn monitors(display: Option<&str>) -> Result<Vec<Monitor>, X11Error> {
        let (conn, screen, name) = connect(display)?;
        list_monitors(&conn, screen, &name)
    }

    /// Opens `display` (or `$DISPLAY`) to capture `area`, through MIT-SHM when the server offers it,
    /// with the mouse pointer drawn in when the server has XFixes.
    pub fn open(display: Option<&str>, area: X11Area) -> Result<Self, X11Error> {
        Self::open_with(display, area, true)
    }

    /// [`open`](Self::open), with a SHM segment only if `shm` (a single capture, such as a
    /// thumbnail, is cheaper through the socket than with a segment made for it).
    pub(super) fn open_with(
        display: Option<&str>,
        area: X11Area,
        shm: bool,
    ) -> Result<Self, X11Error> {
        let (conn, screen, name) = connect(display)?;
        let depth = conn.setup().roots[screen].root_depth;
        check_depth(&conn, depth, &name)?;
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
        let transfer = if shm {
            Transfer::new(&conn, size)
        } else {
            Transfer::socket()
        };
        tracing::debug!(
            display = %name,
            width, height,
            shm = transfer.is_shm(),
            "capturing the X screen"
        );
        let cursor = Cursor::new(&conn, root);
        Ok(Self {
            conn,
            display: name,
            root,
            x,
            y,
            width,
            height,
            transfer,
            cursor,
            next_number: 0,
        })
    }

    /// The same source capturing through the socket (core `GetImage`), for comparison.
    pub fn without_shm(mut self) -> Self {
        self.transfer.release(&self.conn);
        self
    }

    /// The same source without the mouse pointer in its frames.
    pub fn without_cursor(mut self) -> Self {
        self.cursor.turn_off(&self.conn);
        self
    }

    /// Whether the mouse pointer is drawn into the frames (on unless turned off, and the server
    /// has XFixes).
    pub fn draws_cursor(&self) -> bool {
        self.cursor.is_on()
    }

    /// Whether frames come through MIT-SHM.
    pub fn uses_shm(&self) -> bool {
        self.transfer.is_shm()
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

    /// One capture of the area, converted to I420, with the cursor drawn in.
    fn capture(&mut self) -> Result<I420Frame, X11Error> {
        let (w, h) = (self.width, self.height);
        let pixels = self
            .transfer
            .get_image(&self.conn, self.root, (self.x, self.y), (w, h))
            .map_err(|e| protocol(&self.display, e.request, &e.error))?;
        let mut frame = bgrx_to_i420(pixels, u32::from(w), u32::from(h))
            .map_err(|e| protocol(&self.display, "converting BGRX to I420", e))?;
        if self.cursor.is_on() {
            self.cursor.drain(&self.conn);
            if let Some(pointer) = self.cursor.locate(&self.conn) {
                let origin = (i32::from(self.x), i32::from(self.y));
                self.cursor.draw(pointer, origin, pixels, &mut frame);
            }
        }
        Ok(frame)
    }
}

impl Drop for X11Screen {
    fn drop(&mut self) {
        self.transfer.release(&self.conn);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_display_nobody_serves_is_refused_with_its_name() {
        let e = X11Screen::open(Some(":4242"), X11Area::Root).unwrap_err();
        assert!(
            matches!(e, X11Error::Connect { ref display, .. } if display == ":4242"),
            "{e}"
        );
        assert!(e.to_string().contains("is an X server running"), "{e}");
    }
}
