//! Screen sharing between real `videoroom-bot` processes: A shares `--screen pattern` for 4 s
//! next to its camera; B sees the screen track come (`source: "screen"`), decodes it, sees it go,
//! and A's camera never stalls meanwhile. A moderator's `/stopscreen` ends a share too.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use videoroom_testkit::{start_server, test_config, ws_url};

/// Bound for anything that normally happens within a second or two.
const WAIT: Duration = Duration::from_secs(30);

fn is(event: &Value, kind: &str) -> bool {
    event["event"] == kind
}

fn t_ms(event: &Value) -> u64 {
    event["t_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("t_ms: {event}"))
}

/// A fresh `--events` path for `name`, and the arguments naming it.
fn events_for(name: &str) -> (PathBuf, String) {
    let path = common::temp_path(&format!("{name}-events.jsonl"));
    let arg = path.to_string_lossy().into_owned();
    (path, arg)
}

/// Bot B, watching `room` for `duration` (publishing nothing: less work on a 2-core machine),
/// joined; and its `--events` log.
async fn watcher(url: &str, room: &str, duration: &str) -> (common::Bot, PathBuf) {
    let (events, events_arg) = events_for("B");
    let bot = common::spawn(
        url,
        room,
        "B",
        &[
            "--video",
            "none",
            "--audio",
            "none",
            "--duration",
            duration,
            "--events",
            &events_arg,
        ],
    );
    common::wait_event(&events, "B joined", WAIT, |e| is(e, "joined")).await;
    (bot, events)
}

/// The `error` events of a log.
fn errors(path: &Path) -> Vec<Value> {
    common::read_events(path)
        .into_iter()
        .filter(|e| is(e, "error"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_screen_comes_is_decoded_and_goes_while_the_camera_keeps_flowing() {
    let started = std::time::Instant::now();
    let server = start_server(test_config()).await;
    let url = ws_url(&server);

    // B watches: it publishes nothing (less work on a 2-core machine) and leaves first, while A
    // is still in the room, so its report sees A's camera live to the end.
    let (mut b, b_events) = watcher(&url, "screen", "13s").await;

    let (a_events, a_events_arg) = events_for("A");
    let mut a = common::spawn(
        &url,
        "screen",
        "A",
        &[
            "--video",
            "pattern",
            "--audio",
            "none",
            "--screen",
            "pattern",
            "--screen-after",
            "1s",
            "--screen-for",
            "4s",
            "--duration",
            "15s",
            "--events",
            &a_events_arg,
        ],
    );

    // B: A's screen is announced as a screen, its first frame decoded, then it goes.
    let added = common::wait_event(&b_events, "A's screen announced at B", WAIT, |e| {
        is(e, "track_added") && e["name"] == "A" && e["source"] == "screen"
    })
    .await;
    assert_eq!(added["kind"], "video", "{added}");
    let screen_id = added["track_id"].as_str().expect("track_id").to_owned();
    let ready = common::wait_event(&b_events, "A's screen decoded at B", WAIT, |e| {
        is(e, "track_ready") && e["track_id"] == screen_id.as_str()
    })
    .await;
    assert_eq!(ready["source"], "screen", "{ready}");
    let removed = common::wait_event(&b_events, "A's screen removed at B", WAIT, |e| {
        is(e, "track_removed") && e["track_id"] == screen_id.as_str()
    })
    .await;
    assert_eq!(removed["source"], "screen", "{removed}");
    assert_eq!(removed["name"], "A", "{removed}");
    assert!(
        t_ms(&added) <= t_ms(&ready) && t_ms(&ready) < t_ms(&removed),
        "added {added}, ready {ready}, removed {removed}"
    );
    // A's camera is a camera, and is still there after the share.
    let camera = common::wait_event(&b_events, "A's camera at B", WAIT, |e| {
        is(e, "track_added") && e["name"] == "A" && e["source"] == "camera"
    })
    .await;
    let camera_id = camera["track_id"].as_str().expect("track_id").to_owned();
    let camera_ready = common::wait_event(&b_events, "A's camera decoded at B", WAIT, |e| {
        is(e, "track_ready") && e["track_id"] == camera_id.as_str()
    })
    .await;

    // A: started and stopped by itself after --screen-for, under the id B saw.
    let share = common::wait_event(&a_events, "A shares", WAIT, |e| {
        is(e, "screen_share_started")
    })
    .await;
    assert_eq!(share["track_id"], screen_id.as_str(), "{share}");
    assert_eq!(
        (&share["width"], &share["height"], &share["fps"]),
        (&Value::from(1280), &Value::from(720), &Value::from(15)),
        "{share}"
    );
    let ended = common::wait_event(&a_events, "A's share ends", WAIT, |e| {
        is(e, "screen_share_ended")
    })
    .await;
    assert_eq!(ended["reason"], "stopped", "{ended}");
    assert_eq!(ended["track_id"], screen_id.as_str(), "{ended}");
    let shared_ms = t_ms(&ended) - t_ms(&share);
    assert!(
        (3_900..8_000).contains(&shared_ms),
        "--screen-for 4s shared for {shared_ms} ms"
    );

    assert_eq!(b.wait_exit(WAIT).await, 0, "B: {:?}", b.seen);
    assert_eq!(a.wait_exit(WAIT).await, 0, "A: {:?}", a.seen);

    let report = b.report();
    eprintln!("B: {report:#}");
    let screens = common::tracks_from(&report, "A", "screen");
    assert_eq!(screens.len(), 1, "one screen track of A in B's report");
    let screen = screens[0];
    assert_eq!(screen["track_id"], screen_id.as_str(), "{screen}");
    assert_eq!(screen["kind"], "video", "{screen}");
    assert_eq!(screen["present"], false, "gone by the end: {screen}");
    let screen_frames = screen["frames_decoded"].as_u64().expect("frames_decoded");
    assert!(
        screen_frames > 20,
        "B decoded {screen_frames} frames of A's screen"
    );
    assert_eq!(screen["frame_numbers_increasing"], true, "{screen}");

    // The camera kept flowing throughout, the share included: no gap between two decoded
    // frames longer than a second, and at least half its 30 fps from its first frame to B's
    // report.
    let cameras = common::tracks_from(&report, "A", "camera");
    assert_eq!(cameras.len(), 1, "one camera track of A in B's report");
    let cam = cameras[0];
    assert_eq!(cam["present"], true, "A is still there: {cam}");
    let cam_frames = cam["frames_decoded"].as_u64().expect("frames_decoded");
    let longest_gap = cam["longest_gap_ms"].as_u64().expect("longest_gap_ms");
    let watched_s =
        report["duration_s"].as_f64().expect("duration_s") - t_ms(&camera_ready) as f64 / 1000.0;
    assert!(
        watched_s > 5.0,
        "B watched A's camera across the share: {watched_s} s"
    );
    let expected = (watched_s * 30.0 * 0.5) as u64;
    assert!(
        cam_frames >= expected,
        "B decoded {cam_frames} camera frames in {watched_s:.1} s (≥ {expected} wanted)"
    );
    assert!(
        longest_gap < 1_000,
        "A's camera stalled {longest_gap} ms at B: {cam}"
    );
    assert_eq!(cam["frame_numbers_increasing"], true, "{cam}");
    assert_eq!(
        report["errors"].as_array().map(Vec::len),
        Some(0),
        "B: {report}"
    );

    // A's own report lists the share among its tracks.
    let report = a.report();
    eprintln!("A: {report:#}");
    let local = report["local_tracks"].as_array().expect("local_tracks");
    let own: Vec<&Value> = local.iter().filter(|t| t["source"] == "screen").collect();
    assert_eq!(own.len(), 1, "A's screen among {local:#?}");
    assert_eq!(own[0]["track_id"], screen_id.as_str(), "{}", own[0]);
    assert_eq!(own[0]["active"], false, "{}", own[0]);
    let captured = own[0]["frames_captured"].as_u64().expect("frames_captured");
    assert!(captured > 20, "A encoded {captured} screen frames");
    let camera = local
        .iter()
        .find(|t| t["source"] == "camera")
        .expect("A's camera");
    assert!(camera["frames_sent"].as_u64().expect("frames_sent") > 0);
    assert_eq!(
        report["errors"].as_array().map(Vec::len),
        Some(0),
        "A: {report}"
    );
    for log in [&a_events, &b_events] {
        assert!(
            errors(log).is_empty(),
            "{}: {:?}",
            log.display(),
            errors(log)
        );
    }

    server.shutdown(Duration::from_secs(2)).await;
    eprintln!(
        "screen share test took {:?}: B decoded {screen_frames} screen and {cam_frames} camera \
         frames (longest camera gap {longest_gap} ms), A shared {shared_ms} ms, {captured} \
         frames encoded",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_stops_a_screen_share() {
    let started = std::time::Instant::now();
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let light = ["--video", "none", "--audio", "none"];

    // C joins first, so it moderates this open room, and takes commands on stdin.
    let (c_events, c_events_arg) = events_for("C");
    let mut command = Command::new(common::BOT);
    command.stdin(Stdio::piped());
    let mut c_args = light.to_vec();
    c_args.extend(["--events", &c_events_arg, "--commands-from-stdin"]);
    let mut c = common::spawn_via(command, &url, "modscreen", "C", &c_args);
    let mut c_in = c.child.stdin.take().expect("stdin piped");
    let joined = common::wait_event(&c_events, "C joined", WAIT, |e| is(e, "joined")).await;
    assert_eq!(joined["moderator"], true, "{joined}");

    // A shares a small pattern from the moment it joins, with nothing else to send.
    let (a_events, a_events_arg) = events_for("A");
    let mut a_args = light.to_vec();
    a_args.extend([
        "--screen",
        "pattern",
        "--screen-size",
        "640x360",
        "--events",
        &a_events_arg,
    ]);
    let mut a = common::spawn(&url, "modscreen", "A", &a_args);
    let added = common::wait_event(&c_events, "A's screen at C", WAIT, |e| {
        is(e, "track_added") && e["name"] == "A" && e["source"] == "screen"
    })
    .await;
    let screen_id = added["track_id"].as_str().expect("track_id").to_owned();
    common::wait_event(&c_events, "A's screen decoded at C", WAIT, |e| {
        is(e, "track_ready") && e["track_id"] == screen_id.as_str()
    })
    .await;
    let share = common::wait_event(&a_events, "A shares", WAIT, |e| {
        is(e, "screen_share_started")
    })
    .await;
    assert_eq!(share["track_id"], screen_id.as_str(), "{share}");

    c_in.write_all(b"/stopscreen A\n").await.expect("typing");
    c_in.flush().await.expect("flushing");

    let ended = common::wait_event(&a_events, "A's share ended", WAIT, |e| {
        is(e, "screen_share_ended")
    })
    .await;
    assert_eq!(ended["reason"], "moderator", "{ended}");
    assert_eq!(ended["by"], "C", "{ended}");
    assert_eq!(ended["track_id"], screen_id.as_str(), "{ended}");
    let moderated =
        common::wait_event(&a_events, "A told of it", WAIT, |e| is(e, "moderated")).await;
    assert_eq!(moderated["action"], "stop_screen", "{moderated}");
    assert_eq!(moderated["by"], "C", "{moderated}");
    let removed = common::wait_event(&c_events, "A's screen removed at C", WAIT, |e| {
        is(e, "track_removed") && e["track_id"] == screen_id.as_str()
    })
    .await;
    assert_eq!(removed["source"], "screen", "{removed}");

    // The share stays ended (no republishing of a share a moderator stopped): an absence needs
    // a window to look in; 2 s is several renegotiations long on loopback.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a_log = common::read_events(&a_events);
    assert_eq!(
        a_log
            .iter()
            .filter(|e| is(e, "screen_share_started"))
            .count(),
        1,
        "{a_log:#?}"
    );
    let c_log = common::read_events(&c_events);
    assert_eq!(
        c_log
            .iter()
            .filter(|e| is(e, "track_added") && e["source"] == "screen")
            .count(),
        1,
        "{c_log:#?}"
    );
    for log in [&a_events, &c_events] {
        assert!(
            errors(log).is_empty(),
            "{}: {:?}",
            log.display(),
            errors(log)
        );
    }

    drop(c_in);
    let _ = a.child.kill().await;
    let _ = c.child.kill().await;
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("moderator stop test took {:?}", started.elapsed());
}

/// Under Xvfb: A opens its own pattern window (`--show-pattern-window`) and shares it by title
/// (`--screen x11:window=videoroom-pattern`); B decodes the window's pattern (the burned-in
/// numbers and draw times come through). C asks for a window that is not there: an `error` event
/// naming the windows there are, and C stays in the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_shares_its_pattern_window_by_title() {
    let xvfb = videoroom_testkit::xvfb::Xvfb::start(1280, 720);
    let on_display = || {
        let mut command = Command::new(common::BOT);
        command.env("DISPLAY", &xvfb.display);
        command
    };
    let server = start_server(test_config()).await;
    let url = ws_url(&server);

    let (mut b, b_events) = watcher(&url, "window", "9s").await;
    let (a_events, a_events_arg) = events_for("A");
    let mut a = common::spawn_via(
        on_display(),
        &url,
        "window",
        "A",
        &[
            "--video",
            "none",
            "--audio",
            "none",
            "--show-pattern-window",
            "640x360",
            "--screen",
            "x11:window=videoroom-pattern",
            "--duration",
            "12s",
            "--events",
            &a_events_arg,
        ],
    );
    let share = common::wait_event(&a_events, "A shares its window", WAIT, |e| {
        is(e, "screen_share_started")
    })
    .await;
    assert_eq!(
        (&share["width"], &share["height"]),
        (&Value::from(640), &Value::from(360)),
        "{share}"
    );
    let added = common::wait_event(&b_events, "A's window announced at B", WAIT, |e| {
        is(e, "track_added") && e["name"] == "A" && e["source"] == "screen"
    })
    .await;
    assert_eq!(added["track_id"], share["track_id"], "{added}");

    let (c_events, c_events_arg) = events_for("C");
    let mut c = common::spawn_via(
        on_display(),
        &url,
        "window",
        "C",
        &[
            "--video",
            "none",
            "--audio",
            "none",
            "--screen",
            "x11:window=nope",
            "--duration",
            "2s",
            "--events",
            &c_events_arg,
        ],
    );
    let error = common::wait_event(&c_events, "C's error", WAIT, |e| is(e, "error")).await;
    let message = error["message"].as_str().expect("message");
    assert!(
        message.contains("no window titled \"nope\"") && message.contains("\"videoroom-pattern\""),
        "{message}"
    );
    assert_eq!(
        c.wait_exit(WAIT).await,
        0,
        "C goes on without a share: {:?}",
        c.seen
    );
    assert!(
        !common::read_events(&c_events)
            .iter()
            .any(|e| is(e, "screen_share_started")),
        "C shared nothing"
    );

    assert_eq!(b.wait_exit(WAIT).await, 0, "B: {:?}", b.seen);
    assert_eq!(a.wait_exit(WAIT).await, 0, "A: {:?}", a.seen);
    let report = b.report();
    let screens = common::tracks_from(&report, "A", "screen");
    assert_eq!(screens.len(), 1, "A's window in B's report: {report:#}");
    let screen = screens[0];
    let frames = screen["frames_decoded"].as_u64().expect("frames_decoded");
    assert!(frames > 20, "B decoded {frames} frames of A's window");
    // The pattern's own numbers and draw times came through capture, VP8 and the server.
    let last = screen["last_frame_number"]
        .as_u64()
        .expect("burned-in numbers read");
    assert!(last > 20, "the window's pattern reached frame {last}");
    assert!(
        screen["capture_to_decode"].is_object(),
        "draw → decode latency measured: {screen}"
    );
    for log in [&a_events, &b_events] {
        assert!(
            errors(log).is_empty(),
            "{}: {:?}",
            log.display(),
            errors(log)
        );
    }
    server.shutdown(Duration::from_secs(2)).await;
}
