//! `videoroom-bot` processes: other people in the room, with synthetic media, that log what
//! they see (`--events`, one JSON object per line).

use crate::procs::Group;
use crate::xvfb::log_file;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// The bot binary next to this test or bench (`<profile>/videoroom-bot`).
pub fn bot_bin() -> PathBuf {
    let profile = crate::profile_dir();
    let path = profile.join("videoroom-bot");
    if !path.is_file() {
        let release = if profile.ends_with("release") {
            " --release"
        } else {
            ""
        };
        panic!(
            "no bot binary at {}: build it with `cargo build -p videoroom-bot{release}`",
            path.display()
        );
    }
    path
}

/// How to start one bot.
#[derive(Debug, Clone)]
pub struct BotSpec {
    pub url: String,
    pub room: String,
    pub name: String,
    /// Extra arguments (`--duration 60s`, `--no-video-decode`, …).
    pub args: Vec<String>,
    /// `--events` file.
    pub events: Option<PathBuf>,
    /// `--stats-json` file.
    pub stats: Option<PathBuf>,
    /// Run under `nice -n <n>`.
    pub nice: Option<i32>,
    /// Take chat lines and commands on standard input (`--commands-from-stdin`; write them
    /// with [`say`]).
    pub commands: bool,
    /// stdout and stderr go here.
    pub log: PathBuf,
}

impl BotSpec {
    pub fn new(url: &str, room: &str, name: &str, log: &Path) -> Self {
        Self {
            url: url.to_owned(),
            room: room.to_owned(),
            name: name.to_owned(),
            args: Vec::new(),
            events: None,
            stats: None,
            nice: None,
            commands: false,
            log: log.to_path_buf(),
        }
    }

    /// A bot publishing the moving pattern and a tone for up to three minutes.
    pub fn publishing(url: &str, room: &str, name: &str, log: &Path) -> Self {
        let mut spec = Self::new(url, room, name, log);
        spec.args = [
            "--video",
            "pattern",
            "--audio",
            "tone",
            "--duration",
            "180s",
        ]
        .map(String::from)
        .to_vec();
        spec
    }

    /// Starts it (with media on loopback); killed on drop of the returned group.
    pub fn spawn(&self) -> Group {
        let bin = bot_bin();
        let mut command = match self.nice {
            Some(n) => {
                let mut c = Command::new("nice");
                c.args(["-n", &n.to_string()]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        command
            .args(["--server", &self.url, "--room", &self.room])
            .args(["--name", &self.name, "--media-ip", "127.0.0.1"])
            .args(&self.args)
            .stdin(if self.commands {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(log_file(&self.log))
            .stderr(log_file(&self.log));
        if let Some(events) = &self.events {
            command.arg("--events").arg(events);
        }
        if let Some(stats) = &self.stats {
            command.arg("--stats-json").arg(stats);
        }
        if self.commands {
            command.arg("--commands-from-stdin");
        }
        Group::spawn(&self.name, &mut command)
            .unwrap_or_else(|e| panic!("starting {} failed: {e}", bin.display()))
    }
}

/// Types `line` into the chat of a bot started with [`BotSpec::commands`]: a message, or a
/// command such as `/mute NAME`.
pub async fn say(bot: &mut Group, line: &str) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let name = bot.name().to_owned();
    let stdin = bot
        .child_mut()
        .stdin
        .as_mut()
        .ok_or_else(|| format!("{name} was not started to take commands"))?;
    stdin
        .write_all(format!("{line}\n").as_bytes())
        .await
        .map_err(|e| format!("writing to {name}: {e}"))?;
    stdin
        .flush()
        .await
        .map_err(|e| format!("writing to {name}: {e}"))
}

/// Waits (at most `bound`) until the bot logged an `event` for which `pred` holds.
pub async fn wait_event(
    path: &Path,
    event: &str,
    bound: std::time::Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<(), String> {
    find_event(path, event, bound, pred).await.map(|_| ())
}

/// Waits (at most `bound`) until the bot logged an `event` for which `pred` holds; returns the
/// first such event.
pub async fn find_event(
    path: &Path,
    event: &str,
    bound: std::time::Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value, String> {
    crate::wait_for(bound, &format!("the bot logs `{event}`"), async || {
        events(path)
            .into_iter()
            .find(|e| e["event"] == event && pred(e))
            .ok_or_else(|| "not yet".to_owned())
    })
    .await
}

/// The events a bot wrote so far (a half-written last line is skipped).
pub fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Whether `events` has `event` about the person called `name` (and, if given, of `kind`).
pub fn saw(events: &[Value], event: &str, name: &str, kind: Option<&str>) -> bool {
    events
        .iter()
        .any(|e| e["event"] == event && e["name"] == name && kind.is_none_or(|k| e["kind"] == k))
}

/// Stops a bot with SIGINT (it writes its `--stats-json` then) and returns its statistics for
/// the remote track of `kind` (`video`, `audio`) published by the person called `peer`.
pub async fn stop_and_read_track(
    bot: &mut Group,
    stats: &Path,
    peer: &str,
    kind: &str,
) -> Result<Value, String> {
    stop(bot).await?;
    remote_track(stats, peer, kind)
}

/// From a stopped bot's `--stats-json`: the remote track of `kind` published by `peer`.
pub fn remote_track(stats: &Path, peer: &str, kind: &str) -> Result<Value, String> {
    remote_track_where(stats, &format!("{kind} track of {peer}"), |t| {
        t["peer_name"] == peer && t["kind"] == kind
    })
}

/// From a stopped bot's `--stats-json`: the remote track of `source` (`camera`, `screen`…)
/// published by `peer` (also one removed before the bot stopped).
pub fn remote_track_of_source(stats: &Path, peer: &str, source: &str) -> Result<Value, String> {
    remote_track_where(stats, &format!("{source} track of {peer}"), |t| {
        t["peer_name"] == peer && t["source"] == source
    })
}

/// From a stopped bot's `--stats-json`: the remote track `track_id` (also one removed before
/// the bot stopped).
pub fn remote_track_by_id(stats: &Path, track_id: &str) -> Result<Value, String> {
    remote_track_where(stats, &format!("track {track_id}"), |t| {
        t["track_id"] == track_id
    })
}

fn remote_track_where(
    stats: &Path,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value, String> {
    let text = std::fs::read_to_string(stats)
        .map_err(|e| format!("the bot's statistics {}: {e}", stats.display()))?;
    let report: Value = serde_json::from_str(&text).map_err(|e| format!("bot statistics: {e}"))?;
    report["remote_tracks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| pred(t)).cloned())
        .ok_or_else(|| format!("the bot has no {what}: {report:#}"))
}

/// Stops a bot with SIGINT and waits (at most 15 s) until it exited (it writes its
/// `--stats-json` then).
pub async fn stop(bot: &mut Group) -> Result<(), String> {
    bot.signal(crate::procs::Signal::SIGINT);
    tokio::time::timeout(std::time::Duration::from_secs(15), bot.child_mut().wait())
        .await
        .map_err(|_| "the bot did not stop within 15 s of SIGINT".to_owned())?
        .map(|_| ())
        .map_err(|e| format!("waiting for the bot: {e}"))
}
