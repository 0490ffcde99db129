//! CPU time from `/proc`: per process (`utime + stime` of `/proc/<pid>/stat`), per process
//! tree (a process and all its descendants, found through their parent pids), and for the
//! whole machine (`/proc/stat`).

use std::collections::HashMap;
use std::time::Instant;

/// One process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// The executable's name (at most 15 characters).
    pub comm: String,
    /// User + system time, clock ticks.
    pub ticks: u64,
    /// Start time, clock ticks after boot (with the pid, names one process for good).
    pub start: u64,
}

/// Parses one `/proc/<pid>/stat` line: `pid (comm) state ppid … utime(14) stime(15) …`.
/// `comm` may contain spaces and parentheses, so split at the last `)`.
pub fn parse_stat(line: &str) -> Option<Proc> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let pid = line[..open].trim().parse().ok()?;
    let comm = line[open + 1..close].to_owned();
    // Fields after the comm, starting at field 3 (state).
    let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Proc {
        pid,
        ppid: u32::try_from(field(4)?).ok()?,
        comm,
        ticks: field(14)? + field(15)?,
        start: field(22)?,
    })
}

/// Process `pid` now, if it exists.
pub fn process(pid: u32) -> Option<Proc> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process visible in `/proc` now.
pub fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name();
        let pid: u32 = name.to_str()?.parse().ok()?;
        process(pid)
    })
    .collect()
}

/// `root` and all its descendants among `all`.
pub fn tree(root: u32, all: &[Proc]) -> Vec<&Proc> {
    let mut out: Vec<&Proc> = all.iter().filter(|p| p.pid == root).collect();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].pid;
        out.extend(all.iter().filter(|p| p.ppid == parent && p.pid != parent));
        i += 1;
    }
    out
}

/// Clock ticks per second (`getconf CLK_TCK`).
pub fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// Busy and total ticks of the whole machine (all cores) from the `cpu` line of `/proc/stat`.
pub fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// CPU ticks of every process at one moment, to subtract from a later one.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    ticks: HashMap<u32, u64>,
    machine: (u64, u64),
}

impl Snapshot {
    pub fn take() -> Self {
        Self {
            at: Instant::now(),
            ticks: processes().into_iter().map(|p| (p.pid, p.ticks)).collect(),
            machine: machine_ticks(),
        }
    }
}

/// What happened between two snapshots.
#[derive(Debug)]
pub struct Interval {
    seconds: f64,
    before: Snapshot,
    after: Vec<Proc>,
    machine: (u64, u64),
}

impl Interval {
    /// From `before` until now.
    pub fn since(before: Snapshot) -> Self {
        let after = processes();
        let machine = machine_ticks();
        Self {
            seconds: before.at.elapsed().as_secs_f64(),
            before,
            after,
            machine,
        }
    }

    fn ticks_of(&self, p: &Proc) -> u64 {
        // A process born during the interval counts from zero. One that died during it is
        // missing from `after` and not counted (its time went to the parent's cutime).
        p.ticks
            .saturating_sub(self.before.ticks.get(&p.pid).copied().unwrap_or(0))
    }

    /// Percent of one core used by `pid` and its descendants whose name passes `filter`.
    pub fn tree_percent(&self, pid: u32, filter: impl Fn(&str) -> bool) -> f64 {
        let ticks: u64 = tree(pid, &self.after)
            .into_iter()
            .filter(|p| filter(&p.comm))
            .map(|p| self.ticks_of(p))
            .sum();
        self.percent(ticks)
    }

    /// Percent of one core used by `pid` alone (all its threads, none of its children).
    pub fn pid_percent(&self, pid: u32) -> f64 {
        let ticks = self
            .after
            .iter()
            .find(|p| p.pid == pid)
            .map_or(0, |p| self.ticks_of(p));
        self.percent(ticks)
    }

    /// Percent of one core used by `pid` and all its descendants.
    pub fn tree_total(&self, pid: u32) -> f64 {
        self.tree_percent(pid, |_| true)
    }

    /// The whole machine's busy time, percent of one core (2 cores busy = 200 %).
    pub fn machine_percent(&self) -> f64 {
        let busy = self.machine.0.saturating_sub(self.before.machine.0);
        self.percent(busy)
    }

    fn percent(&self, ticks: u64) -> f64 {
        if self.seconds <= 0.0 {
            return 0.0;
        }
        ticks as f64 / ticks_per_second() / self.seconds * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_an_awkward_comm() {
        let line = "4242 (Web Content) (x)) S 17 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 30 0 0 20 0 12 0 900 1000 200";
        let p = parse_stat(line).expect("parses");
        assert_eq!(
            (p.pid, p.ppid, p.comm.as_str(), p.ticks, p.start),
            (4242, 17, "Web Content) (x)", 280, 900)
        );
    }

    #[test]
    fn finds_descendants() {
        let p = |pid, ppid| Proc {
            pid,
            ppid,
            comm: String::new(),
            ticks: 0,
            start: 0,
        };
        let all = vec![p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(20, 1), p(13, 10)];
        let mut pids: Vec<u32> = tree(10, &all).iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        assert_eq!(pids, vec![10, 11, 12, 13]);
    }

    #[test]
    fn sees_itself() {
        let me = std::process::id();
        assert!(processes().iter().any(|p| p.pid == me));
    }
}
