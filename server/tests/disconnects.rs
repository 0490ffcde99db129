//! Peers that vanish are removed: a closed WebSocket within 2 s, a media connection that never
//! connects within 30 s. Other rooms never notice.

use std::time::Duration;
use videoroom_protocol::{ClientMessage, ServerMessage};
use videoroom_testkit::*;

#[tokio::test]
async fn a_closed_websocket_is_a_leave_within_two_seconds() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut stays = RawClient::connect(&url).await;
    assert!(matches!(
        stays.join("drop", "stays").await,
        ServerMessage::Joined { .. }
    ));
    let mut elsewhere = RawClient::connect(&url).await;
    assert!(matches!(
        elsewhere.join("another-room", "elsewhere").await,
        ServerMessage::Joined { .. }
    ));
    let mut goes = RawClient::connect(&url).await;
    let ServerMessage::Joined { peer_id, .. } = goes.join("drop", "goes").await else {
        panic!("join")
    };
    stays
        .recv_until(|m| matches!(m, ServerMessage::PeerJoined { .. }))
        .await;

    let t0 = tokio::time::Instant::now();
    drop(goes); // TCP closes without a `leave` or a close frame
    let m = tokio::time::timeout(Duration::from_secs(2), stays.recv())
        .await
        .expect("peer_left within 2 s");
    assert_eq!(m, ServerMessage::PeerLeft { peer_id });
    assert!(t0.elapsed() < Duration::from_secs(2));

    // The other room saw nothing: its next message is the answer to our ping.
    elsewhere.send(&ClientMessage::Ping { id: 5 }).await;
    assert_eq!(elsewhere.recv().await, ServerMessage::Pong { id: 5 });
    // The room with one peer left is still open; the last leave closes it.
    assert_eq!(server.room_count(), 2);
    drop(stays);
    drop(elsewhere);
    wait_until(WAIT, "both rooms close", || server.room_count() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_ice_never_connects_is_removed_within_30_s() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut observer = RawClient::connect(&url).await;
    assert!(matches!(
        observer.join("ice", "observer").await,
        ServerMessage::Joined { .. }
    ));

    // A real offer from a PeerConnection that is closed at once: its candidates lead nowhere.
    let ghost_pc = TestPeer::offer_only().await;
    let mut ghost = RawClient::connect(&url).await;
    let ServerMessage::Joined { peer_id, .. } = ghost.join("ice", "ghost").await else {
        panic!("join")
    };
    observer
        .recv_until(|m| matches!(m, ServerMessage::PeerJoined { .. }))
        .await;
    ghost
        .send(&ClientMessage::SdpOffer {
            sdp: ghost_pc,
            tracks: vec![],
        })
        .await;
    let t0 = tokio::time::Instant::now();
    ghost
        .recv_until(|m| matches!(m, ServerMessage::SdpAnswer { .. }))
        .await;
    // Read the ghost's socket to its end in the background, keeping every message.
    let ghost_messages = tokio::spawn(async move {
        use futures::StreamExt;
        let mut seen = Vec::new();
        while let Some(Ok(frame)) = ghost.ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = frame
                && let Ok(m) = ServerMessage::parse(t.as_str())
            {
                seen.push(m);
            }
        }
        seen
    });

    let left = tokio::time::timeout(
        Duration::from_secs(32),
        observer.recv_until(|m| matches!(m, ServerMessage::PeerLeft { .. })),
    )
    .await
    .expect("the ghost is removed");
    assert_eq!(left, ServerMessage::PeerLeft { peer_id });
    assert!(
        t0.elapsed() <= Duration::from_secs(30),
        "removed after {:?}",
        t0.elapsed()
    );
    // The ghost is told why, and its socket is closed.
    let seen = tokio::time::timeout(WAIT, ghost_messages)
        .await
        .expect("socket closed")
        .expect("reader");
    let reason = seen
        .iter()
        .find_map(|m| match m {
            ServerMessage::Closing { reason } => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no `closing` among {seen:?}"));
    assert!(reason.contains("media connection failed"), "{reason}");
}
