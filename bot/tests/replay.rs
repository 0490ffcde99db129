//! A bot replaying a pre-encoded fixture (`--write-fixture`, then `--video replay:DIR --audio
//! replay:DIR`) is a participant like any other: a full-size viewer decodes its 640×360 video
//! with increasing frame numbers and a capture → decode latency that is a true one (each frame is
//! stamped with the time the replay sends it), a 320×180 viewer gets only the half layer, the
//! layer nobody wants is not sent, and its tone is heard. A fixture that is not there is a bad
//! argument, said so.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;
use videoroom_testkit::{start_server, test_config, ws_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_fixture_is_received_like_a_live_camera() {
    let dir = common::temp_path("fixture");
    let began = Instant::now();
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        Command::new(common::BOT)
            .arg("--write-fixture")
            .arg(&dir)
            .args(["--fixture-seconds", "60s", "--tone-hz", "440"])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("the fixture is written within 180 s")
    .expect("the bot runs");
    let written_in = began.elapsed();
    eprintln!(
        "fixture written in {:.1} s: {}",
        written_in.as_secs_f64(),
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        output.status.success(),
        "--write-fixture failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "meta.json",
        "layer0.ivf",
        "layer1.ivf",
        "layer2.ivf",
        "audio.ogg",
    ] {
        assert!(dir.join(file).is_file(), "{file} in the fixture");
    }
    // The replay starts at the frame due now; this test needs ~15 s of what is left.
    assert!(
        written_in < Duration::from_secs(40),
        "writing 60 s took {written_in:?}: too little left to replay"
    );

    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let replay = format!("replay:{}", dir.display());
    let mut r = common::spawn(
        &url,
        "replay",
        "R",
        &["--video", &replay, "--audio", &replay, "--duration", "14s"],
    );
    let silent = ["--video", "none", "--audio", "none", "--duration", "12s"];
    let mut full = common::spawn(&url, "replay", "Full", &silent);
    let mut small = common::spawn(
        &url,
        "replay",
        "Small",
        &[&silent[..], &["--view-size", "320x180"]].concat(),
    );
    assert_eq!(full.wait_exit(Duration::from_secs(60)).await, 0);
    assert_eq!(small.wait_exit(Duration::from_secs(60)).await, 0);
    assert_eq!(r.wait_exit(Duration::from_secs(60)).await, 0);

    let report = full.report();
    eprintln!("Full: {report:#}");
    let video = common::track_of(&report, "R", "video");
    let frames = video["frames_decoded"].as_u64().unwrap();
    assert!(frames >= 150, "Full decoded {frames} frames of R");
    assert_eq!(video["frame_numbers_increasing"], true);
    assert_eq!(
        (video["max_width"].as_u64(), video["max_height"].as_u64()),
        (Some(640), Some(360))
    );
    let p50 = video["capture_to_decode"]["p50_ms"].as_f64().unwrap();
    assert!(
        p50 > 0.0 && p50 < 500.0,
        "capture -> decode p50 {p50} ms: the stamps are not the send times"
    );
    let audio = common::track_of(&report, "R", "audio");
    let hz = audio["dominant_hz"]
        .as_f64()
        .expect("the replayed tone is heard");
    assert!((hz - 440.0).abs() < 5.0, "Full hears {hz} Hz");
    assert!(audio["frames_decoded"].as_u64().unwrap() >= 250, "{audio}");

    let report = small.report();
    eprintln!("Small: {report:#}");
    let video = common::track_of(&report, "R", "video");
    assert!(video["frames_decoded"].as_u64().unwrap() >= 150, "{video}");
    assert_eq!(
        (video["max_width"].as_u64(), video["max_height"].as_u64()),
        (Some(320), Some(180))
    );
    assert_eq!(video["frame_numbers_increasing"], true);

    let report = r.report();
    eprintln!("R: {report:#}");
    let camera = report["local_tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "video")
        .expect("R publishes video");
    assert!(camera["frames_sent"].as_u64().unwrap() >= 150, "{camera}");
    // Full wants the full layer, Small the half one: the quarter layer is not sent.
    assert_eq!(camera["layers_sent"], 2, "{camera}");
    assert_eq!(camera["layers_paused"], 1, "{camera}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0);
    server.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_missing_fixture_is_a_bad_argument() {
    let missing = common::temp_path("no-such-fixture");
    let output = Command::new(common::BOT)
        .args(["--server", "ws://127.0.0.1:9/ws", "--room", "r"])
        .arg("--video")
        .arg(format!("replay:{}", missing.display()))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the bot runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--video") && stderr.contains(&missing.display().to_string()),
        "the error names the option and the path: {stderr}"
    );
}
