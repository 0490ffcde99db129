//! What a shared screen needs before the VP8 encoder: choosing the capture backend at run time
//! ([`detect`]: the Wayland portal, X11, or none), listing and opening what can be shared
//! ([`list_sources`], [`open_source`], [`thumbnail`]), capturing it ([`X11Screen`] on X11),
//! on Wayland `portal::open` (feature `wayland`: the desktop portal's dialog, PipeWire frames),
//! scaling to at most 1920×1080 ([`ScreenScaler`]) and deciding which captured frames are worth
//! encoding ([`MotionGate`]).
//!
//! The scaler and the gate are pure (no capture, no clock of their own): capture backends and the
//! publish loop drive them. The encoder settings are [`Vp8Config::screen`](super::Vp8Config::screen).

pub mod backend;
pub mod error;
pub mod motion;
#[cfg(feature = "wayland")]
pub mod portal;
pub mod scale;
pub mod sources;

pub use motion::{EncodeReason, MotionDecision, MotionGate};
pub use scale::{MAX_SCREEN_HEIGHT, MAX_SCREEN_WIDTH, ScaleError, ScreenScaler, fit_within};
pub mod x11;

pub use backend::{EnvSnapshot, ScreenBackend, detect};
pub use error::ScreenError;
pub use sources::{
    OpenedScreen, Picker, ScreenSourceInfo, ScreenSourceKind, ScreenSources, list_sources,
    open_source, thumbnail,
};

pub use x11::{Monitor, X11Area, X11Error, X11Screen};

#[cfg(feature = "wayland")]
pub use portal::PortalSource;
