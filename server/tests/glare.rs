//! Glare: when a client's offer crosses the server's, the server (the polite side) rolls back,
//! answers the client, and offers again; media then flows both ways.

use videoroom_protocol::ServerMessage;
use videoroom_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_offers_resolve_and_media_flows_both_ways() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let a = TestPeer::join(&url, "glare", "alice", PeerOptions::default()).await;
    wait_until(WAIT, "alice is publishing", || {
        a.state().sent.values().sum::<u64>() > 10
    })
    .await;

    let b = TestPeer::join(
        &url,
        "glare",
        "bob",
        PeerOptions {
            provoke_glare: true,
            ..PeerOptions::default()
        },
    )
    .await;
    wait_until(WAIT, "media flows both ways after the glare", || {
        b.received_count("alice-cam") > 50 && a.received_count("bob-cam") > 50
    })
    .await;
    let state = b.state();
    let offers = state
        .messages
        .iter()
        .filter(|m| matches!(m, ServerMessage::SdpOffer { .. }))
        .count();
    let answers = state
        .messages
        .iter()
        .filter(|m| matches!(m, ServerMessage::SdpAnswer { .. }))
        .count();
    assert!(
        offers >= 2,
        "the server re-offers after rolling back its first offer ({offers} offers)"
    );
    assert_eq!(answers, 1, "the server answered bob's crossing offer");
    assert!(
        !state
            .messages
            .iter()
            .any(|m| matches!(m, ServerMessage::Error { .. })),
        "no errors: {:?}",
        state.messages
    );
    drop(state);
    b.check_received("alice-cam", a.peer_id.as_str());
    a.check_received("bob-cam", b.peer_id.as_str());
}
