//! Simulcast end to end: a bot publishes a 1280x720 camera in three layers; the server forwards
//! each viewer the layer that fits the size it asked for (`--view-size`), nothing to a viewer
//! that hides the track, and the top layer to one that said nothing; the layer nobody receives
//! stops being encoded (dynacast).

mod common;

use std::time::Duration;
use videoroom_testkit::{start_server, test_config, ws_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_viewer_gets_the_layer_that_fits_its_view() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let quiet = ["--audio", "none", "--video", "none", "-q"];
    let mut publisher = common::spawn(
        &url,
        "layers",
        "Pub",
        &[
            "--duration",
            "12s",
            "--width",
            "1280",
            "--height",
            "720",
            "--fps",
            "15",
            "--audio",
            "none",
            "-q",
        ],
    );
    let mut large = common::spawn(
        &url,
        "layers",
        "Large",
        &[&["--duration", "12s"], &quiet[..]].concat(),
    );
    let mut small = common::spawn(
        &url,
        "layers",
        "Small",
        &[&["--duration", "12s", "--view-size", "320x180"], &quiet[..]].concat(),
    );
    let mut hidden = common::spawn(
        &url,
        "layers",
        "Hidden",
        &[&["--duration", "12s", "--view-size", "0x0"], &quiet[..]].concat(),
    );
    for (name, bot) in [
        ("Large", &mut large),
        ("Small", &mut small),
        ("Hidden", &mut hidden),
    ] {
        assert_eq!(bot.wait_exit(Duration::from_secs(90)).await, 0, "{name}");
    }
    assert_eq!(publisher.wait_exit(Duration::from_secs(90)).await, 0);

    let size = |report: &serde_json::Value| {
        let video = common::track_of(report, "Pub", "video");
        (
            video["frames_decoded"].as_u64().unwrap_or(0),
            video["max_width"].as_u64().unwrap_or(0),
            video["max_height"].as_u64().unwrap_or(0),
        )
    };
    let (l, s, h) = (
        size(&large.report()),
        size(&small.report()),
        size(&hidden.report()),
    );
    eprintln!("decoded (frames, max w, max h): large {l:?}, small {s:?}, hidden {h:?}");
    assert!(l.0 >= 30 && (l.1, l.2) == (1280, 720), "large view: {l:?}");
    assert!(s.0 >= 30 && (s.1, s.2) == (320, 180), "320x180 view: {s:?}");
    assert_eq!(h.0, 0, "a hidden track was decoded: {h:?}");

    // The half layer nobody receives is no longer encoded; the other two are.
    let own = publisher.report();
    let camera = own["local_tracks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["source"] == "camera"))
        .expect("the publisher's camera")
        .clone();
    eprintln!("publisher camera: {camera}");
    assert_eq!(camera["layers_paused"], 1, "{camera}");
    assert_eq!(camera["layers_sent"], 2, "{camera}");

    let metrics = server.metrics().render();
    assert!(
        metrics.contains("videoroom_layer_packets_total{layer=\"2\"}"),
        "no top-layer packets counted:\n{metrics}"
    );
}
