//! Audio output: the [`AudioSink`] trait (a speaker, or nothing) and [`NullSink`], the sink of a
//! machine without an audio device.
//!
//! The playout loop pulls one mixed 20 ms frame at a time and hands it to the sink; the sink's
//! `write` blocks until the device has room, so the device clock paces playout. [`NullSink`]
//! paces itself with the monotonic clock instead, so the rest of the pipeline (jitter buffers,
//! decoders, levels, statistics) runs exactly as it would with a speaker.

use super::opus::{AudioFrame, FRAME_MICROS};
use std::time::{Duration, Instant};

/// Why a sink could not play a frame.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// The device went away or failed; playout stops.
    #[error("audio output failed: {0}")]
    Failed(String),
}

/// Where mixed audio goes: a speaker, or nowhere.
pub trait AudioSink: Send {
    /// Plays one 20 ms frame of 48 kHz PCM. Blocks until the device has room for it, so the
    /// caller is paced by the device clock.
    fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError>;
}

/// A sink that discards audio at real-time pace (one frame per 20 ms of the monotonic clock).
#[derive(Debug)]
pub struct NullSink {
    next: Option<Instant>,
}

impl NullSink {
    /// A new null sink.
    pub fn new() -> Self {
        Self { next: None }
    }
}

impl Default for NullSink {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioSink for NullSink {
    fn write(&mut self, _frame: &AudioFrame) -> Result<(), SinkError> {
        let period = Duration::from_micros(FRAME_MICROS);
        let now = Instant::now();
        let due = match self.next {
            // After a stall longer than one frame, restart the schedule instead of bursting.
            Some(next) if next + period >= now => next,
            _ => now,
        };
        if due > now {
            std::thread::sleep(due - now);
        }
        self.next = Some(due + period);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Channels;

    #[test]
    fn null_sink_runs_in_real_time() {
        let frame = AudioFrame {
            samples: vec![0; 960],
            channels: Channels::Mono,
            capture_micros: 0,
        };
        let mut sink = NullSink::new();
        let start = Instant::now();
        for _ in 0..10 {
            sink.write(&frame).unwrap();
        }
        // 10 frames: the first is immediate, nine more wait 20 ms each.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(175), "{elapsed:?}");
    }
}
