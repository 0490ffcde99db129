//! A browser that publishes simulcast goes through the same server path as our client: headless
//! Debian Chromium (server/tests/chromium, `--simulcast`) captures its fake camera at 1280x720 and
//! sends it with `sendEncodings` as rids q (¼ size), h (½) and f (full). Two bots watch: one with
//! `--view-size 320x180` must decode Chromium's q layer at exactly its size, the other (no view
//! size) the full capture size; each decodes at least 30 frames, without a layer switch and with
//! few frames dropped. Chromium draws its own pattern (no burned-in frame numbers), so decoded counts and
//! sizes are what is checked.
//!
//! Needs /usr/bin/chromium and `npm ci` in server/tests/chromium, as
//! `server/tests/chromium_interop.rs` does.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use videoroom_testkit::{start_server, test_config, ws_url};

const ROOM: &str = "chromium-simulcast";

/// `videoroom_layer_packets_total` of `/metrics` text per layer rank: `(rank, packets)`.
fn layer_packets(metrics: &str) -> Vec<(String, u64)> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("videoroom_layer_packets_total{layer=\""))
        .filter_map(|rest| {
            let (rank, value) = rest.split_once("\"} ")?;
            Some((rank.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// `(width, height)` of a JSON object with those two fields under the given names.
fn size(v: &Value, w: &str, h: &str) -> (u64, u64) {
    (
        v[w].as_u64().unwrap_or_default(),
        v[h].as_u64().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_simulcast_reaches_each_viewer_at_the_layer_that_fits() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../server/tests/chromium");
    assert!(
        here.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in {} (README's test command does)",
        here.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is not installed (apt-get install chromium; README's test command does)"
    );
    let server = start_server(test_config()).await;
    let url = ws_url(&server);

    // One page publishes; it is ready once all three layers encode. It keeps publishing until
    // its standard input closes (or 120 s).
    let mut driver = Command::new("node")
        .arg(here.join("run.mjs"))
        .args(["--server", &url, "--room", ROOM, "--pages", "1"])
        .args([
            "--expect-remote-peers",
            "0",
            "--simulcast",
            "--min-layers",
            "3",
        ])
        .args([
            "--timeout-ms",
            "60000",
            "--hold-ms",
            "120000",
            "--stdin-ends-hold",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let stdin = driver.stdin.take().expect("stdin piped");
    let mut lines = BufReader::new(driver.stdout.take().expect("stdout piped")).lines();
    let first: Value = {
        let line = tokio::time::timeout(Duration::from_secs(100), lines.next_line())
            .await
            .expect("the driver reports within its own 60 s bound")
            .expect("driver stdout")
            .expect("a line from the driver");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    assert_eq!(
        first["ready"], true,
        "Chromium did not get to publish three layers: {first:#}"
    );
    let page = &first["pages"][0];
    let capture = size(&page["captureSize"], "width", "height");
    assert_eq!(capture, (1280, 720), "the fake camera's capture: {page:#}");
    let layer = |rid: &str| {
        page["outbound"]
            .as_array()
            .expect("outbound")
            .iter()
            .find(|o| o["rid"] == rid)
            .unwrap_or_else(|| panic!("no layer {rid} in {page:#}"))
            .clone()
    };
    let q = size(&layer("q"), "frameWidth", "frameHeight");
    assert_eq!(q, (capture.0 / 4, capture.1 / 4), "Chromium's q layer");

    // The viewers join once the layers flow; both run until their duration ends.
    let bot_args = [
        "--video",
        "none",
        "--audio",
        "none",
        "--duration",
        "10s",
        "-q",
    ];
    let mut small = common::spawn(
        &url,
        ROOM,
        "small",
        &[&bot_args[..], &["--view-size", "320x180"]].concat(),
    );
    let mut large = common::spawn(&url, ROOM, "large", &bot_args);
    assert_eq!(small.wait_exit(Duration::from_secs(60)).await, 0, "small");
    assert_eq!(large.wait_exit(Duration::from_secs(60)).await, 0, "large");

    drop(stdin);
    let last: Value = {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the driver ends once its stdin closes")
            .expect("driver stdout")
            .expect("a final line from the driver");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), driver.wait()).await;
    let chromium = &last["pages"][0];
    let metrics = server.metrics().render();
    let per_rank = layer_packets(&metrics);
    let context = format!(
        "Chromium at the end: outbound {:#}, local errors {:#}, last layers_wanted {:#}; \
         server layer packets {per_rank:?}",
        chromium["outbound"], chromium["localErrors"], chromium["layersWanted"]
    );

    let video = |bot: &common::Bot| common::track_of(&bot.report(), "chrome-1", "video").clone();
    let (small_video, large_video) = (video(&small), video(&large));
    for (name, v, want) in [("small", &small_video, q), ("large", &large_video, capture)] {
        let frames = v["frames_decoded"].as_u64().unwrap_or_default();
        println!(
            "{name}: decoded {frames} frames, sizes {}, first frame {} ms after joining, \
             {} dropped, {} freezes (longest gap {} ms)",
            v["size_timeline"],
            v["join_to_first_frame_ms"],
            v["frames_dropped"],
            v["freezes"],
            v["longest_gap_ms"]
        );
        assert!(
            frames >= 30,
            "{name} decoded {frames} frames: {v:#}\n{context}"
        );
        // A gap in the forwarded sequence (e.g. a forwarded padding-only probe, which our
        // client cannot depacketize) drops every frame up to the next keyframe: more than half
        // of them were lost that way. A busy machine may still drop a few.
        let dropped = v["frames_dropped"].as_u64().unwrap_or_default();
        assert!(
            dropped * 4 < frames,
            "{name} dropped {dropped} frames (decoded {frames}): {v:#}\n{context}"
        );
        assert_eq!(
            size(v, "max_width", "max_height"),
            want,
            "{name}'s largest decoded size: {v:#}\n{context}"
        );
        // One layer throughout: every size it decoded is the one wanted.
        let sizes = v["size_timeline"].as_array().expect("size_timeline");
        assert!(
            sizes
                .iter()
                .all(|s| (s[1].as_u64(), s[2].as_u64()) == (Some(want.0), Some(want.1))),
            "{name} decoded other sizes: {v:#}\n{context}"
        );
    }
    println!("{context}");
    // All three of Chromium's layers reached the server (ranks 0..2, smallest first).
    for rank in ["0", "1", "2"] {
        assert!(
            per_rank.iter().any(|(r, n)| r == rank && *n > 0),
            "no packets of layer rank {rank}: {context}"
        );
    }
    assert!(
        chromium["localErrors"]
            .as_array()
            .is_some_and(|e| e.is_empty()),
        "{context}"
    );
    server.shutdown(Duration::from_secs(2)).await;
}
