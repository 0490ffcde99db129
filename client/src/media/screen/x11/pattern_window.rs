//! [`PatternWindow`]: a top-level X window that shows the moving test pattern
//! ([`PatternSource`], stamped with the wall clock when each frame is drawn, so the burned-in time
//! is the draw time), for tests, the screen benchmark and the bot's `--show-pattern-window`.
//!
//! A thread with its own connection draws a frame every `1/fps` s with `PutImage` (one request
//! per frame up to the server's request limit, 16 MB with BIG-REQUESTS: the server handles a
//! request whole, so a capture never sees half a frame) and waits for the server to have drawn
//! it. The window sets no `_NET_WM_PID`, so the process that opened it may list and share it
//! (a test, the bot sharing its own pattern window).

use super::windows::Atoms;
use super::{X11Error, check_depth, connect, i420_to_bgrx, protocol};
use crate::media::{I420Frame, PatternSource, unix_micros_now};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::ReplyError;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    AtomEnum, ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, Gcontext,
    ImageFormat, PropMode, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// The smallest side drawn; smaller sizes are raised to it.
const MIN_SIDE: u32 = 16;
/// The largest side drawn; larger sizes are lowered to it.
const MAX_SIDE: u32 = 8192;

/// What the handle asks the drawing thread.
enum Command {
    Resize {
        width: u32,
        height: u32,
        done: mpsc::Sender<Result<(), String>>,
    },
    Close {
        done: mpsc::Sender<()>,
    },
}

/// A window showing the moving pattern until dropped or [`close`](Self::close)d.
pub struct PatternWindow {
    display: String,
    window: Window,
    commands: mpsc::Sender<Command>,
    drawn: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PatternWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternWindow")
            .field("display", &self.display)
            .field("window", &format_args!("0x{:x}", self.window))
            .field("drawn", &self.frames_drawn())
            .finish_non_exhaustive()
    }
}

/// `side` rounded down to even, within `MIN_SIDE..=MAX_SIDE`.
fn side(side: u32) -> u16 {
    u16::try_from(side.clamp(MIN_SIDE, MAX_SIDE) & !1).unwrap_or(8192)
}

/// The drawing thread's side: its connection, window and pattern.
struct Painter {
    conn: RustConnection,
    display: String,
    window: Window,
    gc: Gcontext,
    depth: u8,
    pattern: PatternSource,
    width: u16,
    height: u16,
    next_number: u64,
    drawn: Arc<AtomicU64>,
}

