//! Sharing the uplink estimate between our tracks, as pure logic over explicit time: which
//! video layers are sent and at what bitrate ([`Allocator::allocate`]).
//!
//! Order of precedence: audio first (a fixed reserve per track, [`AUDIO_RESERVE_KBPS`]; audio
//! is never paused here), then a screen share, then the camera, each video track's layers from
//! the lowest to the highest. A layer gets its nominal bitrate while the budget lasts; the
//! highest layer that fits only in part gets what is left, down to [`MIN_SHARE`] of its nominal
//! rate (never under [`MIN_LAYER_KBPS`]); a layer that does not fit that is paused, and so is
//! every layer above it in its track. The lowest layer of a video track is never paused: it
//! runs at its floor at worst, so viewers always have a picture.
//!
//! Hysteresis: a paused layer is resumed only when what is left for it is at least
//! [`RESUME_MARGIN`] × its nominal rate without a break for [`RESUME_HOLD`].
//!
//! Probing: the estimator has none, and GCC's estimate climbs with no evidence while we send
//! less than it (the app-limited cap bounds how far). A resume that keeps the total within what
//! the path delivered over the last [`DEMONSTRATED_WINDOW`] is safe; one beyond it is a probe,
//! and costs the viewers of that layer a switch up and back down if it fails. Probes are
//! therefore rationed: none for [`PROBE_INTERVAL`] after the budget paused a layer, that
//! interval doubles (up to [`MAX_PROBE_INTERVAL`]) after a failed probe (the layer paused again
//! within [`PROBE_WINDOW`]) and is back to its start after a layer resumed by a probe stays on
//! for [`PROBE_WINDOW`]. A probe runs at the layer's floor: its first frames (a keyframe: a
//! burst of packets) go out, then the layer holds until [`PROBE_VERDICT`], when the feedback on
//! them is in; it fails if the path queued [`PROBE_GUARD_QUEUE_MS`] meanwhile, and later if
//! less than [`PROBE_GUARD_SHARE`] of what we send arrives (from [`PROBE_GUARD_AFTER`] on). No
//! probe starts while the path queues that long. A failed probe thus costs a path that cannot
//! carry it one burst, which its queue absorbs, instead of the layer's rate for as long as the
//! guard takes to see it (which cost viewers of the lower layers a freeze of over a second
//! behind a 400 kbit/s uplink).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How often the room re-runs the allocation.
pub const INTERVAL: Duration = Duration::from_millis(500);
/// Reserved for each audio track (Opus voice with its RTP, SRTP, UDP and IP overhead).
pub const AUDIO_RESERVE_KBPS: u32 = 64;
/// The least share of its nominal bitrate the highest active layer runs at before it is paused.
pub const MIN_SHARE: f64 = 0.6;
/// No layer is given less than this.
pub const MIN_LAYER_KBPS: u32 = 30;
/// A paused layer resumes only when what is left for it exceeds its nominal rate by this factor…
pub const RESUME_MARGIN: f64 = 1.15;
/// …for this long.
pub const RESUME_HOLD: Duration = Duration::from_secs(2);
/// What the path delivered over this long counts as demonstrated: a resume within it is safe.
pub const DEMONSTRATED_WINDOW: Duration = Duration::from_secs(5);
/// No probe for this long after the budget paused a layer.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// The longest wait between probes after repeated failures.
pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(120);
/// While a probe runs, it has failed as soon as less than this share of what we sent arrives
/// (the path queues or drops the excess), checked from [`PROBE_GUARD_AFTER`] on: the layer is
/// paused at once instead of when the estimate has come down, which takes GCC seconds.
pub const PROBE_GUARD_SHARE: f64 = 0.85;
/// See [`PROBE_GUARD_SHARE`]: the estimator's rate windows (1 s) must hold some of the probe.
pub const PROBE_GUARD_AFTER: Duration = Duration::from_millis(500);
/// A probe has also failed, at once, when the path queues this long: the layer's first frame
/// (a keyframe) and its rate fill the bottleneck's queue long before the rate windows show
/// it, and everything behind them (the lower layers, audio, retransmissions) waits or is
/// dropped. No probe starts while the path queues this long.
pub const PROBE_GUARD_QUEUE_MS: u32 = 100;
/// A probe sends the layer until the next allocation, [`PROBE_CHECK_EVERY`] later (its keyframe
/// and at most a frame more), then holds it until this long after its start, when the feedback on those frames is in (their
/// trip through a full queue included): a path that cannot carry the layer has then seen one
/// short burst instead of the layer's rate for as long as the guard takes to see it. A layer
/// that passes goes on (with a new keyframe).
pub const PROBE_VERDICT: Duration = Duration::from_millis(500);
/// A layer resumed by a probe and paused again within this was a failed probe.
pub const PROBE_WINDOW: Duration = Duration::from_secs(10);
/// While a probe is young (its first [`PROBE_WATCH`]), the allocation runs this often instead
/// of every [`INTERVAL`], so that the guard stops a failing probe as soon as it shows (the
/// overload costs the layers below it their packets, and the viewers a freeze, until then).
pub const PROBE_CHECK_EVERY: Duration = Duration::from_millis(50);
/// See [`PROBE_CHECK_EVERY`].
pub const PROBE_WATCH: Duration = Duration::from_secs(2);

