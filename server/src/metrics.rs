//! Prometheus metrics served at `GET /metrics`. Counters are atomics, so the forwarding path pays
//! one relaxed add per packet.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Every metric the server exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Open rooms.
    pub rooms: Gauge,
    /// Peers in rooms.
    pub peers: Gauge,
    /// Published tracks being forwarded.
    pub tracks: Gauge,
    /// Open WebSocket connections.
    pub connections: Gauge,
    /// RTP packets received from publishers.
    pub rtp_packets_in: Counter,
    /// RTP payload+header bytes received from publishers.
    pub rtp_bytes_in: Counter,
    /// RTP packets handed to subscribers' connections.
    pub rtp_packets_out: Counter,
    /// RTP bytes handed to subscribers' connections.
    pub rtp_bytes_out: Counter,
    /// Keyframe requests (PLI) sent to publishers, after coalescing.
    pub keyframe_requests: Counter,
    /// Packets dropped because a subscriber could not keep up or was not ready.
    pub dropped_packets: Counter,
    /// Signaling messages refused with `error`.
    pub signaling_errors: Counter,
    /// RTP packets not forwarded because a moderator muted their track.
    pub held_packets: Counter,
    /// Chat messages delivered (to everyone or privately).
    pub chat_messages: Counter,
    /// Chat messages and hand raises refused by the per-peer rate limit.
    pub rate_limited: Counter,
    /// Moderator actions applied (mute, stop, lower hand, remove, lock, end).
    pub moderation_actions: Counter,
}

impl Metrics {
    /// The metrics in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("videoroom");
        registry.register("rooms", "Open rooms", self.rooms.clone());
        registry.register("peers", "Peers in rooms", self.peers.clone());
        registry.register(
            "tracks",
            "Published tracks being forwarded",
            self.tracks.clone(),
        );
        registry.register(
            "connections",
            "Open WebSocket connections",
            self.connections.clone(),
        );
        registry.register(
            "rtp_packets_in",
            "RTP packets received from publishers",
            self.rtp_packets_in.clone(),
        );
        registry.register(
            "rtp_bytes_in",
            "RTP bytes received from publishers",
            self.rtp_bytes_in.clone(),
        );
        registry.register(
            "rtp_packets_out",
            "RTP packets handed to subscribers' connections (before SRTP and the socket)",
            self.rtp_packets_out.clone(),
        );
        registry.register(
            "rtp_bytes_out",
            "RTP bytes handed to subscribers' connections",
            self.rtp_bytes_out.clone(),
        );
        registry.register(
            "keyframe_requests",
            "Keyframe requests (PLI) sent to publishers after coalescing",
            self.keyframe_requests.clone(),
        );
        registry.register(
            "dropped_packets",
            "RTP packets dropped because a subscriber was slow or not ready",
            self.dropped_packets.clone(),
        );
        registry.register(
            "signaling_errors",
            "Signaling messages answered with an error",
            self.signaling_errors.clone(),
        );
        registry.register(
            "held_packets",
            "RTP packets not forwarded because a moderator muted their track",
            self.held_packets.clone(),
        );
        registry.register(
            "chat_messages",
            "Chat messages delivered",
            self.chat_messages.clone(),
        );
        registry.register(
            "rate_limited",
            "Chat messages and hand raises refused by the per-peer rate limit",
            self.rate_limited.clone(),
        );
        registry.register(
            "moderation_actions",
            "Moderator actions applied",
            self.moderation_actions.clone(),
        );
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}
