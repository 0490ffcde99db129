//! HTTP and WebSocket hardening: connections that never finish their HTTP request are timed out
//! and counted against `--max-connections` without stopping joins; WebSocket frames that are not
//! UTF-8 text or break the protocol get close codes 1007 and 1002; an `error` quotes only a
//! short excerpt of what the client sent.

use futures::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{
    CloseCode, Control as OpCtl, Data as OpData, OpCode,
};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use videoroom_protocol::{ClientMessage, ErrorCode, ServerMessage, TrackId};
use videoroom_server::Config;
use videoroom_testkit::*;

const HEADER_TIMEOUT: Duration = Duration::from_millis(1000);
const IDLE_TIMEOUT: Duration = Duration::from_millis(1500);

fn short_timeouts() -> Config {
    let mut config = test_config();
    config.http_header_timeout = HEADER_TIMEOUT;
    config.http_idle_timeout = IDLE_TIMEOUT;
    config
}

/// Waits (at most `bound`) until the server closes `stream`: end of file or a reset.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // a response (e.g. 408/400) before the close
        }
    }
}

async fn metric(server: &videoroom_server::RunningServer, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{}/metrics", server.local_addr()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_requests_do_not_stop_joins_and_are_closed_in_time() {
    // Timeouts long enough that accepting 300 connections on a busy machine ends before the
    // first of them times out (so all 300 are seen counted at once).
    const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
    const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
    let mut config = test_config();
    config.http_header_timeout = HEADER_TIMEOUT;
    config.http_idle_timeout = IDLE_TIMEOUT;
    let server = start_server(config).await;
    let addr = server.local_addr();
    let opened = Instant::now();
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        match i % 3 {
            // Half a request: the headers never end.
            0 => stream
                .write_all(b"GET /ws HTTP/1.1\r\nHost: videoroom\r\nUpgrade: websocket\r\n")
                .await
                .expect("write"),
            // A few bytes of the request line.
            1 => stream.write_all(b"GE").await.expect("write"),
            // Nothing at all.
            _ => {}
        }
        idle.push(stream);
    }
    // Counted like WebSockets, once the server has accepted them all.
    let mut open = server.open_connections();
    while open < 300 && opened.elapsed() < HEADER_TIMEOUT - Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        open = server.open_connections();
    }
    assert!(open >= 300, "{open} connections hold a slot");

    // A real join still goes through, at once.
    let t0 = Instant::now();
    let mut client = RawClient::connect(&ws_url(&server)).await;
    assert!(matches!(
        client.join("busy", "ada").await,
        ServerMessage::Joined { .. }
    ));
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "join took {:?} next to 300 idle connections",
        t0.elapsed()
    );

    // Every idle connection is closed within the header-read timeout (plus scheduling slack).
    let bound = HEADER_TIMEOUT + Duration::from_secs(5);
    for (i, stream) in idle.iter_mut().enumerate() {
        let left = bound.saturating_sub(opened.elapsed());
        assert!(
            closed_within(stream, left).await,
            "idle connection {i} still open {:?} after it was opened",
            opened.elapsed()
        );
    }
    assert!(
        metric(&server, "videoroom_connections_timed_out_total").await >= 300.0,
        "every idle connection is counted"
    );
    // Their slots are free again: the WebSocket (and perhaps the metrics request) remain.
    wait_until(WAIT, "the idle connections' slots are free", || {
        server.open_connections() <= 2
    })
    .await;
    assert!(metric(&server, "videoroom_open_connections").await >= 1.0);

    // The WebSocket is not an idle HTTP connection: it outlives both timeouts.
    tokio::time::sleep(IDLE_TIMEOUT + Duration::from_millis(500)).await;
    client.send(&ClientMessage::Ping { id: 7 }).await;
    assert_eq!(
        client
            .recv_until(|m| matches!(m, ServerMessage::Pong { .. }))
            .await,
        ServerMessage::Pong { id: 7 }
    );
}

