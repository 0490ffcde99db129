//! The WebRTC setup Videoroom's server and clients share, so both sides of every connection agree:
//! the codecs (Opus on payload type 111, VP8 on 96, no RTX), the interceptor chain (NACK, reports,
//! transport-wide feedback), the RTP header extensions both sides negotiate (MID, RID, audio
//! level), [`KeyframeRequestTap`] that hands PLI/FIR to the application, [`rtp_track`] for a
//! track that sends pre-packetized RTP and [`rtp_track_simulcast`] for one that sends several
//! spatial layers (simulcast, one SSRC and `rid` per layer).
//!
//! Not for: signaling (see `videoroom-protocol`) or anything that owns sockets or tasks.

pub mod bwe;
pub mod queue_delay;

use rtc::interceptor::{Attribute, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use std::collections::VecDeque;
use std::time::Instant;
use videoroom_protocol::{IceCandidate, MediaKind};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    MediaEngine, RTCIceCandidateInit, Registry, SettingEngine, SettingEngineBuilder,
};

/// How many times a receiver asks for one missing packet (NACK) before giving up on it (the
/// keyframe request after a lasting gap takes over).
pub const MAX_NACKS_PER_PACKET: u16 = 5;

/// Payload type the server offers for Opus.
pub const OPUS_PT: u8 = 111;
/// Payload type the server offers for VP8.
pub const VP8_PT: u8 = 96;
/// RTP clock rate of VP8.
pub const VP8_CLOCK_RATE: u32 = 90_000;

/// The MID header extension (RFC 8843): which m-line (transceiver) a packet belongs to. Sent on
/// audio and video, so a receiver can map an SSRC it was not told about.
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// The RTP stream id header extension (RFC 8852): which simulcast layer (`rid`) a video packet
/// belongs to.
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// The client-to-mixer audio level header extension (RFC 6464): −dBov and voice activity.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// The `rid` of the quarter-size simulcast layer (each dimension / 4).
pub const RID_QUARTER: &str = "q";
/// The `rid` of the half-size simulcast layer (each dimension / 2).
pub const RID_HALF: &str = "h";
/// The `rid` of the full-size simulcast layer.
pub const RID_FULL: &str = "f";
/// The simulcast layers' rids, lowest to highest resolution: the order of the encodings in
/// [`rtp_track_simulcast`] and so of `a=simulcast:send q;h;f` in the SDP.
pub const SIMULCAST_RIDS: [&str; 3] = [RID_QUARTER, RID_HALF, RID_FULL];

/// The Opus codec as the server describes it.
pub fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The VP8 codec as the server describes it.
pub fn vp8_codec() -> RTCRtpCodec {
    let fb = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    RTCRtpCodec {
        mime_type: "video/VP8".to_owned(),
        clock_rate: VP8_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![fb("ccm", "fir"), fb("nack", ""), fb("nack", "pli")],
    }
}

/// A track that sends pre-packetized RTP of `kind` (Opus or VP8) on `ssrc`, announced in SDP with
/// `a=msid:<stream_id> <track_id>`, and the `sendonly` transceiver setup that carries it.
pub fn rtp_track(
    stream_id: &str,
    track_id: &str,
    kind: MediaKind,
    ssrc: u32,
) -> (TrackLocalStaticRTP, RTCRtpTransceiverInit) {
    let (track, init) = rtp_track_parts(stream_id, track_id, kind, ssrc);
    (TrackLocalStaticRTP::new(track), init)
}

/// [`rtp_track`] for the sans-I/O core: the track description and transceiver setup that
/// `rtc`'s `add_transceiver_from_track` takes.
pub fn rtp_track_parts(
    stream_id: &str,
    track_id: &str,
    kind: MediaKind,
    ssrc: u32,
) -> (MediaStreamTrack, RTCRtpTransceiverInit) {
    let (codec_kind, codec) = match kind {
        MediaKind::Audio => (RtpCodecKind::Audio, opus_codec()),
        MediaKind::Video => (RtpCodecKind::Video, vp8_codec()),
    };
    let track = MediaStreamTrack::new(
        stream_id.to_owned(),
        track_id.to_owned(),
        format!("{stream_id}-{track_id}"),
        codec_kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    );
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: vec![stream_id.to_owned()],
        send_encodings: vec![],
    };
    (track, init)
}

