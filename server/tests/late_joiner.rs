//! A late joiner receives every existing track, the publishers are asked for a keyframe, and a
//! leaving peer disappears from everyone.

use videoroom_protocol::ServerMessage;
use videoroom_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_gets_every_track_and_publishers_see_a_pli() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let a = TestPeer::join(&url, "late", "alice", PeerOptions::default()).await;
    let b = TestPeer::join(&url, "late", "bob", PeerOptions::default()).await;
    wait_until(WAIT, "alice and bob receive each other's video", || {
        a.received_count("bob-cam") > 30 && b.received_count("alice-cam") > 30
    })
    .await;
    let plis_before = a.plis("alice-cam");

    let d = TestPeer::join(&url, "late", "dave", PeerOptions::receive_only()).await;
    let ServerMessage::Joined { peers, tracks, .. } = &d.joined else {
        unreachable!()
    };
    assert_eq!(peers.len(), 2);
    let mut listed: Vec<&str> = tracks.iter().map(|t| t.track_id.as_str()).collect();
    listed.sort();
    assert_eq!(listed, ["alice-cam", "alice-mic", "bob-cam", "bob-mic"]);

    for track in ["alice-cam", "alice-mic", "bob-cam", "bob-mic"] {
        wait_until(WAIT, &format!("dave receives {track}"), || {
            d.received_count(track) >= 20
        })
        .await;
    }
    d.check_received("alice-cam", a.peer_id.as_str());
    d.check_received("bob-mic", b.peer_id.as_str());
    wait_until(WAIT, "alice is asked for a keyframe for dave", || {
        a.plis("alice-cam") > plis_before
    })
    .await;

    // Dave leaves: the others hear of it within 2 s.
    let dave_id = d.peer_id.clone();
    let left_at = tokio::time::Instant::now();
    d.leave().await;
    wait_until(
        std::time::Duration::from_secs(2),
        "alice and bob get peer_left for dave",
        || {
            [&a, &b].iter().all(|p| {
                p.state().saw(
                    |m| matches!(m, ServerMessage::PeerLeft { peer_id } if *peer_id == dave_id),
                )
            })
        },
    )
    .await;
    assert!(left_at.elapsed() < std::time::Duration::from_secs(2));

    // Bob leaves: alice is told his tracks are gone, and media keeps flowing to nobody else.
    let bob_id = b.peer_id.clone();
    b.leave().await;
    wait_until(WAIT, "alice gets tracks_removed for bob", || {
        a.state().saw(|m| {
            matches!(m, ServerMessage::TracksRemoved { track_ids } if track_ids.iter().any(|t| t.as_str() == "bob-cam"))
        })
    })
    .await;
    wait_until(WAIT, "alice gets peer_left for bob", || {
        a.state()
            .saw(|m| matches!(m, ServerMessage::PeerLeft { peer_id } if *peer_id == bob_id))
    })
    .await;
    wait_until(WAIT, "the server forwards two tracks only", || {
        server.metrics().render().contains("videoroom_tracks 2")
    })
    .await;
}
