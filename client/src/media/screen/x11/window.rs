//! [`X11Window`]: a [`VideoSource`] of one X window, captured through the Composite extension so
//! that other windows covering it do not show in it.
//!
//! The window's top-level (a window manager's frame, or the window itself) is redirected
//! (`CompositeRedirectWindow`, automatic: the server still shows it; any number of clients may
//! ask) and its off-screen pixmap named (`CompositeNameWindowPixmap`); each frame is one
//! `ShmGetImage` (or `GetImage`) of that pixmap. `StructureNotify` on the window tells what
//! happens to it:
//!
//! - `ConfigureNotify` with a new size: the pixmap is named again (the old one keeps the old
//!   size) and the SHM segment grows if needed; frames come at the new size (the publish path
//!   makes a new encoder, which starts with a keyframe);
//! - `UnmapNotify` (minimised, another desktop): X keeps no pixels of an unmapped window, so the
//!   last frame repeats until `MapNotify`;
//! - `DestroyNotify`, or a `BadWindow`/`BadDrawable`/`BadMatch`/`BadPixmap` answer: the source
//!   has ended ([`SourceError::Ended`]): the engine ends the share.
//!
//! Frames have even sides (I420 halves chroma): an odd last column or row is left out. The mouse
//! pointer is drawn in where it is over the window ([`Cursor`]; the window's place on the root
//! comes from one `TranslateCoordinates` a frame).

use super::cursor::Cursor;
use super::transfer::Transfer;
use super::windows::{title, top_level};
use super::{X11Error, bgrx_to_i420, check_depth, connect, protocol};
use crate::media::pattern::VideoSource;
use crate::media::{I420Frame, SourceError, unix_micros_now};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::ReplyError;
use x11rb::protocol::composite::{ConnectionExt as _, Redirect};
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, EventMask, MapState, Pixmap, Window,
};
use x11rb::protocol::{ErrorKind, Event};
use x11rb::rust_connection::RustConnection;

/// The size of the top-level: inside size and border (the named pixmap holds both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    width: u16,
    height: u16,
    border: u16,
}

impl Geometry {
    /// The captured part: the inside, sides rounded down to even; `None` under 2×2.
    fn capture_size(self) -> Option<(u16, u16)> {
        let (w, h) = (self.width & !1, self.height & !1);
        (w >= 2 && h >= 2).then_some((w, h))
    }
}

/// Whether an X error means the window (or its pixmap) is gone.
fn is_gone(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Window | ErrorKind::Drawable | ErrorKind::Match | ErrorKind::Pixmap
    )
}

/// A [`VideoSource`] capturing one X window at the engine's pace, covered or not.
pub struct X11Window {
    conn: RustConnection,
    display: String,
    root: Window,
    /// The window asked for (the id in `window:0x…`).
    window: Window,
    /// What is redirected and captured: the root's child holding `window`.
    top: Window,
    title: String,
    geometry: Geometry,
    /// Whether the top-level is on screen (an unmapped window has no pixels).
    mapped: bool,
    /// The named pixmap of the top-level, while it is mapped.
    pixmap: Option<Pixmap>,
    /// The pixmap must be named (again): first frame, new size, mapped again.
    rename: bool,
    transfer: Transfer,
    cursor: Cursor,
    /// The last frame, repeated while the window is unmapped.
    last: Option<I420Frame>,
    next_number: u64,
}

impl std::fmt::Debug for X11Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Window")
            .field("display", &self.display)
            .field("window", &format_args!("0x{:x}", self.window))
            .field("top_level", &format_args!("0x{:x}", self.top))
            .field("title", &self.title)
            .field("geometry", &self.geometry)
            .field("mapped", &self.mapped)
            .field("shm", &self.uses_shm())
            .field("cursor", &self.cursor.is_on())
            .finish_non_exhaustive()
    }
}

