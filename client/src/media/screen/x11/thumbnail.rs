//! Thumbnails for the picker, scaled down by the X server (RENDER: a transformed `Composite`
//! with a box filter into a small pixmap) so only the small picture crosses the socket: a
//! 1920×1080 screen would be 8 MB through the socket (or a SHM segment made for one frame), its
//! 320×180 thumbnail is 230 KB. See `benches/screen.rs` for the figures.
//!
//! A window's thumbnail reads the window itself, not a pixmap of our own redirection: with a
//! compositing window manager that is its full content; without one, the parts other windows
//! cover show those windows (a one-off redirection would show the same until the application
//! repaints, and would make every application repaint once a second while the picker is open).

use super::{X11Error, bgrx_to_i420, protocol};
use crate::media::I420Frame;
use crate::media::screen::scale::fit_within;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::ReplyError;
use x11rb::protocol::render::{
    self, ConnectionExt as _, CreatePictureAux, Fixed, PictOp, Pictformat, Transform,
};
use x11rb::protocol::xproto::{ConnectionExt as _, Drawable, ImageFormat, SubwindowMode, Visualid};
use x11rb::rust_connection::RustConnection;

/// The largest box filter side, in source pixels: beyond it (a 4K screen into a small
/// thumbnail) the filter samples every n-th pixel instead of averaging them all.
const MAX_KERNEL: u32 = 8;

/// What to scale: `area` (x, y, width, height) of `drawable`, whose pixels are in `visual`, with
/// its subwindows (the root window: every window on it).
#[derive(Debug, Clone, Copy)]
pub(super) struct Area {
    pub(super) drawable: Drawable,
    pub(super) visual: Visualid,
    pub(super) x: i16,
    pub(super) y: i16,
    pub(super) width: u16,
    pub(super) height: u16,
}

/// A 16.16 fixed-point number.
fn fixed(v: f64) -> Fixed {
    (v * 65536.0).round() as Fixed
}

/// The RENDER format of `visual` on screen `screen`, and of the root's visual.
fn formats(
    conn: &RustConnection,
    screen: usize,
    visual: Visualid,
) -> Result<Option<(Pictformat, Pictformat)>, ReplyError> {
    let reply = conn.render_query_pict_formats()?.reply()?;
    let root_visual = conn.setup().roots[screen].root_visual;
    let find = |v: Visualid| {
        reply.screens.get(screen).and_then(|s| {
            s.depths
                .iter()
                .flat_map(|d| &d.visuals)
                .find(|pv| pv.visual == v)
                .map(|pv| pv.format)
        })
    };
    Ok(find(visual).zip(find(root_visual)))
}

/// `area` scaled down by the server to fit `max_width`×`max_height` (even sides, aspect kept);
/// `None` when the server has no RENDER 0.6 (transforms and filters) or no format for it: the
/// caller then captures at full size and scales itself.
pub(super) fn scaled(
    conn: &RustConnection,
    screen: usize,
    display: &str,
    area: Area,
    max_width: u32,
    max_height: u32,
) -> Result<Option<I420Frame>, X11Error> {
    let fail = |what: &str, e: ReplyError| protocol(display, what, e);
    if conn
        .extension_information(render::X11_EXTENSION_NAME)
        .map_err(|e| fail("QueryExtension RENDER", e.into()))?
        .is_none()
    {
        return Ok(None);
    }
    let version = conn
        .render_query_version(0, 11)
        .map_err(|e| fail("RenderQueryVersion", e.into()))?
        .reply()
        .map_err(|e| fail("RenderQueryVersion", e))?;
    if (version.major_version, version.minor_version) < (0, 6) {
        return Ok(None);
    }
    let Some((src_format, dst_format)) =
        formats(conn, screen, area.visual).map_err(|e| fail("RenderQueryPictFormats", e))?
    else {
        return Ok(None);
    };
    let (w, h) = (u32::from(area.width), u32::from(area.height));
    let (tw, th) = fit_within(w, h, max_width.max(2), max_height.max(2));
    let (tw, th) = (
        u16::try_from(tw).unwrap_or(u16::MAX),
        u16::try_from(th).unwrap_or(u16::MAX),
    );
    let (sx, sy) = (f64::from(w) / f64::from(tw), f64::from(h) / f64::from(th));
    let root = conn.setup().roots[screen].root;
    let depth = conn.setup().roots[screen].root_depth;

    let ids = (|| {
        Ok::<_, x11rb::errors::ReplyOrIdError>((
            conn.generate_id()?,
            conn.generate_id()?,
            conn.generate_id()?,
        ))
    })()
    .map_err(|e| protocol(display, "ids", e))?;
    let (pixmap, src, dst) = ids;
    let sent = (|| -> Result<Vec<u8>, ReplyError> {
        conn.create_pixmap(depth, pixmap, root, tw, th)?;
        conn.render_create_picture(dst, pixmap, dst_format, &CreatePictureAux::new())?;
        conn.render_create_picture(
            src,
            area.drawable,
            src_format,
            &CreatePictureAux::new().subwindowmode(SubwindowMode::INCLUDE_INFERIORS),
        )?;
        // Destination pixel (dx, dy) samples the source at (x + dx·sx, y + dy·sy).
        conn.render_set_picture_transform(
            src,
            Transform {
                matrix11: fixed(sx),
                matrix12: 0,
                matrix13: fixed(f64::from(area.x)),
                matrix21: 0,
                matrix22: fixed(sy),
                matrix23: fixed(f64::from(area.y)),
                matrix31: 0,
                matrix32: 0,
                matrix33: fixed(1.0),
            },
        )?;
        // A box filter as wide as one destination pixel is in the source: every source pixel
        // counts once (a bilinear filter would read 4 of them and alias text).
        let (kw, kh) = (
            (sx.ceil() as u32).clamp(1, MAX_KERNEL),
            (sy.ceil() as u32).clamp(1, MAX_KERNEL),
        );
        let weight = fixed(1.0 / f64::from(kw * kh));
        let mut values = vec![fixed(f64::from(kw)), fixed(f64::from(kh))];
        values.extend(std::iter::repeat_n(weight, (kw * kh) as usize));
        conn.render_set_picture_filter(src, b"convolution", &values)?;
        conn.render_composite(PictOp::SRC, src, x11rb::NONE, dst, 0, 0, 0, 0, 0, 0, tw, th)?;
        let image = conn
            .get_image(ImageFormat::Z_PIXMAP, pixmap, 0, 0, tw, th, !0)?
            .reply();
        conn.render_free_picture(src)?;
        conn.render_free_picture(dst)?;
        conn.free_pixmap(pixmap)?;
        conn.flush()?;
        Ok(image?.data)
    })();
    let pixels = sent.map_err(|e| fail("scaling a thumbnail (RENDER)", e))?;
    bgrx_to_i420(&pixels, u32::from(tw), u32::from(th))
        .map(Some)
        .map_err(|e| protocol(display, "converting BGRX to I420", e))
}
