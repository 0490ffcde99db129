//! Send-side bandwidth estimation from transport-wide congestion control feedback (TWCC): how
//! many bits per second one side of a connection can send to the other. The server runs one per
//! subscriber (its downlink to that peer), the client one for its PeerConnection (its uplink).
//!
//! The sender numbers every RTP packet it sends (`rtc`'s `TwccSenderInterceptor`), the other
//! side's receiver reports arrivals (the server, our client and browsers do, once
//! `a=rtcp-fb:* transport-cc` and the transport-cc header extension are negotiated, which
//! [`engine_and_interceptors`](crate::engine_and_interceptors) offers), and `rtc`'s
//! `CongestionControlInterceptor` joins those reports with its send history and hands them to
//! [`Estimator`]: `rtc`'s Google Congestion Control (`Gcc`) wrapped in the two bounds `rtc`'s
//! port lacks ([`bound`]):
//!
//! - **app-limited cap**: GCC only ever learns about rates it is actually sent. Sending less than
//!   the estimate, its delay half sees a quiet path and keeps climbing (8 %/s, up to its ceiling of
//!   100 Mbit/s) with no evidence the path could carry that. The published estimate is capped at
//!   `headroom × sent + headroom_extra` over the last second.
//! - **delivered floor**: its loss half, under persistent loss the sender does not react to (an SFU
//!   forwarding a layer too big for the link until the layer choice moves), backs off 30 % per
//!   200 ms down to its floor (100 kbit/s), and climbs back at 5 % per 200 ms. The path provably
//!   delivered what arrived over the last second (by the receiver's clock), so the estimate never
//!   falls below `delivered_floor ×` that.
//!
//! GCC has no probing: the estimate rises above what is sent only by its own slow climb, and the
//! app-limited cap bounds that climb. See [`BweConfig`] for what that means for simulcast.
//!
//! No pacer: packets leave when the sender writes them (the departure instant the history
//! records is the write instant).

use crate::queue_delay::QueueDelay;
use rtc::interceptor::{
    BandwidthEstimator, CongestionControlBuilder, EstimatorStats, Gcc, PacketReport, Registry,
    Slot, TwccSenderBuilder,
};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The estimate before GCC has evidence: high enough that a subscriber on a good path is sent the
/// full layer at once (GCC backs off to 85 % of what arrives on the first overuse or loss, within
/// a few hundred ms); `rtc`'s default of 300 kbit/s would take ~20 s at 8 %/s to reach 1.5 Mbit/s.
pub const DEFAULT_START_BPS: f64 = 1_500_000.0;
/// Floor of the estimate.
pub const DEFAULT_MIN_BPS: f64 = 100_000.0;
/// Ceiling of the estimate.
pub const DEFAULT_MAX_BPS: f64 = 50_000_000.0;

/// The knobs of [`Estimator`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BweConfig {
    /// GCC's initial rate (the estimate's value after the first feedback, before any evidence).
    pub start_bps: f64,
    /// Never below.
    pub min_bps: f64,
    /// Never above.
    pub max_bps: f64,
    /// App-limited cap: the estimate is at most `headroom × sent + headroom_extra_bps`, with
    /// `sent` the rate sent over the last [`window`](Self::window). With simulcast this decides
    /// whether the estimate can ever let a subscriber up a layer: from a layer of rate r, the next
    /// layer fits only if its rate is ≤ `headroom × r + headroom_extra_bps` (and GCC has climbed
    /// that far).
    pub headroom: f64,
    /// See [`headroom`](Self::headroom).
    pub headroom_extra_bps: f64,
    /// The estimate is at least this fraction of the rate that arrived over the last
    /// [`window`](Self::window) (GCC's own backoff factor is 0.85).
    pub delivered_floor: f64,
    /// The window of the sent and delivered rates.
    pub window: Duration,
}