/// The uplink estimate as the allocator takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// The estimate, kbit/s.
    pub kbps: u32,
    /// What arrived at the other end over the estimator's last window, kbit/s.
    pub delivered_kbps: Option<u32>,
    /// What we sent over the same window, kbit/s (by departure).
    pub sent_kbps: Option<u32>,
    /// How long the packets of the latest feedback waited in queues on the path, ms
    /// ([`videoroom_webrtc::queue_delay`]).
    pub queue_delay_ms: Option<u32>,
}

/// What a track is, for precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrackKind {
    /// Audio: reserved first, never paused.
    Audio,
    /// A shared screen: before the camera.
    Screen,
    /// A camera (simulcast or not).
    Camera,
}

/// One of our tracks as the allocator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackDemand {
    /// Stable identity across runs (the track's SSRC), for the hysteresis state.
    pub id: u32,
    /// Audio, screen or camera.
    pub kind: TrackKind,
    /// Video: each layer's nominal bitrate in kbit/s, lowest layer first. Empty for audio.
    pub layers: Vec<u32>,
}

/// What one video layer is to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerDecision {
    /// Not encoded (the budget does not fit it).
    Paused,
    /// Encoded at this target bitrate (kbit/s).
    Send(u32),
}

/// The decisions of one run: per track in the order given, per layer lowest first (empty for
/// audio).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The budget shared out (the estimate in kbit/s), `None` without an estimate (every layer
    /// then at its nominal rate).
    pub budget_kbps: Option<u32>,
    /// Per track, per layer.
    pub tracks: Vec<Vec<LayerDecision>>,
}

#[derive(Debug, Clone)]
struct LayerState {
    active: bool,
    /// Since when it would have fit with the resume margin (paused layers).
    fits_since: Option<Instant>,
    /// When a probe resumed it (cleared once it stayed on for [`PROBE_WINDOW`]).
    probed_at: Option<Instant>,
    /// The longest queueing delay reported since the probe started (ms).
    probe_queue_ms: u32,
}

impl LayerState {
    fn new() -> Self {
        Self {
            active: true,
            fits_since: None,
            probed_at: None,
            probe_queue_ms: 0,
        }
    }
}

/// The allocator's state: per layer, whether it is on and its hysteresis; the delivered rates
/// of the last [`DEMONSTRATED_WINDOW`]; when the next probe may be.
#[derive(Debug)]
pub struct Allocator {
    layers: HashMap<(u32, usize), LayerState>,
    delivered: VecDeque<(Instant, u32)>,
    probe_interval: Duration,
    next_probe: Option<Instant>,
}

impl Default for Allocator {
    fn default() -> Self {
        Self {
            layers: HashMap::new(),
            delivered: VecDeque::new(),
            probe_interval: PROBE_INTERVAL,
            next_probe: None,
        }
    }
}

