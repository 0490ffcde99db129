//! Bad input gets a clear error and the connection stays usable; oversized frames close with 1009.

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use videoroom_protocol::{ClientMessage, ErrorCode, IceCandidate, ServerMessage, TrackId};
use videoroom_testkit::*;

async fn expect_error(client: &mut RawClient, code: ErrorCode) -> String {
    match client.recv().await {
        ServerMessage::Error { code: got, message } => {
            assert_eq!(got, code, "{message}");
            assert!(!message.is_empty());
            message
        }
        other => panic!("expected error {code:?}, got {other:?}"),
    }
}

/// The connection still answers: a ping gets its pong.
async fn still_usable(client: &mut RawClient) {
    client.send(&ClientMessage::Ping { id: 99 }).await;
    assert_eq!(client.recv().await, ServerMessage::Pong { id: 99 });
}

async fn expect_close(client: &mut RawClient, code: CloseCode) {
    loop {
        let frame = tokio::time::timeout(WAIT, client.ws.next())
            .await
            .expect("close within bound");
        match frame {
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!(f.code, code, "close reason: {}", f.reason);
                return;
            }
            Some(Ok(Message::Close(None))) => panic!("closed without a code, wanted {code:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error instead of close {code:?}: {e}"),
            None => panic!("socket ended without close frame, wanted {code:?}"),
        }
    }
}

