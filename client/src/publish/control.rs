//! [`SendControl`]: the state one local track's room, handle and send loop share (enabled,
//! keyframe wishes, dynacast and budget pauses, RTP numbering, counters, self view, level).

use super::rtp::RtpState;
use crate::audio::analysis::SILENCE_DBOV;
use crate::media::{AudioSource, I420Frame, VideoSource};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::rtp_transceiver::RtpTransceiver;

/// A source waiting to replace the running one (device switch).
pub struct SourceSwap<S: ?Sized>(Mutex<Option<Box<S>>>);

impl<S: ?Sized> SourceSwap<S> {
    fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// Queues `source` to replace the running source before the next frame.
    pub fn replace(&self, source: Box<S>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    pub(super) fn take(&self) -> Option<Box<S>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl<S: ?Sized> std::fmt::Debug for SourceSwap<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceSwap")
    }
}

/// A bound track (weakly: a session's track goes with its session) and its transceiver.
type TrackTransceiver = (Weak<TrackLocalStaticRTP>, Arc<dyn RtpTransceiver>);

/// Shared state between the room, the handle and the sending task of one local track.
pub struct SendControl<S: ?Sized> {
    pub(super) enabled: AtomicBool,
    /// Layers whose next frame must be a keyframe, one bit per layer (bit 0 = the first of
    /// the sender's layers).
    pub(super) keyframe_wanted: AtomicU32,
    pub(super) frames_sent: AtomicU64,
    pub(super) keyframes_sent: AtomicU64,
    pub(super) keyframe_requests: AtomicU64,
    pub(super) packets_sent: AtomicU64,
    pub(super) bytes_sent: AtomicU64,
    pub(super) layers_sent: AtomicU32,
    /// Video: layers nobody receives (the server's `layers_wanted`), not encoded; one bit per
    /// layer in `layer_ssrcs` order.
    pub(super) paused_layers: AtomicU32,
    /// Video: layers the uplink budget has no room for ([`crate::budget`]), not encoded; one
    /// bit per layer in `layer_ssrcs` order.
    pub(super) budget_paused: AtomicU32,
    /// Video: the budget in kbit/s when it was last shared out (0: no estimate).
    pub(super) budget_kbps: AtomicU32,
    /// Video: each layer's nominal bitrate (kbit/s), in `layer_ssrcs` order; empty until the
    /// send loop starts.
    pub(super) nominal_kbps: Mutex<Vec<u32>>,
    /// Video: each layer's bitrate from the budget (`None`: paused or not decided, the encoder
    /// keeps its rate), in `layer_ssrcs` order.
    pub(super) budget_rates: Mutex<Vec<Option<u32>>>,
    pub(super) swap: SourceSwap<S>,
    /// RTP numbering per SSRC (one per layer).
    pub(super) rtp: Mutex<HashMap<u32, RtpState>>,
    /// Video: the layers' SSRCs in sender order (keyframe requests name one).
    pub(super) layer_ssrcs: Mutex<Vec<u32>>,
    /// Video: per-layer counters.
    pub(super) layer_stats: Mutex<Vec<LayerStats>>,
    /// The transceiver each bound track is on (its mid and negotiated extension ids).
    pub(super) transceivers: Mutex<Vec<TrackTransceiver>>,
    /// Video: the newest captured frame (self view).
    pub(super) preview: watch::Sender<Option<Arc<I420Frame>>>,
    /// Audio: the smoothed capture level, dBov as `f32` bits, and whether it counts as speech.
    pub(super) level_bits: AtomicU32,
    pub(super) speaking: AtomicBool,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counters of one layer of a local video track.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LayerStats {
    /// The layer's `rid` (`None` for a single-layer track).
    pub rid: Option<&'static str>,
    /// The layer's SSRC.
    pub ssrc: u32,
    /// Size of the last frame sent (0×0 before the first, or while the layer is too small).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// Frames written.
    pub frames_sent: u64,
    /// Of those, keyframes.
    pub keyframes_sent: u64,
    /// RTP packets written.
    pub packets_sent: u64,
    /// Encoded payload bytes written.
    pub bytes_sent: u64,
    /// The bitrate the uplink budget gives the layer (kbit/s; its nominal rate while there is
    /// no estimate, 0 while it is paused by the budget).
    pub target_kbps: u32,
    /// Whether the uplink budget has no room for the layer (not encoded).
    pub paused_by_budget: bool,
}

/// Counters of a local track (a simulcast track's layers summed; `frames_sent` counts captured
/// frames of which at least one layer was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SendStats {
    /// Frames (video pictures or 20 ms audio frames) encoded and written to the track.
    pub frames_sent: u64,
    /// Of those, keyframes (video only).
    pub keyframes_sent: u64,
    /// Keyframe requests (PLI/FIR) received from the server (video only).
    pub keyframe_requests: u64,
    /// RTP packets written.
    pub packets_sent: u64,
    /// Encoded payload bytes written (the encoder's output; RTP/SRTP overhead excluded).
    pub bytes_sent: u64,
    /// Video: how many layers sent a frame within the last second (3 for a 720p simulcast
    /// camera, 1 for a single-layer track; 0 before the first frame). A camera's rate control may
    /// drop a layer's frame now and then; the layer still counts.
    pub layers_sent: u32,
    /// Video: how many layers the server said nobody receives, not encoded (dynacast).
    pub layers_paused: u32,
    /// Video: the uplink estimate (kbit/s) the layers were last fitted to; `None` before the
    /// server's first transport-wide feedback.
    pub budget_kbps: Option<u32>,
    /// Video: how many layers the uplink budget has no room for, not encoded.
    pub layers_paused_by_budget: u32,
}

