//! The audio receive side: per-track [`jitter`] buffers, the [`mixer`] that decodes and mixes
//! them, the [`playout`] thread that feeds the mix to an audio sink, and [`analysis`] (levels,
//! dominant frequency).

pub mod analysis;
pub mod jitter;
pub mod mixer;
pub mod playout;

pub use mixer::{AudioStats, Mixer, RemoteAudio};
pub use playout::Playout;