/// The least a layer of `nominal` kbit/s runs at when it is the highest one.
pub fn floor_kbps(nominal: u32) -> u32 {
    ((f64::from(nominal) * MIN_SHARE) as u32)
        .max(MIN_LAYER_KBPS)
        .min(nominal.max(1))
}

impl Allocator {
    /// A fresh allocator: every layer on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a probe started less than [`PROBE_WATCH`] ago is still running at `now`: the
    /// allocation should then run every [`PROBE_CHECK_EVERY`].
    pub fn probe_running(&self, now: Instant) -> bool {
        self.layers.values().any(|s| {
            s.active
                && s.probed_at
                    .is_some_and(|p| now.saturating_duration_since(p) < PROBE_WATCH)
        })
    }

    /// Shares `estimate` between `tracks` at `now` (see the module doc). Without an estimate
    /// (no feedback yet) every layer is sent at its nominal rate.
    pub fn allocate(
        &mut self,
        now: Instant,
        estimate: Option<Estimate>,
        tracks: &[TrackDemand],
    ) -> Allocation {
        // Forget tracks that are gone.
        self.layers
            .retain(|(id, i), _| tracks.iter().any(|t| t.id == *id && *i < t.layers.len()));
        let mut out: Vec<Vec<LayerDecision>> = tracks
            .iter()
            .map(|t| vec![LayerDecision::Paused; t.layers.len()])
            .collect();
        let Some(estimate) = estimate else {
            for (t, track) in tracks.iter().enumerate() {
                for (i, &nominal) in track.layers.iter().enumerate() {
                    out[t][i] = LayerDecision::Send(nominal.max(1));
                    self.layers
                        .entry((track.id, i))
                        .or_insert_with(LayerState::new)
                        .active = true;
                }
            }
            return Allocation {
                budget_kbps: None,
                tracks: out,
            };
        };
        if let Some(d) = estimate.delivered_kbps {
            self.delivered.push_back((now, d));
        }
        while self
            .delivered
            .front()
            .is_some_and(|&(t, _)| now.saturating_duration_since(t) > DEMONSTRATED_WINDOW)
        {
            self.delivered.pop_front();
        }
        let demonstrated = self.delivered.iter().map(|&(_, d)| d).max().unwrap_or(0);
        let queued = estimate
            .queue_delay_ms
            .is_some_and(|q| q >= PROBE_GUARD_QUEUE_MS);
        let total = estimate.kbps;
        let audio = tracks.iter().filter(|t| t.kind == TrackKind::Audio).count() as u32;
        let mut left = total.saturating_sub(audio.saturating_mul(AUDIO_RESERVE_KBPS));
        let mut order: Vec<usize> = (0..tracks.len())
            .filter(|&t| tracks[t].kind != TrackKind::Audio)
            .collect();
        order.sort_by_key(|&t| tracks[t].kind);
        for t in order {
            let track = &tracks[t];
            let mut blocked = false;
            for (i, &nominal) in track.layers.iter().enumerate() {
                let nominal = nominal.max(1);
                let floor = floor_kbps(nominal);
                let state = self
                    .layers
                    .entry((track.id, i))
                    .or_insert_with(LayerState::new);
                let on = if i == 0 {
                    // The lowest layer always runs.
                    state.active = true;
                    true
                } else if blocked {
                    state.active = false;
                    state.fits_since = None;
                    false
                } else if state.active {
                    let since = state.probed_at.map(|p| now.saturating_duration_since(p));
                    if since.is_some_and(|s| s < PROBE_WINDOW) {
                        state.probe_queue_ms = state
                            .probe_queue_ms
                            .max(estimate.queue_delay_ms.unwrap_or(0));
                    }
                    let starved = matches!(
                        (estimate.delivered_kbps, estimate.sent_kbps),
                        (Some(d), Some(s)) if f64::from(d) < f64::from(s) * PROBE_GUARD_SHARE
                    );
                    let probe_failed = since.is_some_and(|since| {
                        since < PROBE_WINDOW
                            && (state.probe_queue_ms >= PROBE_GUARD_QUEUE_MS
                                || (since >= PROBE_GUARD_AFTER && starved))
                    });
                    if left >= floor && !probe_failed {
                        // A young probe holds after its first frames (the keyframe) until the
                        // feedback on them is in: what they did to the path's queue decides.
                        !since.is_some_and(|s| !s.is_zero() && s < PROBE_VERDICT)
                    } else {
                        // Congestion: no probe for a while, longer if this was one.
                        state.active = false;
                        state.fits_since = None;
                        if state
                            .probed_at
                            .take()
                            .is_some_and(|p| now.saturating_duration_since(p) < PROBE_WINDOW)
                        {
                            self.probe_interval = (self.probe_interval * 2).min(MAX_PROBE_INTERVAL);
                        }
                        self.next_probe = Some(now + self.probe_interval);
                        false
                    }
                } else if f64::from(left) >= f64::from(nominal) * RESUME_MARGIN {
                    let since = *state.fits_since.get_or_insert(now);
                    let held = now.saturating_duration_since(since) >= RESUME_HOLD;
                    // Everything up to this layer, at its nominal rate.
                    let after = total - left + nominal;
                    let safe = after <= demonstrated;
                    let may_probe = self.next_probe.is_none_or(|p| now >= p) && !queued;
                    if held && (safe || may_probe) {
                        state.active = true;
                        state.fits_since = None;
                        if !safe {
                            state.probed_at = Some(now);
                            state.probe_queue_ms = estimate.queue_delay_ms.unwrap_or(0);
                            self.next_probe = Some(now + self.probe_interval);
                        }
                        true
                    } else {
                        false
                    }
                } else {
                    state.fits_since = None;
                    false
                };
                if on {
                    if state
                        .probed_at
                        .is_some_and(|p| now.saturating_duration_since(p) >= PROBE_WINDOW)
                    {
                        // The probe held: probing is cheap again.
                        state.probed_at = None;
                        self.probe_interval = PROBE_INTERVAL;
                    }
                    // A probe runs at the layer's floor until it held: it overloads a path
                    // that cannot carry it less, so the guard stops it before much is lost.
                    let kbps = if state.probed_at.is_some() {
                        floor
                    } else {
                        nominal.min(left).max(floor)
                    };
                    left = left.saturating_sub(kbps);
                    out[t][i] = LayerDecision::Send(kbps);
                } else {
                    blocked = true;
                }
            }
        }
        Allocation {
            budget_kbps: Some(total),
            tracks: out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LayerDecision::{Paused, Send};

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    fn camera() -> TrackDemand {
        TrackDemand {
            id: 1,
            kind: TrackKind::Camera,
            layers: vec![150, 500, 1500],
        }
    }

    fn mic() -> TrackDemand {
        TrackDemand {
            id: 2,
            kind: TrackKind::Audio,
            layers: vec![],
        }
    }

    /// An estimate of `kbps`, all of it demonstrated (delivered).
    fn est(kbps: u32) -> Option<Estimate> {
        Some(Estimate {
            kbps,
            delivered_kbps: Some(kbps),
            sent_kbps: Some(kbps),
            queue_delay_ms: Some(0),
        })
    }

    fn screen() -> TrackDemand {
        TrackDemand {
            id: 3,
            kind: TrackKind::Screen,
            layers: vec![1200],
        }
    }

    #[test]
    fn without_an_estimate_everything_runs_at_nominal() {
        let mut a = Allocator::new();
        let got = a.allocate(Instant::now(), None, &[camera(), mic()]);
        assert_eq!(got.budget_kbps, None);
        assert_eq!(got.tracks, [vec![Send(150), Send(500), Send(1500)], vec![]]);
    }

    #[test]
    fn layers_that_do_not_fit_are_paused_and_the_top_one_shrinks() {
        let mut a = Allocator::new();
        let t0 = Instant::now();
        let tracks = [camera(), mic()];
        // Plenty: all nominal.
        let got = a.allocate(t0, est(5000), &tracks);
        assert_eq!(got.tracks[0], [Send(150), Send(500), Send(1500)]);
        // 1500 - 64 audio - 150 - 500 = 786 left for the full layer: 52 % < 60 %: paused.
        let got = a.allocate(t0 + S, est(1500), &tracks);
        assert_eq!(got.tracks[0], [Send(150), Send(500), Paused]);
        // 400 kbit/s: 336 left, 186 for the half layer < 300: paused.
        let got = a.allocate(t0 + 2 * S, est(400), &tracks);
        assert_eq!(got.tracks[0], [Send(150), Paused, Paused]);
        // Less than the quarter layer needs: it still runs, at its floor.
        let got = a.allocate(t0 + 3 * S, est(100), &tracks);
        assert_eq!(got.tracks[0], [Send(90), Paused, Paused]);
    }

    #[test]
    fn the_highest_active_layer_runs_below_nominal_down_to_its_floor() {
        let mut a = Allocator::new();
        let t0 = Instant::now();
        // 1900 - 64 - 650 = 1186 for the full layer: 79 % of 1500.
        let got = a.allocate(t0, est(1900), &[camera(), mic()]);
        assert_eq!(got.tracks[0], [Send(150), Send(500), Send(1186)]);
        assert_eq!(floor_kbps(1500), 900);
        assert_eq!(floor_kbps(40), 30);
        assert_eq!(floor_kbps(20), 20);
    }

    #[test]
    fn a_screen_comes_before_the_camera_and_audio_before_both() {
        let mut a = Allocator::new();
        let t0 = Instant::now();
        let tracks = [camera(), screen(), mic()];
        // 1700 - 64 = 1636: screen 1200, then quarter 150, half 286 (57 % < 60 %): paused.
        let got = a.allocate(t0, est(1700), &tracks);
        assert_eq!(got.tracks[1], [Send(1200)]);
        assert_eq!(got.tracks[0], [Send(150), Paused, Paused]);
        assert_eq!(got.tracks[2], Vec::<LayerDecision>::new());
    }

    #[test]
    fn a_paused_layer_resumes_only_after_fitting_with_margin_for_its_hold() {
        let mut a = Allocator::new();
        let t0 = Instant::now();
        let tracks = [camera(), mic()];
        a.allocate(t0, est(400), &tracks);
        // Half layer needs 500 × 1.15 = 575 left: 64 + 150 + 575 = 789.
        let mut now = t0;
        for _ in 0..10 {
            now += 500 * MS;
            let got = a.allocate(now, est(780), &tracks);
            assert_eq!(got.tracks[0][1], Paused, "not enough margin");
        }
        let start = now + 500 * MS;
        let mut resumed = None;
        let mut at = start;
        while at < start + 10 * S {
            // Dips under the margin restart the clock.
            let got = a.allocate(at, est(800), &tracks);
            if got.tracks[0][1] != Paused {
                resumed = Some(at);
                break;
            }
            at += 500 * MS;
        }
        assert_eq!(resumed, Some(start + RESUME_HOLD));
    }

    #[test]
    fn a_dip_restarts_the_hold() {
        let mut a = Allocator::new();
        let t0 = Instant::now();
        let tracks = [camera(), mic()];
        a.allocate(t0, est(400), &tracks);
        a.allocate(t0 + S, est(800), &tracks);
        a.allocate(t0 + 2 * S, est(500), &tracks);
        // Clock restarted at 3 s: not yet at 4.5 s, at 5 s yes.
        a.allocate(t0 + 3 * S, est(800), &tracks);
        assert_eq!(
            a.allocate(t0 + 4500 * MS, est(800), &tracks).tracks[0][1],
            Paused
        );
        assert_eq!(
            a.allocate(t0 + 5 * S, est(800), &tracks).tracks[0][1],
            Send(500)
        );
    }

    /// An estimate of `kbps` of which only `delivered` is demonstrated.
    fn blind(kbps: u32, delivered: u32) -> Option<Estimate> {
        Some(Estimate {
            kbps,
            delivered_kbps: Some(delivered),
            sent_kbps: Some(delivered),
            queue_delay_ms: Some(0),
        })
    }

    /// From `from` on, every 500 ms, an estimate of `kbps` with 250 delivered: when the half
    /// layer is first on.
    fn resumed_after(a: &mut Allocator, from: Instant, kbps: u32) -> Instant {
        let tracks = [camera(), mic()];
        let mut at = from;
        loop {
            if a.allocate(at, blind(kbps, 250), &tracks).tracks[0][1] != Paused {
                return at;
            }
            at += 500 * MS;
            assert!(at < from + 600 * S, "never resumed");
        }
    }

    #[test]
    fn resumes_beyond_what_was_delivered_are_rationed_probes() {
        let mut a = Allocator::new();
        let t0 = Instant::now();
        let tracks = [camera(), mic()];
        // Congestion pauses the half layer at t0: no probe for 30 s, although the estimate
        // (climbing blind) says it fits after 1 s.
        a.allocate(t0, blind(400, 400), &tracks);
        let probe = resumed_after(&mut a, t0 + S, 900);
        assert_eq!(probe, t0 + PROBE_INTERVAL);
        // The probe fails: the next one waits twice as long.
        a.allocate(probe + S, blind(400, 400), &tracks);
        let probe2 = resumed_after(&mut a, probe + 2 * S, 900);
        assert_eq!(probe2, probe + S + 2 * PROBE_INTERVAL);
        // This one holds past the probe window: back to 30 s after the next congestion.
        a.allocate(probe2 + PROBE_WINDOW, blind(900, 400), &tracks);
        let congested = probe2 + PROBE_WINDOW + S;
        a.allocate(congested, blind(400, 400), &tracks);
        let probe3 = resumed_after(&mut a, congested + S, 900);
        assert_eq!(probe3, congested + PROBE_INTERVAL);
        // A resume within what was delivered over the last 5 s is no probe: at once (after
        // the hold), and it does not hold the next probe back.
        let mut a = Allocator::new();
        a.allocate(t0, blind(400, 400), &tracks);
        a.allocate(t0 + S, blind(900, 900), &tracks);
        assert_eq!(
            a.allocate(t0 + 3 * S, blind(900, 900), &tracks).tracks[0][1],
            Send(500)
        );
    }

    #[test]
    fn a_probe_whose_excess_does_not_arrive_is_stopped_at_once() {
        let tracks = [camera(), mic()];
        let mut a = Allocator::new();
        let t0 = Instant::now();
        // Congestion pauses the half layer; 30 s later a blind estimate lets a probe resume it.
        a.allocate(t0, blind(400, 400), &tracks);
        let probe = resumed_after(&mut a, t0 + S, 900);
        // The estimate is still high, but half of what is sent does not arrive.
        let congested = Some(Estimate {
            kbps: 900,
            delivered_kbps: Some(400),
            sent_kbps: Some(800),
            queue_delay_ms: Some(0),
        });
        // A young probe asks for the allocation every PROBE_CHECK_EVERY.
        assert!(a.probe_running(probe));
        assert!(a.probe_running(probe + PROBE_GUARD_AFTER));
        let at = probe + PROBE_GUARD_AFTER;
        let decided = a.allocate(at, congested, &tracks);
        assert_eq!(decided.tracks[0][1], Paused, "{decided:?}");
        assert!(!a.probe_running(at), "a stopped probe is not watched");
        // Before the guard's delay, the same figures do not stop it (the windows lag).
        let mut b = Allocator::new();
        b.allocate(t0, blind(400, 400), &tracks);
        let probe = resumed_after(&mut b, t0 + S, 900);
        let early = b.allocate(probe + PROBE_VERDICT - MS, congested, &tracks);
        assert_eq!(early.tracks[0][1], Paused, "held until the verdict");
        assert!(
            b.probe_running(probe + PROBE_VERDICT - MS),
            "held, not stopped"
        );
        assert!(b.probe_running(probe + PROBE_WATCH - MS));
        assert!(
            !b.probe_running(probe + PROBE_WATCH),
            "an old probe is not watched"
        );
    }

    #[test]
    fn a_probe_sends_a_burst_and_holds_until_its_feedback_says_whether_the_path_queued() {
        let tracks = [camera(), mic()];
        let queue = |ms: u32| {
            Some(Estimate {
                kbps: 900,
                delivered_kbps: Some(250),
                sent_kbps: Some(250),
                queue_delay_ms: Some(ms),
            })
        };
        let mut a = Allocator::new();
        let t0 = Instant::now();
        a.allocate(t0, blind(400, 400), &tracks);
        let probe = resumed_after(&mut a, t0 + S, 900);
        // Its first frames went out; it holds while their feedback comes in. 200 ms in, the
        // rates still look fine but the path queues 150 ms: stopped.
        let at = probe + PROBE_CHECK_EVERY;
        assert_eq!(a.allocate(at, queue(60), &tracks).tracks[0][1], Paused);
        assert!(a.probe_running(at), "held, not stopped");
        let decided = a.allocate(at + PROBE_CHECK_EVERY, queue(150), &tracks);
        assert_eq!(decided.tracks[0][1], Paused, "{decided:?}");
        assert!(!a.probe_running(at + PROBE_CHECK_EVERY), "stopped");
        // Queueing seen during the hold still fails it at the verdict, though drained by then.
        let mut c = Allocator::new();
        c.allocate(t0, blind(400, 400), &tracks);
        let probe = resumed_after(&mut c, t0 + S, 900);
        c.allocate(probe + 2 * PROBE_CHECK_EVERY, queue(130), &tracks);
        assert_eq!(
            c.allocate(probe + PROBE_VERDICT, queue(5), &tracks).tracks[0][1],
            Paused
        );
        assert!(!c.probe_running(probe + PROBE_VERDICT));
        // A probe whose burst the path took goes on at the verdict.
        let mut d = Allocator::new();
        d.allocate(t0, blind(400, 400), &tracks);
        let probe = resumed_after(&mut d, t0 + S, 900);
        for k in 1..5u32 {
            let held = d.allocate(probe + k * PROBE_CHECK_EVERY, queue(40), &tracks);
            assert_eq!(held.tracks[0][1], Paused, "held at {k}");
        }
        let verdict = d.allocate(probe + PROBE_VERDICT, queue(20), &tracks);
        assert!(matches!(verdict.tracks[0][1], Send(_)), "{verdict:?}");
        assert!(d.probe_running(probe + PROBE_VERDICT));
        // The next probe is due after twice the interval, but not while the path queues.
        let due = at + PROBE_CHECK_EVERY + 2 * PROBE_INTERVAL;
        let mut t = due;
        while t < due + 5 * S {
            assert_eq!(a.allocate(t, queue(120), &tracks).tracks[0][1], Paused);
            t += 500 * MS;
        }
        // Drained: it starts (after its hold).
        let mut started = None;
        while t < due + 10 * S {
            if a.allocate(t, queue(10), &tracks).tracks[0][1] != Paused {
                started = Some(t);
                break;
            }
            t += 500 * MS;
        }
        assert!(started.is_some(), "no probe once the queue drained");
    }

    #[test]
    fn layers_above_a_paused_one_stay_paused() {
        let mut a = Allocator::new();
        let t0 = Instant::now();
        let tracks = [camera(), mic()];
        a.allocate(t0, est(400), &tracks);
        // Huge estimate: the half layer resumes after its hold; the full one only after the
        // half is on and it has fit for its own hold.
        let mut at = t0;
        let mut half_on = None;
        let mut full_on = None;
        while at < t0 + 20 * S {
            at += 500 * MS;
            let got = a.allocate(at, est(10_000), &tracks);
            if half_on.is_none() && got.tracks[0][1] != Paused {
                half_on = Some(at);
            }
            if full_on.is_none() && got.tracks[0][2] != Paused {
                assert!(half_on.is_some());
                full_on = Some(at);
            }
        }
        assert_eq!(half_on, Some(t0 + 500 * MS + RESUME_HOLD));
        assert!(
            full_on.is_some_and(|f| f > half_on.unwrap_or(t0)),
            "{full_on:?}"
        );
    }
}
