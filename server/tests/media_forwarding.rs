//! Three WebRTC peers in one room each receive the other two peers' audio and video, byte for
//! byte and in order, through a real server over loopback.

use videoroom_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_receive_each_others_tracks_unchanged() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let a = TestPeer::join(&url, "trio", "alice", PeerOptions::default()).await;
    let b = TestPeer::join(&url, "trio", "bob", PeerOptions::default()).await;
    let c = TestPeer::join(&url, "trio", "carol", PeerOptions::default()).await;
    let peers = [&a, &b, &c];

    // Every peer gets at least 100 packets of each of the other peers' four... six tracks.
    for receiver in peers {
        for publisher in peers {
            if receiver.peer_id == publisher.peer_id {
                continue;
            }
            for (track_id, _) in &publisher.published {
                wait_until(
                    WAIT,
                    &format!("{} receives 100 packets of {track_id}", receiver.name),
                    || receiver.received_count(track_id.as_str()) >= 100,
                )
                .await;
            }
        }
    }
    for receiver in peers {
        let mut tracks = 0;
        for publisher in peers {
            if receiver.peer_id == publisher.peer_id {
                assert!(
                    publisher
                        .published
                        .iter()
                        .all(|(t, _)| receiver.received_count(t.as_str()) == 0),
                    "{} must not receive its own tracks back",
                    receiver.name
                );
                continue;
            }
            for (track_id, _) in &publisher.published {
                let n = receiver.check_received(track_id.as_str(), publisher.peer_id.as_str());
                assert!(n >= 100, "{n}");
                tracks += 1;
            }
        }
        assert_eq!(
            tracks, 4,
            "{} receives two tracks from each of two peers",
            receiver.name
        );
    }
    let metrics = server.metrics().render();
    assert!(metrics.contains("videoroom_peers 3"), "{metrics}");
    assert!(metrics.contains("videoroom_tracks 6"), "{metrics}");
}
