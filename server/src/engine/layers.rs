//! Simulcast in the forwarder, as pure logic over explicit time: the layers of one published
//! track, which layer each subscriber gets ([`choose`]), and the rewriting ([`LegStream`]) that
//! makes every switch invisible to the subscriber: one SSRC (set by the caller), and sequence
//! numbers, timestamps, VP8 picture ids and TL0PICIDX that continue across layers.

use super::keyframe::{KEYFRAME_INTERVAL, KeyframeGate};
use super::vp8::{self, Vp8Info};
use std::time::{Duration, Instant};

/// The most layers a track may have (more SSRCs for one track are ignored).
pub const MAX_LAYERS: usize = 4;

/// A layer that sent nothing for this long is not chosen.
pub const LAYER_STALE: Duration = Duration::from_millis(1500);

/// A layer that starts flowing (again) is switched up to only after this long.
pub const LAYER_WARMUP: Duration = Duration::from_secs(2);

/// A layer whose keyframe was asked for and has not come is asked again after this.
pub const SWITCH_RETRY: Duration = Duration::from_millis(1000);

/// One SSRC of a published track: a simulcast layer, or the whole track without simulcast.
#[derive(Debug)]
pub struct Layer {
    /// Its RTP stream id (`rid`), if the publisher sends simulcast.
    pub rid: Option<String>,
    /// Its SSRC.
    pub ssrc: u32,
    /// Keyframe requests to it, coalesced.
    pub gate: KeyframeGate,
    /// Width and height of its last keyframe.
    pub size: Option<(u16, u16)>,
    /// When its last packet arrived.
    pub last_packet: Option<Instant>,
    /// Packets received on it.
    pub packets: u64,
    /// Since when it flows without a break of [`LAYER_STALE`].
    pub live_since: Option<Instant>,
    /// Bytes received since the rate was last measured.
    bytes: u64,
    /// Its bitrate (bits/s, smoothed over about a second), 0 until measured.
    pub rate_bps: f64,
    rate_at: Option<Instant>,
}

impl Layer {
    /// A layer first seen on `ssrc`.
    pub fn new(rid: Option<String>, ssrc: u32) -> Self {
        Self {
            rid,
            ssrc,
            gate: KeyframeGate::new(KEYFRAME_INTERVAL),
            size: None,
            last_packet: None,
            packets: 0,
            live_since: None,
            bytes: 0,
            rate_bps: 0.0,
            rate_at: None,
        }
    }

    /// One packet of `bytes` arrived at `now`.
    pub fn on_packet(&mut self, now: Instant, bytes: usize) {
        if !self.live(now) {
            self.live_since = Some(now);
        }
        self.last_packet = Some(now);
        self.packets += 1;
        self.bytes += bytes as u64;
        self.rate_at.get_or_insert(now);
    }

    /// Whether it has flowed for [`LAYER_WARMUP`] (a layer its publisher just resumed may
    /// be a probe of its uplink that fails: legs move up to it only once it held).
    pub fn settled(&self, now: Instant) -> bool {
        self.live(now)
            && self
                .live_since
                .is_some_and(|t| now.saturating_duration_since(t) >= LAYER_WARMUP)
    }

    /// Updates the bitrate from the bytes since the last update (at least 400 ms apart).
    pub fn measure(&mut self, now: Instant) {
        let Some(at) = self.rate_at else {
            return;
        };
        let dt = now.saturating_duration_since(at).as_secs_f64();
        if dt < 0.4 {
            return;
        }
        if self.bytes == 0 {
            // Not flowing (paused by its publisher): its last rate is what it would cost.
            self.rate_at = Some(now);
            return;
        }
        let instant = self.bytes as f64 * 8.0 / dt;
        self.rate_bps = if self.rate_bps == 0.0 {
            instant
        } else {
            0.5 * self.rate_bps + 0.5 * instant
        };
        self.bytes = 0;
        self.rate_at = Some(now);
    }

    /// Whether it sent something recently.
    pub fn live(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|t| now.saturating_duration_since(t) < LAYER_STALE)
    }
}

/// How a subscriber shows a video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Nothing said: as large as the publisher sends.
    #[default]
    Default,
    /// Not shown: nothing is forwarded.
    Hidden,
    /// Shown at this many device pixels.
    Size(u32, u32),
}

impl View {
    /// The view for a `set_view_sizes` entry.
    pub fn from_size(width: u32, height: u32) -> Self {
        if width == 0 || height == 0 {
            View::Hidden
        } else {
            View::Size(width, height)
        }
    }
}

/// The layer to forward for `view` among `layers` (index into it), or `None` for nothing.
///
/// Live layers whose size is known are ranked by width. The choice is the smallest that covers
/// the view (its width or its height at least 90 % of the view's: the picture keeps its aspect,
/// so one covered side is enough), else the largest; without a view, the largest. Before any
/// keyframe told a size, the first live layer; with no live layer, the first.
pub fn choose(view: View, layers: &[Layer], now: Instant) -> Option<usize> {
    if view == View::Hidden || layers.is_empty() {
        return None;
    }
    pick(view, layers, |l| l.live(now))
        .or_else(|| Some(layers.iter().position(|l| l.live(now)).unwrap_or(0)))
}

