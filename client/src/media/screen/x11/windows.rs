//! Which windows can be shared: the window manager's `_NET_CLIENT_LIST` when it sets one, else
//! the root window's children that are viewable, not override-redirect (menus, tooltips) and at
//! least 32×32. Each needs a title (`_NET_WM_NAME`, else `WM_NAME`); windows of this process
//! (`_NET_WM_PID`) are left out, so the app never offers to share itself.
//!
//! A window is captured through its top-level: the root's child that holds it (a window
//! manager's frame, with the decorations), or the window itself without a window manager.

use super::{X11Error, connect, protocol};
use x11rb::connection::Connection;
use x11rb::errors::ReplyError;
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, GetPropertyReply, MapState, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

x11rb::atom_manager! {
    /// The atoms the listing reads.
    pub(super) Atoms: AtomsCookie {
        _NET_CLIENT_LIST,
        _NET_WM_NAME,
        _NET_WM_PID,
        UTF8_STRING,
    }
}

/// The smallest window (either side) listed when there is no window manager to say which are
/// applications' windows.
pub const MIN_LISTED_SIDE: u16 = 32;

/// One window that can be shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowInfo {
    /// The application's window: the id in `window:0x…`.
    pub window: u32,
    /// What is captured: the root's child holding `window` (a window manager's frame), or
    /// `window` itself.
    pub top_level: u32,
    /// Its title.
    pub title: String,
    /// Width of the top-level, in pixels.
    pub width: u16,
    /// Height of the top-level.
    pub height: u16,
    /// Whether it is on screen now (a minimised window has no pixels).
    pub viewable: bool,
}

/// The windows of `display` (or `$DISPLAY`) that can be shared, in the window manager's order,
/// or topmost first without one.
pub fn list_windows(display: Option<&str>) -> Result<Vec<WindowInfo>, X11Error> {
    let (conn, screen, name) = connect(display)?;
    windows_on(&conn, screen, &name)
}

/// [`list_windows`] on an open connection.
pub(super) fn windows_on(
    conn: &RustConnection,
    screen: usize,
    display: &str,
) -> Result<Vec<WindowInfo>, X11Error> {
    let root = conn.setup().roots[screen].root;
    let fail = |what: &str, e: ReplyError| protocol(display, what, e);
    let atoms = Atoms::new(conn)
        .map_err(|e| fail("InternAtom", e.into()))?
        .reply()
        .map_err(|e| fail("InternAtom", e))?;
    let client_list = conn
        .get_property(
            false,
            root,
            atoms._NET_CLIENT_LIST,
            AtomEnum::WINDOW,
            0,
            u32::MAX / 4,
        )
        .map_err(|e| fail("GetProperty _NET_CLIENT_LIST", e.into()))?
        .reply()
        .ok()
        .and_then(|r| r.value32().map(|v| v.collect::<Vec<u32>>()))
        .filter(|v| !v.is_empty());
    let managed = client_list.is_some();
    let candidates = match client_list {
        Some(list) => list,
        None => {
            let mut children = conn
                .query_tree(root)
                .map_err(|e| fail("QueryTree", e.into()))?
                .reply()
                .map_err(|e| fail("QueryTree", e))?
                .children;
            // Bottom to top in stacking order: the topmost first, as a person sees them.
            children.reverse();
            children
        }
    };

    // Every question about every window at once, then the answers (one round trip, not one per
    // request). A window that vanished meanwhile answers with errors and is skipped.
    let own_pid = std::process::id();
    let mut pending = Vec::with_capacity(candidates.len());
    for &w in &candidates {
        let send = |e: x11rb::errors::ConnectionError| fail("listing windows", e.into());
        pending.push((
            w,
            conn.get_window_attributes(w).map_err(send)?,
            conn.get_geometry(w).map_err(send)?,
            conn.get_property(false, w, atoms._NET_WM_NAME, atoms.UTF8_STRING, 0, 1024)
                .map_err(send)?,
            conn.get_property(false, w, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 1024)
                .map_err(send)?,
            conn.get_property(false, w, atoms._NET_WM_PID, AtomEnum::CARDINAL, 0, 1)
                .map_err(send)?,
        ));
    }
    let mut out = Vec::new();
    for (w, attrs, geometry, net_name, wm_name, pid) in pending {
        let (Ok(attrs), Ok(geometry)) = (attrs.reply(), geometry.reply()) else {
            continue;
        };
        let (net_name, wm_name, pid) = (net_name.reply().ok(), wm_name.reply().ok(), pid.reply());
        if attrs.class != WindowClass::INPUT_OUTPUT {
            continue;
        }
        if !managed
            && (attrs.map_state != MapState::VIEWABLE
                || attrs.override_redirect
                || geometry.width < MIN_LISTED_SIDE
                || geometry.height < MIN_LISTED_SIDE)
        {
            continue;
        }
        if pid
            .ok()
            .and_then(|p| p.value32().and_then(|mut v| v.next()))
            .is_some_and(|p| p == own_pid)
        {
            continue;
        }
        let Some(title) = title_of(net_name.as_ref(), wm_name.as_ref(), atoms.UTF8_STRING) else {
            continue;
        };
        let (top_level, width, height, viewable) = if managed {
            let Ok(Some(top)) = top_level(conn, root, w) else {
                continue;
            };
            let (g, a) = (
                conn.get_geometry(top)
                    .map_err(|e| fail("GetGeometry", e.into()))?,
                conn.get_window_attributes(top)
                    .map_err(|e| fail("GetWindowAttributes", e.into()))?,
            );
            let (Ok(g), Ok(a)) = (g.reply(), a.reply()) else {
                continue;
            };
            (top, g.width, g.height, a.map_state == MapState::VIEWABLE)
        } else {
            (
                w,
                geometry.width,
                geometry.height,
                attrs.map_state == MapState::VIEWABLE,
            )
        };
        out.push(WindowInfo {
            window: w,
            top_level,
            title,
            width,
            height,
            viewable,
        });
    }
    Ok(out)
}

