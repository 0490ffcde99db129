//! ICE over TCP (RFC 6544 passive, RFC 4571 framing) through a real server on loopback: the rules
//! at the TCP port (a connection whose first frame is not a STUN check for a known peer is
//! closed), the TCP candidate's place below UDP, and a call whose only path is TCP because the
//! server advertises no UDP candidate at all.
//!
//! The peers here are webrtc-0.21 PeerConnections with an ICE-TCP listener (`with_tcp_addrs`,
//! which gives them an active TCP candidate), publishing known payloads that the receiver
//! checks byte for byte. The client engine and headless Chromium over TCP are in
//! `bot/tests/ice_tcp_netns.rs`.

use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use videoroom_protocol::{
    ClientMessage, MediaKind, PublishedTrack, ServerMessage, TrackId, TrackSource,
};
use videoroom_server::Config;
use videoroom_server::engine::io_tcp::CloseReason;
use videoroom_server::media;
use videoroom_testkit::*;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceCandidateInit,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription, RTCStatsReportEntry,
    StatsSelector,
};

/// A loopback server with ICE-TCP on a free port; `udp`: whether it advertises its UDP candidate.
fn config(udp: bool) -> Config {
    Config {
        tcp_port: Some(0),
        media_udp_candidates: udp,
        ..test_config()
    }
}

/// A STUN Binding request carrying only USERNAME (what the demux routes by).
fn stun_request(username: &str) -> Vec<u8> {
    let mut attr = Vec::new();
    attr.extend_from_slice(&0x0006u16.to_be_bytes());
    attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attr.extend_from_slice(username.as_bytes());
    while attr.len() % 4 != 0 {
        attr.push(0);
    }
    let mut m = Vec::new();
    m.extend_from_slice(&0x0001u16.to_be_bytes());
    m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    m.extend_from_slice(&rand::random::<[u8; 12]>());
    m.extend_from_slice(&attr);
    m
}

