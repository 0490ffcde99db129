//! What sharing a 1920×1080 screen costs and how late it arrives (issue 13's benchmark).
//!
//! 1. **Capture + encode** at 5 and 15 fps: the publish path's own stages (X11 MIT-SHM capture and
//!    BGRX → I420, the motion gate, the VP8 screen preset at 1500 kbit/s) paced at the share's
//!    frame rate for `SECONDS`, on a screen that shows a moving pattern (every block changes) and
//!    on a static page of text. Per captured frame: CPU ms of this thread, and the share of one
//!    core it costs at that rate. The X server's copy into the segment runs in Xvfb, not here.
//! 2. **Glass to glass** on loopback: a window draws the burned-in pattern at 15 fps with the
//!    time it draws each frame; one engine shares the screen through an in-process server, another
//!    decodes it; latency = decode time − draw time of the frame decoded (p50/p95 over
//!    `LATENCY_FRAMES` frames). Display (the app's frame socket and paint) is not included.
//!
//! 3. **Self view tile**: the sharer's own preview of a 1920×1080 frame in a strip tile
//!    ([`TileScaler`], as the desktop app draws "Your screen"), ms per frame.
//!
//! Run: `cargo bench -p videoroom-client --bench screen_share [-- tiles|cost|latency]` (needs
//! `Xvfb`).

use std::time::{Duration, Instant};
use videoroom_client::media::screen::x11::PatternWindow;
use videoroom_client::media::screen::{MotionGate, ScreenScaler, X11Area, X11Screen};
use videoroom_client::media::tile::TileScaler;
use videoroom_client::media::{PatternSource, VideoSource, Vp8Config, Vp8Encoder};
use videoroom_client::publish::VideoSendSettings;
use videoroom_client::{AudioOutput, JoinOptions, Room};
use videoroom_testkit::xvfb::Xvfb;
use videoroom_testkit::{start_server, test_config, ws_url};

#[path = "../tests/common/screen_text.rs"]
mod screen_text;

#[path = "../tests/common/screen.rs"]
mod screen;

use screen::{Painter, remote_screen};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const SECONDS: u64 = 8;
const RUNS: usize = 3;
const LATENCY_FRAMES: usize = 150;
const KBPS: u32 = 1500;

/// CPU time of this thread in nanoseconds.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The whole screen showing the pattern, redrawn at 15 fps and stamped with the draw time.
fn moving_screen(display: &str) -> PatternWindow {
    PatternWindow::open(Some(display), "moving", WIDTH, HEIGHT, 15).expect("pattern window")
}