/// The title: `_NET_WM_NAME` (UTF-8), else `WM_NAME` (Latin-1 `STRING`, or UTF-8 as some
/// toolkits set it); `None` when neither has any visible text.
fn title_of(
    net_name: Option<&GetPropertyReply>,
    wm_name: Option<&GetPropertyReply>,
    utf8_string: u32,
) -> Option<String> {
    let utf8 = net_name
        .filter(|r| r.type_ == utf8_string && r.format == 8)
        .map(|r| String::from_utf8_lossy(&r.value).into_owned());
    let legacy = || {
        wm_name.filter(|r| r.format == 8).map(|r| {
            if r.type_ == u32::from(AtomEnum::STRING) {
                r.value.iter().map(|&b| char::from(b)).collect()
            } else {
                String::from_utf8_lossy(&r.value).into_owned()
            }
        })
    };
    let visible = |t: String| {
        let t = t.trim().to_owned();
        (!t.is_empty()).then_some(t)
    };
    utf8.and_then(visible)
        .or_else(|| legacy().and_then(visible))
}

/// The child of `root` that holds `window` (itself when it is one); `None` for the root itself
/// or a window whose tree is deeper than any window manager makes.
pub(super) fn top_level(
    conn: &RustConnection,
    root: Window,
    window: Window,
) -> Result<Option<Window>, ReplyError> {
    let mut current = window;
    for _ in 0..32 {
        if current == root {
            return Ok(None);
        }
        let parent = conn.query_tree(current)?.reply()?.parent;
        if parent == root {
            return Ok(Some(current));
        }
        current = parent;
    }
    Ok(None)
}

/// A window's top-level as a thumbnail needs it.
#[derive(Debug, Clone, Copy)]
pub(super) struct TopLevel {
    pub(super) window: Window,
    pub(super) visual: u32,
    pub(super) width: u16,
    pub(super) height: u16,
    pub(super) viewable: bool,
}

/// The top-level holding `window`, its visual, size and whether it is on screen; `None` when
/// there is no such window (or it is the root).
pub(super) fn top_level_of(
    conn: &RustConnection,
    root: Window,
    window: Window,
) -> Result<Option<TopLevel>, ReplyError> {
    let gone = |e: &ReplyError| {
        matches!(e, ReplyError::X11Error(x) if x.error_kind == x11rb::protocol::ErrorKind::Window
            || x.error_kind == x11rb::protocol::ErrorKind::Drawable)
    };
    let top = match top_level(conn, root, window) {
        Ok(Some(top)) => top,
        Ok(None) => return Ok(None),
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let (attrs, geometry) = (conn.get_window_attributes(top)?, conn.get_geometry(top)?);
    match (attrs.reply(), geometry.reply()) {
        (Ok(a), Ok(g)) => Ok(Some(TopLevel {
            window: top,
            visual: a.visual,
            width: g.width,
            height: g.height,
            viewable: a.map_state == MapState::VIEWABLE,
        })),
        (Err(e), _) | (_, Err(e)) if gone(&e) => Ok(None),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// The title of `window`, if it has one.
pub(super) fn title(conn: &RustConnection, window: Window) -> Option<String> {
    let atoms = Atoms::new(conn).ok()?.reply().ok()?;
    let net = conn
        .get_property(
            false,
            window,
            atoms._NET_WM_NAME,
            atoms.UTF8_STRING,
            0,
            1024,
        )
        .ok()?
        .reply()
        .ok();
    let legacy = conn
        .get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 1024)
        .ok()?
        .reply()
        .ok();
    title_of(net.as_ref(), legacy.as_ref(), atoms.UTF8_STRING)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn property(type_: u32, value: &[u8]) -> GetPropertyReply {
        GetPropertyReply {
            format: 8,
            sequence: 0,
            length: 0,
            type_,
            bytes_after: 0,
            value_len: value.len() as u32,
            value: value.to_vec(),
        }
    }

    #[test]
    fn titles_prefer_net_wm_name_and_decode_latin1() {
        const UTF8: u32 = 300;
        let net = property(UTF8, "Präsentation – Folie 3".as_bytes());
        let latin1 = property(AtomEnum::STRING.into(), &[b'K', 0xF6, b'l', b'n']);
        assert_eq!(
            title_of(Some(&net), Some(&latin1), UTF8).as_deref(),
            Some("Präsentation – Folie 3")
        );
        assert_eq!(title_of(None, Some(&latin1), UTF8).as_deref(), Some("Köln"));
        let blank = property(UTF8, b"  ");
        assert_eq!(
            title_of(Some(&blank), Some(&latin1), UTF8).as_deref(),
            Some("Köln")
        );
        assert_eq!(title_of(Some(&blank), None, UTF8), None);
        // A _NET_WM_NAME of another type is not UTF-8 text.
        let odd = property(UTF8 + 1, b"x");
        assert_eq!(title_of(Some(&odd), None, UTF8), None);
    }
}
