//! [`FrameSlot`]: the newest picture, between the PipeWire thread (which writes every buffer it
//! gets into it) and the encoder (which takes what is there when it wants a frame). Older
//! pictures are overwritten, never queued. The slot also carries why the share ended, from
//! whichever side saw it first (the stream, or the portal session).

use super::convert::{PixelFormat, RawFrame};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Why no more pictures will come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The share stopped (the person stopped it, the stream went away): `SourceError::Ended`.
    Stopped(String),
    /// The stream cannot be read (DMA-BUF only, a format we did not offer): `SourceError::Failed`.
    Broken(String),
}

/// What [`FrameSlot::take`] found.
#[derive(Debug)]
pub(crate) enum Taken {
    /// A picture newer than the last one taken.
    Frame(RawFrame),
    /// Nothing new within the wait.
    Nothing,
    /// The share is over.
    End(End),
}

#[derive(Debug, Default)]
struct State {
    newest: Option<RawFrame>,
    /// A buffer of an earlier picture, reused for the next copy.
    spare: Vec<u8>,
    end: Option<End>,
}

/// The newest picture and the end of the share (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct FrameSlot {
    state: Mutex<State>,
    changed: Condvar,
}

impl FrameSlot {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a new picture: `fill` writes its `width × 4 × height` bytes into the buffer it is
    /// given (cleared). A picture not taken yet is overwritten. Nothing is stored once ended.
    pub(crate) fn put(
        &self,
        format: PixelFormat,
        width: u32,
        height: u32,
        capture_micros: u64,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut state = self.lock();
        if state.end.is_some() {
            return Ok(());
        }
        let mut bytes = match state.newest.take() {
            Some(old) => old.bytes,
            None => std::mem::take(&mut state.spare),
        };
        fill(&mut bytes)?;
        state.newest = Some(RawFrame {
            format,
            width,
            height,
            bytes,
            capture_micros,
        });
        drop(state);
        self.changed.notify_all();
        Ok(())
    }

    /// Ends the share (the first reason wins); whoever waits in [`take`](Self::take) wakes up.
    pub(crate) fn end(&self, end: End) {
        let mut state = self.lock();
        if state.end.is_none() {
            state.end = Some(end);
        }
        state.newest = None;
        drop(state);
        self.changed.notify_all();
    }

    /// Why the share ended, if it did.
    #[cfg(test)]
    pub(crate) fn ended(&self) -> Option<End> {
        self.lock().end.clone()
    }

    /// The picture stored since the last take, waiting up to `wait` for one; the end wins over
    /// a picture.
    pub(crate) fn take(&self, wait: Duration) -> Taken {
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        loop {
            if let Some(end) = &state.end {
                return Taken::End(end.clone());
            }
            if let Some(frame) = state.newest.take() {
                return Taken::Frame(frame);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Taken::Nothing;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Gives back the buffer of a taken picture, for the next copy.
    pub(crate) fn recycle(&self, bytes: Vec<u8>) {
        let mut state = self.lock();
        if state.spare.capacity() < bytes.capacity() {
            state.spare = bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn put(slot: &FrameSlot, fill: u8) {
        slot.put(PixelFormat::Bgrx, 1, 1, u64::from(fill), |b| {
            b.clear();
            b.extend([fill; 4]);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_newest_picture_wins_and_is_taken_once() {
        let slot = FrameSlot::default();
        put(&slot, 1);
        put(&slot, 2);
        match slot.take(Duration::ZERO) {
            Taken::Frame(f) => {
                assert_eq!(f.bytes, [2; 4]);
                slot.recycle(f.bytes);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(slot.take(Duration::ZERO), Taken::Nothing));
    }

    #[test]
    fn a_waiting_taker_wakes_for_a_picture_and_gives_up_at_its_deadline() {
        let slot = Arc::new(FrameSlot::default());
        let started = Instant::now();
        assert!(matches!(
            slot.take(Duration::from_millis(50)),
            Taken::Nothing
        ));
        assert!(started.elapsed() >= Duration::from_millis(50));

        let writer = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                put(&slot, 3);
            })
        };
        let started = Instant::now();
        assert!(
            matches!(slot.take(Duration::from_secs(10)), Taken::Frame(ref f) if f.bytes == [3; 4])
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        writer.join().unwrap();
    }

    #[test]
    fn the_end_wins_and_the_first_reason_stays() {
        let slot = Arc::new(FrameSlot::default());
        put(&slot, 1);
        slot.end(End::Stopped("the portal session was closed".into()));
        slot.end(End::Broken("later".into()));
        put(&slot, 2);
        assert_eq!(
            slot.ended(),
            Some(End::Stopped("the portal session was closed".into()))
        );
        assert!(matches!(
            slot.take(Duration::ZERO),
            Taken::End(End::Stopped(_))
        ));

        // A taker waiting for its first picture wakes up on the end.
        let slot = Arc::new(FrameSlot::default());
        let ender = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                slot.end(End::Stopped("stream gone".into()));
            })
        };
        assert!(matches!(slot.take(Duration::from_secs(10)), Taken::End(_)));
        ender.join().unwrap();
    }

    #[test]
    fn a_failed_copy_keeps_nothing() {
        let slot = FrameSlot::default();
        let e = slot
            .put(PixelFormat::Rgbx, 1, 1, 0, |_| Err("short buffer".into()))
            .unwrap_err();
        assert_eq!(e, "short buffer");
        assert!(matches!(slot.take(Duration::ZERO), Taken::Nothing));
    }
}
