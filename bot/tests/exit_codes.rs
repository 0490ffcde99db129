//! Clear exit codes and messages: bad arguments (2), unreachable server (3), full room (4),
//! refused join (5), lost session without reconnection (6).

mod common;

use std::process::Output;
use std::time::{Duration, Instant};
use videoroom_testkit::{RawClient, start_server, test_config, ws_url};

async fn run(args: &[&str]) -> Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(common::BOT)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("bot exits in time")
    .expect("bot runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn bad_arguments_exit_2() {
    for args in [
        &["--room", "r"][..],
        &[
            "--server",
            "ws://127.0.0.1:1/ws",
            "--room",
            "r",
            "--video",
            "holo",
        ],
        &[
            "--server",
            "ws://127.0.0.1:1/ws",
            "--room",
            "r",
            "--audio",
            "file:",
        ],
        &[
            "--server",
            "ws://127.0.0.1:1/ws",
            "--room",
            "r",
            "--duration",
            "soon",
        ],
        &[
            "--server",
            "ws://127.0.0.1:1/ws",
            "--room",
            "r",
            "--fps",
            "0",
        ],
    ] {
        let out = run(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} explains itself");
    }
    let missing = common::temp_path("missing.y4m");
    let video = format!("file:{}", missing.display());
    let out = run(&[
        "--server",
        "ws://127.0.0.1:1/ws",
        "--room",
        "r",
        "--video",
        &video,
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.y4m"), "{}", stderr(&out));
    let wav = format!("file:{}", common::temp_path("missing.wav").display());
    let out = run(&[
        "--server",
        "ws://127.0.0.1:1/ws",
        "--room",
        "r",
        "--audio",
        &wav,
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.wav"), "{}", stderr(&out));
}

#[tokio::test]
async fn unreachable_server_exits_3_quickly() {
    let started = Instant::now();
    let out = run(&["--server", "ws://127.0.0.1:1/ws", "--room", "r"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("unreachable"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn full_room_exits_4_and_refusal_exits_5() {
    let mut config = test_config();
    config.max_peers_per_room = 1;
    let server = start_server(config).await;
    let url = ws_url(&server);
    let mut occupant = RawClient::connect(&url).await;
    occupant.join("full", "First").await;
    let out = run(&["--server", &url, "--room", "full", "--name", "Second"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).to_lowercase().contains("full"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--server", &url, "--room", "other", "--name", "   "]).await;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    server.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_session_without_reconnect_exits_6() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut bot = common::spawn(&url, "lost", "A", &["--no-reconnect", "--video", "none"]);
    bot.wait_line(Duration::from_secs(30), |l| l.starts_with("joined"))
        .await;
    server.shutdown(Duration::from_secs(2)).await;
    assert_eq!(bot.wait_exit(Duration::from_secs(30)).await, 6);
    // The stats are still written.
    assert_eq!(bot.report()["name"], "A");
}
