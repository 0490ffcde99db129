//! Forwarding benchmark: the server as its own process, and a load process (this one) of
//! webrtc-crate peers on loopback.
//!
//! Scenarios:
//! - `--subscribers 1,10,50,100,200`: one room, one publisher (VP8 640x360 + Opus fixtures,
//!   ~1.5 Mbit/s) and N receive-only subscribers;
//! - `--rooms 8x6`: 8 rooms of 6 peers; every peer publishes the same fixtures and receives the
//!   other 5 of its room.
//!
//! `--baseline PATH` names a second server binary (the previous engine). Each run of each
//! scenario then runs both, alternately (new, old, new, old …, a fresh process each), so that
//! the machine's noise hits both alike; the summary puts their medians side by side with the
//! ratio old/new of CPU per forwarded packet.
//!
//! Measured over a window of `--seconds` once every subscriber receives every track it should:
//! - server CPU per forwarded packet: Δ(utime+stime) of the server / Δ`videoroom_rtp_packets_out`;
//! - forwarding latency: subscriber arrival − publisher send for the same (track, RTP sequence
//!   number), both `Instant`s of this (load) process, over every publisher→subscriber pair:
//!   p50 / p99 / max (it includes both ends' WebRTC stacks, in this process);
//! - loss: 1 − received / expected over the packets sent in the window (arrivals are collected
//!   until a grace period after it, so packets in flight at its end are not counted lost, and
//!   packets sent before it are not counted at all);
//! - server RSS per peer: (VmRSS with all peers joined − VmRSS before anyone joined) / peers;
//! - the load process's own CPU (it shares the machine's cores with the server) and the server's
//!   `videoroom_dropped_packets` delta.
//!
//! `--wire` (root, Debian's `tcpdump`) adds the server's own wire-to-wire latency from a loopback
//! capture taken right after the window (see `forwarding/wire.rs`). `--perf DIR` records
//! `perf record --call-graph dwarf` of the server during each window into DIR (it costs the
//! server some CPU).
//!
//! ```text
//! cargo bench -p videoroom-server --bench forwarding -- --subscribers 1,10,50 --runs 3 --seconds 10
//! cargo bench -p videoroom-server --bench forwarding -- --baseline /tmp/old/videoroom-server \
//!     --subscribers 1,10,50,100,200 --rooms 8x6 --runs 3 --seconds 10 --wire
//! ```
//! Printing only: it is not a test and asserts nothing about the targets.

use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "forwarding/run.rs"]
mod run;
#[path = "forwarding/server.rs"]
mod server;
#[path = "forwarding/wire.rs"]
mod wire;

use run::{Engine, GRACE, RunOptions, RunResult, Scenario, join_error, run_once};

/// Target: server CPU per forwarded packet at N = 50, µs.
const TARGET_CPU_US_PER_PACKET: f64 = 5.0;
/// Goal: server CPU per forwarded packet at N = 50, µs.
const GOAL_CPU_US_PER_PACKET: f64 = 3.0;
/// Target: p99 wire-to-wire (server only) latency at N = 50, ms.
const TARGET_P99_MS: f64 = 2.0;
/// Target: old engine's CPU per forwarded packet ÷ the new one's, same run.
const TARGET_RATIO: f64 = 3.0;
/// Largest subscriber count.
const MAX_SUBSCRIBERS: usize = 200;

// ---------------------------------------------------------------------------------------------
// Command line

struct Args {
    scenarios: Vec<Scenario>,
    runs: usize,
    seconds: f64,
    baseline: Option<String>,
    wire: bool,
    perf_dir: Option<PathBuf>,
}

fn parse_list<T>(
    flag: &str,
    v: &str,
    item: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let items = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| item(s).map_err(|e| format!("{flag} {v}: {e}")))
        .collect::<Result<Vec<T>, String>>()?;
    if items.is_empty() {
        return Err(format!("{flag}: give at least one value"));
    }
    Ok(items)
}

