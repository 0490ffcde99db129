//! A moderator mutes someone's microphone: the server stops forwarding it at once (while the
//! publisher keeps sending), everyone sees it muted, and only its owner can unmute it.

use videoroom_protocol::{ClientMessage, ModerationAction, ServerMessage, TrackId, TrackSource};
use videoroom_testkit::*;

/// The muted states `peer` was told for `track`, in order.
fn mute_updates(peer: &TestPeer, track: &str) -> Vec<bool> {
    peer.state()
        .messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::TrackUpdated { track: t } if t.track_id.as_str() == track => {
                Some(t.muted)
            }
            _ => None,
        })
        .collect()
}

/// Packets `peer` sent on its own `track`.
fn sent(peer: &TestPeer, track: &str) -> u64 {
    peer.state().sent.get(track).copied().unwrap_or(0)
}

/// Waits until `publisher` has sent `n` more packets on `track`.
async fn publisher_sends(publisher: &TestPeer, track: &str, n: u64) {
    let target = sent(publisher, track) + n;
    wait_until(WAIT, &format!("{track} sends {n} more packets"), || {
        sent(publisher, track) >= target
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_mutes_a_microphone_and_only_its_owner_unmutes_it() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let moderator =
        TestPeer::join(&url, "mod-mute", "moderator", PeerOptions::receive_only()).await;
    let ServerMessage::Joined {
        moderator: true, ..
    } = &moderator.joined
    else {
        panic!("the first participant moderates: {:?}", moderator.joined)
    };
    let publisher = TestPeer::join(&url, "mod-mute", "pub", PeerOptions::default()).await;
    let watcher = TestPeer::join(&url, "mod-mute", "watcher", PeerOptions::receive_only()).await;
    let everyone = [&moderator, &publisher, &watcher];
    let receivers = [&moderator, &watcher];
    wait_until(
        WAIT,
        "the others receive pub's microphone and camera",
        || {
            receivers
                .iter()
                .all(|p| p.received_count("pub-mic") > 10 && p.received_count("pub-cam") > 10)
        },
    )
    .await;

    moderator
        .send(ClientMessage::Moderate {
            peer_id: publisher.peer_id.clone(),
            action: ModerationAction::MuteMicrophone,
        })
        .await;
    wait_until(WAIT, "everyone sees pub-mic muted", || {
        everyone
            .iter()
            .all(|p| mute_updates(p, "pub-mic") == [true])
    })
    .await;
    wait_until(WAIT, "pub is told who muted it", || {
        publisher.state().saw(|m| {
            matches!(m, ServerMessage::Moderated { action: ModerationAction::MuteMicrophone, by }
                if by == &moderator.peer_id)
        })
    })
    .await;
    let update = moderator
        .state()
        .messages
        .iter()
        .find_map(|m| match m {
            ServerMessage::TrackUpdated { track } => Some(track.clone()),
            _ => None,
        })
        .expect("track_updated");
    assert_eq!(update.peer_id, publisher.peer_id);
    assert_eq!(update.source, TrackSource::Microphone);

    // Let packets already on their way arrive (a second of audio), then take another second
    // the publisher keeps sending: none of it is forwarded. The camera still flows.
    publisher_sends(&publisher, "pub-mic", 50).await;
    let mic_before: Vec<usize> = receivers
        .iter()
        .map(|p| p.received_count("pub-mic"))
        .collect();
    let cam_before: Vec<usize> = receivers
        .iter()
        .map(|p| p.received_count("pub-cam"))
        .collect();
    publisher_sends(&publisher, "pub-mic", 50).await;
    let mic_after: Vec<usize> = receivers
        .iter()
        .map(|p| p.received_count("pub-mic"))
        .collect();
    assert_eq!(
        mic_after, mic_before,
        "pub-mic is not forwarded while a moderator holds it"
    );
    wait_until(WAIT, "pub-cam keeps flowing", || {
        receivers
            .iter()
            .zip(&cam_before)
            .all(|(p, before)| p.received_count("pub-cam") > before + 20)
    })
    .await;
    assert!(
        everyone
            .iter()
            .all(|p| mute_updates(p, "pub-cam").is_empty()),
        "the camera was not touched"
    );

    // Its owner unmutes it: everyone is told, and the audio flows again.
    publisher
        .send(ClientMessage::UpdateTrack {
            track_id: TrackId::new("pub-mic"),
            muted: false,
        })
        .await;
    wait_until(WAIT, "everyone sees pub-mic unmuted", || {
        everyone
            .iter()
            .all(|p| mute_updates(p, "pub-mic") == [true, false])
    })
    .await;
    wait_until(WAIT, "pub-mic is forwarded again", || {
        receivers
            .iter()
            .zip(&mic_after)
            .all(|(p, before)| p.received_count("pub-mic") > before + 20)
    })
    .await;
}