impl<S: ?Sized> SendControl<S> {
    /// A control for a track that starts enabled (sending) or not.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled: AtomicBool::new(enabled),
            keyframe_wanted: AtomicU32::new(0),
            frames_sent: AtomicU64::new(0),
            keyframes_sent: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            layers_sent: AtomicU32::new(0),
            paused_layers: AtomicU32::new(0),
            budget_paused: AtomicU32::new(0),
            budget_kbps: AtomicU32::new(0),
            nominal_kbps: Mutex::new(Vec::new()),
            budget_rates: Mutex::new(Vec::new()),
            swap: SourceSwap::new(),
            rtp: Mutex::new(HashMap::new()),
            layer_ssrcs: Mutex::new(Vec::new()),
            layer_stats: Mutex::new(Vec::new()),
            transceivers: Mutex::new(Vec::new()),
            preview: watch::channel(None).0,
            level_bits: AtomicU32::new(SILENCE_DBOV.to_bits()),
            speaking: AtomicBool::new(false),
        }
    }

    /// Starts or stops sending frames. Resuming starts with a keyframe.
    pub fn set_enabled(&self, enabled: bool) {
        let was = self.enabled.swap(enabled, Ordering::SeqCst);
        if enabled && !was {
            self.request_keyframe();
        }
    }

    /// Whether frames are being sent.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// Makes the next frame of every layer a keyframe.
    pub fn request_keyframe(&self) {
        self.keyframe_wanted.store(u32::MAX, Ordering::SeqCst);
    }

    /// Makes the next frame of the layer sent on `ssrc` a keyframe (every layer's if no layer
    /// has that SSRC).
    pub fn request_keyframe_for(&self, ssrc: u32) {
        let index = lock(&self.layer_ssrcs).iter().position(|&s| s == ssrc);
        match index {
            Some(i) if i < 32 => {
                self.keyframe_wanted.fetch_or(1 << i, Ordering::SeqCst);
            }
            _ => self.request_keyframe(),
        }
    }

    /// Dynacast: the server says which layers anyone receives (`rids`, for a simulcast
    /// track) and whether anyone receives the track at all (`active`). The others are not
    /// encoded; a layer wanted again starts with a keyframe.
    pub fn set_wanted_layers(&self, active: bool, rids: &[String]) {
        let stats = lock(&self.layer_stats);
        let mut paused = 0u32;
        for (i, layer) in stats.iter().enumerate().take(32) {
            let wanted = active && layer.rid.is_none_or(|rid| rids.iter().any(|r| r == rid));
            if !wanted {
                paused |= 1 << i;
            }
        }
        drop(stats);
        let before = self.paused_layers.swap(paused, Ordering::SeqCst);
        let resumed = before & !paused;
        if resumed != 0 {
            self.keyframe_wanted.fetch_or(resumed, Ordering::SeqCst);
        }
    }

    /// Every layer wanted again (a new session: the server has not said otherwise yet).
    pub fn want_all_layers(&self) {
        let resumed = self.paused_layers.swap(0, Ordering::SeqCst);
        if resumed != 0 {
            self.keyframe_wanted.fetch_or(resumed, Ordering::SeqCst);
        }
    }

    /// How many of the track's layers the server said nobody receives (not encoded).
    pub fn paused_layers(&self) -> u32 {
        self.paused_layers.load(Ordering::Relaxed).count_ones()
    }

    /// Video: each layer's nominal bitrate in kbit/s, in the sender's layer order (lowest
    /// first for a simulcast camera); empty until the send loop has started.
    pub fn nominal_kbps(&self) -> Vec<u32> {
        lock(&self.nominal_kbps).clone()
    }

    /// Video: the uplink budget's decision for each layer (in the sender's layer order):
    /// `None` = paused (not encoded), `Some(kbps)` = encoded at that target bitrate; `budget_kbps`
    /// is the estimate it was fitted to. A layer encoded only if both this and the server
    /// (dynacast, [`set_wanted_layers`](Self::set_wanted_layers)) want it; a layer the budget
    /// resumes starts with a keyframe.
    pub fn set_budget(&self, budget_kbps: Option<u32>, rates: &[Option<u32>]) {
        let mut paused = 0u32;
        for (i, rate) in rates.iter().enumerate().take(32) {
            if rate.is_none() {
                paused |= 1 << i;
            }
        }
        *lock(&self.budget_rates) = rates.to_vec();
        self.budget_kbps
            .store(budget_kbps.unwrap_or(0), Ordering::Relaxed);
        {
            let nominal = lock(&self.nominal_kbps);
            let mut stats = lock(&self.layer_stats);
            for (i, layer) in stats.iter_mut().enumerate() {
                let rate = rates.get(i).copied();
                layer.paused_by_budget = matches!(rate, Some(None));
                layer.target_kbps = match rate {
                    Some(Some(kbps)) => kbps,
                    Some(None) => 0,
                    None => nominal.get(i).copied().unwrap_or_default(),
                };
            }
        }
        let before = self.budget_paused.swap(paused, Ordering::SeqCst);
        let resumed = before & !paused;
        if resumed != 0 {
            self.keyframe_wanted.fetch_or(resumed, Ordering::SeqCst);
            tracing::info!(
                budget_kbps,
                resumed = resumed.count_ones(),
                "uplink budget resumed layers"
            );
        }
        let newly = paused & !before;
        if newly != 0 {
            tracing::info!(
                budget_kbps,
                paused = newly.count_ones(),
                "uplink budget paused layers"
            );
        }
    }

    /// Notes that `track` is sent by `transceiver`: the send loop reads the mid and the
    /// negotiated header extension ids from it once `track` is bound. Entries of tracks that
    /// are gone are forgotten.
    pub fn set_transceiver(
        &self,
        track: &Arc<TrackLocalStaticRTP>,
        transceiver: Arc<dyn RtpTransceiver>,
    ) {
        let mut all = lock(&self.transceivers);
        all.retain(|(t, _)| t.strong_count() > 0 && !std::ptr::eq(t.as_ptr(), Arc::as_ptr(track)));
        all.push((Arc::downgrade(track), transceiver));
    }

    pub(super) fn transceiver_for(
        &self,
        track: &Arc<TrackLocalStaticRTP>,
    ) -> Option<Arc<dyn RtpTransceiver>> {
        lock(&self.transceivers)
            .iter()
            .find(|(t, _)| std::ptr::eq(t.as_ptr(), Arc::as_ptr(track)))
            .map(|(_, transceiver)| Arc::clone(transceiver))
    }

    /// Video: the counters of each layer, in the sender's order (one entry for a single-layer
    /// track).
    pub fn layer_stats(&self) -> Vec<LayerStats> {
        lock(&self.layer_stats).clone()
    }

    /// Replaces the source before the next frame (switching devices). For video, the encoder
    /// follows the new source's frame size and starts with a keyframe.
    pub fn replace_source(&self, source: Box<S>) {
        self.swap.replace(source);
        self.request_keyframe();
    }

    /// Video: the newest captured frame, before encoding (self view). `None` until the first
    /// frame; frames are taken while the track is enabled and connected.
    pub fn preview(&self) -> watch::Receiver<Option<Arc<I420Frame>>> {
        self.preview.subscribe()
    }

    /// Audio: the smoothed level of what is captured (dBov, −127 = silence) and whether it
    /// counts as speech (for a speaking indicator; read also while muted).
    pub fn level(&self) -> (f32, bool) {
        (
            f32::from_bits(self.level_bits.load(Ordering::Relaxed)),
            self.speaking.load(Ordering::Relaxed),
        )
    }

    /// The numbering of `ssrc`: where a previous send loop left it, else a new one that shares
    /// the timestamp origin of `sibling`'s (the layers of one track share RTP timestamps).
    pub(super) fn rtp_state(&self, ssrc: u32, sibling: u32) -> RtpState {
        let mut states = lock(&self.rtp);
        if let Some(state) = states.get(&ssrc) {
            return *state;
        }
        let mut state = RtpState::new();
        if let Some(s) = states.get(&sibling) {
            state.timestamp_base = s.timestamp_base;
            state.first_capture_micros = s.first_capture_micros;
        }
        states.insert(ssrc, state);
        state
    }

    pub(super) fn save_rtp_state(&self, ssrc: u32, state: RtpState) {
        lock(&self.rtp).insert(ssrc, state);
    }

    /// The counters so far.
    pub fn stats(&self) -> SendStats {
        SendStats {
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            keyframes_sent: self.keyframes_sent.load(Ordering::Relaxed),
            keyframe_requests: self.keyframe_requests.load(Ordering::Relaxed),
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            layers_sent: self.layers_sent.load(Ordering::Relaxed),
            layers_paused: self.paused_layers(),
            budget_kbps: match self.budget_kbps.load(Ordering::Relaxed) {
                0 => None,
                kbps => Some(kbps),
            },
            layers_paused_by_budget: self.budget_paused.load(Ordering::Relaxed).count_ones(),
        }
    }
}

impl<S: ?Sized> std::fmt::Debug for SendControl<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendControl")
            .field("enabled", &self.enabled())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The control of a local video track.
pub type VideoControl = SendControl<dyn VideoSource>;
/// The control of a local audio track.
pub type AudioControl = SendControl<dyn AudioSource>;
