//! A server and two bots on a host whose only interface is loopback, with no multicast route (a
//! container, a minimal VPS image): the call connects and media flows. With multicast DNS on,
//! webrtc 0.21 joined a multicast group for every connection and every join failed with
//! "cannot create a media endpoint: No such device".
//!
//! The "host" is a network namespace this test creates (`ip netns`, root), with `lo` up and
//! nothing else. It runs the `videoroom-server` binary built next to the bot (`cargo build -p
//! videoroom-server`; `cargo test --workspace` builds it).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// A network namespace with only loopback, deleted on drop.
struct Host {
    name: String,
}

impl Host {
    fn new() -> Self {
        let name = format!("vr-nomc-{}", std::process::id());
        let _ = ip(&["netns", "del", &name]);
        ip(&["netns", "add", &name]).unwrap_or_else(|e| {
            panic!("`ip netns add` failed ({e}): this test needs root and iproute2")
        });
        let host = Self { name };
        ip(&["-n", &host.name, "link", "set", "lo", "up"]).expect("lo up");
        host
    }

    /// `command` run inside the namespace.
    fn run(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn server_bin() -> PathBuf {
    let path = PathBuf::from(common::BOT).with_file_name("videoroom-server");
    assert!(
        path.is_file(),
        "no server binary at {}: build it with `cargo build -p videoroom-server`",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_connects_on_a_host_without_a_multicast_route() {
    let host = Host::new();
    let routes = std::process::Command::new("ip")
        .args(["-n", &host.name, "route", "show", "table", "all"])
        .output()
        .expect("ip route");
    let routes = String::from_utf8_lossy(&routes.stdout).to_string();
    assert!(
        !routes.contains("224.0.0.0") && !routes.contains("ff00::"),
        "the namespace has a multicast route:\n{routes}"
    );

    let mut server = host
        .run(server_bin().to_str().expect("utf8 path"))
        .args(["--listen", "127.0.0.1:0", "--rtc-bind-ip", "127.0.0.1"])
        .args(["--udp-port", "0", "--tcp-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let stdout = server.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("listening on ") {
                return addr.to_owned();
            }
        }
        panic!("the server ended without saying where it listens");
    })
    .await
    .expect("the server listens within 20 s");
    let url = format!("ws://{addr}/ws");

    let args = ["--duration", "6s", "--quiet"];
    let mut a = common::spawn_via(host.run(common::BOT), &url, "nomc", "A", &args);
    let mut b = common::spawn_via(host.run(common::BOT), &url, "nomc", "B", &args);
    for bot in [&mut a, &mut b] {
        assert_eq!(bot.wait_exit(Duration::from_secs(60)).await, 0);
    }
    for (me, bot, other) in [("A", &a, "B"), ("B", &b, "A")] {
        let report = bot.report();
        let video = common::track_of(&report, other, "video");
        let frames = video["frames_decoded"].as_u64().unwrap_or_default();
        assert!(frames >= 30, "{me} decoded {frames} frames of {other}");
        let audio = common::track_of(&report, other, "audio");
        assert!(audio["frames_decoded"].as_u64().unwrap_or_default() >= 100);
    }
    let _ = server.kill().await;
}
