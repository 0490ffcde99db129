//! Prometheus metrics served at `GET /metrics`. Counters are atomics, so the forwarding path pays
//! one relaxed add per packet.

use crate::limits::LimitKind;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Every metric the server exports.
#[derive(Debug)]
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
    /// Open TCP connections, HTTP and WebSocket, each holding a `--max-connections` slot (set
    /// when `/metrics` is read).
    pub open_connections: Gauge,
    /// Connections refused because `--max-connections` were open.
    pub connections_refused: Counter,
    /// HTTP connections closed for not sending a complete request in time or moving no byte
    /// (`--http-header-timeout`, `--http-idle-timeout`).
    pub connections_timed_out: Counter,
    /// TLS handshakes that failed (a client that does not trust the certificate, plain HTTP on
    /// the HTTPS port, scanners).
    pub tls_handshakes_failed: Counter,
    /// Certificate files reloaded after they changed.
    pub tls_reloads: Counter,
    /// Changed certificate files that did not load (the previous certificate stays).
    pub tls_reloads_failed: Counter,
    /// Upgrades, joins and messages refused by the abuse limits, by `kind` (see
    /// [`Metrics::count_limited`]).
    pub limited_requests: Family<[(&'static str, &'static str); 1], Counter>,
    /// Datagrams the media engine dropped before any peer's connection saw them, by `reason`
    /// (`malformed`, `oversized`, `unknown_ufrag`, `unknown_source`, `stun_rate_limited`).
    pub media_dropped_datagrams: Family<[(&'static str, &'static str); 1], Counter>,
    /// ICE-TCP connections and frames, by `event` (see [`Metrics::count_ice_tcp`]).
    pub ice_tcp: Family<[(&'static str, &'static str); 1], Counter>,
    /// Switches of a subscriber's leg from one simulcast layer to another.
    pub layer_switches: Counter,
    /// RTP packets received per simulcast layer, by `layer` rank in its track (`0` = the
    /// smallest picture; a track without simulcast is `0`).
    pub layer_packets: Family<[(&'static str, &'static str); 1], Counter>,
    /// Video tracks a subscriber hides (`set_view_sizes` 0×0): nothing is forwarded to it.
    pub paused_tracks: Gauge,
    /// Peers' downlink estimates (bits/s, from their TWCC feedback), one sample per peer with
    /// an estimate per second.
    pub downlink_estimate: Histogram,
}

/// The buckets of [`Metrics::downlink_estimate`], bits/s: 100 kbit/s to 25.6 Mbit/s.
fn estimate_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(100_000.0, 2.0, 9)
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            rooms: Gauge::default(),
            peers: Gauge::default(),
            tracks: Gauge::default(),
            connections: Gauge::default(),
            rtp_packets_in: Counter::default(),
            rtp_bytes_in: Counter::default(),
            rtp_packets_out: Counter::default(),
            rtp_bytes_out: Counter::default(),
            keyframe_requests: Counter::default(),
            dropped_packets: Counter::default(),
            signaling_errors: Counter::default(),
            held_packets: Counter::default(),
            chat_messages: Counter::default(),
            rate_limited: Counter::default(),
            moderation_actions: Counter::default(),
            open_connections: Gauge::default(),
            connections_refused: Counter::default(),
            connections_timed_out: Counter::default(),
            tls_handshakes_failed: Counter::default(),
            tls_reloads: Counter::default(),
            tls_reloads_failed: Counter::default(),
            limited_requests: Family::default(),
            media_dropped_datagrams: Family::default(),
            ice_tcp: Family::default(),
            layer_switches: Counter::default(),
            layer_packets: Family::default(),
            paused_tracks: Gauge::default(),
            downlink_estimate: Histogram::new(estimate_buckets()),
        }
    }
}

impl Metrics {
    /// Counts one request refused by the abuse limits.
    pub fn count_limited(&self, kind: LimitKind) {
        self.limited_requests
            .get_or_create(&[("kind", kind.as_str())])
            .inc();
    }

    /// Requests of `kind` refused by the abuse limits so far.
    pub fn limited(&self, kind: LimitKind) -> u64 {
        self.limited_requests
            .get_or_create(&[("kind", kind.as_str())])
            .get()
    }

    /// Adds the media engine's drops since `before` (`now` minus `before`, per reason).
    pub fn count_media_drops(
        &self,
        now: &crate::engine::demux::DropCounts,
        before: &crate::engine::demux::DropCounts,
    ) {
        for reason in crate::engine::demux::DropReason::ALL {
            let delta = now.get(reason).saturating_sub(before.get(reason));
            if delta > 0 {
                self.media_dropped_datagrams
                    .get_or_create(&[("reason", reason.as_str())])
                    .inc_by(delta);
            }
        }
    }

