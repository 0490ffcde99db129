//! Per-subscriber downlink bandwidth estimate: how many bits per second the server can send to one
//! peer, from the transport-wide congestion control feedback (TWCC) that peer returns.
//!
//! The estimator itself (GCC with the app-limited cap and the delivered floor) is shared with the
//! client, which runs it on its uplink: see [`videoroom_webrtc::bwe`]. This module keeps the
//! server's names for it.

use rtc::interceptor::Registry;

pub use videoroom_webrtc::bwe::{
    BweConfig, DEFAULT_MAX_BPS, DEFAULT_MIN_BPS, DEFAULT_START_BPS, EstimateStats, Estimator,
    RateWindow, bound,
};

/// One subscriber connection's downlink estimate (the server's send-side estimate towards that
/// peer), readable from outside its interceptor chain.
pub type DownlinkEstimate = videoroom_webrtc::bwe::SendEstimate;

/// `registry` plus the send side of transport-wide congestion control for one subscriber
/// connection: see [`videoroom_webrtc::bwe::with_send_estimation`].
pub fn with_downlink_estimation(
    registry: Registry,
    config: BweConfig,
) -> (Registry, DownlinkEstimate) {
    videoroom_webrtc::bwe::with_send_estimation(registry, config)
}
