//! A subscriber whose media connection dies does not stall the publisher or the other
//! subscribers: their media continues without a gap, and the dead peer is removed.

use std::time::Duration;
use videoroom_protocol::ServerMessage;
use videoroom_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_subscriber_does_not_stall_the_others() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let a = TestPeer::join(&url, "dead", "alice", PeerOptions::default()).await;
    let b = TestPeer::join(&url, "dead", "bob", PeerOptions::default()).await;
    let c = TestPeer::join(&url, "dead", "carol", PeerOptions::receive_only()).await;
    wait_until(WAIT, "everyone receives", || {
        b.received_count("alice-cam") > 30
            && a.received_count("bob-cam") > 30
            && c.received_count("alice-cam") > 30
    })
    .await;

    let carol = c.peer_id.clone();
    let died = tokio::time::Instant::now();
    c.kill_media().await;
    let before = b.received_count("alice-cam");
    // 90 packets/s: two more seconds of video must arrive while carol is dead or being removed.
    wait_until(
        Duration::from_secs(5),
        "bob keeps receiving alice's video",
        || b.received_count("alice-cam") >= before + 180,
    )
    .await;
    wait_until(Duration::from_secs(40), "carol is removed", || {
        a.state()
            .saw(|m| matches!(m, ServerMessage::PeerLeft { peer_id } if *peer_id == carol))
    })
    .await;
    assert!(
        died.elapsed() <= Duration::from_secs(30),
        "a dead peer is removed within 30 s, took {:?}",
        died.elapsed()
    );
    // No gap, no reordering, no corruption on the healthy legs.
    assert!(b.check_received("alice-cam", a.peer_id.as_str()) >= before + 180);
    a.check_received("bob-cam", b.peer_id.as_str());
    a.check_received("bob-mic", b.peer_id.as_str());
}
