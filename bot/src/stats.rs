//! What the bot measures, and the `--stats-json` report.
//!
//! Per remote video track a watcher task follows the track's latest-frame channel and reads the
//! frame number and capture time burned into each picture by the publisher's pattern: capture →
//! decode latency (one clock, one machine), whether the numbers strictly increase, and freezes
//! (more than [`FREEZE`] between two decoded frames while the track is not muted).

use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use videoroom_client::RemoteVideo;

/// A gap between two decoded frames longer than this is a freeze.
pub const FREEZE: Duration = Duration::from_millis(500);

/// At most this many samples of the uplink budget are kept (an hour at one a second).
pub const MAX_BUDGET_SAMPLES: usize = 3600;

/// Now, in wall clock ms since the UNIX epoch (as the timelines' times).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Latency samples kept per track (about 9 minutes at 30 fps); later frames are not sampled.
const MAX_SAMPLES: usize = 16_384;

/// What the watcher of one remote video track has seen.
#[derive(Debug, Default)]
pub struct VideoWatch {
    /// capture → decode, µs, per frame that carried a readable stamp.
    pub latencies_us: Vec<u64>,
    /// Frames seen by the watcher with a readable stamp.
    pub stamped_frames: u64,
    /// Times a frame number was not larger than the previous one.
    pub number_regressions: u64,
    pub last_number: Option<u64>,
    pub freezes: u64,
    pub longest_gap_ms: u64,
    /// Each change of the decoded size: (wall clock ms since the UNIX epoch, width, height);
    /// the first frame's size first. At most [`MAX_TIMELINE`].
    pub sizes: Vec<(u64, u32, u32)>,
    /// Each freeze: (wall clock ms of the frame that ended it, gap ms). At most
    /// [`MAX_TIMELINE`].
    pub freeze_list: Vec<(u64, u64)>,
    last_decoded: Option<Instant>,
    last_size: Option<(u32, u32)>,
    muted: bool,
}

/// Entries kept in each of a track's timelines (sizes, freezes).
pub const MAX_TIMELINE: usize = 1024;

impl VideoWatch {
    /// The publisher muted (`true`) or unmuted the track: a gap across a mute is no freeze.
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
        self.last_decoded = None;
    }

    /// Time since the last decoded frame while the track is not muted (zero before the first
    /// frame or while muted).
    pub fn ongoing_gap(&self, now: Instant) -> Duration {
        match self.last_decoded {
            Some(last) if !self.muted => now.saturating_duration_since(last),
            _ => Duration::ZERO,
        }
    }

    fn on_frame(
        &mut self,
        decoded_at: Instant,
        decoded_at_micros: u64,
        stamp: Option<(u64, u64)>,
        size: (u32, u32),
    ) {
        let wall_ms = decoded_at_micros / 1000;
        if let Some(last) = self.last_decoded {
            let gap = decoded_at.saturating_duration_since(last);
            self.longest_gap_ms = self.longest_gap_ms.max(gap.as_millis() as u64);
            if gap > FREEZE && !self.muted {
                self.freezes += 1;
                if self.freeze_list.len() < MAX_TIMELINE {
                    self.freeze_list.push((wall_ms, gap.as_millis() as u64));
                }
            }
        }
        let resized = self.last_size.is_some_and(|last| last != size);
        if self.sizes.last().is_none_or(|&(_, w, h)| (w, h) != size)
            && self.sizes.len() < MAX_TIMELINE
        {
            self.sizes.push((wall_ms, size.0, size.1));
        }
        self.last_size = Some(size);
        self.last_decoded = Some(decoded_at);
        if let Some((number, capture_micros)) = stamp {
            self.stamped_frames += 1;
            // A simulcast layer switch may show the same capture again: the server forwards the
            // target layer's keyframe, which can be the frame just shown from the other layer
            // (the publisher sends a capture's layers one after the other). The same number at
            // a new size is that; a smaller number, or the same at the same size, is not.
            if self
                .last_number
                .is_some_and(|last| number < last || (number == last && !resized))
            {
                self.number_regressions += 1;
            }
            self.last_number = Some(number);
            if self.latencies_us.len() < MAX_SAMPLES {
                self.latencies_us
                    .push(decoded_at_micros.saturating_sub(capture_micros));
            }
        }
    }
}