#[tokio::test]
async fn a_connection_that_stalls_after_a_request_is_closed_when_idle() {
    let mut config = short_timeouts();
    // Long enough that only the idle timeout can close it.
    config.http_header_timeout = Duration::from_secs(30);
    let server = start_server(config).await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let t0 = Instant::now();
    stream.write_all(b"GET /hea").await.expect("write");
    assert!(closed_within(&mut stream, IDLE_TIMEOUT + Duration::from_secs(5)).await);
    assert!(
        t0.elapsed() >= IDLE_TIMEOUT - Duration::from_millis(100),
        "closed after {:?}, before the idle timeout",
        t0.elapsed()
    );
}

#[tokio::test]
async fn open_connections_count_against_max_connections() {
    let mut config = short_timeouts();
    config.max_connections = 3;
    let server = start_server(config).await;
    let url = ws_url(&server);
    // Two WebSockets keep the slots their connections took: no second slot for the upgrade.
    let mut a = RawClient::connect(&url).await;
    let mut b = RawClient::connect(&url).await;
    assert!(matches!(
        a.join("full", "a").await,
        ServerMessage::Joined { .. }
    ));
    assert!(matches!(
        b.join("full", "b").await,
        ServerMessage::Joined { .. }
    ));
    // A connection that sends nothing takes the third.
    let mut silent = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    wait_until(WAIT, "the silent connection holds a slot", || {
        server.open_connections() == 3
    })
    .await;
    let mut refused = TcpStream::connect(server.local_addr())
        .await
        .expect("the kernel accepts");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, refused.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("too many connections"),
        "{answer:?}"
    );
    assert!(tokio_tungstenite::connect_async(&url).await.is_err());
    assert!(server.metrics().connections_refused.get() >= 2);

    // Once the silent one is timed out, its slot takes a new participant.
    assert!(closed_within(&mut silent, HEADER_TIMEOUT + Duration::from_secs(5)).await);
    let mut c = RawClient::connect(&url).await;
    assert!(matches!(
        c.join("full", "c").await,
        ServerMessage::Joined { .. }
    ));
}

/// Reads until the server's close frame; returns its code.
async fn close_code(client: &mut RawClient) -> CloseCode {
    loop {
        let frame = tokio::time::timeout(WAIT, client.ws.next())
            .await
            .expect("close within bound");
        match frame {
            Some(Ok(Message::Close(Some(f)))) => return f.code,
            Some(Ok(Message::Close(None))) => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error instead of a close frame: {e}"),
            None => panic!("socket ended without a close frame"),
        }
    }
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    for payload in [vec![0xc3, 0x28], b"{\"type\":\"ping\"}\xff".to_vec()] {
        let mut c = RawClient::connect(&url).await;
        let frame = Frame::message(payload, OpCode::Data(OpData::Text), true);
        c.ws.send(Message::Frame(frame)).await.expect("send");
        assert_eq!(close_code(&mut c).await, CloseCode::Invalid);
    }
    // Also when the bad byte is split across the fragments of one message, after a join.
    let mut c = RawClient::connect(&url).await;
    assert!(matches!(
        c.join("utf8", "ada").await,
        ServerMessage::Joined { .. }
    ));
    let first = Frame::message(vec![b'{', 0xe2, 0x82], OpCode::Data(OpData::Text), false);
    let rest = Frame::message(vec![b'}'], OpCode::Data(OpData::Continue), true);
    c.ws.send(Message::Frame(first)).await.expect("send");
    c.ws.send(Message::Frame(rest)).await.expect("send");
    assert_eq!(close_code(&mut c).await, CloseCode::Invalid);
}

#[tokio::test]
async fn protocol_violations_close_with_1002() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);

    // An unmasked frame from the client, written on the socket by hand.
    let mut c = RawClient::connect(&url).await;
    let MaybeTlsStream::Plain(tcp) = c.ws.get_mut() else {
        panic!("plain TCP")
    };
    tcp.write_all(&[0x81, 0x02, b'h', b'i'])
        .await
        .expect("write");
    assert_eq!(close_code(&mut c).await, CloseCode::Protocol);

    let reserved_bits = {
        let mut f = Frame::message(b"{}".to_vec(), OpCode::Data(OpData::Text), true);
        f.header_mut().rsv1 = true;
        f
    };
    let fragmented_ping = Frame::from_payload(
        FrameHeader {
            is_final: false,
            opcode: OpCode::Control(OpCtl::Ping),
            ..FrameHeader::default()
        },
        b"hi".to_vec().into(),
    );
    let stray_continuation = Frame::message(b"x".to_vec(), OpCode::Data(OpData::Continue), true);
    let unknown_opcode = Frame::message(b"x".to_vec(), OpCode::Data(OpData::Reserved(3)), true);
    let big_ping = Frame::ping(vec![0u8; 126]);
    for (what, frame) in [
        ("reserved bits", reserved_bits),
        ("fragmented ping", fragmented_ping),
        ("stray continuation", stray_continuation),
        ("unknown opcode", unknown_opcode),
        ("control frame over 125 bytes", big_ping),
    ] {
        let mut c = RawClient::connect(&url).await;
        c.ws.send(Message::Frame(frame)).await.expect("send");
        assert_eq!(close_code(&mut c).await, CloseCode::Protocol, "{what}");
    }
}

