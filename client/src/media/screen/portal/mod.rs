//! Screen sharing on Wayland (feature `wayland`): the xdg-desktop-portal ScreenCast portal lets
//! the person pick a monitor or a window in the desktop's own dialog, and PipeWire delivers its
//! pictures. [`open`] runs the whole thing and returns a [`PortalSource`].
//!
//! - `session.rs`: the portal conversation (ashpd), and the session kept open while sharing;
//! - `stream.rs`: the PipeWire thread and its stream (formats offered, buffers copied);
//! - `slot.rs`: the newest picture between that thread and the encoder;
//! - `convert.rs`: packed RGB → I420;
//! - `error.rs`: what the portal's errors mean for the person ([`ScreenError`]);
//! - `stream_tests.rs`: the PipeWire path against a private PipeWire daemon (no compositor).
//!
//! Needs a D-Bus session bus, a portal frontend with a ScreenCast backend
//! (xdg-desktop-portal-gnome, -kde, -wlr…) and PipeWire. Buffers must be mappable memory: a
//! compositor that only sends DMA-BUF fails with a message saying so.

mod convert;
mod error;
mod session;
mod slot;
mod stream;
#[cfg(test)]
mod stream_tests;

use super::error::ScreenError;
use super::sources::OpenedScreen;
use crate::media::{I420Frame, SourceError, VideoSource, unix_micros_now};
use ashpd::desktop::screencast::SourceType;
use slot::{End, FrameSlot, Taken};
use std::sync::Arc;
use std::time::Duration;
use stream::{Remote, StreamThread};

/// How long [`PortalSource::next_frame`] waits for the first picture.
pub const FIRST_FRAME_WAIT: Duration = Duration::from_secs(1);

/// Asks the portal for a monitor or a window (its dialog: as long as the person takes) and
/// starts reading it. Must run inside a tokio runtime (the portal session lives in a task).
pub async fn open() -> Result<OpenedScreen, ScreenError> {
    let slot = Arc::new(FrameSlot::default());
    let cast = session::start_cast({
        let slot = slot.clone();
        move || {
            slot.end(End::Stopped(
                "the screen share was stopped from the desktop".into(),
            ))
        }
    })
    .await?;
    let title = match cast.kind {
        Some(SourceType::Window) => "Window",
        _ => "Screen",
    };
    let (thread, (width, height)) = StreamThread::start(
        Remote {
            fd: cast.fd,
            node_id: Some(cast.node_id),
            size_hint: cast.size,
        },
        slot.clone(),
        stream::NEGOTIATION_TIMEOUT,
    )
    .await?;
    Ok(OpenedScreen {
        source: Box::new(PortalSource {
            slot,
            last: None,
            next_number: 0,
            _stream: thread,
            _session: cast.session,
        }),
        width,
        height,
        title: title.to_owned(),
    })
}

/// A shared monitor or window, through the portal and PipeWire.
///
/// [`next_frame`](VideoSource::next_frame) returns the newest picture; when the compositor sent
/// nothing new (it only sends on change) the last one again, stamped now. Before the first
/// picture it waits up to [`FIRST_FRAME_WAIT`], then fails (the send loop skips and asks
/// again). Once the stream or the portal session ends: [`SourceError::Ended`].
///
/// Dropping it stops the PipeWire thread and closes the portal session.
pub struct PortalSource {
    slot: Arc<FrameSlot>,
    last: Option<I420Frame>,
    next_number: u64,
    // Dropped in this order: the stream first, then the session.
    _stream: StreamThread,
    _session: session::SessionGuard,
}

impl std::fmt::Debug for PortalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalSource")
            .field("next_number", &self.next_number)
            .finish_non_exhaustive()
    }
}

impl PortalSource {
    fn numbered(&mut self, mut frame: I420Frame) -> I420Frame {
        frame.frame_number = self.next_number;
        self.next_number += 1;
        frame
    }
}

impl VideoSource for PortalSource {
    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        let wait = if self.last.is_some() {
            Duration::ZERO
        } else {
            FIRST_FRAME_WAIT
        };
        match self.slot.take(wait) {
            Taken::End(End::Stopped(why)) => {
                tracing::info!("screen share ended: {why}");
                Err(SourceError::Ended)
            }
            Taken::End(End::Broken(why)) => Err(SourceError::Failed(why)),
            Taken::Frame(raw) => {
                let converted = convert::to_i420(&raw);
                self.slot.recycle(raw.bytes);
                let frame = converted.map_err(SourceError::Failed)?;
                self.last = Some(frame.clone());
                Ok(self.numbered(frame))
            }
            Taken::Nothing => match self.last.clone() {
                Some(mut again) => {
                    again.capture_micros = unix_micros_now();
                    Ok(self.numbered(again))
                }
                None => Err(SourceError::Failed(format!(
                    "no picture from the shared screen within {} s",
                    FIRST_FRAME_WAIT.as_secs()
                ))),
            },
        }
    }
}
