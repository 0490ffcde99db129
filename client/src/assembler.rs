//! VP8 frame assembly for the receive path: RTP packets (any order) → whole frames, as soon as
//! the last packet of a frame (marker bit) is in.
//!
//! `rtc`'s `SampleBuilder` only releases a frame once a packet of the *next* frame has arrived
//! (it wants the next timestamp), which adds a whole frame interval (33 ms at 30 fps) to every
//! frame's latency. This assembler releases a frame the moment its packets are contiguous from a
//! partition head (VP8 descriptor S = 1, PID = 0) to the marker packet. A missing packet holds
//! later frames back for at most [`MAX_WAIT`] (time for a NACK retransmission); after that, or
//! when the window overflows, the assembler skips to the next complete frame and flags the gap,
//! so the caller waits for a keyframe.

use bytes::{Bytes, BytesMut};
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a gap may hold back later frames before they are released without it.
pub(crate) const MAX_WAIT: Duration = Duration::from_millis(250);
/// Packets held at most; beyond that the oldest go.
const MAX_PACKETS: usize = 512;

struct Held {
    timestamp: u32,
    marker: bool,
    head: bool,
    payload: Bytes,
}

/// A complete VP8 frame (payload descriptors removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub data: Bytes,
    pub rtp_timestamp: u32,
    /// Packets before this frame were lost or skipped: what follows needs a keyframe.
    pub after_gap: bool,
}

#[derive(Default)]
pub(crate) struct FrameAssembler {
    held: BTreeMap<u64, Held>,
    /// Highest unwrapped sequence number seen.
    highest: Option<u64>,
    /// The sequence number right after the last released frame.
    next: Option<u64>,
    /// Since when the packet at `next` has been missing while later packets wait.
    gap_since: Option<Instant>,
    /// Packets dropped (malformed, too old, overflow).
    pub dropped: u64,
}

impl FrameAssembler {
    /// Extends a 16-bit sequence number to 64 bits around the highest one seen.
    fn unwrap(&mut self, sequence: u16) -> u64 {
        let Some(highest) = self.highest else {
            // Start well above zero so that slightly older packets still fit.
            let first = (1u64 << 32) + u64::from(sequence);
            self.highest = Some(first);
            return first;
        };
        let delta = sequence.wrapping_sub(highest as u16) as i16;
        let unwrapped = highest.wrapping_add_signed(i64::from(delta));
        if unwrapped > highest {
            self.highest = Some(unwrapped);
        }
        unwrapped
    }

