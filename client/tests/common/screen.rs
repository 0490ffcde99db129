//! Screen-share test helpers shared by the X11 tests and `benches/screen_share.rs`: drawing on
//! an X display as another application would, and waiting for a shared screen at the other end.

#![allow(dead_code)]

use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use videoroom_client::media::I420Frame;
use videoroom_client::media::screen::x11::i420_to_bgrx;
use videoroom_client::{RemoteVideo, RoomEvent, RoomHandle};
use videoroom_protocol::{TrackId, TrackSource};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, Gcontext, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

/// Draws I420 frames on the root window of a display (its own connection, as another app would).
pub struct Painter {
    conn: RustConnection,
    root: Window,
    gc: Gcontext,
    depth: u8,
}

impl Painter {
    /// Connects to `display`.
    pub fn new(display: &str) -> Self {
        let (conn, screen) = RustConnection::connect(Some(display)).expect("painter connects");
        let (root, depth) = {
            let s = &conn.setup().roots[screen];
            (s.root, s.root_depth)
        };
        let gc = conn.generate_id().expect("id");
        conn.create_gc(gc, root, &Default::default())
            .expect("CreateGC");
        Self {
            conn,
            root,
            gc,
            depth,
        }
    }

    /// Puts `frame` at (0, 0) in one request and waits until the server has handled it.
    pub fn draw(&self, frame: &I420Frame) {
        let bgrx = i420_to_bgrx(frame).expect("I420 to BGRX");
        self.conn
            .put_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                self.gc,
                frame.width() as u16,
                frame.height() as u16,
                0,
                0,
                0,
                self.depth,
                &bgrx,
            )
            .expect("PutImage");
        // A round trip: every earlier request is done when its reply arrives.
        self.conn
            .get_input_focus()
            .expect("GetInputFocus")
            .reply()
            .expect("X server alive");
    }
}

/// Waits until `viewer` is told of the screen track `shared` and has a video slot for it.
pub async fn remote_screen(
    viewer: &RoomHandle,
    events: &mut mpsc::Receiver<RoomEvent>,
    shared: &TrackId,
    deadline: Instant,
) -> RemoteVideo {
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no screen track announced before the deadline"))
            .expect("the viewer's events go on");
        if let RoomEvent::TrackAdded(info) = &event
            && info.source == TrackSource::Screen
        {
            assert_eq!(&info.track_id, shared);
            break;
        }
    }
    loop {
        if let Some(v) = viewer.remote_video(shared) {
            return v;
        }
        assert!(Instant::now() < deadline, "no video slot for {shared}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
