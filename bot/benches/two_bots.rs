//! Join → first frame and capture → decode latency for two `videoroom-bot`s on loopback.
//!
//! `cargo bench -p videoroom-bot --bench two_bots [-- --runs N --seconds S]`
//!
//! Each run: a server (in this process), bot A joins and publishes the 640×360@30 pattern and a
//! tone; once A has joined, bot B joins and does the same; both stay S seconds and write
//! `--stats-json`. Per run it prints B's join → first decoded frame of A (A was already
//! publishing: the late-joiner case), A's announcement → first frame of B, and capture → decode
//! p50/p95 in both directions (burned-in capture times, one clock). Then the medians over runs.

use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use videoroom_testkit::{start_server, test_config, ws_url};

const BOT: &str = env!("CARGO_BIN_EXE_videoroom-bot");

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

struct Run {
    b_join_to_first_ms: f64,
    a_added_to_first_ms: f64,
    a_to_b_p50: f64,
    a_to_b_p95: f64,
    b_to_a_p50: f64,
    b_to_a_p95: f64,
}

fn video_of<'a>(report: &'a Value, peer: &str) -> &'a Value {
    report["remote_tracks"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .find(|t| t["peer_name"] == peer && t["kind"] == "video")
        })
        .unwrap_or_else(|| panic!("no video of {peer} in {report:#}"))
}

async fn one_run(url: &str, room: &str, seconds: u64, dir: &std::path::Path) -> Run {
    let spawn = |name: &str, secs: u64| {
        let mut c = Command::new(BOT);
        c.args(["--server", url, "--room", room, "--name", name])
            .args(["--media-ip", "127.0.0.1", "--quiet"])
            .args(["--duration", &format!("{secs}s")])
            .arg("--stats-json")
            .arg(dir.join(format!("{name}.json")))
            .stdout(Stdio::null())
            .kill_on_drop(true);
        c.spawn().expect("bot starts")
    };
    let mut a = spawn("A", seconds + 2);
    // B joins once A is in the room (the server's peer gauge says so).
    wait_for_peers(url, 1).await;
    let mut b = spawn("B", seconds);
    let (ra, rb) = tokio::join!(a.wait(), b.wait());
    assert!(ra.expect("A").success() && rb.expect("B").success());
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("report");
        serde_json::from_str(&text).expect("json")
    };
    let (ja, jb) = (read("A"), read("B"));
    let at_a = video_of(&ja, "B");
    let at_b = video_of(&jb, "A");
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    Run {
        b_join_to_first_ms: f(&at_b["join_to_first_frame_ms"]),
        a_added_to_first_ms: f(&at_a["join_to_first_frame_ms"]),
        a_to_b_p50: f(&at_b["capture_to_decode"]["p50_ms"]),
        a_to_b_p95: f(&at_b["capture_to_decode"]["p95_ms"]),
        b_to_a_p50: f(&at_a["capture_to_decode"]["p50_ms"]),
        b_to_a_p95: f(&at_a["capture_to_decode"]["p95_ms"]),
    }
}

/// Waits until the server reports `n` peers in rooms (its Prometheus gauge).
async fn wait_for_peers(ws_url: &str, n: u64) {
    let http = ws_url.replace("ws://", "").replace("/ws", "");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(body) = metrics(&http).await
            && body.lines().any(|l| {
                l.starts_with("videoroom_peers ")
                    && l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<f64>().ok())
                        == Some(n as f64)
            })
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server never had {n} peers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metrics(addr: &str) -> std::io::Result<String> {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = String::new();
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    while reader.read_line(&mut line).await? > 0 {
        out.push_str(&line);
        line.clear();
    }
    Ok(out)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = arg("--runs", 5);
    let seconds = arg("--seconds", 6);
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let dir = std::env::temp_dir().join(format!("videoroom-bench-bots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    println!("two bots, 640x360@30 pattern + tone, {seconds} s per run, {runs} runs");
    println!(
        "{:>4} {:>22} {:>22} {:>16} {:>16}",
        "run", "B join->first A (ms)", "A added->first B (ms)", "A->B p50/p95", "B->A p50/p95"
    );
    let mut all = Vec::new();
    for i in 0..runs {
        let r = one_run(&url, &format!("bench-{i}"), seconds, &dir).await;
        println!(
            "{:>4} {:>22.0} {:>22.0} {:>8.1}/{:<7.1} {:>8.1}/{:<7.1}",
            i + 1,
            r.b_join_to_first_ms,
            r.a_added_to_first_ms,
            r.a_to_b_p50,
            r.a_to_b_p95,
            r.b_to_a_p50,
            r.b_to_a_p95
        );
        all.push(r);
        // Let the server notice both leaves before the next run.
        wait_for_peers(&url, 0).await;
    }
    let m = |f: fn(&Run) -> f64| median(all.iter().map(f).collect());
    println!(
        "median: B join->first frame {:.0} ms (target <= 500); A added->first {:.0} ms; \
         capture->decode A->B p50 {:.1} ms p95 {:.1} ms, B->A p50 {:.1} ms p95 {:.1} ms (target p50 <= 100)",
        m(|r| r.b_join_to_first_ms),
        m(|r| r.a_added_to_first_ms),
        m(|r| r.a_to_b_p50),
        m(|r| r.a_to_b_p95),
        m(|r| r.b_to_a_p50),
        m(|r| r.b_to_a_p95),
    );
    server.shutdown(Duration::from_secs(2)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
