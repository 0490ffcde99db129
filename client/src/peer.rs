//! The client's WebRTC PeerConnection: which codecs it speaks (the same as the server offers:
//! Opus PT 111, VP8 PT 96 with NACK/PLI/FIR feedback, no RTX), its interceptor chain, the
//! [`KeyframeRequestTap`] that surfaces PLI/FIR to the video sender, and the event handler that
//! hands PeerConnection events to the room task.
//!
//! ICE over TCP: the PeerConnection also listens on TCP on the media addresses, which gives it
//! an active TCP candidate, so that it can reach a server's passive TCP candidate (RFC 6544)
//! when UDP is blocked. The room task holds such a candidate back for [`TCP_HOLD_BACK`] (see
//! `room/negotiation.rs`), so that TCP is used only when UDP does not work.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use videoroom_protocol::IceServer;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceConnectionState, RTCIceServer, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};

/// How long a server's TCP candidate is held back before it is added, unless ICE has
/// connected (over UDP) by then: the controlling side nominates the first pair that works, so a
/// TCP candidate added at once could win over a working UDP path.
pub const TCP_HOLD_BACK: Duration = Duration::from_millis(300);

use videoroom_webrtc::bwe::{BweConfig, SendEstimate, with_send_estimation};

pub use videoroom_webrtc::{
    KeyframeRequestTap, OPUS_PT, VP8_CLOCK_RATE, VP8_PT, is_keyframe_request, rtp_track,
};

/// Why the PeerConnection could not be set up or negotiated.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// webrtc refused a call.
    #[error("{what}: {source}")]
    WebRtc {
        /// What was being done.
        what: &'static str,
        /// webrtc's error.
        #[source]
        source: webrtc::error::Error,
    },
}

impl PeerError {
    /// Wraps a webrtc error with what was being done.
    pub fn webrtc(what: &'static str) -> impl FnOnce(webrtc::error::Error) -> Self {
        move |source| Self::WebRtc { what, source }
    }
}

/// What the PeerConnection reports to the room task.
pub enum PcEvent {
    /// A local ICE candidate to trickle to the server.
    LocalCandidate(RTCIceCandidateInit),
    /// The connection state changed.
    State(RTCPeerConnectionState),
    /// The ICE connection state changed (decides when a held-back TCP candidate is added).
    IceState(RTCIceConnectionState),
    /// A remote track started.
    Track(Arc<dyn TrackRemote>),
}

struct Handler {
    events: mpsc::Sender<PcEvent>,
}

impl Handler {
    fn emit(&self, event: PcEvent) {
        // The room task drains this queue between its own awaits; it is full only if that task
        // is gone or wedged, and then nobody would act on the event anyway.
        if self.events.try_send(event).is_err() {
            tracing::warn!("PeerConnection event queue full or closed; event dropped");
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(init) => self.emit(PcEvent::LocalCandidate(init)),
            Err(e) => tracing::warn!("local candidate not serializable: {e}"),
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.emit(PcEvent::State(state));
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.emit(PcEvent::IceState(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.emit(PcEvent::Track(track));
    }
}

/// [`build_peer_connection_estimated`] without the estimate's handle (a connection that does
/// not adapt what it sends).
pub async fn build_peer_connection(
    ice_servers: &[IceServer],
    udp_addrs: &[SocketAddr],
    events: mpsc::Sender<PcEvent>,
) -> Result<Arc<dyn PeerConnection>, PeerError> {
    build_peer_connection_estimated(ice_servers, udp_addrs, events)
        .await
        .map(|(pc, _)| pc)
}

/// Builds the PeerConnection: our codecs, the default interceptors (NACK, reports, TWCC) plus
/// [`KeyframeRequestTap`], the server's ICE servers, UDP sockets on `udp_addrs` and ICE-TCP
/// listeners on the same addresses (ephemeral ports, see [`tcp_addrs`]). Events go to `events`.
///
/// Also the send side of transport-wide congestion control: every RTP packet we send is
/// numbered (transport-cc header extension), the server's feedback drives the uplink estimate
/// ([`videoroom_webrtc::bwe`], [`BweConfig::uplink`]), returned with the PeerConnection.
pub async fn build_peer_connection_estimated(
    ice_servers: &[IceServer],
    udp_addrs: &[SocketAddr],
    events: mpsc::Sender<PcEvent>,
) -> Result<(Arc<dyn PeerConnection>, SendEstimate), PeerError> {
    // Codecs and interceptors shared with the server, so both ends negotiate the same payload
    // types; includes [`KeyframeRequestTap`].
    let (engine, registry) =
        videoroom_webrtc::engine_and_interceptors().map_err(PeerError::webrtc("media engine"))?;
    let (registry, estimate) = with_send_estimation(registry, BweConfig::uplink());
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(
            ice_servers
                .iter()
                .map(|s| RTCIceServer {
                    urls: s.urls.clone(),
                    username: s.username.clone().unwrap_or_default(),
                    credential: s.credential.clone().unwrap_or_default(),
                })
                .collect(),
        )
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(videoroom_webrtc::settings())
        .with_handler(Arc::new(Handler { events }))
        .with_udp_addrs(udp_addrs.to_vec())
        .with_tcp_addrs(tcp_addrs(udp_addrs))
        .build()
        .await
        .map_err(PeerError::webrtc("build PeerConnection"))?;
    Ok((Arc::new(pc), estimate))
}

/// The ICE-TCP listen addresses for these UDP media addresses: the same IPs on ephemeral ports.
/// webrtc 0.21 gathers its active TCP candidate (the one that dials a server's passive candidate)
/// only for a TCP listener, and matches an outgoing connection to it by IP.
pub fn tcp_addrs(udp_addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in udp_addrs {
        let a = SocketAddr::new(a.ip(), 0);
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// Whether a signaled candidate (`candidate:<foundation> <component> <transport> ...`) is a TCP
/// one.
pub fn is_tcp_candidate(candidate: &str) -> bool {
    let body = candidate.trim();
    let body = body.strip_prefix("candidate:").unwrap_or(body);
    body.split_ascii_whitespace()
        .nth(2)
        .is_some_and(|t| t.eq_ignore_ascii_case("tcp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_listeners_follow_the_udp_addresses() {
        let udp: Vec<SocketAddr> = ["127.0.0.1:5000", "127.0.0.1:0", "[::1]:7"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(
            tcp_addrs(&udp),
            [
                "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
                "[::1]:0".parse::<SocketAddr>().unwrap()
            ]
        );
        assert_eq!(
            tcp_addrs(&["0.0.0.0:0".parse().unwrap()]),
            ["0.0.0.0:0".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn tcp_candidates_are_told_apart() {
        assert!(is_tcp_candidate(
            "candidate:1 1 tcp 1671430143 10.0.0.1 7881 typ host tcptype passive"
        ));
        assert!(is_tcp_candidate(
            "1 1 TCP 1 10.0.0.1 7881 typ host tcptype passive"
        ));
        assert!(!is_tcp_candidate(
            "candidate:1 1 udp 2130706431 10.0.0.1 7882 typ host"
        ));
        assert!(!is_tcp_candidate(""));
        assert!(!is_tcp_candidate("candidate:1 1"));
    }
}
