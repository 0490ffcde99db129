//! What a shared screen needs before the VP8 encoder: scaling to at most 1920×1080
//! ([`ScreenScaler`]) and deciding which captured frames are worth encoding ([`MotionGate`]).
//!
//! Both are pure (no capture, no clock of their own): capture backends and the publish loop
//! drive them. The encoder settings are [`Vp8Config::screen`](super::Vp8Config::screen).

pub mod motion;
pub mod scale;

pub use motion::{EncodeReason, MotionDecision, MotionGate};
pub use scale::{MAX_SCREEN_HEIGHT, MAX_SCREEN_WIDTH, ScaleError, ScreenScaler, fit_within};
