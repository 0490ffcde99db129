//! Screen sharing through the engine, against a real server in this process: a participant
//! shares a screen (the burned-in pattern standing in for a capture) next to its camera; the
//! others get a `screen` track whose frames decode with increasing frame numbers, the camera
//! keeps flowing meanwhile, a late joiner gets the screen at once (keyframe on subscribe), and
//! the share ends when its owner stops it, when its source ends, or when a moderator stops it.

mod common;

use std::time::Duration;
use tokio::sync::mpsc;
use videoroom_client::media::{PatternSource, SourceError, VideoSource};
use videoroom_client::publish::VideoSendSettings;
use videoroom_client::{Room, RoomError, RoomEvent, RoomHandle, ScreenShareEnd};
use videoroom_protocol::{ModerationAction, TrackId, TrackSource};
use videoroom_testkit::{start_server, test_config, ws_url};

const BOUND: Duration = Duration::from_secs(15);
const SCREEN: VideoSendSettings = VideoSendSettings {
    width: 1280,
    height: 720,
    fps: 15,
    target_kbps: 1200,
};

fn screen() -> Box<dyn VideoSource> {
    Box::new(PatternSource::new(SCREEN.width, SCREEN.height, SCREEN.fps).expect("pattern"))
}

/// Waits (bounded) for the first event `pred` picks out, keeping nothing else.
async fn next_matching<T>(
    events: &mut mpsc::Receiver<RoomEvent>,
    what: &str,
    pred: impl Fn(&RoomEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within {BOUND:?}"))
            .unwrap_or_else(|| panic!("events ended before {what}"));
        if let Some(found) = pred(&event) {
            return found;
        }
    }
}

/// The id of the next `screen` track announced.
async fn screen_added(events: &mut mpsc::Receiver<RoomEvent>) -> TrackId {
    next_matching(events, "a screen track", |e| match e {
        RoomEvent::TrackAdded(info) if info.source == TrackSource::Screen => {
            Some(info.track_id.clone())
        }
        _ => None,
    })
    .await
}

async fn removed(events: &mut mpsc::Receiver<RoomEvent>, track: &TrackId) {
    next_matching(events, "the track removed", |e| match e {
        RoomEvent::TrackRemoved { track_id } if track_id == track => Some(()),
        _ => None,
    })
    .await;
}

async fn share_ended(events: &mut mpsc::Receiver<RoomEvent>) -> ScreenShareEnd {
    next_matching(events, "the end of the share", |e| match e {
        RoomEvent::ScreenShareEnded { reason } => Some(reason.clone()),
        _ => None,
    })
    .await
}