#[tokio::test]
async fn malformed_unknown_and_invalid_messages_get_errors() {
    let server = start_server(test_config()).await;
    let mut c = RawClient::connect(&ws_url(&server)).await;
    c.send_text("{not json").await;
    expect_error(&mut c, ErrorCode::MalformedMessage).await;
    c.send_text(r#"{"no_type": true}"#).await;
    expect_error(&mut c, ErrorCode::MalformedMessage).await;
    c.send_text(r#"{"type": "teleport"}"#).await;
    let m = expect_error(&mut c, ErrorCode::UnknownMessageType).await;
    assert!(m.contains("teleport"), "{m}");
    c.send_text(r#"{"type": "join", "room": "r"}"#).await;
    expect_error(&mut c, ErrorCode::InvalidMessage).await;
    c.send_binary(vec![1, 2, 3]).await;
    expect_error(&mut c, ErrorCode::MalformedMessage).await;
    still_usable(&mut c).await;
    // And the connection can still join.
    assert!(matches!(
        c.join("after-errors", "ada").await,
        ServerMessage::Joined { .. }
    ));
}

#[tokio::test]
async fn messages_in_the_wrong_state_get_invalid_state() {
    let server = start_server(test_config()).await;
    let mut c = RawClient::connect(&ws_url(&server)).await;
    for m in [
        ClientMessage::SdpOffer {
            sdp: "v=0".into(),
            tracks: vec![],
        },
        ClientMessage::SdpAnswer { sdp: "v=0".into() },
        ClientMessage::UpdateTrack {
            track_id: TrackId::new("x"),
            muted: true,
        },
    ] {
        c.send(&m).await;
        let msg = expect_error(&mut c, ErrorCode::InvalidState).await;
        assert!(msg.contains("join"), "{msg}");
    }
    assert!(matches!(
        c.join("state", "ada").await,
        ServerMessage::Joined { .. }
    ));
    c.send(&join_message("state", "ada again")).await;
    expect_error(&mut c, ErrorCode::InvalidState).await;
    // An answer with no server offer outstanding.
    c.send(&ClientMessage::SdpAnswer {
        sdp: "v=0\r\n".into(),
    })
    .await;
    expect_error(&mut c, ErrorCode::InvalidState).await;
    // Muting a track one does not publish.
    c.send(&ClientMessage::UpdateTrack {
        track_id: TrackId::new("not-mine"),
        muted: true,
    })
    .await;
    expect_error(&mut c, ErrorCode::InvalidTrack).await;
    still_usable(&mut c).await;
}

#[tokio::test]
async fn invalid_sdp_and_candidates_keep_the_peer_in_the_room() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut observer = RawClient::connect(&url).await;
    assert!(matches!(
        observer.join("sdp", "observer").await,
        ServerMessage::Joined { .. }
    ));
    let mut c = RawClient::connect(&url).await;
    let ServerMessage::Joined { peer_id, .. } = c.join("sdp", "ada").await else {
        panic!("join")
    };
    c.send(&ClientMessage::SdpOffer {
        sdp: "this is not sdp".into(),
        tracks: vec![],
    })
    .await;
    expect_error(&mut c, ErrorCode::InvalidSdp).await;
    c.send(&ClientMessage::SdpOffer {
        sdp: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
            .into(),
        tracks: vec![],
    })
    .await;
    expect_error(&mut c, ErrorCode::InvalidSdp).await;
    // A track id that cannot be an msid.
    c.send(&ClientMessage::SdpOffer {
        sdp: "v=0\r\n".into(),
        tracks: vec![videoroom_protocol::PublishedTrack {
            track_id: TrackId::new("has space"),
            source: videoroom_protocol::TrackSource::Camera,
            muted: false,
        }],
    })
    .await;
    expect_error(&mut c, ErrorCode::InvalidTrack).await;
    still_usable(&mut c).await;
    // Still in the room: a name change reaches the observer.
    c.send(&ClientMessage::UpdatePeer {
        display_name: Some("Ada L.".into()),
        metadata: None,
    })
    .await;
    let m = observer
        .recv_until(|m| {
            matches!(
                m,
                ServerMessage::PeerUpdated { .. } | ServerMessage::PeerLeft { .. }
            )
        })
        .await;
    match m {
        ServerMessage::PeerUpdated { peer } => {
            assert_eq!(peer.peer_id, peer_id);
            assert_eq!(peer.display_name, "Ada L.");
        }
        other => panic!("the peer must stay in the room, got {other:?}"),
    }
    // A candidate before any offer is kept for later; a bad display name is refused.
    c.send(&ClientMessage::IceCandidate {
        candidate: IceCandidate {
            candidate: "candidate:garbage".into(),
            sdp_mid: None,
            sdp_mline_index: Some(0),
            username_fragment: None,
        },
    })
    .await;
    c.send(&ClientMessage::UpdatePeer {
        display_name: Some("bad\u{1}name".into()),
        metadata: None,
    })
    .await;
    // (The peer's own `peer_updated` for its earlier rename comes first.)
    let m = c
        .recv_until(|m| matches!(m, ServerMessage::Error { .. }))
        .await;
    assert!(
        matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::InvalidDisplayName,
                ..
            }
        ),
        "{m:?}"
    );
    still_usable(&mut c).await;
}

#[tokio::test]
async fn oversized_messages_close_with_1009() {
    let mut config = test_config();
    config.max_message_bytes = 4096;
    let server = start_server(config).await;
    let url = ws_url(&server);
    // Just over the limit.
    let mut c = RawClient::connect(&url).await;
    let big = format!(r#"{{"type":"ping","id":1,"pad":"{}"}}"#, "x".repeat(4096));
    c.send_text(&big).await;
    expect_close(&mut c, CloseCode::Size).await;
    // Far over the limit, and after joining.
    let mut c = RawClient::connect(&url).await;
    assert!(matches!(
        c.join("big", "ada").await,
        ServerMessage::Joined { .. }
    ));
    let huge = format!(r#"{{"type":"sdp_offer","sdp":"{}"}}"#, "v".repeat(1 << 20));
    c.send_text(&huge).await;
    expect_close(&mut c, CloseCode::Size).await;
    // A message at the limit is fine.
    let mut c = RawClient::connect(&url).await;
    let pad = 4096 - r#"{"type":"ping","id":2,"pad":""}"#.len();
    c.send_text(&format!(
        r#"{{"type":"ping","id":2,"pad":"{}"}}"#,
        "x".repeat(pad)
    ))
    .await;
    assert_eq!(c.recv().await, ServerMessage::Pong { id: 2 });
}
