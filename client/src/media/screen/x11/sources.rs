//! The X11 side of [`super::super::sources`]: what our picker lists (monitors; windows come from
//! `windows.rs`), opening one by id, and thumbnails.

use super::{Monitor, X11Area, X11Error, X11Screen};
use crate::media::I420Frame;
use crate::media::devices::camera::scale_i420;
use crate::media::screen::error::ScreenError;
use crate::media::screen::scale::fit_within;
use crate::media::screen::sources::{OpenedScreen, ScreenSourceInfo, ScreenSourceKind};

/// The id of the whole root window (every monitor).
pub const WHOLE_SCREEN_ID: &str = "screen";

fn monitor_id(index: usize) -> String {
    format!("monitor:{index}")
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

/// Screens of `display` (or `$DISPLAY`): each monitor, and the whole screen when there are several.
pub fn list_sources(display: Option<&str>) -> Result<Vec<ScreenSourceInfo>, X11Error> {
    let monitors = X11Screen::monitors(display)?;
    let mut out = Vec::with_capacity(monitors.len() + 1);
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

/// Opens source `id` of `display` for sharing.
pub fn open_source(display: Option<&str>, id: &str) -> Result<OpenedScreen, ScreenError> {
    let no_such = || ScreenError::NoSuchSource { id: id.to_owned() };
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

/// One capture of `id`, fitted within `max_width`×`max_height`.
pub fn thumbnail(
    display: Option<&str>,
    id: &str,
    max_width: u32,
    max_height: u32,
) -> Result<I420Frame, ScreenError> {
    let mut opened = open_source(display, id)?;
    let frame = opened.source.next_frame().map_err(|e| {
        ScreenError::X11(X11Error::Protocol {
            display: display.unwrap_or_default().to_owned(),
            detail: e.to_string(),
        })
    })?;
    shrink(&frame, max_width, max_height)
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
    }
}
