//! Shared harness for the server's integration tests: a real server on 127.0.0.1:0, raw
//! WebSocket clients, and test peers that speak the protocol with a real webrtc-0.21
//! PeerConnection and publish RTP with known payloads.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::Instrument;
use videoroom_protocol::{
    ClientMessage, IceCandidate, MediaKind, PROTOCOL_VERSION, PeerId, PublishedTrack, RoomName,
    ServerMessage, TrackId, TrackSource,
};
use videoroom_server::media::{self, KeyframeRequestTap};
use videoroom_server::{Config, RunningServer};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCSessionDescription, Registry,
    register_default_interceptors,
};

/// Generous bound for conditions that normally hold within a second or two.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A loopback-only server configuration: HTTP on 127.0.0.1:0, WebRTC on 127.0.0.1.
pub fn test_config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        rtc_bind_ip: "127.0.0.1".parse().expect("ip"),
        ..Config::default()
    }
}

pub async fn start_server(config: Config) -> RunningServer {
    init_tracing();
    videoroom_server::start(config).await.expect("server starts")
}

pub fn ws_url(server: &RunningServer) -> String {
    format!("ws://{}/ws", server.local_addr())
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Raw WebSocket client, for protocol-level tests.

pub struct RawClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl RawClient {
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws connects");
        Self { ws }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send(&mut self, message: &ClientMessage) {
        self.send_text(&message.to_json()).await;
    }

    /// The next server message (skipping pings), or panics after `WAIT`.
    pub async fn recv(&mut self) -> ServerMessage {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a server message within the bound")
                .expect("socket open")
                .expect("frame");
            match frame {
                Message::Text(text) => {
                    return ServerMessage::parse(text.as_str()).expect("server sends valid messages");
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Receives until a message matching `pred` arrives; returns it.
    pub async fn recv_until(&mut self, pred: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            let m = self.recv().await;
            if pred(&m) {
                return m;
            }
        }
    }

    pub async fn join(&mut self, room: &str, name: &str) -> ServerMessage {
        self.send(&join_message(room, name)).await;
        self.recv().await
    }
}

pub fn join_message(room: &str, name: &str) -> ClientMessage {
    ClientMessage::Join {
        protocol_version: PROTOCOL_VERSION,
        room: RoomName::new(room),
        display_name: name.to_owned(),
        metadata: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Test peer: a real WebRTC participant.

/// The known payload of packet `counter` of a track: recognisable and checkable byte for byte.
pub fn payload_for(track_id: &str, counter: u32, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(&counter.to_be_bytes());
    let seed = track_id.bytes().fold(counter, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    while p.len() < len {
        p.push((seed.wrapping_add(p.len() as u32) % 251) as u8);
    }
    p
}

#[derive(Default, Debug)]
pub struct Received {
    /// Publisher peer id (the msid stream id).
    pub stream_id: String,
    pub kind: Option<MediaKind>,
    /// (RTP sequence number, payload) in arrival order.
    pub packets: Vec<(u16, Vec<u8>)>,
}

#[derive(Default)]
pub struct PeerState {
    pub messages: Vec<ServerMessage>,
    pub received: BTreeMap<String, Received>,
    pub plis: HashMap<String, u32>,
    pub sent: HashMap<String, u32>,
    pub connected: bool,
}

impl PeerState {
    pub fn saw(&self, pred: impl Fn(&ServerMessage) -> bool) -> bool {
        self.messages.iter().any(pred)
    }
}

pub struct TestPeer {
    pub name: String,
    pub peer_id: PeerId,
    pub joined: ServerMessage,
    pub state: Arc<Mutex<PeerState>>,
    pub published: Vec<(TrackId, MediaKind)>,
    to_server: mpsc::Sender<ClientMessage>,
    pc: Arc<dyn PeerConnection>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TestPeer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let pc = Arc::clone(&self.pc);
        tokio::spawn(async move {
            let _ = pc.close().await;
        });
    }
}

struct Handler {
    to_server: mpsc::Sender<ClientMessage>,
    state: Arc<Mutex<PeerState>>,
    span: tracing::Span,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self
                .to_server
                .send(ClientMessage::IceCandidate {
                    candidate: IceCandidate {
                        candidate: init.candidate,
                        sdp_mid: None,
                        sdp_mline_index: Some(0),
                        username_fragment: init.username_fragment,
                    },
                })
                .await;
        }
    }

    async fn on_connection_state_change(&self, state: webrtc::peer_connection::RTCPeerConnectionState) {
        if state == webrtc::peer_connection::RTCPeerConnectionState::Connected {
            lock(&self.state).connected = true;
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let state = Arc::clone(&self.state);
        tokio::spawn(
            async move {
                let track_id = track.track_id().await;
                let stream_id = track.stream_id().await;
                let kind = match track.kind().await {
                    RtpCodecKind::Audio => Some(MediaKind::Audio),
                    RtpCodecKind::Video => Some(MediaKind::Video),
                    _ => None,
                };
                {
                    let mut s = lock(&state);
                    let r = s.received.entry(track_id.clone()).or_default();
                    r.stream_id = stream_id;
                    r.kind = kind;
                }
                while let Some(event) = track.poll().await {
                    match event {
                        TrackRemoteEvent::OnRtpPacket(p) => {
                            let mut s = lock(&state);
                            if let Some(r) = s.received.get_mut(&track_id) {
                                r.packets.push((p.header.sequence_number, p.payload.to_vec()));
                            }
                        }
                        TrackRemoteEvent::OnEnded => break,
                        _ => {}
                    }
                }
            }
            .instrument(self.span.clone()),
        );
    }
}

pub fn lock(m: &Mutex<PeerState>) -> std::sync::MutexGuard<'_, PeerState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Test-peer options.
#[derive(Clone)]
pub struct PeerOptions {
    pub publish_audio: bool,
    pub publish_video: bool,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self { publish_audio: true, publish_video: true }
    }
}

impl TestPeer {
    /// Connects, joins `room`, publishes as `opts` says, and keeps answering the server.
    pub async fn join(url: &str, room: &str, name: &str, opts: PeerOptions) -> TestPeer {
        let span = tracing::info_span!("test_peer", name);
        let mut raw = RawClient::connect(url).await;
        let joined = raw.join(room, name).await;
        let ServerMessage::Joined { peer_id, .. } = &joined else {
            panic!("{name}: join refused: {joined:?}");
        };
        let peer_id = peer_id.clone();
        let state = Arc::new(Mutex::new(PeerState::default()));
        lock(&state).messages.push(joined.clone());
        let (to_server, mut outbound) = mpsc::channel::<ClientMessage>(256);

        let mut engine = MediaEngine::default();
        engine.register_default_codecs().expect("codecs");
        let registry = register_default_interceptors(Registry::new(), &mut engine).expect("interceptors");
        let registry = registry.with(rtc::interceptor::Slot::from(14_000), KeyframeRequestTap::default());
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_media_engine(engine)
                .with_interceptor_registry(registry)
                .with_handler(Arc::new(Handler {
                    to_server: to_server.clone(),
                    state: Arc::clone(&state),
                    span: span.clone(),
                }))
                .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
                .build()
                .await
                .expect("peer connection"),
        );

        let mut tasks = Vec::new();
        let mut published = Vec::new();
        let mut declared = Vec::new();
        let kinds = [
            (opts.publish_audio, MediaKind::Audio, "mic"),
            (opts.publish_video, MediaKind::Video, "cam"),
        ];
        for (on, kind, suffix) in kinds {
            if !on {
                continue;
            }
            let track_id = TrackId::new(format!("{name}-{suffix}"));
            let ssrc = rand::random::<u32>() | 1;
            let (codec_kind, codec) = match kind {
                MediaKind::Audio => (RtpCodecKind::Audio, media::opus_codec()),
                MediaKind::Video => (RtpCodecKind::Video, media::vp8_codec()),
            };
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                format!("{name}-stream"),
                track_id.to_string(),
                track_id.to_string(),
                codec_kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                    codec,
                    ..Default::default()
                }],
            )));
            pc.add_transceiver_from_track(
                Arc::clone(&track) as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: vec![format!("{name}-stream")],
                    send_encodings: vec![],
                }),
            )
            .await
            .expect("add track");
            tasks.push(tokio::spawn(
                send_media(Arc::clone(&track), track_id.to_string(), kind, ssrc, Arc::clone(&state))
                    .instrument(span.clone()),
            ));
            tasks.push(tokio::spawn(count_plis(track, track_id.to_string(), Arc::clone(&state))));
            declared.push(PublishedTrack {
                track_id: track_id.clone(),
                source: TrackSource::default_for(kind),
                muted: false,
            });
            published.push((track_id, kind));
        }

        // Signaling: one task owns the socket and the negotiation state.
        let signaling_pc = Arc::clone(&pc);
        let signaling_state = Arc::clone(&state);
        let signaling_out = to_server.clone();
        tasks.push(tokio::spawn(
            async move {
                let mut making_offer = false;
                let mut pending: Vec<RTCIceCandidateInit> = Vec::new();
                let mut remote_set = false;
                if !declared.is_empty() {
                    let offer = signaling_pc.create_offer(None).await.expect("offer");
                    signaling_pc.set_local_description(offer).await.expect("sld");
                    let sdp = signaling_pc.local_description().await.expect("local").sdp;
                    raw.send(&ClientMessage::SdpOffer { sdp, tracks: declared }).await;
                    making_offer = true;
                }
                loop {
                    tokio::select! {
                        out = outbound.recv() => match out {
                            Some(ClientMessage::Leave) => {
                                raw.send(&ClientMessage::Leave).await;
                                let _ = raw.ws.close(None).await;
                                break;
                            }
                            Some(m) => raw.send(&m).await,
                            None => break,
                        },
                        frame = raw.ws.next() => {
                            let Some(Ok(Message::Text(text))) = frame else {
                                match frame { Some(Ok(_)) => continue, _ => break }
                            };
                            let Ok(m) = ServerMessage::parse(text.as_str()) else { continue };
                            match &m {
                                ServerMessage::SdpAnswer { sdp } => {
                                    let answer = RTCSessionDescription::answer(sdp.clone()).expect("answer");
                                    signaling_pc.set_remote_description(answer).await.expect("srd answer");
                                    making_offer = false;
                                    remote_set = true;
                                }
                                ServerMessage::SdpOffer { sdp } => {
                                    if making_offer {
                                        // Glare: the client ignores the server's offer.
                                        lock(&signaling_state).messages.push(m.clone());
                                        continue;
                                    }
                                    let offer = RTCSessionDescription::offer(sdp.clone()).expect("offer");
                                    signaling_pc.set_remote_description(offer).await.expect("srd offer");
                                    remote_set = true;
                                    let answer = signaling_pc.create_answer(None).await.expect("answer");
                                    signaling_pc.set_local_description(answer).await.expect("sld answer");
                                    let sdp = signaling_pc.local_description().await.expect("local").sdp;
                                    raw.send(&ClientMessage::SdpAnswer { sdp }).await;
                                }
                                ServerMessage::IceCandidate { candidate } => {
                                    let init = RTCIceCandidateInit {
                                        candidate: candidate.candidate.clone(),
                                        sdp_mid: candidate.sdp_mid.clone(),
                                        sdp_mline_index: candidate.sdp_mline_index,
                                        username_fragment: candidate.username_fragment.clone(),
                                        ..Default::default()
                                    };
                                    pending.push(init);
                                }
                                _ => {}
                            }
                            if remote_set {
                                for c in pending.drain(..) {
                                    let _ = signaling_pc.add_ice_candidate(c).await;
                                }
                            }
                            lock(&signaling_state).messages.push(m);
                        }
                    }
                }
                drop(signaling_out);
            }
            .instrument(span.clone()),
        ));

        TestPeer { name: name.to_owned(), peer_id, joined, state, published, to_server, pc, tasks }
    }

    /// The SDP offer of a PeerConnection (one recvonly video section) that is closed right
    /// after, so nothing answers at the candidates it names.
    pub async fn offer_only() -> String {
        let mut engine = MediaEngine::default();
        engine.register_default_codecs().expect("codecs");
        struct Silent;
        impl PeerConnectionEventHandler for Silent {}
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(engine)
            .with_handler(Arc::new(Silent))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .expect("peer connection");
        pc.add_transceiver_from_kind(
            RtpCodecKind::Video,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await
        .expect("transceiver");
        let offer = pc.create_offer(None).await.expect("offer");
        let sdp = offer.sdp.clone();
        pc.set_local_description(offer).await.expect("sld");
        pc.close().await.expect("close");
        sdp
    }

    pub async fn send(&self, m: ClientMessage) {
        self.to_server.send(m).await.expect("signaling task alive");
    }

    pub async fn leave(&self) {
        self.send(ClientMessage::Leave).await;
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, PeerState> {
        lock(&self.state)
    }

    /// Packets received so far on `track_id`.
    pub fn received_count(&self, track_id: &str) -> usize {
        self.state().received.get(track_id).map_or(0, |r| r.packets.len())
    }

    pub fn plis(&self, track_id: &str) -> u32 {
        self.state().plis.get(track_id).copied().unwrap_or(0)
    }

    /// Asserts that every packet received on `track_id` carries the publisher's payload byte for
    /// byte, with strictly increasing counters and sequence numbers; returns how many there were.
    pub fn check_received(&self, track_id: &str, publisher: &str) -> usize {
        let state = self.state();
        let r = state
            .received
            .get(track_id)
            .unwrap_or_else(|| panic!("{}: nothing received on {track_id}", self.name));
        assert_eq!(r.stream_id, publisher, "{}: msid stream id of {track_id} is its publisher", self.name);
        let mut last: Option<(u16, u32)> = None;
        for (seq, payload) in &r.packets {
            assert!(payload.len() >= 4, "payload too short");
            let counter = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
            let expected = payload_for(track_id, counter, payload.len());
            assert_eq!(payload, &expected, "{}: payload of {track_id} #{counter} changed in transit", self.name);
            if let Some((last_seq, last_counter)) = last {
                assert!(counter > last_counter, "{}: {track_id} out of order: {counter} after {last_counter}", self.name);
                assert_eq!(
                    seq.wrapping_sub(last_seq) as u32,
                    counter - last_counter,
                    "{}: {track_id} sequence numbers do not follow the packets",
                    self.name
                );
            }
            last = Some((*seq, counter));
        }
        r.packets.len()
    }
}

/// Sends RTP with known payloads: audio 50 packets/s of 160 bytes, video 90 packets/s of 1000 bytes.
async fn send_media(
    track: Arc<TrackLocalStaticRTP>,
    track_id: String,
    kind: MediaKind,
    ssrc: u32,
    state: Arc<Mutex<PeerState>>,
) {
    let (interval, len, pt, clock_step) = match kind {
        MediaKind::Audio => (Duration::from_millis(20), 160, media::OPUS_PT, 960u32),
        MediaKind::Video => (Duration::from_micros(11_111), 1000, media::VP8_PT, 1000u32),
    };
    let mut ticker = tokio::time::interval(interval);
    let mut counter: u32 = 0;
    let mut seq: u16 = rand::random();
    loop {
        ticker.tick().await;
        let packet = rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                payload_type: pt,
                sequence_number: seq,
                timestamp: counter.wrapping_mul(clock_step),
                ssrc,
                marker: true,
                ..Default::default()
            },
            payload: payload_for(&track_id, counter, len).into(),
        };
        // Before negotiation completes the track is unbound and the write fails; the packet is
        // then not counted and its number is reused.
        if track.write_rtp(packet).await.is_ok() {
            counter += 1;
            seq = seq.wrapping_add(1);
            *lock(&state).sent.entry(track_id.clone()).or_default() += 1;
        }
    }
}

async fn count_plis(track: Arc<TrackLocalStaticRTP>, track_id: String, state: Arc<Mutex<PeerState>>) {
    loop {
        match track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                let n = packets.iter().filter(|p| media::is_keyframe_request(p.as_ref())).count() as u32;
                *lock(&state).plis.entry(track_id.clone()).or_default() += n;
            }
            Some(_) => {}
            // Not bound yet (or closed): look again shortly.
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
