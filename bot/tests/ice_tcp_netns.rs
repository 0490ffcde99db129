//! ICE over TCP for a participant whose network drops UDP: our client engine (the bot) and
//! headless Chromium, each in a network namespace where nftables drops every UDP datagram, join
//! a server on the other end of a veth pair and decode the other side's video. The server
//! (in this process) advertises its UDP candidate as usual and a passive TCP candidate on
//! `--tcp-port`; the participant outside the namespace uses UDP.
//!
//! Needs root (network namespaces, veth, nftables: `apt-get install nftables`); skipped with a
//! message when `ip netns add` is not permitted. The Chromium case also needs /usr/bin/chromium
//! and `npm ci` in server/tests/chromium, as `server/tests/chromium_interop.rs` does.
//! Namespaces, veths and nft tables are removed on drop (the nft table lives in the namespace).

mod common;

use common::netns::Netns;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use videoroom_server::engine::io_tcp::TcpCounts;
use videoroom_server::{Config, RunningServer};

/// A namespace joined to this host by a veth pair, with all UDP dropped inside it; `None`
/// (skipped, with a message) where namespaces are not permitted.
fn udp_blocked_net() -> Option<Netns> {
    let net = Netns::or_skip("tcp")?;
    if let Err(e) = net.block_udp() {
        panic!("blocking UDP in the namespace: {e}");
    }
    Some(net)
}

/// A server on the host's end of the veth: HTTP and media on `host_ip`, ICE-TCP on a free port,
/// plain HTTP (the browser page is a secure context of its own, see the Chromium test).
async fn server_on(net: &Netns) -> RunningServer {
    let (server, _) = net.server(true).await;
    assert!(server.tcp_addr().is_some());
    server
}

/// A bot (`command` runs it) with media on `media_ip`, its events and stats in fresh files.
fn spawn_bot(
    command: Command,
    url: &str,
    room: &str,
    name: &str,
    media_ip: Ipv4Addr,
    extra: &[&str],
) -> (common::Bot, PathBuf) {
    let events = common::temp_path(&format!("{name}-events.jsonl"));
    let ip = media_ip.to_string();
    let mut args = vec!["--media-ip", &ip, "--events"];
    let events_arg = events.to_str().unwrap_or_default().to_owned();
    args.push(&events_arg);
    args.extend_from_slice(extra);
    (
        common::spawn_via_media_ip(command, url, room, name, None, &args),
        events,
    )
}

/// Milliseconds from `joined` to the first `connection: connected` in an `--events` log.
fn join_to_connected_ms(events: &Path) -> Option<u64> {
    let lines = common::read_events(events);
    let t = |pred: &dyn Fn(&Value) -> bool| {
        lines
            .iter()
            .find(|e| pred(e))
            .and_then(|e| e["t_ms"].as_u64())
    };
    let joined = t(&|e| e["event"] == "joined")?;
    let connected = t(&|e| e["event"] == "connection" && e["state"] == "connected")?;
    Some(connected.saturating_sub(joined))
}