impl Default for BweConfig {
    fn default() -> Self {
        Self {
            start_bps: DEFAULT_START_BPS,
            min_bps: DEFAULT_MIN_BPS,
            max_bps: DEFAULT_MAX_BPS,
            // Room above what is sent for a subscriber's next simulcast layer (a 1.5 Mbit/s
            // top layer from the bottom one): an up-switch is the probe. A switch that turns
            // out too much brings loss or delay, GCC backs off and the layer comes down again;
            // the server's layer choice then waits longer before trying that layer again.
            headroom: 2.0,
            headroom_extra_bps: 2_000_000.0,
            delivered_floor: 0.85,
            window: Duration::from_secs(1),
        }
    }
}

impl BweConfig {
    /// The settings of a publishing client's uplink estimate: it starts above what a 720p
    /// simulcast camera sends in all (so a good path keeps every layer from the first
    /// feedback on), and the app-limited cap leaves room above what is sent for the next
    /// layer's nominal rate (`2 × sent + 1.5 Mbit/s`): from a quarter layer and audio
    /// (~0.2 Mbit/s) the estimate may climb to ~1.9 Mbit/s, enough to resume the half layer;
    /// from the half layer (~0.7 Mbit/s), to ~2.9 Mbit/s, enough for the full one. With no
    /// probing, resuming a layer is the probe; the allocator (client) decides how often.
    pub fn uplink() -> Self {
        Self {
            start_bps: 3_000_000.0,
            headroom: 2.0,
            headroom_extra_bps: 1_500_000.0,
            ..Self::default()
        }
    }
}

/// GCC's raw target held between the app-limited cap and the delivered floor, then clamped to
/// `min_bps..=max_bps`. The floor wins over the cap (both come from measurements; the floor from
/// what the path demonstrably carried). `None` rates (too little history) bound nothing.
pub fn bound(
    gcc_bps: f64,
    sent_bps: Option<f64>,
    delivered_bps: Option<f64>,
    config: &BweConfig,
) -> f64 {
    let mut estimate = gcc_bps;
    if let Some(sent) = sent_bps {
        estimate = estimate.min(sent * config.headroom + config.headroom_extra_bps);
    }
    if let Some(delivered) = delivered_bps {
        estimate = estimate.max(delivered * config.delivered_floor);
    }
    estimate.clamp(config.min_bps, config.max_bps)
}

/// A byte rate over a sliding window of timestamps (offsets from any fixed epoch: the receiver's
/// clock for arrivals, ours for departures). The window ends at the newest timestamp seen, not at
/// "now": a rate is a property of the samples, and a gap in feedback leaves it as it was.
#[derive(Debug, Clone)]
pub struct RateWindow {
    window: Duration,
    samples: VecDeque<(Duration, usize)>,
    bytes: usize,
    newest: Duration,
}

/// A window shorter than this says nothing (one frame's burst is not a rate).
const MIN_SPAN: Duration = Duration::from_millis(200);

impl RateWindow {
    /// An empty window of `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            samples: VecDeque::new(),
            bytes: 0,
            newest: Duration::ZERO,
        }
    }

    /// `bytes` at `at`. Timestamps may come slightly out of order; a sample older than the window
    /// is ignored.
    pub fn add(&mut self, at: Duration, bytes: usize) {
        self.newest = self.newest.max(at);
        if at + self.window < self.newest {
            return;
        }
        self.samples.push_back((at, bytes));
        self.bytes += bytes;
        while let Some(&(t, b)) = self.samples.front() {
            if t + self.window >= self.newest {
                break;
            }
            self.samples.pop_front();
            self.bytes -= b;
        }
    }

    /// Bits per second over the samples in the window (the oldest sample's bytes count as sent
    /// at its start), or `None` while they span less than 200 ms.
    pub fn bps(&self) -> Option<f64> {
        let &(oldest, first) = self.samples.front()?;
        let span = self.newest.saturating_sub(oldest);
        if span < MIN_SPAN {
            return None;
        }
        Some(((self.bytes - first) * 8) as f64 / span.as_secs_f64())
    }
}