/// A layer above the current one is taken only if its bitrate fits in this share of the budget.
pub const UP_HEADROOM: f64 = 0.8;

/// After a switch down for bandwidth, no switch up for this long.
pub const UP_HOLD: Duration = Duration::from_secs(3);

/// After a switch down for bandwidth, the layer left is not tried again for this long at
/// first; doubled each time it fails again, up to [`PROBE_BACKOFF_MAX`].
pub const PROBE_BACKOFF: Duration = Duration::from_secs(8);
/// See [`PROBE_BACKOFF`].
pub const PROBE_BACKOFF_MAX: Duration = Duration::from_secs(64);
/// A larger layer that held this long after it was allowed again resets the backoff.
pub const PROBE_RESET: Duration = Duration::from_secs(30);

/// When a leg may try larger layers again after the budget brought it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpBlock {
    /// Layers of this picture area or more are not tried before `until`.
    pub area: u32,
    /// See `area`.
    pub until: Instant,
    /// The current backoff.
    pub backoff: Duration,
    /// When the budget last brought the leg down.
    pub at: Instant,
}

impl UpBlock {
    /// The budget brought a leg down from a layer of `area` at `now`; `last` is the previous
    /// block, if any.
    pub fn after_down(last: Option<UpBlock>, area: u32, now: Instant) -> Self {
        let backoff = match last {
            Some(b) if now.saturating_duration_since(b.until) < PROBE_RESET => {
                (b.backoff * 2).min(PROBE_BACKOFF_MAX)
            }
            _ => PROBE_BACKOFF,
        };
        Self {
            area,
            until: now + backoff,
            backoff,
            at: now,
        }
    }

    /// Whether a layer of `area` may be tried at `now`.
    pub fn allows(&self, area: u32, now: Instant) -> bool {
        area < self.area || now >= self.until
    }
}

/// Lowers `wanted` (the layer [`choose`] picked for the view) to what `budget_bps` (this leg's
/// share of its subscriber's downlink estimate) carries: the largest live layer no larger than
/// `wanted` whose measured bitrate fits — the `current` layer fits up to the whole budget, a
/// larger one only within [`UP_HEADROOM`] of it (hysteresis) — else the smallest live layer
/// (video is never paused for bandwidth). Layers not measured yet fit.
pub fn within_budget(
    wanted: Option<usize>,
    layers: &[Layer],
    now: Instant,
    budget_bps: Option<u64>,
    current: Option<usize>,
) -> Option<usize> {
    fit(wanted, layers, budget_bps, current, |l| l.live(now))
}

/// [`within_budget`] among every layer whose size is known, flowing or not (a layer its
/// publisher paused costs what it cost when it last flowed): what to ask the publisher for.
pub fn within_budget_any(
    wanted: Option<usize>,
    layers: &[Layer],
    budget_bps: Option<u64>,
    current: Option<usize>,
) -> Option<usize> {
    fit(wanted, layers, budget_bps, current, |_| true)
}

fn fit(
    wanted: Option<usize>,
    layers: &[Layer],
    budget_bps: Option<u64>,
    current: Option<usize>,
    usable: impl Fn(&Layer) -> bool,
) -> Option<usize> {
    let (Some(w), Some(budget)) = (wanted, budget_bps) else {
        return wanted;
    };
    let area = |i: usize| layers[i].size.map(|(w, h)| u32::from(w) * u32::from(h));
    let Some(wanted_area) = area(w) else {
        return wanted;
    };
    let current_area = current.and_then(area).unwrap_or(0);
    let mut candidates: Vec<(usize, u32)> = (0..layers.len())
        .filter(|&i| usable(&layers[i]))
        .filter_map(|i| area(i).map(|a| (i, a)))
        .filter(|&(_, a)| a <= wanted_area)
        .collect();
    if candidates.is_empty() {
        return wanted;
    }
    candidates.sort_by_key(|&(_, a)| a);
    // Up one layer at a time: each step up is a probe of the path.
    if current.is_some()
        && let Some(next_up) = candidates.iter().position(|&(_, a)| a > current_area)
    {
        candidates.truncate(next_up + 1);
    }
    let budget = budget as f64;
    let fits = |i: usize, a: u32| {
        let rate = layers[i].rate_bps;
        if Some(i) == current || a <= current_area {
            rate <= budget
        } else {
            rate <= budget * UP_HEADROOM
        }
    };
    candidates
        .iter()
        .rev()
        .find(|&&(i, a)| fits(i, a))
        .or(candidates.first())
        .map(|&(i, _)| i)
}