fn frames_of(report: &Value, peer: &str, kind: &str) -> u64 {
    common::track_of(report, peer, kind)["frames_decoded"]
        .as_u64()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_engine_joins_over_ice_tcp_when_udp_is_dropped() {
    let Some(net) = udp_blocked_net() else {
        return;
    };
    let server = server_on(&net).await;
    let url = format!("ws://{}/ws", server.local_addr());

    let args = ["--duration", "10s", "--quiet"];
    let (mut inside, inside_events) = spawn_bot(
        net.command(common::BOT),
        &url,
        "tcp-only",
        "inside",
        net.ns_ip,
        &args,
    );
    let (mut outside, outside_events) = spawn_bot(
        Command::new(common::BOT),
        &url,
        "tcp-only",
        "outside",
        net.host_ip,
        &args,
    );
    assert_eq!(inside.wait_exit(Duration::from_secs(60)).await, 0, "inside");
    assert_eq!(
        outside.wait_exit(Duration::from_secs(60)).await,
        0,
        "outside"
    );

    let inside_report = inside.report();
    let outside_report = outside.report();
    let got = frames_of(&inside_report, "outside", "video");
    assert!(got >= 30, "inside decoded {got} frames of outside's video");
    let got = frames_of(&outside_report, "inside", "video");
    assert!(got >= 30, "outside decoded {got} frames of inside's video");
    assert!(
        common::track_of(&inside_report, "outside", "audio")["frames_decoded"]
            .as_u64()
            .unwrap_or_default()
            >= 100
    );

    // The inside bot's media went over ICE-TCP (the only TCP participant), while its UDP
    // attempts were dropped.
    let tcp = server.tcp_stats();
    assert!(tcp.accepted >= 1, "{tcp:?}");
    assert!(tcp.frames_in > 300 && tcp.frames_out > 300, "{tcp:?}");
    assert!(net.udp_dropped() > 0, "nft dropped UDP in the namespace");

    let over_tcp = join_to_connected_ms(&inside_events).expect("inside connected");
    let over_udp = join_to_connected_ms(&outside_events).expect("outside connected");
    println!(
        "join to connected: inside (ICE-TCP, after the 300 ms hold-back) {over_tcp} ms, \
         outside (UDP) {over_udp} ms; first frame of outside's video inside after {} ms; \
         TCP connections accepted: {} (1 = the outside bot, on UDP, held its TCP candidate back)",
        common::track_of(&inside_report, "outside", "video")["join_to_first_frame_ms"],
        tcp.accepted
    );
    assert!(over_tcp < 5000, "{over_tcp} ms");
}

/// Two bots on loopback (no namespace, no privileges) against a server that advertises UDP and
/// TCP (`udp`) or TCP alone. Returns each bot's decoded frames of the other's video, the
/// server's ICE-TCP counters and each bot's join-to-connected time.
async fn two_bots_on_loopback(udp: bool, room: &str) -> ([u64; 2], TcpCounts, [u64; 2]) {
    let loopback = Ipv4Addr::LOCALHOST;
    let config = Config {
        tcp_port: Some(0),
        media_udp_candidates: udp,
        ..videoroom_testkit::test_config()
    };
    let server = videoroom_testkit::start_server(config).await;
    let url = format!("ws://{}/ws", server.local_addr());
    let args = ["--duration", "6s", "--quiet"];
    let (mut a, a_events) = spawn_bot(Command::new(common::BOT), &url, room, "A", loopback, &args);
    let (mut b, b_events) = spawn_bot(Command::new(common::BOT), &url, room, "B", loopback, &args);
    assert_eq!(a.wait_exit(Duration::from_secs(60)).await, 0);
    assert_eq!(b.wait_exit(Duration::from_secs(60)).await, 0);
    let frames = [
        frames_of(&a.report(), "B", "video"),
        frames_of(&b.report(), "A", "video"),
    ];
    let connect = [
        join_to_connected_ms(&a_events).expect("A connected"),
        join_to_connected_ms(&b_events).expect("B connected"),
    ];
    (frames, server.tcp_stats(), connect)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_loopback_the_client_engine_decodes_over_ice_tcp_alone() {
    let (frames, tcp, connect) = two_bots_on_loopback(false, "tcp-alone").await;
    assert!(
        frames.iter().all(|f| *f >= 30),
        "frames decoded: {frames:?}"
    );
    assert_eq!(tcp.accepted, 2, "{tcp:?}");
    assert!(tcp.frames_in > 300 && tcp.frames_out > 300, "{tcp:?}");
    println!("loopback, TCP candidate only: join to connected {connect:?} ms; {tcp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_loopback_the_client_engine_holds_tcp_back_while_udp_works() {
    let (frames, tcp, connect) = two_bots_on_loopback(true, "udp-first").await;
    assert!(
        frames.iter().all(|f| *f >= 30),
        "frames decoded: {frames:?}"
    );
    // UDP connects within the hold-back, so the TCP candidate is never even dialed; a machine
    // so loaded that it is, still sends the media over the UDP pair nominated first.
    println!("loopback, UDP and TCP candidates: join to connected {connect:?} ms; {tcp:?}");
    assert!(
        tcp.frames_in < 50,
        "media went over TCP although UDP works: {tcp:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_joins_over_ice_tcp_when_udp_is_dropped() {
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
    let Some(net) = udp_blocked_net() else {
        return;
    };
    let server = server_on(&net).await;
    let url = format!("ws://{}/ws", server.local_addr());

    // A bot outside publishes; Chromium inside must decode its video and hear it.
    let (mut bot, _) = spawn_bot(
        Command::new(common::BOT),
        &url,
        "tcp-chromium",
        "outside",
        net.host_ip,
        &["--duration", "60s", "--quiet"],
    );

    // run.mjs serves its page on 127.0.0.1 inside the namespace (a secure context for
    // getUserMedia) and drives Debian's Chromium with playwright over a pipe.
    let driver = net
        .command("node")
        .arg(here.join("run.mjs"))
        .args(["--server", &url, "--room", "tcp-chromium", "--pages", "1"])
        .args([
            "--expect-remote-peers",
            "1",
            "--min-frames",
            "30",
            "--timeout-ms",
            "60000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(100), driver)
        .await
        .expect("the Chromium driver finishes within its own 60 s bound")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let result: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("driver printed no JSON ({e}): {stdout}"));
    assert!(
        output.status.success() && result["ok"] == true,
        "Chromium over ICE-TCP failed: {result:#}\nserver ICE-TCP: {:?}",
        server.tcp_stats()
    );
    let page = &result["pages"][0];
    let video = page["stats"]
        .as_array()
        .expect("stats")
        .iter()
        .find(|s| s["kind"] == "video")
        .cloned()
        .unwrap_or_default();
    assert!(
        video["framesDecoded"].as_u64().unwrap_or(0) > 30,
        "{video:#}"
    );

    let tcp = server.tcp_stats();
    assert!(tcp.accepted >= 1 && tcp.frames_in > 50, "{tcp:?}");
    assert!(net.udp_dropped() > 0, "nft dropped UDP in the namespace");
    println!(
        "Chromium over ICE-TCP: 30 frames of the bot's video decoded {} ms after the driver \
         started (browser start included); ICE-TCP {tcp:?}",
        result["elapsedMs"]
    );
    let _ = bot.child.kill().await;
}