/// Follows `video`'s frames until the track is removed.
pub async fn watch_video(video: RemoteVideo, record: Arc<Mutex<VideoWatch>>) {
    let mut frames = video.frames();
    while frames.changed().await.is_ok() {
        let frame = frames.borrow_and_update().clone();
        if let Some(frame) = frame {
            record.lock().unwrap_or_else(|p| p.into_inner()).on_frame(
                frame.decoded_at,
                frame.decoded_at_micros,
                frame.burned_in,
                (frame.frame.width(), frame.frame.height()),
            );
        }
    }
}

/// Percentiles of a latency sample, in ms.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
    pub samples: usize,
}

/// Nearest-rank percentiles of `samples_us`; `None` when empty.
pub fn latency(samples_us: &[u64]) -> Option<Latency> {
    if samples_us.is_empty() {
        return None;
    }
    let mut sorted = samples_us.to_vec();
    sorted.sort_unstable();
    let rank = |p: f64| {
        let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[i] as f64 / 1000.0
    };
    Some(Latency {
        p50_ms: rank(0.50),
        p95_ms: rank(0.95),
        max_ms: sorted[sorted.len() - 1] as f64 / 1000.0,
        samples: sorted.len(),
    })
}

/// The `--stats-json` report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub room: String,
    pub name: String,
    /// Our peer id in the last session.
    pub peer_id: String,
    /// From starting the join until the report, s.
    pub duration_s: f64,
    /// From starting the join until `joined`, ms.
    pub join_ms: f64,
    /// Times the room rejoined after losing the connection.
    pub reconnections: u64,
    pub remote_tracks: Vec<RemoteTrackReport>,
    pub local_tracks: Vec<LocalTrackReport>,
    /// Error events, in order.
    pub errors: Vec<String>,
}

/// One remote track, as this bot received it.
#[derive(Debug, Serialize, Clone)]
pub struct RemoteTrackReport {
    pub track_id: String,
    pub peer_id: String,
    pub peer_name: String,
    /// "video" or "audio".
    pub kind: &'static str,
    /// "camera", "microphone", "screen" or "screen_audio".
    pub source: &'static str,
    /// Video: pictures decoded. Audio: 20 ms frames decoded from received packets.
    pub frames_decoded: u64,
    /// Audio: RTP packets received. Video: pictures dropped before decoding.
    pub packets_received: Option<u64>,
    pub frames_dropped: Option<u64>,
    /// Audio: 20 ms frames concealed (lost or late packets).
    pub frames_concealed: Option<u64>,
    /// From our join (or, for a track published later, from its announcement) to its first
    /// decoded frame (video) or first played audio frame, ms.
    pub join_to_first_frame_ms: Option<f64>,
    /// Video: capture → decode latency from the burned-in capture times.
    pub capture_to_decode: Option<Latency>,
    /// Video: gaps longer than 500 ms between decoded frames while not muted.
    pub freezes: Option<u64>,
    pub longest_gap_ms: Option<u64>,
    /// Video: whether every burned-in frame number was larger than the one before.
    pub frame_numbers_increasing: Option<bool>,
    pub last_frame_number: Option<u64>,
    /// Video: the largest decoded picture (by area; 0 before the first frame).
    pub max_width: Option<u32>,
    pub max_height: Option<u32>,
    /// Video: times the decoded size changed from one frame to the next (simulcast layer
    /// switches, or the publisher changing its size).
    pub size_changes: Option<u64>,
    /// Video: the decoded size over time, `[wall clock ms, width, height]` at the first frame
    /// and at every change (at most 1024 entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_timeline: Option<Vec<(u64, u32, u32)>>,
    /// Video: every freeze, `[wall clock ms of the frame that ended it, gap ms]` (at most 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze_timeline: Option<Vec<(u64, u64)>>,
    /// Audio: the strongest frequency of the last second played, Hz.
    pub dominant_hz: Option<f32>,
    pub muted: bool,
    /// Still published when the report was written.
    pub present: bool,
}