/// Shares a subscriber's video budget between its shown video tracks by what each one's view
/// calls for (`wants`, bits/s of the layer it would get with room enough; 0 = not measured:
/// counted as an even share). With room for all, each gets its want and an even part of the
/// rest (a step up stays possible); without, each gets the same fraction of its want, so a
/// stage and a thumbnail come down together instead of the stage starving first.
pub fn split_budget(budget: u64, wants: &[u64]) -> Vec<u64> {
    if wants.is_empty() {
        return Vec::new();
    }
    let n = wants.len() as u64;
    let even = budget / n;
    let wants: Vec<u64> = wants
        .iter()
        .map(|&w| if w == 0 { even } else { w })
        .collect();
    let total: u64 = wants.iter().sum();
    if total <= budget {
        let extra = (budget - total) / n;
        wants.iter().map(|&w| w + extra).collect()
    } else {
        wants
            .iter()
            .map(|&w| (u128::from(budget) * u128::from(w) / u128::from(total.max(1))) as u64)
            .collect()
    }
}

/// [`split_budget`] when some legs cannot adapt (`(want, adaptable)`; a track of one layer — a
/// screen share — is sent whatever its share, so its rate is taken off the top): the fixed legs
/// get their want, the adaptable ones share what is left. The screen a subscriber is reading
/// keeps its rate on a slow link, and the cameras beside it come down instead of being chosen
/// as if the share would shrink too.
pub fn split_budget_fixed(budget: u64, legs: &[(u64, bool)]) -> Vec<u64> {
    let fixed: u64 = legs.iter().filter(|l| !l.1).map(|l| l.0).sum();
    let wants: Vec<u64> = legs.iter().filter(|l| l.1).map(|l| l.0).collect();
    let mut shares = split_budget(budget.saturating_sub(fixed), &wants).into_iter();
    legs.iter()
        .map(|&(want, adaptable)| {
            if adaptable {
                shares.next().unwrap_or(0)
            } else {
                want
            }
        })
        .collect()
}

/// The layer `view` calls for if every layer were sent (dynacast: what the publisher should
/// encode), among the layers whose size is known; `None` when hidden. Without any size known,
/// the first layer.
pub fn ideal(view: View, layers: &[Layer]) -> Option<usize> {
    if view == View::Hidden || layers.is_empty() {
        return None;
    }
    pick(view, layers, |_| true).or(Some(0))
}

/// [`choose`]'s ranking among the layers that pass `usable` and have a known size.
fn pick(view: View, layers: &[Layer], usable: impl Fn(&Layer) -> bool) -> Option<usize> {
    let mut sized: Vec<(usize, (u16, u16))> = layers
        .iter()
        .enumerate()
        .filter(|(_, l)| usable(l))
        .filter_map(|(i, l)| l.size.map(|s| (i, s)))
        .collect();
    if sized.is_empty() {
        return None;
    }
    sized.sort_by_key(|&(_, (w, h))| (u32::from(w) * u32::from(h), w));
    let largest = sized.last().map(|&(i, _)| i);
    match view {
        View::Size(w, h) => sized
            .iter()
            .find(|&&(_, (lw, lh))| {
                u64::from(lw) * 10 >= u64::from(w) * 9 || u64::from(lh) * 10 >= u64::from(h) * 9
            })
            .map(|&(i, _)| i)
            .or(largest),
        _ => largest,
    }
}

/// How long a layer nobody wants any more is still asked for before the publisher is told to
/// stop encoding it (a layer wanted again is asked for at once).
pub const DEMAND_RELEASE: Duration = Duration::from_secs(2);

/// Which layers of a track the publisher is asked to send (dynacast), as a bit mask by layer
/// index; a layer is let go only after nobody wanted it for [`DEMAND_RELEASE`].
#[derive(Debug)]
pub struct Demand {
    told: u8,
    unwanted_since: [Option<Instant>; MAX_LAYERS],
}

impl Default for Demand {
    /// Every layer: a publisher starts sending all of them.
    fn default() -> Self {
        Self {
            told: (1 << MAX_LAYERS) - 1,
            unwanted_since: [None; MAX_LAYERS],
        }
    }
}

impl Demand {
    /// The layers wanted now (mask); returns the mask to tell the publisher when it changed.
    pub fn update(&mut self, now: Instant, wanted: u8) -> Option<u8> {
        let mut next = self.told | wanted;
        for (i, since) in self.unwanted_since.iter_mut().enumerate() {
            let bit = 1u8 << i;
            if self.told & bit != 0 && wanted & bit == 0 {
                let at = *since.get_or_insert(now);
                if now.saturating_duration_since(at) >= DEMAND_RELEASE {
                    next &= !bit;
                    *since = None;
                }
            } else {
                *since = None;
            }
        }
        let changed = next != self.told;
        self.told = next;
        changed.then_some(next)
    }

    /// The mask last told (or assumed).
    pub fn told(&self) -> u8 {
        self.told
    }
}

/// What to do with one packet on one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not for this leg (another layer, before a switch, or paused).
    Drop,
    /// Forward it with the rewritten header; `ids` = new picture id and TL0PICIDX to write into
    /// the payload, when they differ from the publisher's.
    Forward {
        /// The payload's new (picture id, TL0PICIDX).
        ids: Option<(u16, u8)>,
    },
}

