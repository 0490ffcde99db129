//! Asking for a camera and a microphone on a machine without them (or for devices that do not
//! exist) is reported clearly and the bot goes on receive-only instead of failing or hanging.

mod common;

use std::time::Duration;
use videoroom_testkit::{start_server, test_config, ws_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_devices_are_reported_and_the_bot_stays_receive_only() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut publisher = common::spawn(&url, "dev", "Pub", &["--duration", "30s"]);
    // Device ids that exist nowhere: the error path is certain on any machine.
    let mut bot = common::spawn(
        &url,
        "dev",
        "NoDevices",
        &[
            "--duration",
            "4s",
            "--video",
            "camera:/dev/video-does-not-exist",
            "--audio",
            "mic:no-such-microphone",
        ],
    );
    assert_eq!(bot.wait_exit(Duration::from_secs(30)).await, 0);
    let report = bot.report();
    eprintln!("{report:#}");
    let errors: Vec<String> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_lowercase())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("camera") && e.contains("video-does-not-exist")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("microphone") && e.contains("no-such-microphone")),
        "{errors:?}"
    );
    assert_eq!(report["local_tracks"].as_array().unwrap().len(), 0);
    // Receive-only still receives.
    let video = common::track_of(&report, "Pub", "video");
    assert!(video["frames_decoded"].as_u64().unwrap() > 0);
    let _ = publisher.child.kill().await;

    // The default devices: present or not, no panic and no hang.
    let mut bot = common::spawn(
        &url,
        "dev",
        "Defaults",
        &[
            "--duration",
            "2s",
            "--video",
            "camera",
            "--audio",
            "mic",
            "--speaker",
        ],
    );
    assert_eq!(bot.wait_exit(Duration::from_secs(30)).await, 0);
    let report = bot.report();
    let errors = report["errors"].to_string().to_lowercase();
    let local = report["local_tracks"].as_array().unwrap();
    let has = |kind: &str| local.iter().any(|t| t["kind"] == kind);
    assert!(has("video") || errors.contains("camera"), "{report:#}");
    assert!(has("audio") || errors.contains("microphone"), "{report:#}");
    server.shutdown(Duration::from_secs(2)).await;
}
