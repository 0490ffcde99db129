//! A real participant: one webrtc-0.21 PeerConnection driven by the Videoroom protocol.

use crate::media::{PacketSource, Source, counter_of, payload_for};
use crate::raw::RawClient;
use futures::StreamExt;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tracing::Instrument;
use videoroom_protocol::{
    ClientMessage, IceCandidate, MediaKind, PeerId, PublishedTrack, ServerMessage, TrackId,
    TrackSource,
};
use videoroom_server::media::{self, KeyframeRequestTap};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCIceConnectionState, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, Registry, register_default_interceptors,
};

/// What a test peer publishes and records.
#[derive(Clone, Debug)]
pub struct PeerOptions {
    /// Audio track source, if it publishes audio.
    pub audio: Option<Source>,
    /// Video track source, if it publishes video.
    pub video: Option<Source>,
    /// Keep every received payload (for byte-for-byte checks); off for long benchmark runs.
    pub keep_payloads: bool,
    /// Record the instant each packet was sent and received (for latency).
    pub record_times: bool,
    /// Hold the first offer until the server's first offer has arrived, ignore that one, then
    /// offer: exactly what the server sees when two offers cross (glare).
    pub provoke_glare: bool,
    /// Also listen for ICE over TCP (an active candidate), so the server's passive TCP candidate
    /// can be used.
    pub ice_tcp: bool,
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self {
            audio: Some(Source::Known),
            video: Some(Source::Known),
            keep_payloads: true,
            record_times: false,
            provoke_glare: false,
            ice_tcp: false,
        }
    }
}

impl PeerOptions {
    /// Publishes nothing; only receives.
    pub fn receive_only() -> Self {
        Self {
            audio: None,
            video: None,
            ..Self::default()
        }
    }
}

/// What one remote track delivered.
#[derive(Default, Debug)]
pub struct Received {
    /// Publisher peer id (the msid stream id).
    pub stream_id: String,
    /// Audio or video.
    pub kind: Option<MediaKind>,
    /// Packets received.
    pub count: usize,
    /// (RTP sequence number, payload) in arrival order, when payloads are kept.
    pub packets: Vec<(u16, Vec<u8>)>,
    /// (RTP sequence number, arrival instant), when times are recorded.
    pub arrivals: Vec<(u16, Instant)>,
    /// When the first packet arrived (always recorded).
    pub first_at: Option<Instant>,
}

/// Everything a test peer observed.
#[derive(Default)]
pub struct PeerState {
    /// Every server message, in order.
    pub messages: Vec<ServerMessage>,
    /// Remote tracks by track id.
    pub received: BTreeMap<String, Received>,
    /// Keyframe requests received per own track.
    pub plis: HashMap<String, u32>,
    /// Packets sent per own track.
    pub sent: HashMap<String, u64>,
    /// (track id, RTP sequence number) → send instant, when times are recorded.
    pub send_times: HashMap<(String, u16), Instant>,
    /// Whether the media connection reached "connected".
    pub connected: bool,
    /// When the media connection first reached "connected" (ICE and DTLS done).
    pub connected_at: Option<Instant>,
    /// When ICE first reached "connected" (a candidate pair works; DTLS comes after).
    pub ice_connected_at: Option<Instant>,
    /// When the first server `sdp_offer` arrived.
    pub first_offer_at: Option<Instant>,
    /// When the first `sdp_answer` (to a server offer) was sent.
    pub first_answer_sent_at: Option<Instant>,
}

impl PeerState {
    /// Whether any server message matches `pred`.
    pub fn saw(&self, pred: impl Fn(&ServerMessage) -> bool) -> bool {
        self.messages.iter().any(pred)
    }
}

