//! The client's WebRTC PeerConnection: which codecs it speaks (the same as the server offers:
//! Opus PT 111, VP8 PT 96 with NACK/PLI/FIR feedback, no RTX), its interceptor chain, the
//! [`KeyframeRequestTap`] that surfaces PLI/FIR to the video sender, and the event handler that
//! hands PeerConnection events to the room task.

use rtc::interceptor::{Attribute, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use videoroom_protocol::IceServer;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceServer, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, Registry, register_default_interceptors,
};

/// Payload type for Opus (as the server offers it).
pub const OPUS_PT: u8 = 111;
/// Payload type for VP8 (as the server offers it).
pub const VP8_PT: u8 = 96;
/// RTP clock rate of VP8.
pub const VP8_CLOCK_RATE: u32 = 90_000;

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

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn vp8_codec() -> RTCRtpCodec {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    RTCRtpCodec {
        mime_type: "video/VP8".to_owned(),
        clock_rate: VP8_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![
            feedback("nack", ""),
            feedback("nack", "pli"),
            feedback("ccm", "fir"),
        ],
    }
}

/// A VP8 track sending pre-packetized RTP on `ssrc`, announced as `a=msid:<stream_id> <track_id>`,
/// with the `sendonly` transceiver setup that publishes it.
pub fn vp8_track(
    stream_id: &str,
    track_id: &str,
    ssrc: u32,
) -> (TrackLocalStaticRTP, RTCRtpTransceiverInit) {
    let track = TrackLocalStaticRTP::new(MediaStreamTrack::new(
        stream_id.to_owned(),
        track_id.to_owned(),
        format!("{track_id} (camera)"),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: vp8_codec(),
            ..Default::default()
        }],
    ));
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: vec![stream_id.to_owned()],
        send_encodings: vec![],
    };
    (track, init)
}

/// Whether an RTCP packet asks the sender for a keyframe (PLI or FIR).
pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// An interceptor that lets the application see keyframe requests: inbound RTCP that holds a PLI
/// or FIR is narrowed to those packets and marked `DeliverToApplication`, so it surfaces as
/// `TrackLocalEvent::OnRtcpPacket` on the sending track. All other inbound RTCP stops here, after
/// the interceptors earlier in the chain have acted on it. Outbound packets pass unchanged.
#[derive(Default)]
pub struct KeyframeRequestTap {
    inbound: VecDeque<TaggedPacket>,
    outbound: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = webrtc::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let wanted: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| is_keyframe_request(p.as_ref()))
                .cloned()
                .collect();
            if wanted.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(wanted);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.inbound.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.inbound.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.outbound.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.outbound.pop_front()
    }
}

impl Interceptor for KeyframeRequestTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
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
    let mut engine = MediaEngine::default();
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus_codec(),
                payload_type: OPUS_PT,
            },
            RtpCodecKind::Audio,
        )
        .map_err(PeerError::webrtc("register Opus"))?;
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: vp8_codec(),
                payload_type: VP8_PT,
            },
            RtpCodecKind::Video,
        )
        .map_err(PeerError::webrtc("register VP8"))?;
    let registry = register_default_interceptors(Registry::new(), &mut engine)
        .map_err(PeerError::webrtc("register interceptors"))?;
    // Last (application-most), so the NACK responder and report interceptors see all RTCP first.
    let registry = registry.with(Slot::from(14_000), KeyframeRequestTap::default());
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
        .with_handler(Arc::new(Handler { events }))
        .with_udp_addrs(udp_addrs.to_vec())
        .build()
        .await
        .map_err(PeerError::webrtc("build PeerConnection"))?;
    Ok(Arc::new(pc))
}
