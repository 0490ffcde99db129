//! Which capture backend this session has, chosen at run time from the environment (pure, so it
//! is unit-tested on snapshots): the xdg-desktop-portal on Wayland (its own picker), X11 where
//! only `DISPLAY` is set, nothing without a display.

/// The environment variables that decide the backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSnapshot {
    /// `WAYLAND_DISPLAY`.
    pub wayland_display: Option<String>,
    /// `XDG_SESSION_TYPE`.
    pub session_type: Option<String>,
    /// `DISPLAY`.
    pub display: Option<String>,
    /// `VIDEOROOM_SCREEN_BACKEND` (`x11` or `portal`): forces one.
    pub forced: Option<String>,
}

impl EnvSnapshot {
    /// This process's environment now.
    pub fn current() -> Self {
        let var = |k: &str| std::env::var(k).ok();
        Self {
            wayland_display: var("WAYLAND_DISPLAY"),
            session_type: var("XDG_SESSION_TYPE"),
            display: var("DISPLAY"),
            forced: var("VIDEOROOM_SCREEN_BACKEND"),
        }
    }
}

/// How screens are captured here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreenBackend {
    /// X11 on this display (`:0`…): we list screens and windows and show our own picker.
    X11 {
        /// The display name.
        display: String,
    },
    /// Wayland: the xdg-desktop-portal ScreenCast dialog picks, PipeWire delivers frames.
    Portal,
    /// No display at all (a server, a CI box without Xvfb).
    Unavailable,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The backend for `env`: a forced one first; then Wayland (a non-empty `WAYLAND_DISPLAY` or
/// `XDG_SESSION_TYPE=wayland`: `DISPLAY` is usually set there too, for XWayland, whose capture would
/// see XWayland windows only); then X11 when `DISPLAY` is set.
pub fn detect(env: &EnvSnapshot) -> ScreenBackend {
    let x11 = non_empty(&env.display).map(|d| ScreenBackend::X11 {
        display: d.to_owned(),
    });
    match non_empty(&env.forced) {
        Some("portal") => return ScreenBackend::Portal,
        Some("x11") => return x11.unwrap_or(ScreenBackend::Unavailable),
        _ => {}
    }
    let wayland = non_empty(&env.wayland_display).is_some()
        || non_empty(&env.session_type).is_some_and(|t| t.eq_ignore_ascii_case("wayland"));
    if wayland {
        ScreenBackend::Portal
    } else {
        x11.unwrap_or(ScreenBackend::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(wayland: Option<&str>, session: Option<&str>, display: Option<&str>) -> EnvSnapshot {
        EnvSnapshot {
            wayland_display: wayland.map(Into::into),
            session_type: session.map(Into::into),
            display: display.map(Into::into),
            forced: None,
        }
    }

    #[test]
    fn wayland_wins_over_xwayland() {
        assert_eq!(
            detect(&env(Some("wayland-0"), None, Some(":0"))),
            ScreenBackend::Portal
        );
        assert_eq!(
            detect(&env(None, Some("wayland"), Some(":0"))),
            ScreenBackend::Portal
        );
    }

    #[test]
    fn x11_when_only_display_is_set() {
        assert_eq!(
            detect(&env(Some(""), Some("x11"), Some(":1"))),
            ScreenBackend::X11 {
                display: ":1".into()
            }
        );
    }

    #[test]
    fn nothing_without_a_display() {
        assert_eq!(
            detect(&env(None, Some("tty"), Some(" "))),
            ScreenBackend::Unavailable
        );
    }

    #[test]
    fn the_override_wins() {
        let mut e = env(Some("wayland-0"), None, Some(":0"));
        e.forced = Some("x11".into());
        assert_eq!(
            detect(&e),
            ScreenBackend::X11 {
                display: ":0".into()
            }
        );
        let mut e = env(None, None, Some(":0"));
        e.forced = Some("portal".into());
        assert_eq!(detect(&e), ScreenBackend::Portal);
    }
}
