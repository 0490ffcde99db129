//! The mouse pointer in captured frames. X leaves the cursor out of `GetImage`; the XFixes
//! extension (≥ 1.0) gives its shape (`XFixesGetCursorImage`: hotspot, size, premultiplied ARGB).
//!
//! The shape is fetched once and kept until a `CursorNotify` (selected on the root) says it
//! changed; in between a frame costs one `QueryPointer`. The pointer's box, widened to even
//! coordinates, is copied out of the captured BGRX, the cursor is blended on it (src-over,
//! premultiplied alpha) and that small patch, converted to I420, replaces the same box of the
//! frame: the full-size capture is never copied. Without XFixes frames simply have no cursor.

use super::bgrx_to_i420;
use crate::media::I420Frame;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::xfixes::{ConnectionExt as _, CursorNotifyMask};
use x11rb::protocol::xproto::{ConnectionExt as _, Window};
use x11rb::rust_connection::RustConnection;

/// A cursor shape: hotspot, size and premultiplied ARGB pixels (row after row).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Image {
    serial: u32,
    xhot: u16,
    yhot: u16,
    width: u16,
    height: u16,
    pixels: Vec<u32>,
}

/// The cursor of one capture connection.
#[derive(Debug)]
pub(super) struct Cursor {
    root: Window,
    /// XFixes is there and the cursor is drawn.
    on: bool,
    /// The shape last fetched.
    image: Option<Image>,
    /// The serial of the shape shown now, when a `CursorNotify` told it after `image` was fetched.
    announced: Option<u32>,
}

impl Cursor {
    /// The cursor of the screen of `root`: XFixes is asked for its version (4.0, at least 1.0
    /// needed) and to report shape changes. Without XFixes the cursor stays off.
    pub(super) fn new(conn: &RustConnection, root: Window) -> Self {
        let on = conn
            .extension_information(x11rb::protocol::xfixes::X11_EXTENSION_NAME)
            .ok()
            .flatten()
            .is_some()
            && conn
                .xfixes_query_version(4, 0)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|v| v.major_version >= 1)
            && conn
                .xfixes_select_cursor_input(root, CursorNotifyMask::DISPLAY_CURSOR)
                .is_ok();
        if !on {
            tracing::debug!("no XFixes extension: captured frames will have no cursor");
        }
        Self {
            root,
            on,
            image: None,
            announced: None,
        }
    }

    /// Stops drawing the cursor (and hearing of its changes).
    pub(super) fn turn_off(&mut self, conn: &RustConnection) {
        if self.on {
            let _ = conn.xfixes_select_cursor_input(self.root, CursorNotifyMask::default());
            let _ = conn.flush();
        }
        self.on = false;
        self.image = None;
    }

    /// Whether the cursor is drawn.
    pub(super) fn is_on(&self) -> bool {
        self.on
    }

    /// Takes an event of the connection: `true` if it was the cursor's (a new shape).
    pub(super) fn handle(&mut self, event: &Event) -> bool {
        match event {
            Event::XfixesCursorNotify(e) => {
                self.announced = Some(e.cursor_serial);
                true
            }
            _ => false,
        }
    }

    /// Reads the connection's pending events (for a capture that has no others to read).
    pub(super) fn drain(&mut self, conn: &RustConnection) {
        while let Ok(Some(event)) = conn.poll_for_event() {
            self.handle(&event);
        }
    }

    /// Where the pointer is on the root now, fetching the shape first if it changed. `None`
    /// when the cursor is off, the pointer is on another screen or a request failed (a
    /// broken connection shows in the next image request).
    pub(super) fn locate(&mut self, conn: &RustConnection) -> Option<(i32, i32)> {
        if !self.on {
            return None;
        }
        let current = self
            .image
            .as_ref()
            .is_some_and(|i| self.announced.is_none_or(|s| s == i.serial));
        if current {
            let p = conn.query_pointer(self.root).ok()?.reply().ok()?;
            return p
                .same_screen
                .then_some((i32::from(p.root_x), i32::from(p.root_y)));
        }
        let r = conn.xfixes_get_cursor_image().ok()?.reply().ok()?;
        let size = usize::from(r.width) * usize::from(r.height);
        if r.cursor_image.len() < size {
            return None;
        }
        self.announced = None;
        self.image = Some(Image {
            serial: r.cursor_serial,
            xhot: r.xhot,
            yhot: r.yhot,
            width: r.width,
            height: r.height,
            pixels: r.cursor_image,
        });
        Some((i32::from(r.x), i32::from(r.y)))
    }

    /// Draws the cursor, its hotspot at `pointer` (root coordinates), into `frame`, the I420 of
    /// `bgrx` (`frame`'s size, 4 bytes a pixel), a capture whose top-left is at `origin` on the
    /// root. Nothing happens when the cursor is off or outside the frame.
    pub(super) fn draw(
        &self,
        pointer: (i32, i32),
        origin: (i32, i32),
        bgrx: &[u8],
        frame: &mut I420Frame,
    ) {
        if let Some(image) = self.image.as_ref().filter(|_| self.on) {
            let at = (
                pointer.0 - i32::from(image.xhot) - origin.0,
                pointer.1 - i32::from(image.yhot) - origin.1,
            );
            draw(image, at, bgrx, frame);
        }
    }
}

