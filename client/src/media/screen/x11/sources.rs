//! The X11 side of [`super::super::sources`]: what our picker lists (monitors, then windows from
//! `windows.rs`), opening one by id, and thumbnails.
//!
//! Ids: `screen` (the whole root window), `monitor:N` (RandR's order), `window:0x…` (the X id of
//! an application's window, in hex).

use super::screen::list_monitors;
use super::thumbnail::{Area, scaled};
use super::windows::{top_level_of, windows_on};
use super::{Monitor, X11Area, X11Error, X11Screen, X11Window, connect};
use crate::media::devices::camera::scale_i420;
use crate::media::screen::error::ScreenError;
use crate::media::screen::scale::fit_within;
use crate::media::screen::sources::{OpenedScreen, ScreenSourceInfo, ScreenSourceKind};
use crate::media::{I420Frame, VideoSource};
use x11rb::connection::Connection;

/// The id of the whole root window (every monitor).
pub const WHOLE_SCREEN_ID: &str = "screen";

fn monitor_id(index: usize) -> String {
    format!("monitor:{index}")
}

/// The id of X window `window`: `window:0x…`.
pub fn window_id(window: u32) -> String {
    format!("window:0x{window:x}")
}

/// The X window an id names, if it names one.
fn window_of(id: &str) -> Option<u32> {
    let hex = id.strip_prefix("window:0x")?;
    u32::from_str_radix(hex, 16).ok().filter(|&w| w != 0)
}

/// A monitor's title in the picker.
fn monitor_title(m: &Monitor, count: usize) -> String {
    if count == 1 {
        "Entire screen".to_owned()
    } else if m.primary {
        format!("{} (primary)", m.name)
    } else {
        m.name.clone()
    }
}

/// What `display` (or `$DISPLAY`) can share: each monitor, the whole screen when there are
/// several, then the windows ([`super::list_windows`]) at the size a capture gives (even sides).
pub fn list_sources(display: Option<&str>) -> Result<Vec<ScreenSourceInfo>, X11Error> {
    let (conn, screen, name) = connect(display)?;
    let monitors = list_monitors(&conn, screen, &name)?;
    let windows = windows_on(&conn, screen, &name)?;
    let mut out = Vec::with_capacity(monitors.len() + 1 + windows.len());
    for (i, m) in monitors.iter().enumerate() {
        out.push(ScreenSourceInfo {
            id: monitor_id(i),
            kind: ScreenSourceKind::Screen,
            title: monitor_title(m, monitors.len()),
            width: u32::from(m.width),
            height: u32::from(m.height),
        });
    }
    if monitors.len() > 1 {
        let (w, h) = monitors.iter().fold((0u32, 0u32), |(w, h), m| {
            (
                w.max(u32::try_from(i32::from(m.x) + i32::from(m.width)).unwrap_or(0)),
                h.max(u32::try_from(i32::from(m.y) + i32::from(m.height)).unwrap_or(0)),
            )
        });
        out.push(ScreenSourceInfo {
            id: WHOLE_SCREEN_ID.to_owned(),
            kind: ScreenSourceKind::Screen,
            title: "All screens".to_owned(),
            width: w,
            height: h,
        });
    }
    for w in windows {
        let (width, height) = (w.width & !1, w.height & !1);
        if width < 2 || height < 2 {
            continue;
        }
        out.push(ScreenSourceInfo {
            id: window_id(w.window),
            kind: ScreenSourceKind::Window,
            title: w.title,
            width: u32::from(width),
            height: u32::from(height),
        });
    }
    Ok(out)
}

/// What an id names on X11.
fn area_of(id: &str) -> Option<X11Area> {
    if id == WHOLE_SCREEN_ID {
        return Some(X11Area::Root);
    }
    let index = id.strip_prefix("monitor:")?.parse().ok()?;
    Some(X11Area::Monitor(index))
}

/// Opens source `id` of `display` for sharing; [`ScreenError::NoSuchSource`] for an id that
/// names nothing there (a window closed meanwhile, a monitor unplugged).
pub fn open_source(display: Option<&str>, id: &str) -> Result<OpenedScreen, ScreenError> {
    let no_such = || ScreenError::NoSuchSource { id: id.to_owned() };
    if let Some(xid) = window_of(id) {
        let window = match X11Window::open(display, xid) {
            Err(X11Error::NoSuchWindow { .. }) => return Err(no_such()),
            other => other?,
        };
        return Ok(OpenedScreen {
            width: window.width(),
            height: window.height(),
            title: window.title().to_owned(),
            source: Box::new(window),
        });
    }
    let area = area_of(id).ok_or_else(no_such)?;
    let screen = match X11Screen::open(display, area) {
        Err(X11Error::NoSuchMonitor { .. }) => return Err(no_such()),
        other => other?,
    };
    let title = match area {
        X11Area::Monitor(i) => X11Screen::monitors(display)
            .ok()
            .and_then(|ms| ms.get(i).map(|m| monitor_title(m, ms.len())))
            .unwrap_or_else(|| id.to_owned()),
        _ => "Entire screen".to_owned(),
    };
    Ok(OpenedScreen {
        width: screen.width(),
        height: screen.height(),
        title,
        source: Box::new(screen),
    })
}