/// A video track that sends one VP8 layer per `(rid, ssrc)` in `layers` (simulcast), and the
/// `sendonly` transceiver setup that carries it. The SDP offer announces each layer with
/// `a=rid:<rid> send` and lists them, in the order given, in `a=simulcast:send <rid>;<rid>…`
/// (Videoroom's client gives them lowest to highest: [`SIMULCAST_RIDS`]). Every packet must
/// carry the [`MID_URI`] and [`RID_URI`] header extensions: the receiver learns the layers'
/// SSRCs from them, not from the SDP.
pub fn rtp_track_simulcast(
    stream_id: &str,
    track_id: &str,
    layers: &[(&str, u32)],
) -> (TrackLocalStaticRTP, RTCRtpTransceiverInit) {
    let (track, init) = rtp_track_simulcast_parts(stream_id, track_id, layers);
    (TrackLocalStaticRTP::new(track), init)
}

/// [`rtp_track_simulcast`] for the sans-I/O core.
pub fn rtp_track_simulcast_parts(
    stream_id: &str,
    track_id: &str,
    layers: &[(&str, u32)],
) -> (MediaStreamTrack, RTCRtpTransceiverInit) {
    let codings = layers
        .iter()
        .map(|&(rid, ssrc)| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: rid.to_owned(),
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: vp8_codec(),
            ..Default::default()
        })
        .collect();
    let track = MediaStreamTrack::new(
        stream_id.to_owned(),
        track_id.to_owned(),
        format!("{stream_id}-{track_id}"),
        RtpCodecKind::Video,
        codings,
    );
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: vec![stream_id.to_owned()],
        send_encodings: vec![],
    };
    (track, init)
}

/// A signaled candidate in the form webrtc's `add_ice_candidate` takes.
pub fn to_rtc_candidate(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
        ..Default::default()
    }
}

/// A local candidate as signaled: webrtc gives an empty `sdp_mid` and no index for bundled
/// candidates; browsers need one of them, so index 0 (the bundle's first section) is sent.
pub fn from_rtc_candidate(init: RTCIceCandidateInit) -> IceCandidate {
    IceCandidate {
        candidate: init.candidate,
        sdp_mid: init.sdp_mid.filter(|m| !m.is_empty()),
        sdp_mline_index: Some(init.sdp_mline_index.unwrap_or(0)),
        username_fragment: init.username_fragment,
    }
}

/// `AA:BB:…`: the SHA-256 of a certificate's DER, as SDP's `a=fingerprint`, browsers and
/// `openssl x509 -fingerprint -sha256` show it. The server logs its TLS certificate's; clients
/// compare a refused one with the fingerprints a person trusted.
pub fn sha256_fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The ICE settings of every connection, server and client: no multicast DNS. Neither side sends
/// `.local` candidates to the other, and with mDNS on, webrtc 0.21 joins a multicast group when
/// the connection starts, which fails with "No such device" on a host without a multicast route
/// (a container or namespace with only loopback, some VPS images): every join failed there.
pub fn setting_engine() -> SettingEngineBuilder {
    SettingEngineBuilder::new().with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
}

/// [`setting_engine`], built.
pub fn settings() -> SettingEngine {
    setting_engine().build()
}