/// Locks a peer's state, surviving a panicked holder.
pub fn lock(m: &Mutex<PeerState>) -> std::sync::MutexGuard<'_, PeerState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A participant in a room.
pub struct TestPeer {
    /// Display name (also the prefix of its track ids).
    pub name: String,
    /// Server-assigned id.
    pub peer_id: PeerId,
    /// The `joined` message.
    pub joined: ServerMessage,
    /// What it observed.
    pub state: Arc<Mutex<PeerState>>,
    /// Its own tracks: `<name>-mic`, `<name>-cam`.
    pub published: Vec<(TrackId, MediaKind)>,
    /// When its WebSocket connected (before `join`).
    pub joined_at: Instant,
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
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

struct Handler {
    to_server: mpsc::Sender<ClientMessage>,
    state: Arc<Mutex<PeerState>>,
    options: PeerOptions,
    span: tracing::Span,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let candidate = IceCandidate {
                candidate: init.candidate,
                sdp_mid: None,
                sdp_mline_index: Some(0),
                username_fragment: init.username_fragment,
            };
            let _ = self
                .to_server
                .send(ClientMessage::IceCandidate { candidate })
                .await;
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        if state == RTCIceConnectionState::Connected {
            lock(&self.state)
                .ice_connected_at
                .get_or_insert_with(Instant::now);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            let mut s = lock(&self.state);
            s.connected = true;
            s.connected_at.get_or_insert_with(Instant::now);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let state = Arc::clone(&self.state);
        let options = self.options.clone();
        tokio::spawn(record_track(track, state, options).instrument(self.span.clone()));
    }
}

async fn record_track(
    track: Arc<dyn TrackRemote>,
    state: Arc<Mutex<PeerState>>,
    options: PeerOptions,
) {
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
                let now = Instant::now();
                let mut s = lock(&state);
                if let Some(r) = s.received.get_mut(&track_id) {
                    r.count += 1;
                    r.first_at.get_or_insert(now);
                    if options.keep_payloads {
                        r.packets
                            .push((p.header.sequence_number, p.payload.to_vec()));
                    }
                    if options.record_times {
                        r.arrivals.push((p.header.sequence_number, now));
                    }
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

impl TestPeer {
    /// Connects, joins `room`, publishes as `options` says, and keeps answering the server.
    pub async fn join(url: &str, room: &str, name: &str, options: PeerOptions) -> TestPeer {
        Self::join_with(url, room, name, options, None).await
    }

    /// [`TestPeer::join`] with a TLS connector for a `wss://` URL (see
    /// [`RawClient::connect_with`]).
    pub async fn join_with(
        url: &str,
        room: &str,
        name: &str,
        options: PeerOptions,
        tls: Option<Connector>,
    ) -> TestPeer {
        let span = tracing::info_span!("test_peer", name);
        let mut raw = RawClient::connect_with(url, tls).await;
        let joined_at = Instant::now();
        let joined = raw.join(room, name).await;
        let ServerMessage::Joined { peer_id, .. } = &joined else {
            panic!("{name}: join refused: {joined:?}");
        };
        let peer_id = peer_id.clone();
        let state = Arc::new(Mutex::new(PeerState::default()));
        lock(&state).messages.push(joined.clone());
        let (to_server, outbound) = mpsc::channel::<ClientMessage>(256);

        let mut engine = MediaEngine::default();
        engine.register_default_codecs().expect("codecs");
        let registry =
            register_default_interceptors(Registry::new(), &mut engine).expect("interceptors");
        let registry = registry.with(
            rtc::interceptor::Slot::from(14_000),
            KeyframeRequestTap::default(),
        );
        let handler = Handler {
            to_server: to_server.clone(),
            state: Arc::clone(&state),
            options: options.clone(),
            span: span.clone(),
        };
        let mut builder = PeerConnectionBuilder::new()
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(handler))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()]);
        if options.ice_tcp {
            builder = builder.with_tcp_addrs(vec!["127.0.0.1:0".to_owned()]);
        }
        let pc: Arc<dyn PeerConnection> = Arc::new(builder.build().await.expect("peer connection"));

        let mut tasks = Vec::new();
        let mut published = Vec::new();
        let mut declared = Vec::new();
        for (source, kind, suffix) in [
            (options.audio, MediaKind::Audio, "mic"),
            (options.video, MediaKind::Video, "cam"),
        ] {
            let Some(source) = source else { continue };
            let track_id = TrackId::new(format!("{name}-{suffix}"));
            let ssrc = rand::random::<u32>() | 1;
            let (track, init) =
                media::rtp_track(&format!("{name}-stream"), track_id.as_str(), kind, ssrc);
            let track = Arc::new(track);
            pc.add_transceiver_from_track(Arc::clone(&track) as Arc<dyn TrackLocal>, Some(init))
                .await
                .expect("add track");
            let packets = PacketSource::new(kind, source, track_id.as_str(), ssrc);
            let sender = send_media(
                Arc::clone(&track),
                track_id.to_string(),
                packets,
                Arc::clone(&state),
                options.record_times,
            );
            tasks.push(tokio::spawn(sender.instrument(span.clone())));
            tasks.push(tokio::spawn(count_plis(
                track,
                track_id.to_string(),
                Arc::clone(&state),
            )));
            declared.push(PublishedTrack {
                track_id: track_id.clone(),
                source: TrackSource::default_for(kind),
                muted: false,
            });
            published.push((track_id, kind));
        }

        let signaling = signaling(
            raw,
            Arc::clone(&pc),
            Arc::clone(&state),
            outbound,
            declared,
            options.provoke_glare,
        );
        tasks.push(tokio::spawn(signaling.instrument(span.clone())));
        TestPeer {
            name: name.to_owned(),
            peer_id,
            joined,
            state,
            published,
            joined_at,
            to_server,
            pc,
            tasks,
        }
    }

