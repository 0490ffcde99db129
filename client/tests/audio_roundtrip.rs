//! Audio through the whole engine: two clients publish tones at different frequencies (Opus over
//! real WebRTC through a real server); each plays the other's through its jitter buffer and
//! mixer, and the played audio has the sender's frequency. Muting the microphone is seen by the
//! other side and its audio stops.

use std::time::Duration;
use videoroom_client::media::{Channels, ToneSource};
use videoroom_client::{AudioOutput, JoinOptions, RemoteAudio, Room, RoomEvent, RoomHandle};
use videoroom_protocol::TrackId;
use videoroom_testkit::{WAIT, start_server, test_config, wait_until, ws_url};

fn with_tone(hz: f64) -> JoinOptions {
    JoinOptions::default()
        .with_audio(Box::new(ToneSource::new(hz, 0.3, Channels::Mono)))
        .with_udp_addrs(vec!["127.0.0.1:0".parse().expect("address")])
        .with_audio_output(AudioOutput::Null)
}

async fn remote_audio_of(viewer: &RoomHandle, track: &TrackId) -> RemoteAudio {
    wait_until(WAIT, "the remote audio track is announced", || {
        viewer.remote_audio(track).is_some()
    })
    .await;
    viewer.remote_audio(track).expect("announced")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tones_cross_the_room_at_their_frequency() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let (alice, _alice_events) = Room::join(&url, "audio", "Alice", with_tone(440.0))
        .await
        .unwrap();
    let (bob, mut bob_events) = Room::join(&url, "audio", "Bob", with_tone(660.0))
        .await
        .unwrap();
    let alice_mic = alice.microphone_track_id().expect("Alice publishes audio");
    let bob_mic = bob.microphone_track_id().expect("Bob publishes audio");

    let at_bob = remote_audio_of(&bob, &alice_mic).await;
    let at_alice = remote_audio_of(&alice, &bob_mic).await;
    // A full second of played audio from each (50 frames of 20 ms) fills the analysis window.
    wait_until(WAIT, "both played a second of the other's audio", || {
        at_bob.stats().frames_decoded >= 60 && at_alice.stats().frames_decoded >= 60
    })
    .await;
    let heard_by_bob = at_bob.dominant_frequency().expect("Bob hears something");
    let heard_by_alice = at_alice
        .dominant_frequency()
        .expect("Alice hears something");
    eprintln!(
        "Bob hears {heard_by_bob:.1} Hz ({:?}); Alice hears {heard_by_alice:.1} Hz ({:?})",
        at_bob.stats(),
        at_alice.stats()
    );
    assert!((heard_by_bob - 440.0).abs() < 5.0, "{heard_by_bob}");
    assert!((heard_by_alice - 660.0).abs() < 5.0, "{heard_by_alice}");
    let level = at_bob.stats().level_dbov;
    assert!(
        level > -30.0,
        "a 0.3 full-scale tone plays at about -13 dBov, got {level}"
    );
    assert!(
        at_bob.stats().speaking,
        "Alice's tone lights Bob's speaking indicator"
    );
    let (own, speaking) = alice.microphone_level().expect("Alice has a microphone");
    assert!(
        own > -30.0 && speaking,
        "Alice's own level {own} dBov, speaking {speaking}"
    );
    let sent = alice.microphone_stats().unwrap();
    assert!(sent.frames_sent >= 60 && sent.bytes_sent > 0, "{sent:?}");
    let mut ready = false;
    while let Ok(e) = bob_events.try_recv() {
        ready |= matches!(e, RoomEvent::TrackReady { track_id } if track_id == alice_mic);
    }
    assert!(ready, "Bob got TrackReady for Alice's audio");

    // Mute: Bob sees it and Alice's audio stops reaching him.
    alice.set_microphone_enabled(false).await.unwrap();
    let mut muted = false;
    tokio::time::timeout(WAIT, async {
        while let Some(e) = bob_events.recv().await {
            if matches!(&e, RoomEvent::TrackMuted { track_id } if *track_id == alice_mic) {
                muted = true;
                return;
            }
        }
    })
    .await
    .expect("TrackMuted within the bound");
    assert!(muted);
    let stopped = tokio::time::timeout(WAIT, async {
        loop {
            let before = at_bob.stats().packets_received;
            tokio::time::sleep(Duration::from_millis(300)).await;
            if at_bob.stats().packets_received == before {
                return before;
            }
        }
    })
    .await
    .expect("packets stop after mute");
    wait_until(WAIT, "Bob's playout of Alice falls silent", || {
        at_bob.dominant_frequency().is_none()
    })
    .await;
    assert!(
        !at_bob.stats().speaking,
        "no speaking indicator for a muted peer"
    );
    alice.set_microphone_enabled(true).await.unwrap();
    wait_until(WAIT, "audio resumes after unmute", || {
        at_bob.stats().packets_received > stopped + 25
    })
    .await;
    alice.leave().await;
    bob.leave().await;
    server.shutdown(Duration::from_secs(2)).await;
}