/// A media engine with Opus and VP8 only, the header extensions [`MID_URI`] (audio and video),
/// [`RID_URI`] (video) and [`AUDIO_LEVEL_URI`] (audio), and the interceptor chain every server
/// connection uses. With MID and RID negotiated, a receiving core maps a simulcast layer's SSRC
/// (absent from the SDP) to its m-line and `rid` from the first packet's extensions.
///
/// RTX is deliberately not offered: a NACKed packet is resent on the subscriber's own SSRC by the
/// NACK responder, which keeps per-subscriber repair independent of the publisher.
pub fn engine_and_interceptors() -> Result<(MediaEngine, Registry), webrtc::error::Error> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: OPUS_PT,
        },
        RtpCodecKind::Audio,
    )?;
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: vp8_codec(),
            payload_type: VP8_PT,
        },
        RtpCodecKind::Video,
    )?;
    for (uri, kind) in [
        (MID_URI, RtpCodecKind::Audio),
        (MID_URI, RtpCodecKind::Video),
        (RID_URI, RtpCodecKind::Video),
        (AUDIO_LEVEL_URI, RtpCodecKind::Audio),
    ] {
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            },
            kind,
            None,
        )?;
    }
    // rtc's defaults (`register_default_interceptors`), except that a missing packet is asked
    // for at most [`MAX_NACKS_PER_PACKET`] times: rtc's generator asks every 100 ms without end,
    // which behind a slow link makes the sender repeat more than the link carries.
    for parameter in ["", "pli"] {
        engine.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    let registry = Registry::new()
        .with(Slot::NackResponder, NackResponderBuilder::new().build())
        .with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
                .build(),
        );
    configure_simulcast_extension_headers(&mut engine)?;
    let registry = configure_twcc_receiver_only(registry, &mut engine)?;
    let registry = configure_rtcp_reports(registry);
    // Last (application-most), so the NACK responder and report interceptors see all RTCP first.
    let registry = registry.with(Slot::from(14_000), KeyframeRequestTap::default());
    Ok((engine, registry))
}

/// Marks inbound PLI and FIR for delivery to the application (they surface as
/// `TrackLocalEvent::OnRtcpPacket` on the forwarded track) and lets everything else end in the
/// chain, where the interceptors that act on it already have.
#[derive(Default)]
pub struct KeyframeRequestTap {
    read_queue: VecDeque<TaggedPacket>,
    /// Only what `handle_write` was given directly: in a chain, writes go past it (it
    /// [passes them through](Interceptor::passes_writes_through)).
    write_queue: VecDeque<TaggedPacket>,
}

/// Whether an RTCP packet asks for a keyframe.
pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = webrtc::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| is_keyframe_request(p.as_ref()))
                .cloned()
                .collect();
            if requests.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for KeyframeRequestTap {
    /// Writes go by untouched: `handle_write` only queues them and `poll_write` only pops.
    fn passes_writes_through(&self) -> bool {
        true
    }

    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::peer_connection::RTCPeerConnectionBuilder;

    /// An offer from a sans-I/O core with our engine, one simulcast video and one audio track.
    fn offer_sdp() -> String {
        let (engine, registry) = engine_and_interceptors().expect("engine");
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings())
            .build(Instant::now())
            .expect("peer connection");
        let layers = [(RID_QUARTER, 11), (RID_HALF, 22), (RID_FULL, 33)];
        let (video, init) = rtp_track_simulcast_parts("peer", "cam", &layers);
        pc.add_transceiver_from_track(video, Some(init))
            .expect("video transceiver");
        let (audio, init) = rtp_track_parts("peer", "mic", MediaKind::Audio, 44);
        pc.add_transceiver_from_track(audio, Some(init))
            .expect("audio transceiver");
        pc.create_offer(None).expect("offer").sdp
    }

    /// The m-section of `kind` (`video`, `audio`).
    fn section<'a>(sdp: &'a str, kind: &str) -> &'a str {
        let start = sdp.find(&format!("m={kind} ")).expect("m-line");
        let rest = &sdp[start..];
        let end = rest[2..].find("m=").map_or(rest.len(), |i| i + 2);
        &rest[..end]
    }

    #[test]
    fn simulcast_offer_has_rids_and_extensions() {
        let sdp = offer_sdp();
        println!("{sdp}");
        let video = section(&sdp, "video");
        for rid in SIMULCAST_RIDS {
            assert!(video.contains(&format!("a=rid:{rid} send")), "{video}");
        }
        assert!(video.contains("a=simulcast:send q;h;f"), "{video}");
        assert!(video.contains(MID_URI), "{video}");
        assert!(video.contains(RID_URI), "{video}");
        assert!(!video.contains(AUDIO_LEVEL_URI), "{video}");
        let audio = section(&sdp, "audio");
        assert!(audio.contains(MID_URI), "{audio}");
        assert!(audio.contains(AUDIO_LEVEL_URI), "{audio}");
        assert!(!audio.contains(RID_URI), "{audio}");
        assert!(audio.contains("a=ssrc:44 "), "{audio}");
    }
}
