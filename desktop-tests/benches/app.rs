//! The desktop app with N people in the room: frames displayed per tile, capture → display
//! latency, and who burns the CPU.
//!
//! ```text
//! cargo build --release -p videoroom-bot && cargo tauri build --no-bundle
//! cargo bench -p videoroom-desktop-tests --bench app -- --bots 1,4,9,16 --seconds 20 --runs 1
//! ```
//!
//! Options: `--bots 1,4,9,16` (room sizes besides the app), `--seconds 20` (measured),
//! `--warmup 5` (seconds between "every tile draws" and the measurement), `--runs 1`,
//! `--nice 19` (the bots' niceness; `--nice 0` runs them at normal priority), `--source
//! replay` (the bots replay a pre-encoded fixture: no encoding; `--source pattern`: they render
//! and encode the pattern live, as before), `--size 640x360` (the bots' video), `--bot-view
//! 320x180` (the size the first bot says it shows everyone's video at, as in a grid of a big
//! meeting: the server sends it that layer, and the app encodes the layer it wants; the other
//! bots show nothing (`--view-size 0x0`), so that their receiving, which in a real meeting
//! happens on other machines, does not take this one's CPU).
//!
//! Per room size: Xvfb; a server in this process; with `--source replay` a fixture written for
//! this run (`videoroom-bot --write-fixture`: the pattern as the camera's three simulcast layers
//! and the tone as Opus, each frame stamped with the time the bots will send it, so capture →
//! display stays a true latency); N release bots publishing it (`--video replay:DIR --audio
//! replay:DIR`) or the live pattern and tone (`--no-video-decode --no-audio-decode`: they drain
//! what they receive undecoded, or sixteen of them decoding fifteen streams each would fill both
//! cores); then the
//! release app, which joins at
//! once (`VIDEOROOM_AUTOJOIN`) with synthetic media and writes its render worker's figures every
//! second (`VIDEOROOM_BENCH_OUT`, docs/desktop.md "Bench stats"). Once every remote tile draws,
//! after the warm-up, for `--seconds`:
//!
//! - displayed fps per tile = distinct burned-in frame numbers drawn per second (median and
//!   minimum over the remote tiles), frames received from the frame socket per second (what
//!   the backend decoded, scaled and sent) and draws per second (medians);
//! - capture → display latency, p50/p95 over every draw of every remote tile whose stamp decoded
//!   (the bot's capture clock and the worker's `performance.timeOrigin + now()` are one clock);
//! - CPU, % of one core: the app process, its WebKit children (WebKitWebProcess,
//!   WebKitNetworkProcess), Xvfb, all bots together, this process (the server), and the whole
//!   machine (other tenants included: the machine is shared); and app + WebKit CPU per displayed
//!   frame (all tiles, the own camera's included), to extrapolate to other room sizes.
//!
//! The bots run under `nice -n 19` by default: in a real call the other people are on other
//! machines, so the app should not lose CPU to them. If the app leaves them too little, they
//! publish fewer than 30 fps and the app cannot display more; the "bot fps" column (frames a
//! bot sent per second during the measurement, from its status lines, mean over the bots) shows
//! when that happened: compare it with "fps med".

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::process::Command;
use videoroom_desktop_tests::bot::BotSpec;
use videoroom_desktop_tests::cpu::{Interval, Snapshot};
use videoroom_desktop_tests::procs::Group;
use videoroom_desktop_tests::xvfb::{Xvfb, log_file};
use videoroom_desktop_tests::{APP_ENV_CLEARED, app_bin, app_env, tail, wait_for, work_dir};
use videoroom_testkit::{start_server, test_config, ws_url};

const ROOM: &str = "bench";

