//! ICE over TCP (RFC 6544 passive, RFC 4571 framing) through a real server on loopback: the rules
//! at the TCP port (a connection whose first frame is not a STUN check for a known peer is
//! closed), the TCP candidate's place below UDP, and a call whose only path is TCP because the
//! server advertises no UDP candidate at all.
//!
//! The peers here are testkit peers with an ICE-TCP listener (`PeerOptions::ice_tcp`, which
//! gives them an active TCP candidate), publishing known payloads that the receiver checks byte
//! for byte. The client engine and headless Chromium over TCP are in
//! `bot/tests/ice_tcp_netns.rs`.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use videoroom_protocol::{ClientMessage, ServerMessage};
use videoroom_server::Config;
use videoroom_server::engine::io_tcp::CloseReason;
use videoroom_testkit::*;

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
    let tcp = |options: PeerOptions| PeerOptions {
        ice_tcp: true,
        ..options
    };
    let publisher = TestPeer::join(&url, "tcp-only", "pub", tcp(PeerOptions::default())).await;
    let receiver = TestPeer::join(&url, "tcp-only", "sub", tcp(PeerOptions::receive_only())).await;

    let video = format!("{}-cam", publisher.name);
    let audio = format!("{}-mic", publisher.name);
    wait_until(WAIT, "the receiver gets 100 video packets over TCP", || {
        receiver.received_count(&video) >= 100 && receiver.received_count(&audio) >= 50
    })
    .await;
    for track in [&video, &audio] {
        receiver.check_received(track, publisher.peer_id.as_str());
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
    // The ICE-TCP counters reach /metrics too (exported by the media worker after every turn).
    wait_until(
        WAIT,
        "/metrics counts the ICE-TCP connections and frames",
        || {
            let text = metrics.render();
            let value = |event: &str| {
                text.lines().find_map(|l| {
                    l.strip_prefix(&format!("videoroom_ice_tcp_total{{event=\"{event}\"}} "))
                        .and_then(|v| v.parse::<u64>().ok())
                })
            };
            value("accepted").is_some_and(|v| v >= 2) && value("frames_in").is_some_and(|v| v > 150)
        },
    )
    .await;

    for peer in [&publisher, &receiver] {
        let ms = peer.connect_time().expect("connected").as_secs_f64() * 1000.0;
        // Printed for the record (`--nocapture`): the TCP path has no hold-back in these peers.
        println!("{}: join to connected over ICE-TCP: {ms:.0} ms", peer.name);
        assert!(ms < 5000.0, "{}: {ms:.0} ms", peer.name);
    }
}
