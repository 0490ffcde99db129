//! Active speakers: three bots play tones at different loudness; the server, reading only the
//! audio-level header extension, reports the loudest first to everyone, and an empty list once
//! they stop.

mod common;

use std::time::Duration;
use videoroom_testkit::{start_server, test_config, ws_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loudest_tone_is_reported_first() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let events = common::temp_path("listener-events.jsonl");
    let events_arg = events.to_str().expect("utf-8 path").to_owned();
    let mut listener = common::spawn(
        &url,
        "speakers",
        "Listener",
        &[
            "--duration",
            "14s",
            "--audio",
            "none",
            "--video",
            "none",
            "--events",
            &events_arg,
            "-q",
        ],
    );
    let mut talkers = Vec::new();
    for (name, amplitude, hz) in [
        ("Soft", "0.05", "300"),
        ("Loud", "0.6", "500"),
        ("Mid", "0.15", "700"),
    ] {
        talkers.push(common::spawn(
            &url,
            "speakers",
            name,
            &[
                "--duration",
                "8s",
                "--video",
                "none",
                "--tone-amplitude",
                amplitude,
                "--tone-hz",
                hz,
                "-q",
            ],
        ));
    }
    let loud_first = common::wait_event(
        &events,
        "active_speakers with Loud first",
        Duration::from_secs(30),
        |e| {
            e["event"] == "active_speakers"
                && e["peers"]
                    .as_array()
                    .is_some_and(|p| p.len() >= 2 && p[0] == "Loud")
        },
    )
    .await;
    eprintln!("{loud_first}");
    for mut talker in talkers {
        assert_eq!(talker.wait_exit(Duration::from_secs(60)).await, 0);
    }
    // Once everyone left, nobody speaks.
    common::wait_event(&events, "an empty list", Duration::from_secs(10), |e| {
        e["event"] == "active_speakers" && e["peers"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    assert_eq!(listener.wait_exit(Duration::from_secs(60)).await, 0);
    // The order never put a quieter tone ahead of the loud one while all three played.
    let lists: Vec<Vec<String>> = common::read_events(&events)
        .iter()
        .filter(|e| e["event"] == "active_speakers")
        .filter_map(|e| {
            e["peers"].as_array().map(|p| {
                p.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .collect();
    let full: Vec<&Vec<String>> = lists.iter().filter(|l| l.len() == 3).collect();
    assert!(!full.is_empty(), "never all three: {lists:?}");
    assert!(
        full.iter().all(|l| l[0] == "Loud"),
        "a quieter tone led while all three played: {lists:?}"
    );
}