/// One picture of `id`, fitted within `max_width`×`max_height`: scaled by the X server
/// ([`super::thumbnail`]), so only the small picture crosses the socket; without RENDER, one
/// full-size capture through the socket (a SHM segment made for a single frame costs more than
/// it saves, see `benches/screen.rs`) scaled here. A window that is not on screen (minimised)
/// gives a black picture.
pub fn thumbnail(
    display: Option<&str>,
    id: &str,
    max_width: u32,
    max_height: u32,
) -> Result<I420Frame, ScreenError> {
    let no_such = || ScreenError::NoSuchSource { id: id.to_owned() };
    let (conn, screen, name) = connect(display)?;
    let s = &conn.setup().roots[screen];
    let (root, root_visual) = (s.root, s.root_visual);
    let area = if let Some(xid) = window_of(id) {
        let top = top_level_of(&conn, root, xid)
            .map_err(|e| X11Error::Protocol {
                display: name.clone(),
                detail: format!("looking up window 0x{xid:x}: {e}"),
            })?
            .ok_or_else(no_such)?;
        let (width, height) = (top.width & !1, top.height & !1);
        if !top.viewable || width < 2 || height < 2 {
            let (w, h) = fit_within(
                u32::from(top.width.max(2)),
                u32::from(top.height.max(2)),
                max_width.max(2),
                max_height.max(2),
            );
            return I420Frame::black(w, h).map_err(|e| {
                ScreenError::X11(X11Error::Protocol {
                    display: name.clone(),
                    detail: format!("a thumbnail: {e}"),
                })
            });
        }
        Area {
            drawable: top.window,
            visual: top.visual,
            x: 0,
            y: 0,
            width,
            height,
        }
    } else {
        let (x, y, width, height) = match area_of(id).ok_or_else(no_such)? {
            X11Area::Monitor(i) => {
                let monitors = list_monitors(&conn, screen, &name)?;
                let m = monitors.get(i).ok_or_else(no_such)?;
                (m.x, m.y, m.width, m.height)
            }
            _ => (0, 0, s.width_in_pixels, s.height_in_pixels),
        };
        Area {
            drawable: root,
            visual: root_visual,
            x,
            y,
            width,
            height,
        }
    };
    if let Some(frame) = scaled(&conn, screen, &name, area, max_width, max_height)? {
        return Ok(frame);
    }
    drop(conn);
    let frame = capture_once(display, id, false)?;
    shrink(&frame, max_width, max_height)
}

/// One full-size capture of `id`, through a SHM segment only if `shm`.
fn capture_once(display: Option<&str>, id: &str, shm: bool) -> Result<I420Frame, ScreenError> {
    let no_such = || ScreenError::NoSuchSource { id: id.to_owned() };
    if let Some(xid) = window_of(id) {
        return match X11Window::open_with(display, xid, shm).and_then(|mut w| w.snapshot()) {
            Err(X11Error::NoSuchWindow { .. }) => Err(no_such()),
            other => Ok(other?),
        };
    }
    let area = area_of(id).ok_or_else(no_such)?;
    let mut screen = match X11Screen::open_with(display, area, shm) {
        Err(X11Error::NoSuchMonitor { .. }) => return Err(no_such()),
        other => other?,
    };
    screen.next_frame().map_err(|e| {
        ScreenError::X11(X11Error::Protocol {
            display: screen.display().to_owned(),
            detail: e.to_string(),
        })
    })
}

/// `frame` fitted within `max_width`×`max_height` (never enlarged).
pub(crate) fn shrink(
    frame: &I420Frame,
    max_width: u32,
    max_height: u32,
) -> Result<I420Frame, ScreenError> {
    let (w, h) = fit_within(
        frame.width(),
        frame.height(),
        max_width.max(2),
        max_height.max(2),
    );
    if (w, h) == (frame.width(), frame.height()) {
        return Ok(frame.clone());
    }
    let mut resizer = fast_image_resize::Resizer::new();
    scale_i420(frame, w, h, &mut resizer).map_err(|detail| {
        ScreenError::X11(X11Error::Protocol {
            display: String::new(),
            detail: format!("scaling a thumbnail: {detail}"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_areas() {
        assert_eq!(area_of("screen"), Some(X11Area::Root));
        assert_eq!(area_of("monitor:2"), Some(X11Area::Monitor(2)));
        assert_eq!(area_of("monitor:x"), None);
        assert_eq!(area_of("window:0x12"), None);
        assert_eq!(window_of("window:0x1a00003"), Some(0x1a00003));
        assert_eq!(window_id(0x1a00003), "window:0x1a00003");
        for bad in [
            "window:0x",
            "window:0x0",
            "window:12",
            "window:0xzz",
            "screen",
        ] {
            assert_eq!(window_of(bad), None, "{bad}");
        }
    }
}
