//! The interceptor chain: a flat list walked directionally over a shared belt.
//!
//! # The model
//!
//! Interceptors are held in one list ordered by **distance from the wire** — index 0 is closest to
//! the network, the last index closest to the application. Direction is a property of the walk,
//! not of the structure:
//!
//! ```text
//! read   (network → application)   walk forward:  0 → 1 → 2 → … → N
//! write  (application → network)   walk reverse:  N → … → 2 → 1 → 0
//! ```
//!
//! Each interceptor is fed from a belt and its output is collected back onto it, so **what an
//! interceptor emits is seen by every interceptor still ahead of it in the walk**. That is the
//! whole point: a retransmission emitted mid-chain still gets paced, tagged and recorded, because
//! there is no way out of the chain except through the interceptors that follow.
//!
//! The same list serves both directions, so "closest to the wire" means one thing rather than
//! opposite things per direction — the send history and FEC decode both sit near index 0, one
//! being the last thing on the way out and the other the first on the way in.
//!
//! # Ordering
//!
//! | # | Interceptor | Why there |
//! |---|---|---|
//! | 0 | congestion control — send history, feedback ingest | records what actually left, after everything |
//! | 1 | TWCC sender | tags every departing packet, before the history keys on it |
//! | 2 | pacer | gates departures; everything that generates a packet sits above it |
//! | 3 | NACK responder | its retransmissions reach 2, 1, 0 |
//! | 4 | FEC encoder | its repair packets reach 3, 2, 1, 0 |
//! | 5 | FEC decoder | recovery before anything inspects sequence numbers |
//! | 6 | NACK generator | loss detected from arrivals, not from released packets |
//! | 7–9 | TWCC receiver, RFC 8888, RTCP receiver reports | **arrival recorders — must precede the jitter buffer** |
//! | 10–11 | RTCP sender reports, interval PLI | generators with no read-side ordering constraint |
//! | 12 | jitter buffer | delays and re-stamps; releases toward the application |
//!
//! TWCC receiver and RFC 8888 do the same job in different formats — a chain carries one or the
//! other — so they are listed together; the receiver reports beside them are RFC 3550 reception
//! quality, not congestion-control feedback. Their order relative to each other does not matter.
//!
//! Arrival recorders precede the jitter buffer because the buffer re-stamps a packet with its
//! *release* instant. A recorder below it would report local playout times to the remote as
//! arrival times, and the remote's congestion controller would read this endpoint's buffering
//! depth as network delay variation.

use crate::Interceptor;
use crate::TaggedPacket;
use crate::stream_info::StreamInfo;
use sansio::Protocol;
use shared::error::Error;
use std::collections::VecDeque;
use std::time::Instant;

/// A flat list of interceptors, driven as one [`Protocol`].
///
/// The chain is the interceptor too; the interceptors are interceptors inside it.
#[derive(Default)]
pub(crate) struct Chain {
    /// Ordered by distance from the wire: index 0 is closest to the network.
    interceptors: Vec<Box<dyn Interceptor>>,
    read_outs: VecDeque<TaggedPacket>,
    write_outs: VecDeque<TaggedPacket>,
    /// videoroom patch: the belt of the last walk, empty between walks, kept for its allocation
    /// (a walk used to build a new `VecDeque` per packet).
    spare_belt: VecDeque<TaggedPacket>,
    /// videoroom patch: the last write walk found every interceptor passing writes through and
    /// drained every queue, and no interceptor was called since but through `observe_write`
    /// (which queues nothing): a write walk without a packet would find nothing, and is skipped.
    /// Every other call into the interceptors (reads, timeouts, binds) clears it.
    writes_settled: bool,
    /// videoroom patch: as `writes_settled` for reads: the last read walk drained every
    /// interceptor's read queue, and since then none was called but to watch or poll writes. A
    /// write handed to an interceptor, a timeout or a bind clears it.
    reads_settled: bool,
    /// videoroom patch: walk even when settled (the tests' reference chain).
    #[cfg(test)]
    walk_always: bool,
}