/// What the estimate is made of, for diagnostics. Rates in bits per second; `None` = not known
/// yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EstimateStats {
    /// The estimate ([`SendEstimate::bps`]).
    pub bps: Option<u64>,
    /// GCC's own target, before the bounds.
    pub gcc_bps: Option<u64>,
    /// Sent over the last window (RTP bytes, every stream of the connection, repairs included).
    pub sent_bps: Option<u64>,
    /// Arrived over the last window, by the receiver's clock.
    pub delivered_bps: Option<u64>,
    /// How long the packets of the latest feedback waited in queues on the path
    /// ([`QueueDelay`]).
    pub queue_delay: Option<Duration>,
    /// Feedback batches folded in so far.
    pub reports: u64,
}

#[derive(Debug, Default)]
struct Shared {
    // 0 = none.
    bps: AtomicU64,
    gcc_bps: AtomicU64,
    sent_bps: AtomicU64,
    delivered_bps: AtomicU64,
    /// Microseconds (at least 1).
    queue_delay_us: AtomicU64,
    reports: AtomicU64,
}

/// One connection's send-side estimate, readable from outside its interceptor chain (cheap to
/// clone; all clones see the same value).
#[derive(Debug, Clone, Default)]
pub struct SendEstimate(Arc<Shared>);

impl SendEstimate {
    /// The estimate in bits per second; `None` until the peer's first TWCC feedback (a peer that
    /// never sends any, e.g. one that did not negotiate transport-cc, stays `None`).
    pub fn bps(&self) -> Option<u64> {
        nonzero(&self.0.bps)
    }

    /// The estimate and what it is made of.
    pub fn stats(&self) -> EstimateStats {
        EstimateStats {
            bps: self.bps(),
            gcc_bps: nonzero(&self.0.gcc_bps),
            sent_bps: nonzero(&self.0.sent_bps),
            delivered_bps: nonzero(&self.0.delivered_bps),
            queue_delay: nonzero(&self.0.queue_delay_us).map(Duration::from_micros),
            reports: self.0.reports.load(Ordering::Relaxed),
        }
    }
}

fn nonzero(cell: &AtomicU64) -> Option<u64> {
    match cell.load(Ordering::Relaxed) {
        0 => None,
        v => Some(v),
    }
}

fn store(cell: &AtomicU64, v: Option<f64>) {
    // At least 1: 0 means "none".
    cell.store(v.map_or(0, |v| (v.max(1.0)) as u64), Ordering::Relaxed);
}

/// `rtc`'s GCC with the app-limited cap and the delivered floor ([`bound`]), publishing into a
/// [`SendEstimate`]. Driven by `rtc`'s `CongestionControlInterceptor`.
pub struct Estimator {
    gcc: Gcc,
    config: BweConfig,
    sent: RateWindow,
    delivered: RateWindow,
    queue: QueueDelay,
    /// Departures are kept as offsets from the first one seen.
    epoch: Option<Instant>,
    target: f64,
    out: SendEstimate,
    /// When GCC was last reined in ([`REIN_FACTOR`]).
    reined_at: Option<Instant>,
}

/// When GCC's own value runs this far above the bounded estimate (it climbs without end while
/// we send less than it allows), it is started again at the bounded value: otherwise the first
/// time we send more (a layer resumed, a probe) the cap rises with what is sent and uncovers a
/// stale, inflated GCC value, which hides the congestion the probe causes for seconds.
pub const REIN_FACTOR: f64 = 1.5;

