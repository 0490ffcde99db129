//! Forwarding benchmark: one publisher (VP8 640x360 + Opus fixtures, ~1.5 Mbit/s) and N
//! receive-only subscribers in one room of a `videoroom-server` running as its own process.
//!
//! Measures, over a window of `--seconds` once every subscriber receives both tracks:
//! - server CPU per forwarded packet: Δ(utime+stime) of the server process / Δ`videoroom_rtp_packets_out`;
//! - forwarding latency: subscriber arrival − publisher send for the same (track, RTP sequence
//!   number), both `Instant`s of this (load) process, over every subscriber: p50 / p99 / max;
//! - loss: 1 − received / (sent × N) for the packets sent in the window (arrivals are collected
//!   until a grace period after the window, so packets in flight at its end are not counted lost,
//!   and packets sent before it are not counted at all);
//! - server RSS per peer: (VmRSS with all N+1 peers joined − VmRSS before anyone joined) / (N+1);
//! - the load process's own CPU (it shares the machine's cores with the server) and the server's
//!   `videoroom_dropped_packets` delta.
//!
//! Each N is run `--runs` times with a fresh server process; the table shows medians.
//!
//! ```text
//! cargo bench -p videoroom-server --bench forwarding -- --subscribers 1,10,50 --runs 3 --seconds 10
//! ```
//! Printing only: it is not a test and asserts nothing about the targets.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use videoroom_testkit::{PeerOptions, Source, TestPeer};

#[path = "forwarding/wire.rs"]
mod wire;

/// Target: server CPU per forwarded packet, µs.
const TARGET_CPU_US_PER_PACKET: f64 = 20.0;
/// Target: p99 forwarding latency at N = 50, ms.
const TARGET_P99_MS: f64 = 5.0;
/// Publisher's track ids (`<name>-mic`, `<name>-cam` in the testkit).
const PUBLISHER: &str = "pub";
const TRACKS: [&str; 2] = ["pub-mic", "pub-cam"];
/// Settling time after every subscriber receives both tracks (keyframe requests, NACK bursts of
/// the joins) before the window opens.
const WARMUP: Duration = Duration::from_secs(2);
/// How long after the window arrivals are still collected (packets in flight at its end).
const GRACE: Duration = Duration::from_secs(1);
/// Bound on one peer's join (WebSocket + `joined`).
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Subscribers joining at once.
const JOIN_BATCH: usize = 10;

// ---------------------------------------------------------------------------------------------
// Command line

struct Args {
    subscribers: Vec<usize>,
    runs: usize,
    seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        subscribers: vec![1, 10, 50],
        runs: 3,
        seconds: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            // Passed by `cargo bench` to harness = false benches.
            "--bench" => {}
            "--wire" => {
                let _ = WIRE.set(true);
            }
            "--subscribers" | "-n" => {
                let v = value("--subscribers")?;
                args.subscribers = v
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| {
                        s.trim()
                            .parse::<usize>()
                            .map_err(|e| format!("--subscribers {v}: {e}"))
                    })
                    .collect::<Result<_, _>>()?;
                if args.subscribers.is_empty() || args.subscribers.contains(&0) {
                    return Err("--subscribers: give one or more counts ≥ 1, e.g. 1,10,50".into());
                }
                if args.subscribers.iter().any(|&n| n > 63) {
                    return Err(
                        "--subscribers: at most 63 (the server runs with --max-peers-per-room 64)"
                            .into(),
                    );
                }
            }
            "--runs" => {
                let v = value("--runs")?;
                args.runs = v.parse().map_err(|e| format!("--runs {v}: {e}"))?;
                if args.runs == 0 {
                    return Err("--runs must be ≥ 1".into());
                }
            }
            "--seconds" => {
                let v = value("--seconds")?;
                args.seconds = v.parse().map_err(|e| format!("--seconds {v}: {e}"))?;
                if !(args.seconds >= 1.0 && args.seconds <= 600.0) {
                    return Err("--seconds must be between 1 and 600".into());
                }
            }
            "--help" | "-h" => {
                println!(
                    "forwarding benchmark\n  --subscribers 1,10,50   subscriber counts N\n  \
                     --runs 3                runs per N (fresh server each)\n  \
                     --seconds 10            measurement window per run\n  \
                     --wire                  also capture lo with tcpdump (root) and report the server's own\n  \
                                             wire-to-wire latency, without the load process's WebRTC stacks"
                );
                std::process::exit(0);
            }
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other} (try --help)"));
            }
            // A positional filter such as `cargo bench forwarding`: nothing to filter here.
            _ => {}
        }
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------------
// The server process

