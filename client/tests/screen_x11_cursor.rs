//! The mouse pointer in X11 captures (XFixes), under Xvfb (whose root cursor is the X-shaped
//! one): on a screen filled with one flat colour, the pixels that differ from it form a small
//! box at the pointer (hotspot-corrected), and nothing else differs; warping the pointer moves
//! the box by exactly as much; near the screen's corner it is clipped; `without_cursor` gives the
//! flat screen exactly. A window capture shows the pointer at window-relative coordinates while
//! it is over the window, and the window's flat colour only when it is not.
//!
//! Needs `Xvfb` on PATH (Debian `xvfb`; `scripts/test.sh` installs it).

mod common;

use common::screen::Painter;
use std::time::{Duration, Instant};
use videoroom_client::media::screen::x11::{X11Window, bgrx_to_i420, i420_to_bgrx};
use videoroom_client::media::screen::{X11Area, X11Screen};
use videoroom_client::media::{I420Frame, VideoSource};
use videoroom_testkit::xvfb::Xvfb;
use x11rb::NONE;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateWindowAux, Window, WindowClass};
use x11rb::rust_connection::RustConnection;

const BOUND: Duration = Duration::from_secs(10);
/// The largest cursor expected (Xvfb's X cursor is 16×16; themes go to 64).
const MAX_CURSOR: u32 = 64;

/// A `width`×`height` frame of one colour, as the X server holds it and the capture gives it
/// back (I420 → BGRX → I420).
fn flat(width: u32, height: u32, yuv: (u8, u8, u8)) -> I420Frame {
    let mut f = I420Frame::black(width, height).expect("frame");
    let (y, u, v) = f.planes_mut();
    y.fill(yuv.0);
    u.fill(yuv.1);
    v.fill(yuv.2);
    bgrx_to_i420(&i420_to_bgrx(&f).expect("to BGRX"), width, height).expect("to I420")
}

/// The same pixels (frame numbers and times aside).
fn same(a: &I420Frame, b: &I420Frame) -> bool {
    a.y() == b.y() && a.u() == b.u() && a.v() == b.v()
}

/// The box (x0, y0, x1, y1; ends exclusive) of the pixels whose luma differs from `base`, after
/// checking that no chroma sample differs outside it (widened to whole chroma samples).
fn changed(got: &I420Frame, base: &I420Frame) -> Option<(u32, u32, u32, u32)> {
    assert_eq!((got.width(), got.height()), (base.width(), base.height()));
    let w = got.width();
    let mut bbox: Option<(u32, u32, u32, u32)> = None;
    for (i, (a, b)) in got.y().iter().zip(base.y()).enumerate() {
        if a != b {
            let (x, y) = (i as u32 % w, i as u32 / w);
            bbox = Some(match bbox {
                None => (x, y, x + 1, y + 1),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)),
            });
        }
    }
    let cw = got.chroma_width();
    for (plane, a, b) in [('U', got.u(), base.u()), ('V', got.v(), base.v())] {
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            let (cx, cy) = (i as u32 % cw, i as u32 / cw);
            let inside = bbox.is_some_and(|(x0, y0, x1, y1)| {
                (x0 / 2..x1.div_ceil(2)).contains(&cx) && (y0 / 2..y1.div_ceil(2)).contains(&cy)
            });
            assert!(
                p == q || inside,
                "{plane} differs at chroma ({cx}, {cy}), outside the cursor's box {bbox:?}"
            );
        }
    }
    bbox
}

/// Asserts a cursor-sized box that holds or touches `pointer` (frame coordinates) and returns it.
fn cursor_at(got: &I420Frame, base: &I420Frame, pointer: (u32, u32)) -> (u32, u32, u32, u32) {
    let bbox =
        changed(got, base).unwrap_or_else(|| panic!("no cursor drawn (pointer {pointer:?})"));
    let (x0, y0, x1, y1) = bbox;
    assert!(
        x1 - x0 <= MAX_CURSOR && y1 - y0 <= MAX_CURSOR,
        "changed pixels span {bbox:?}: more than a cursor"
    );
    let (px, py) = pointer;
    assert!(
        x0 <= px + 1 && px <= x1 && y0 <= py + 1 && py <= y1,
        "the cursor {bbox:?} is not at the pointer {pointer:?}"
    );
    bbox
}

/// Another client: warps the pointer, makes a window.
struct Pointer {
    conn: RustConnection,
    root: Window,
}

impl Pointer {
    fn new(display: &str) -> Self {
        let (conn, screen) = RustConnection::connect(Some(display)).expect("connects");
        let root = conn.setup().roots[screen].root;
        Self { conn, root }
    }

    /// Moves the pointer to (`x`, `y`) on the root and waits until the server has done it.
    fn warp(&self, x: i16, y: i16) {
        self.conn
            .warp_pointer(NONE, self.root, 0, 0, 0, 0, x, y)
            .expect("WarpPointer");
        self.sync();
    }