    /// Takes one RTP packet; returns the frames it completed, oldest first.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: &Bytes,
    ) -> Vec<Frame> {
        let seq = self.unwrap(sequence);
        if self.next.is_some_and(|next| seq < next) {
            // Already released or skipped (a late retransmission, a duplicate).
            self.dropped += 1;
            return self.release(now);
        }
        let mut depacketizer = Vp8Packet::default();
        let Ok(data) = depacketizer.depacketize(payload) else {
            self.dropped += 1;
            return self.release(now);
        };
        let head = depacketizer.s == 1 && depacketizer.pid == 0;
        self.held.insert(
            seq,
            Held {
                timestamp,
                marker,
                head,
                payload: data,
            },
        );
        while self.held.len() > MAX_PACKETS {
            self.held.pop_first();
            self.dropped += 1;
        }
        self.release(now)
    }

    /// The complete frame starting at `start`, as (last sequence number, frame), if all its
    /// packets are here.
    fn complete_from(&self, start: u64) -> Option<(u64, Bytes, u32)> {
        let first = self.held.get(&start)?;
        if !first.head {
            return None;
        }
        let mut seq = start;
        let mut size = 0;
        loop {
            let p = self.held.get(&seq)?;
            if p.timestamp != first.timestamp {
                return None;
            }
            size += p.payload.len();
            if p.marker {
                break;
            }
            seq += 1;
        }
        let mut data = BytesMut::with_capacity(size);
        for s in start..=seq {
            if let Some(p) = self.held.get(&s) {
                data.extend_from_slice(&p.payload);
            }
        }
        Some((seq, data.freeze(), first.timestamp))
    }

    fn release(&mut self, now: Instant) -> Vec<Frame> {
        let mut out = Vec::new();
        loop {
            let start = match self.next {
                Some(next) => next,
                // Nothing released yet: the first frame starts at a head.
                None => match self.held.iter().find(|(_, p)| p.head) {
                    Some((&seq, _)) => seq,
                    None => return out,
                },
            };
            if let Some((tail, data, rtp_timestamp)) = self.complete_from(start) {
                let after_gap = self.next.is_none()
                    && self.held.keys().next().is_some_and(|&first| first < start);
                self.take(start, tail, data, rtp_timestamp, after_gap, &mut out);
                continue;
            }
            // The frame at `start` is incomplete. Later frames wait for it, up to MAX_WAIT.
            let later_packets = self.held.range(start + 1..).next().is_some();
            if !later_packets {
                self.gap_since = None;
                return out;
            }
            let since = *self.gap_since.get_or_insert(now);
            if now.saturating_duration_since(since) < MAX_WAIT && self.held.len() < MAX_PACKETS {
                return out;
            }
            // Give up on it: the next complete frame after `start`, if any, goes out flagged.
            let candidate = self
                .held
                .range(start + 1..)
                .filter(|(_, p)| p.head)
                .map(|(&seq, _)| seq)
                .find_map(|seq| self.complete_from(seq).map(|c| (seq, c)));
            match candidate {
                Some((head, (tail, data, rtp_timestamp))) => {
                    self.take(head, tail, data, rtp_timestamp, true, &mut out);
                }
                None => return out,
            }
        }
    }

    fn take(
        &mut self,
        head: u64,
        tail: u64,
        data: Bytes,
        rtp_timestamp: u32,
        after_gap: bool,
        out: &mut Vec<Frame>,
    ) {
        let skipped = self.held.range(..head).count() as u64;
        self.dropped += skipped;
        self.held = self.held.split_off(&(tail + 1));
        self.next = Some(tail + 1);
        self.gap_since = None;
        out.push(Frame {
            data,
            rtp_timestamp,
            after_gap: after_gap || skipped > 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 payload descriptor (no extensions) + `body`: S bit set on a frame's first packet.
    fn payload(start: bool, body: &[u8]) -> Bytes {
        let mut p = vec![if start { 0x10 } else { 0x00 }];
        p.extend_from_slice(body);
        Bytes::from(p)
    }

    struct Feed {
        asm: FrameAssembler,
        t0: Instant,
    }

    impl Feed {
        fn new() -> Self {
            Self {
                asm: FrameAssembler::default(),
                t0: Instant::now(),
            }
        }
        fn push(
            &mut self,
            ms: u64,
            seq: u16,
            ts: u32,
            start: bool,
            marker: bool,
            body: &[u8],
        ) -> Vec<Frame> {
            self.asm.push(
                self.t0 + Duration::from_millis(ms),
                seq,
                ts,
                marker,
                &payload(start, body),
            )
        }
    }

    #[test]
    fn a_frame_is_released_on_its_marker_packet() {
        let mut f = Feed::new();
        assert!(f.push(0, 10, 1000, true, false, b"ab1").is_empty());
        let out = f.push(1, 11, 1000, false, true, b"cd1");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, Bytes::from_static(b"ab1cd1"));
        assert_eq!(out[0].rtp_timestamp, 1000);
        assert!(!out[0].after_gap);
        // A single-packet frame right after.
        let out = f.push(2, 12, 4000, true, true, b"eee");
        assert_eq!(out[0].data, Bytes::from_static(b"eee"));
    }

    #[test]
    fn reordered_packets_are_put_back_in_order() {
        let mut f = Feed::new();
        assert!(f.push(0, 65534, 1, true, false, b"aaa").is_empty());
        assert!(f.push(0, 0, 1, false, true, b"ccc").is_empty());
        let out = f.push(0, 65535, 1, false, false, b"bbb");
        assert_eq!(
            out[0].data,
            Bytes::from_static(b"aaabbbccc"),
            "and across the wrap"
        );
    }

    #[test]
    fn a_gap_holds_later_frames_until_retransmission_or_timeout() {
        let mut f = Feed::new();
        f.push(0, 1, 100, true, true, b"kkk");
        // Frame 2 loses its first packet; frame 3 is complete.
        assert!(f.push(10, 3, 200, false, true, b"yyy").is_empty());
        assert!(
            f.push(20, 4, 300, true, true, b"zzz").is_empty(),
            "held behind the gap"
        );
        // The retransmission arrives in time: both go out in order, no gap.
        let out = f.push(40, 2, 200, true, false, b"xxx");
        assert_eq!(
            out.iter().map(|o| o.data.clone()).collect::<Vec<_>>(),
            [Bytes::from_static(b"xxxyyy"), Bytes::from_static(b"zzz")]
        );
        assert!(out.iter().all(|o| !o.after_gap));

        // Now a packet that never comes: released after MAX_WAIT, flagged.
        assert!(f.push(100, 6, 500, false, true, b"qqq").is_empty());
        assert!(f.push(110, 7, 600, true, true, b"rrr").is_empty());
        let out = f.push(100 + 260, 8, 700, true, true, b"sss");
        assert_eq!(out[0].data, Bytes::from_static(b"rrr"));
        assert!(out[0].after_gap);
        assert_eq!(out[1].data, Bytes::from_static(b"sss"));
        assert!(!out[1].after_gap);
        // The lost packet arriving now is ignored.
        assert!(f.push(400, 5, 500, true, false, b"ppp").is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        let mut f = FrameAssembler::default();
        let t0 = Instant::now();
        for i in 0..5000u32 {
            let seq = (i.wrapping_mul(7919) % 65536) as u16;
            let body = Bytes::from(vec![(i % 256) as u8; (i % 7) as usize]);
            let _ = f.push(
                t0 + Duration::from_millis(u64::from(i)),
                seq,
                i / 3,
                i % 3 == 0,
                &body,
            );
        }
        assert!(f.held.len() <= MAX_PACKETS);
    }
}