/// The server as a child process; killed (and reaped) when dropped, including on panic.
struct ServerProcess {
    child: Child,
    pid: u32,
    addr: String,
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
    fn spawn() -> Result<ServerProcess, String> {
        let bin = env!("CARGO_BIN_EXE_videoroom-server");
        let mut child = Command::new(bin)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--rtc-bind-ip",
                "127.0.0.1",
                "--max-peers-per-room",
                "64",
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
                    "server did not print `listening on ADDR` within 15 s (exit status: {status:?}); its output:\n{}",
                    server.log_tail(20)
                ));
            }
        }
        Ok(server)
    }

    fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let start = log.len().saturating_sub(n);
        log[start..].join("\n")
    }

    fn log_len(&self) -> usize {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn alive(&mut self) -> Result<(), String> {
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

// ---------------------------------------------------------------------------------------------
// /proc and /metrics

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> Result<u64, String> {
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
fn rss_kib(pid: u32) -> Result<u64, String> {
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
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

#[derive(Clone, Copy, Debug, Default)]
struct ServerCounters {
    packets_in: u64,
    packets_out: u64,
    dropped: u64,
}

async fn scrape(http: &reqwest::Client, addr: &str) -> Result<ServerCounters, String> {
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
    .map_err(|e| format!("GET {url}: {e}"))?;
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

// ---------------------------------------------------------------------------------------------
// One run

#[derive(Clone, Debug)]
struct RunResult {
    /// Forwarded packets per second (server's count).
    forwarded_per_s: f64,
    /// Packets the publisher sent in the window (both tracks).
    sent: usize,
    /// Server CPU per forwarded packet, µs.
    cpu_us_per_packet: f64,
    /// Server CPU, % of one core.
    server_cpu_pct: f64,
    /// This process's CPU, % of one core.
    load_cpu_pct: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    loss_pct: f64,
    rss_per_peer_mib: f64,
    /// Server RSS before anyone joined, MiB.
    rss_base_mib: f64,
    dropped: u64,
    /// packets_out / (packets_in × N) from the server's own counters.
    fanout_ratio: f64,
    /// (p50, p99) latency in ms of the audio and of the video track.
    per_track: [(f64, f64); 2],
    /// Server log lines (warnings) printed during the run.
    warnings: usize,
    /// With `--wire`: the server's own (p50, p99, max) latency in ms from a loopback capture.
    wire: Option<(f64, f64, f64)>,
}

async fn run_once(
    n: usize,
    window: Duration,
    run: usize,
    ticks_per_s: f64,
) -> Result<RunResult, String> {
    let mut server = ServerProcess::spawn()?;
    let pid = server.pid.to_string();
    let url = format!("ws://{}/ws", server.addr);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    // The server is up (it printed its address); let it settle, then take the baseline.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_base = rss_kib(server.pid)?;
    let room = format!("bench-{n}-{run}");

    // Publisher, then subscribers in batches.
    let pub_options = PeerOptions {
        audio: Some(Source::Fixture),
        video: Some(Source::Fixture),
        keep_payloads: false,
        record_times: true,
        ..PeerOptions::default()
    };
    let publisher = join(url.clone(), room.clone(), PUBLISHER.to_owned(), pub_options).await?;
    let sub_options = PeerOptions {
        keep_payloads: false,
        record_times: true,
        ..PeerOptions::receive_only()
    };
    let mut subscribers = Vec::with_capacity(n);
    while subscribers.len() < n {
        let batch: Vec<_> = (subscribers.len()..n.min(subscribers.len() + JOIN_BATCH))
            .map(|i| {
                tokio::spawn(join(
                    url.clone(),
                    room.clone(),
                    format!("sub{i}"),
                    sub_options.clone(),
                ))
            })
            .collect();
        for handle in batch {
            subscribers.push(handle.await.map_err(join_error)??);
        }
        server.alive()?;
    }

    // Every subscriber receives both tracks (bounded).
    let bound = Duration::from_secs(30) + Duration::from_millis(500) * n as u32;
    let started = Instant::now();
    loop {
        let ready = subscribers
            .iter()
            .filter(|s| TRACKS.iter().all(|t| s.received_count(t) >= 10))
            .count();
        if ready == n {
            break;
        }
        if started.elapsed() > bound {
            let missing: Vec<String> = subscribers
                .iter()
                .filter(|s| TRACKS.iter().any(|t| s.received_count(t) < 10))
                .take(5)
                .map(|s| {
                    let st = s.state();
                    format!(
                        "{} (connected: {}, mic: {}, cam: {})",
                        s.name,
                        st.connected,
                        st.received.get(TRACKS[0]).map_or(0, |r| r.count),
                        st.received.get(TRACKS[1]).map_or(0, |r| r.count)
                    )
                })
                .collect();
            return Err(format!(
                "only {ready}/{n} subscribers received both tracks within {bound:?}; e.g. {}; publisher sent {:?}; server log:\n{}",
                missing.join(", "),
                publisher.state().sent,
                server.log_tail(10)
            ));
        }
        server.alive()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(WARMUP).await;
    server.alive()?;
    let warnings_before = server.log_len();

    // The window.
    let before_server = cpu_ticks(&pid)?;
    let before_load = cpu_ticks("self")?;
    let before = scrape(&http, &server.addr).await?;
    let capture = if wire_capture() {
        Some(wire::Capture::start(&format!("{n}-{run}"))?)
    } else {
        None
    };
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let t1 = Instant::now();
    let wire = match capture {
        Some(c) => {
            let w = tokio::task::spawn_blocking(move || c.finish())
                .await
                .map_err(|e| e.to_string())??;
            println!(
                "  N={n} run {run}: wire-to-wire (server only) over {} forwarded packets: p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
                w.samples, w.p50_ms, w.p99_ms, w.max_ms
            );
            Some((w.p50_ms, w.p99_ms, w.max_ms))
        }
        None => None,
    };
    let after = scrape(&http, &server.addr).await?;
    let after_server = cpu_ticks(&pid)?;
    let after_load = cpu_ticks("self")?;
    let rss_all = rss_kib(server.pid)?;
    let elapsed = t1.duration_since(t0).as_secs_f64();
    // Packets sent near the window's end may still be in flight.
    tokio::time::sleep(GRACE).await;
    server.alive()?;
    let warnings = server.log_len() - warnings_before;

    // Latency and loss over the packets the publisher sent in [t0, t1).
    let sent: HashMap<&str, HashMap<u16, Instant>> = {
        let st = publisher.state();
        let mut sent: HashMap<&str, HashMap<u16, Instant>> = HashMap::new();
        for ((track, seq), at) in &st.send_times {
            if *at >= t0
                && *at < t1
                && let Some(t) = TRACKS.iter().find(|t| **t == track.as_str())
            {
                sent.entry(*t).or_default().insert(*seq, *at);
            }
        }
        sent
    };
    let sent_count: usize = sent.values().map(HashMap::len).sum();
    if sent_count == 0 {
        return Err("the publisher sent nothing during the window".into());
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(sent_count * n);
    // Audio (one packet per 20 ms) and video (a burst per frame) apart, to tell burst fan-out delay.
    let mut by_track: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut received = 0usize;
    for sub in &subscribers {
        let st = sub.state();
        for (k, track) in TRACKS.iter().enumerate() {
            let (Some(r), Some(sent)) = (st.received.get(*track), sent.get(track)) else {
                continue;
            };
            // First arrival of each sequence number (a NACK repair may repeat one).
            let mut first: HashMap<u16, Instant> = HashMap::with_capacity(sent.len());
            for (seq, at) in &r.arrivals {
                if let Some(sent_at) = sent.get(seq)
                    && *at >= *sent_at
                    && at.duration_since(*sent_at) < Duration::from_secs(5)
                {
                    first.entry(*seq).or_insert(*at);
                }
            }
            received += first.len();
            for (seq, at) in first {
                latencies.push(at.duration_since(sent[&seq]));
                by_track[k].push(at.duration_since(sent[&seq]));
            }
        }
    }
    let mut pct = |q: f64| percentile_ms(&mut latencies, q);
    let per_track = [0, 1].map(|k| {
        (
            percentile_ms(&mut by_track[k], 0.5),
            percentile_ms(&mut by_track[k], 0.99),
        )
    });

    let forwarded = after.packets_out.saturating_sub(before.packets_out);
    let packets_in = after.packets_in.saturating_sub(before.packets_in);
    let server_cpu_us = (after_server - before_server) as f64 / ticks_per_s * 1e6;
    let load_cpu_us = (after_load - before_load) as f64 / ticks_per_s * 1e6;
    let result = RunResult {
        forwarded_per_s: forwarded as f64 / elapsed,
        sent: sent_count,
        cpu_us_per_packet: if forwarded == 0 {
            f64::NAN
        } else {
            server_cpu_us / forwarded as f64
        },
        server_cpu_pct: server_cpu_us / (elapsed * 1e6) * 100.0,
        load_cpu_pct: load_cpu_us / (elapsed * 1e6) * 100.0,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        loss_pct: (1.0 - received as f64 / (sent_count * n) as f64) * 100.0,
        rss_per_peer_mib: (rss_all as f64 - rss_base as f64) / (n + 1) as f64 / 1024.0,
        rss_base_mib: rss_base as f64 / 1024.0,
        dropped: after.dropped.saturating_sub(before.dropped),
        per_track,
        fanout_ratio: if packets_in == 0 {
            f64::NAN
        } else {
            forwarded as f64 / (packets_in * n as u64) as f64
        },
        warnings,
        wire,
    };
    if warnings > 0 {
        eprintln!(
            "  server warnings during the window ({warnings}), last ones:\n{}",
            server.log_tail(warnings.min(5))
        );
    }

    // Tear down: close the peers' connections, then the server (the guard kills it).
    drop(subscribers);
    drop(publisher);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(server);
    Ok(result)
}

/// Joins a peer as a task, so that a panic in the harness becomes an error message here.
async fn join(
    url: String,
    room: String,
    name: String,
    options: PeerOptions,
) -> Result<TestPeer, String> {
    let mut task = tokio::spawn({
        let name = name.clone();
        async move { TestPeer::join(&url, &room, &name, options).await }
    });
    match tokio::time::timeout(JOIN_TIMEOUT, &mut task).await {
        Ok(joined) => joined.map_err(|e| format!("{name}: {}", join_error(e))),
        Err(_) => {
            task.abort();
            Err(format!("{name} did not join within {JOIN_TIMEOUT:?}"))
        }
    }
}

fn join_error(e: tokio::task::JoinError) -> String {
    if e.is_panic() {
        let p = e.into_panic();
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".to_owned());
        format!("panicked: {msg}")
    } else {
        format!("task failed: {e}")
    }
}

// ---------------------------------------------------------------------------------------------
// Report

/// The `q` quantile of `v` in ms (nearest rank); NaN when empty.
fn percentile_ms(v: &mut [Duration], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

const HEADER: &str = "   N  run    fwd pkt/s  CPU µs/pkt  p50 ms  p99 ms  max ms   loss %  RSS MiB/peer  srv CPU %  load CPU %  drops";

fn row(n: usize, label: &str, r: &RunResult) -> String {
    format!(
        "{n:>4}  {label:<4} {:>10.0}  {:>10.2}  {:>6.2}  {:>6.2}  {:>6.1}  {:>7.3}  {:>12.2}  {:>9.1}  {:>10.1}  {:>5}",
        r.forwarded_per_s,
        r.cpu_us_per_packet,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.loss_pct,
        r.rss_per_peer_mib,
        r.server_cpu_pct,
        r.load_cpu_pct,
        r.dropped
    )
}

fn median_result(results: &[RunResult]) -> RunResult {
    let m = |f: fn(&RunResult) -> f64| median(results.iter().map(f).collect());
    RunResult {
        forwarded_per_s: m(|r| r.forwarded_per_s),
        sent: m(|r| r.sent as f64) as usize,
        cpu_us_per_packet: m(|r| r.cpu_us_per_packet),
        server_cpu_pct: m(|r| r.server_cpu_pct),
        load_cpu_pct: m(|r| r.load_cpu_pct),
        p50_ms: m(|r| r.p50_ms),
        p99_ms: m(|r| r.p99_ms),
        max_ms: m(|r| r.max_ms),
        loss_pct: m(|r| r.loss_pct),
        rss_per_peer_mib: m(|r| r.rss_per_peer_mib),
        rss_base_mib: m(|r| r.rss_base_mib),
        dropped: m(|r| r.dropped as f64) as u64,
        fanout_ratio: m(|r| r.fanout_ratio),
        per_track: [
            (m(|r| r.per_track[0].0), m(|r| r.per_track[0].1)),
            (m(|r| r.per_track[1].0), m(|r| r.per_track[1].1)),
        ],
        warnings: m(|r| r.warnings as f64) as usize,
        wire: if results.iter().all(|r| r.wire.is_some()) && !results.is_empty() {
            let w = |f: fn(&(f64, f64, f64)) -> f64| {
                median(
                    results
                        .iter()
                        .filter_map(|r| r.wire.as_ref().map(f))
                        .collect(),
                )
            };
            Some((w(|x| x.0), w(|x| x.1), w(|x| x.2)))
        } else {
            None
        },
    }
}

/// Whether `--wire` asked for a loopback capture of the window (server-only latency).
fn wire_capture() -> bool {
    WIRE.get().copied().unwrap_or(false)
}

static WIRE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("forwarding bench: {e}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forwarding bench: cannot build the tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let ticks = clock_ticks_per_second();
    let window = Duration::from_secs_f64(args.seconds);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "forwarding bench: server {} as its own process; N = {:?}, {} run(s) each, {:.0} s window, {} core(s), CLK_TCK {}",
        env!("CARGO_BIN_EXE_videoroom-server"),
        args.subscribers,
        args.runs,
        args.seconds,
        cores,
        ticks
    );
    println!(
        "publisher: VP8 640x360 30 fps + Opus 20 ms fixtures (~1.5 Mbit/s); subscribers receive-only; one room\n"
    );

    let mut all: Vec<(usize, Vec<RunResult>, Vec<String>)> = Vec::new();
    let interrupted = runtime.block_on(async {
        for &n in &args.subscribers {
            let mut results = Vec::new();
            let mut failures = Vec::new();
            for run in 1..=args.runs {
                let started = Instant::now();
                // A task, so that a panic fails this run only (the server guard is dropped on unwind).
                let mut task = tokio::spawn(run_once(n, window, run, ticks));
                let outcome = tokio::select! {
                    r = &mut task => r,
                    _ = tokio::signal::ctrl_c() => {
                        eprintln!("interrupted; stopping the server");
                        // Aborting the run drops its future, and with it the server guard.
                        task.abort();
                        let _ = task.await;
                        return true;
                    }
                };
                match outcome.map_err(join_error).and_then(|r| r) {
                    Ok(r) => {
                        println!(
                            "N={n:<3} run {run}: {:.0} fwd pkt/s ({} sent in window, fan-out {:.3}), {:.2} µs/pkt, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms (audio p50/p99 {:.2}/{:.2}, video {:.2}/{:.2}), loss {:.3} %, RSS {:.2} MiB/peer (base {:.1} MiB), server CPU {:.1} %, load CPU {:.1} %, drops {}  [{:.0} s]",
                            r.forwarded_per_s,
                            r.sent,
                            r.fanout_ratio,
                            r.cpu_us_per_packet,
                            r.p50_ms,
                            r.p99_ms,
                            r.max_ms,
                            r.per_track[0].0,
                            r.per_track[0].1,
                            r.per_track[1].0,
                            r.per_track[1].1,
                            r.loss_pct,
                            r.rss_per_peer_mib,
                            r.rss_base_mib,
                            r.server_cpu_pct,
                            r.load_cpu_pct,
                            r.dropped,
                            started.elapsed().as_secs_f64()
                        );
                        results.push(r);
                    }
                    Err(e) => {
                        eprintln!("N={n:<3} run {run}: FAILED: {e}");
                        failures.push(format!("run {run}: {}", e.lines().next().unwrap_or("")));
                    }
                }
                // Let the previous run's connections wind down before the next measurement.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            all.push((n, results, failures));
        }
        false
    });

    println!("\n=== forwarding benchmark: medians per N (individual runs below each) ===");
    println!(
        "targets: server CPU ≤ {TARGET_CPU_US_PER_PACKET} µs per forwarded packet; p99 forwarding latency ≤ {TARGET_P99_MS} ms at N = 50"
    );
    println!("{HEADER}");
    for (n, results, failures) in &all {
        if results.is_empty() {
            println!("{n:>4}  (no successful run)");
        } else {
            let m = median_result(results);
            let cpu_ok = if m.cpu_us_per_packet <= TARGET_CPU_US_PER_PACKET {
                "ok"
            } else {
                "OVER"
            };
            let p99_note = if *n == 50 {
                if m.p99_ms <= TARGET_P99_MS {
                    "p99 ok"
                } else {
                    "p99 OVER"
                }
            } else {
                ""
            };
            println!(
                "{}   <- median of {}; CPU {cpu_ok} {p99_note}",
                row(*n, "med", &m),
                results.len()
            );
            for (i, r) in results.iter().enumerate() {
                println!("{}", row(*n, &format!("#{}", i + 1), r));
            }
        }
        for f in failures {
            println!("{n:>4}  FAILED {f}");
        }
    }
    // The per-packet cost without the fixed per-connection costs (ingest, RTCP, timers), which
    // dominate at small N: the slope of server CPU against forwarded packets.
    let medians: Vec<(usize, RunResult)> = all
        .iter()
        .filter(|(_, r, _)| !r.is_empty())
        .map(|(n, r, _)| (*n, median_result(r)))
        .collect();
    if let (Some((n_lo, lo)), Some((n_hi, hi))) = (
        medians.iter().min_by_key(|(n, _)| *n),
        medians.iter().max_by_key(|(n, _)| *n),
    ) && n_hi > n_lo
        && hi.forwarded_per_s > lo.forwarded_per_s
    {
        let slope = (hi.server_cpu_pct - lo.server_cpu_pct) / 100.0 * 1e6
            / (hi.forwarded_per_s - lo.forwarded_per_s);
        println!(
            "marginal server CPU per forwarded packet, N = {n_lo} → {n_hi} (medians): {slope:.2} µs"
        );
    }
    for (n, m) in &medians {
        if let Some((p50, p99, max)) = m.wire {
            let verdict = if *n == 50 {
                if p99 <= TARGET_P99_MS {
                    " (p99 target ok)"
                } else {
                    " (p99 target OVER)"
                }
            } else {
                ""
            };
            println!(
                "server-only wire-to-wire latency (loopback capture), N = {n:>2} medians: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.1} ms{verdict}"
            );
        }
    }
    println!(
        "columns: fwd pkt/s = Δvideoroom_rtp_packets_out / window; CPU µs/pkt = Δ(server utime+stime) / Δpackets_out; \
         latency = subscriber arrival − publisher send (one clock, this process; includes both clients' WebRTC stacks); \
         loss over packets sent in the window (arrivals counted until {GRACE:?} after it); \
         RSS/peer = (VmRSS all joined − VmRSS empty) / (N+1); CPU % of one core; drops = Δvideoroom_dropped_packets"
    );
    if interrupted {
        std::process::exit(130);
    }
}