/// videoroom patch: what a walk found.
struct Walked {
    /// Every interceptor let the belt by (so every queue was drained and none was handed a
    /// packet).
    all_passed: bool,
    /// Some interceptor was handed a packet.
    handled_any: bool,
}

impl Chain {
    /// Build a chain from interceptors already in wire-to-application order.
    ///
    /// Crate-private: a chain is built by [`Registry`](crate::Registry), which also appends the
    /// terminus that ends the inbound RTCP path. A caller assembling the vector directly could
    /// leave it out, and the omission would look like working code.
    pub(crate) fn new(interceptors: Vec<Box<dyn Interceptor>>) -> Self {
        Self {
            interceptors,
            ..Self::default()
        }
    }

    /// How many interceptors the chain has.
    pub(crate) fn len(&self) -> usize {
        self.interceptors.len()
    }

    /// Whether the chain has no interceptors.
    pub(crate) fn is_empty(&self) -> bool {
        self.interceptors.is_empty()
    }

    /// One pass over `interceptors`, feeding each from the belt and collecting what it emits back onto
    /// the belt.
    ///
    /// `handle` and `poll` pick the direction's method pair; the iterator picks the direction. A
    /// packet an interceptor emits lands on the belt *behind* the ones it passed through, and is then
    /// carried to every interceptor still ahead — which is what makes injected packets impossible to
    /// bypass with.
    ///
    /// videoroom patch: `passes` says whether an interceptor lets this direction's packets by
    /// untouched ([`Interceptor::passes_writes_through`]); the belt then goes past it, behind what
    /// it had queued, instead of through its queue.
    fn walk<'a, T>(
        interceptors: impl Iterator<Item = &'a mut Box<dyn Interceptor>>,
        mut belt: VecDeque<T>,
        handle: fn(&mut dyn Interceptor, T) -> Result<(), Error>,
        poll: fn(&mut dyn Interceptor) -> Option<T>,
        passes: fn(&dyn Interceptor) -> bool,
        observe: fn(&mut dyn Interceptor, &mut T),
    ) -> (VecDeque<T>, Walked) {
        let mut walked = Walked {
            all_passed: true,
            handled_any: false,
        };
        for interceptor in interceptors {
            if passes(interceptor.as_ref()) {
                for next in belt.iter_mut() {
                    observe(interceptor.as_mut(), next);
                }
                // What its queue holds goes first, then the belt, as if the belt had been
                // appended to the queue and the queue drained.
                let passing = belt.len();
                while let Some(next) = poll(interceptor.as_mut()) {
                    belt.push_back(next);
                }
                let queued = belt.len() - passing;
                if queued > 0 && passing > 0 {
                    belt.rotate_right(queued);
                }
                continue;
            }
            walked.all_passed = false;
            while let Some(next) = belt.pop_front() {
                walked.handled_any = true;
                // An interceptor takes the packet and decides what becomes of it: hold it, drop
                // it, or put it on its own queue to be collected below.
                if let Err(err) = handle(interceptor.as_mut(), next) {
                    log::warn!("interceptor handle failed: {err}");
                }
            }
            // Whatever it has ready — passed through, transformed, generated, or released — is
            // what the next interceptor in the walk receives.
            while let Some(next) = poll(interceptor.as_mut()) {
                belt.push_back(next);
            }
        }
        (belt, walked)
    }

    /// videoroom patch: one read walk with `msg` (if any) on the spare belt, its output appended
    /// to `read_outs` (or becoming it, when that is empty: no packet moved).
    fn walk_read(&mut self, msg: Option<TaggedPacket>) {
        let mut belt = std::mem::take(&mut self.spare_belt);
        belt.extend(msg);
        let (mut belt, walked) = Self::walk(
            self.interceptors.iter_mut(),
            belt,
            |s, p| s.handle_read(p),
            |s| s.poll_read(),
            |_| false,
            |_, _| {},
        );
        // Handling a read may queue writes (a NACK's retransmissions); a walk that carried
        // nothing called no interceptor but to poll it.
        if walked.handled_any {
            self.writes_settled = false;
        }
        self.reads_settled = true;
        if self.read_outs.is_empty() {
            std::mem::swap(&mut self.read_outs, &mut belt);
        } else {
            self.read_outs.append(&mut belt);
        }
        self.spare_belt = belt;
    }

    /// videoroom patch: as [`walk_read`](Self::walk_read), in the write direction.
    fn walk_write(&mut self, msg: Option<TaggedPacket>) {
        let mut belt = std::mem::take(&mut self.spare_belt);
        belt.extend(msg);
        let (mut belt, walked) = Self::walk(
            self.interceptors.iter_mut().rev(),
            belt,
            |s, p| s.handle_write(p),
            |s| s.poll_write(),
            |s| s.passes_writes_through(),
            |s, p| s.observe_write(p),
        );
        self.writes_settled = walked.all_passed;
        if walked.handled_any {
            self.reads_settled = false;
        }
        if self.write_outs.is_empty() {
            std::mem::swap(&mut self.write_outs, &mut belt);
        } else {
            self.write_outs.append(&mut belt);
        }
        self.spare_belt = belt;
    }

    fn drain_read(&mut self) {
        if !self.reads_settled || self.walks_always() {
            self.walk_read(None);
        }
    }

    fn drain_write(&mut self) {
        if !self.writes_settled || self.walks_always() {
            self.walk_write(None);
        }
    }

    /// videoroom patch: a walk is never skipped (the tests' reference).
    fn walks_always(&self) -> bool {
        #[cfg(test)]
        return self.walk_always;
        #[cfg(not(test))]
        false
    }

    /// videoroom patch: something other than a walk called the interceptors; both directions
    /// may have something queued.
    fn unsettle(&mut self) {
        self.writes_settled = false;
        self.reads_settled = false;
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for Chain {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.walk_read(Some(msg));
        Ok(())
    }

    /// Walks with an **empty belt** when nothing is pending, because a jitter buffer may have
    /// released a packet on `handle_timeout` with no inbound packet since to carry it forward.
    fn poll_read(&mut self) -> Option<Self::Rout> {
        if self.read_outs.is_empty() {
            self.drain_read();
        }
        self.read_outs.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.walk_write(Some(msg));
        Ok(())
    }

    /// Same reason as [`poll_read`](Self::poll_read): the pacer releases on a timeout, and
    /// generated RTCP appears with no outbound packet to ride along with.
    fn poll_write(&mut self) -> Option<Self::Wout> {
        if self.write_outs.is_empty() {
            self.drain_write();
        }
        self.write_outs.pop_front()
    }

    fn handle_timeout(&mut self, now: Self::Time) -> Result<(), Self::Error> {
        self.unsettle();
        for interceptor in self.interceptors.iter_mut() {
            interceptor.handle_timeout(now)?;
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Self::Time> {
        self.interceptors
            .iter_mut()
            .filter_map(|interceptor| interceptor.poll_timeout())
            .min()
    }

    fn close(&mut self) -> Result<(), Self::Error> {
        self.unsettle();
        for interceptor in self.interceptors.iter_mut() {
            interceptor.close()?;
        }
        Ok(())
    }
}

/// A chain is itself an interceptor: it implements the same `Protocol`, and binding a stream
/// on it binds that stream on every interceptor inside it.
impl Interceptor for Chain {
    /// A local stream this endpoint is now sending.
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.unsettle();
        for interceptor in self.interceptors.iter_mut() {
            interceptor.bind_local_stream(info);
        }
    }

    /// A local stream this endpoint has stopped sending.
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.unsettle();
        for interceptor in self.interceptors.iter_mut() {
            interceptor.unbind_local_stream(info);
        }
    }

    /// A remote stream this endpoint is now receiving.
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.unsettle();
        for interceptor in self.interceptors.iter_mut() {
            interceptor.bind_remote_stream(info);
        }
    }

    /// A remote stream this endpoint has stopped receiving.
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.unsettle();
        for interceptor in self.interceptors.iter_mut() {
            interceptor.unbind_remote_stream(info);
        }
    }
}

