//! An adaptive jitter buffer for one remote Opus track.
//!
//! Pure logic: no I/O, no clock of its own. The receive task [`push`](JitterBuffer::push)es each
//! RTP packet with the time it arrived; the playout loop calls [`pop`](JitterBuffer::pop) once
//! per 20 ms of device time and gets a [`Playout`]: the next packet, "lost" (run Opus packet loss
//! concealment) or silence (still buffering). Tests step `now` instead of sleeping.
//!
//! How it works:
//! - Packets are kept by *extended* sequence number (the 16-bit RTP sequence unwrapped across
//!   65535 → 0), so reordering and wrap-around need no special cases.
//! - Playout is by sequence number, one packet per `pop`. It assumes the usual Opus packet
//!   duration of 20 ms ([`PACKET_DURATION`], 960 ticks of the 48 kHz RTP clock).
//! - Interarrival jitter is estimated as in RFC 3550 §6.4.1 (arrival time against RTP timestamp,
//!   gain 1/16). The target delay is `clamp(3 × jitter, min_delay, max_delay)`.
//! - Playback starts (and restarts after an underrun) once the buffered span reaches the target
//!   or the oldest packet has waited that long (so a lone packet, e.g. Opus DTX, still plays).
//! - When the buffer runs more than two packets past the target for half a second, one packet is
//!   skipped to catch up ([`JitterStats::accelerated`]); past `max_delay` it is cut back to the
//!   target at once (a burst after an outage).
//! - A sequence jump of more than 3000 ahead or 100 behind is held on probation, as in RFC 3550
//!   appendix A.1: if the next packet continues from it, the sender restarted its sequence
//!   numbers and the new packets are queued after the old ones; otherwise the stray packet is
//!   dropped.
//!
//! Not done here: time stretching (a skipped packet is an audible 20 ms cut, kept rare) and
//! playout by timestamp (with Opus DTX the gaps between packets are not reproduced; the
//! buffer re-buffers instead, which is silence as well).

use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// RTP clock rate of Opus (RFC 7587): always 48 kHz.
pub const CLOCK_RATE: u32 = 48_000;

/// Duration of one packet, and the interval between two [`JitterBuffer::pop`] calls.
pub const PACKET_DURATION: Duration = Duration::from_millis(20);

/// Forward sequence jump (packets) beyond which a packet is held on probation (RFC 3550 A.1).
const MAX_DROPOUT: i64 = 3000;
/// Backward sequence distance (packets) beyond which a packet is held on probation.
const MAX_MISORDER: i64 = 100;
/// Extended sequence number of the first packet; leaves room below it for packets that arrive
/// late or out of order before the first one.
const SEQ_BASE: u64 = 1 << 32;
/// How far past the target (packets) the buffer may run before catching up.
const SLACK_PACKETS: u64 = 2;
/// Consecutive long `pop`s (25 × 20 ms = 0.5 s) before one packet is skipped.
const ACCELERATE_AFTER_POPS: u32 = 25;
/// Target delay = this × estimated jitter (then clamped to the configured range).
const JITTER_MULTIPLIER: f64 = 3.0;
/// A transit-time step above this (1 s) is a timestamp discontinuity, not jitter.
const MAX_TRANSIT_STEP_TICKS: f64 = CLOCK_RATE as f64;
/// Window of recent sequence numbers remembered to tell duplicates from late packets.
const HISTORY_BITS: u64 = 128;

/// Settings of a [`JitterBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// The target delay never goes below this (default 40 ms).
    pub min_delay: Duration,
    /// The target delay never goes above this; a buffer longer than it is cut back at once
    /// (default 400 ms). Raised to `min_delay` if smaller.
    pub max_delay: Duration,
    /// Packets held at most; past it the oldest is dropped (default 50, at least 1).
    pub capacity: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(400),
            capacity: 50,
        }
    }
}

/// What to play for the next 20 ms, from [`JitterBuffer::pop`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Playout {
    /// The next packet in sequence: decode it.
    Packet(Bytes),
    /// The next packet is missing while later ones are here: run packet loss concealment.
    Lost,
    /// Nothing to play: not started yet, or the buffer ran dry and is re-buffering to its target
    /// delay. Play silence.
    Silence,
}

