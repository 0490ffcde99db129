//! X11 capture cost: ms per frame to capture the whole screen of an Xvfb (MIT-SHM and core
//! `GetImage`) and convert it to I420, at 1280×720 and 1920×1080, with the mouse pointer drawn in
//! and (MIT-SHM) without it, and the BGRX → I420 conversion alone; then a 1280×720 window
//! (Composite, half covered by another window) the same two ways, and what the picker costs:
//! listing, a thumbnail (scaled down by the X server), thumbnails of every source, and what one
//! full-size capture for a thumbnail would cost instead (with a SHM segment of its own, or
//! through the socket). Each figure is the median of the per-run
//! medians. The X server's own work (copying into the segment or the socket, scaling) runs in the
//! Xvfb process: it is in the wall time, not in this thread's CPU time.
//!
//! Run: `cargo bench -p videoroom-client --bench screen` (needs `Xvfb` on PATH).

use std::time::Instant;
use videoroom_client::media::screen::x11::{
    self, PatternWindow, X11Window, bgrx_to_i420, i420_to_bgrx,
};
use videoroom_client::media::screen::{X11Area, X11Screen};
use videoroom_client::media::{PatternSource, VideoSource};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateWindowAux, ImageFormat, WindowClass};
use x11rb::rust_connection::RustConnection;

const RUNS: usize = 5;
const FRAMES: usize = 60;

/// CPU time of this thread in nanoseconds, if available.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `f` timed `FRAMES` times per run over `RUNS` runs: (wall ms, CPU ms) per call, the median of
/// the runs' per-frame medians (wall) and of the runs' CPU time / `FRAMES` (schedstat has no
/// sub-millisecond resolution per call).
fn time(f: impl FnMut()) -> (f64, Option<f64>) {
    time_n(FRAMES, f)
}

/// [`time`] with `frames` calls per run.
fn time_n(frames: usize, mut f: impl FnMut()) -> (f64, Option<f64>) {
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let mut wall = Vec::new();
        let c0 = thread_cpu_ns();
        for _ in 0..frames {
            let t0 = Instant::now();
            f();
            wall.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        if let (Some(a), Some(b)) = (c0, thread_cpu_ns()) {
            cpus.push(b.saturating_sub(a) as f64 / 1e6 / frames as f64);
        }
        walls.push(median(wall));
    }
    (median(walls), (!cpus.is_empty()).then(|| median(cpus)))
}

fn main() {
    println!("X11 capture + BGRX→I420, ms per frame (median of {RUNS} runs × {FRAMES} frames)");
    for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
        let xvfb = videoroom_testkit::xvfb::Xvfb::start(w, h);
        let display = xvfb.display.clone();
        let frame = PatternSource::new(w, h, 15).expect("pattern").render(1, 2);
        let bgrx = i420_to_bgrx(&frame).expect("to BGRX");
        {
            let (conn, screen) = RustConnection::connect(Some(&display)).expect("connects");
            let root = conn.setup().roots[screen].root;
            let gc = conn.generate_id().expect("id");
            conn.create_gc(gc, root, &Default::default()).expect("gc");
            conn.put_image(
                ImageFormat::Z_PIXMAP,
                root,
                gc,
                w as u16,
                h as u16,
                0,
                0,
                0,
                24,
                &bgrx,
            )
            .expect("PutImage");
            conn.get_input_focus().expect("sync").reply().expect("sync");
        }
        let cpu = |c: Option<f64>| c.map_or("n/a".to_owned(), |c| format!("{c:.2}"));
        let (wall, c) = time(|| {
            std::hint::black_box(bgrx_to_i420(&bgrx, w, h).expect("converts"));
        });
        println!(
            "  {w}x{h} convert only      : {wall:6.2} ms wall, {} ms CPU",
            cpu(c)
        );
        // The pointer is mid-screen (where Xvfb puts it): drawn in, except on the last row.
        for (shm, cursor) in [(true, true), (false, true), (true, false)] {
            let mut screen = X11Screen::open(Some(&display), X11Area::Root).expect("opens");
            if !shm {
                screen = screen.without_shm();
            }
            if !cursor {
                screen = screen.without_cursor();
            }
            let (wall, c) = time(|| {
                std::hint::black_box(screen.next_frame().expect("captures"));
            });
            let via = match (shm, cursor) {
                (true, true) => "MIT-SHM + cursor",
                (false, _) => "GetImage + cursor",
                (true, false) => "MIT-SHM, no cursor",
            };
            println!(
                "  {w}x{h} {via:<18} + convert: {wall:6.2} ms wall, {} ms CPU; at 15 fps {:.1} % of a core (wall)",
                cpu(c),
                wall * 15.0 / 10.0
            );
        }
        drop(xvfb);
    }
    windows();
}