/// videoroom patch: carrying outbound packets past interceptors that let them by
/// ([`Interceptor::passes_writes_through`]) gives what walking them through their queues gives.
#[cfg(test)]
mod pass_through_tests {
    use super::*;
    use crate::{AttributedPacket, Packet};
    use shared::TransportContext;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Tags what it handles (unless it is 1, 3 or 4) and generates a packet of its own on
    /// some timeouts, queued like the NACK generator's and the report interceptors'.
    ///
    /// Probe 2 also watches what goes by (`observe_write`, as the sender-report interceptor and
    /// the NACK responder do): the timestamp sum of what it saw goes into what it generates.
    /// Probe 3 changes what goes by in place (`observe_write`, as the TWCC sender numbers it).
    struct Probe {
        id: u32,
        pass: bool,
        ticks: u32,
        seen: u32,
        queue: VecDeque<TaggedPacket>,
        /// Reads it passes on (tagged) or releases on timeouts, as a jitter buffer would.
        reads: VecDeque<TaggedPacket>,
        /// `poll_write` and `poll_read` calls, shared by the chain's probes.
        polls: Arc<AtomicUsize>,
    }

    fn rtp(sequence_number: u16, timestamp: u32) -> TaggedPacket {
        let mut packet = rtp::Packet::default();
        packet.header.sequence_number = sequence_number;
        packet.header.timestamp = timestamp;
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(packet)),
        }
    }

    impl Protocol<TaggedPacket, TaggedPacket, ()> for Probe {
        type Rout = TaggedPacket;
        type Wout = TaggedPacket;
        type Eout = ();
        type Error = Error;
        type Time = Instant;

        fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
            if let Packet::Rtp(p) = &mut msg.message.packet {
                if self.id % 2 == 0 {
                    // A reaction queued as a write, as a NACK's retransmissions are.
                    self.queue
                        .push_back(rtp(p.header.sequence_number, p.header.timestamp ^ self.id));
                }
                p.header.timestamp = p.header.timestamp.wrapping_mul(17).wrapping_add(self.id);
            }
            self.reads.push_back(msg);
            Ok(())
        }
        fn poll_read(&mut self) -> Option<TaggedPacket> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            self.reads.pop_front()
        }
        fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
            if matches!(self.id, 2 | 3) {
                self.observe_write(&mut msg);
                self.queue.push_back(msg);
                return Ok(());
            }
            if !matches!(self.id, 1 | 3 | 4)
                && let Packet::Rtp(p) = &mut msg.message.packet
            {
                p.header.timestamp = p.header.timestamp.wrapping_mul(31).wrapping_add(self.id);
            }
            self.queue.push_back(msg);
            Ok(())
        }
        fn poll_write(&mut self) -> Option<TaggedPacket> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            self.queue.pop_front()
        }
        fn handle_timeout(&mut self, _now: Instant) -> Result<(), Error> {
            self.ticks += 1;
            if self.ticks % (self.id + 1) == 0 {
                self.queue.push_back(rtp(
                    (self.id * 1000 + self.ticks) as u16,
                    self.id ^ self.seen,
                ));
            }
            if self.ticks % (self.id + 2) == 0 {
                self.reads
                    .push_back(rtp((self.id * 2000 + self.ticks) as u16, self.ticks));
            }
            Ok(())
        }
        fn poll_timeout(&mut self) -> Option<Instant> {
            None
        }
    }

    impl Interceptor for Probe {
        fn bind_local_stream(&mut self, _info: &StreamInfo) {}
        fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
        fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
        fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
        fn passes_writes_through(&self) -> bool {
            self.pass
        }
        fn observe_write(&mut self, msg: &mut TaggedPacket) {
            if let Packet::Rtp(p) = &mut msg.message.packet {
                match self.id {
                    2 => self.seen = self.seen.wrapping_add(p.header.timestamp),
                    3 => p.header.timestamp ^= 0x5a5a_0000 | self.ticks,
                    _ => {}
                }
            }
        }
    }

    /// Probes `ids`, of which 1 and 4 only queue their writes, 2 watches and queues, 3 changes and
    /// queues; `skip` says whether they say so, and whether the chain may skip idle walks. Even
    /// probes also queue a write for each read (as a NACK queues retransmissions); every probe
    /// passes reads on and releases some on timeouts. The counter counts polls.
    fn chain(ids: std::ops::Range<u32>, skip: bool) -> (Chain, Arc<AtomicUsize>) {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut chain = Chain::new(
            ids.map(|id| {
                Box::new(Probe {
                    id,
                    pass: skip && matches!(id, 1..=4),
                    ticks: 0,
                    seen: 0,
                    queue: VecDeque::new(),
                    reads: VecDeque::new(),
                    polls: polls.clone(),
                }) as Box<dyn Interceptor>
            })
            .collect(),
        );
        chain.walk_always = !skip;
        (chain, polls)
    }

    fn key(p: &TaggedPacket) -> (u16, u32) {
        match &p.message.packet {
            Packet::Rtp(p) => (p.header.sequence_number, p.header.timestamp),
            Packet::Rtcp(_) => unreachable!(),
        }
    }

    /// Drives a chain of `ids` whose probes say they pass writes through and one whose probes do
    /// not with the same random writes, reads, timeouts and partial polls, and compares every
    /// packet out. Returns the two chains' `poll_write` counts.
    fn compare(ids: std::ops::Range<u32>) -> (usize, usize) {
        let ((mut walked, walked_polls), (mut skipped, skipped_polls)) =
            (chain(ids.clone(), false), chain(ids, true));
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let now = Instant::now();
        let mut out = 0;
        for n in 0..20_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for chain in [&mut walked, &mut skipped] {
                match seed % 6 {
                    0 => chain.handle_timeout(now).unwrap(),
                    1 | 2 => chain.handle_write(rtp(n as u16, n)).unwrap(),
                    3 => chain.handle_read(rtp(n as u16, !n)).unwrap(),
                    _ => {}
                }
            }
            let polls = if seed % 7 == 0 {
                usize::MAX
            } else {
                (seed % 3) as usize
            };
            for _ in 0..polls {
                let (a, b) = (walked.poll_write(), skipped.poll_write());
                assert_eq!(a.as_ref().map(key), b.as_ref().map(key), "write, step {n}");
                if a.is_none() {
                    break;
                }
                out += 1;
            }
            for _ in 0..(seed >> 8) % 3 {
                let (a, b) = (walked.poll_read(), skipped.poll_read());
                assert_eq!(a.as_ref().map(key), b.as_ref().map(key), "read, step {n}");
                if a.is_none() {
                    break;
                }
                out += 1;
            }
        }
        assert!(out > 10_000, "{out} packets compared");
        (
            walked_polls.load(Ordering::Relaxed),
            skipped_polls.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn skipping_pass_through_interceptors_changes_no_output() {
        compare(0..6);
    }

    /// When every interceptor passes writes through, a write walk without a packet is skipped
    /// until a read, a timeout or a bind may have queued something; a read walk without a packet
    /// until a timeout, a bind or a write handed to an interceptor may have.
    #[test]
    fn an_all_pass_chain_skips_empty_walks_and_changes_no_output() {
        let (walked_polls, skipped_polls) = compare(1..5);
        assert!(
            skipped_polls * 2 < walked_polls,
            "polls: {skipped_polls} skipping, {walked_polls} walking"
        );
    }
}