impl X11Window {
    /// Opens window `window` of `display` (or `$DISPLAY`) for capture, through MIT-SHM when the
    /// server offers it. [`X11Error::NoSuchWindow`] when it does not exist;
    /// [`X11Error::NoComposite`] when the server cannot redirect windows.
    pub fn open(display: Option<&str>, window: u32) -> Result<Self, X11Error> {
        Self::open_with(display, window, true)
    }

    /// [`open`](Self::open), with a SHM segment only if `shm`.
    pub(super) fn open_with(
        display: Option<&str>,
        window: u32,
        shm: bool,
    ) -> Result<Self, X11Error> {
        let (conn, screen, name) = connect(display)?;
        let root = conn.setup().roots[screen].root;
        let no_such = || X11Error::NoSuchWindow {
            display: name.clone(),
            window,
        };
        // A reply error naming the window means it is not there; the rest are failures.
        let fail = |what: &str, e: ReplyError| match &e {
            ReplyError::X11Error(x) if is_gone(x.error_kind) => no_such(),
            _ => protocol(&name, what, e),
        };
        let composite = conn
            .extension_information(x11rb::protocol::composite::X11_EXTENSION_NAME)
            .map_err(|e| protocol(&name, "QueryExtension Composite", e))?
            .is_some();
        let version = if composite {
            conn.composite_query_version(0, 4)
                .map_err(|e| fail("CompositeQueryVersion", e.into()))?
                .reply()
                .ok()
        } else {
            None
        };
        if version.is_none_or(|v| (v.major_version, v.minor_version) < (0, 2)) {
            return Err(X11Error::NoComposite { display: name });
        }
        let top = top_level(&conn, root, window)
            .map_err(|e| fail("QueryTree", e))?
            .ok_or_else(no_such)?;

        // Events first, then the state: a change in between is seen as an event.
        let events = ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY);
        let watched = if top == window {
            vec![top]
        } else {
            vec![top, window]
        };
        for w in watched {
            conn.change_window_attributes(w, &events)
                .map_err(|e| fail("ChangeWindowAttributes", e.into()))?
                .check()
                .map_err(|e| fail("ChangeWindowAttributes", e))?;
        }
        conn.composite_redirect_window(top, Redirect::AUTOMATIC)
            .map_err(|e| fail("CompositeRedirectWindow", e.into()))?
            .check()
            .map_err(|e| fail("CompositeRedirectWindow", e))?;
        let g = conn
            .get_geometry(top)
            .map_err(|e| fail("GetGeometry", e.into()))?
            .reply()
            .map_err(|e| fail("GetGeometry", e))?;
        check_depth(&conn, g.depth, &name)?;
        let mapped = conn
            .get_window_attributes(top)
            .map_err(|e| fail("GetWindowAttributes", e.into()))?
            .reply()
            .map_err(|e| fail("GetWindowAttributes", e))?
            .map_state
            == MapState::VIEWABLE;
        let geometry = Geometry {
            width: g.width,
            height: g.height,
            border: g.border_width,
        };
        let transfer = if shm {
            Transfer::new(&conn, bytes_for(geometry))
        } else {
            Transfer::socket()
        };
        let title = title(&conn, window).unwrap_or_else(|| format!("window 0x{window:x}"));
        tracing::debug!(
            display = %name,
            window = format_args!("0x{window:x}"),
            top_level = format_args!("0x{top:x}"),
            width = g.width,
            height = g.height,
            mapped,
            shm = transfer.is_shm(),
            "capturing an X window"
        );
        let cursor = Cursor::new(&conn, root);
        Ok(Self {
            conn,
            display: name,
            root,
            window,
            top,
            title,
            geometry,
            mapped,
            pixmap: None,
            rename: true,
            transfer,
            cursor,
            last: None,
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

    /// Width of the frames now (it follows the window).
    pub fn width(&self) -> u32 {
        self.geometry
            .capture_size()
            .map_or(2, |(w, _)| u32::from(w))
    }

    /// Height of the frames now.
    pub fn height(&self) -> u32 {
        self.geometry
            .capture_size()
            .map_or(2, |(_, h)| u32::from(h))
    }

    /// The window's title when it was opened.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The window asked for.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// The window captured (the window manager's frame holding it, or itself).
    pub fn top_level(&self) -> u32 {
        self.top
    }

    /// Reads what happened to the window since the last frame. `Err(Ended)` once it is gone.
    fn poll_events(&mut self) -> Result<(), SourceError> {
        loop {
            let event = match self.conn.poll_for_event() {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.ended(&format!("the X connection broke: {e}"))),
            };
            if self.cursor.handle(&event) {
                continue;
            }
            match event {
                Event::DestroyNotify(e) if e.window == self.top || e.window == self.window => {
                    return Err(self.ended("the window was closed"));
                }
                Event::UnmapNotify(e) if e.window == self.top => {
                    self.mapped = false;
                    self.free_pixmap();
                }
                Event::MapNotify(e) if e.window == self.top => {
                    self.mapped = true;
                    self.rename = true;
                }
                Event::ConfigureNotify(e) if e.window == self.top => {
                    let geometry = Geometry {
                        width: e.width,
                        height: e.height,
                        border: e.border_width,
                    };
                    if geometry != self.geometry {
                        tracing::debug!(?geometry, "the shared window changed size");
                        self.geometry = geometry;
                        self.rename = true;
                    }
                }
                // Errors of requests sent without waiting (FreePixmap): nothing to do.
                _ => {}
            }
        }
    }

    fn ended(&self, why: &str) -> SourceError {
        tracing::info!(
            display = %self.display,
            window = format_args!("0x{:x}", self.window),
            "window capture ended: {why}"
        );
        SourceError::Ended
    }

    /// An X error answering a request about the window: gone (ended) or a failure.
    fn x_error(&self, what: &str, e: &ReplyError) -> SourceError {
        match e {
            ReplyError::X11Error(x) if is_gone(x.error_kind) => {
                self.ended(&format!("{what}: {:?}", x.error_kind))
            }
            ReplyError::X11Error(_) => {
                SourceError::Failed(protocol(&self.display, what, e).to_string())
            }
            ReplyError::ConnectionError(c) => self.ended(&format!("the X connection broke: {c}")),
        }
    }

    fn free_pixmap(&mut self) {
        if let Some(p) = self.pixmap.take() {
            let _ = self.conn.free_pixmap(p);
        }
    }

    /// Names the top-level's pixmap (again) and reads its size, which is what the next captures
    /// take (a resize racing with this is seen as the next `ConfigureNotify`).
    fn name_pixmap(&mut self) -> Result<(), SourceError> {
        self.free_pixmap();
        self.rename = false;
        let pixmap = self
            .conn
            .generate_id()
            .map_err(|e| SourceError::Failed(protocol(&self.display, "an id", e).to_string()))?;
        let named = self
            .conn
            .composite_name_window_pixmap(self.top, pixmap)
            .map_err(ReplyError::from)
            .and_then(|c| c.check());
        match named {
            Ok(()) => {}
            // Not viewable (unmapped since the last event): its UnmapNotify is on its way.
            Err(ReplyError::X11Error(x)) if x.error_kind == ErrorKind::Match => {
                self.mapped = false;
                return Ok(());
            }
            Err(e) => return Err(self.x_error("CompositeNameWindowPixmap", &e)),
        }
        self.pixmap = Some(pixmap);
        let g = self
            .conn
            .get_geometry(pixmap)
            .map_err(ReplyError::from)
            .and_then(|c| c.reply())
            .map_err(|e| self.x_error("GetGeometry", &e))?;
        // The pixmap holds the window and its border.
        let border = self.geometry.border;
        self.geometry.width = g.width.saturating_sub(2 * border);
        self.geometry.height = g.height.saturating_sub(2 * border);
        self.transfer.ensure(&self.conn, bytes_for(self.geometry));
        Ok(())
    }

    /// The last frame again (black at the window's size before the first).
    fn repeat(&self) -> Result<I420Frame, SourceError> {
        match &self.last {
            Some(last) => Ok(last.clone()),
            None => I420Frame::black(self.width(), self.height())
                .map_err(|e| SourceError::Failed(e.to_string())),
        }
    }

    /// One capture of the window as it is now.
    fn capture(&mut self) -> Result<I420Frame, SourceError> {
        self.poll_events()?;
        if self.mapped && self.rename {
            self.name_pixmap()?;
        }
        let (Some(pixmap), true, Some((w, h))) =
            (self.pixmap, self.mapped, self.geometry.capture_size())
        else {
            return self.repeat();
        };
        let border = i16::try_from(self.geometry.border).unwrap_or(i16::MAX);
        let pixels = match self
            .transfer
            .get_image(&self.conn, pixmap, (border, border), (w, h))
        {
            Ok(pixels) => pixels,
            Err(e) => {
                let request = e.request;
                return Err(self.x_error(request, &e.error));
            }
        };
        let mut frame = bgrx_to_i420(pixels, u32::from(w), u32::from(h)).map_err(|e| {
            SourceError::Failed(protocol(&self.display, "converting BGRX to I420", e).to_string())
        })?;
        if self.cursor.is_on() {
            // The inside's top-left on the root, asked before the pointer so both travel together;
            // a failure (the window just went) leaves the cursor out: the next frame sees why.
            let origin = self
                .conn
                .translate_coordinates(self.top, self.root, 0, 0)
                .ok();
            let pointer = self.cursor.locate(&self.conn);
            let origin = origin.and_then(|c| c.reply().ok());
            if let (Some(pointer), Some(o)) = (pointer, origin) {
                let origin = (i32::from(o.dst_x), i32::from(o.dst_y));
                self.cursor.draw(pointer, origin, pixels, &mut frame);
            }
        }
        self.last = Some(frame.clone());
        Ok(frame)
    }

    /// One frame for a picker: [`X11Error::NoSuchWindow`] if it went meanwhile.
    pub(super) fn snapshot(&mut self) -> Result<I420Frame, X11Error> {
        self.capture().map_err(|e| match e {
            SourceError::Ended => X11Error::NoSuchWindow {
                display: self.display.clone(),
                window: self.window,
            },
            SourceError::Failed(detail) => X11Error::Protocol {
                display: self.display.clone(),
                detail,
            },
        })
    }
}

/// Bytes of a capture of `g`.
fn bytes_for(g: Geometry) -> u32 {
    g.capture_size()
        .map_or(16, |(w, h)| u32::from(w) * u32::from(h) * 4)
}

impl Drop for X11Window {
    fn drop(&mut self) {
        self.free_pixmap();
        let _ = self
            .conn
            .composite_unredirect_window(self.top, Redirect::AUTOMATIC);
        self.transfer.release(&self.conn);
        let _ = self.conn.flush();
    }
}

impl VideoSource for X11Window {
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
    fn captured_sides_are_even() {
        let g = |width, height| Geometry {
            width,
            height,
            border: 1,
        };
        assert_eq!(g(641, 361).capture_size(), Some((640, 360)));
        assert_eq!(g(2, 2).capture_size(), Some((2, 2)));
        assert_eq!(g(1, 200).capture_size(), None);
        assert_eq!(bytes_for(g(641, 361)), 640 * 360 * 4);
    }

    #[test]
    fn a_display_nobody_serves_is_refused_with_its_name() {
        let e = X11Window::open(Some(":4243"), 0x200001).unwrap_err();
        assert!(
            matches!(e, X11Error::Connect { ref display, .. } if display == ":4243"),
            "{e}"
        );
    }
}
