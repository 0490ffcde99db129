//! The playout thread: every 20 ms of the sink's clock it takes one mixed frame from the
//! [`Mixer`] and writes it to the [`AudioSink`] (a speaker, or [`NullSink`] on a machine without
//! one). If the device fails, playout carries on into a [`NullSink`] so that the receive side
//! (jitter buffers, statistics, levels) keeps running; the failure is reported once.

use super::mixer::Mixer;
use crate::media::{AudioSink, NullSink, SinkError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

/// A running playout thread; dropping it tells the thread to stop (without waiting for it).
#[derive(Debug)]
pub struct Playout {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Playout {
    /// Starts playing `mixer` into `sink`. `on_error` is called (from the playout thread) if the
    /// sink fails.
    pub fn start(
        mixer: Mixer,
        mut sink: Box<dyn AudioSink>,
        on_error: impl Fn(SinkError) + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let span = tracing::Span::current();
        let thread = std::thread::Builder::new()
            .name("audio-playout".into())
            .spawn(move || {
                let _entered = span.enter();
                while !stopping.load(Ordering::Relaxed) {
                    let frame = mixer.mix(Instant::now());
                    if let Err(e) = sink.write(&frame) {
                        tracing::warn!("{e}; continuing without audio output");
                        on_error(e);
                        sink = Box::new(NullSink::new());
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Playout {
    fn drop(&mut self) {
        // The thread sees the flag after its current sink write (20 ms; longer for a stalled
        // device) and ends, dropping the sink. It is not joined: dropping happens on the async
        // room task, which must not block on a device.
        self.stop.store(true, Ordering::Relaxed);
        drop(self.thread.take());
    }
}