/// Counters and state of a [`JitterBuffer`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct JitterStats {
    /// Packets given to [`push`](JitterBuffer::push), whatever became of them.
    pub packets_received: u64,
    /// Packets returned by `pop` as [`Playout::Packet`].
    pub packets_played: u64,
    /// [`Playout::Lost`] returned: packets concealed.
    pub lost: u64,
    /// Packets that arrived after their turn had passed, dropped.
    pub late_dropped: u64,
    /// Packets received twice, dropped.
    pub duplicates: u64,
    /// Packets dropped because the buffer was at capacity (oldest first).
    pub overflow_dropped: u64,
    /// Buffered packets skipped to bring the delay back to the target.
    pub accelerated: u64,
    /// Packets far outside the sequence window that no next packet confirmed, dropped.
    pub out_of_range: u64,
    /// Times the sender restarted its sequence numbers (a jump confirmed by the next packet).
    pub restarts: u64,
    /// Times the buffer ran dry while playing.
    pub underruns: u64,
    /// Buffered span, milliseconds (from the next packet to play to the newest one).
    pub current_delay_ms: u32,
    /// Target delay, milliseconds.
    pub target_delay_ms: u32,
    /// Estimated interarrival jitter (RFC 3550), milliseconds.
    pub jitter_ms: f32,
}

#[derive(Debug)]
struct Entry {
    arrival: Instant,
    payload: Bytes,
}

/// A packet with a far-off sequence number, waiting for its successor to confirm a restart.
#[derive(Debug)]
struct Probation {
    sequence: u16,
    rtp_timestamp: u32,
    arrival: Instant,
    payload: Bytes,
}

/// RFC 3550 interarrival jitter, in RTP ticks.
#[derive(Debug, Default)]
struct JitterEstimator {
    /// Arrival times are measured from here.
    epoch: Option<Instant>,
    /// Arrival (ticks since `epoch`) and RTP timestamp of the previous packet.
    last: Option<(f64, u32)>,
    jitter_ticks: f64,
}

impl JitterEstimator {
    fn update(&mut self, now: Instant, rtp_timestamp: u32) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = now.saturating_duration_since(epoch).as_secs_f64() * f64::from(CLOCK_RATE);
        if let Some((last_arrival, last_timestamp)) = self.last {
            let sent = f64::from(rtp_timestamp.wrapping_sub(last_timestamp) as i32);
            let d = ((arrival - last_arrival) - sent).abs();
            if d <= MAX_TRANSIT_STEP_TICKS {
                self.jitter_ticks += (d - self.jitter_ticks) / 16.0;
            }
        }
        self.last = Some((arrival, rtp_timestamp));
    }

    /// Forgets the previous packet (the stream restarted), keeps the estimate.
    fn restart(&mut self) {
        self.last = None;
    }

    fn jitter(&self) -> Duration {
        Duration::try_from_secs_f64(self.jitter_ticks / f64::from(CLOCK_RATE)).unwrap_or_default()
    }
}

/// Which recent extended sequence numbers were received: bit `i` is `highest - i`.
#[derive(Debug, Default)]
struct History {
    highest: Option<u64>,
    bits: u128,
}

impl History {
    /// Records `seq`; returns false if it had been recorded already.
    fn insert(&mut self, seq: u64) -> bool {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            self.bits = 1;
            return true;
        };
        if seq > highest {
            let shift = seq - highest;
            self.bits = if shift >= HISTORY_BITS {
                0
            } else {
                self.bits << shift
            };
            self.bits |= 1;
            self.highest = Some(seq);
            return true;
        }
        let back = highest - seq;
        if back >= HISTORY_BITS {
            // Too old to know; such a packet is late anyway.
            return true;
        }
        let bit = 1u128 << back;
        let fresh = self.bits & bit == 0;
        self.bits |= bit;
        fresh
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the buffered span to reach the target before playing.
    Buffering,
    /// Handing out one packet per `pop`.
    Playing,
}