/// One of our tracks.
#[derive(Debug, Serialize, Clone)]
pub struct LocalTrackReport {
    pub track_id: String,
    pub kind: &'static str,
    /// "camera", "microphone" or "screen".
    pub source: &'static str,
    /// What the engine sent. For a screen share only while it lasts (`null` once it ended: see
    /// `frames_captured`).
    pub frames_sent: Option<u64>,
    pub packets_sent: Option<u64>,
    pub keyframes_sent: Option<u64>,
    /// Encoder output over the whole run, kbit/s.
    pub bitrate_kbps: Option<f64>,
    /// Video: on how many simulcast layers the last frame went out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers_sent: Option<u32>,
    /// Video: layers the server said nobody receives, not encoded (dynacast) at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers_paused: Option<u32>,
    /// Video: the uplink estimate (kbit/s) the layers were last fitted to (`null` before the
    /// server's first transport-wide feedback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_kbps: Option<u32>,
    /// Video: layers the uplink budget has no room for, not encoded, at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers_paused_by_budget: Option<u32>,
    /// Camera: every second, `[wall clock ms, budget kbit/s (0 = none), layers paused by the
    /// budget, layers the last frame went out on]` (at most [`MAX_BUDGET_SAMPLES`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_timeline: Option<Vec<[u64; 4]>>,
    /// Screen share: frames the engine took from the source to encode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_captured: Option<u64>,
    /// Screen share: how long it was shared (so far), s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_s: Option<f64>,
    /// Screen share: still shared when the report was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        let l = latency(&samples).unwrap();
        assert_eq!(
            (l.p50_ms, l.p95_ms, l.max_ms, l.samples),
            (50.0, 95.0, 100.0, 100)
        );
        assert!(latency(&[]).is_none());
    }

    #[test]
    fn freezes_count_gaps_but_not_mutes() {
        let t0 = Instant::now();
        let mut w = VideoWatch::default();
        w.on_frame(t0, 0, Some((1, 0)), (640, 360));
        w.on_frame(
            t0 + Duration::from_millis(33),
            33_000,
            Some((2, 0)),
            (640, 360),
        );
        w.on_frame(
            t0 + Duration::from_millis(700),
            700_000,
            Some((3, 0)),
            (320, 180),
        );
        assert_eq!(w.freezes, 1);
        w.set_muted(true);
        w.set_muted(false);
        w.on_frame(
            t0 + Duration::from_millis(5000),
            0,
            Some((4, 0)),
            (320, 180),
        );
        assert_eq!(w.freezes, 1, "the gap across a mute is no freeze");
        w.on_frame(
            t0 + Duration::from_millis(5033),
            0,
            Some((4, 0)),
            (320, 180),
        );
        assert_eq!(w.number_regressions, 1);
        assert_eq!(w.sizes, vec![(0, 640, 360), (700, 320, 180)]);
        assert_eq!(w.freeze_list, vec![(700, 667)]);
    }

    #[test]
    fn a_layer_switch_may_show_the_same_capture_again_but_never_an_older_one() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut w = VideoWatch::default();
        w.on_frame(at(0), 0, Some((10, 0)), (640, 360));
        // The switch target's keyframe of the same capture, smaller: a switch, not a regression.
        w.on_frame(at(5), 5_000, Some((10, 0)), (320, 180));
        w.on_frame(at(33), 33_000, Some((11, 0)), (320, 180));
        assert_eq!(w.number_regressions, 0);
        // The same capture at the same size is a duplicate.
        w.on_frame(at(40), 40_000, Some((11, 0)), (320, 180));
        assert_eq!(w.number_regressions, 1);
        // An older capture is a regression even across a switch.
        w.on_frame(at(66), 66_000, Some((10, 0)), (640, 360));
        assert_eq!(w.number_regressions, 2);
    }
}
