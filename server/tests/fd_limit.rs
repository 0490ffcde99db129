//! The binary raises its soft open-file limit to the hard limit at start-up and logs how many
//! peers fit: at a soft limit of 1024, a few hundred peers used to exhaust it and the next join
//! hung.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The hard open-file limit a shell started here gets (`unlimited` or a number).
fn hard_limit() -> String {
    let out = Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .expect("sh runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one_and_logged() {
    let hard = hard_limit();
    let Ok(hard) = hard.parse::<u64>() else {
        panic!("this test needs a finite hard open-file limit, got {hard:?}");
    };
    assert!(hard > 256, "hard limit {hard} too low to see a raise");
    // The server starts with a soft limit of 256 under that hard limit.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -Sn 256 && exec \"$0\" --listen 127.0.0.1:0 --rtc-bind-ip 127.0.0.1 --udp-port 0 --tcp-port 0",
            env!("CARGO_BIN_EXE_videoroom-server"),
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("open-file limit") {
                let _ = tx.send(line);
                return;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("the server logs its open-file limit within 20 s");
    let peers = videoroom_server::fd_limit::peer_capacity(hard);
    assert!(
        line.contains(&format!(
            "open-file limit {hard}: room for about {peers} peers"
        )),
        "{line}"
    );
    assert!(line.contains("raised_from=256"), "{line}");
}