/// One subscriber's view of a track: the layer it gets, the layer it should get, and the
/// offsets that make its stream continuous.
#[derive(Debug, Default)]
pub struct LegStream {
    /// The layer being forwarded.
    pub current: Option<usize>,
    /// The layer wanted; a switch happens on its next keyframe.
    pub target: Option<usize>,
    /// When the target's keyframe was last asked for.
    pub asked_at: Option<Instant>,
    /// How the subscriber shows it.
    pub view: View,
    /// Layer switches made (not counting the first layer).
    pub switches: u64,
    /// When the budget last lowered its layer ([`UP_HOLD`]).
    pub down_at: Option<Instant>,
    /// Which larger layers it may not try yet ([`UpBlock`]).
    pub up_block: Option<UpBlock>,
    started: bool,
    seq_off: u16,
    ts_off: u32,
    pic_off: u16,
    tl0_off: u8,
    last_seq: u16,
    last_ts: u32,
    last_pic: u16,
    last_tl0: u8,
    last_at: Option<Instant>,
    /// The first sequence number of the current layer after a switch, while it matters.
    switch_seq: Option<u16>,
}

/// How many packets after a switch an older packet of the new layer is still told apart.
const SWITCH_WINDOW: i16 = 1024;

impl LegStream {
    /// A leg of an audio track: its one layer, from the first packet.
    pub fn audio() -> Self {
        Self {
            current: Some(0),
            target: Some(0),
            ..Self::default()
        }
    }

    /// A leg of a video track shown as `view`: nothing until the chosen layer's keyframe.
    pub fn video(view: View) -> Self {
        Self {
            view,
            ..Self::default()
        }
    }

    /// Sets the layer wanted. Returns whether that layer's keyframe must be asked for. `None`
    /// pauses at once.
    pub fn set_target(&mut self, target: Option<usize>, now: Instant) -> bool {
        if target.is_none() {
            self.current = None;
            self.target = None;
            self.asked_at = None;
            return false;
        }
        let changed = self.target != target;
        self.target = target;
        if self.current == target {
            self.asked_at = None;
            return false;
        }
        let retry = self
            .asked_at
            .is_none_or(|at| now.saturating_duration_since(at) >= SWITCH_RETRY);
        if changed || retry {
            self.asked_at = Some(now);
            true
        } else {
            false
        }
    }

    /// A packet of `layer` was held back (a moderator holds the track): the leg's sequence
    /// skips it, so the subscriber sees no gap it would NACK in vain.
    pub fn skip(&mut self, layer: usize) {
        if self.current == Some(layer) {
            self.seq_off = self.seq_off.wrapping_add(1);
        }
    }

    /// Decides about one packet of `layer` arriving at `now`, rewriting `seq` and `ts` in place.
    /// Starting on a layer waits for its keyframe when `need_keyframe` (a track with several
    /// layers); a track with one layer starts at any packet, as its subscriber asks for a
    /// keyframe itself when it needs one.
    pub fn on_packet(
        &mut self,
        now: Instant,
        layer: usize,
        seq: &mut u16,
        ts: &mut u32,
        vp8: Option<&Vp8Info>,
        need_keyframe: bool,
    ) -> Verdict {
        if self.current != Some(layer) {
            let keyframe = vp8.is_some_and(|v| v.keyframe_start);
            if self.target != Some(layer) || (need_keyframe && !keyframe) {
                return Verdict::Drop;
            }
            self.switch_to(now, layer, *seq, *ts, vp8);
        } else if let Some(first) = self.switch_seq {
            // Right after a switch, a packet older than its keyframe belongs to the stream
            // before it; later the window is closed (sequence numbers wrap).
            let since = seq.wrapping_sub(first) as i16;
            if since < 0 {
                return Verdict::Drop;
            }
            if since > SWITCH_WINDOW {
                self.switch_seq = None;
            }
        }
        let out_seq = seq.wrapping_sub(self.seq_off);
        let out_ts = ts.wrapping_sub(self.ts_off);
        let newest = !self.started || (out_seq.wrapping_sub(self.last_seq) as i16) > 0;
        let mut ids = None;
        if let Some(v) = vp8
            && let Some((pic, long)) = v.picture_id
        {
            let m = vp8::picture_id_modulus(long);
            let out_pic = pic.wrapping_sub(self.pic_off) % m;
            let out_tl0 = v.tl0_pic_idx.map_or(0, |t| t.wrapping_sub(self.tl0_off));
            if !self.pic_off.is_multiple_of(m) || self.tl0_off != 0 {
                ids = Some((out_pic, out_tl0));
            }
            if newest {
                self.last_pic = out_pic;
                if v.tl0_pic_idx.is_some() {
                    self.last_tl0 = out_tl0;
                }
            }
        }
        if newest {
            self.last_seq = out_seq;
            self.last_ts = out_ts;
            self.last_at = Some(now);
        }
        self.started = true;
        *seq = out_seq;
        *ts = out_ts;
        Verdict::Forward { ids }
    }

