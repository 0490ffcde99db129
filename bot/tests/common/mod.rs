//! Running `videoroom-bot` processes against a server in the test process.

#![allow(dead_code)]

pub mod netns;
pub mod relay;
pub mod timeline;

use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub const BOT: &str = env!("CARGO_BIN_EXE_videoroom-bot");

/// The publisher of the shaped-link tests: a 1280×720 camera at 15 fps, simulcast layers of
/// 1.5 Mbit/s, 500 and 150 kbit/s.
pub const CAMERA_720P: [&str; 8] = [
    "--width",
    "1280",
    "--height",
    "720",
    "--fps",
    "15",
    "--video-kbps",
    "1500",
];

/// A fresh path for a stats file.
pub fn temp_path(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "videoroom-bot-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// A running bot whose stdout lines arrive on `lines`.
pub struct Bot {
    pub child: Child,
    pub lines: mpsc::UnboundedReceiver<String>,
    pub seen: Vec<String>,
    pub stats: Option<PathBuf>,
}

/// Starts a bot on `url` in `room` as `name` with media on loopback, plus `extra` arguments.
/// Writes its stats to a fresh file.
pub fn spawn(url: &str, room: &str, name: &str, extra: &[&str]) -> Bot {
    spawn_via(Command::new(BOT), url, room, name, extra)
}

/// [`spawn`] through `command`, which runs the bot (e.g. `ip netns exec NS <bot>`).
pub fn spawn_via(command: Command, url: &str, room: &str, name: &str, extra: &[&str]) -> Bot {
    spawn_via_media_ip(command, url, room, name, Some("127.0.0.1"), extra)
}

/// [`spawn_via`] with the bot's `--media-ip` (`None`: the bot picks its own addresses, as in a
/// network namespace).
pub fn spawn_via_media_ip(
    mut command: Command,
    url: &str,
    room: &str,
    name: &str,
    media_ip: Option<&str>,
    extra: &[&str],
) -> Bot {
    let stats = temp_path(&format!("{name}.json"));
    command.args(["--server", url, "--room", room, "--name", name]);
    if let Some(ip) = media_ip {
        command.args(["--media-ip", ip]);
    }
    command
        .arg("--stats-json")
        .arg(&stats)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("bot starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, lines) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            let _ = tx.send(line);
        }
    });
    Bot {
        child,
        lines,
        seen: Vec::new(),
        stats: Some(stats),
    }
}

impl Bot {
    /// Waits (at most `bound`) for a stdout line satisfying `pred`; returns it.
    pub async fn wait_line(&mut self, bound: Duration, pred: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|l| pred(l)) {
            return line.clone();
        }
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("no matching line within {bound:?}; saw {:?}", self.seen)
                })
                .unwrap_or_else(|| panic!("bot output ended; saw {:?}", self.seen));
            self.seen.push(line.clone());
            if pred(&line) {
                return line;
            }
        }
    }

    /// Waits (at most `bound`) for the bot to exit; returns its exit code.
    pub async fn wait_exit(&mut self, bound: Duration) -> i32 {
        let status = tokio::time::timeout(bound, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("bot did not exit within {bound:?}"))
            .expect("wait");
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        status.code().expect("exited normally, not by a signal")
    }

    /// The stats JSON it wrote.
    pub fn report(&self) -> Value {
        let path = self.stats.as_ref().expect("stats path");
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        serde_json::from_str(&text).expect("valid JSON")
    }
}

/// The remote tracks of `report` published by `peer_name` of `kind`.
pub fn tracks_of<'a>(report: &'a Value, peer_name: &str, kind: &str) -> Vec<&'a Value> {
    report["remote_tracks"]
        .as_array()
        .expect("remote_tracks")
        .iter()
        .filter(|t| t["peer_name"] == peer_name && t["kind"] == kind)
        .collect()
}

/// The only remote track of `peer_name` of `kind`.
pub fn track_of<'a>(report: &'a Value, peer_name: &str, kind: &str) -> &'a Value {
    let tracks = tracks_of(report, peer_name, kind);
    assert_eq!(
        tracks.len(),
        1,
        "one {kind} track of {peer_name} in {report:#}"
    );
    tracks[0]
}

/// The remote tracks of `report` published by `peer_name` from `source` (`"camera"`,
/// `"screen"`…).
pub fn tracks_from<'a>(report: &'a Value, peer_name: &str, source: &str) -> Vec<&'a Value> {
    report["remote_tracks"]
        .as_array()
        .expect("remote_tracks")
        .iter()
        .filter(|t| t["peer_name"] == peer_name && t["source"] == source)
        .collect()
}

/// The complete JSON lines of an `--events` log so far (none before the bot created it; a line
/// the bot is still writing is left for the next read).
pub fn read_events(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    complete
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: {l:?} is not JSON: {e}", path.display()))
        })
        .collect()
}

/// Waits (at most `bound`) for an event satisfying `pred` in the `--events` log at `path`;
/// returns it.
pub async fn wait_event(
    path: &std::path::Path,
    what: &str,
    bound: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let events = read_events(path);
        if let Some(event) = events.iter().find(|e| pred(e)) {
            return event.clone();
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "{what}: not in {} within {bound:?}; the log: {events:#?}",
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