impl PatternWindow {
    /// Opens a `width`×`height` window titled `title` (`WM_NAME` and `_NET_WM_NAME`) at the
    /// top-left of `display` (or `$DISPLAY`), shows the pattern's first frame and draws `fps`
    /// frames a second from then on. Sides are rounded down to even, within 16..=8192.
    pub fn open(
        display: Option<&str>,
        title: &str,
        width: u32,
        height: u32,
        fps: u32,
    ) -> Result<Self, X11Error> {
        let (conn, screen, name) = connect(display)?;
        let (root, depth, black) = {
            let s = &conn.setup().roots[screen];
            (s.root, s.root_depth, s.black_pixel)
        };
        check_depth(&conn, depth, &name)?;
        let (w, h) = (side(width), side(height));
        let fail = |what: &str, e: ReplyError| protocol(&name, what, e);
        let window = conn
            .generate_id()
            .map_err(|e| protocol(&name, "an id", e))?;
        let gc = conn
            .generate_id()
            .map_err(|e| protocol(&name, "an id", e))?;
        let atoms = Atoms::new(&conn)
            .map_err(|e| fail("InternAtom", e.into()))?
            .reply()
            .map_err(|e| fail("InternAtom", e))?;
        let (legacy_type, legacy_title) = legacy_title(title, atoms.UTF8_STRING);
        let sent = (|| -> Result<(), ReplyError> {
            conn.create_window(
                x11rb::COPY_FROM_PARENT as u8,
                window,
                root,
                0,
                0,
                w,
                h,
                0,
                WindowClass::INPUT_OUTPUT,
                x11rb::COPY_FROM_PARENT,
                &CreateWindowAux::new().background_pixel(black),
            )?
            .check()?;
            conn.change_property8(
                PropMode::REPLACE,
                window,
                atoms._NET_WM_NAME,
                atoms.UTF8_STRING,
                title.as_bytes(),
            )?;
            conn.change_property8(
                PropMode::REPLACE,
                window,
                AtomEnum::WM_NAME,
                legacy_type,
                &legacy_title,
            )?;
            conn.change_property8(
                PropMode::REPLACE,
                window,
                AtomEnum::WM_CLASS,
                AtomEnum::STRING,
                b"videoroom-pattern\0Videoroom\0",
            )?;
            conn.create_gc(gc, window, &CreateGCAux::new())?;
            conn.map_window(window)?.check()?;
            Ok(())
        })();
        sent.map_err(|e| fail("creating the pattern window", e))?;
        let drawn = Arc::new(AtomicU64::new(0));
        let mut painter = Painter {
            conn,
            display: name.clone(),
            window,
            gc,
            depth,
            pattern: PatternSource::new(u32::from(w), u32::from(h), fps.max(1))
                .map_err(|e| protocol(&name, "the pattern", e))?,
            width: w,
            height: h,
            next_number: 0,
            drawn: Arc::clone(&drawn),
        };
        painter
            .draw()
            .map_err(|e| protocol(&name, "drawing the pattern", e))?;
        let (commands, rx) = mpsc::channel();
        let interval = Duration::from_secs(1) / fps.clamp(1, 1000);
        let thread = std::thread::Builder::new()
            .name("pattern-window".into())
            .spawn(move || painter.run(&rx, interval))
            .map_err(|e| protocol(&name, "starting the drawing thread", e))?;
        Ok(Self {
            display: name,
            window,
            commands,
            drawn,
            thread: Some(thread),
        })
    }

    /// The X id of the window.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// Its id for [`open_source`](super::open_source) (`window:0x…`).
    pub fn source_id(&self) -> String {
        super::window_id(self.window)
    }

    /// The display it is on.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Frames drawn so far.
    pub fn frames_drawn(&self) -> u64 {
        self.drawn.load(Ordering::Relaxed)
    }

    /// Resizes the window (sides as in [`open`](Self::open)) and returns once the server has the
    /// new size and the pattern drawn at it.
    pub fn resize(&self, width: u32, height: u32) -> Result<(), X11Error> {
        let stopped = || protocol(&self.display, "resizing the pattern window", "it stopped");
        let (done, answer) = mpsc::channel();
        self.commands
            .send(Command::Resize {
                width,
                height,
                done,
            })
            .map_err(|_| stopped())?;
        answer
            .recv()
            .map_err(|_| stopped())?
            .map_err(|e| protocol(&self.display, "resizing the pattern window", e))
    }

