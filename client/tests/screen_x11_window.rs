//! X11 window capture under Xvfb (no window manager): a [`PatternWindow`] (the burned-in moving
//! pattern, stamped when drawn) is listed with its title and size; captured through Composite it
//! gives the pattern back even while another window covers half of it (burned-in frame numbers
//! rise, Y PSNR ≥ 30 dB against the pattern frame of that number); a resize changes the frames'
//! size without a failure; an unmapped window repeats its last frame; a destroyed one ends the
//! source; and through the engine, a shared window decodes at the other end, follows a resize,
//! and its closing ends the share on both sides.
//!
//! Needs `Xvfb` on PATH (Debian `xvfb`; `scripts/test.sh` installs it).

mod common;

use common::screen::remote_screen;

use common::psnr::psnr_y;
use std::time::{Duration, Instant};
use videoroom_client::media::screen::ScreenError;
use videoroom_client::media::screen::x11::{
    self, PatternWindow, X11Area, X11Error, X11Screen, X11Window, bgrx_to_i420, i420_to_bgrx,
};
use videoroom_client::media::screen::{ScreenSourceInfo, ScreenSourceKind};
use videoroom_client::media::{I420Frame, PatternSource, SourceError, VideoSource, read_burned_in};
use videoroom_client::publish::VideoSendSettings;
use videoroom_client::{Room, RoomEvent, ScreenShareEnd};
use videoroom_testkit::xvfb::Xvfb;
use videoroom_testkit::{start_server, test_config, ws_url};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, CreateWindowAux, PropMode, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

const BOUND: Duration = Duration::from_secs(20);
const MIN_PSNR: f64 = 30.0;

/// Another application's windows, on their own connection.
struct OtherApp {
    conn: RustConnection,
    root: Window,
    white: u32,
}

/// How [`OtherApp::window`] makes a window.
#[derive(Default)]
struct Spec<'a> {
    title: Option<&'a str>,
    pid: Option<u32>,
    override_redirect: bool,
    unmapped: bool,
}

impl OtherApp {
    fn new(display: &str) -> Self {
        let (conn, screen) = RustConnection::connect(Some(display)).expect("connects");
        let (root, white) = {
            let s = &conn.setup().roots[screen];
            (s.root, s.white_pixel)
        };
        Self { conn, root, white }
    }

    fn atom(&self, name: &str) -> u32 {
        self.conn
            .intern_atom(false, name.as_bytes())
            .expect("InternAtom")
            .reply()
            .expect("atom")
            .atom
    }

    /// A white window at (`x`, `y`), on top of the others when mapped.
    fn window(&self, (x, y, w, h): (i16, i16, u16, u16), spec: Spec<'_>) -> Window {
        let id = self.conn.generate_id().expect("id");
        self.conn
            .create_window(
                x11rb::COPY_FROM_PARENT as u8,
                id,
                self.root,
                x,
                y,
                w,
                h,
                0,
                WindowClass::INPUT_OUTPUT,
                x11rb::COPY_FROM_PARENT,
                &CreateWindowAux::new()
                    .background_pixel(self.white)
                    .override_redirect(u32::from(spec.override_redirect)),
            )
            .expect("CreateWindow");
        if let Some(title) = spec.title {
            self.conn
                .change_property8(
                    PropMode::REPLACE,
                    id,
                    AtomEnum::WM_NAME,
                    AtomEnum::STRING,
                    title.as_bytes(),
                )
                .expect("WM_NAME");
        }
        if let Some(pid) = spec.pid {
            self.conn
                .change_property32(
                    PropMode::REPLACE,
                    id,
                    self.atom("_NET_WM_PID"),
                    AtomEnum::CARDINAL,
                    &[pid],
                )
                .expect("_NET_WM_PID");
        }
        if !spec.unmapped {
            self.conn.map_window(id).expect("MapWindow");
        }
        self.sync();
        id
    }