    /// The SDP offer of a PeerConnection (one recvonly video section) that is closed right
    /// after, so nothing answers at the candidates it names.
    pub async fn offer_only() -> String {
        struct Silent;
        impl PeerConnectionEventHandler for Silent {}
        let mut engine = MediaEngine::default();
        engine.register_default_codecs().expect("codecs");
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(engine)
            .with_handler(Arc::new(Silent))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .expect("peer connection");
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            ..Default::default()
        };
        pc.add_transceiver_from_kind(RtpCodecKind::Video, Some(init))
            .await
            .expect("transceiver");
        let offer = pc.create_offer(None).await.expect("offer");
        let sdp = offer.sdp.clone();
        pc.set_local_description(offer).await.expect("sld");
        pc.close().await.expect("close");
        sdp
    }

    /// Closes the peer's media connection without leaving the room, as a crashed client would.
    pub async fn kill_media(&self) {
        let _ = self.pc.close().await;
    }

    /// Sends a protocol message through the peer's socket.
    pub async fn send(&self, m: ClientMessage) {
        self.to_server.send(m).await.expect("signaling task alive");
    }

    /// Sends `leave` and closes the socket.
    pub async fn leave(&self) {
        self.send(ClientMessage::Leave).await;
    }

    /// The peer's observations.
    pub fn state(&self) -> std::sync::MutexGuard<'_, PeerState> {
        lock(&self.state)
    }

    /// From joining to the connection's `connected`, once connected.
    pub fn connect_time(&self) -> Option<Duration> {
        self.state()
            .connected_at
            .map(|at| at.duration_since(self.joined_at))
    }

    /// The transport (`tcp` or `udp`) of the nominated candidate pair's local candidate.
    pub async fn nominated_protocol(&self) -> Option<String> {
        use webrtc::peer_connection::{RTCStatsReportEntry, StatsSelector};
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        let pair = report.candidate_pairs().find(|p| p.nominated)?;
        // Entries are keyed `RTCLocalIceCandidate_<the pair's local candidate id>`.
        report.iter().find_map(|e| match e {
            RTCStatsReportEntry::LocalCandidate(c)
                if e.id().ends_with(&pair.local_candidate_id) =>
            {
                Some(c.protocol.to_ascii_lowercase())
            }
            _ => None,
        })
    }

    /// Packets received so far on `track_id`.
    pub fn received_count(&self, track_id: &str) -> usize {
        self.state().received.get(track_id).map_or(0, |r| r.count)
    }

    /// Keyframe requests received for an own track.
    pub fn plis(&self, track_id: &str) -> u32 {
        self.state().plis.get(track_id).copied().unwrap_or(0)
    }

    /// Asserts that every packet received on `track_id` carries the publisher's known payload
    /// byte for byte, with strictly increasing counters and sequence numbers; returns how many.
    pub fn check_received(&self, track_id: &str, publisher: &str) -> usize {
        let state = self.state();
        let r = state
            .received
            .get(track_id)
            .unwrap_or_else(|| panic!("{}: nothing received on {track_id}", self.name));
        assert_eq!(
            r.stream_id, publisher,
            "{}: the msid stream id of {track_id} is its publisher",
            self.name
        );
        let mut last: Option<(u16, u32)> = None;
        for (seq, payload) in &r.packets {
            let counter = counter_of(payload).expect("payload of at least 4 bytes");
            let expected = payload_for(track_id, counter, payload.len());
            assert_eq!(
                payload, &expected,
                "{}: payload of {track_id} #{counter} changed in transit",
                self.name
            );
            if let Some((last_seq, last_counter)) = last {
                assert!(
                    counter > last_counter,
                    "{}: {track_id} out of order: {counter} after {last_counter}",
                    self.name
                );
                assert_eq!(
                    u32::from(seq.wrapping_sub(last_seq)),
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

/// Owns the socket and the negotiation: publishes with its own offer, answers the server's
/// offers, ignores a server offer while its own is unanswered (the glare rule), trickles ICE.
async fn signaling(
    mut raw: RawClient,
    pc: Arc<dyn PeerConnection>,
    state: Arc<Mutex<PeerState>>,
    mut outbound: mpsc::Receiver<ClientMessage>,
    declared: Vec<PublishedTrack>,
    provoke_glare: bool,
) {
    let mut making_offer = false;
    let mut remote_set = false;
    let mut pending: Vec<RTCIceCandidateInit> = Vec::new();
    // With `provoke_glare`, the first offer waits for the server's first offer.
    let mut held: Option<Vec<PublishedTrack>> = None;
    if !declared.is_empty() {
        if provoke_glare {
            held = Some(declared);
        } else {
            send_offer(&mut raw, &pc, declared).await;
            making_offer = true;
        }
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
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    _ => break,
                };
                let Ok(m) = ServerMessage::parse(text.as_str()) else { continue };
                if matches!(m, ServerMessage::SdpOffer { .. }) {
                    lock(&state).first_offer_at.get_or_insert_with(Instant::now);
                }
                match &m {
                    ServerMessage::SdpAnswer { sdp } => {
                        let answer = RTCSessionDescription::answer(sdp.clone()).expect("answer");
                        pc.set_remote_description(answer).await.expect("server answer applies");
                        making_offer = false;
                        remote_set = true;
                    }
                    ServerMessage::SdpOffer { .. } if held.is_some() => {
                        // Act as if our offer had crossed this one: ignore it, then offer.
                        send_offer(&mut raw, &pc, held.take().unwrap_or_default()).await;
                        making_offer = true;
                    }
                    ServerMessage::SdpOffer { sdp } if !making_offer => {
                        let offer = RTCSessionDescription::offer(sdp.clone()).expect("offer");
                        pc.set_remote_description(offer).await.expect("server offer applies");
                        remote_set = true;
                        let answer = pc.create_answer(None).await.expect("answer");
                        pc.set_local_description(answer).await.expect("sld answer");
                        let sdp = pc.local_description().await.expect("local").sdp;
                        raw.send(&ClientMessage::SdpAnswer { sdp }).await;
                        lock(&state).first_answer_sent_at.get_or_insert_with(Instant::now);
                    }
                    ServerMessage::IceCandidate { candidate } => {
                        pending.push(media::to_rtc_candidate(candidate.clone()))
                    }
                    _ => {}
                }
                if remote_set {
                    for c in pending.drain(..) {
                        let _ = pc.add_ice_candidate(c).await;
                    }
                }
                lock(&state).messages.push(m);
            }
        }
    }
}

async fn send_offer(
    raw: &mut RawClient,
    pc: &Arc<dyn PeerConnection>,
    tracks: Vec<PublishedTrack>,
) {
    let offer = pc.create_offer(None).await.expect("offer");
    pc.set_local_description(offer).await.expect("sld");
    let sdp = pc.local_description().await.expect("local").sdp;
    raw.send(&ClientMessage::SdpOffer { sdp, tracks }).await;
}

/// Sends a source's packets on its schedule. Until negotiation binds the track, writes fail; the
/// same packets are then retried on the next tick, so a receiver sees an unbroken sequence.
async fn send_media(
    track: Arc<TrackLocalStaticRTP>,
    track_id: String,
    mut source: PacketSource,
    state: Arc<Mutex<PeerState>>,
    record_times: bool,
) {
    let mut ticker = tokio::time::interval(source.interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Vec<rtc::rtp::Packet> = Vec::new();
    loop {
        ticker.tick().await;
        if pending.is_empty() {
            pending = source.next_packets();
        }
        let mut sent = 0;
        for packet in &pending {
            let seq = packet.header.sequence_number;
            let now = Instant::now();
            if track.write_rtp(packet.clone()).await.is_err() {
                break;
            }
            sent += 1;
            let mut s = lock(&state);
            *s.sent.entry(track_id.clone()).or_default() += 1;
            if record_times {
                s.send_times.insert((track_id.clone(), seq), now);
            }
        }
        pending.drain(..sent);
    }
}

async fn count_plis(
    track: Arc<TrackLocalStaticRTP>,
    track_id: String,
    state: Arc<Mutex<PeerState>>,
) {
    loop {
        match track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                let n = packets
                    .iter()
                    .filter(|p| media::is_keyframe_request(p.as_ref()))
                    .count() as u32;
                *lock(&state).plis.entry(track_id.clone()).or_default() += n;
            }
            Some(_) => {}
            // Not bound yet (or closed): look again shortly.
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