fn parse_args() -> Result<Args, String> {
    let mut subscribers: Option<Vec<usize>> = None;
    let mut rooms: Vec<Scenario> = Vec::new();
    let mut args = Args {
        scenarios: Vec::new(),
        runs: 3,
        seconds: 10.0,
        baseline: None,
        wire: false,
        perf_dir: None,
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
            "--wire" => args.wire = true,
            "--subscribers" | "-n" => {
                let v = value("--subscribers")?;
                let counts = parse_list("--subscribers", &v, |s| {
                    let n = s.parse::<usize>().map_err(|e| e.to_string())?;
                    if n == 0 || n > MAX_SUBSCRIBERS {
                        return Err(format!(
                            "{n}: counts are 1 to {MAX_SUBSCRIBERS} (the server runs with --max-peers-per-room 256)"
                        ));
                    }
                    Ok(n)
                })?;
                subscribers = Some(counts);
            }
            "--rooms" => {
                let v = value("--rooms")?;
                rooms.extend(parse_list("--rooms", &v, |s| {
                    let (r, p) = s
                        .split_once(['x', 'X'])
                        .ok_or("give ROOMSxPEERS, e.g. 8x6")?;
                    let rooms = r.parse::<usize>().map_err(|e| e.to_string())?;
                    let peers = p.parse::<usize>().map_err(|e| e.to_string())?;
                    if rooms == 0 || !(2..=256).contains(&peers) {
                        return Err("at least 1 room of 2 to 256 peers".into());
                    }
                    Ok(Scenario::Rooms { rooms, peers })
                })?);
            }
            "--baseline" => {
                let v = value("--baseline")?;
                if !std::path::Path::new(&v).is_file() {
                    return Err(format!("--baseline {v}: no such file"));
                }
                args.baseline = Some(v);
            }
            "--perf" => args.perf_dir = Some(PathBuf::from(value("--perf")?)),
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
                    "forwarding benchmark\n  \
                     --subscribers 1,10,50   one publisher and N subscribers in one room (N ≤ {MAX_SUBSCRIBERS})\n  \
                     --rooms 8x6             R rooms of P peers, all publishing and receiving each other\n                          \
                     (without --subscribers, only the rooms run; default: --subscribers 1,10,50)\n  \
                     --baseline PATH         a second server binary (the previous engine), run alternately\n                          \
                     with this one in every run; the summary shows both and the ratio\n  \
                     --runs 3                runs per scenario (fresh server each)\n  \
                     --seconds 10            measurement window per run\n  \
                     --wire                  also capture lo with tcpdump (root) after the window and report the\n                          \
                     server's own wire-to-wire latency, without the load process's WebRTC stacks\n  \
                     --perf DIR              perf record (DWARF call graphs; BENCH_PERF_FREQ Hz, default 499) the server during each window into DIR"
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
    let subscribers = match subscribers {
        Some(s) => s,
        None if rooms.is_empty() => vec![1, 10, 50],
        None => Vec::new(),
    };
    args.scenarios = subscribers.into_iter().map(Scenario::Fanout).collect();
    args.scenarios.extend(rooms);
    Ok(args)
}

// ---------------------------------------------------------------------------------------------
// Report

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

const HEADER: &str = "scenario  eng  run   fwd pkt/s  CPU µs/pkt  p50 ms  p99 ms  max ms  loss %   lost  RSS MiB/peer  srv CPU %  load CPU %  drops  wire p50  wire p99";

fn row(scenario: &str, engine: &str, label: &str, r: &RunResult) -> String {
    let (wire_p50, wire_p99) = r
        .wire
        .map_or(("-".to_owned(), "-".to_owned()), |(p50, p99, _)| {
            (format!("{p50:.2}"), format!("{p99:.2}"))
        });
    format!(
        "{scenario:<8}  {engine:<3}  {label:<4} {:>10.0}  {:>10.2}  {:>6.2}  {:>6.2}  {:>6.1}  {:>6.3}  {:>5}  {:>12.2}  {:>9.1}  {:>10.1}  {:>5}  {wire_p50:>8}  {wire_p99:>8}",
        r.forwarded_per_s,
        r.cpu_us_per_packet,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.loss_pct,
        r.lost,
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
        lost: m(|r| r.lost as f64) as usize,
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

/// Results of one scenario on one engine: (run number, result) and failures.
#[derive(Default)]
struct Cell {
    results: Vec<(usize, RunResult)>,
    failures: Vec<String>,
}

impl Cell {
    fn median(&self) -> Option<RunResult> {
        let rs: Vec<RunResult> = self.results.iter().map(|(_, r)| r.clone()).collect();
        (!rs.is_empty()).then(|| median_result(&rs))
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// Prints the summary: medians per scenario and engine, the ratio old/new, the targets.
fn report(scenarios: &[Scenario], engines: &[Engine], cells: &[Vec<Cell>]) {
    println!(
        "\n=== forwarding benchmark: medians per scenario and engine (individual runs below) ==="
    );
    println!("{HEADER}");
    for (s, scenario) in scenarios.iter().enumerate() {
        let label = scenario.label();
        for (e, engine) in engines.iter().enumerate() {
            let cell = &cells[s][e];
            match cell.median() {
                Some(m) => println!(
                    "{}   <- median of {}",
                    row(&label, engine.label, "med", &m),
                    cell.results.len()
                ),
                None => println!("{label:<8}  {:<3}  (no successful run)", engine.label),
            }
        }
        if engines.len() == 2
            && let (Some(new), Some(old)) = (cells[s][0].median(), cells[s][1].median())
        {
            // Each run ran both engines back to back: the per-run ratios show the spread.
            let per_run: Vec<String> = cells[s][0]
                .results
                .iter()
                .filter_map(|(run, n)| {
                    let (_, o) = cells[s][1].results.iter().find(|(r, _)| r == run)?;
                    Some(format!("{:.2}", o.cpu_us_per_packet / n.cpu_us_per_packet))
                })
                .collect();
            println!(
                "{label:<8}  old/new  CPU µs/pkt {:.2}× (per run: {}); server CPU % {:.2}×; p50 {:.2}×; p99 {:.2}×; RSS/peer {:.2}×",
                old.cpu_us_per_packet / new.cpu_us_per_packet,
                per_run.join(", "),
                old.server_cpu_pct / new.server_cpu_pct,
                old.p50_ms / new.p50_ms,
                old.p99_ms / new.p99_ms,
                old.rss_per_peer_mib / new.rss_per_peer_mib,
            );
        }
        for (e, engine) in engines.iter().enumerate() {
            for (run, r) in &cells[s][e].results {
                println!("{}", row(&label, engine.label, &format!("#{run}"), r));
            }
            for f in &cells[s][e].failures {
                println!("{label:<8}  {:<3}  FAILED {f}", engine.label);
            }
        }
    }

    // The per-packet cost without the fixed per-connection costs (ingest, RTCP, timers), which
    // dominate at small N: the slope of server CPU against forwarded packets.
    for (e, engine) in engines.iter().enumerate() {
        let medians: Vec<(usize, RunResult)> = scenarios
            .iter()
            .zip(cells)
            .filter_map(|(s, c)| match s {
                Scenario::Fanout(n) => Some((*n, c[e].median()?)),
                Scenario::Rooms { .. } => None,
            })
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
                "{}: marginal server CPU per forwarded packet, N = {n_lo} → {n_hi} (medians): {slope:.2} µs",
                engine.label
            );
        }
    }

    // The targets, for the new engine.
    println!(
        "targets (new engine): ≤ {TARGET_CPU_US_PER_PACKET} µs/pkt at N = 50 (goal {GOAL_CPU_US_PER_PACKET}); wire-to-wire p99 ≤ {TARGET_P99_MS} ms at N = 50; 0 % loss up to N = {MAX_SUBSCRIBERS}; old/new CPU µs/pkt ≥ {TARGET_RATIO}×"
    );
    for (s, scenario) in scenarios.iter().enumerate() {
        let Some(new) = cells[s][0].median() else {
            continue;
        };
        let label = scenario.label();
        let mut notes = Vec::new();
        if *scenario == Scenario::Fanout(50) {
            notes.push(format!(
                "CPU {:.2} µs/pkt {}{}",
                new.cpu_us_per_packet,
                verdict(new.cpu_us_per_packet <= TARGET_CPU_US_PER_PACKET),
                if new.cpu_us_per_packet <= GOAL_CPU_US_PER_PACKET {
                    " (goal met)"
                } else {
                    ""
                }
            ));
            match new.wire {
                Some((_, p99, _)) => notes.push(format!(
                    "wire p99 {p99:.2} ms {}",
                    verdict(p99 <= TARGET_P99_MS)
                )),
                None => notes.push("wire p99 not measured (--wire)".into()),
            }
        }
        notes.push(format!(
            "loss {:.3} % ({} lost) {}",
            new.loss_pct,
            new.lost,
            verdict(new.lost == 0)
        ));
        if engines.len() == 2
            && let Some(old) = cells[s][1].median()
        {
            let ratio = old.cpu_us_per_packet / new.cpu_us_per_packet;
            notes.push(format!(
                "ratio {ratio:.2}× {}",
                verdict(ratio >= TARGET_RATIO)
            ));
        }
        println!("  {label:<8} {}", notes.join("; "));
    }
    println!(
        "columns: fwd pkt/s = Δvideoroom_rtp_packets_out / window; CPU µs/pkt = Δ(server utime+stime) / Δpackets_out; \
         p50/p99/max = subscriber arrival − publisher send over every publisher→subscriber pair (one clock, this process; \
         includes both clients' WebRTC stacks); loss and lost over packets sent in the window (arrivals counted until {GRACE:?} \
         after it); RSS/peer = (VmRSS all joined − VmRSS empty) / peers; CPU % of one core (load = this process: every \
         peer's WebRTC stack); drops = Δvideoroom_dropped_packets; wire p50/p99 = server-only latency from a loopback \
         capture right after the window (--wire)"
    );
}

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
    let mut engines = vec![Engine {
        label: "new",
        path: env!("CARGO_BIN_EXE_videoroom-server").to_owned(),
    }];
    if let Some(path) = &args.baseline {
        engines.push(Engine {
            label: "old",
            path: path.clone(),
        });
    }
    let opts = RunOptions {
        window: Duration::from_secs_f64(args.seconds),
        ticks_per_s: server::clock_ticks_per_second(),
        wire: args.wire,
        perf_dir: args.perf_dir.clone(),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let labels: Vec<String> = args.scenarios.iter().map(Scenario::label).collect();
    println!(
        "forwarding bench: scenarios {}; {} run(s) each, {:.0} s window, {} core(s), CLK_TCK {}",
        labels.join(", "),
        args.runs,
        args.seconds,
        cores,
        opts.ticks_per_s
    );
    for e in &engines {
        println!("  engine {}: {}", e.label, e.path);
    }
    println!(
        "publishers: VP8 640x360 30 fps + Opus 20 ms fixtures (~1.5 Mbit/s); N=…: one room, receive-only subscribers; RxP: R rooms of P peers that all publish\n"
    );

    let mut cells: Vec<Vec<Cell>> = args
        .scenarios
        .iter()
        .map(|_| engines.iter().map(|_| Cell::default()).collect())
        .collect();
    let interrupted = runtime.block_on(async {
        for (s, scenario) in args.scenarios.iter().enumerate() {
            for run in 1..=args.runs {
                for (e, engine) in engines.iter().enumerate() {
                    let started = Instant::now();
                    let label = scenario.label();
                    // A task, so that a panic fails this run only (the server guard is dropped on unwind).
                    let mut task = tokio::spawn({
                        let (engine, scenario) = (engine.clone(), *scenario);
                        let opts = opts.clone();
                        async move { run_once(&engine, scenario, run, &opts).await }
                    });
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
                                "{label} {} run {run}: {:.0} fwd pkt/s ({} sent in window, out/(in×fan-out) {:.3}), {:.2} µs/pkt, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms (audio p50/p99 {:.2}/{:.2}, video {:.2}/{:.2}), loss {:.3} % ({} lost), RSS {:.2} MiB/peer (base {:.1} MiB), server CPU {:.1} %, load CPU {:.1} %, drops {}  [{:.0} s]",
                                engine.label,
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
                                r.lost,
                                r.rss_per_peer_mib,
                                r.rss_base_mib,
                                r.server_cpu_pct,
                                r.load_cpu_pct,
                                r.dropped,
                                started.elapsed().as_secs_f64()
                            );
                            cells[s][e].results.push((run, r));
                        }
                        Err(e_msg) => {
                            eprintln!("{label} {} run {run}: FAILED: {e_msg}", engine.label);
                            cells[s][e].failures.push(format!(
                                "run {run}: {}",
                                e_msg.lines().next().unwrap_or("")
                            ));
                        }
                    }
                    // Let the previous run's connections wind down before the next measurement.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        false
    });

    report(&args.scenarios, &engines, &cells);
    if interrupted {
        std::process::exit(130);
    }
}