/// The fewest time between two reins.
const REIN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Estimator {
    /// An estimator with `config`, and the handle that reads it.
    pub fn new(config: BweConfig) -> (Self, SendEstimate) {
        let out = SendEstimate::default();
        let estimator = Self {
            gcc: Gcc::new(config.start_bps, config.min_bps, config.max_bps),
            config,
            sent: RateWindow::new(config.window),
            delivered: RateWindow::new(config.window),
            queue: QueueDelay::new(),
            epoch: None,
            target: config.start_bps.clamp(config.min_bps, config.max_bps),
            out: out.clone(),
            reined_at: None,
        };
        (estimator, out)
    }
}

impl BandwidthEstimator for Estimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        self.gcc.on_reports(now, reports);
        for r in reports {
            let epoch = *self.epoch.get_or_insert(r.departure);
            self.sent
                .add(r.departure.saturating_duration_since(epoch), r.size);
            if r.arrived
                && let Some(arrival) = r.arrival
            {
                self.delivered.add(arrival, r.size);
            }
        }
        if let Some(epoch) = self.epoch {
            self.queue.on_batch(
                reports.iter().filter(|r| r.arrived).filter_map(|r| {
                    Some((r.departure.saturating_duration_since(epoch), r.arrival?))
                }),
            );
        }
        let mut gcc = self.gcc.target_bitrate();
        let (sent, delivered) = (self.sent.bps(), self.delivered.bps());
        self.target = bound(gcc, sent, delivered, &self.config);
        if gcc > self.target * REIN_FACTOR
            && self
                .reined_at
                .is_none_or(|at| now.saturating_duration_since(at) >= REIN_EVERY)
        {
            self.gcc = Gcc::new(self.target, self.config.min_bps, self.config.max_bps);
            self.reined_at = Some(now);
            gcc = self.target;
        }
        let s = &self.out.0;
        store(&s.gcc_bps, Some(gcc));
        store(&s.sent_bps, sent);
        store(&s.delivered_bps, delivered);
        if let Some(queued) = self.queue.latest() {
            store(&s.queue_delay_us, Some(queued.as_micros() as f64));
        }
        store(&s.bps, Some(self.target));
        s.reports.fetch_add(1, Ordering::Relaxed);
    }

    fn target_bitrate(&self) -> f64 {
        self.target
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// `registry` plus the send side of transport-wide congestion control: the TWCC sender that numbers
/// every departing RTP packet (at `Slot::TwccSender`, below the NACK responder so retransmissions
/// are numbered too; not added again if `registry` already has one, so nothing is numbered twice)
/// and `rtc`'s congestion-control interceptor (at `Slot::CongestionControl`, wire-most) driving an
/// [`Estimator`]. The media engine must offer the transport-cc header extension and
/// `a=rtcp-fb:* transport-cc` ([`engine_and_interceptors`](crate::engine_and_interceptors) does), or the peer sends no feedback and the estimate stays `None`.
pub fn with_send_estimation(registry: Registry, config: BweConfig) -> (Registry, SendEstimate) {
    let (estimator, estimate) = Estimator::new(config);
    let numbered = registry
        .slots()
        .iter()
        .any(|(slot, _)| *slot == Slot::TwccSender);
    let registry = if numbered {
        registry
    } else {
        registry.with(Slot::TwccSender, TwccSenderBuilder::new().build())
    };
    let registry = registry.with(
        Slot::CongestionControl,
        CongestionControlBuilder::new(estimator).build(),
    );
    (registry, estimate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn app_limited_caps_the_estimate_at_headroom_over_what_is_sent() {
        let c = BweConfig::default();
        // GCC has climbed to 40 Mbit/s while 500 kbit/s was sent: 2 × 500k + 2M.
        assert_eq!(
            bound(40e6, Some(500e3), Some(500e3), &c),
            3_000_000.0,
            "cap"
        );
        // Below the cap, GCC's own value stands.
        assert_eq!(bound(2.5e6, Some(500e3), Some(500e3), &c), 2_500_000.0);
        // Nothing sent yet (no window): no cap, only the configured ceiling.
        assert_eq!(bound(80e6, None, None, &c), c.max_bps);
    }

    #[test]
    fn the_estimate_never_falls_below_what_arrived() {
        let c = BweConfig::default();
        // Persistent loss drove GCC's loss half to its floor; 600 kbit/s still arrives.
        assert_eq!(bound(100e3, Some(1.5e6), Some(600e3), &c), 510_000.0);
        // The floor beats the cap (the cap is a guess, the floor a measurement).
        assert_eq!(bound(100e3, Some(10e3), Some(600e3), &c), 510_000.0);
        // And the configured floor holds when nothing arrives.
        assert_eq!(bound(1.0, Some(0.0), None, &c), c.min_bps);
    }

    #[test]
    fn a_rate_window_measures_over_its_last_second_only() {
        let mut w = RateWindow::new(Duration::from_secs(1));
        assert_eq!(w.bps(), None);
        // 1000 bytes every 10 ms = 800 kbit/s.
        for i in 0..10u64 {
            w.add(MS * (i * 10) as u32, 1000);
        }
        assert_eq!(w.bps(), None, "90 ms is not a rate");
        for i in 10..300u64 {
            w.add(MS * (i * 10) as u32, 1000);
        }
        let r = w.bps().expect("rate");
        assert!((r - 800_000.0).abs() < 1.0, "{r}");
        // Then 100 bytes every 10 ms for a second: the old rate is gone.
        for i in 300..400u64 {
            w.add(MS * (i * 10) as u32, 100);
        }
        let r = w.bps().expect("rate");
        assert!((r - 80_000.0).abs() < 1.0, "{r}");
        // A sample older than the window changes nothing.
        w.add(Duration::ZERO, 1_000_000);
        assert!((w.bps().expect("rate") - 80_000.0).abs() < 1.0);
    }

    fn report(id: u64, departure: Instant, arrival: Option<Duration>, size: usize) -> PacketReport {
        PacketReport {
            ssrc: 1,
            id,
            rtp_sequence_number: id as u16,
            is_twcc: true,
            twcc_sequence_number: id as u16,
            size,
            arrived: arrival.is_some(),
            departure,
            arrival,
            ecn: Default::default(),
        }
    }

    /// Feedback every 100 ms for `secs` about `rate` bps sent in 1000-byte packets over a path
    /// with a fixed 20 ms delay (no queueing: GCC sees a quiet path). Returns the estimate.
    fn app_limited_run(rate: f64, secs: u64) -> (Estimator, SendEstimate) {
        let (mut e, out) = Estimator::new(BweConfig::default());
        let epoch = Instant::now();
        let gap = Duration::from_secs_f64(8000.0 / rate);
        let mut id = 0u64;
        let mut at = Duration::ZERO;
        for tick in 1..=(secs * 10) {
            let until = MS * (tick * 100) as u32;
            let mut batch = Vec::new();
            while at < until {
                batch.push(report(id, epoch + at, Some(at + MS * 20), 1000));
                id += 1;
                at += gap;
            }
            e.on_reports(epoch + until + MS * 20, &batch);
        }
        (e, out)
    }

    #[test]
    fn an_app_limited_sender_neither_runs_away_nor_collapses() {
        // 300 kbit/s sent for 60 s on a quiet path: GCC alone would climb 8 %/s without end;
        // it is reined in to the bounded estimate.
        let (e, out) = app_limited_run(300_000.0, 60);
        let stats = out.stats();
        println!("{stats:?}");
        let bound_now = out.bps().expect("estimate") as f64;
        assert!(
            e.gcc.target_bitrate() <= bound_now * REIN_FACTOR * 1.1,
            "GCC ran away to {}: {stats:?}",
            e.gcc.target_bitrate()
        );
        let bps = out.bps().expect("estimate");
        // Capped at 2 × 300k + 2M (the rate window's edges add a little).
        assert!((2_550_000..=2_630_000).contains(&bps), "{stats:?}");
        assert!(bps >= 255_000, "never below 85 % of what arrives");
    }
}
