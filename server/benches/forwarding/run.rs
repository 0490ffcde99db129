//! One run: start one engine's server, join the scenario's peers, measure a window.

use crate::server::{ServerProcess, cpu_ticks, rss_kib, scrape, udp_ports};
use crate::wire;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use videoroom_testkit::{PeerOptions, Source, TestPeer};

/// Settling time after every subscriber receives every track it should (keyframe requests, NACK
/// bursts of the joins) before the window opens.
const WARMUP: Duration = Duration::from_secs(2);
/// How long after the window arrivals are still collected (packets in flight at its end).
pub const GRACE: Duration = Duration::from_secs(1);
/// Longest loopback capture (`--wire`); it follows the CPU window.
const WIRE_WINDOW: Duration = Duration::from_secs(5);
/// Bound on one peer's join (WebSocket + `joined`).
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Peers joining at once.
const JOIN_BATCH: usize = 10;
/// Suffixes of a publisher's track ids (`<name>-mic`, `<name>-cam` in the testkit): audio, video.
const TRACK_SUFFIXES: [&str; 2] = ["mic", "cam"];

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// One room: one publisher (audio + video fixtures) and this many receive-only subscribers.
    Fanout(usize),
    /// `rooms` rooms of `peers` peers; every peer publishes and receives every other in its room.
    Rooms {
        /// Number of rooms.
        rooms: usize,
        /// Peers per room.
        peers: usize,
    },
}

impl Scenario {
    /// `N=50` or `8x6`.
    pub fn label(&self) -> String {
        match self {
            Scenario::Fanout(n) => format!("N={n}"),
            Scenario::Rooms { rooms, peers } => format!("{rooms}x{peers}"),
        }
    }

    /// Legs per arriving packet: how often the server should send each.
    pub fn fanout(&self) -> usize {
        match self {
            Scenario::Fanout(n) => *n,
            Scenario::Rooms { peers, .. } => peers - 1,
        }
    }

    /// (room, name, publishes) of every peer, in join order.
    fn plan(&self) -> Vec<(usize, String, bool)> {
        match self {
            Scenario::Fanout(n) => std::iter::once((0, "pub".to_owned(), true))
                .chain((0..*n).map(|i| (0, format!("sub{i}"), false)))
                .collect(),
            Scenario::Rooms { rooms, peers } => (0..*rooms)
                .flat_map(|r| (0..*peers).map(move |p| (r, format!("r{r}p{p}"), true)))
                .collect(),
        }
    }
}

