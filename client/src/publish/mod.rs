//! The publish paths.
//!
//! - Video: [`VideoSource`] → [`Vp8Encoder`] (on the blocking pool) → RTP (VP8 payload
//!   descriptor with a 15-bit picture id, 90 kHz clock from the capture time) →
//!   `TrackLocalStaticRTP`, paced by a tokio interval at the source's frame rate. A camera is
//!   sent as simulcast ([`camera_layers`]): one capture, box-downscaled to half and quarter size
//!   ([`crate::media::downscale`]), one encoder, SSRC and `rid` per layer. Keyframe requests
//!   (PLI/FIR surfaced by [`KeyframeRequestTap`](crate::peer::KeyframeRequestTap)) make the next
//!   frame of the layer they name a keyframe.
//! - Audio: [`AudioSource`] → [`OpusEncoder`] → one RTP packet per 20 ms (48 kHz clock).
//!
//! Every packet carries the MID header extension (the transceiver's mid), video layers of a
//! simulcast track their `rid` (RID extension), audio its level (RFC 6464), each with the id
//! negotiated for the bound track ([`SendControl::set_transceiver`] says which transceiver a
//! track is on). An extension the other side did not negotiate is left out.
//!
//! Senders outlive a media session: they write to whatever track the room binds
//! ([`TrackBinding`]), so a reconnection swaps the track under them without restarting the
//! source or the encoder.
//!
//! Files: `control.rs` ([`SendControl`]: what the room, the handle and a send loop share),
//! `layers.rs` (simulcast [`LayerSpec`]s, which layers are encoded), `encode.rs` (the blocking
//! video stage: capture, downscale, encode per layer), `video.rs` and `audio.rs` (the send
//! loops), `rtp.rs` (numbering, packetizers, MID/RID/audio-level labels), `ended.rs` (a loop
//! that stops for good, and why).

mod audio;
mod control;
mod encode;
mod ended;
mod layers;
mod rtp;
mod video;

pub use audio::spawn_audio_sender;
pub use control::{AudioControl, LayerStats, SendControl, SendStats, SourceSwap, VideoControl};
pub use ended::{EndReports, Ended};
pub use layers::{LayerSpec, MIN_LAYER_HEIGHT, camera_layers, combined_pauses};
pub use rtp::{RtpState, audio_level};
pub use video::{
    VideoSendSettings, new_encoder, new_screen_encoder, spawn_layered_sender, spawn_video_sender,
};

use crate::media::{SourceError, Vp8Error};
use std::sync::Arc;
use tokio::sync::watch;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

/// Where a sender writes: the local track of the current media session, or `None` while there
/// is no connected session (before the first connection, during a reconnection). The room
/// publishes a new track here after each (re)connection.
pub type TrackBinding = watch::Receiver<Option<Arc<TrackLocalStaticRTP>>>;

/// Why the publish path stopped or skipped a frame.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The source failed or ended.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The encoder failed.
    #[error(transparent)]
    Encoder(#[from] Vp8Error),
    /// A screen frame could not be scaled to the size it is sent at.
    #[error(transparent)]
    Scale(#[from] crate::media::screen::ScaleError),
    /// The blocking encode task panicked or was cancelled.
    #[error("encoder task failed: {0}")]
    Task(String),
}

/// Runs one blocking step of a send stage (pull from a device, encode) on the blocking pool and
/// hands the stage back with the result; `None` if the task panicked (the loop then ends).
pub(super) async fn on_blocking_pool<S: Send + 'static, R: Send + 'static>(
    mut stage: S,
    step: impl FnOnce(&mut S) -> R + Send + 'static,
) -> Option<(S, R)> {
    let joined = tokio::task::spawn_blocking(move || {
        let result = step(&mut stage);
        (stage, result)
    })
    .await;
    match joined {
        Ok(pair) => Some(pair),
        Err(e) => {
            tracing::error!("{}", PublishError::Task(e.to_string()));
            None
        }
    }
}

/// Waits until `binding` holds a track; `None` if the room dropped the binding.
pub(super) async fn connected_track(
    binding: &mut TrackBinding,
) -> Option<Arc<TrackLocalStaticRTP>> {
    loop {
        if let Some(track) = binding.borrow_and_update().clone() {
            return Some(track);
        }
        binding.changed().await.ok()?;
    }
}

/// Writes `packets` to `track`; returns how many were written.
pub(super) async fn write_packets(
    track: &TrackLocalStaticRTP,
    packets: Vec<rtc::rtp::Packet>,
) -> u64 {
    let mut written = 0u64;
    for packet in packets {
        if let Err(e) = track.write_rtp(packet).await {
            tracing::debug!("write_rtp failed: {e}");
            break;
        }
        written += 1;
    }
    written
}