/// One paced run of capture → scale → gate → encode at `fps`: (CPU ms per captured frame,
/// % of a core, encoded frames per second, capture wall ms median).
fn pipeline(display: &str, fps: u32) -> (f64, f64, f64, f64) {
    let mut screen = X11Screen::open(Some(display), X11Area::Root).expect("opens");
    let mut scaler = ScreenScaler::new();
    let mut gate = MotionGate::new();
    let mut encoder =
        Vp8Encoder::new(Vp8Config::screen(WIDTH, HEIGHT, KBPS)).expect("screen encoder");
    let period = Duration::from_micros(1_000_000 / u64::from(fps));
    let (cpu0, start) = (thread_cpu_ns(), Instant::now());
    let (mut captured, mut encoded, mut capture_ms) = (0u64, 0u64, Vec::new());
    while start.elapsed() < Duration::from_secs(SECONDS) {
        let t0 = Instant::now();
        let frame = screen.next_frame().expect("captures");
        capture_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        captured += 1;
        let frame = scaler.fit(&frame).expect("fits").into_owned();
        if gate
            .observe(&frame, Instant::now(), captured == 1)
            .should_encode()
        {
            std::hint::black_box(encoder.encode(&frame).expect("encodes"));
            encoded += 1;
        }
        let next = start + period * captured as u32;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu_ms = thread_cpu_ns().saturating_sub(cpu0) as f64 / 1e6;
    (
        cpu_ms / captured as f64,
        cpu_ms / 1e3 / wall * 100.0,
        encoded as f64 / wall,
        median(capture_ms),
    )
}

fn cost() {
    println!(
        "Capture + encode of a {WIDTH}x{HEIGHT} X11 screen (MIT-SHM, motion gate, VP8 screen preset at \
         {KBPS} kbit/s), {SECONDS} s per run, median of {RUNS} runs"
    );
    let xvfb = Xvfb::start(WIDTH, HEIGHT);
    for content in ["moving pattern", "static text"] {
        let _moving = (content == "moving pattern").then(|| moving_screen(&xvfb.display));
        if content == "static text" {
            Painter::new(&xvfb.display).draw(&screen_text::text_frame(WIDTH, HEIGHT, 0));
        }
        for fps in [5u32, 15] {
            let runs: Vec<_> = (0..RUNS).map(|_| pipeline(&xvfb.display, fps)).collect();
            let pick = |f: fn(&(f64, f64, f64, f64)) -> f64| median(runs.iter().map(f).collect());
            println!(
                "  {content:14} at {fps:2} fps: {:6.2} ms CPU per frame, {:5.1} % of a core, {:4.1} frames/s encoded, capture {:5.2} ms wall",
                pick(|r| r.0),
                pick(|r| r.1),
                pick(|r| r.2),
                pick(|r| r.3)
            );
        }
    }
}

async fn glass_to_glass(fps: u32) -> Vec<f64> {
    let xvfb = Xvfb::start(WIDTH, HEIGHT);
    let _moving = moving_screen(&xvfb.display);
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let options = || {
        JoinOptions::default()
            .with_udp_addrs(vec!["127.0.0.1:0".parse().expect("address")])
            .with_audio_output(AudioOutput::Null)
    };
    let (ada, _ada_events) = Room::join(&url, "bench", "Ada", options())
        .await
        .expect("Ada joins");
    let (bob, mut bob_events) = Room::join(&url, "bench", "Bob", options())
        .await
        .expect("Bob joins");
    let screen = X11Screen::open(Some(&xvfb.display), X11Area::Root).expect("opens");
    let settings = VideoSendSettings {
        width: WIDTH,
        height: HEIGHT,
        fps,
        target_kbps: KBPS,
    };
    let shared = ada
        .start_screen_share(Box::new(screen), settings)
        .await
        .expect("shares");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let video = remote_screen(&bob, &mut bob_events, &shared, deadline).await;
    let mut rx = video.frames();
    let mut latencies = Vec::new();
    let mut last = None;
    // The first second (keyframe, rate control settling) is not what a viewer watches.
    let warm = tokio::time::Instant::now() + Duration::from_secs(1);
    while latencies.len() < LATENCY_FRAMES {
        tokio::time::timeout_at(deadline + Duration::from_secs(60), rx.changed())
            .await
            .expect("frames keep coming")
            .expect("track present");
        let Some(decoded) = rx.borrow_and_update().clone() else {
            continue;
        };
        let Some((n, drawn_at)) = decoded.burned_in else {
            continue;
        };
        if tokio::time::Instant::now() < warm || last == Some(n) {
            continue;
        }
        last = Some(n);
        latencies.push(decoded.decoded_at_micros.saturating_sub(drawn_at) as f64 / 1000.0);
    }
    ada.stop_screen_share().await.expect("stops");
    latencies
}

fn tiles() {
    let frame = PatternSource::new(WIDTH, HEIGHT, 15)
        .expect("pattern")
        .render(1, 2);
    let mut scaler = TileScaler::new();
    for (w, h) in [(320u32, 180u32), (640, 360)] {
        let runs: Vec<f64> = (0..RUNS)
            .map(|_| {
                let t0 = Instant::now();
                for _ in 0..60 {
                    std::hint::black_box(scaler.scale(&frame, w, h).expect("scales"));
                }
                t0.elapsed().as_secs_f64() * 1e3 / 60.0
            })
            .collect();
        println!(
            "Self view: {WIDTH}x{HEIGHT} → {w}x{h} RGBA tile: {:.2} ms per frame",
            median(runs)
        );
    }
}

fn main() {
    // `cargo bench --bench screen_share -- tiles|cost|latency` runs one part.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if run("tiles") {
        tiles();
    }
    if run("cost") {
        cost();
    }
    if !run("latency") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "Glass to glass on loopback ({WIDTH}x{HEIGHT}, drawn at 15 fps → captured → VP8 → server → decoded), {LATENCY_FRAMES} frames after the first second"
    );
    for fps in [5u32, 15] {
        let l = runtime.block_on(glass_to_glass(fps));
        println!(
            "  share at {fps:2} fps: p50 {:6.1} ms, p95 {:6.1} ms, max {:6.1} ms",
            percentile(l.clone(), 0.5),
            percentile(l.clone(), 0.95),
            percentile(l, 1.0)
        );
    }
}