/// A server binary under test.
#[derive(Clone, Debug)]
pub struct Engine {
    /// `new` or `old`.
    pub label: &'static str,
    /// The executable.
    pub path: String,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Forwarded packets per second (server's count).
    pub forwarded_per_s: f64,
    /// Packets the publishers sent in the window (all tracks).
    pub sent: usize,
    /// Publisher→subscriber packets expected in the window and not received.
    pub lost: usize,
    /// Server CPU per forwarded packet, µs.
    pub cpu_us_per_packet: f64,
    /// Server CPU, % of one core.
    pub server_cpu_pct: f64,
    /// This (load) process's CPU, % of one core.
    pub load_cpu_pct: f64,
    /// Publisher send → subscriber receive, ms.
    pub p50_ms: f64,
    /// Same, 99th percentile.
    pub p99_ms: f64,
    /// Same, largest.
    pub max_ms: f64,
    /// 1 − received / expected, %.
    pub loss_pct: f64,
    /// (RSS all joined − RSS empty) / peers, MiB.
    pub rss_per_peer_mib: f64,
    /// Server RSS before anyone joined, MiB.
    pub rss_base_mib: f64,
    /// Δ`videoroom_dropped_packets`.
    pub dropped: u64,
    /// packets_out / (packets_in × fan-out) from the server's own counters.
    pub fanout_ratio: f64,
    /// (p50, p99) latency in ms of the audio and of the video tracks.
    pub per_track: [(f64, f64); 2],
    /// Server log lines (warnings) printed during the window.
    pub warnings: usize,
    /// With `--wire`: the server's own (p50, p99, max) latency in ms from a loopback capture.
    pub wire: Option<(f64, f64, f64)>,
}

/// Options that do not change between runs.
#[derive(Clone)]
pub struct RunOptions {
    /// Measurement window.
    pub window: Duration,
    /// Clock ticks per second (`/proc` CPU times).
    pub ticks_per_s: f64,
    /// Capture loopback after the window (`--wire`).
    pub wire: bool,
    /// Record the server with `perf record` during the window into this directory (`--perf`).
    pub perf_dir: Option<PathBuf>,
}

/// A peer of the run and where it sits.
struct Joined {
    room: usize,
    publishes: bool,
    peer: TestPeer,
}

/// One run of `scenario` against `engine`, with a fresh server process.
pub async fn run_once(
    engine: &Engine,
    scenario: Scenario,
    run: usize,
    opts: &RunOptions,
) -> Result<RunResult, String> {
    let mut server = ServerProcess::spawn(&engine.path)?;
    let pid = server.pid.to_string();
    let url = format!("ws://{}/ws", server.addr);
    // A fresh connection per scrape: the server closes a kept-alive HTTP connection that sends
    // no request for --http-header-timeout (10 s), about the window's length, and a pooled one
    // could be reused just as it closes.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    // The server is up (it printed its address); let it settle, then take the baseline.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_base = rss_kib(server.pid)?;
    let tag = format!(
        "{}-{}-{run}",
        scenario.label().replace('=', ""),
        engine.label
    );

    // Peers in batches; in a fan-out the publisher joins first, alone.
    let plan = scenario.plan();
    let publisher_options = PeerOptions {
        audio: Some(Source::Fixture),
        video: Some(Source::Fixture),
        keep_payloads: false,
        record_times: true,
        ..PeerOptions::default()
    };
    let subscriber_options = PeerOptions {
        keep_payloads: false,
        record_times: true,
        ..PeerOptions::receive_only()
    };
    let mut peers: Vec<Joined> = Vec::with_capacity(plan.len());
    let first_batch = if matches!(scenario, Scenario::Fanout(_)) {
        1
    } else {
        JOIN_BATCH
    };
    let mut next = 0;
    while next < plan.len() {
        let size = if next == 0 { first_batch } else { JOIN_BATCH };
        let batch: Vec<_> = plan[next..plan.len().min(next + size)]
            .iter()
            .map(|(room, name, publishes)| {
                let options = if *publishes {
                    publisher_options.clone()
                } else {
                    subscriber_options.clone()
                };
                let handle = tokio::spawn(join(
                    url.clone(),
                    format!("bench-{tag}-r{room}"),
                    name.clone(),
                    options,
                ));
                (*room, *publishes, handle)
            })
            .collect();
        next += batch.len();
        for (room, publishes, handle) in batch {
            let peer = handle.await.map_err(join_error)??;
            peers.push(Joined {
                room,
                publishes,
                peer,
            });
        }
        server.alive()?;
    }

    // (receiver, publisher track id, track kind index) of every pair that should flow.
    let mut pairs: Vec<(usize, String, usize)> = Vec::new();
    for (i, receiver) in peers.iter().enumerate() {
        for (j, publisher) in peers.iter().enumerate() {
            if i != j && publisher.publishes && publisher.room == receiver.room {
                for (k, suffix) in TRACK_SUFFIXES.iter().enumerate() {
                    pairs.push((i, format!("{}-{suffix}", publisher.peer.name), k));
                }
            }
        }
    }

    // Every pair flows (bounded).
    let bound = Duration::from_secs(30) + Duration::from_millis(500) * peers.len() as u32;
    let started = Instant::now();
    loop {
        let waiting: Vec<&(usize, String, usize)> = pairs
            .iter()
            .filter(|(i, track, _)| peers[*i].peer.received_count(track) < 10)
            .collect();
        if waiting.is_empty() {
            break;
        }
        if started.elapsed() > bound {
            let examples: Vec<String> = waiting
                .iter()
                .take(5)
                .map(|(i, track, _)| {
                    let p = &peers[*i].peer;
                    let st = p.state();
                    format!(
                        "{} ← {track}: {} (connected: {})",
                        p.name,
                        st.received.get(track).map_or(0, |r| r.count),
                        st.connected
                    )
                })
                .collect();
            return Err(format!(
                "{} of {} publisher→subscriber tracks not flowing after {bound:?}; e.g. {}; server log:\n{}",
                waiting.len(),
                pairs.len(),
                examples.join(", "),
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
    let perf = match &opts.perf_dir {
        Some(dir) => Some(Perf::start(dir, &tag, server.pid)?),
        None => None,
    };
    let before_server = cpu_ticks(&pid)?;
    let before_load = cpu_ticks("self")?;
    let before = scrape(&http, &server.addr).await?;
    let t0 = Instant::now();
    tokio::time::sleep(opts.window).await;
    let t1 = Instant::now();
    let after = scrape(&http, &server.addr).await?;
    let after_server = cpu_ticks(&pid)?;
    let after_load = cpu_ticks("self")?;
    let rss_all = rss_kib(server.pid)?;
    let elapsed = t1.duration_since(t0).as_secs_f64();
    if let Some(perf) = perf {
        let file = perf.finish();
        println!("  {tag}: perf data in {}", file.display());
    }

    // The server-only latency, captured after the CPU window: tcpdump's copy of every packet is
    // made in the sender's context and would count as server CPU. This also covers the grace
    // period for packets in flight at the window's end.
    let wire = if opts.wire {
        let ports = udp_ports(server.pid)?;
        let capture = wire::Capture::start(&tag)?;
        tokio::time::sleep(opts.window.min(WIRE_WINDOW).max(GRACE)).await;
        let w = tokio::task::spawn_blocking(move || capture.finish(&ports))
            .await
            .map_err(|e| e.to_string())??;
        println!(
            "  {tag}: wire-to-wire (server only) over {} forwarded packets ({} unmatched, {} GSO datagrams): p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
            w.samples, w.unmatched, w.gso_datagrams, w.p50_ms, w.p99_ms, w.max_ms
        );
        Some((w.p50_ms, w.p99_ms, w.max_ms))
    } else {
        // Packets sent near the window's end may still be in flight.
        tokio::time::sleep(GRACE).await;
        None
    };
    server.alive()?;
    let warnings = server.log_len() - warnings_before;

    // Latency and loss over the packets the publishers sent in [t0, t1).
    let mut sent: HashMap<String, HashMap<u16, Instant>> = HashMap::new();
    for p in peers.iter().filter(|p| p.publishes) {
        let st = p.peer.state();
        for ((track, seq), at) in &st.send_times {
            if *at >= t0 && *at < t1 {
                sent.entry(track.clone()).or_default().insert(*seq, *at);
            }
        }
    }
    let sent_count: usize = sent.values().map(HashMap::len).sum();
    if sent_count == 0 {
        return Err("the publishers sent nothing during the window".into());
    }
    let mut latencies: Vec<Duration> = Vec::new();
    // Audio (one packet per 20 ms) and video (a burst per frame) apart, to tell burst fan-out delay.
    let mut by_track: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let (mut expected, mut received) = (0usize, 0usize);
    for (i, track, k) in &pairs {
        let Some(sent) = sent.get(track) else {
            continue;
        };
        expected += sent.len();
        let st = peers[*i].peer.state();
        let Some(r) = st.received.get(track) else {
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
            let d = at.duration_since(sent[&seq]);
            latencies.push(d);
            by_track[*k].push(d);
        }
    }
    let per_track = [0, 1].map(|k| {
        (
            percentile_ms(&mut by_track[k], 0.5),
            percentile_ms(&mut by_track[k], 0.99),
        )
    });

    let forwarded = after.packets_out.saturating_sub(before.packets_out);
    let packets_in = after.packets_in.saturating_sub(before.packets_in);
    let server_cpu_us = (after_server - before_server) as f64 / opts.ticks_per_s * 1e6;
    let load_cpu_us = (after_load - before_load) as f64 / opts.ticks_per_s * 1e6;
    let result = RunResult {
        forwarded_per_s: forwarded as f64 / elapsed,
        sent: sent_count,
        lost: expected.saturating_sub(received),
        cpu_us_per_packet: if forwarded == 0 {
            f64::NAN
        } else {
            server_cpu_us / forwarded as f64
        },
        server_cpu_pct: server_cpu_us / (elapsed * 1e6) * 100.0,
        load_cpu_pct: load_cpu_us / (elapsed * 1e6) * 100.0,
        p50_ms: percentile_ms(&mut latencies, 0.50),
        p99_ms: percentile_ms(&mut latencies, 0.99),
        max_ms: percentile_ms(&mut latencies, 1.0),
        loss_pct: (1.0 - received as f64 / expected.max(1) as f64) * 100.0,
        rss_per_peer_mib: (rss_all as f64 - rss_base as f64) / peers.len() as f64 / 1024.0,
        rss_base_mib: rss_base as f64 / 1024.0,
        dropped: after.dropped.saturating_sub(before.dropped),
        per_track,
        fanout_ratio: if packets_in == 0 {
            f64::NAN
        } else {
            forwarded as f64 / (packets_in * scenario.fanout() as u64) as f64
        },
        warnings,
        wire,
    };
    if warnings > 0 {
        eprintln!(
            "  {tag}: server warnings during the window ({warnings}), last ones:\n{}",
            server.log_tail(warnings.min(5))
        );
    }

    // Tear down: close the peers' connections, then the server (the guard kills it).
    drop(peers);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(server);
    Ok(result)
}

/// `perf record` (with call graphs) attached to the server for the window.
struct Perf {
    child: Child,
    file: PathBuf,
}

impl Perf {
    fn start(dir: &std::path::Path, tag: &str, pid: u32) -> Result<Perf, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = dir.join(format!("perf-{tag}.data"));
        let child = Command::new("perf")
            // DWARF unwinding: release builds keep no frame pointers, so `-g` alone loses the
            // callers of most frames.
            .args(["record", "--call-graph", "dwarf,16384", "-F"])
            // `BENCH_PERF_FREQ` (Hz) for more samples than the default 499.
            .arg(std::env::var("BENCH_PERF_FREQ").unwrap_or_else(|_| "499".into()))
            .args(["-p", &pid.to_string(), "-o"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run perf (apt-get install linux-perf): {e}"))?;
        Ok(Perf { child, file })
    }

    /// Stops the recording (SIGINT, so perf writes its file) and returns the file.
    fn finish(mut self) -> PathBuf {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.file.clone()
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// A task's panic or cancellation as text.
pub fn join_error(e: tokio::task::JoinError) -> String {
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

/// The `q` quantile of `v` in ms (nearest rank); NaN when empty.
fn percentile_ms(v: &mut [Duration], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1e3
}
