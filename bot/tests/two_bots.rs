//! Two `videoroom-bot` processes in one room for 10 s: each decodes at least 90 frames of the
//! other with strictly increasing burned-in frame numbers, hears the other's tone at its
//! frequency after the Opus round trip, and prints one status line per second.

mod common;

use std::time::Duration;
use videoroom_testkit::{start_server, test_config, ws_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bots_see_and_hear_each_other() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut a = common::spawn(
        &url,
        "pair",
        "A",
        &["--duration", "10s", "--tone-hz", "440"],
    );
    let mut b = common::spawn(
        &url,
        "pair",
        "B",
        &["--duration", "10s", "--tone-hz", "660"],
    );
    assert_eq!(a.wait_exit(Duration::from_secs(60)).await, 0);
    assert_eq!(b.wait_exit(Duration::from_secs(60)).await, 0);

    for (bot, me, other, other_hz) in [(&a, "A", "B", 660.0), (&b, "B", "A", 440.0)] {
        let report = bot.report();
        eprintln!("{me}: {report:#}");
        let video = common::track_of(&report, other, "video");
        let frames = video["frames_decoded"].as_u64().unwrap();
        assert!(frames >= 90, "{me} decoded {frames} frames of {other}");
        assert_eq!(video["frame_numbers_increasing"], true, "{me}");
        assert!(video["capture_to_decode"]["samples"].as_u64().unwrap() >= 90);
        let p50 = video["capture_to_decode"]["p50_ms"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 < 1000.0, "{me}: p50 {p50} ms");
        assert!(video["join_to_first_frame_ms"].as_f64().is_some());
        let audio = common::track_of(&report, other, "audio");
        let hz = audio["dominant_hz"].as_f64().expect("a tone is heard");
        assert!(
            (hz - other_hz).abs() < 5.0,
            "{me} hears {hz} Hz from {other}"
        );
        assert!(
            audio["frames_decoded"].as_u64().unwrap() >= 250,
            "{me}: {audio}"
        );
        let local = report["local_tracks"].as_array().unwrap();
        assert_eq!(local.len(), 2, "{me} publishes video and audio");
        for track in local {
            assert!(track["frames_sent"].as_u64().unwrap() > 0);
            assert!(track["bitrate_kbps"].as_f64().unwrap() > 0.0);
        }
        assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{me}");
        let status_lines = bot.seen.iter().filter(|l| l.starts_with('[')).count();
        assert!((8..=12).contains(&status_lines), "{me}: {:?}", bot.seen);
        assert!(
            bot.seen
                .iter()
                .any(|l| l.contains("peers 1") && l.contains("connected")),
            "{me}: {:?}",
            bot.seen
        );
    }
    server.shutdown(Duration::from_secs(2)).await;
}