/// Window capture and the picker's costs on a 1920×1080 screen: a 1280×720 pattern window, its
/// left half covered by another window, and nine 320×180 pattern windows (ten to list and
/// thumbnail). The windows draw one frame a second, so the X server is mostly idle.
fn windows() {
    println!("X11 window capture (Composite) + BGRX→I420, and the picker, ms per call");
    let xvfb = videoroom_testkit::xvfb::Xvfb::start(1920, 1080);
    let display = xvfb.display.clone();
    let d = Some(display.as_str());
    let big = PatternWindow::open(d, "bench-window", 1280, 720, 1).expect("pattern window");
    let small: Vec<PatternWindow> = (0..9)
        .map(|i| PatternWindow::open(d, &format!("small-{i}"), 320, 180, 1).expect("window"))
        .collect();
    let (conn, screen) = RustConnection::connect(d).expect("connects");
    {
        let s = &conn.setup().roots[screen];
        let cover = conn.generate_id().expect("id");
        conn.create_window(
            x11rb::COPY_FROM_PARENT as u8,
            cover,
            s.root,
            0,
            0,
            640,
            720,
            0,
            WindowClass::INPUT_OUTPUT,
            x11rb::COPY_FROM_PARENT,
            &CreateWindowAux::new().background_pixel(s.white_pixel),
        )
        .expect("CreateWindow");
        conn.map_window(cover).expect("MapWindow");
        conn.get_input_focus().expect("sync").reply().expect("sync");
    }
    let cpu = |c: Option<f64>| c.map_or("n/a".to_owned(), |c| format!("{c:.2}"));
    for shm in [true, false] {
        let mut window = X11Window::open(d, big.window()).expect("opens the window");
        if !shm {
            window = window.without_shm();
        }
        let (wall, c) = time(|| {
            std::hint::black_box(window.next_frame().expect("captures"));
        });
        let via = if shm { "MIT-SHM " } else { "GetImage" };
        println!(
            "  window 1280x720 {via} + convert: {wall:6.2} ms wall, {} ms CPU; at 15 fps {:.1} % of a core (wall)",
            cpu(c),
            wall * 15.0 / 10.0
        );
    }
    let listed = x11::list_sources(d).expect("lists");
    assert_eq!(listed.len(), 11, "a monitor and ten windows: {listed:?}");
    let (wall, c) = time(|| {
        std::hint::black_box(x11::list_sources(d).expect("lists"));
    });
    println!(
        "  list_sources (1 monitor, 10 windows): {wall:6.2} ms wall, {} ms CPU",
        cpu(c)
    );
    let big_id = big.source_id();
    let (wall, c) = time(|| {
        std::hint::black_box(x11::thumbnail(d, &big_id, 320, 180).expect("thumbnail"));
    });
    println!(
        "  thumbnail 320x180 of the 1280x720 window (scaled by the server): {wall:6.2} ms wall, {} ms CPU",
        cpu(c)
    );
    let (wall, c) = time(|| {
        let mut w = X11Window::open(d, big.window()).expect("opens");
        std::hint::black_box(w.next_frame().expect("captures"));
    });
    println!(
        "  instead, full size: open with its own SHM segment + 1 frame: {wall:6.2} ms wall, {} ms CPU",
        cpu(c)
    );
    let (wall, c) = time(|| {
        let mut w = X11Window::open(d, big.window())
            .expect("opens")
            .without_shm();
        std::hint::black_box(w.next_frame().expect("captures"));
    });
    println!(
        "  instead, full size: open + 1 frame through the socket: {wall:6.2} ms wall, {} ms CPU",
        cpu(c)
    );
    let (wall, c) = time(|| {
        std::hint::black_box(x11::thumbnail(d, "monitor:0", 320, 180).expect("thumbnail"));
    });
    println!(
        "  thumbnail 320x180 of the 1920x1080 monitor (scaled by the server): {wall:6.2} ms wall, {} ms CPU",
        cpu(c)
    );
    let ids: Vec<String> = listed.iter().map(|s| s.id.clone()).collect();
    let (wall, c) = time_n(5, || {
        for id in &ids {
            std::hint::black_box(x11::thumbnail(d, id, 320, 180).expect("thumbnail"));
        }
    });
    println!(
        "  a picker refresh: thumbnails of all 11 sources: {wall:6.2} ms wall, {} ms CPU; once a second {:.1} % of a core (wall)",
        cpu(c),
        wall / 10.0
    );
    drop(small);
    drop(big);
}