async fn short_error(client: &mut RawClient, code: ErrorCode) -> String {
    let m = client
        .recv_until(|m| matches!(m, ServerMessage::Error { .. }))
        .await;
    let ServerMessage::Error { code: got, message } = m else {
        unreachable!()
    };
    assert_eq!(got, code, "{message}");
    assert!(
        message.len() < 200,
        "an error of {} bytes: {message}",
        message.len()
    );
    message
}

#[tokio::test]
async fn errors_echo_only_a_short_prefix_of_the_input() {
    let server = start_server(test_config()).await;
    let mut c = RawClient::connect(&ws_url(&server)).await;
    let huge = "q".repeat(60 * 1024);
    c.send_text(&format!(r#"{{"type":"{huge}"}}"#)).await;
    let message = short_error(&mut c, ErrorCode::UnknownMessageType).await;
    assert!(
        message.contains("qqqq") && message.contains('…'),
        "{message}"
    );
    c.send_text(&format!(
        r#"{{"type":"update_track","track_id":"t","muted":"{huge}"}}"#
    ))
    .await;
    short_error(&mut c, ErrorCode::InvalidMessage).await;
    c.send_text(&format!(r#"{{"type":"join","{huge}":1}}"#))
        .await;
    short_error(&mut c, ErrorCode::InvalidMessage).await;

    // After joining: ids the room and the media endpoint quote back.
    assert!(matches!(
        c.join("echo", "ada").await,
        ServerMessage::Joined { .. }
    ));
    c.send(&ClientMessage::UpdateTrack {
        track_id: TrackId::new(huge.clone()),
        muted: true,
    })
    .await;
    short_error(&mut c, ErrorCode::InvalidTrack).await;
    c.send_text(&format!(
        r#"{{"type":"moderate","peer_id":"{huge}","action":"mute_microphone"}}"#
    ))
    .await;
    let m = c
        .recv_until(|m| matches!(m, ServerMessage::Error { .. }))
        .await;
    let ServerMessage::Error { message, .. } = m else {
        unreachable!()
    };
    assert!(message.len() < 200, "{message}");
    c.send(&ClientMessage::SdpOffer {
        sdp: format!("v=0\r\n{huge}\r\n"),
        tracks: vec![],
    })
    .await;
    short_error(&mut c, ErrorCode::InvalidSdp).await;
    // The connection is still usable.
    c.send(&ClientMessage::Ping { id: 1 }).await;
    assert_eq!(
        c.recv_until(|m| matches!(m, ServerMessage::Pong { .. }))
            .await,
        ServerMessage::Pong { id: 1 }
    );
}

#[tokio::test]
async fn shutdown_does_not_wait_for_half_sent_requests() {
    // Default timeouts (10 s, 60 s): shutdown must not wait for them.
    let server = start_server(test_config()).await;
    let addr = server.local_addr();
    let mut idle = Vec::new();
    for i in 0..10 {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        if i % 2 == 0 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: v")
                .await
                .expect("write");
        }
        idle.push(stream);
    }
    wait_until(WAIT, "the server holds them", || {
        server.open_connections() == 10
    })
    .await;
    let t0 = Instant::now();
    assert!(server.shutdown(Duration::from_secs(4)).await, "drained");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t0.elapsed()
    );
    for stream in &mut idle {
        assert!(closed_within(stream, Duration::from_secs(1)).await);
    }
}