    /// Adds the ICE-TCP counters' growth from `before` to `now`.
    pub fn count_ice_tcp(
        &self,
        now: &crate::engine::io_tcp::TcpCounts,
        before: &crate::engine::io_tcp::TcpCounts,
    ) {
        use crate::engine::io_tcp::CloseReason;
        let add = |event: &'static str, n: u64, b: u64| {
            if n > b {
                self.ice_tcp
                    .get_or_create(&[("event", event)])
                    .inc_by(n - b);
            }
        };
        add("accepted", now.accepted, before.accepted);
        add(
            "refused_unbound",
            now.refused_unbound,
            before.refused_unbound,
        );
        add("refused_per_ip", now.refused_per_ip, before.refused_per_ip);
        add("frames_in", now.frames_in, before.frames_in);
        add("frames_out", now.frames_out, before.frames_out);
        add("frames_dropped", now.frames_dropped, before.frames_dropped);
        add(
            "frames_unroutable",
            now.frames_unroutable,
            before.frames_unroutable,
        );
        for reason in CloseReason::ALL {
            let event: &'static str = match reason {
                CloseReason::PeerClosed => "closed_peer_closed",
                CloseReason::BadFrame => "closed_bad_frame",
                CloseReason::Io => "closed_io",
                CloseReason::NotStun => "closed_not_stun",
                CloseReason::Refused => "closed_refused",
                CloseReason::Unauthenticated => "closed_unauthenticated",
                CloseReason::Idle => "closed_idle",
                CloseReason::Shutdown => "closed_shutdown",
            };
            add(event, now.closed(reason), before.closed(reason));
        }
    }

    /// Datagrams the media engine dropped for `reason` so far.
    pub fn media_drops(&self, reason: crate::engine::demux::DropReason) -> u64 {
        self.media_dropped_datagrams
            .get_or_create(&[("reason", reason.as_str())])
            .get()
    }

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
            "layer_switches",
            "Switches of a subscriber's leg from one simulcast layer to another",
            self.layer_switches.clone(),
        );
        registry.register(
            "layer_packets",
            "RTP packets received per simulcast layer rank (0 = smallest picture)",
            self.layer_packets.clone(),
        );
        registry.register(
            "paused_tracks",
            "Video tracks hidden by their subscriber (nothing forwarded)",
            self.paused_tracks.clone(),
        );
        registry.register(
            "downlink_estimate_bps",
            "Peers' downlink estimates from their TWCC feedback, sampled once a second per peer",
            self.downlink_estimate.clone(),
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
        registry.register(
            "open_connections",
            "Open TCP connections (HTTP and WebSocket) counted against --max-connections",
            self.open_connections.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused because --max-connections were open",
            self.connections_refused.clone(),
        );
        registry.register(
            "connections_timed_out",
            "HTTP connections closed by the header-read or idle timeout",
            self.connections_timed_out.clone(),
        );
        registry.register(
            "tls_handshakes_failed",
            "TLS handshakes that failed (untrusted certificate, plain HTTP, scanners)",
            self.tls_handshakes_failed.clone(),
        );
        registry.register(
            "tls_reloads",
            "Certificate files reloaded after they changed",
            self.tls_reloads.clone(),
        );
        registry.register(
            "tls_reloads_failed",
            "Changed certificate files that did not load (the previous certificate stays)",
            self.tls_reloads_failed.clone(),
        );
        // Every kind is exported from the start, at 0.
        for kind in LimitKind::ALL {
            drop(
                self.limited_requests
                    .get_or_create(&[("kind", kind.as_str())]),
            );
        }
        registry.register(
            "rate_limited_requests",
            "WebSocket upgrades (HTTP 429), joins and signaling messages refused by the abuse limits",
            self.limited_requests.clone(),
        );
        for reason in crate::engine::demux::DropReason::ALL {
            drop(
                self.media_dropped_datagrams
                    .get_or_create(&[("reason", reason.as_str())]),
            );
        }
        registry.register(
            "media_dropped_datagrams",
            "Datagrams dropped by the media engine before DTLS/SRTP: malformed, oversized, unknown ICE ufrag, unauthenticated source, STUN over the per-peer rate",
            self.media_dropped_datagrams.clone(),
        );
        registry.register(
            "ice_tcp",
            "ICE-TCP (--tcp-port): connections accepted, refused and closed (by reason), frames in, out, dropped on a full write queue, and with no connection to go to",
            self.ice_tcp.clone(),
        );
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}