/// Waits until `viewer` decoded `frames` more frames of `track` than it had; checks the
/// burned-in frame numbers rise. Returns the last number seen.
async fn decodes(viewer: &RoomHandle, track: &TrackId, frames: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + BOUND;
    let video = loop {
        if let Some(v) = viewer.remote_video(track) {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no video slot for {track}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let start = video.stats().frames_decoded;
    let mut rx = video.frames();
    let mut last = None;
    while video.stats().frames_decoded < start + frames {
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .unwrap_or_else(|_| panic!("{track}: only {:?} within {BOUND:?}", video.stats()))
            .expect("track still present");
        let frame = rx.borrow_and_update().clone().expect("a frame");
        let (number, _) = frame.burned_in.expect("burned-in code readable");
        if let Some(last) = last {
            assert!(number > last, "{track}: frame {number} after {last}");
        }
        last = Some(number);
    }
    last.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_screen_reaches_everyone_next_to_the_camera_until_stopped() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let (ada, mut ada_events) = Room::join(&url, "share", "Ada", common::with_pattern())
        .await
        .expect("Ada joins");
    let (bob, mut bob_events) = Room::join(&url, "share", "Bob", common::with_pattern())
        .await
        .expect("Bob joins");
    let ada_cam = ada.camera_track_id().expect("Ada's camera");
    decodes(&bob, &ada_cam, 30).await;

    let shared = ada
        .start_screen_share(screen(), SCREEN)
        .await
        .expect("shares");
    assert_eq!(ada.screen_track_id().as_ref(), Some(&shared));
    assert!(matches!(
        ada.start_screen_share(screen(), SCREEN).await,
        Err(RoomError::ScreenShareActive)
    ));
    let at_bob = screen_added(&mut bob_events).await;
    assert_eq!(at_bob, shared);
    decodes(&bob, &shared, 30).await;
    // The camera goes on meanwhile.
    decodes(&bob, &ada_cam, 30).await;

    // A late joiner gets the screen at once.
    let (cy, mut cy_events) = Room::join(&url, "share", "Cy", common::loopback())
        .await
        .expect("Cy joins");
    let at_cy = screen_added(&mut cy_events).await;
    decodes(&cy, &at_cy, 5).await;

    ada.stop_screen_share().await.expect("stops");
    assert_eq!(share_ended(&mut ada_events).await, ScreenShareEnd::Stopped);
    assert_eq!(ada.screen_track_id(), None);
    removed(&mut bob_events, &shared).await;
    removed(&mut cy_events, &shared).await;
    assert!(matches!(
        ada.stop_screen_share().await,
        Err(RoomError::NoScreenShare)
    ));
    // The camera survives the share.
    decodes(&bob, &ada_cam, 30).await;

    // Sharing again works (a new track).
    let again = ada
        .start_screen_share(screen(), SCREEN)
        .await
        .expect("shares again");
    assert_ne!(again, shared);
    assert_eq!(screen_added(&mut bob_events).await, again);
    decodes(&bob, &again, 10).await;
}

/// A source that gives `frames` frames of the pattern, then ends (a shared window closed).
struct Closing {
    inner: PatternSource,
    left: u32,
}

impl VideoSource for Closing {
    fn next_frame(&mut self) -> Result<videoroom_client::media::I420Frame, SourceError> {
        if self.left == 0 {
            return Err(SourceError::Ended);
        }
        self.left -= 1;
        self.inner.next_frame()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_share_ends_with_its_source_or_by_a_moderator() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    // Grace joins first: she moderates the open room.
    let (grace, mut grace_events) = Room::join(&url, "end", "Grace", common::loopback())
        .await
        .expect("Grace joins");
    let (ada, mut ada_events) = Room::join(&url, "end", "Ada", common::with_pattern())
        .await
        .expect("Ada joins");

    let closing = Closing {
        inner: PatternSource::new(SCREEN.width, SCREEN.height, SCREEN.fps).expect("pattern"),
        left: 45,
    };
    let shared = ada
        .start_screen_share(Box::new(closing), SCREEN)
        .await
        .expect("shares");
    assert_eq!(screen_added(&mut grace_events).await, shared);
    match share_ended(&mut ada_events).await {
        ScreenShareEnd::SourceEnded(why) => assert!(!why.is_empty()),
        other => panic!("expected the source to end the share, got {other:?}"),
    }
    removed(&mut grace_events, &shared).await;

    let shared = ada
        .start_screen_share(screen(), SCREEN)
        .await
        .expect("shares");
    assert_eq!(screen_added(&mut grace_events).await, shared);
    decodes(&grace, &shared, 5).await;
    let ada_id = ada.peer_id();
    grace
        .moderate(ada_id, ModerationAction::StopScreen)
        .await
        .expect("Grace moderates");
    match share_ended(&mut ada_events).await {
        ScreenShareEnd::Moderator(by) => assert_eq!(by, grace.peer_id()),
        other => panic!("expected the moderator to end the share, got {other:?}"),
    }
    removed(&mut grace_events, &shared).await;
    assert_eq!(ada.screen_track_id(), None);
}

/// A screen that never changes (a slide left up).
struct Still(videoroom_client::media::I420Frame);

impl VideoSource for Still {
    fn next_frame(&mut self) -> Result<videoroom_client::media::I420Frame, SourceError> {
        Ok(self.0.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_still_screen_is_sent_at_the_floor_rate_not_the_capture_rate() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let (ada, _ada_events) = Room::join(&url, "still", "Ada", common::loopback())
        .await
        .expect("Ada joins");
    let (bob, mut bob_events) = Room::join(&url, "still", "Bob", common::loopback())
        .await
        .expect("Bob joins");
    let still =
        videoroom_client::media::I420Frame::black(SCREEN.width, SCREEN.height).expect("a frame");
    ada.start_screen_share(Box::new(Still(still)), SCREEN)
        .await
        .expect("shares");
    let track = screen_added(&mut bob_events).await;
    // Bob shows it (the first frame is encoded whatever it holds).
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let decoded = bob
            .remote_video(&track)
            .map_or(0, |v| v.stats().frames_decoded);
        if decoded > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Bob never decoded the still screen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = ada.screen_stats().expect("sharing").frames_sent;
    let since = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = ada.screen_stats().expect("sharing").frames_sent - before;
    let elapsed = since.elapsed().as_secs_f64();
    // Captured at 15 fps, sent at the 5 fps floor: about 10 in 2 s, never the 30 captured.
    let most = (elapsed / 0.2).ceil() as u64 + 2;
    eprintln!("a still screen: {sent} frames sent in {elapsed:.2} s (at most {most})");
    assert!(
        sent >= 2,
        "the floor keeps a still screen alive: {sent} frames"
    );
    assert!(
        sent <= most,
        "{sent} frames of an unchanging screen in {elapsed:.2} s"
    );
}
