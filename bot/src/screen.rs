//! `--screen`: what the bot shares as a screen (the X display it runs on, one of its windows, a
//! moving test pattern or a looped Y4M file), and what it knows of its share for `--events` and
//! `--stats-json`; `--show-pattern-window`: a window showing the moving pattern on that display.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use videoroom_client::media::screen::x11::{self, PatternWindow};
use videoroom_client::media::screen::{
    OpenedScreen, ScreenBackend, ScreenSourceKind, X11Area, X11Screen, open_source,
};
use videoroom_client::media::y4m::Y4mSource;
use videoroom_client::media::{I420Frame, PatternSource, VideoSource};
use videoroom_client::publish::VideoSendSettings;
use videoroom_client::{ScreenShareEnd, media};
use videoroom_protocol::TrackId;

/// What `--screen` shares.
#[derive(Debug, Clone)]
pub enum ScreenArg {
    /// The whole X screen of `$DISPLAY`.
    X11,
    /// The first window of `$DISPLAY` with this title (looked up when the share starts).
    X11Window(String),
    /// What the person picks in the xdg-desktop-portal's dialog (Wayland), when the share starts.
    Portal,
    Pattern,
    File(PathBuf),
}

/// The title of the window `--show-pattern-window` opens.
pub const PATTERN_WINDOW_TITLE: &str = "videoroom-pattern";

/// Parses `--screen`.
pub fn parse_screen(s: &str) -> Result<ScreenArg, String> {
    if let Some(title) = s.strip_prefix("x11:window=") {
        return if title.is_empty() {
            Err("x11:window= needs a window title, e.g. x11:window=videoroom-pattern".into())
        } else {
            Ok(ScreenArg::X11Window(title.to_owned()))
        };
    }
    match s {
        "x11" => Ok(ScreenArg::X11),
        "portal" => Ok(ScreenArg::Portal),
        "pattern" => Ok(ScreenArg::Pattern),
        _ => match s.strip_prefix("file:").filter(|p| !p.is_empty()) {
            Some(path) => Ok(ScreenArg::File(path.into())),
            None => Err("expected x11, x11:window=TITLE, portal, pattern or file:PATH.y4m".into()),
        },
    }
}

/// Parses `WxH` (e.g. `1280x720`), each side 16..=3840, even (I420).
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("expected WIDTHxHEIGHT such as 1280x720, got {s:?}");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    for side in [w, h] {
        if !(16..=3840).contains(&side) || side % 2 != 0 {
            return Err(format!("{s}: each side must be even and 16..=3840"));
        }
    }
    Ok((w, h))
}

/// A source ready to share and its send settings; `frames` counts what the engine takes from it.
pub struct Prepared {
    pub source: Box<dyn VideoSource>,
    pub settings: VideoSendSettings,
    pub frames: Arc<AtomicU64>,
}

/// What `--screen` will share: opened at start-up, or a window looked up by title when the
/// share starts (it may open after the bot did).
pub enum Planned {
    Ready(Prepared),
    Window {
        title: String,
        fps: u32,
        target_kbps: u32,
    },
    /// The portal's dialog, opened when the share starts.
    Portal {
        fps: u32,
        target_kbps: u32,
    },
}

/// [`prepare`]s what `arg` names, except a window or the portal, which [`resolve`] opens later.
pub fn plan(
    arg: &ScreenArg,
    size: (u32, u32),
    fps: u32,
    target_kbps: u32,
) -> Result<Planned, String> {
    match arg {
        ScreenArg::X11Window(title) => Ok(Planned::Window {
            title: title.clone(),
            fps,
            target_kbps,
        }),
        ScreenArg::Portal => Ok(Planned::Portal { fps, target_kbps }),
        _ => prepare(arg, size, fps, target_kbps).map(Planned::Ready),
    }
}

/// The source of `planned`, now: a window is looked up among those `$DISPLAY` lists (the first
/// with exactly that title) and opened. The error says what was there instead.
pub async fn resolve(planned: Planned) -> Result<Prepared, String> {
    match planned {
        Planned::Ready(prepared) => Ok(prepared),
        Planned::Window {
            title,
            fps,
            target_kbps,
        } => tokio::task::spawn_blocking(move || open_window(&title, fps, target_kbps))
            .await
            .map_err(|e| format!("--screen x11:window: {e}"))?,
        Planned::Portal { fps, target_kbps } => {
            let opened = open_source(&ScreenBackend::Portal, None)
                .await
                .map_err(|e| format!("--screen portal: {e}"))?;
            Ok(counted_screen(opened, fps, target_kbps))
        }
    }
}

/// Opens the first window of `$DISPLAY` titled `title`.
fn open_window(title: &str, fps: u32, target_kbps: u32) -> Result<Prepared, String> {
    let arg = format!("--screen x11:window={title}");
    let sources = x11::list_sources(None).map_err(|e| format!("{arg}: {e}"))?;
    let windows: Vec<_> = sources
        .iter()
        .filter(|s| s.kind == ScreenSourceKind::Window)
        .collect();
    let Some(found) = windows.iter().find(|s| s.title == title) else {
        let titles: Vec<_> = windows.iter().map(|s| format!("{:?}", s.title)).collect();
        let display = std::env::var("DISPLAY").unwrap_or_default();
        return Err(format!(
            "{arg}: no window titled {title:?} on the X display {display} (its windows: {})",
            if titles.is_empty() {
                "none".to_owned()
            } else {
                titles.join(", ")
            }
        ));
    };
    let opened = x11::open_source(None, &found.id).map_err(|e| format!("{arg}: {e}"))?;
    Ok(counted_screen(opened, fps, target_kbps))
}