struct Options {
    bots: Vec<usize>,
    seconds: u64,
    warmup: u64,
    runs: usize,
    nice: i32,
    replay: bool,
    size: (u32, u32),
    bot_view: String,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` adds `--bench`; anything not asked for here is ignored.
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str, default: u64| {
        value(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} wants a number, not {v:?}"))
        })
    };
    let bots = value("--bots").map_or_else(
        || vec![1, 4, 9, 16],
        |v| {
            v.split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("--bots wants a list like 1,4,9, not {v:?}"))
                })
                .collect()
        },
    );
    let replay = match value("--source").as_deref() {
        None | Some("replay") => true,
        Some("pattern") => false,
        Some(other) => panic!("--source wants replay or pattern, not {other:?}"),
    };
    let size = value("--size").map_or((640, 360), |v| {
        v.split_once('x')
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
            .unwrap_or_else(|| panic!("--size wants WIDTHxHEIGHT, not {v:?}"))
    });
    Options {
        bot_view: value("--bot-view").unwrap_or_else(|| "320x180".into()),
        replay,
        size,
        bots,
        seconds: number("--seconds", 20),
        warmup: number("--warmup", 5),
        runs: number("--runs", 1) as usize,
        nice: i32::try_from(number("--nice", 19)).unwrap_or(19),
    }
}

/// One tile's figures for one second, as the render worker sends them.
#[derive(Debug)]
struct TileSecond {
    track: String,
    received: u64,
    drawn: u64,
    distinct: u64,
    latencies_ms: Vec<f64>,
}

/// One stats line of `VIDEOROOM_BENCH_OUT`.
#[derive(Debug)]
struct StatsLine {
    at_us: u64,
    tiles: Vec<TileSecond>,
}

fn read_stats(path: &Path) -> Vec<StatsLine> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let tiles = v["tiles"].as_array()?;
            Some(StatsLine {
                at_us: v["at_us"].as_u64()?,
                tiles: tiles
                    .iter()
                    .map(|t| TileSecond {
                        track: t["track"].as_str().unwrap_or_default().to_owned(),
                        received: t["received"].as_u64().unwrap_or(0),
                        drawn: t["drawn"].as_u64().unwrap_or(0),
                        distinct: t["distinct"].as_u64().unwrap_or(0),
                        latencies_ms: t["latencies_ms"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_f64).collect())
                            .unwrap_or_default(),
                    })
                    .collect(),
            })
        })
        .collect()
}

/// Remote tiles in a stats line (the own camera's track is `self`).
fn remote(line: &StatsLine) -> impl Iterator<Item = &TileSecond> {
    line.tiles.iter().filter(|t| t.track != "self")
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Nearest-rank percentile of sorted `v`.
fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

#[derive(Debug)]
struct Row {
    bots: usize,
    tiles: usize,
    fps_median: f64,
    fps_min: f64,
    received_median: f64,
    draws_median: f64,
    lat_p50: f64,
    lat_p95: f64,
    lat_samples: usize,
    cpu_app: f64,
    cpu_webkit: f64,
    cpu_xvfb: f64,
    cpu_bots: f64,
    cpu_server: f64,
    cpu_machine: f64,
    bot_fps: f64,
    /// Distinct frames displayed per second over every tile, the own camera's included.
    all_fps: f64,
}

impl Row {
    /// App + WebKit CPU time per displayed frame, ms.
    fn ms_per_frame(&self) -> f64 {
        (self.cpu_app + self.cpu_webkit) * 10.0 / self.all_fps
    }
}

async fn one_run(n: usize, run: usize, o: &Options) -> Result<Row, String> {
    let work = work_dir(&format!("bench-{n}-{run}"));
    // The app and up to `n` bots: more than the default room size of 16.
    let mut config = test_config();
    config.max_peers_per_room = config.max_peers_per_room.max(n + 1);
    let server = start_server(config).await;
    let url = ws_url(&server);
    let xvfb = Xvfb::start(None, &work.join("xvfb.log")).await;

    let (width, height) = (o.size.0.to_string(), o.size.1.to_string());
    let size_args = ["--width", width.as_str(), "--height", height.as_str()];
    let media: Vec<String> = if o.replay {
        let fixture = work.join("fixture");
        write_fixture(&fixture, o, &size_args).await?;
        let replay = format!("replay:{}", fixture.display());
        vec!["--video".into(), replay.clone(), "--audio".into(), replay]
    } else {
        ["--video", "pattern", "--audio", "tone"]
            .into_iter()
            .chain(size_args)
            .map(String::from)
            .collect()
    };

    // The bots stay until stopped; their status lines (one a second) go to their logs.
    let bots_started = Instant::now();
    let mut bots: Vec<(Group, PathBuf)> = (1..=n)
        .map(|i| {
            let name = format!("Bot{i}");
            let mut spec = BotSpec::new(&url, ROOM, &name, &work.join(format!("{name}.log")));
            spec.args = media.clone();
            spec.args
                .extend(["--no-video-decode".into(), "--no-audio-decode".into()]);
            let view = if i == 1 { o.bot_view.as_str() } else { "0x0" };
            spec.args.extend(["--view-size".into(), view.into()]);
            spec.nice = (o.nice != 0).then_some(o.nice);
            (spec.spawn(), spec.log.clone())
        })
        .collect();

    let out = work.join("bench.jsonl");
    let app_log = work.join("app.log");
    let mut command = Command::new(app_bin());
    command
        .envs(app_env(xvfb.display(), &work))
        .env("VIDEOROOM_AUTOJOIN", format!("{url}|{ROOM}|Viewer"))
        .env("VIDEOROOM_BENCH_OUT", &out)
        .stdin(Stdio::null())
        .stdout(log_file(&app_log))
        .stderr(log_file(&app_log));
    for var in APP_ENV_CLEARED
        .iter()
        .filter(|v| !matches!(**v, "VIDEOROOM_AUTOJOIN" | "VIDEOROOM_BENCH_OUT"))
    {
        command.env_remove(var);
    }
    let mut app =
        Group::spawn("app", &mut command).map_err(|e| format!("starting the app: {e}"))?;

    let drawing = wait_for(
        Duration::from_secs(90),
        &format!("all {n} remote tiles draw"),
        async || {
            if let Some(status) = app.exited() {
                return Err(format!("the app exited: {status}"));
            }
            let lines = read_stats(&out);
            let Some(last) = lines.last() else {
                return Err("no stats yet".into());
            };
            let drawing = remote(last).filter(|t| t.distinct > 0).count();
            if drawing >= n {
                Ok(())
            } else {
                Err(format!("{drawing} remote tiles drew last second"))
            }
        },
    )
    .await;
    if let Err(e) = drawing {
        return Err(format!(
            "{e}\n--- app output ---\n{}\n(all in {})",
            tail(&app_log, 30),
            work.display()
        ));
    }
    tokio::time::sleep(Duration::from_secs(o.warmup)).await;

    // The measurement.
    let t0 = unix_us();
    let measured_from = Instant::now();
    let before = Snapshot::take();
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    let cpu = Interval::since(before);
    let t1 = unix_us();
    let measured_to = Instant::now();

    let cpu_app = cpu.pid_percent(app.pid());
    let cpu_webkit = cpu.tree_total(app.pid()) - cpu_app;
    let cpu_xvfb = cpu.tree_total(xvfb.pid());
    let cpu_bots = bots.iter().map(|(b, _)| cpu.tree_total(b.pid())).sum();
    let cpu_server = cpu.pid_percent(std::process::id());
    let cpu_machine = cpu.machine_percent();

    // What the bots managed to send meanwhile, from their status lines (one a second).
    let window = (
        measured_from.saturating_duration_since(bots_started),
        measured_to.saturating_duration_since(bots_started),
    );
    let bot_fps: Vec<f64> = bots
        .iter()
        .filter_map(|(_, log)| publish_fps(log, window))
        .collect();
    for (bot, _) in &mut bots {
        bot.stop(Duration::from_secs(2)).await;
    }
    app.stop(Duration::from_secs(3)).await;
    drop(xvfb);
    server.shutdown(Duration::from_secs(2)).await;

    // Figures per remote tile over the stats windows that ended inside the measurement.
    let lines = read_stats(&out);
    let before_t0 = lines.iter().rev().find(|l| l.at_us <= t0).map(|l| l.at_us);
    let inside: Vec<&StatsLine> = lines
        .iter()
        .filter(|l| l.at_us > t0 && l.at_us <= t1)
        .collect();
    let (Some(start), Some(end)) = (before_t0, inside.last().map(|l| l.at_us)) else {
        return Err(format!(
            "no stats during the measurement in {}",
            out.display()
        ));
    };
    let covered = (end - start) as f64 / 1e6;
    // Per remote track: (distinct, drawn, received).
    let mut per_track: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    let mut latencies = Vec::new();
    let all_distinct: u64 = inside
        .iter()
        .flat_map(|l| l.tiles.iter())
        .map(|t| t.distinct)
        .sum();
    for line in &inside {
        for t in remote(line) {
            let e = per_track.entry(&t.track).or_default();
            e.0 += t.distinct;
            e.1 += t.drawn;
            e.2 += t.received;
            latencies.extend_from_slice(&t.latencies_ms);
        }
    }
    let fps = sorted(
        per_track
            .values()
            .map(|(d, _, _)| *d as f64 / covered)
            .collect(),
    );
    let draws = sorted(
        per_track
            .values()
            .map(|(_, d, _)| *d as f64 / covered)
            .collect(),
    );
    let received = sorted(
        per_track
            .values()
            .map(|(_, _, r)| *r as f64 / covered)
            .collect(),
    );
    let latencies = sorted(latencies);
    Ok(Row {
        bots: n,
        tiles: per_track.len(),
        fps_median: percentile(&fps, 50.0),
        fps_min: fps.first().copied().unwrap_or(f64::NAN),
        received_median: percentile(&received, 50.0),
        draws_median: percentile(&draws, 50.0),
        lat_p50: percentile(&latencies, 50.0),
        lat_p95: percentile(&latencies, 95.0),
        lat_samples: latencies.len(),
        cpu_app,
        cpu_webkit,
        cpu_xvfb,
        cpu_bots,
        cpu_server,
        cpu_machine,
        bot_fps: if bot_fps.is_empty() {
            f64::NAN
        } else {
            bot_fps.iter().sum::<f64>() / bot_fps.len() as f64
        },
        all_fps: all_distinct as f64 / covered,
    })
}

/// Writes this run's replay fixture to `dir`: long enough for the bots' start, the app's join
/// (at most 90 s until every tile draws), the warm-up and the measurement; its first frame is
/// due now (frames due before the bots start are skipped).
async fn write_fixture(dir: &Path, o: &Options, size_args: &[&str]) -> Result<(), String> {
    let seconds = format!("{}s", 120 + o.warmup + o.seconds);
    let began = Instant::now();
    let output = Command::new(videoroom_desktop_tests::bot::bot_bin())
        .args(["--write-fixture", &dir.display().to_string()])
        .args(["--fixture-seconds", &seconds, "--quiet"])
        .args(size_args)
        .output()
        .await
        .map_err(|e| format!("running videoroom-bot --write-fixture: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "videoroom-bot --write-fixture failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    eprintln!(
        "fixture of {seconds} written in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The mean "out N fps" of a bot's status lines (`[  12s] peers … | out 29.9 fps, …`) whose
/// time since the bot started lies in `window`.
fn publish_fps(log: &Path, window: (Duration, Duration)) -> Option<f64> {
    let text = std::fs::read_to_string(log).ok()?;
    let rates: Vec<f64> = text
        .lines()
        .filter_map(|line| {
            let at: f64 = line
                .strip_prefix('[')?
                .split_once("s]")?
                .0
                .trim()
                .parse()
                .ok()?;
            let out = line
                .split_once("| out ")?
                .1
                .split_once(" fps")?
                .0
                .parse()
                .ok()?;
            let at = Duration::from_secs_f64(at);
            (at > window.0 && at <= window.1).then_some(out)
        })
        .collect();
    (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
}

/// Each figure's median over `runs` (all of one room size).
fn median_row(runs: &[&Row]) -> Row {
    let m = |f: fn(&Row) -> f64| percentile(&sorted(runs.iter().map(|r| f(r)).collect()), 50.0);
    Row {
        bots: runs[0].bots,
        tiles: runs[0].tiles,
        fps_median: m(|r| r.fps_median),
        fps_min: m(|r| r.fps_min),
        received_median: m(|r| r.received_median),
        draws_median: m(|r| r.draws_median),
        lat_p50: m(|r| r.lat_p50),
        lat_p95: m(|r| r.lat_p95),
        lat_samples: runs.iter().map(|r| r.lat_samples).sum(),
        cpu_app: m(|r| r.cpu_app),
        cpu_webkit: m(|r| r.cpu_webkit),
        cpu_xvfb: m(|r| r.cpu_xvfb),
        cpu_bots: m(|r| r.cpu_bots),
        cpu_server: m(|r| r.cpu_server),
        cpu_machine: m(|r| r.cpu_machine),
        bot_fps: m(|r| r.bot_fps),
        all_fps: m(|r| r.all_fps),
    }
}

fn print_header() {
    println!(
        "{:>4} {:>5} | {:>8} {:>6} {:>6} {:>7} | {:>7} {:>7} {:>6} | {:>6} {:>7} {:>6} {:>6} {:>7} {:>8} | {:>7} | {:>7} {:>8}",
        "bots",
        "tiles",
        "fps med",
        "min",
        "recv/s",
        "draws/s",
        "p50 ms",
        "p95 ms",
        "n",
        "app%",
        "webkit%",
        "Xvfb%",
        "bots%",
        "server%",
        "machine%",
        "bot fps",
        "all fps",
        "ms/frame"
    );
}

fn print_row(r: &Row) {
    println!(
        "{:>4} {:>5} | {:>8.1} {:>6.1} {:>6.1} {:>7.1} | {:>7.1} {:>7.1} {:>6} | {:>6.0} {:>7.0} {:>6.0} {:>6.0} {:>7.0} {:>8.0} | {:>7.1} | {:>7.1} {:>8.1}",
        r.bots,
        r.tiles,
        r.fps_median,
        r.fps_min,
        r.received_median,
        r.draws_median,
        r.lat_p50,
        r.lat_p95,
        r.lat_samples,
        r.cpu_app,
        r.cpu_webkit,
        r.cpu_xvfb,
        r.cpu_bots,
        r.cpu_server,
        r.cpu_machine,
        r.bot_fps,
        r.all_fps,
        r.ms_per_frame()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = options();
    let app = app_bin();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "desktop app {}: N bots publishing {}x{}@30 + tone as simulcast ({}; {}, \
         --no-video-decode --no-audio-decode, one bot --view-size {}, the others 0x0), app with synthetic media, Xvfb 1280x800, {cores} \
         cores; warm-up {} s, measured {} s",
        app.display(),
        o.size.0,
        o.size.1,
        if o.replay {
            "replayed from a pre-encoded fixture"
        } else {
            "rendered and encoded live"
        },
        if o.nice == 0 {
            "normal priority".to_owned()
        } else {
            format!("nice -n {}", o.nice)
        },
        o.bot_view,
        o.warmup,
        o.seconds
    );
    println!(
        "fps = distinct frames displayed per second per remote tile; recv/s = frames the backend \
         sent per remote tile per second; p50/p95 = capture -> display \
         over all remote tiles; CPU in % of one core; bot fps = what the bots sent; all fps = \
         frames displayed per second in all tiles (own camera too); ms/frame = app + WebKit CPU \
         per displayed frame"
    );
    print_header();
    let mut rows = Vec::new();
    for run in 1..=o.runs {
        for &n in &o.bots {
            match one_run(n, run, &o).await {
                Ok(row) => {
                    print_row(&row);
                    rows.push(row);
                }
                Err(e) => println!("{n:>4} bots, run {run}: FAILED: {e}"),
            }
        }
    }
    if o.runs > 1 {
        println!("\nmedian of {} runs, field by field:", o.runs);
        print_header();
        let mut sizes: Vec<usize> = rows.iter().map(|r| r.bots).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let medians: Vec<Row> = sizes
            .iter()
            .map(|&n| median_row(&rows.iter().filter(|r| r.bots == n).collect::<Vec<_>>()))
            .collect();
        for r in &medians {
            print_row(r);
        }
        rows = medians;
    }
    println!();
    for r in rows.iter().filter(|r| r.bots == 1) {
        println!(
            "one remote tile: capture -> display p50 {:.1} ms, p95 {:.1} ms ({} draws)",
            r.lat_p50, r.lat_p95, r.lat_samples
        );
    }
    for (r, target) in rows.iter().filter_map(|r| {
        [(9, 25.0), (16, 15.0)]
            .into_iter()
            .find(|t| t.0 == r.bots)
            .map(|t| (r, t.1))
    }) {
        println!(
            "{} remote tiles: {:.1} fps displayed per tile (median; distinct stamps read back), {:.1} \
             (worst tile), {:.1} draws/s (median) — target >= {target}: {}; capture -> display \
             p95 {:.1} ms (target <= 100); the bots sent {:.1} fps{}",
            r.bots,
            r.fps_median,
            r.fps_min,
            r.draws_median,
            if r.fps_min >= target {
                "met"
            } else if r.fps_median >= target {
                "met by the median tile, not by every tile"
            } else {
                "NOT met"
            },
            r.lat_p95,
            r.bot_fps,
            match (r.bot_fps < target, r.fps_median >= 0.9 * r.bot_fps) {
                (true, true) => {
                    " (the bots share these cores and could not send more; the app displayed \
                     nearly all they sent)"
                }
                (true, false) => {
                    " (the bots share these cores and could not send more, and the app displayed \
                     less than they sent)"
                }
                (false, false) => " (the app displayed less than the bots sent)",
                (false, true) => "",
            }
        );
    }
}