    /// A round trip: every earlier request is done.
    fn sync(&self) {
        self.conn
            .get_input_focus()
            .expect("GetInputFocus")
            .reply()
            .expect("X server alive");
    }
}

/// The windows `list_sources` offers.
fn listed_windows(display: &str) -> Vec<ScreenSourceInfo> {
    x11::list_sources(Some(display))
        .expect("lists")
        .into_iter()
        .filter(|s| s.kind == ScreenSourceKind::Window)
        .collect()
}

/// The top-left `width`×`height` of `frame` (even sides).
fn crop(frame: &I420Frame, width: u32, height: u32) -> I420Frame {
    let (fw, cw) = (frame.width() as usize, frame.chroma_width() as usize);
    let (w, h) = (width as usize, height as usize);
    let rows = |plane: &[u8], stride: usize, w: usize, h: usize| -> Vec<u8> {
        (0..h)
            .flat_map(|r| plane[r * stride..r * stride + w].iter().copied())
            .collect()
    };
    I420Frame::from_planes(
        width,
        height,
        rows(frame.y(), fw, w, h),
        rows(frame.u(), cw, w / 2, h / 2),
        rows(frame.v(), cw, w / 2, h / 2),
    )
    .expect("crop")
}

/// `frame` at half its size, each pixel the mean of a 2×2 block (what a box filter gives).
fn halved(frame: &I420Frame) -> I420Frame {
    let half = |plane: &[u8], w: usize, h: usize| -> Vec<u8> {
        let mut out = Vec::with_capacity(w / 2 * h / 2);
        for r in 0..h / 2 {
            for c in 0..w / 2 {
                let at = |dr: usize, dc: usize| u32::from(plane[(2 * r + dr) * w + 2 * c + dc]);
                out.push(((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1) + 2) / 4) as u8);
            }
        }
        out
    };
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (cw, ch) = (
        frame.chroma_width() as usize,
        frame.chroma_height() as usize,
    );
    I420Frame::from_planes(
        frame.width() / 2,
        frame.height() / 2,
        half(frame.y(), w, h),
        half(frame.u(), cw, ch),
        half(frame.v(), cw, ch),
    )
    .expect("halved")
}

/// Y PSNR of `got` against the pattern frame its burned-in code names, with that code.
fn against_pattern(got: &I420Frame) -> Option<((u64, u64), f64)> {
    let (n, t) = read_burned_in(got)?;
    let reference = PatternSource::new(got.width(), got.height(), 15)
        .expect("pattern")
        .render(n, t);
    Some(((n, t), psnr_y(&reference, got)))
}

/// Captures until `count` frames of `window` carry the pattern; once one does, every later one
/// must, each within [`MIN_PSNR`] of its pattern frame. Returns their burned-in numbers.
fn capture_pattern(window: &mut X11Window, count: usize) -> Vec<u64> {
    let deadline = Instant::now() + BOUND;
    let mut numbers = Vec::new();
    while numbers.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {numbers:?} within {BOUND:?}"
        );
        let frame = window.next_frame().expect("captures");
        match against_pattern(&frame) {
            Some(((n, _), psnr)) => {
                assert!(psnr >= MIN_PSNR, "frame {n}: Y PSNR {psnr:.1} dB");
                numbers.push(n);
            }
            // Just after the redirect, the covered part may still show what covered it until
            // the window draws again.
            None if numbers.is_empty() => {}
            None => panic!("the pattern was lost after frames {numbers:?}"),
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    numbers
}

fn assert_rising(numbers: &[u64], min_distinct: usize) {
    assert!(
        numbers.windows(2).all(|w| w[0] <= w[1]),
        "numbers go back: {numbers:?}"
    );
    let distinct = numbers.windows(2).filter(|w| w[0] < w[1]).count() + 1;
    assert!(distinct >= min_distinct, "too few new frames: {numbers:?}");
}