/// An opened screen source at its own size, counted.
fn counted_screen(opened: OpenedScreen, fps: u32, target_kbps: u32) -> Prepared {
    counted(opened.source, opened.width, opened.height, fps, target_kbps)
}

/// A pattern window titled [`PATTERN_WINDOW_TITLE`] on `$DISPLAY`, drawn at 15 fps.
pub fn show_pattern_window((width, height): (u32, u32)) -> Result<PatternWindow, String> {
    PatternWindow::open(None, PATTERN_WINDOW_TITLE, width, height, 15)
        .map_err(|e| format!("--show-pattern-window: {e}"))
}

/// Opens what `arg` names (a file or X display that cannot be used is an error for the person) at
/// `size` (the pattern's; a file and a screen keep their own) and `fps`.
pub fn prepare(
    arg: &ScreenArg,
    (width, height): (u32, u32),
    fps: u32,
    target_kbps: u32,
) -> Result<Prepared, String> {
    let (source, width, height): (Box<dyn VideoSource>, u32, u32) = match arg {
        ScreenArg::X11 => {
            let screen =
                X11Screen::open(None, X11Area::Root).map_err(|e| format!("--screen x11: {e}"))?;
            let (w, h) = (screen.width(), screen.height());
            (Box::new(screen), w, h)
        }
        ScreenArg::X11Window(title) => return open_window(title, fps, target_kbps),
        ScreenArg::Portal => {
            return Err("--screen portal opens the portal's dialog when the share starts".into());
        }
        ScreenArg::Pattern => {
            let pattern =
                PatternSource::new(width, height, fps).map_err(|e| format!("--screen: {e}"))?;
            (Box::new(pattern), width, height)
        }
        ScreenArg::File(path) => {
            let file = Y4mSource::open(path)
                .map_err(|e| format!("--screen: {e}"))?
                .with_burn_in(true);
            let (w, h) = (file.width(), file.height());
            (Box::new(file), w, h)
        }
    };
    Ok(counted(source, width, height, fps, target_kbps))
}

/// `source` counted, with its send settings.
fn counted(
    source: Box<dyn VideoSource>,
    width: u32,
    height: u32,
    fps: u32,
    target_kbps: u32,
) -> Prepared {
    let frames = Arc::new(AtomicU64::new(0));
    Prepared {
        source: Box::new(Counted {
            inner: source,
            frames: Arc::clone(&frames),
        }),
        settings: VideoSendSettings {
            width,
            height,
            fps,
            target_kbps,
        },
        frames,
    }
}

/// Counts the frames the engine takes from a source: the engine has no send counters for a
/// screen track (`RoomHandle::camera_stats` has no screen twin yet).
struct Counted {
    inner: Box<dyn VideoSource>,
    frames: Arc<AtomicU64>,
}

impl VideoSource for Counted {
    fn next_frame(&mut self) -> Result<I420Frame, media::SourceError> {
        let frame = self.inner.next_frame()?;
        self.frames.fetch_add(1, Ordering::Relaxed);
        Ok(frame)
    }
}

/// Our screen share, once started (kept after it ends, for the report).
#[derive(Debug)]
pub struct Share {
    /// Its id when it started (a rejoin republishes it under a new one).
    pub track_id: TrackId,
    pub frames: Arc<AtomicU64>,
    pub started: Instant,
    /// When and why it ended.
    pub ended: Option<(Instant, ScreenShareEnd)>,
}

impl Share {
    pub fn frames_captured(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
}

/// `reason` of a `screen_share_ended` line.
pub fn end_name(end: &ScreenShareEnd) -> &'static str {
    match end {
        ScreenShareEnd::Stopped => "stopped",
        ScreenShareEnd::SourceEnded(_) => "source_ended",
        ScreenShareEnd::Moderator(_) => "moderator",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn screen_inputs_that_exist_and_the_rest_refused() {
        assert!(matches!(parse_screen("pattern"), Ok(ScreenArg::Pattern)));
        assert!(
            matches!(parse_screen("file:/tmp/a.y4m"), Ok(ScreenArg::File(p)) if p == Path::new("/tmp/a.y4m"))
        );
        assert!(matches!(parse_screen("x11"), Ok(ScreenArg::X11)));
        assert!(matches!(parse_screen("portal"), Ok(ScreenArg::Portal)));
        assert!(
            matches!(parse_screen("x11:window=My editor = notes"), Ok(ScreenArg::X11Window(t)) if t == "My editor = notes")
        );
        assert!(
            parse_screen("x11:window=")
                .unwrap_err()
                .contains("needs a window title")
        );
        for bad in ["file:", "", "Pattern", "X11", "x11:win=a"] {
            let e = parse_screen(bad).unwrap_err();
            assert!(
                e.contains("x11, x11:window=TITLE, portal, pattern or file:PATH.y4m"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1280x720"), Ok((1280, 720)));
        assert_eq!(parse_size("640X360"), Ok((640, 360)));
        for bad in ["1280", "x720", "1281x720", "8x8", "5000x720", "axb"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counted_source_counts_frames_taken() {
        let p = prepare(&ScreenArg::Pattern, (64, 48), 15, 300).unwrap();
        let mut source = p.source;
        for _ in 0..3 {
            let f = source.next_frame().unwrap();
            assert_eq!((f.width(), f.height()), (64, 48));
        }
        assert_eq!(p.frames.load(Ordering::Relaxed), 3);
        assert_eq!((p.settings.width, p.settings.fps), (64, 15));
        assert!(
            prepare(
                &ScreenArg::File("/nonexistent.y4m".into()),
                (64, 48),
                15,
                300
            )
            .is_err()
        );
    }
}
