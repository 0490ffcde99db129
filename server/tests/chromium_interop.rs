//! Chromium interop: two headless Debian Chromium pages (the browser's own RTCPeerConnection,
//! fake camera and microphone) and one Rust peer join one room. Each browser must decode more
//! than 30 frames of every remote video and receive audio from every remote peer; the Rust peer
//! must receive both browsers' audio and video.
//!
//! Needs /usr/bin/chromium and `npm ci` in server/tests/chromium (README's test command does both).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use videoroom_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_and_a_rust_peer_see_and_hear_each_other() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/chromium");
    assert!(
        here.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in {} (README's test command does)",
        here.display()
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is not installed (apt-get install chromium; README's test command does)"
    );
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let rust = TestPeer::join(
        &url,
        "interop",
        "rusty",
        PeerOptions {
            audio: Some(Source::Fixture),
            video: Some(Source::Fixture),
            ..PeerOptions::default()
        },
    )
    .await;

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chromium-interop.png");
    let driver = tokio::process::Command::new("node")
        .arg(here.join("run.mjs"))
        .args([
            "--server",
            &url,
            "--room",
            "interop",
            "--pages",
            "2",
            "--expect-remote-peers",
            "2",
        ])
        .args(["--min-frames", "30", "--timeout-ms", "90000"])
        .arg("--screenshot")
        .arg(&screenshot)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(150), driver)
        .await
        .expect("the Chromium driver finishes within its own 90 s bound")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let result: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("driver printed no JSON ({e}): {stdout}"));
    assert!(
        output.status.success() && result["ok"] == true,
        "Chromium interop failed: {result:#}"
    );

    // Both browsers decoded the Rust peer's VP8 (and each other's): check the figures directly.
    let pages = result["pages"].as_array().expect("pages");
    assert_eq!(pages.len(), 2);
    for page in pages {
        let remote = page["remotePeers"].as_array().expect("remotePeers");
        assert!(
            remote.iter().any(|p| p == rust.peer_id.as_str()),
            "a browser does not see the Rust peer: {page:#}"
        );
        let stats = page["stats"].as_array().expect("stats");
        let from_rust = |kind: &str| {
            stats
                .iter()
                .find(|s| s["kind"] == kind && s["peerId"] == rust.peer_id.as_str())
                .cloned()
        };
        let video = from_rust("video")
            .unwrap_or_else(|| panic!("no video stats from the Rust peer: {page:#}"));
        assert!(
            video["framesDecoded"].as_u64().unwrap_or(0) > 30,
            "{video:#}"
        );
        let audio = from_rust("audio")
            .unwrap_or_else(|| panic!("no audio stats from the Rust peer: {page:#}"));
        assert!(
            audio["packetsReceived"].as_u64().unwrap_or(0) > 0,
            "{audio:#}"
        );
    }

    // The Rust peer receives audio and video from both browsers.
    let state = rust.state();
    let from_browsers: Vec<_> = state.received.values().filter(|r| r.count > 20).collect();
    assert_eq!(
        from_browsers
            .iter()
            .filter(|r| r.kind == Some(videoroom_protocol::MediaKind::Video))
            .count(),
        2,
        "video from both browsers: {:?}",
        state
            .received
            .iter()
            .map(|(k, r)| (k, r.stream_id.clone(), r.count))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        from_browsers
            .iter()
            .filter(|r| r.kind == Some(videoroom_protocol::MediaKind::Audio))
            .count(),
        2
    );
}