    /// A mapped window at (`x`, `y`) filled with the TrueColor `pixel`.
    fn window(&self, (x, y, w, h): (i16, i16, u16, u16), pixel: u32) -> Window {
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
                &CreateWindowAux::new().background_pixel(pixel),
            )
            .expect("CreateWindow");
        self.conn.map_window(id).expect("MapWindow");
        self.sync();
        id
    }

    fn sync(&self) {
        self.conn
            .get_input_focus()
            .expect("GetInputFocus")
            .reply()
            .expect("X server alive");
    }
}

#[test]
fn the_pointer_is_drawn_where_it_is_on_the_screen() {
    let xvfb = Xvfb::start(1280, 720);
    let d = xvfb.display.as_str();
    let painted = flat(1280, 720, (90, 150, 110));
    Painter::new(d).draw(&painted);
    let pointer = Pointer::new(d);

    for shm in [true, false] {
        let mut screen = X11Screen::open(Some(d), X11Area::Root).expect("opens");
        if !shm {
            screen = screen.without_shm();
        }
        assert!(screen.draws_cursor(), "Xvfb has XFixes");

        pointer.warp(300, 200);
        let first = cursor_at(
            &screen.next_frame().expect("captures"),
            &painted,
            (300, 200),
        );
        // The same cursor, moved by as much as the pointer.
        pointer.warp(900, 501);
        let moved = cursor_at(
            &screen.next_frame().expect("captures"),
            &painted,
            (900, 501),
        );
        assert_eq!(
            moved,
            (first.0 + 600, first.1 + 301, first.2 + 600, first.3 + 301),
            "shm={shm}: the drawn cursor follows the pointer"
        );
        // Clipped at the corners.
        pointer.warp(0, 0);
        let corner = cursor_at(&screen.next_frame().expect("captures"), &painted, (0, 0));
        assert_eq!((corner.0, corner.1), (0, 0), "shm={shm}: {corner:?}");
        pointer.warp(1279, 719);
        cursor_at(
            &screen.next_frame().expect("captures"),
            &painted,
            (1279, 719),
        );
        println!("shm={shm}: cursor box at (300, 200): {first:?}");

        pointer.warp(640, 360);
        let mut bare = screen.without_cursor();
        assert!(!bare.draws_cursor());
        let got = bare.next_frame().expect("captures");
        assert!(
            same(&got, &painted),
            "shm={shm}: without_cursor gives the screen exactly"
        );
    }

    // A monitor's capture draws it the same way (Xvfb's one monitor starts at the origin).
    let mut monitor = X11Screen::open(Some(d), X11Area::Monitor(0)).expect("opens");
    pointer.warp(10, 700);
    cursor_at(
        &monitor.next_frame().expect("captures"),
        &painted,
        (10, 700),
    );
}

#[test]
fn the_pointer_over_a_window_is_drawn_in_its_frame() {
    let xvfb = Xvfb::start(1280, 720);
    let d = xvfb.display.as_str();
    let pointer = Pointer::new(d);
    // TrueColor 0xRRGGBB.
    let pixel = 0x20_80_40;
    let (wx, wy, ww, wh) = (200i16, 150i16, 400u16, 300u16);
    let window = pointer.window((wx, wy, ww, wh), pixel);
    let bgrx = [0x40, 0x80, 0x20, 0].repeat(usize::from(ww) * usize::from(wh));
    let expected = bgrx_to_i420(&bgrx, u32::from(ww), u32::from(wh)).expect("to I420");

    let mut captured = X11Window::open(Some(d), window).expect("opens the window");
    assert!(captured.draws_cursor(), "Xvfb has XFixes");
    // The pointer away from the window: its flat colour only (once its background is painted).
    pointer.warp(50, 50);
    let deadline = Instant::now() + BOUND;
    loop {
        let got = captured.next_frame().expect("captures");
        if same(&got, &expected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the window never showed its flat colour alone (changed: {:?})",
            changed(&got, &expected)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Over the window: at window-relative coordinates.
    pointer.warp(wx + 100, wy + 80);
    let first = cursor_at(
        &captured.next_frame().expect("captures"),
        &expected,
        (100, 80),
    );
    pointer.warp(wx + 300, wy + 200);
    let moved = cursor_at(
        &captured.next_frame().expect("captures"),
        &expected,
        (300, 200),
    );
    assert_eq!(
        moved,
        (first.0 + 200, first.1 + 120, first.2 + 200, first.3 + 120),
        "the drawn cursor follows the pointer"
    );

    // Off the window again: flat; and never with `without_cursor`.
    pointer.warp(wx + i16::try_from(ww).unwrap() + 100, wy);
    assert!(same(&captured.next_frame().expect("captures"), &expected));
    pointer.warp(wx + 100, wy + 80);
    let mut bare = captured.without_cursor();
    assert!(same(&bare.next_frame().expect("captures"), &expected));
}