/// An adaptive jitter buffer for one Opus track: see the [module docs](self).
///
/// ```
/// use bytes::Bytes;
/// use std::time::{Duration, Instant};
/// use videoroom_client::audio::jitter::{JitterBuffer, JitterConfig, Playout};
///
/// let mut jb = JitterBuffer::new(JitterConfig::default());
/// let t0 = Instant::now();
/// for i in 0..3u16 {
///     let now = t0 + Duration::from_millis(20 * u64::from(i));
///     jb.push(now, 1000 + i, 960 * u32::from(i), Bytes::from(vec![i as u8]));
/// }
/// // 60 ms buffered ≥ the 40 ms target: playback starts with the first packet.
/// assert_eq!(jb.pop(t0 + Duration::from_millis(40)), Playout::Packet(Bytes::from(vec![0u8])));
/// ```
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    /// Buffered packets by extended sequence number; all keys are ≥ `next_seq` once it is set.
    packets: BTreeMap<u64, Entry>,
    state: State,
    /// Extended sequence number of the next packet to play; `None` until playback first starts.
    next_seq: Option<u64>,
    /// Highest extended sequence number received and its RTP sequence number; `None` before
    /// the first packet.
    highest_seq: Option<(u64, u16)>,
    history: History,
    probation: Option<Probation>,
    estimator: JitterEstimator,
    target: Duration,
    /// Consecutive `pop`s with the buffer past target + slack.
    long_pops: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer, buffering.
    pub fn new(config: JitterConfig) -> Self {
        let config = JitterConfig {
            min_delay: config.min_delay,
            max_delay: config.max_delay.max(config.min_delay),
            capacity: config.capacity.max(1),
        };
        Self {
            config,
            packets: BTreeMap::new(),
            state: State::Buffering,
            next_seq: None,
            highest_seq: None,
            history: History::default(),
            probation: None,
            estimator: JitterEstimator::default(),
            target: config.min_delay,
            long_pops: 0,
            stats: JitterStats::default(),
        }
    }

    /// The settings in use (after `max_delay ≥ min_delay` and `capacity ≥ 1` were enforced).
    pub fn config(&self) -> &JitterConfig {
        &self.config
    }

    /// Adds a packet that arrived at `now`. Reordered packets are put in place; duplicates,
    /// packets whose turn has passed and packets over capacity are dropped and counted. Never
    /// panics, whatever the input.
    pub fn push(&mut self, now: Instant, sequence: u16, rtp_timestamp: u32, payload: Bytes) {
        self.stats.packets_received += 1;
        let ext = match self.highest_seq {
            None => SEQ_BASE,
            Some((highest, highest_sequence)) => {
                // Distance from the highest sequence number, modulo 2^16: -32768..=32767.
                let delta = i64::from(sequence.wrapping_sub(highest_sequence) as i16);
                if !(-MAX_MISORDER..=MAX_DROPOUT).contains(&delta) {
                    self.on_jump(now, sequence, rtp_timestamp, payload);
                    return;
                }
                highest.saturating_add_signed(delta)
            }
        };
        if self.probation.take().is_some() {
            // The stream went on where it was: the far-off packet was a stray.
            self.stats.out_of_range += 1;
        }
        self.accept(now, ext, sequence, rtp_timestamp, payload);
    }

    /// A packet far outside the sequence window: hold it, or reset if it confirms the one held.
    fn on_jump(&mut self, now: Instant, sequence: u16, rtp_timestamp: u32, payload: Bytes) {
        match self.probation.take() {
            Some(held) if held.sequence.wrapping_add(1) == sequence => {
                tracing::debug!(
                    sequence,
                    "audio sender restarted its RTP sequence numbers; continuing after them"
                );
                self.stats.restarts += 1;
                // New timestamps too: the next transit time is no jitter sample.
                self.estimator.restart();
                // The new numbering continues the extended one, so what is buffered plays first.
                let first = self
                    .highest_seq
                    .map_or(SEQ_BASE, |(highest, _)| highest + 1);
                self.accept(
                    held.arrival,
                    first,
                    held.sequence,
                    held.rtp_timestamp,
                    held.payload,
                );
                self.accept(now, first + 1, sequence, rtp_timestamp, payload);
            }
            held => {
                if held.is_some() {
                    self.stats.out_of_range += 1;
                }
                self.probation = Some(Probation {
                    sequence,
                    rtp_timestamp,
                    arrival: now,
                    payload,
                });
            }
        }
    }

    /// Files a packet under extended sequence number `ext`.
    fn accept(
        &mut self,
        now: Instant,
        ext: u64,
        sequence: u16,
        rtp_timestamp: u32,
        payload: Bytes,
    ) {
        if !self.history.insert(ext) || self.packets.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        // Late packets still tell how much the network delays vary.
        self.estimator.update(now, rtp_timestamp);
        self.update_target();
        if self.highest_seq.is_none_or(|(highest, _)| ext > highest) {
            self.highest_seq = Some((ext, sequence));
        }
        if self.next_seq.is_some_and(|next| ext < next) {
            self.stats.late_dropped += 1;
            return;
        }
        self.packets.insert(
            ext,
            Entry {
                arrival: now,
                payload,
            },
        );
        while self.packets.len() > self.config.capacity {
            if let Some((oldest, _)) = self.packets.pop_first() {
                self.stats.overflow_dropped += 1;
                if let Some(next) = self.next_seq.as_mut() {
                    *next = (*next).max(oldest + 1);
                }
            }
        }
    }

    fn update_target(&mut self) {
        let wanted =
            Duration::try_from_secs_f64(self.estimator.jitter().as_secs_f64() * JITTER_MULTIPLIER)
                .unwrap_or(self.config.max_delay);
        self.target = wanted.clamp(self.config.min_delay, self.config.max_delay);
    }

    /// Packets needed to cover `delay`, at least one.
    fn packets_for(delay: Duration) -> u64 {
        let per = PACKET_DURATION.as_nanos();
        let n = delay.as_nanos().div_ceil(per).max(1);
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// Drops buffered packets before `new_next` (counted as accelerated) and moves there.
    fn skip_to(&mut self, new_next: u64) {
        let kept = self.packets.split_off(&new_next);
        self.stats.accelerated += self.packets.len() as u64;
        self.packets = kept;
        self.next_seq = Some(new_next);
    }

    /// What to play for the next 20 ms at `now`. Call once per 20 ms.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let target_packets = Self::packets_for(self.target);
        if self.state == State::Buffering {
            let (Some((&lowest, oldest)), Some((&highest, _))) = (
                self.packets.first_key_value(),
                self.packets.last_key_value(),
            ) else {
                return Playout::Silence;
            };
            let span = highest - lowest + 1;
            let waited = now.saturating_duration_since(oldest.arrival);
            if span < target_packets && waited < self.target {
                return Playout::Silence;
            }
            self.state = State::Playing;
            self.long_pops = 0;
            self.next_seq = Some(lowest);
            if span > target_packets.saturating_add(SLACK_PACKETS) {
                // A burst (e.g. after an outage): start at the target delay, not behind it.
                self.skip_to(highest + 1 - target_packets);
            }
        }

        let (Some(next), Some((&highest, _))) = (self.next_seq, self.packets.last_key_value())
        else {
            self.state = State::Buffering;
            self.stats.underruns += 1;
            return Playout::Silence;
        };
        let span = (highest + 1).saturating_sub(next);
        let max_packets = Self::packets_for(self.config.max_delay);
        if span > max_packets.saturating_add(SLACK_PACKETS) {
            self.skip_to(highest + 1 - target_packets);
            self.long_pops = 0;
        } else if span > target_packets.saturating_add(SLACK_PACKETS) {
            self.long_pops += 1;
            if self.long_pops >= ACCELERATE_AFTER_POPS {
                self.long_pops = 0;
                self.skip_to(next + 1);
            }
        } else {
            self.long_pops = 0;
        }

        // Invariant: the buffer is not empty and every key is ≥ next, so a missing next packet
        // means later ones are here.
        let next = self.next_seq.unwrap_or(next);
        self.next_seq = Some(next + 1);
        match self.packets.remove(&next) {
            Some(entry) => {
                self.stats.packets_played += 1;
                Playout::Packet(entry.payload)
            }
            None => {
                self.stats.lost += 1;
                Playout::Lost
            }
        }
    }

    /// Counters, the current and target delays and the jitter estimate.
    pub fn stats(&self) -> JitterStats {
        let span = match (self.state, self.next_seq, self.packets.first_key_value()) {
            (_, _, None) => 0,
            (State::Playing, Some(next), _) => (self.highest_buffered() + 1).saturating_sub(next),
            (_, _, Some((&lowest, _))) => (self.highest_buffered() + 1).saturating_sub(lowest),
        };
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let per_packet = PACKET_DURATION.as_millis() as u64;
        JitterStats {
            current_delay_ms: u32::try_from(span.saturating_mul(per_packet)).unwrap_or(u32::MAX),
            target_delay_ms: ms(self.target),
            jitter_ms: (self.estimator.jitter().as_secs_f64() * 1000.0) as f32,
            ..self.stats
        }
    }

    /// The target delay now.
    pub fn target_delay(&self) -> Duration {
        self.target
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// True if no packet is held.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    fn highest_buffered(&self) -> u64 {
        self.packets.last_key_value().map_or(0, |(&k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn history_tells_duplicates_from_new_packets() {
        let mut history = History::default();
        assert!(history.insert(1000));
        assert!(!history.insert(1000));
        assert!(history.insert(998));
        assert!(!history.insert(998));
        assert!(history.insert(1200));
        assert!(!history.insert(1200));
        // 1000 fell out of the window when 1200 came: unknown, reported as new.
        assert!(history.insert(1000));
        assert!(history.insert(1200 + 127 + 1));
        assert!(history.insert(1200 + 1));
    }

    #[test]
    fn packets_for_rounds_up() {
        assert_eq!(JitterBuffer::packets_for(Duration::ZERO), 1);
        assert_eq!(JitterBuffer::packets_for(ms(20)), 1);
        assert_eq!(JitterBuffer::packets_for(ms(21)), 2);
        assert_eq!(JitterBuffer::packets_for(ms(400)), 20);
        assert!(JitterBuffer::packets_for(Duration::MAX) > 1 << 50);
    }

    #[test]
    fn estimator_follows_rfc_3550() {
        let t0 = Instant::now();
        let mut estimator = JitterEstimator::default();
        // On time: no jitter.
        for k in 0..10u32 {
            estimator.update(t0 + ms(20 * u64::from(k)), 960 * k);
        }
        assert_eq!(estimator.jitter(), Duration::ZERO);
        // One packet 16 ms late: J += (|D| - J) / 16 = 1 ms, then D = -16 ms for the next one.
        estimator.update(t0 + ms(200 + 16), 960 * 10);
        let j = estimator.jitter().as_secs_f64() * 1000.0;
        assert!((j - 1.0).abs() < 1e-6, "{j}");
        estimator.update(t0 + ms(220), 960 * 11);
        let j = estimator.jitter().as_secs_f64() * 1000.0;
        assert!((j - (1.0 + 15.0 / 16.0)).abs() < 1e-6, "{j}");
        // A timestamp discontinuity (10 s) is not jitter.
        estimator.update(t0 + ms(240), 960 * 12 + 480_000);
        let j2 = estimator.jitter().as_secs_f64() * 1000.0;
        assert!((j2 - j).abs() < 1e-9, "{j2}");
        // RTP timestamps wrap.
        let mut wrapped = JitterEstimator::default();
        wrapped.update(t0, u32::MAX - 100);
        wrapped.update(t0 + ms(20), (u32::MAX - 100).wrapping_add(960));
        assert_eq!(wrapped.jitter(), Duration::ZERO);
    }

    #[test]
    fn sequence_numbers_are_extended_across_the_wrap() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for (i, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            jb.push(t0 + ms(20 * i as u64), seq, 0, Bytes::new());
        }
        let keys: Vec<u64> = jb.packets.keys().copied().collect();
        let first = SEQ_BASE;
        assert_eq!(keys, [first, first + 1, first + 2, first + 3]);
        // Behind the first packet, within the misorder window.
        jb.push(t0, 65500, 0, Bytes::new());
        assert_eq!(
            jb.packets.first_key_value().map(|(k, _)| *k),
            Some(first - 34)
        );
    }

    #[test]
    fn config_is_sanitised() {
        let jb = JitterBuffer::new(JitterConfig {
            min_delay: ms(100),
            max_delay: ms(10),
            capacity: 0,
        });
        assert_eq!(jb.config().max_delay, ms(100));
        assert_eq!(jb.config().capacity, 1);
        assert_eq!(jb.target_delay(), ms(100));
    }
}
