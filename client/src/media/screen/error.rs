//! [`ScreenError`]: why a screen cannot be listed or shared, worded for the person who asked
//! (like [`DeviceError`](crate::media::devices::DeviceError)): each message says what to do.

use super::x11::X11Error;

/// Why screen sharing cannot start (or list what to share).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScreenError {
    /// Neither a Wayland nor an X11 display is available.
    #[error(
        "there is no display to share: neither WAYLAND_DISPLAY nor DISPLAY is set (start the app from \
         your desktop session)"
    )]
    NoDisplay,
    /// X11 capture failed.
    #[error(transparent)]
    X11(#[from] X11Error),
    /// The source asked for is not (or no longer) there.
    #[error("{id} is no longer available to share (it was closed or unplugged); pick another one")]
    NoSuchSource {
        /// The source id asked for.
        id: String,
    },
    /// Wayland: no D-Bus session bus to reach the portal.
    #[error(
        "screen sharing on Wayland goes through the desktop portal, which needs a D-Bus session; none \
         was found. Start the app from your desktop session"
    )]
    NoSessionBus,
    /// Wayland: the session has no ScreenCast portal.
    #[error(
        "your desktop has no screen-sharing portal. Install xdg-desktop-portal and the one for your \
         desktop (xdg-desktop-portal-gnome, -kde or -wlr), then log in again"
    )]
    NoPortal,
    /// The person closed the portal's dialog without choosing (a notice, not a failure).
    #[error("screen sharing was cancelled")]
    Cancelled,
    /// The portal answered, but the PipeWire stream failed.
    #[error(
        "cannot receive the shared screen from PipeWire: {0} (is PipeWire running? `systemctl --user status pipewire`)"
    )]
    PipeWire(String),
    /// Another portal failure.
    #[error("the screen-sharing portal failed: {0}")]
    Portal(String),
    /// Built without the `wayland` feature, on a Wayland session.
    #[error(
        "this build has no Wayland screen sharing (built without the `wayland` feature); run the app \
         in an X11 session, or use a build with it"
    )]
    NotBuilt,
}

impl ScreenError {
    /// Whether this is the person's own choice (cancelled), not a failure to report as one.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ScreenError::Cancelled)
    }
}
