//! Switching inputs while in the room: a new video source (another size) replaces the running
//! one under the same track, a new audio source changes what the others hear, and switching the
//! camera on a participant that published none publishes a new track (renegotiation). A camera
//! that cannot be opened gives a clear error and the current input stays.

mod common;

use std::time::Duration;
use videoroom_client::media::{Channels, PatternSource, ToneSource};
use videoroom_client::{AudioInput, JoinOptions, Room, RoomError, VideoInput};
use videoroom_testkit::{WAIT, start_server, test_config, wait_until, ws_url};

fn options() -> JoinOptions {
    common::loopback()
}

fn pattern(w: u32, h: u32) -> Box<PatternSource> {
    Box::new(PatternSource::new(w, h, 30).expect("pattern"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inputs_switch_in_place_and_a_first_camera_is_published() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let (alice, _a) = Room::join(
        &url,
        "switch",
        "Alice",
        options()
            .with_video(pattern(640, 360), 640, 360, 30, 800)
            .with_audio(Box::new(ToneSource::new(440.0, 0.3, Channels::Mono))),
    )
    .await
    .unwrap();
    // Bob publishes nothing at first.
    let (bob, _b) = Room::join(&url, "switch", "Bob", options()).await.unwrap();
    let cam = alice.camera_track_id().unwrap();
    let mic = alice.microphone_track_id().unwrap();
    wait_until(WAIT, "Bob decodes Alice's 640x360 video", || {
        bob.remote_video(&cam).is_some_and(|v| {
            v.frames()
                .borrow()
                .as_ref()
                .is_some_and(|f| f.frame.width() == 640)
        })
    })
    .await;

    // Self view: Alice's own newest captured frame.
    let mut own = alice.local_video().expect("Alice publishes a camera");
    tokio::time::timeout(
        WAIT,
        own.wait_for(|f| f.as_ref().is_some_and(|f| f.width() == 640)),
    )
    .await
    .expect("a self-view frame in time")
    .expect("preview channel open");

    // Video: a 320x180 source under the same track.
    alice
        .switch_camera(VideoInput::Source(pattern(320, 180)))
        .await
        .unwrap();
    wait_until(WAIT, "Bob decodes the new 320x180 source", || {
        bob.remote_video(&cam).is_some_and(|v| {
            v.frames()
                .borrow()
                .as_ref()
                .is_some_and(|f| f.frame.width() == 320 && f.frame.height() == 180)
        })
    })
    .await;
    assert_eq!(alice.camera_track_id(), Some(cam.clone()), "same track");

    // Audio: 440 Hz → 880 Hz.
    wait_until(WAIT, "Bob hears 440 Hz", || {
        bob.remote_audio(&mic)
            .and_then(|a| a.dominant_frequency())
            .is_some_and(|hz| (hz - 440.0).abs() < 5.0)
    })
    .await;
    alice
        .switch_microphone(AudioInput::Source(Box::new(ToneSource::new(
            880.0,
            0.3,
            Channels::Mono,
        ))))
        .await
        .unwrap();
    wait_until(WAIT, "Bob hears 880 Hz", || {
        bob.remote_audio(&mic)
            .and_then(|a| a.dominant_frequency())
            .is_some_and(|hz| (hz - 880.0).abs() < 5.0)
    })
    .await;

    // A camera that does not exist: a clear error, and the pattern keeps going.
    let err = alice
        .switch_camera(VideoInput::Camera {
            device: Some("/dev/video-nowhere".into()),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, RoomError::Device(_)), "{err:?}");
    assert!(err.to_string().contains("video-nowhere"), "{err}");
    let sent = alice.camera_stats().unwrap().frames_sent;
    wait_until(WAIT, "Alice still sends", || {
        alice.camera_stats().unwrap().frames_sent > sent + 10
    })
    .await;

    // Bob had no camera: switching one on publishes a track Alice receives.
    assert!(bob.camera_track_id().is_none());
    bob.switch_camera(VideoInput::Source(pattern(640, 360)))
        .await
        .unwrap();
    let bob_cam = bob.camera_track_id().expect("published");
    wait_until(WAIT, "Alice decodes Bob's new camera", || {
        alice
            .remote_video(&bob_cam)
            .is_some_and(|v| v.stats().frames_decoded >= 10)
    })
    .await;
    alice.leave().await;
    bob.leave().await;
    server.shutdown(Duration::from_secs(2)).await;
}

/// A source that ends after `left` frames, like an unplugged camera.
struct Unplugged {
    inner: PatternSource,
    left: u32,
}

impl videoroom_client::media::VideoSource for Unplugged {
    fn next_frame(
        &mut self,
    ) -> Result<videoroom_client::media::I420Frame, videoroom_client::media::SourceError> {
        if self.left == 0 {
            return Err(videoroom_client::media::SourceError::Ended);
        }
        self.left -= 1;
        self.inner.next_frame()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_camera_that_stops_is_reported_and_a_switch_revives_the_track() {
    use videoroom_client::RoomEvent;
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let unplugged = Unplugged {
        inner: PatternSource::new(640, 360, 30).expect("pattern"),
        left: 60,
    };
    let (alice, mut events) = Room::join(
        &url,
        "unplug",
        "Alice",
        options().with_video(Box::new(unplugged), 640, 360, 30, 800),
    )
    .await
    .unwrap();
    let (bob, _b) = Room::join(&url, "unplug", "Bob", options()).await.unwrap();
    let cam = alice.camera_track_id().unwrap();
    let reported = tokio::time::timeout(WAIT, async {
        while let Some(e) = events.recv().await {
            if let RoomEvent::Error(RoomError::Device(d)) = e {
                return d.to_string();
            }
        }
        panic!("events ended");
    })
    .await
    .expect("the stopped camera is reported");
    assert!(reported.contains("camera stopped"), "{reported}");
    let sent = alice.camera_stats().unwrap().frames_sent;
    assert!(sent <= 60, "{sent}");

    alice
        .switch_camera(VideoInput::Source(pattern(640, 360)))
        .await
        .unwrap();
    wait_until(WAIT, "the track sends again", || {
        alice.camera_stats().unwrap().frames_sent > sent + 30
    })
    .await;
    let before = bob
        .remote_video(&cam)
        .map_or(0, |v| v.stats().frames_decoded);
    wait_until(WAIT, "Bob decodes the revived track", || {
        bob.remote_video(&cam)
            .is_some_and(|v| v.stats().frames_decoded > before + 10)
    })
    .await;
    alice.leave().await;
    bob.leave().await;
    server.shutdown(Duration::from_secs(2)).await;
}
