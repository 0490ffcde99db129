//! A bot that turns its camera and microphone off is seen as muted by the others, and its
//! frames and audio stop reaching them.

mod common;

use std::time::Duration;
use videoroom_testkit::{start_server, test_config, ws_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muted_bot_is_seen_muted_and_its_media_stops() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut viewer = common::spawn(
        &url,
        "mute",
        "Viewer",
        &["--duration", "9s", "--video", "none"],
    );
    let mut muter = common::spawn(
        &url,
        "mute",
        "Muter",
        &[
            "--duration",
            "8s",
            "--camera-off-at",
            "3s",
            "--mic-off-at",
            "3s",
        ],
    );
    muter
        .wait_line(Duration::from_secs(30), |l| l == "camera off")
        .await;
    assert_eq!(muter.wait_exit(Duration::from_secs(30)).await, 0);
    assert_eq!(viewer.wait_exit(Duration::from_secs(30)).await, 0);
    let report = viewer.report();
    eprintln!("{report:#}");
    let video = common::track_of(&report, "Muter", "video");
    assert_eq!(video["muted"], true, "the viewer sees the camera muted");
    // 3 s at 30 fps before the mute; 5 more unmuted seconds would have given ~240 frames.
    let frames = video["frames_decoded"].as_u64().unwrap();
    assert!(
        (30..=120).contains(&frames),
        "{frames} frames: video stopped at the mute"
    );
    assert_eq!(video["freezes"], 0, "a mute is no freeze");
    let audio = common::track_of(&report, "Muter", "audio");
    assert_eq!(audio["muted"], true);
    let audio_frames = audio["frames_decoded"].as_u64().unwrap();
    assert!(
        (50..=200).contains(&audio_frames),
        "{audio_frames} audio frames"
    );
    assert!(
        audio["dominant_hz"].is_null(),
        "silence since the mute: {audio}"
    );
    server.shutdown(Duration::from_secs(2)).await;
}