fn framed(datagram: &[u8]) -> Vec<u8> {
    let mut out = (datagram.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(datagram);
    out
}

/// Writes `bytes` on a new connection and waits (at most 5 s) for the server to close it.
/// Returns what the server sent before closing.
async fn closed_after(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(bytes).await.expect("write");
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got)).await;
    match read.expect("the server closes the connection within 5 s") {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_do_not_start_with_a_known_stun_check_are_closed() {
    let server = start_server(config(true)).await;
    let tcp = server.tcp_addr().expect("ICE-TCP is on");
    assert!(tcp.ip().is_loopback() && tcp.port() != 0, "{tcp}");

    // A DTLS record first.
    let dtls = [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(closed_after(tcp, &framed(&dtls)).await.is_empty());
    // A well-formed check for a ufrag no peer has (the room is empty: no peer at all).
    assert!(
        closed_after(tcp, &framed(&stun_request("nobody:remote")))
            .await
            .is_empty()
    );
    // A frame longer than any datagram.
    assert!(closed_after(tcp, &2000u16.to_be_bytes()).await.is_empty());
    // Plain text (an HTTP request at the wrong port): "GE" announces an 18245-byte frame.
    assert!(
        closed_after(tcp, b"GET / HTTP/1.1\r\n\r\n")
            .await
            .is_empty()
    );

    // A peer exists now; a check with a guessed ufrag still closes, and the peer's ufrag from its
    // answer passes the demux (no close) even though the password is never checked here.
    let mut raw = RawClient::connect(&ws_url(&server)).await;
    let joined = raw.join("tcp-rules", "prober").await;
    assert!(matches!(joined, ServerMessage::Joined { .. }), "{joined:?}");
    raw.send(&ClientMessage::SdpOffer {
        sdp: TestPeer::offer_only().await,
        tracks: Vec::new(),
    })
    .await;
    let answer = raw
        .recv_until(|m| matches!(m, ServerMessage::SdpAnswer { .. }))
        .await;
    let ServerMessage::SdpAnswer { sdp } = answer else {
        unreachable!()
    };
    let ufrag = sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("the answer has an ice-ufrag")
        .trim()
        .to_owned();
    assert!(
        closed_after(tcp, &framed(&stun_request("guessed:remote")))
            .await
            .is_empty()
    );
    let mut c = TcpStream::connect(tcp).await.expect("connect");
    c.write_all(&framed(&stun_request(&format!("{ufrag}:remote"))))
        .await
        .expect("write");
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(500), c.read(&mut byte)).await;
    assert!(
        read.is_err(),
        "a check for a known ufrag keeps the connection open (the core drops the bad password)"
    );
    drop(c);

    wait_until(WAIT, "the server counted the closes", || {
        let s = server.tcp_stats();
        s.closed(CloseReason::NotStun) == 1
            && s.closed(CloseReason::Refused) == 2
            && s.closed(CloseReason::BadFrame) == 2
            && s.closed(CloseReason::PeerClosed) == 1
    })
    .await;
    let s = server.tcp_stats();
    assert_eq!(s.accepted, 6, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tcp_candidate_is_passive_and_ranks_below_udp() {
    let server = start_server(config(true)).await;
    let mut raw = RawClient::connect(&ws_url(&server)).await;
    raw.join("tcp-priority", "prober").await;
    raw.send(&ClientMessage::SdpOffer {
        sdp: TestPeer::offer_only().await,
        tracks: Vec::new(),
    })
    .await;
    let mut candidates = Vec::new();
    while candidates.len() < 2 {
        if let ServerMessage::IceCandidate { candidate } = raw
            .recv_until(|m| matches!(m, ServerMessage::IceCandidate { .. }))
            .await
        {
            candidates.push(candidate.candidate);
        }
    }
    // `candidate:<foundation> <component> <transport> <priority> <address> <port> typ host ...`
    let field = |c: &str, i: usize| c.split(' ').nth(i).unwrap_or_default().to_owned();
    let udp = candidates
        .iter()
        .find(|c| field(c, 2).eq_ignore_ascii_case("udp"))
        .expect("a UDP candidate");
    let tcp = candidates
        .iter()
        .find(|c| field(c, 2).eq_ignore_ascii_case("tcp"))
        .expect("a TCP candidate");
    assert!(tcp.contains("tcptype passive"), "{tcp}");
    assert_eq!(
        field(tcp, 5),
        server.tcp_addr().expect("tcp").port().to_string()
    );
    let priority = |c: &str| field(c, 3).parse::<u32>().expect("priority");
    assert!(
        priority(tcp) < priority(udp),
        "RFC 6544: a passive TCP host candidate ranks below UDP: {tcp} vs {udp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_works_over_ice_tcp_alone() {
    let server = start_server(config(false)).await;
    let url = ws_url(&server);
    let publisher = TcpPeer::join(&url, "tcp-only", "pub", true).await;
    let receiver = TcpPeer::join(&url, "tcp-only", "sub", false).await;

    let video = format!("{}-cam", publisher.name);
    let audio = format!("{}-mic", publisher.name);
    wait_until(WAIT, "the receiver gets 100 video packets over TCP", || {
        receiver.received(&video) >= 100 && receiver.received(&audio) >= 50
    })
    .await;
    for track in [&video, &audio] {
        receiver.check_known_payloads(track, publisher.peer_id.as_str());
    }

    // The only way in was TCP: the nominated pair on both clients is TCP, and the server's ICE-TCP
    // side carried the media.
    for peer in [&publisher, &receiver] {
        assert_eq!(
            peer.nominated_protocol().await.as_deref(),
            Some("tcp"),
            "{}: the selected pair is TCP",
            peer.name
        );
    }
    let s = server.tcp_stats();
    assert!(s.frames_in > 150 && s.frames_out > 150, "{s:?}");
    assert_eq!(s.frames_dropped, 0, "{s:?}");
    let metrics = server.metrics();
    wait_until(WAIT, "/metrics counts the forwarded packets", || {
        metrics.rtp_packets_out.get() >= 150
    })
    .await;

    for peer in [&publisher, &receiver] {
        let ms = peer.connect_time().expect("connected").as_secs_f64() * 1000.0;
        // Printed for the record (`--nocapture`): the TCP path has no hold-back in these peers.
        println!("{}: join to connected over ICE-TCP: {ms:.0} ms", peer.name);
        assert!(ms < 5000.0, "{}: {ms:.0} ms", peer.name);
    }
}

// ---- A webrtc-0.21 peer with an ICE-TCP listener ----

/// Packets as (sequence number, payload), in arrival order.
type Packets = Vec<(u16, Vec<u8>)>;

#[derive(Default)]
struct State {
    connected_at: Option<Instant>,
    /// Track id → (publisher's stream id, packets).
    received: HashMap<String, (String, Packets)>,
}

fn lock_state(s: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

struct TcpPeer {
    name: String,
    peer_id: videoroom_protocol::PeerId,
    joined_at: Instant,
    state: Arc<Mutex<State>>,
    pc: Arc<dyn PeerConnection>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TcpPeer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let pc = Arc::clone(&self.pc);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

struct Handler {
    to_server: tokio::sync::mpsc::Sender<ClientMessage>,
    state: Arc<Mutex<State>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let candidate = media::from_rtc_candidate(init);
            let _ = self
                .to_server
                .send(ClientMessage::IceCandidate { candidate })
                .await;
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            lock_state(&self.state)
                .connected_at
                .get_or_insert(Instant::now());
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        tokio::spawn(record(track, Arc::clone(&self.state)));
    }
}

async fn record(track: Arc<dyn TrackRemote>, state: Arc<Mutex<State>>) {
    let track_id = track.track_id().await;
    let stream_id = track.stream_id().await;
    lock_state(&state)
        .received
        .entry(track_id.clone())
        .or_insert_with(|| (stream_id, Vec::new()));
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(p) => {
                if let Some((_, packets)) = lock_state(&state).received.get_mut(&track_id) {
                    packets.push((p.header.sequence_number, p.payload.to_vec()));
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

impl TcpPeer {
    async fn join(url: &str, room: &str, name: &str, publish: bool) -> TcpPeer {
        let mut raw = RawClient::connect(url).await;
        let joined_at = Instant::now();
        let joined = raw.join(room, name).await;
        let ServerMessage::Joined { peer_id, .. } = joined else {
            panic!("{name}: join refused: {joined:?}");
        };
        let state = Arc::new(Mutex::new(State::default()));
        let (to_server, outbound) = tokio::sync::mpsc::channel(256);
        let (engine, registry) = media::engine_and_interceptors().expect("media engine");
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_media_engine(engine)
                .with_interceptor_registry(registry)
                .with_setting_engine(media::settings())
                .with_handler(Arc::new(Handler {
                    to_server,
                    state: Arc::clone(&state),
                }))
                .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
                .with_tcp_addrs(vec!["127.0.0.1:0".to_owned()])
                .build()
                .await
                .expect("peer connection"),
        );
        let mut tasks = Vec::new();
        let mut declared = Vec::new();
        if publish {
            for (kind, suffix) in [(MediaKind::Audio, "mic"), (MediaKind::Video, "cam")] {
                let track_id = TrackId::new(format!("{name}-{suffix}"));
                let ssrc = rand::random::<u32>() | 1;
                let (track, init) =
                    media::rtp_track(&format!("{name}-stream"), track_id.as_str(), kind, ssrc);
                let track = Arc::new(track);
                pc.add_transceiver_from_track(
                    Arc::clone(&track) as Arc<dyn TrackLocal>,
                    Some(init),
                )
                .await
                .expect("add track");
                let source = PacketSource::new(kind, Source::Known, track_id.as_str(), ssrc);
                tasks.push(tokio::spawn(send_media(track, source)));
                declared.push(PublishedTrack {
                    track_id,
                    source: TrackSource::default_for(kind),
                    muted: false,
                });
            }
        }
        tasks.push(tokio::spawn(signaling(
            raw,
            Arc::clone(&pc),
            outbound,
            declared,
        )));
        TcpPeer {
            name: name.to_owned(),
            peer_id,
            joined_at,
            state,
            pc,
            tasks,
        }
    }

    fn received(&self, track_id: &str) -> usize {
        lock_state(&self.state)
            .received
            .get(track_id)
            .map_or(0, |(_, p)| p.len())
    }

    fn connect_time(&self) -> Option<Duration> {
        lock_state(&self.state)
            .connected_at
            .map(|at| at.duration_since(self.joined_at))
    }

    /// Every packet of `track_id` carries the publisher's known payload, in order.
    fn check_known_payloads(&self, track_id: &str, publisher: &str) {
        let state = lock_state(&self.state);
        let (stream_id, packets) = state.received.get(track_id).expect("track received");
        assert_eq!(stream_id, publisher);
        let mut last = None;
        for (seq, payload) in packets {
            let counter = counter_of(payload).expect("a counter");
            assert_eq!(payload, &payload_for(track_id, counter, payload.len()));
            if let Some((last_seq, last_counter)) = last {
                assert!(counter > last_counter, "{track_id}: out of order");
                assert_eq!(
                    u32::from(u16::wrapping_sub(*seq, last_seq)),
                    counter - last_counter
                );
            }
            last = Some((*seq, counter));
        }
    }

    /// The transport of the nominated pair's local candidate (`tcp` or `udp`).
    async fn nominated_protocol(&self) -> Option<String> {
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
}

/// Publishes its own offer, answers the server's offers, trickles ICE both ways.
async fn signaling(
    mut raw: RawClient,
    pc: Arc<dyn PeerConnection>,
    mut outbound: tokio::sync::mpsc::Receiver<ClientMessage>,
    declared: Vec<PublishedTrack>,
) {
    let mut making_offer = false;
    let mut remote_set = false;
    let mut pending: Vec<RTCIceCandidateInit> = Vec::new();
    if !declared.is_empty() {
        let offer = pc.create_offer(None).await.expect("offer");
        pc.set_local_description(offer).await.expect("sld");
        let sdp = pc.local_description().await.expect("local").sdp;
        raw.send(&ClientMessage::SdpOffer {
            sdp,
            tracks: declared,
        })
        .await;
        making_offer = true;
    }
    loop {
        tokio::select! {
            out = outbound.recv() => match out {
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
                match m {
                    ServerMessage::SdpAnswer { sdp } => {
                        let answer = RTCSessionDescription::answer(sdp).expect("answer");
                        pc.set_remote_description(answer).await.expect("answer applies");
                        making_offer = false;
                        remote_set = true;
                    }
                    ServerMessage::SdpOffer { sdp } if !making_offer => {
                        let offer = RTCSessionDescription::offer(sdp).expect("offer");
                        pc.set_remote_description(offer).await.expect("offer applies");
                        remote_set = true;
                        let answer = pc.create_answer(None).await.expect("answer");
                        pc.set_local_description(answer).await.expect("sld");
                        let sdp = pc.local_description().await.expect("local").sdp;
                        raw.send(&ClientMessage::SdpAnswer { sdp }).await;
                    }
                    ServerMessage::IceCandidate { candidate } => {
                        pending.push(media::to_rtc_candidate(candidate));
                    }
                    _ => {}
                }
                if remote_set {
                    for c in pending.drain(..) {
                        let _ = pc.add_ice_candidate(c).await;
                    }
                }
            }
        }
    }
}

/// Sends a source's packets on its schedule, retrying the same packets until the track is bound.
async fn send_media(track: Arc<TrackLocalStaticRTP>, mut source: PacketSource) {
    let mut ticker = tokio::time::interval(source.interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending = Vec::new();
    loop {
        ticker.tick().await;
        if pending.is_empty() {
            pending = source.next_packets();
        }
        let mut sent = 0;
        for packet in &pending {
            if track.write_rtp(packet.clone()).await.is_err() {
                break;
            }
            sent += 1;
        }
        pending.drain(..sent);
    }
}
