//! `--view-size WxH`: a bad value is a clear error with exit code 2 (bad arguments); a viewer
//! that asks for 320x180 still decodes the other's video, and its `--stats-json` reports the
//! largest decoded size and the size changes of each remote video track. (Which layer the
//! server forwards for a view size is the server's tests' business.)

mod common;

use std::time::Duration;
use videoroom_testkit::{start_server, test_config, ws_url};

#[tokio::test]
async fn bad_view_size_is_a_clear_error() {
    for bad in ["320", "320x", "0x180", "axb", "99999x10", "-320x180"] {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(common::BOT)
                .args(["--server", "ws://127.0.0.1:1/ws", "--room", "r"])
                .arg(format!("--view-size={bad}"))
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("bot exits in time")
        .expect("bot runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("--view-size") && stderr.contains("WIDTHxHEIGHT such as 320x180"),
            "{bad}: {stderr}"
        );
    }
}

#[tokio::test]
async fn help_mentions_view_size() {
    let out = tokio::process::Command::new(common::BOT)
        .arg("--help")
        .output()
        .await
        .expect("bot runs");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--view-size <WxH>") && help.contains("0x0"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_with_a_view_size_decodes_and_reports_sizes() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut publisher = common::spawn(&url, "hints", "Pub", &["--duration", "8s", "-q"]);
    let mut viewer = common::spawn(
        &url,
        "hints",
        "Viewer",
        &[
            "--duration",
            "8s",
            "--video",
            "none",
            "--audio",
            "none",
            "--view-size",
            "320x180",
            "-q",
        ],
    );
    assert_eq!(viewer.wait_exit(Duration::from_secs(60)).await, 0);
    assert_eq!(publisher.wait_exit(Duration::from_secs(60)).await, 0);

    let report = viewer.report();
    eprintln!("Viewer: {report:#}");
    let video = common::track_of(&report, "Pub", "video");
    let frames = video["frames_decoded"].as_u64().expect("frames_decoded");
    assert!(frames >= 60, "decoded {frames} frames");
    assert_eq!(video["frame_numbers_increasing"], true);
    let (w, h) = (
        video["max_width"].as_u64().expect("max_width"),
        video["max_height"].as_u64().expect("max_height"),
    );
    // The publisher sends 640x360 (perhaps as simulcast layers of it): what was decoded is
    // that or a layer of it, in the same shape.
    assert!(
        (160..=640).contains(&w) && w * 9 == h * 16,
        "largest decoded size {w}x{h}"
    );
    let changes = video["size_changes"].as_u64().expect("size_changes");
    assert!(
        changes < frames,
        "{changes} size changes in {frames} frames"
    );

    let audio = common::track_of(&report, "Pub", "audio");
    assert!(
        audio["max_width"].is_null() && audio["size_changes"].is_null(),
        "{audio}"
    );
    server.shutdown(Duration::from_secs(2)).await;
}