    fn switch_to(&mut self, now: Instant, layer: usize, seq: u16, ts: u32, vp8: Option<&Vp8Info>) {
        if self.started {
            let gap_ms = self
                .last_at
                .map_or(0, |t| now.saturating_duration_since(t).as_millis())
                .min(10_000) as u32;
            let ts_step = (gap_ms * 90).max(1);
            self.seq_off = seq.wrapping_sub(self.last_seq.wrapping_add(1));
            self.ts_off = ts.wrapping_sub(self.last_ts.wrapping_add(ts_step));
            if let Some(v) = vp8 {
                if let Some((pic, long)) = v.picture_id {
                    let m = vp8::picture_id_modulus(long);
                    self.pic_off = pic.wrapping_sub(self.last_pic.wrapping_add(1)) % m;
                }
                if let Some(t) = v.tl0_pic_idx {
                    self.tl0_off = t.wrapping_sub(self.last_tl0.wrapping_add(1));
                }
            }
            self.switches += 1;
        }
        self.current = Some(layer);
        self.asked_at = None;
        self.switch_seq = Some(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(size: Option<(u16, u16)>, now: Instant) -> Layer {
        let mut l = Layer::new(None, 1);
        l.size = size;
        l.last_packet = Some(now);
        l
    }

    fn three(now: Instant) -> Vec<Layer> {
        // Listed in an order that is not by size, as rids may come.
        vec![
            layer(Some((640, 360)), now),
            layer(Some((1280, 720)), now),
            layer(Some((320, 180)), now),
        ]
    }

    #[test]
    fn chooses_the_smallest_layer_that_covers_the_view() {
        let now = Instant::now();
        let l = three(now);
        assert_eq!(choose(View::Default, &l, now), Some(1));
        assert_eq!(choose(View::Hidden, &l, now), None);
        assert_eq!(choose(View::Size(320, 180), &l, now), Some(2));
        assert_eq!(choose(View::Size(300, 300), &l, now), Some(2));
        assert_eq!(choose(View::Size(350, 197), &l, now), Some(2));
        assert_eq!(choose(View::Size(400, 225), &l, now), Some(0));
        assert_eq!(choose(View::Size(960, 540), &l, now), Some(1));
        assert_eq!(choose(View::Size(3840, 2160), &l, now), Some(1));
        assert_eq!(choose(View::from_size(0, 0), &l, now), None);
    }

    #[test]
    fn stale_and_unsized_layers_are_passed_over() {
        let now = Instant::now();
        let mut l = three(now);
        l[1].last_packet = Some(now - LAYER_STALE);
        assert_eq!(
            choose(View::Default, &l, now + Duration::from_millis(1)),
            Some(0)
        );
        let no_size = vec![layer(None, now), layer(None, now)];
        assert_eq!(choose(View::Size(10, 10), &no_size, now), Some(0));
        let mut dead = vec![layer(None, now)];
        dead[0].last_packet = None;
        assert_eq!(choose(View::Default, &dead, now), Some(0));
        assert_eq!(choose(View::Default, &[], now), None);
    }

    #[test]
    fn the_budget_lowers_the_layer_with_hysteresis() {
        let now = Instant::now();
        let mut l = three(now);
        // h (index 0) 500 kbit/s, f (1) 1.5 Mbit/s, q (2) 150 kbit/s.
        l[0].rate_bps = 500_000.0;
        l[1].rate_bps = 1_500_000.0;
        l[2].rate_bps = 150_000.0;
        let want_f = Some(1);
        assert_eq!(within_budget(want_f, &l, now, None, None), Some(1));
        assert_eq!(
            within_budget(want_f, &l, now, Some(5_000_000), None),
            Some(1)
        );
        assert_eq!(
            within_budget(want_f, &l, now, Some(600_000), Some(1)),
            Some(0)
        );
        assert_eq!(
            within_budget(want_f, &l, now, Some(300_000), Some(1)),
            Some(2)
        );
        assert_eq!(
            within_budget(want_f, &l, now, Some(50_000), Some(1)),
            Some(2),
            "never nothing"
        );
        // Staying on h needs its rate, going up to f needs f's rate within 80 %.
        assert_eq!(
            within_budget(want_f, &l, now, Some(1_600_000), Some(0)),
            Some(0)
        );
        assert_eq!(
            within_budget(want_f, &l, now, Some(1_500_000), Some(1)),
            Some(1)
        );
        assert_eq!(
            within_budget(want_f, &l, now, Some(1_900_000), Some(0)),
            Some(1)
        );
        // Up one layer at a time: from q, h first, whatever the budget.
        assert_eq!(
            within_budget(want_f, &l, now, Some(9_000_000), Some(2)),
            Some(0)
        );
        assert_eq!(
            within_budget(want_f, &l, now, Some(9_000_000), None),
            Some(1)
        );
        // A small view is not raised by a large budget.
        assert_eq!(
            within_budget(Some(2), &l, now, Some(9_000_000), Some(2)),
            Some(2)
        );
    }

    #[test]
    fn a_layer_that_failed_is_tried_again_later_and_later() {
        let t0 = Instant::now();
        let b = UpBlock::after_down(None, 921_600, t0);
        assert!(!b.allows(921_600, t0 + Duration::from_secs(7)));
        assert!(b.allows(230_400, t0), "smaller layers stay open");
        assert!(b.allows(921_600, t0 + PROBE_BACKOFF));
        let t1 = t0 + PROBE_BACKOFF + Duration::from_secs(1);
        let b = UpBlock::after_down(Some(b), 921_600, t1);
        assert_eq!(b.backoff, PROBE_BACKOFF * 2);
        let mut last = b;
        for _ in 0..5 {
            last = UpBlock::after_down(Some(last), 921_600, last.until);
        }
        assert_eq!(last.backoff, PROBE_BACKOFF_MAX);
        let calm = UpBlock::after_down(Some(last), 921_600, last.until + PROBE_RESET);
        assert_eq!(calm.backoff, PROBE_BACKOFF);
    }

    #[test]
    fn what_to_ask_for_counts_paused_layers_at_their_last_rate() {
        let now = Instant::now();
        let mut l = three(now);
        l[0].rate_bps = 500_000.0;
        l[1].rate_bps = 1_500_000.0;
        l[2].rate_bps = 150_000.0;
        // Only the top layer flows (the others paused by dynacast); the budget fell.
        l[0].last_packet = None;
        l[2].last_packet = None;
        assert_eq!(
            within_budget(Some(1), &l, now, Some(600_000), Some(1)),
            Some(1)
        );
        assert_eq!(
            within_budget_any(Some(1), &l, Some(600_000), Some(1)),
            Some(0)
        );
        assert_eq!(
            within_budget_any(Some(1), &l, Some(200_000), Some(1)),
            Some(2)
        );
    }

    #[test]
    fn a_layer_that_starts_again_settles_before_legs_move_up_to_it() {
        let t0 = Instant::now();
        let mut l = Layer::new(None, 1);
        l.on_packet(t0, 100);
        assert!(l.live(t0) && !l.settled(t0));
        for i in 1..=20 {
            l.on_packet(t0 + LAYER_WARMUP * i / 20, 100);
        }
        assert!(l.settled(t0 + LAYER_WARMUP));
        // Paused by its publisher, then back: warming up again.
        let back = t0 + LAYER_WARMUP + LAYER_STALE * 2;
        l.on_packet(back, 100);
        assert!(!l.settled(back));
    }

    #[test]
    fn a_budget_is_shared_by_what_each_view_calls_for() {
        // A stage (1.5 Mbit/s) and two thumbnails (150 kbit/s) in 3 Mbit/s: all fit, the rest
        // is spread.
        assert_eq!(
            split_budget(3_000_000, &[1_500_000, 150_000, 150_000]),
            vec![1_900_000, 550_000, 550_000]
        );
        // In 900 kbit/s: the same fraction of each (1.5M : 150k : 150k).
        let s = split_budget(900_000, &[1_500_000, 150_000, 150_000]);
        assert_eq!(s, vec![750_000, 75_000, 75_000]);
        // Not measured yet: an even share.
        assert_eq!(split_budget(600_000, &[0, 0]), vec![300_000, 300_000]);
        assert!(split_budget(1, &[]).is_empty());
    }

    #[test]
    fn a_leg_that_cannot_adapt_takes_its_rate_first() {
        // A 1.2 Mbit/s screen share and two cameras (500 kbit/s each) in 1.6 Mbit/s: the share
        // keeps its rate, the cameras split the 400 kbit/s left by what they call for.
        assert_eq!(
            split_budget_fixed(
                1_600_000,
                &[(500_000, true), (1_200_000, false), (500_000, true)]
            ),
            vec![200_000, 1_200_000, 200_000]
        );
        // Less than the share alone: the cameras get nothing, the share its rate.
        assert_eq!(
            split_budget_fixed(1_000_000, &[(1_200_000, false), (500_000, true)]),
            vec![1_200_000, 0]
        );
        // All adaptable: as split_budget.
        assert_eq!(
            split_budget_fixed(
                900_000,
                &[(1_500_000, true), (150_000, true), (150_000, true)]
            ),
            split_budget(900_000, &[1_500_000, 150_000, 150_000])
        );
    }

    #[test]
    fn layer_rates_are_measured_per_second() {
        let t0 = Instant::now();
        let mut l = Layer::new(None, 1);
        for i in 0..30 {
            l.on_packet(t0 + Duration::from_millis(i * 33), 1000);
        }
        l.measure(t0 + Duration::from_millis(200));
        assert_eq!(l.rate_bps, 0.0, "too soon to tell");
        l.measure(t0 + Duration::from_secs(1));
        assert!((l.rate_bps - 240_000.0).abs() < 1.0, "{}", l.rate_bps);
    }

    #[test]
    fn the_ideal_layer_ignores_which_layers_flow() {
        let now = Instant::now();
        let mut l = three(now);
        for layer in &mut l {
            layer.last_packet = None;
        }
        assert_eq!(ideal(View::Default, &l), Some(1));
        assert_eq!(ideal(View::Size(320, 180), &l), Some(2));
        assert_eq!(ideal(View::Hidden, &l), None);
        // What flows meanwhile: the top layer paused, a large view gets the half layer.
        let mut l = three(now);
        l[1].last_packet = None;
        assert_eq!(choose(View::Default, &l, now), Some(0));
        assert_eq!(ideal(View::Default, &l), Some(1));
    }

    #[test]
    fn demand_grows_at_once_and_shrinks_after_the_release_delay() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        // Nobody wants anything: all layers still asked for until the delay passed.
        assert_eq!(d.update(t0, 0), None);
        assert_eq!(d.update(t0 + DEMAND_RELEASE / 2, 0b001), None);
        let t1 = t0 + DEMAND_RELEASE;
        assert_eq!(d.update(t1, 0b001), Some(0b001));
        // A layer wanted again: at once.
        assert_eq!(d.update(t1, 0b101), Some(0b101));
        // Wanted, unwanted, wanted within the delay: never let go.
        assert_eq!(d.update(t1 + Duration::from_millis(100), 0b001), None);
        assert_eq!(d.update(t1 + Duration::from_millis(900), 0b101), None);
        assert_eq!(d.update(t1 + DEMAND_RELEASE, 0b001), None);
        assert_eq!(
            d.update(t1 + DEMAND_RELEASE * 2, 0b001),
            Some(0b001),
            "released after a full delay unwanted"
        );
        assert_eq!(d.told(), 0b001);
    }

    fn key(pic: u16, tl0: u8) -> Vp8Info {
        let mut p = vec![0x90, 0xc0, 0x80 | (pic >> 8) as u8, pic as u8, tl0];
        p.extend_from_slice(&[0x50, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0]);
        vp8::parse(&p).unwrap()
    }

    fn delta(pic: u16, tl0: u8, start: bool) -> Vp8Info {
        let s = if start { 0x10 } else { 0 };
        let p = [
            0x80 | s,
            0xc0,
            0x80 | (pic >> 8) as u8,
            pic as u8,
            tl0,
            0x51,
            0,
            0,
        ];
        vp8::parse(&p).unwrap()
    }

    /// Feeds one packet; returns (seq, ts, picture id) as the subscriber sees it, or None.
    fn feed(
        s: &mut LegStream,
        now: Instant,
        layer: usize,
        seq: u16,
        ts: u32,
        v: &Vp8Info,
    ) -> Option<(u16, u32, u16, u8)> {
        let (mut sq, mut t) = (seq, ts);
        match s.on_packet(now, layer, &mut sq, &mut t, Some(v), true) {
            Verdict::Drop => None,
            Verdict::Forward { ids } => {
                let (pic, tl0) =
                    ids.unwrap_or((v.picture_id.unwrap().0, v.tl0_pic_idx.unwrap_or(0)));
                Some((sq, t, pic, tl0))
            }
        }
    }

    #[test]
    fn starts_on_a_keyframe_of_the_target_and_keeps_the_publishers_numbers() {
        let t0 = Instant::now();
        let mut s = LegStream::video(View::Default);
        assert!(s.set_target(Some(1), t0));
        assert_eq!(feed(&mut s, t0, 1, 10, 1000, &delta(5, 1, true)), None);
        assert_eq!(feed(&mut s, t0, 0, 10, 1000, &key(5, 1)), None);
        assert_eq!(
            feed(&mut s, t0, 1, 11, 4000, &key(6, 2)),
            Some((11, 4000, 6, 2))
        );
        assert_eq!(
            feed(&mut s, t0, 1, 12, 4000, &delta(6, 2, false)),
            Some((12, 4000, 6, 2))
        );
        assert_eq!(s.switches, 0);
    }

    #[test]
    fn a_switch_continues_every_number_and_drops_the_old_layer() {
        let t0 = Instant::now();
        let mut s = LegStream::video(View::Default);
        s.set_target(Some(0), t0);
        assert!(feed(&mut s, t0, 0, 100, 90_000, &key(7000, 30)).is_some());
        assert!(feed(&mut s, t0, 0, 101, 90_000, &delta(7000, 30, false)).is_some());
        // Target the other layer: nothing changes until its keyframe.
        assert!(s.set_target(Some(1), t0));
        assert!(!s.set_target(Some(1), t0 + Duration::from_millis(10)));
        assert_eq!(feed(&mut s, t0, 1, 5000, 1_000, &delta(20, 3, true)), None);
        let t1 = t0 + Duration::from_millis(33);
        assert!(feed(&mut s, t1, 0, 102, 93_000, &delta(7001, 31, true)).is_some());
        // The new layer's keyframe, 40 ms after the last forwarded packet.
        let t2 = t1 + Duration::from_millis(40);
        let got = feed(&mut s, t2, 1, 5001, 4_000, &key(21, 4)).unwrap();
        assert_eq!(got, (103, 93_000 + 40 * 90, 7002, 32));
        assert_eq!(s.switches, 1);
        assert_eq!(s.current, Some(1));
        // The old layer is gone for this leg; the new one continues.
        assert_eq!(
            feed(&mut s, t2, 0, 103, 96_000, &delta(7002, 32, true)),
            None
        );
        let next = feed(&mut s, t2, 1, 5002, 4_000, &delta(21, 4, false)).unwrap();
        assert_eq!(next, (104, 93_000 + 40 * 90, 7002, 32));
        let later = feed(&mut s, t2, 1, 5003, 7_000, &delta(22, 4, true)).unwrap();
        assert_eq!(later, (105, 93_000 + 40 * 90 + 3_000, 7003, 32));
        // A late packet of the new layer from before its keyframe is not forwarded.
        assert_eq!(feed(&mut s, t2, 1, 5000, 1_000, &delta(20, 3, true)), None);
    }

    #[test]
    fn a_single_layer_track_starts_at_any_packet() {
        let t0 = Instant::now();
        let mut s = LegStream::video(View::Default);
        s.set_target(Some(0), t0);
        let (mut seq, mut ts) = (77, 5);
        let v = delta(9, 0, false);
        assert_eq!(
            s.on_packet(t0, 0, &mut seq, &mut ts, Some(&v), false),
            Verdict::Forward { ids: None }
        );
        assert_eq!((seq, ts), (77, 5));
    }

    #[test]
    fn picture_ids_wrap_at_fifteen_bits() {
        let t0 = Instant::now();
        let mut s = LegStream::video(View::Default);
        s.set_target(Some(0), t0);
        feed(&mut s, t0, 0, 1, 0, &key(0x7ffe, 0)).unwrap();
        s.set_target(Some(1), t0);
        let got = feed(&mut s, t0, 1, 9, 0, &key(100, 0)).unwrap();
        assert_eq!(got.2, 0x7fff);
        let got = feed(&mut s, t0, 1, 10, 3000, &delta(101, 0, true)).unwrap();
        assert_eq!(got.2, 0);
    }

    #[test]
    fn hidden_pauses_at_once_and_resumes_without_a_gap() {
        let t0 = Instant::now();
        let mut s = LegStream::video(View::Default);
        s.set_target(Some(0), t0);
        feed(&mut s, t0, 0, 50, 0, &key(1, 0)).unwrap();
        assert!(!s.set_target(None, t0));
        assert_eq!(feed(&mut s, t0, 0, 51, 3000, &delta(2, 0, true)), None);
        assert!(s.set_target(Some(0), t0));
        assert_eq!(feed(&mut s, t0, 0, 52, 6000, &delta(3, 0, true)), None);
        let t1 = t0 + Duration::from_millis(500);
        let got = feed(&mut s, t1, 0, 60, 30_000, &key(10, 0)).unwrap();
        assert_eq!((got.0, got.2), (51, 2));
        assert_eq!(got.1, 45_000);
    }

    #[test]
    fn a_target_not_answered_is_asked_again_after_the_retry_interval() {
        let t0 = Instant::now();
        let mut s = LegStream::video(View::Default);
        assert!(s.set_target(Some(2), t0));
        assert!(!s.set_target(Some(2), t0 + Duration::from_millis(500)));
        assert!(s.set_target(Some(2), t0 + SWITCH_RETRY));
    }

    #[test]
    fn held_packets_leave_no_sequence_gap() {
        let t0 = Instant::now();
        let mut s = LegStream::audio();
        let (mut seq, mut ts) = (10, 0);
        assert_eq!(
            s.on_packet(t0, 0, &mut seq, &mut ts, None, false),
            Verdict::Forward { ids: None }
        );
        s.skip(0);
        s.skip(0);
        let (mut seq, mut ts) = (13, 960);
        s.on_packet(t0, 0, &mut seq, &mut ts, None, false);
        assert_eq!(seq, 11);
        // Every sequence number passes, across the wrap.
        for n in 0..70_000u32 {
            let (mut seq, mut ts) = ((n as u16).wrapping_add(14), n * 960);
            assert_ne!(
                s.on_packet(t0, 0, &mut seq, &mut ts, None, false),
                Verdict::Drop
            );
        }
    }

    #[test]
    fn a_long_stream_after_a_switch_is_never_cut_by_the_wrap() {
        let t0 = Instant::now();
        let mut s = LegStream::video(View::Default);
        s.set_target(Some(0), t0);
        feed(&mut s, t0, 0, 40_000, 0, &key(1, 0)).unwrap();
        for n in 1..70_000u32 {
            let seq = 40_000u16.wrapping_add(n as u16);
            assert!(feed(&mut s, t0, 0, seq, n * 3000, &delta(1, 0, false)).is_some());
        }
    }
}
