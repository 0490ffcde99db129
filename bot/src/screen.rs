//! `--screen`: what the bot shares as a screen (the X display it runs on, a moving test pattern
//! or a looped Y4M file), and what it knows of its share for `--events` and `--stats-json`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use videoroom_client::media::screen::{X11Area, X11Screen};
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
    Pattern,
    File(PathBuf),
}

/// Parses `--screen`. Window capture (`x11:window=TITLE`) and the portal do not exist yet.
pub fn parse_screen(s: &str) -> Result<ScreenArg, String> {
    match s {
        "x11" => Ok(ScreenArg::X11),
        "pattern" => Ok(ScreenArg::Pattern),
        _ => match s.strip_prefix("file:").filter(|p| !p.is_empty()) {
            Some(path) => Ok(ScreenArg::File(path.into())),
            None => Err("expected x11, pattern or file:PATH.y4m".into()),
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
    let frames = Arc::new(AtomicU64::new(0));
    Ok(Prepared {
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
    })
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
        for bad in ["x11:window=a", "portal", "file:", "", "Pattern", "X11"] {
            let e = parse_screen(bad).unwrap_err();
            assert!(e.contains("x11, pattern or file:PATH.y4m"), "{bad}: {e}");
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
