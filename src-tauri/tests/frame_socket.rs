//! The frame socket over a real loopback WebSocket: who may connect, what a frame looks like,
//! and that credit keeps at most one frame in flight per tile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use videoroom_client::media::PatternSource;
use videoroom_desktop::frames::{self, FrameHub, HEADER_LEN, PreviewGuard};

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, origin: Option<&str>) -> Result<Client, WsError> {
    let mut request = url.into_client_request()?;
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("header value"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

fn refused_with(result: Result<Client, WsError>, status: u16) {
    match result {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), status),
        Err(other) => panic!("expected HTTP {status}, got {other}"),
        Ok(_) => panic!("expected HTTP {status}, got a connection"),
    }
}

/// The next binary message within `bound`.
async fn next_frame(ws: &mut Client, bound: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + bound;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => return Some(b.to_vec()),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("socket error: {e}"),
            Ok(None) => panic!("socket closed"),
            Err(_) => return None,
        }
    }
}

struct Parsed {
    slot: u16,
    width: u16,
    height: u16,
    seq: u32,
    flags: u32,
    capture_us: u64,
    frame_number: u64,
}

fn parse(frame: &[u8]) -> Parsed {
    assert!(frame.len() >= HEADER_LEN);
    assert_eq!(frame[0], 1, "version");
    assert_eq!(frame[1], 0, "format RGBA8");
    let u16_at = |i: usize| u16::from_le_bytes([frame[i], frame[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(frame[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(frame[i..i + 8].try_into().expect("8 bytes"));
    Parsed {
        slot: u16_at(2),
        width: u16_at(4),
        height: u16_at(6),
        seq: u32_at(8),
        flags: u32_at(12),
        capture_us: u64_at(16),
        frame_number: u64_at(24),
    }
}

#[tokio::test]
async fn frames_reach_an_authorized_worker_one_credit_at_a_time() {
    let hub = Arc::new(FrameHub::default());
    let server = frames::start(Arc::clone(&hub), None)
        .await
        .expect("frame socket starts");
    assert!(server.url.starts_with("ws://127.0.0.1:"), "{}", server.url);
    let (base, token) = server.url.split_once("?token=").expect("token in url");
    assert_eq!(token.len(), 64);

    // Strangers are turned away: no token, a wrong token, another path, a web page's origin.
    refused_with(connect(base, None).await, 403);
    let wrong = format!("{base}?token={}", "0".repeat(64));
    refused_with(connect(&wrong, None).await, 403);
    let other_path = server.url.replace("/frames", "/other");
    refused_with(connect(&other_path, None).await, 404);
    refused_with(
        connect(&server.url, Some("https://evil.example")).await,
        403,
    );

    // The self view: a 640×360 pattern at 30 fps.
    let pattern = PatternSource::new(640, 360, 30).expect("pattern");
    let (_preview, local) = PreviewGuard::start(Box::new(pattern), 30, true);
    hub.set_local(Some(local));

    let mut ws = connect(&server.url, Some("tauri://localhost"))
        .await
        .expect("the app's origin connects");
    let tiles = r#"{"type":"tiles","tiles":[{"slot":5,"track":"self","w":320,"h":180},
        {"slot":6,"track":"no-such-track","w":320,"h":180},
        {"slot":7,"track":"self","w":3,"h":180}]}"#;
    ws.send(Message::text(tiles)).await.expect("send tiles");
    // Garbage is ignored, not fatal.
    ws.send(Message::text("{not json"))
        .await
        .expect("send garbage");

    let first = next_frame(&mut ws, Duration::from_secs(10))
        .await
        .expect("a first frame within 10 s");
    let h = parse(&first);
    assert_eq!((h.slot, h.width, h.height, h.seq), (5, 320, 180, 1));
    assert_eq!(first.len(), HEADER_LEN + 320 * 180 * 4);
    assert_eq!(h.flags & 1, 0, "the pattern carries a stamp");
    assert!(
        h.capture_us > 1_600_000_000_000_000,
        "capture time is wall clock"
    );
    // Not a blank tile: the pattern has many distinct colours.
    let mut colours: Vec<&[u8]> = first[HEADER_LEN..].chunks(4).step_by(97).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 50, "only {} colours", colours.len());

    // Without credit nothing more comes for a while (the credit timeout is 2 s)…
    assert!(
        next_frame(&mut ws, Duration::from_millis(1200))
            .await
            .is_none(),
        "a second frame came without credit"
    );
    // …and with credit the newest frame comes at once.
    let mut last = h.frame_number;
    for expected_seq in 2..=6 {
        ws.send(Message::text(r#"{"type":"credit","slot":5}"#))
            .await
            .expect("credit");
        let frame = next_frame(&mut ws, Duration::from_secs(5))
            .await
            .expect("a frame after credit");
        let h = parse(&frame);
        assert_eq!((h.slot, h.seq), (5, expected_seq));
        assert!(h.frame_number > last, "frame numbers increase");
        last = h.frame_number;
    }

    // Resizing the tile restarts it at the new size.
    ws.send(Message::text(
        r#"{"type":"tiles","tiles":[{"slot":5,"track":"self","w":640,"h":360}]}"#,
    ))
    .await
    .expect("resize");
    let resized = loop {
        let frame = next_frame(&mut ws, Duration::from_secs(5))
            .await
            .expect("a frame after resizing");
        if parse(&frame).width == 640 {
            break frame;
        }
        ws.send(Message::text(r#"{"type":"credit","slot":5}"#))
            .await
            .expect("credit");
    };
    assert_eq!(resized.len(), HEADER_LEN + 640 * 360 * 4);
}
