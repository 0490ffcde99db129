//! `set_view_sizes`: a subscriber that hides a video track gets no more of its packets (its
//! audio goes on), gets it back at a keyframe when it shows it again, and a message over the
//! entry limit is refused with `invalid_message`.

use std::time::Duration;
use videoroom_protocol::{
    ClientMessage, ErrorCode, MAX_VIEW_SIZES, PeerId, ServerMessage, TrackId, ViewSize,
};
use videoroom_testkit::*;

fn view(peer: &PeerId, track: &str, width: u32, height: u32) -> ClientMessage {
    ClientMessage::SetViewSizes {
        views: vec![ViewSize {
            peer_id: peer.clone(),
            track_id: TrackId::new(track),
            width,
            height,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_track_stops_and_comes_back_when_shown() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let alice = TestPeer::join(&url, "views", "alice", PeerOptions::default()).await;
    let bob = TestPeer::join(&url, "views", "bob", PeerOptions::receive_only()).await;
    wait_until(WAIT, "bob receives alice's camera", || {
        bob.received_count("alice-cam") > 10
    })
    .await;

    bob.send(view(&alice.peer_id, "alice-cam", 0, 0)).await;
    wait_until(WAIT, "the server pauses the leg", || {
        server.metrics().paused_tracks.get() == 1
    })
    .await;
    // Packets already in flight may still land; after that, nothing while audio flows on.
    let settled = bob.received_count("alice-cam");
    let mic = bob.received_count("alice-mic");
    wait_until(WAIT, "50 more audio packets", || {
        bob.received_count("alice-mic") >= mic + 50
    })
    .await;
    let during = bob.received_count("alice-cam") - settled;
    assert!(during <= 2, "{during} video packets reached a hidden track");

    bob.send(view(&alice.peer_id, "alice-cam", 640, 360)).await;
    let before = bob.received_count("alice-cam");
    wait_until(WAIT, "the camera comes back", || {
        bob.received_count("alice-cam") > before + 30
    })
    .await;
    assert_eq!(server.metrics().paused_tracks.get(), 0);
    drop(alice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_entries_are_refused() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let bob = TestPeer::join(&url, "views-limit", "bob", PeerOptions::receive_only()).await;
    let views = (0..=MAX_VIEW_SIZES)
        .map(|i| ViewSize {
            peer_id: bob.peer_id.clone(),
            track_id: TrackId::new(format!("t{i}")),
            width: 10,
            height: 10,
        })
        .collect();
    bob.send(ClientMessage::SetViewSizes { views }).await;
    wait_until(Duration::from_secs(10), "invalid_message", || {
        bob.state().saw(|m| {
            matches!(m, ServerMessage::Error { code: ErrorCode::InvalidMessage, message }
                if message.contains("at most 64"))
        })
    })
    .await;
    // Within the limit, sizes of unknown tracks are accepted quietly.
    bob.send(view(&bob.peer_id, "nobody-cam", 320, 180)).await;
    bob.send(ClientMessage::Ping { id: 7 }).await;
    wait_until(Duration::from_secs(10), "pong", || {
        bob.state()
            .saw(|m| matches!(m, ServerMessage::Pong { id: 7 }))
    })
    .await;
    let errors = bob
        .state()
        .messages
        .iter()
        .filter(|m| matches!(m, ServerMessage::Error { .. }))
        .count();
    assert_eq!(errors, 1);
}