#[test]
fn windows_are_listed_with_title_and_size_but_not_our_own() {
    let xvfb = Xvfb::start(1280, 720);
    let d = xvfb.display.as_str();
    let pattern =
        PatternWindow::open(Some(d), "videoroom-pattern", 640, 360, 15).expect("pattern window");
    let other = OtherApp::new(d);
    let editor = other.window(
        (700, 100, 301, 201),
        Spec {
            title: Some("Editor"),
            pid: Some(1),
            ..Spec::default()
        },
    );
    // Not listed: a window of this process, an untitled one, a tiny one, a menu, a hidden one.
    let own_pid = std::process::id();
    other.window(
        (0, 400, 200, 200),
        Spec {
            title: Some("Videoroom"),
            pid: Some(own_pid),
            ..Spec::default()
        },
    );
    other.window((10, 400, 200, 200), Spec::default());
    other.window(
        (20, 400, 20, 200),
        Spec {
            title: Some("tiny"),
            ..Spec::default()
        },
    );
    other.window(
        (30, 400, 200, 200),
        Spec {
            title: Some("menu"),
            override_redirect: true,
            ..Spec::default()
        },
    );
    other.window(
        (40, 400, 200, 200),
        Spec {
            title: Some("hidden"),
            unmapped: true,
            ..Spec::default()
        },
    );

    let all = x11::list_sources(Some(d)).expect("lists");
    assert_eq!(all[0].id, "monitor:0", "screens first: {all:?}");
    assert_eq!(all[0].kind, ScreenSourceKind::Screen);
    let windows = listed_windows(d);
    let expected = vec![
        // Topmost first; odd sides are rounded down to even, as captured.
        ScreenSourceInfo {
            id: x11::window_id(editor),
            kind: ScreenSourceKind::Window,
            title: "Editor".into(),
            width: 300,
            height: 200,
        },
        ScreenSourceInfo {
            id: pattern.source_id(),
            kind: ScreenSourceKind::Window,
            title: "videoroom-pattern".into(),
            width: 640,
            height: 360,
        },
    ];
    assert_eq!(windows, expected);

    // A thumbnail shows the window's pixels, averaged 2×2 (the window is 640×360): its
    // burned-in code (8-pixel cells become 4-pixel ones) names the pattern frame it shows.
    let started = Instant::now();
    let thumb = x11::thumbnail(Some(d), &pattern.source_id(), 320, 180).expect("thumbnail");
    println!("thumbnail of a 640x360 window: {:?}", started.elapsed());
    assert_eq!((thumb.width(), thumb.height()), (320, 180));
    let (n, t) = read_burned_in(&thumb).expect("the thumbnail shows the pattern");
    let drawn = PatternSource::new(640, 360, 15)
        .expect("pattern")
        .render(n, t);
    let shown = bgrx_to_i420(&i420_to_bgrx(&drawn).expect("to BGRX"), 640, 360).expect("to I420");
    let psnr = psnr_y(&halved(&shown), &thumb);
    println!("thumbnail against the window halved: Y PSNR {psnr:.1} dB");
    assert!(psnr >= MIN_PSNR, "{psnr:.1} dB");
    let screen_thumb = x11::thumbnail(Some(d), "monitor:0", 320, 180).expect("thumbnail");
    assert_eq!((screen_thumb.width(), screen_thumb.height()), (320, 180));
    assert_eq!(
        x11::thumbnail(Some(d), &x11::window_id(editor), 1000, 1000)
            .map(|f| (f.width(), f.height()))
            .expect("thumbnail"),
        (300, 200),
        "never enlarged"
    );
    let full = x11::open_source(Some(d), &pattern.source_id()).expect("opens");
    assert_eq!(
        (full.width, full.height, full.title.as_str()),
        (640, 360, "videoroom-pattern")
    );
    drop(full);

    // With a window manager, its _NET_CLIENT_LIST says which windows are applications'; a
    // reparenting one puts each in a frame (a root child, with the decorations), which is what
    // is captured and whose size is listed.
    let frame = other.window((900, 300, 340, 240), Spec::default());
    let client = other.conn.generate_id().expect("id");
    other
        .conn
        .create_window(
            x11rb::COPY_FROM_PARENT as u8,
            client,
            frame,
            20,
            20,
            300,
            200,
            0,
            WindowClass::INPUT_OUTPUT,
            x11rb::COPY_FROM_PARENT,
            &CreateWindowAux::new(),
        )
        .expect("CreateWindow");
    other
        .conn
        .change_property8(
            PropMode::REPLACE,
            client,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            b"Framed",
        )
        .expect("WM_NAME");
    other.conn.map_window(client).expect("MapWindow");
    other
        .conn
        .change_property32(
            PropMode::REPLACE,
            other.root,
            other.atom("_NET_CLIENT_LIST"),
            AtomEnum::WINDOW,
            &[editor, client],
        )
        .expect("_NET_CLIENT_LIST");
    other.sync();
    let managed = listed_windows(d);
    let framed = ScreenSourceInfo {
        id: x11::window_id(client),
        kind: ScreenSourceKind::Window,
        title: "Framed".into(),
        width: 340,
        height: 240,
    };
    assert_eq!(
        managed,
        vec![expected[0].clone(), framed],
        "only the managed windows"
    );
    let captured = X11Window::open(Some(d), client).expect("opens the framed window");
    assert_eq!(
        (captured.top_level(), captured.width(), captured.height()),
        (frame, 340, 240),
        "the frame is captured"
    );
    assert_eq!(captured.title(), "Framed");
    drop(captured);
    other
        .conn
        .delete_property(other.root, other.atom("_NET_CLIENT_LIST"))
        .expect("DeleteProperty");
    other.sync();

    // A window that is gone is no source any more.
    let id = pattern.source_id();
    pattern.close();
    assert!(listed_windows(d).iter().all(|w| w.id != id));
    assert!(matches!(
        x11::open_source(Some(d), &id),
        Err(ScreenError::NoSuchSource { id: ref gone }) if *gone == id
    ));
    assert!(matches!(
        x11::thumbnail(Some(d), &id, 320, 180),
        Err(ScreenError::NoSuchSource { .. })
    ));
    assert!(matches!(
        x11::open_source(Some(d), "window:0x0"),
        Err(ScreenError::NoSuchSource { .. })
    ));
    assert!(matches!(
        x11::open_source(Some(d), "window:0x7fffff"),
        Err(ScreenError::NoSuchSource { .. })
    ));
}

