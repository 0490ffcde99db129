//! A bot that turns its camera and microphone off is seen as muted by the others, and its
//! frames and audio stop reaching them.

mod common;

use std::time::Duration;
use videoroom_testkit::{start_server, test_config, ws_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muted_bot_is_seen_muted_and_its_media_stops() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let events = common::temp_path("viewer-events.jsonl");
    let events_arg = events.to_string_lossy().into_owned();
    let mut viewer = common::spawn(
        &url,
        "mute",
        "Viewer",
        &[
            "--duration",
            "9s",
            "--video",
            "none",
            "--events",
            &events_arg,
        ],
    );
    // A second viewer that does not decode video (a load generator): it still hears the tone.
    // A third decodes nothing.
    let mut blind = common::spawn(
        &url,
        "mute",
        "Blind",
        &["--duration", "9s", "--video", "none", "--no-video-decode"],
    );
    let mut deaf = common::spawn(
        &url,
        "mute",
        "Deaf",
        &[
            "--duration",
            "9s",
            "--video",
            "none",
            "--no-video-decode",
            "--no-audio-decode",
        ],
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

    // The event log tells the same story, with the publisher's name and the kind.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .expect("event log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let has = |event: &str, kind: &str| {
        lines
            .iter()
            .any(|l| l["event"] == event && l["name"] == "Muter" && l["kind"] == kind)
    };
    assert_eq!(
        lines.first().map(|l| l["event"].clone()),
        Some("joined".into())
    );
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "peer_joined" && l["name"] == "Muter")
    );
    for kind in ["video", "audio"] {
        assert!(
            has("track_added", kind) && has("track_muted", kind),
            "{kind}: {lines:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "peer_left" && l["name"] == "Muter")
    );

    assert_eq!(blind.wait_exit(Duration::from_secs(30)).await, 0);
    let blind = blind.report();
    let video = common::track_of(&blind, "Muter", "video");
    assert_eq!(video["frames_decoded"], 0, "no video decoded: {video}");
    assert!(
        common::track_of(&blind, "Muter", "audio")["frames_decoded"]
            .as_u64()
            .unwrap()
            >= 50
    );
    assert_eq!(deaf.wait_exit(Duration::from_secs(30)).await, 0);
    let deaf = deaf.report();
    for kind in ["video", "audio"] {
        let track = common::track_of(&deaf, "Muter", kind);
        assert_eq!(track["frames_decoded"], 0, "nothing decoded: {track}");
    }
    server.shutdown(Duration::from_secs(2)).await;
}
