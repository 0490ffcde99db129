//! The server under test as a child process, and what the bench reads about it: CPU ticks,
//! RSS and UDP ports from `/proc`, packet counters from `/metrics`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Room size the server is started with: room for 200 subscribers and their publisher.
const MAX_PEERS_PER_ROOM: &str = "256";

/// The server as a child process; killed (and reaped) when dropped, including on panic.
pub struct ServerProcess {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// The HTTP/WebSocket address it printed (`listening on ADDR`).
    pub addr: String,
    /// Lines the server printed after `listening on` (warnings and errors; RUST_LOG=warn).
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Starts `bin` on 127.0.0.1 and waits for its `listening on` line. Both engines take the
    /// same flags; the new one binds its one UDP port (7882 by default), the old one a port per
    /// peer, so no port flag is passed (the old binary has no `--udp-port`).
    pub fn spawn(bin: &str) -> Result<ServerProcess, String> {
        let mut child = Command::new(bin)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--rtc-bind-ip",
                "127.0.0.1",
                "--max-peers-per-room",
                MAX_PEERS_PER_ROOM,
                // Every peer of the load comes from 127.0.0.1: no per-IP abuse limits.
                "--max-upgrades-per-ip-per-sec",
                "0",
                "--max-joins-per-ip-per-sec",
                "0",
            ])
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("VIDEOROOM_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let pid = child.id();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().ok_or("no server stdout")?;
        let stderr = child.stderr.take().ok_or("no server stderr")?;
        // Keep draining both pipes for the server's whole life, so its logging never blocks.
        let out_log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_owned());
                    continue;
                }
                keep(&out_log, line);
            }
        });
        let err_log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            for line in text.lines() {
                keep(&err_log, line.to_owned());
            }
        });
        let mut server = ServerProcess {
            child,
            pid,
            addr: String::new(),
            log,
        };
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(addr) => server.addr = addr,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(200));
                let status = server.child.try_wait().ok().flatten();
                return Err(format!(
                    "{bin} did not print `listening on ADDR` within 15 s (exit status: {status:?}); its output:\n{}",
                    server.log_tail(20)
                ));
            }
        }
        Ok(server)
    }

    /// The last `n` lines the server logged.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let start = log.len().saturating_sub(n);
        log[start..].join("\n")
    }

    /// How many lines the server logged so far.
    pub fn log_len(&self) -> usize {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// An error with the server's last lines if it has exited.
    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "server exited ({status}); its output:\n{}",
                self.log_tail(20)
            )),
            Err(e) => Err(format!("cannot check the server process: {e}")),
        }
    }
}

fn keep(log: &Mutex<Vec<String>>, line: String) {
    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
    if log.len() < 10_000 {
        log.push(line);
    }
}

/// utime + stime of a process (`"self"` or a pid), in clock ticks.
pub fn cpu_ticks(pid: &str) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name (field 2) may contain spaces; fields after it are space separated.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unexpected /proc stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    let parse = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or("unexpected /proc stat format")
    };
    Ok(parse(11)? + parse(12)?)
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VmRSS in /proc status".to_owned())
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that is unavailable).
pub fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The local ports of the UDP sockets a process holds: its open `socket:[inode]` descriptors
/// looked up in `/proc/PID/net/udp` and `udp6`. The new engine has one, the old one a few per
/// peer; the wire capture uses them to tell packets into the server from packets out of it.
pub fn udp_ports(pid: u32) -> Result<HashSet<u16>, String> {
    let dir = format!("/proc/{pid}/fd");
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let Ok(entry) = entry else { continue };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if let Some(inode) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok())
        {
            inodes.insert(inode);
        }
    }
    let mut ports = HashSet::new();
    for table in ["udp", "udp6"] {
        let path = format!("/proc/{pid}/net/{table}");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode`
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(inode)) = (fields.get(1), fields.get(9)) else {
                continue;
            };
            let Ok(inode) = inode.parse::<u64>() else {
                continue;
            };
            if inodes.contains(&inode)
                && let Some((_, port)) = local.rsplit_once(':')
                && let Ok(port) = u16::from_str_radix(port, 16)
            {
                ports.insert(port);
            }
        }
    }
    if ports.is_empty() {
        return Err(format!("server {pid} holds no UDP socket"));
    }
    Ok(ports)
}

/// The server's packet counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerCounters {
    /// `videoroom_rtp_packets_in`.
    pub packets_in: u64,
    /// `videoroom_rtp_packets_out`.
    pub packets_out: u64,
    /// `videoroom_dropped_packets`.
    pub dropped: u64,
}

/// Reads the counters from `http://ADDR/metrics`.
pub async fn scrape(http: &reqwest::Client, addr: &str) -> Result<ServerCounters, String> {
    let url = format!("http://{addr}/metrics");
    let text = async {
        http.get(&url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await
    }
    .await
    .map_err(|e| {
        // reqwest's Display stops at "error sending request"; the cause is in the chain.
        let mut msg = format!("GET {url}: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(&format!(": {s}"));
            source = s.source();
        }
        msg
    })?;
    let value = |name: &str| -> Result<u64, String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (metric, v) = l.split_once(' ')?;
                (metric == name || metric.strip_suffix("_total") == Some(name))
                    .then(|| v.trim().parse::<f64>().ok())?
            })
            .map(|v| v as u64)
            .ok_or_else(|| format!("{name} missing from /metrics"))
    };
    Ok(ServerCounters {
        packets_in: value("videoroom_rtp_packets_in")?,
        packets_out: value("videoroom_rtp_packets_out")?,
        dropped: value("videoroom_dropped_packets")?,
    })
}