#[test]
fn a_covered_window_is_captured_whole() {
    let xvfb = Xvfb::start(1920, 1080);
    let d = xvfb.display.as_str();
    let pattern = PatternWindow::open(Some(d), "covered", 1280, 720, 15).expect("pattern window");
    // A window over the left half of it, the burned-in code included.
    let other = OtherApp::new(d);
    other.window((0, 0, 640, 720), Spec::default());

    // The screen shows the cover, not the pattern.
    let mut screen = X11Screen::open(Some(d), X11Area::Root).expect("opens the screen");
    let shown = crop(&screen.next_frame().expect("captures"), 1280, 720);
    assert_eq!(read_burned_in(&shown), None, "the code is covered");
    let left_mean = (0..720)
        .map(|r| {
            shown.y()[r * 1280..r * 1280 + 640]
                .iter()
                .map(|&p| u64::from(p))
                .sum::<u64>()
        })
        .sum::<u64>()
        / (640 * 720);
    assert!(left_mean >= 230, "the cover is white (mean Y {left_mean})");

    // The window's own capture does show it.
    let mut window = X11Window::open(Some(d), pattern.window()).expect("opens the window");
    assert_eq!((window.width(), window.height()), (1280, 720));
    assert_eq!(window.title(), "covered");
    assert!(window.uses_shm(), "Xvfb offers MIT-SHM 1.2");
    let numbers = capture_pattern(&mut window, 20);
    assert_rising(&numbers, 5);

    // Through the socket too.
    let mut socket = X11Window::open(Some(d), pattern.window())
        .expect("opens the window")
        .without_shm();
    assert!(!socket.uses_shm());
    assert_rising(&capture_pattern(&mut socket, 5), 2);
}

