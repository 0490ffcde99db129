//! SIGINT/SIGTERM: the server binary stops taking joins, tells its peers, closes rooms and exits 0
//! within 5 s.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use videoroom_protocol::ServerMessage;
use videoroom_testkit::*;

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_server() -> (Child, String) {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_videoroom-server"))
            .args(["--listen", "127.0.0.1:0", "--rtc-bind-ip", "127.0.0.1"])
            .args(["--udp-port", "0", "--tcp-port", "0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected: {line}"));
    (child, format!("ws://{addr}/ws"))
}

async fn wait_exit(child: &mut Child, bound: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            return status;
        }
        assert!(
            t0.elapsed() < bound,
            "server still running {bound:?} after the signal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args(["-s", sig, &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_peers_and_exits_0_within_5_s() {
    let (mut child, url) = spawn_server();
    let publisher = TestPeer::join(&url, "bye", "alice", PeerOptions::default()).await;
    let viewer = TestPeer::join(&url, "bye", "bob", PeerOptions::default()).await;
    let mut lobby = RawClient::connect(&url).await; // connected, not joined
    wait_until(WAIT, "media flows", || {
        viewer.received_count("alice-cam") > 10
    })
    .await;

    let t0 = Instant::now();
    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(5)).await;
    assert!(status.success(), "exit status {status:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    for peer in [&publisher, &viewer] {
        wait_until(WAIT, "peers are told the server is closing", || {
            peer.state()
                .saw(|m| matches!(m, ServerMessage::Closing { .. }))
        })
        .await;
    }
    let closing = lobby.recv().await;
    assert!(
        matches!(closing, ServerMessage::Closing { .. }),
        "{closing:?}"
    );
}

#[tokio::test]
async fn sigint_on_an_idle_server_exits_0_at_once() {
    let (mut child, _) = spawn_server();
    signal(&child, "INT");
    let status = wait_exit(&mut child, Duration::from_secs(5)).await;
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn joins_during_shutdown_are_refused() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut early = RawClient::connect(&url).await;
    assert!(matches!(
        early.join("r", "early").await,
        ServerMessage::Joined { .. }
    ));
    let addr = server.local_addr();
    let drained = server.shutdown(Duration::from_secs(4)).await;
    assert!(drained, "every session ended within the grace period");
    let closing = early
        .recv_until(|m| matches!(m, ServerMessage::Closing { .. }))
        .await;
    assert!(matches!(closing, ServerMessage::Closing { .. }));
    // The listener is gone: new connections are refused.
    assert!(
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .is_err()
    );
}
