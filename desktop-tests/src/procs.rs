//! Child processes in their own process group, so that whatever they start (WebKitWebDriver →
//! the app → WebKitWebProcess/WebKitNetworkProcess) is killed with them.
//!
//! A test killed by a signal (Ctrl-C, a CI timeout) runs no destructors; its groups are listed
//! in a ledger file, and the next run of the same test kills the ones still alive ([`ledger`]).

pub use nix::sys::signal::Signal;
use nix::sys::signal::killpg;
use nix::unistd::Pid;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::process::{Child, Command};

static LEDGER: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Kills the process groups an earlier run listed in `path` that are still alive (same pid
/// *and* start time as recorded, so never someone else's), then lists every group spawned from
/// now on there.
pub fn ledger(path: &Path) {
    if let Ok(text) = std::fs::read_to_string(path) {
        for line in text.lines() {
            let mut fields = line.split_whitespace().map(str::parse::<u64>);
            let (Some(Ok(pid)), Some(Ok(start))) = (fields.next(), fields.next()) else {
                continue;
            };
            let Ok(pid) = u32::try_from(pid) else {
                continue;
            };
            if crate::cpu::process(pid).is_some_and(|p| p.start == start) {
                eprintln!("killing process group {pid}, left over by an earlier run");
                kill_group(pid, Signal::SIGKILL);
            }
        }
    }
    let _ = std::fs::remove_file(path);
    *LEDGER.lock().unwrap_or_else(|p| p.into_inner()) = Some(path.to_path_buf());
}

fn record(pid: u32) {
    let ledger = LEDGER.lock().unwrap_or_else(|p| p.into_inner());
    let (Some(path), Some(p)) = (ledger.as_ref(), crate::cpu::process(pid)) else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{pid} {}", p.start);
    }
}

/// SIGKILL or another signal to process group `pgid` (never 0 or 1: this process's own group,
/// or init's).
fn kill_group(pgid: u32, signal: Signal) {
    match i32::try_from(pgid) {
        Ok(pid) if pid > 1 => {
            // ESRCH (already gone) is fine.
            let _ = killpg(Pid::from_raw(pid), signal);
        }
        _ => {}
    }
}

/// A child that leads its own process group; the whole group gets SIGKILL on drop.
#[derive(Debug)]
pub struct Group {
    name: String,
    child: Child,
    pid: u32,
    /// Killed and reaped by [`Group::stop`]: the id may belong to someone else by now.
    stopped: bool,
}

impl Group {
    /// Spawns `command` as the leader of a new process group.
    pub fn spawn(name: &str, command: &mut Command) -> std::io::Result<Self> {
        command.process_group(0).kill_on_drop(true);
        let child = command.spawn()?;
        let pid = child.id().unwrap_or_default();
        record(pid);
        Ok(Self {
            name: name.to_owned(),
            child,
            pid,
            stopped: false,
        })
    }

    /// The leader's pid (= the group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Whether the leader has exited (its exit status if so).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM to the group, up to `grace` for the leader to exit, then SIGKILL to the group.
    pub async fn stop(&mut self, grace: Duration) {
        self.signal(Signal::SIGTERM);
        let _ = tokio::time::timeout(grace, self.child.wait()).await;
        self.signal(Signal::SIGKILL);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        self.stopped = true;
    }

    /// Sends `signal` to the whole group.
    pub fn signal(&self, signal: Signal) {
        if !self.stopped {
            kill_group(self.pid, signal);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}