#[test]
fn a_resized_window_is_captured_at_its_new_size() {
    let xvfb = Xvfb::start(1280, 720);
    let d = xvfb.display.as_str();
    let pattern = PatternWindow::open(Some(d), "resized", 640, 360, 30).expect("pattern window");
    let mut window = X11Window::open(Some(d), pattern.window()).expect("opens the window");
    capture_pattern(&mut window, 3);
    for (w, h) in [(960u32, 540u32), (480, 270), (1280, 720)] {
        pattern.resize(w, h).expect("resizes");
        let deadline = Instant::now() + BOUND;
        let mut sizes = Vec::new();
        loop {
            let frame = window.next_frame().expect("captures across the resize");
            sizes.push((frame.width(), frame.height()));
            if (frame.width(), frame.height()) == (w, h)
                && let Some(((n, _), psnr)) = against_pattern(&frame)
            {
                assert!(psnr >= MIN_PSNR, "{w}x{h} frame {n}: {psnr:.1} dB");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no {w}x{h} pattern frame within {BOUND:?}; sizes seen {sizes:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!((window.width(), window.height()), (w, h));
        assert_rising(&capture_pattern(&mut window, 5), 2);
    }
}

#[test]
fn an_unmapped_window_repeats_and_a_destroyed_one_ends() {
    let xvfb = Xvfb::start(1280, 720);
    let d = xvfb.display.as_str();
    let pattern = PatternWindow::open(Some(d), "goes", 640, 360, 30).expect("pattern window");
    let mut window = X11Window::open(Some(d), pattern.window()).expect("opens the window");
    capture_pattern(&mut window, 3);

    // Minimised: the last frame again, numbered on.
    let other = OtherApp::new(d);
    other
        .conn
        .unmap_window(pattern.window())
        .expect("UnmapWindow");
    other.sync();
    let deadline = Instant::now() + BOUND;
    let mut seen = Vec::new();
    let held = loop {
        let frame = window.next_frame().expect("captures while unmapped");
        let code = read_burned_in(&frame).expect("the last frame is the pattern");
        seen.push((frame.frame_number, code.0));
        // Five frames in a row with the same picture while the pattern goes on drawing.
        let n = seen.len();
        if n >= 5 && seen[n - 5..].iter().all(|s| s.1 == code.0) {
            break code.0;
        }
        assert!(Instant::now() < deadline, "no repeated frame: {seen:?}");
        std::thread::sleep(Duration::from_millis(40));
    };
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "frames are numbered on: {seen:?}"
    );
    // Mapped again: the pattern moves again.
    other.conn.map_window(pattern.window()).expect("MapWindow");
    other.sync();
    let numbers = capture_pattern(&mut window, 10);
    assert!(
        numbers.last().is_some_and(|&n| n > held),
        "{numbers:?} after {held}"
    );

    // Closed: the source ends.
    let xid = pattern.window();
    pattern.close();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut frames_after = 0;
    loop {
        match window.next_frame() {
            Ok(_) => frames_after += 1,
            Err(SourceError::Ended) => break,
            Err(e) => panic!("{e}, not Ended"),
        }
        assert!(
            Instant::now() < deadline,
            "still capturing after the window closed ({frames_after} frames)"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(frames_after <= 2, "{frames_after} frames after the close");
    assert!(matches!(
        X11Window::open(Some(d), xid),
        Err(X11Error::NoSuchWindow { window, .. }) if window == xid
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_window_decodes_at_the_other_end_until_it_closes() {
    let xvfb = Xvfb::start(1280, 720);
    let display = xvfb.display.clone();
    let pattern = PatternWindow::open(Some(&display), "shared", 960, 540, 15).expect("window");
    let other = OtherApp::new(&display);
    other.window((480, 0, 800, 720), Spec::default());

    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let (ada, mut ada_events) = Room::join(&url, "x11w", "Ada", common::loopback())
        .await
        .expect("Ada joins");
    let (bob, mut bob_events) = Room::join(&url, "x11w", "Bob", common::loopback())
        .await
        .expect("Bob joins");
    let opened = {
        let (display, id) = (display.clone(), pattern.source_id());
        tokio::task::spawn_blocking(move || x11::open_source(Some(&display), &id))
            .await
            .expect("thread")
            .expect("opens the window")
    };
    assert_eq!((opened.width, opened.height), (960, 540));
    let settings = VideoSendSettings {
        width: opened.width,
        height: opened.height,
        fps: 15,
        target_kbps: 2500,
    };
    let shared = ada
        .start_screen_share(opened.source, settings)
        .await
        .expect("shares the window");

    let deadline = tokio::time::Instant::now() + BOUND;
    let video = remote_screen(&bob, &mut bob_events, &shared, deadline).await;
    let mut rx = video.frames();
    let (mut numbers, mut psnrs) = (Vec::new(), Vec::new());
    while numbers.len() < 20 {
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .unwrap_or_else(|_| panic!("only {numbers:?} within {BOUND:?}: {:?}", video.stats()))
            .expect("track still present");
        let Some(decoded) = rx.borrow_and_update().clone() else {
            continue;
        };
        assert_eq!((decoded.frame.width(), decoded.frame.height()), (960, 540));
        let ((n, _), psnr) =
            against_pattern(&decoded.frame).expect("the burned-in code survives capture and VP8");
        numbers.push(n);
        psnrs.push(psnr);
    }
    assert_rising(&numbers, 10);
    let worst = psnrs.iter().copied().fold(f64::INFINITY, f64::min);
    println!("window share: frames {numbers:?}, worst Y PSNR {worst:.1} dB");
    assert!(worst >= MIN_PSNR, "Y PSNR {psnrs:?}");

    // The window shrinks: Bob's frames follow (a new encoder at the new size, keyframe first).
    let pattern = tokio::task::spawn_blocking(move || {
        pattern.resize(640, 360).expect("resizes");
        pattern
    })
    .await
    .expect("resizes");
    loop {
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .unwrap_or_else(|_| panic!("no 640x360 frame within {BOUND:?}: {:?}", video.stats()))
            .expect("track still present");
        let Some(decoded) = rx.borrow_and_update().clone() else {
            continue;
        };
        if (decoded.frame.width(), decoded.frame.height()) == (640, 360)
            && let Some(((n, _), psnr)) = against_pattern(&decoded.frame)
        {
            println!("after the resize: frame {n} at 640x360, Y PSNR {psnr:.1} dB");
            assert!(psnr >= MIN_PSNR, "{psnr:.1} dB after the resize");
            break;
        }
    }

    // The window closes: the share ends on its own, for Ada and for Bob.
    tokio::task::spawn_blocking(move || pattern.close())
        .await
        .expect("closes");
    let closed = tokio::time::Instant::now();
    let within = closed + Duration::from_secs(3);
    let reason = loop {
        let event = tokio::time::timeout_at(within, ada_events.recv())
            .await
            .expect("Ada's share did not end within 3 s of the window closing")
            .expect("Ada's events go on");
        if let RoomEvent::ScreenShareEnded { reason } = event {
            break reason;
        }
    };
    assert!(
        matches!(reason, ScreenShareEnd::SourceEnded(_)),
        "{reason:?}"
    );
    loop {
        let event = tokio::time::timeout_at(within, bob_events.recv())
            .await
            .expect("Bob still has the track 3 s after the window closed")
            .expect("Bob's events go on");
        if let RoomEvent::TrackRemoved { track_id } = event
            && track_id == shared
        {
            break;
        }
    }
    println!(
        "window closed → share ended on both sides in {:?}",
        closed.elapsed()
    );
    assert!(ada.screen_track_id().is_none());
}
