//! What a client sends for its media connection is checked before WebRTC sees it: an offer with
//! an unusable DTLS fingerprint or a thousand m-lines is refused with `invalid_sdp` (before, the
//! first was taken and the peer lingered ~28 s; the second got an answer with no m-line), and
//! candidates are bounded in size and number. The connection stays usable and a real call still
//! works afterwards.

use videoroom_protocol::{ClientMessage, ErrorCode, IceCandidate, ServerMessage};
use videoroom_server::sdp_check::{MAX_CANDIDATES, MAX_MEDIA_SECTIONS};
use videoroom_testkit::*;

const FINGERPRINT: &str = "sha-256 58:7C:3A:1E:91:0B:D2:5F:4E:67:09:AA:BC:12:34:56:78:9A:BC:DE:F0:11:22:33:44:55:66:77:88:99:AA:BB";

fn offer(fingerprint: &str, sections: usize) -> ClientMessage {
    let mut sdp =
        format!("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:{fingerprint}\r\n");
    for i in 0..sections {
        // Short sections: a thousand of them stay under the 64 KiB message limit.
        sdp.push_str(&format!("m=video 9 UDP/TLS/RTP/SAVPF 127\r\na=mid:{i}\r\n"));
    }
    ClientMessage::SdpOffer {
        sdp,
        tracks: Vec::new(),
    }
}

async fn error_of(c: &mut RawClient) -> (ErrorCode, String) {
    match c
        .recv_until(|m| {
            matches!(
                m,
                ServerMessage::Error { .. } | ServerMessage::SdpAnswer { .. }
            )
        })
        .await
    {
        ServerMessage::Error { code, message } => (code, message),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn unusable_fingerprints_and_huge_offers_are_refused() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut c = RawClient::connect(&url).await;
    assert!(matches!(
        c.join("hostile", "mallory").await,
        ServerMessage::Joined { .. }
    ));
    let non_hex = FINGERPRINT.replace("58:7C", "ZZ:7C");
    let short = FINGERPRINT[..FINGERPRINT.len() - 3].to_owned();
    let unknown = FINGERPRINT.replace("sha-256", "md5");
    for bad in [non_hex, short, unknown] {
        c.send(&offer(&bad, 1)).await;
        let (code, message) = error_of(&mut c).await;
        assert_eq!(code, ErrorCode::InvalidSdp, "{bad}: {message}");
        assert!(message.contains("fingerprint"), "{message}");
    }
    c.send(&offer(FINGERPRINT, 1000)).await;
    let (code, message) = error_of(&mut c).await;
    assert_eq!(code, ErrorCode::InvalidSdp);
    assert!(
        message.contains(&MAX_MEDIA_SECTIONS.to_string()),
        "{message}"
    );
    // Still in the room, still answered.
    c.send(&ClientMessage::Ping { id: 9 }).await;
    c.recv_until(|m| matches!(m, ServerMessage::Pong { id: 9 }))
        .await;
    assert_eq!(server.room_count(), 1);
}

#[tokio::test]
async fn candidates_are_bounded_in_size_and_number() {
    let server = start_server(test_config()).await;
    let mut c = RawClient::connect(&ws_url(&server)).await;
    assert!(matches!(
        c.join("hostile", "mallory").await,
        ServerMessage::Joined { .. }
    ));
    let candidate = |text: String| ClientMessage::IceCandidate {
        candidate: IceCandidate {
            candidate: text,
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        },
    };
    c.send(&candidate(format!(
        "candidate:1 1 udp 1 {} 1 typ host",
        "x".repeat(60_000)
    )))
    .await;
    let (code, message) = error_of(&mut c).await;
    assert_eq!(code, ErrorCode::InvalidCandidate);
    assert!(
        message.len() < 300,
        "the error echoes the input: {} bytes",
        message.len()
    );
    // Before an offer candidates are buffered; the buffer and the count are bounded.
    for port in 0..MAX_CANDIDATES + 5 {
        c.send(&candidate(format!(
            "candidate:1 1 udp 2130706431 127.0.0.1 {} typ host",
            40_000 + port
        )))
        .await;
    }
    let (code, message) = error_of(&mut c).await;
    assert_eq!(code, ErrorCode::InvalidCandidate);
    assert!(message.contains("too many"), "{message}");
}
