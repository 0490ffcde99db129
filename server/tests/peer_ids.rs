//! Peer ids are never reused: not within a run, and not by the next run on the same address
//! after a restart. A client that rejoins after a restart tells its own earlier session (a ghost
//! it filters out) from a newcomer by id alone; a reused id would hide a real person.

use std::collections::HashSet;
use std::time::Duration;
use videoroom_protocol::{PeerId, ServerMessage};
use videoroom_testkit::*;

async fn join_id(url: &str, room: &str, name: &str) -> (RawClient, PeerId) {
    let mut client = RawClient::connect(url).await;
    match client.join(room, name).await {
        ServerMessage::Joined { peer_id, .. } => (client, peer_id),
        other => panic!("expected joined, got {other:?}"),
    }
}

#[tokio::test]
async fn peer_ids_are_unique_across_a_restart() {
    let server = start_server(test_config()).await;
    let addr = server.local_addr();
    let url = ws_url(&server);
    let mut seen = HashSet::new();
    let mut clients = Vec::new();
    for name in ["a", "b", "c"] {
        let (client, id) = join_id(&url, "ids", name).await;
        assert!(seen.insert(id.clone()), "{id} given twice in one run");
        clients.push(client);
    }
    drop(clients);
    server.shutdown(Duration::from_secs(2)).await;

    // The same address again, as after a restart.
    let mut config = test_config();
    config.listen = addr;
    let server = start_server(config).await;
    for name in ["a", "b", "c"] {
        let (_client, id) = join_id(&url, "ids", name).await;
        assert!(
            seen.insert(id.clone()),
            "{id} was given by the previous run too: {seen:?}"
        );
    }
    server.shutdown(Duration::from_secs(2)).await;
}