    /// Destroys the window; returns once the server has.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let (done, answer) = mpsc::channel();
        if self.commands.send(Command::Close { done }).is_ok() {
            // An error: the thread stopped on its own (the window or the display went).
            let _ = answer.recv();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PatternWindow {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `WM_NAME`'s type and bytes: Latin-1 `STRING` when the title fits, else UTF-8.
fn legacy_title(title: &str, utf8_string: u32) -> (u32, Vec<u8>) {
    let latin1: Option<Vec<u8>> = title.chars().map(|c| u8::try_from(c).ok()).collect();
    match latin1 {
        Some(bytes) => (AtomEnum::STRING.into(), bytes),
        None => (utf8_string, title.as_bytes().to_vec()),
    }
}

impl Painter {
    /// Draws frames every `interval` until told to close (or the window or display goes).
    fn run(mut self, commands: &mpsc::Receiver<Command>, interval: Duration) {
        let mut next = Instant::now() + interval;
        loop {
            match commands.recv_timeout(next.saturating_duration_since(Instant::now())) {
                Ok(Command::Resize {
                    width,
                    height,
                    done,
                }) => {
                    let _ = done.send(self.resize(width, height));
                }
                Ok(Command::Close { done }) => {
                    self.destroy();
                    let _ = done.send(());
                    return;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.destroy();
                    return;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = self.draw() {
                        tracing::info!(display = %self.display, "the pattern window stopped: {e}");
                        return;
                    }
                    next += interval;
                    // Late by more than a frame (a busy machine): skip, do not catch up.
                    let now = Instant::now();
                    if next < now {
                        next = now + interval;
                    }
                }
            }
        }
    }

    /// Draws the next frame, stamped now, and waits until the server has drawn it.
    fn draw(&mut self) -> Result<(), String> {
        let frame = self.pattern.render(self.next_number, unix_micros_now());
        self.next_number += 1;
        self.put(&frame)?;
        self.drawn.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// `frame` at the top-left of the window, in as few requests as the server takes.
    fn put(&self, frame: &I420Frame) -> Result<(), String> {
        let bgrx = i420_to_bgrx(frame)?;
        let row = usize::from(self.width) * 4;
        // Rows per request: what fits in the largest request, less PutImage's 24-byte header.
        let max_rows = (self.conn.maximum_request_bytes().saturating_sub(64) / row).max(1);
        let mut y = 0usize;
        for band in bgrx.chunks(max_rows * row) {
            let rows = band.len() / row;
            self.conn
                .put_image(
                    ImageFormat::Z_PIXMAP,
                    self.window,
                    self.gc,
                    self.width,
                    u16::try_from(rows).map_err(|e| e.to_string())?,
                    0,
                    i16::try_from(y).map_err(|e| e.to_string())?,
                    0,
                    self.depth,
                    band,
                )
                .map_err(|e| e.to_string())?;
            y += rows;
        }
        self.sync()
    }

    /// A round trip: every earlier request is done when it returns. An X error on one of
    /// them (the window was destroyed by someone else) is an error here.
    fn sync(&self) -> Result<(), String> {
        self.conn
            .get_input_focus()
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?;
        while let Some(event) = self.conn.poll_for_event().map_err(|e| e.to_string())? {
            if let Event::Error(e) = event {
                return Err(format!("X error {:?}", e.error_kind));
            }
        }
        Ok(())
    }

    fn resize(&mut self, width: u32, height: u32) -> Result<(), String> {
        let (w, h) = (side(width), side(height));
        self.conn
            .configure_window(
                self.window,
                &ConfigureWindowAux::new()
                    .width(u32::from(w))
                    .height(u32::from(h)),
            )
            .map_err(|e| e.to_string())?;
        self.pattern = PatternSource::new(u32::from(w), u32::from(h), self.pattern.fps())
            .map_err(|e| e.to_string())?;
        (self.width, self.height) = (w, h);
        self.draw()
    }

    fn destroy(&self) {
        let _ = self.conn.destroy_window(self.window);
        let _ = self.sync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_are_even_and_bounded() {
        assert_eq!(side(1281), 1280);
        assert_eq!(side(3), 16);
        assert_eq!(side(100_000), 8192);
    }

    #[test]
    fn titles_fall_back_to_utf8_beyond_latin1() {
        assert_eq!(
            legacy_title("Köln", 99),
            (AtomEnum::STRING.into(), vec![b'K', 0xF6, b'l', b'n'])
        );
        assert_eq!(legacy_title("東京", 99), (99, "東京".as_bytes().to_vec()));
    }

    #[test]
    fn no_display_no_window() {
        assert!(matches!(
            PatternWindow::open(Some(":4244"), "x", 64, 64, 15),
            Err(X11Error::Connect { .. })
        ));
    }
}
