//! The client's WebRTC PeerConnection: which codecs it speaks (the same as the server offers:
//! Opus PT 111, VP8 PT 96 with NACK/PLI/FIR feedback, no RTX), its interceptor chain, the
//! [`KeyframeRequestTap`] that surfaces PLI/FIR to the video sender, and the event handler that
//! hands PeerConnection events to the room task.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;
use videoroom_protocol::IceServer;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceServer, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

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

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.emit(PcEvent::Track(track));
    }
}

/// Builds the PeerConnection: our codecs, the default interceptors (NACK, reports, TWCC) plus
/// [`KeyframeRequestTap`], the server's ICE servers, UDP sockets on `udp_addrs`. Events go to
/// `events`.
pub async fn build_peer_connection(
    ice_servers: &[IceServer],
    udp_addrs: &[SocketAddr],
    events: mpsc::Sender<PcEvent>,
) -> Result<Arc<dyn PeerConnection>, PeerError> {
    // Codecs and interceptors shared with the server, so both ends negotiate the same payload
    // types; includes [`KeyframeRequestTap`].
    let (engine, registry) =
        videoroom_webrtc::engine_and_interceptors().map_err(PeerError::webrtc("media engine"))?;
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
        .build()
        .await
        .map_err(PeerError::webrtc("build PeerConnection"))?;
    Ok(Arc::new(pc))
}
