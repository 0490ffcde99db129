//! Muting: `update_track` reaches every peer as `track_updated`, and late joiners see the state.

use videoroom_protocol::{ClientMessage, ServerMessage, TrackId};
use videoroom_testkit::*;

fn saw_muted(peer: &TestPeer, track: &str, muted: bool) -> bool {
    peer.state().saw(|m| {
        matches!(m, ServerMessage::TrackUpdated { track: t } if t.track_id.as_str() == track && t.muted == muted)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muting_a_track_is_seen_by_everyone() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let a = TestPeer::join(&url, "mute", "alice", PeerOptions::default()).await;
    let b = TestPeer::join(&url, "mute", "bob", PeerOptions::receive_only()).await;
    wait_until(WAIT, "bob receives alice", || {
        b.received_count("alice-cam") > 10
    })
    .await;

    a.send(ClientMessage::UpdateTrack {
        track_id: TrackId::new("alice-cam"),
        muted: true,
    })
    .await;
    wait_until(WAIT, "bob and alice see alice-cam muted", || {
        saw_muted(&b, "alice-cam", true) && saw_muted(&a, "alice-cam", true)
    })
    .await;
    // A late joiner learns the muted state from `joined`.
    let c = TestPeer::join(&url, "mute", "carol", PeerOptions::receive_only()).await;
    let ServerMessage::Joined { tracks, .. } = &c.joined else {
        unreachable!()
    };
    let cam = tracks
        .iter()
        .find(|t| t.track_id.as_str() == "alice-cam")
        .expect("listed");
    assert!(cam.muted);
    let mic = tracks
        .iter()
        .find(|t| t.track_id.as_str() == "alice-mic")
        .expect("listed");
    assert!(!mic.muted);

    a.send(ClientMessage::UpdateTrack {
        track_id: TrackId::new("alice-cam"),
        muted: false,
    })
    .await;
    wait_until(WAIT, "everyone sees alice-cam unmuted", || {
        [&a, &b, &c]
            .iter()
            .all(|p| saw_muted(p, "alice-cam", false))
    })
    .await;
}
