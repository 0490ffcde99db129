//! The room engine against a real server in this process: two clients publish the synthetic
//! pattern and each decodes the other's video; join failures are reported precisely.

mod common;

use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use videoroom_client::{AudioOutput, JoinError, JoinOptions, Room, RoomEvent, RoomHandle};
use videoroom_protocol::{ErrorCode, TrackId};
use videoroom_testkit::{start_server, test_config, ws_url};

const FRAMES: u64 = 90;
const BOUND: Duration = Duration::from_secs(10);

fn options() -> JoinOptions {
    common::with_pattern()
}

/// Waits for `pred` among the events (bounded by `deadline`), keeping every event seen.
async fn wait_event(
    events: &mut mpsc::Receiver<RoomEvent>,
    seen: &mut Vec<RoomEvent>,
    deadline: tokio::time::Instant,
    what: &str,
    pred: impl Fn(&RoomEvent) -> bool,
) {
    if seen.iter().any(&pred) {
        return;
    }
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {seen:?}"))
            .unwrap_or_else(|| panic!("event stream ended waiting for {what}; saw {seen:?}"));
        let hit = pred(&event);
        seen.push(event);
        if hit {
            return;
        }
    }
}

struct Watched {
    frames_decoded: u64,
    samples: usize,
    first_frame_after: Duration,
    last_frame_number: u64,
}