/// Draws `image` with its top-left at `at` (frame coordinates) into `frame`, the I420 of `bgrx`.
fn draw(image: &Image, at: (i32, i32), bgrx: &[u8], frame: &mut I420Frame) {
    let (w, h) = (frame.width() as i32, frame.height() as i32);
    if bgrx.len() < w as usize * h as usize * 4 {
        return;
    }
    // The cursor's box in the frame, widened to even coordinates (a whole chroma sample).
    let x0 = at.0.max(0) & !1;
    let y0 = at.1.max(0) & !1;
    let (x1, y1) = (
        even_end(at.0 + i32::from(image.width), w),
        even_end(at.1 + i32::from(image.height), h),
    );
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let (bw, bh) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let stride = w as usize * 4;
    let mut patch = Vec::with_capacity(bw * bh * 4);
    for row in y0 as usize..y1 as usize {
        let start = row * stride + x0 as usize * 4;
        patch.extend_from_slice(&bgrx[start..start + bw * 4]);
    }
    for cy in 0..i32::from(image.height) {
        let py = at.1 + cy - y0;
        if !(0..bh as i32).contains(&py) {
            continue;
        }
        for cx in 0..i32::from(image.width) {
            let px = at.0 + cx - x0;
            if !(0..bw as i32).contains(&px) {
                continue;
            }
            let argb = image.pixels[cy as usize * usize::from(image.width) + cx as usize];
            let at = (py as usize * bw + px as usize) * 4;
            blend(&mut patch[at..at + 4], argb);
        }
    }
    let Ok(small) = bgrx_to_i420(&patch, bw as u32, bh as u32) else {
        return;
    };
    let (fw, fcw) = (w as usize, frame.chroma_width() as usize);
    let scw = small.chroma_width() as usize;
    let (y, u, v) = frame.planes_mut();
    for (row, line) in small.y().chunks_exact(bw).enumerate() {
        let start = (y0 as usize + row) * fw + x0 as usize;
        y[start..start + bw].copy_from_slice(line);
    }
    for (plane, from) in [(u, small.u()), (v, small.v())] {
        for (row, line) in from.chunks_exact(scw).enumerate() {
            let start = (y0 as usize / 2 + row) * fcw + x0 as usize / 2;
            plane[start..start + scw].copy_from_slice(line);
        }
    }
}

/// The end (exclusive) of a box ending at `end`, clipped to `side` and rounded up to even
/// unless that passes an odd `side`.
fn even_end(end: i32, side: i32) -> i32 {
    let end = end.min(side);
    if end & 1 == 1 && end < side {
        end + 1
    } else {
        end
    }
}

/// Premultiplied ARGB over one BGRX pixel.
fn blend(dst: &mut [u8], argb: u32) {
    if argb == 0 {
        return;
    }
    let keep = 255 - (argb >> 24);
    for (i, shift) in [(0, 0), (1, 8), (2, 16)] {
        let src = (argb >> shift) & 0xff;
        let over = src + (u32::from(dst[i]) * keep + 127) / 255;
        dst[i] = over.min(255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premultiplied_pixels_go_over_the_frame() {
        let mut px = [200, 100, 50, 0];
        blend(&mut px, 0x0000_0000);
        assert_eq!(px, [200, 100, 50, 0], "transparent leaves it");
        blend(&mut px, 0xff10_2030);
        assert_eq!(px, [0x30, 0x20, 0x10, 0], "opaque replaces it");
        let mut px = [200, 100, 50, 0];
        // Half-transparent black: half the frame's value.
        blend(&mut px, 0x8000_0000);
        assert_eq!(px, [100, 50, 25, 0]);
    }

    #[test]
    fn the_cursor_lands_at_its_place_clipped_to_the_frame() {
        let (w, h) = (64u32, 48u32);
        let grey = vec![128u8; (w * h * 4) as usize];
        let base = bgrx_to_i420(&grey, w, h).unwrap();
        let image = Image {
            serial: 1,
            xhot: 0,
            yhot: 0,
            width: 5,
            height: 3,
            pixels: vec![0xff00_0000; 15],
        };
        for (at, inside) in [((10, 7), (10..15, 7..10)), ((-2, 46), (0..3, 46..48))] {
            let mut frame = base.clone();
            draw(&image, at, &grey, &mut frame);
            for row in 0..h as usize {
                for col in 0..w as usize {
                    let black = inside.0.contains(&col) && inside.1.contains(&row);
                    let y = frame.y()[row * w as usize + col];
                    assert_eq!(y == 16, black, "{at:?}: ({col}, {row}) Y {y}");
                }
            }
        }
        let mut frame = base.clone();
        draw(&image, (70, 10), &grey, &mut frame);
        assert_eq!(frame, base, "outside the frame: nothing drawn");
    }
}
