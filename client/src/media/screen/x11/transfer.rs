//! How captured pixels travel from the X server: `ShmGetImage` into a MIT-SHM segment the server
//! created and we map (SHM ≥ 1.2), or a core `GetImage` through the socket (no SHM, a remote
//! display). Shared by screen and window capture.

use super::shm;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::ReplyError;
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, Drawable, ImageFormat};
use x11rb::rust_connection::RustConnection;

/// A failed image request: which one and the server's (or the connection's) answer.
#[derive(Debug)]
pub(super) struct ImageError {
    pub(super) request: &'static str,
    pub(super) error: ReplyError,
}

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.request, self.error)
    }
}

/// A MIT-SHM segment the server created, mapped here.
struct Segment {
    seg: x11rb::protocol::shm::Seg,
    mapping: shm::Mapping,
    size: u32,
}

/// Where the next capture lands: a SHM segment when there is one big enough, else the socket.
pub(super) struct Transfer {
    shm: Option<Segment>,
    /// The pixels of the last `GetImage` through the socket.
    pixels: Vec<u8>,
}

impl Transfer {
    /// Through the socket.
    pub(super) fn socket() -> Self {
        Self {
            shm: None,
            pixels: Vec::new(),
        }
    }

    /// A SHM segment of `size` bytes, or the socket when SHM < 1.2 is all the server has or the
    /// segment cannot be made (a remote display).
    pub(super) fn new(conn: &RustConnection, size: u32) -> Self {
        Self {
            shm: segment(conn, size),
            pixels: Vec::new(),
        }
    }

    /// Whether captures go through MIT-SHM.
    pub(super) fn is_shm(&self) -> bool {
        self.shm.is_some()
    }

    /// Makes room for captures of `size` bytes: a SHM segment too small is replaced by a
    /// larger one (or by the socket, if that fails). A larger segment is kept as it is.
    pub(super) fn ensure(&mut self, conn: &RustConnection, size: u32) {
        if self.shm.as_ref().is_some_and(|s| s.size < size) {
            self.release(conn);
            self.shm = segment(conn, size);
        }
    }

    /// Switches to the socket, giving the segment back.
    pub(super) fn release(&mut self, conn: &RustConnection) {
        if let Some(s) = self.shm.take() {
            let _ = conn.shm_detach(s.seg);
            let _ = conn.flush();
        }
    }

    /// The `width`×`height` ZPixmap at (`x`, `y`) of `drawable`: `width × height × 4` bytes of
    /// BGRX (the caller checked 32 bits per pixel). One request in flight; the bytes are read
    /// after its reply. Through the segment when it is big enough, else through the socket.
    pub(super) fn get_image(
        &mut self,
        conn: &RustConnection,
        drawable: Drawable,
        (x, y): (i16, i16),
        (width, height): (u16, u16),
    ) -> Result<&[u8], ImageError> {
        let len = usize::from(width) * usize::from(height) * 4;
        if let Some(s) = self.shm.as_ref().filter(|s| len <= s.size as usize) {
            let request = "ShmGetImage";
            conn.shm_get_image(
                drawable,
                x,
                y,
                width,
                height,
                !0,
                ImageFormat::Z_PIXMAP.into(),
                s.seg,
                0,
            )
            .map_err(|e| ImageError {
                request,
                error: e.into(),
            })?
            .reply()
            .map_err(|error| ImageError { request, error })?;
            return Ok(&s.mapping.bytes()[..len]);
        }
        let request = "GetImage";
        self.pixels = conn
            .get_image(ImageFormat::Z_PIXMAP, drawable, x, y, width, height, !0)
            .map_err(|e| ImageError {
                request,
                error: e.into(),
            })?
            .reply()
            .map_err(|error| ImageError { request, error })?
            .data;
        self.pixels.get(..len).ok_or(ImageError {
            request,
            error: ReplyError::ConnectionError(x11rb::errors::ConnectionError::ParseError(
                x11rb::errors::ParseError::InsufficientData,
            )),
        })
    }
}

/// A SHM segment of `size` bytes, or `None` when SHM < 1.2 is all the server has or the segment
/// cannot be made or mapped.
fn segment(conn: &RustConnection, size: u32) -> Option<Segment> {
    let size = size.max(4);
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
        Ok(mapping) => Some(Segment { seg, mapping, size }),
        Err(e) => {
            tracing::warn!(
                "cannot map the X shared-memory segment ({e}); capturing through the socket"
            );
            let _ = conn.shm_detach(seg);
            None
        }
    }
}