/// Follows `track` on `viewer` until it decoded `FRAMES` frames, sampling the watch channel:
/// every sampled frame carries a readable burned-in number, strictly greater than the last.
async fn watch_remote(
    name: &str,
    viewer: &RoomHandle,
    events: &mut mpsc::Receiver<RoomEvent>,
    track: &TrackId,
    started: Instant,
    deadline: tokio::time::Instant,
) -> (Watched, Vec<RoomEvent>) {
    let mut seen = Vec::new();
    wait_event(
        events,
        &mut seen,
        deadline,
        "TrackAdded",
        |e| matches!(e, RoomEvent::TrackAdded(info) if &info.track_id == track),
    )
    .await;
    let video = viewer
        .remote_video(track)
        .expect("a video slot from TrackAdded on");
    let mut frames = video.frames();
    let mut last: Option<u64> = None;
    let mut samples = 0;
    while video.stats().frames_decoded < FRAMES {
        tokio::time::timeout_at(deadline, frames.changed())
            .await
            .unwrap_or_else(|_| panic!("{name}: only {:?} within {BOUND:?}", video.stats()))
            .expect("track still present");
        let frame = frames.borrow_and_update().clone().expect("a frame");
        let (number, capture) = frame
            .burned_in
            .unwrap_or_else(|| panic!("{name}: burned-in code unreadable"));
        assert_eq!(frame.frame.frame_number, number);
        assert!(capture > 0);
        if let Some(last) = last {
            assert!(number > last, "{name}: frame {number} sampled after {last}");
        }
        last = Some(number);
        samples += 1;
    }
    wait_event(
        events,
        &mut seen,
        deadline,
        "TrackReady",
        |e| matches!(e, RoomEvent::TrackReady { track_id } if track_id == track),
    )
    .await;
    let stats = video.stats();
    let first = stats.first_frame_at.expect("first frame instant");
    (
        Watched {
            frames_decoded: stats.frames_decoded,
            samples,
            first_frame_after: first.duration_since(started),
            last_frame_number: last.unwrap_or(0),
        },
        seen,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_clients_decode_each_others_video() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + BOUND;

    let (alice, mut alice_events) = Room::join(&url, "video", "Alice", options()).await.unwrap();
    let (bob, mut bob_events) = Room::join(&url, "video", "Bob", options()).await.unwrap();
    let alice_cam = alice.camera_track_id().unwrap().clone();
    let bob_cam = bob.camera_track_id().unwrap().clone();

    let ((at_alice, alice_seen), (at_bob, bob_seen)) = tokio::join!(
        watch_remote(
            "Alice",
            &alice,
            &mut alice_events,
            &bob_cam,
            started,
            deadline
        ),
        watch_remote("Bob", &bob, &mut bob_events, &alice_cam, started, deadline),
    );
    for (name, w) in [("Alice sees Bob", &at_alice), ("Bob sees Alice", &at_bob)] {
        eprintln!(
            "{name}: {} frames decoded, {} sampled, last frame #{}, first frame {:?} after the first join, all within {:?}",
            w.frames_decoded,
            w.samples,
            w.last_frame_number,
            w.first_frame_after,
            started.elapsed()
        );
        assert!(w.frames_decoded >= FRAMES);
    }
    // Events: Joined first; Alice learns of Bob.
    assert!(matches!(alice_seen.first(), Some(RoomEvent::Joined { .. })));
    assert!(matches!(bob_seen.first(), Some(RoomEvent::Joined { peers, .. }) if peers.len() == 1));
    let mut rest = Vec::new();
    while let Ok(e) = alice_events.try_recv() {
        rest.push(e);
    }
    assert!(
        alice_seen
            .iter()
            .chain(&rest)
            .any(|e| matches!(e, RoomEvent::PeerJoined(p) if p.peer_id == bob.peer_id())),
        "Alice saw Bob join: {alice_seen:?} {rest:?}"
    );
    let sent = alice.camera_stats().unwrap();
    assert!(sent.frames_sent >= FRAMES && sent.keyframes_sent >= 1);
    assert_eq!(alice.dropped_events(), 0);

    let bob_id = bob.peer_id();
    bob.leave().await;
    // Alice sees Bob's track go and Bob leave.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + BOUND;
    wait_event(
        &mut alice_events,
        &mut seen,
        deadline,
        "PeerLeft",
        |e| matches!(e, RoomEvent::PeerLeft { peer_id } if *peer_id == bob_id),
    )
    .await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, RoomEvent::TrackRemoved { track_id } if *track_id == bob_cam)),
        "{seen:?}"
    );
    assert!(alice.remote_video(&bob_cam).is_none());
    alice.leave().await;
    server.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn unreachable_server_is_reported_quickly() {
    let started = Instant::now();
    let result = Room::join("ws://127.0.0.1:1/ws", "r", "Ada", JoinOptions::default()).await;
    let Err(error) = result else {
        panic!("joined a server that does not exist");
    };
    assert!(
        matches!(error, JoinError::Unreachable(_)),
        "unexpected error: {error}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_room_is_refused_with_room_full() {
    let mut config = test_config();
    config.max_peers_per_room = 1;
    let server = start_server(config).await;
    let url = ws_url(&server);
    let (first, _events) = Room::join(
        &url,
        "small",
        "First",
        JoinOptions::default().with_audio_output(AudioOutput::Null),
    )
    .await
    .unwrap();
    let Err(error) = Room::join(&url, "small", "Second", JoinOptions::default()).await else {
        panic!("a second peer joined a room for one");
    };
    assert_eq!(error.code(), Some(ErrorCode::RoomFull), "{error}");
    assert!(
        matches!(&error, JoinError::Refused { message, .. } if !message.is_empty()),
        "{error}"
    );
    first.leave().await;
    server.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn invalid_display_name_is_refused() {
    let server = start_server(test_config()).await;
    let Err(error) = Room::join(&ws_url(&server), "r", " ", JoinOptions::default()).await else {
        panic!("joined with a blank name");
    };
    assert_eq!(error.code(), Some(ErrorCode::InvalidDisplayName), "{error}");
    server.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn camera_mute_stops_and_resumes_video() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let deadline = tokio::time::Instant::now() + BOUND;
    let (alice, _alice_events) = Room::join(&url, "mute", "Alice", options()).await.unwrap();
    let receive_only = JoinOptions::default()
        .with_audio_output(AudioOutput::Null)
        .with_udp_addrs(vec!["127.0.0.1:0".parse().unwrap()]);
    let (bob, mut bob_events) = Room::join(&url, "mute", "Bob", receive_only).await.unwrap();
    let cam = alice.camera_track_id().unwrap().clone();
    let mut seen = Vec::new();
    wait_event(
        &mut bob_events,
        &mut seen,
        deadline,
        "TrackReady",
        |e| matches!(e, RoomEvent::TrackReady { track_id } if *track_id == cam),
    )
    .await;
    let video = bob.remote_video(&cam).unwrap();

    alice.set_camera_enabled(false).await.unwrap();
    wait_event(
        &mut bob_events,
        &mut seen,
        deadline,
        "TrackMuted",
        |e| matches!(e, RoomEvent::TrackMuted { track_id } if *track_id == cam),
    )
    .await;
    // Frames stop: nothing new is decoded over several frame intervals.
    let mut frames = video.frames();
    frames.borrow_and_update();
    let quiet = async {
        loop {
            let before = video.stats().frames_decoded;
            tokio::time::sleep(Duration::from_millis(300)).await;
            if video.stats().frames_decoded == before {
                return before;
            }
        }
    };
    let stopped_at = tokio::time::timeout_at(deadline, quiet)
        .await
        .expect("frames stop after mute");
    let last_number = frames
        .borrow_and_update()
        .as_ref()
        .and_then(|f| f.burned_in)
        .map(|b| b.0)
        .unwrap();

    alice.set_camera_enabled(true).await.unwrap();
    wait_event(
        &mut bob_events,
        &mut seen,
        deadline,
        "TrackUnmuted",
        |e| matches!(e, RoomEvent::TrackUnmuted { track_id } if *track_id == cam),
    )
    .await;
    while video.stats().frames_decoded < stopped_at + 15 {
        tokio::time::timeout_at(deadline, frames.changed())
            .await
            .expect("frames resume after unmute")
            .unwrap();
    }
    let resumed = frames
        .borrow()
        .as_ref()
        .and_then(|f| f.burned_in)
        .unwrap()
        .0;
    assert!(resumed > last_number);
    assert!(alice.camera_stats().unwrap().keyframes_sent >= 2);
    assert_eq!(video.stats().decode_errors, 0);
    alice.leave().await;
    bob.leave().await;
    server.shutdown(Duration::from_secs(2)).await;
}
