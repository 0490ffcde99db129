//! The publish paths.
//!
//! - Video: [`VideoSource`] → [`Vp8Encoder`] (on the blocking pool) → RTP (VP8 payload
//!   descriptor with a 15-bit picture id, 90 kHz clock from the capture time) →
//!   `TrackLocalStaticRTP`, paced by a tokio interval at the source's frame rate. A camera is
//!   sent as simulcast ([`camera_layers`]): one capture, box-downscaled to half and quarter size
//!   ([`crate::media::downscale`]), one encoder, SSRC and `rid` per layer. Keyframe requests
//!   (PLI/FIR surfaced by [`KeyframeRequestTap`](crate::peer::KeyframeRequestTap)) make the next
//!   frame of the layer they name a keyframe.
//! - Audio: [`AudioSource`] → [`OpusEncoder`] → one RTP packet per 20 ms (48 kHz clock).
//!
//! Every packet carries the MID header extension (the transceiver's mid), video layers of a
//! simulcast track their `rid` (RID extension), audio its level (RFC 6464), each with the id
//! negotiated for the bound track ([`SendControl::set_transceiver`] says which transceiver a
//! track is on). An extension the other side did not negotiate is left out.
//!
//! Senders outlive a media session: they write to whatever track the room binds
//! ([`TrackBinding`]), so a reconnection swaps the track under them without restarting the
//! source or the encoder.

use crate::audio::analysis::{LevelMeter, SILENCE_DBOV};
use crate::media::I420Frame;
use crate::media::downscale::{downscale, even_fraction};
use crate::media::opus::{FRAME_MICROS, FRAME_SAMPLES, SAMPLE_RATE};
use crate::media::{
    AudioSource, EncodedFrame, OpusEncoder, SourceError, VideoSource, Vp8Config, Vp8Encoder,
    Vp8Error,
};
use crate::peer::{OPUS_PT, VP8_CLOCK_RATE, VP8_PT, is_keyframe_request};
use bytes::{BufMut, Bytes, BytesMut};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::extension::audio_level_extension::AudioLevelExtension;
use rtc::shared::marshal::{Marshal, MarshalSize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;
use videoroom_protocol::MediaKind;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::rtp_transceiver::RtpTransceiver;

/// RTP packets are at most this large (header included), well under a 1500-byte path MTU once
/// SRTP, UDP, IP and any TURN framing are added.
const RTP_MTU: usize = 1200;
const RTP_HEADER: usize = 12;
/// Room left in each video packet for header extensions: MID, RID and what the interceptors add
/// (transport-wide sequence number), with the RFC 8285 header and padding.
const EXTENSIONS_RESERVE: usize = 16;
/// The VP8 payload descriptor we write: X, I, and a 15-bit picture id (M bit set).
const VP8_DESCRIPTOR: usize = 4;
/// A simulcast layer below this height is not sent.
pub const MIN_LAYER_HEIGHT: u32 = 90;

/// Where a sender writes: the local track of the current media session, or `None` while there
/// is no connected session (before the first connection, during a reconnection). The room
/// publishes a new track here after each (re)connection.
pub type TrackBinding = watch::Receiver<Option<Arc<TrackLocalStaticRTP>>>;

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

    fn take(&self) -> Option<Box<S>> {
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
    enabled: AtomicBool,
    /// Layers whose next frame must be a keyframe, one bit per layer (bit 0 = the first of
    /// the sender's layers).
    keyframe_wanted: AtomicU32,
    frames_sent: AtomicU64,
    keyframes_sent: AtomicU64,
    keyframe_requests: AtomicU64,
    packets_sent: AtomicU64,
    bytes_sent: AtomicU64,
    layers_sent: AtomicU32,
    /// Video: layers nobody receives (the server's `layers_wanted`), not encoded; one bit per
    /// layer in `layer_ssrcs` order.
    paused_layers: AtomicU32,
    /// Video: layers the uplink budget has no room for ([`crate::budget`]), not encoded; one
    /// bit per layer in `layer_ssrcs` order.
    budget_paused: AtomicU32,
    /// Video: the budget in kbit/s when it was last shared out (0: no estimate).
    budget_kbps: AtomicU32,
    /// Video: each layer's nominal bitrate (kbit/s), in `layer_ssrcs` order; empty until the
    /// send loop starts.
    nominal_kbps: Mutex<Vec<u32>>,
    /// Video: each layer's bitrate from the budget (`None`: paused or not decided, the encoder
    /// keeps its rate), in `layer_ssrcs` order.
    budget_rates: Mutex<Vec<Option<u32>>>,
    swap: SourceSwap<S>,
    /// RTP numbering per SSRC (one per layer).
    rtp: Mutex<HashMap<u32, RtpState>>,
    /// Video: the layers' SSRCs in sender order (keyframe requests name one).
    layer_ssrcs: Mutex<Vec<u32>>,
    /// Video: per-layer counters.
    layer_stats: Mutex<Vec<LayerStats>>,
    /// The transceiver each bound track is on (its mid and negotiated extension ids).
    transceivers: Mutex<Vec<TrackTransceiver>>,
    /// Video: the newest captured frame (self view).
    preview: watch::Sender<Option<Arc<I420Frame>>>,
    /// Audio: the smoothed capture level, dBov as `f32` bits, and whether it counts as speech.
    level_bits: AtomicU32,
    speaking: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
    /// Video: on how many layers the last sent frame went out (3 for a 720p simulcast camera,
    /// 1 for a single-layer track; 0 before the first frame).
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

    fn transceiver_for(&self, track: &Arc<TrackLocalStaticRTP>) -> Option<Arc<dyn RtpTransceiver>> {
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
    fn rtp_state(&self, ssrc: u32, sibling: u32) -> RtpState {
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

    fn save_rtp_state(&self, ssrc: u32, state: RtpState) {
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

/// Why the publish path stopped or skipped a frame.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The source failed or ended.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The encoder failed.
    #[error(transparent)]
    Encoder(#[from] Vp8Error),
    /// A screen frame could not be scaled to the size it is sent at.
    #[error(transparent)]
    Scale(#[from] crate::media::screen::ScaleError),
    /// The blocking encode task panicked or was cancelled.
    #[error("encoder task failed: {0}")]
    Task(String),
}

/// What a shared screen's frames go through before the encoder: scaled to fit 1920×1080, and
/// only encoded when something changed (or a keyframe is wanted, or 200 ms passed).
#[derive(Debug, Default)]
struct ScreenPrep {
    scaler: crate::media::ScreenScaler,
    gate: crate::media::MotionGate,
}

/// One spatial layer of a published video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    /// Its `rid` in SDP and in the RID header extension; `None` for a single-layer track.
    pub rid: Option<&'static str>,
    /// Its SSRC.
    pub ssrc: u32,
    /// Its size: the source's width and height divided by this (1, 2, 4), rounded to even.
    pub divisor: u32,
}

impl LayerSpec {
    /// The one layer of a track that is not simulcast.
    pub fn single(ssrc: u32) -> Self {
        Self {
            rid: None,
            ssrc,
            divisor: 1,
        }
    }

    /// The layer's size for a `width`×`height` source; `None` if it is too small to send
    /// (a downscaled layer under [`MIN_LAYER_HEIGHT`]).
    pub fn size(&self, width: u32, height: u32) -> Option<(u32, u32)> {
        if self.divisor <= 1 {
            return Some((width, height));
        }
        let (w, h) = (
            even_fraction(width, self.divisor),
            even_fraction(height, self.divisor),
        );
        (h >= MIN_LAYER_HEIGHT && w <= width && h <= height).then_some((w, h))
    }

    /// The layer's target bitrate when the full-size layer's is `top_kbps`: about a third for
    /// half size, a tenth for quarter size, with floors so that a small source still looks
    /// right.
    pub fn target_kbps(&self, top_kbps: u32) -> u32 {
        match self.divisor {
            0 | 1 => top_kbps,
            2 => (top_kbps / 3).max(150).min(top_kbps),
            _ => (top_kbps / 10).max(60).min(top_kbps),
        }
    }
}

/// The simulcast layers of a camera track, lowest to highest as the SDP lists them
/// ([`videoroom_webrtc::SIMULCAST_RIDS`]: quarter, half, full); the full layer is sent on
/// `full_ssrc` (the track's SSRC), the others on new random SSRCs.
pub fn camera_layers(full_ssrc: u32) -> Vec<LayerSpec> {
    let mut layers = Vec::with_capacity(3);
    for (rid, divisor) in [
        (videoroom_webrtc::RID_QUARTER, 4),
        (videoroom_webrtc::RID_HALF, 2),
        (videoroom_webrtc::RID_FULL, 1),
    ] {
        let ssrc = if divisor == 1 {
            full_ssrc
        } else {
            loop {
                let s = rand::random::<u32>() | 1;
                if s != full_ssrc && layers.iter().all(|l: &LayerSpec| l.ssrc != s) {
                    break s;
                }
            }
        };
        layers.push(LayerSpec {
            rid: Some(rid),
            ssrc,
            divisor,
        });
    }
    layers
}

/// One layer's encoder inside the [`EncodeStage`].
struct LayerEncoder {
    spec: LayerSpec,
    /// `None` until the layer is first sent, and while the source is too small for it.
    encoder: Option<Vp8Encoder>,
}

/// The part of the video publish path that blocks: pulling a frame, scaling it to each layer
/// and encoding it.
struct EncodeStage {
    source: Box<dyn VideoSource>,
    /// Highest resolution first (the order frames are encoded and written in).
    layers: Vec<LayerEncoder>,
    /// The full-size layer's settings; the others derive theirs from it.
    top_config: crate::media::Vp8Config,
    control: Arc<VideoControl>,
    /// A screen share's scaling and motion gate (`None` for a camera).
    screen: Option<ScreenPrep>,
    /// An encoded source ([`VideoSource::encoded`]): the layers (bits in the control's layer
    /// order) that wait for their next recorded keyframe (asked for, or resumed).
    replay_waiting: u32,
}

impl EncodeStage {
    /// The step of an encoded source: its next capture's layers as recorded, less the paused
    /// ones; a layer asked for a keyframe (or resumed) skips its frames until its next
    /// recorded keyframe. No encoder runs; a budget's bitrates are not followed.
    fn replay_step(
        &mut self,
        keyframes: u32,
        paused: u32,
        order: &[u32],
    ) -> Result<Vec<(usize, EncodedFrame)>, PublishError> {
        self.replay_waiting |= keyframes;
        let Some(source) = self.source.encoded() else {
            return Ok(Vec::new());
        };
        let frames = source.next_frames()?;
        let mut out = Vec::with_capacity(frames.len());
        for (index, frame) in frames {
            let Some(layer) = self.layers.get(index) else {
                continue;
            };
            let Some(position) = order.iter().position(|&s| s == layer.spec.ssrc) else {
                continue;
            };
            let bit = 1u32.checked_shl(position as u32).unwrap_or(0);
            if paused & bit != 0 {
                continue;
            }
            if self.replay_waiting & bit != 0 {
                if !frame.keyframe {
                    continue;
                }
                self.replay_waiting &= !bit;
            }
            out.push((index, frame));
        }
        Ok(out)
    }

    /// Each layer's current size (0×0: not encoding), in [`layers`](Self::layers) order.
    fn sizes(&mut self) -> Vec<(u32, u32)> {
        if let Some(source) = self.source.encoded() {
            let mut sizes = source.layer_sizes();
            sizes.resize(self.layers.len(), (0, 0));
            return sizes;
        }
        self.layers
            .iter()
            .map(|l| {
                l.encoder
                    .as_ref()
                    .map_or((0, 0), |e| (e.config().width, e.config().height))
            })
            .collect()
    }

    /// One captured frame, encoded on every layer it is big enough for: `(layer, frame)` pairs
    /// with `layer` an index into [`layers`](Self::layers). `keyframes` has the bit of each
    /// layer (by its index in the control's layer order) that must start with a keyframe.
    fn step(
        &mut self,
        keyframes: u32,
        paused: u32,
        rates: &[Option<u32>],
        swap: Option<Box<dyn VideoSource>>,
        order: &[u32],
    ) -> Result<Vec<(usize, EncodedFrame)>, PublishError> {
        if let Some(source) = swap {
            self.source = source;
        }
        if self.source.encoded().is_some() {
            return self.replay_step(keyframes, paused, order);
        }
        let mut frame = self.source.next_frame()?;
        if let Some(prep) = self.screen.as_mut() {
            if let std::borrow::Cow::Owned(scaled) = prep.scaler.fit(&frame)? {
                frame = scaled;
            }
            let decision = prep
                .gate
                .observe(&frame, std::time::Instant::now(), keyframes != 0);
            if !decision.should_encode() {
                return Ok(Vec::new());
            }
        }
        let mut out = Vec::with_capacity(self.layers.len());
        // Each layer is scaled from the previous (larger) one: quarter from half, not from full.
        let mut scaled: Option<I420Frame> = None;
        for (index, layer) in self.layers.iter_mut().enumerate() {
            let Some((width, height)) = layer.spec.size(frame.width(), frame.height()) else {
                layer.encoder = None;
                continue;
            };
            let input = if (width, height) == (frame.width(), frame.height()) {
                None
            } else {
                let from = scaled.as_ref().unwrap_or(&frame);
                Some(
                    downscale(from, width, height)
                        .map_err(|e| PublishError::Task(e.to_string()))?,
                )
            };
            let picture = input.as_ref().unwrap_or(&frame);
            let stale = layer
                .encoder
                .as_ref()
                .is_none_or(|e| e.config().width != width || e.config().height != height);
            if stale {
                // First frame of the layer, or a new source (device switch, a file) with another
                // size: a new encoder at that size, same rate settings. Its first frame is a
                // keyframe.
                let mut config = self.top_config.clone();
                config.width = width;
                config.height = height;
                config.target_kbps = layer.spec.target_kbps(self.top_config.target_kbps);
                if layer.encoder.is_some() {
                    tracing::info!(width, height, rid = ?layer.spec.rid, "video size changed; new encoder");
                }
                layer.encoder = Some(Vp8Encoder::new(config)?);
            }
            let Some(encoder) = layer.encoder.as_mut() else {
                continue;
            };
            let position = order.iter().position(|&s| s == layer.spec.ssrc);
            let bit = position.map_or(u32::MAX, |i| 1u32.checked_shl(i as u32).unwrap_or(0));
            if paused & bit != 0 && bit != u32::MAX {
                // Nobody receives it (dynacast): not encoded; smaller layers still scale from it.
                if input.is_some() {
                    scaled = input;
                }
                continue;
            }
            // The budget's bitrate, else the layer's nominal one.
            let rate = position
                .and_then(|i| rates.get(i).copied().flatten())
                .unwrap_or_else(|| layer.spec.target_kbps(self.top_config.target_kbps));
            if rate != encoder.config().target_kbps
                && let Err(e) = encoder.set_target_kbps(rate)
            {
                tracing::warn!(rid = ?layer.spec.rid, rate, "encoder bitrate not changed: {e}");
            }
            if keyframes & bit != 0 {
                encoder.force_keyframe();
            }
            if let Some(encoded) = encoder.encode(picture)? {
                out.push((index, encoded));
            }
            if input.is_some() {
                scaled = input;
            }
        }
        self.control.preview.send_replace(Some(Arc::new(frame)));
        Ok(out)
    }
}

/// The RTP numbering of a local track: kept in its [`SendControl`] so that a restarted send
/// loop (a new source after the old one stopped) continues the sequence numbers, timestamps
/// and picture ids instead of jumping (SRTP would take a restarted sequence for replays and
/// drop it).
#[derive(Debug, Clone, Copy)]
pub struct RtpState {
    sequence: u16,
    timestamp_base: u32,
    first_capture_micros: Option<u64>,
    last_timestamp: Option<u32>,
    /// VP8: the next frame's picture id (15 bits).
    picture_id: u16,
}

impl RtpState {
    fn new() -> Self {
        Self {
            sequence: rand::random(),
            timestamp_base: rand::random(),
            first_capture_micros: None,
            last_timestamp: None,
            picture_id: rand::random::<u16>() & 0x7FFF,
        }
    }
}

/// How packets on the bound track are labelled: the transceiver's mid and the header extension
/// ids the other side negotiated (`None`: not negotiated, left out).
#[derive(Debug, Clone, Default)]
struct Labels {
    /// The mid is known (the track's transceiver has one); until then labels are looked up
    /// again on every frame.
    resolved: bool,
    mid: Option<(u8, Bytes)>,
    rid_id: Option<u8>,
    audio_level_id: Option<u8>,
}

impl Labels {
    /// The labels of `track` from the transceiver the room noted for it.
    async fn of<S: ?Sized>(control: &SendControl<S>, track: &Arc<TrackLocalStaticRTP>) -> Self {
        let Some(transceiver) = control.transceiver_for(track) else {
            return Self::default();
        };
        let Ok(Some(mid)) = transceiver.mid().await else {
            return Self::default();
        };
        let extensions = match transceiver.sender().await {
            Ok(Some(sender)) => match sender.get_parameters().await {
                Ok(p) => p.rtp_parameters.header_extensions,
                Err(_) => Vec::new(),
            },
            _ => Vec::new(),
        };
        // One-byte header extensions (RFC 8285) take ids 1..=14.
        let id = |uri: &str| {
            extensions
                .iter()
                .find(|e| e.uri == uri)
                .and_then(|e| u8::try_from(e.id).ok())
                .filter(|id| (1..=14).contains(id))
        };
        let mid = (!mid.is_empty() && mid.len() <= 16)
            .then(|| id(videoroom_webrtc::MID_URI).map(|i| (i, Bytes::from(mid.into_bytes()))))
            .flatten();
        Self {
            resolved: true,
            mid,
            rid_id: id(videoroom_webrtc::RID_URI),
            audio_level_id: id(videoroom_webrtc::AUDIO_LEVEL_URI),
        }
    }

    /// Sets the MID and, with `rid`, the RID extension on `packet`.
    fn apply(&self, packet: &mut rtc::rtp::Packet, rid: Option<&'static str>) {
        if let Some((id, mid)) = &self.mid {
            let _ = packet.header.set_extension(*id, mid.clone());
        }
        if let (Some(id), Some(rid)) = (self.rid_id, rid) {
            let _ = packet
                .header
                .set_extension(id, Bytes::from_static(rid.as_bytes()));
        }
    }
}

/// Turns VP8 frames into RTP packets: a VP8 payload descriptor with a 15-bit picture id (the
/// M bit always set, so a server can rewrite it in place across layer switches), our SSRC, a
/// sequence number from a random start, and a 90 kHz timestamp derived from the capture time.
struct Vp8Packetizer {
    ssrc: u32,
    state: RtpState,
}

impl Vp8Packetizer {
    fn new(ssrc: u32, state: RtpState) -> Self {
        Self { ssrc, state }
    }

    /// The payloads of one frame: `data` split to fit `max_payload` bytes each, descriptor
    /// included.
    fn payloads(&mut self, data: &[u8], max_payload: usize) -> Vec<Bytes> {
        let fragment = max_payload.saturating_sub(VP8_DESCRIPTOR).max(1);
        let picture_id = self.state.picture_id & 0x7FFF;
        self.state.picture_id = (picture_id + 1) & 0x7FFF;
        data.chunks(fragment)
            .enumerate()
            .map(|(i, chunk)| {
                let mut out = BytesMut::with_capacity(VP8_DESCRIPTOR + chunk.len());
                // X (extension present), S on the first packet of the frame, partition 0.
                out.put_u8(if i == 0 { 0x90 } else { 0x80 });
                // I: picture id present.
                out.put_u8(0x80);
                // M = 1: the 15-bit form.
                out.put_u16(0x8000 | picture_id);
                out.put_slice(chunk);
                out.freeze()
            })
            .collect()
    }

    fn packetize(&mut self, frame: &EncodedFrame) -> Vec<rtc::rtp::Packet> {
        let first = *self
            .state
            .first_capture_micros
            .get_or_insert(frame.capture_micros);
        let ticks =
            frame.capture_micros.saturating_sub(first) * u64::from(VP8_CLOCK_RATE) / 1_000_000;
        // RTP timestamps wrap at 2^32 by design.
        let mut timestamp = self.state.timestamp_base.wrapping_add(ticks as u32);
        if let Some(last) = self.state.last_timestamp
            && timestamp.wrapping_sub(last) as i32 <= 0
        {
            // Two frames must never share a timestamp: a receiver would merge them.
            timestamp = last.wrapping_add(1);
        }
        self.state.last_timestamp = Some(timestamp);
        if frame.data.is_empty() {
            return Vec::new();
        }
        let payloads = self.payloads(&frame.data, RTP_MTU - RTP_HEADER - EXTENSIONS_RESERVE);
        let count = payloads.len();
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let sequence_number = self.state.sequence;
                self.state.sequence = self.state.sequence.wrapping_add(1);
                rtc::rtp::Packet {
                    header: rtc::rtp::Header {
                        version: 2,
                        marker: i + 1 == count,
                        payload_type: VP8_PT,
                        sequence_number,
                        timestamp,
                        ssrc: self.ssrc,
                        ..Default::default()
                    },
                    payload,
                }
            })
            .collect()
    }
}

/// Settings of a published video track.
#[derive(Debug, Clone, Copy)]
pub struct VideoSendSettings {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second the source is sampled at.
    pub fps: u32,
    /// Encoder target bitrate (of the full-size layer of a simulcast track).
    pub target_kbps: u32,
}

/// Creates a screen share's encoder: libvpx's screen-content settings
/// ([`Vp8Config::screen`]) at the settings' size and bitrate.
pub fn new_screen_encoder(settings: &VideoSendSettings) -> Result<Vp8Encoder, Vp8Error> {
    let mut config = Vp8Config::screen(settings.width, settings.height, settings.target_kbps);
    config.fps = settings.fps.max(1);
    Vp8Encoder::new(config)
}

/// Creates the encoder (fails early on a bad configuration).
pub fn new_encoder(settings: &VideoSendSettings) -> Result<Vp8Encoder, Vp8Error> {
    let mut config = Vp8Config::new(settings.width, settings.height, settings.target_kbps);
    config.fps = settings.fps.max(1);
    Vp8Encoder::new(config)
}

/// Spawns the sending task and the keyframe-request watcher of one single-layer video track
/// (see [`spawn_layered_sender`]).
// Each argument is a different part of the track (its binding, source, encoder, settings,
// numbering, control, end reports, kind): bundling them would only move the list elsewhere.
#[allow(clippy::too_many_arguments)]
pub fn spawn_video_sender(
    binding: TrackBinding,
    source: Box<dyn VideoSource>,
    encoder: Vp8Encoder,
    settings: VideoSendSettings,
    ssrc: u32,
    control: Arc<VideoControl>,
    ended: EndReports,
    screen: bool,
) -> Vec<JoinHandle<()>> {
    spawn_layered_sender(
        binding,
        source,
        encoder,
        settings,
        vec![LayerSpec::single(ssrc)],
        control,
        ended,
        screen,
    )
}

/// Spawns the sending task and the keyframe-request watcher of one video track sent as
/// `layers` (one for a plain track, [`camera_layers`] for simulcast). `encoder` is the
/// full-size layer's; the others are made from its settings when first needed. Frames are
/// only produced while there is a connected track to write to (`binding`) and the track is
/// enabled. The track's identity (in [`Ended`] reports) is its full-size layer's SSRC.
#[allow(clippy::too_many_arguments)]
pub fn spawn_layered_sender(
    binding: TrackBinding,
    source: Box<dyn VideoSource>,
    encoder: Vp8Encoder,
    settings: VideoSendSettings,
    layers: Vec<LayerSpec>,
    control: Arc<VideoControl>,
    ended: EndReports,
    screen: bool,
) -> Vec<JoinHandle<()>> {
    let mut layers = layers;
    if layers.is_empty() {
        layers.push(LayerSpec::single(rand::random::<u32>() | 1));
    }
    *lock(&control.layer_ssrcs) = layers.iter().map(|l| l.ssrc).collect();
    {
        let mut stats = lock(&control.layer_stats);
        if stats.len() != layers.len() {
            *stats = layers
                .iter()
                .map(|l| LayerStats {
                    rid: l.rid,
                    ssrc: l.ssrc,
                    ..Default::default()
                })
                .collect();
        }
    }
    // Encode and write the largest layer first.
    let mut order = layers.clone();
    order.sort_by_key(|l| l.divisor);
    let ssrc = order[0].ssrc;
    let top_config = encoder.config().clone();
    *lock(&control.nominal_kbps) = layers
        .iter()
        .map(|l| l.target_kbps(top_config.target_kbps))
        .collect();
    for (stats, layer) in lock(&control.layer_stats).iter_mut().zip(&layers) {
        if stats.target_kbps == 0 && !stats.paused_by_budget {
            stats.target_kbps = layer.target_kbps(top_config.target_kbps);
        }
    }
    let mut encoders: Vec<LayerEncoder> = order
        .iter()
        .map(|&spec| LayerEncoder {
            spec,
            encoder: None,
        })
        .collect();
    encoders[0].encoder = Some(encoder);
    let span = tracing::debug_span!("video_send", ssrc, screen, layers = order.len());
    let watcher = watch_keyframe_requests(binding.clone(), Arc::clone(&control));
    let sender = video_send_loop(
        binding,
        EncodeStage {
            source,
            layers: encoders,
            top_config,
            control: Arc::clone(&control),
            screen: screen.then(ScreenPrep::default),
            replay_waiting: 0,
        },
        settings,
        ssrc,
        control,
        ended,
    );
    vec![
        tokio::spawn(sender.instrument(span.clone())),
        tokio::spawn(watcher.instrument(span)),
    ]
}

/// Runs one blocking step of a send stage (pull from a device, encode) on the blocking pool and
/// hands the stage back with the result; `None` if the task panicked (the loop then ends).
async fn on_blocking_pool<S: Send + 'static, R: Send + 'static>(
    mut stage: S,
    step: impl FnOnce(&mut S) -> R + Send + 'static,
) -> Option<(S, R)> {
    let joined = tokio::task::spawn_blocking(move || {
        let result = step(&mut stage);
        (stage, result)
    })
    .await;
    match joined {
        Ok(pair) => Some(pair),
        Err(e) => {
            tracing::error!("{}", PublishError::Task(e.to_string()));
            None
        }
    }
}

/// Waits until `binding` holds a track; `None` if the room dropped the binding.
async fn connected_track(binding: &mut TrackBinding) -> Option<Arc<TrackLocalStaticRTP>> {
    loop {
        if let Some(track) = binding.borrow_and_update().clone() {
            return Some(track);
        }
        binding.changed().await.ok()?;
    }
}

/// Writes `packets` to `track`; returns how many were written.
async fn write_packets(track: &TrackLocalStaticRTP, packets: Vec<rtc::rtp::Packet>) -> u64 {
    let mut written = 0u64;
    for packet in packets {
        if let Err(e) = track.write_rtp(packet).await {
            tracing::debug!("write_rtp failed: {e}");
            break;
        }
        written += 1;
    }
    written
}

async fn video_send_loop(
    mut binding: TrackBinding,
    stage: EncodeStage,
    settings: VideoSendSettings,
    ssrc: u32,
    control: Arc<VideoControl>,
    ended: EndReports,
) {
    let mut failures = Failures::default();
    let device = if stage.screen.is_some() {
        "shared screen"
    } else {
        "camera"
    };
    let period = Duration::from_micros(1_000_000 / u64::from(settings.fps.max(1)));
    let mut stage = stage;
    // A recording paces itself (it sleeps until each frame is due): the ticker only bounds the
    // loop, four times faster, so that a replay that fell behind (starved of CPU) catches up
    // instead of staying behind for good.
    let period = if stage.source.encoded().is_some() {
        period / 4
    } else {
        period
    };
    let mut ticker = tokio::time::interval(period);
    // An encoder that falls behind skips ticks instead of bursting to catch up.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // One packetizer per layer, in the stage's order.
    let mut packetizers: Vec<(LayerSpec, Vp8Packetizer)> = stage
        .layers
        .iter()
        .map(|l| {
            let state = control.rtp_state(l.spec.ssrc, ssrc);
            (l.spec, Vp8Packetizer::new(l.spec.ssrc, state))
        })
        .collect();
    let order = lock(&control.layer_ssrcs).clone();
    let simulcast = packetizers.len() > 1;
    let mut stage = Some(stage);
    let mut bound: Option<Arc<TrackLocalStaticRTP>> = None;
    let mut labels = Labels::default();
    let mut last_paused = 0u32;
    loop {
        ticker.tick().await;
        let current = binding.borrow_and_update().clone();
        let track = match current {
            Some(track) => track,
            None => {
                bound = None;
                // Nothing to send to: wait for a connection instead of ticking idly.
                if connected_track(&mut binding).await.is_none() {
                    return;
                }
                continue;
            }
        };
        if bound.as_ref().is_none_or(|b| !Arc::ptr_eq(b, &track)) {
            // (Re)connected: receivers need a keyframe to start from.
            control.request_keyframe();
            bound = Some(Arc::clone(&track));
            labels = Labels::default();
        }
        if !labels.resolved {
            labels = Labels::of(&control, &track).await;
        }
        if !control.enabled() {
            continue;
        }
        let Some(current) = stage.take() else {
            return;
        };
        let keyframes = control.keyframe_wanted.swap(0, Ordering::SeqCst);
        let paused = combined_pauses(
            control.paused_layers.load(Ordering::SeqCst),
            control.budget_paused.load(Ordering::SeqCst),
            order.len(),
        );
        // A layer that starts again (whichever said so) starts with a keyframe.
        let keyframes = keyframes | (last_paused & !paused);
        last_paused = paused;
        let rates = lock(&control.budget_rates).clone();
        let swap = control.swap.take();
        let step_order = order.clone();
        let Some((current, result)) = on_blocking_pool(current, move |stage| {
            stage.step(keyframes, paused, &rates, swap, &step_order)
        })
        .await
        else {
            let _ = ended.send(Ended::new(
                ssrc,
                MediaKind::Video,
                "the video encoder task failed",
            ));
            return;
        };
        let mut current = current;
        let sizes = current.sizes();
        stage = Some(current);
        let frames = match failures.judge(MediaKind::Video, device, ssrc, result, &ended) {
            Outcome::Frame(frames) => frames,
            Outcome::Skip => continue,
            Outcome::Stop => return,
        };
        let mut layers_sent = 0u32;
        for (index, frame) in frames {
            let Some((spec, packetizer)) = packetizers.get_mut(index) else {
                continue;
            };
            let mut packets = packetizer.packetize(&frame);
            control.save_rtp_state(spec.ssrc, packetizer.state);
            let rid = if simulcast { spec.rid } else { None };
            for packet in &mut packets {
                labels.apply(packet, rid);
            }
            let total = packets.len() as u64;
            let written = write_packets(&track, packets).await;
            control.packets_sent.fetch_add(written, Ordering::Relaxed);
            let mut stats = lock(&control.layer_stats);
            let layer = stats.iter_mut().find(|s| s.ssrc == spec.ssrc);
            if let Some(layer) = layer {
                layer.packets_sent += written;
            }
            if written < total {
                // A receiver got a partial frame: what follows cannot be decoded without a
                // keyframe.
                drop(stats);
                control.request_keyframe_for(spec.ssrc);
                continue;
            }
            if let Some(layer) = stats.iter_mut().find(|s| s.ssrc == spec.ssrc) {
                layer.frames_sent += 1;
                layer.bytes_sent += frame.data.len() as u64;
                layer.keyframes_sent += u64::from(frame.keyframe);
                (layer.width, layer.height) = sizes.get(index).copied().unwrap_or_default();
            }
            drop(stats);
            layers_sent += 1;
            control
                .bytes_sent
                .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
            if frame.keyframe {
                control.keyframes_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        if layers_sent > 0 {
            control.frames_sent.fetch_add(1, Ordering::Relaxed);
            control.layers_sent.store(layers_sent, Ordering::Relaxed);
        }
    }
}

/// The layers not encoded (one bit per layer, lowest layer first) when the server (dynacast)
/// pauses `dynacast` and the uplink budget `budget`: a layer is encoded only if both want it.
/// If that leaves nothing while the server wants some layer, the highest layer the budget
/// allows is encoded after all: the server wants only layers the uplink cannot carry (its
/// subscribers are on them), and without a layer to move them to it would wait for them
/// forever while the layer it could use stays paused by dynacast.
pub fn combined_pauses(dynacast: u32, budget: u32, layers: usize) -> u32 {
    let all = match layers {
        0 => return 0,
        n if n >= 32 => u32::MAX,
        n => (1u32 << n) - 1,
    };
    let paused = (dynacast | budget) & all;
    if paused != all || dynacast & all == all || budget & all == all {
        return paused;
    }
    let allowed = !budget & all;
    let highest = 31 - allowed.leading_zeros();
    paused & !(1 << highest)
}

/// The SSRCs a keyframe request names (PLI's media SSRC, FIR's entries); empty for anything
/// else.
fn requested_ssrcs(packet: &dyn rtc::rtcp::Packet) -> Vec<u32> {
    let any = packet.as_any();
    if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
        return vec![pli.media_ssrc];
    }
    if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
        return fir.fir.iter().map(|e| e.ssrc).collect();
    }
    Vec::new()
}

/// Turns PLI/FIR on the bound track into "next frame of that layer is a keyframe", following
/// the binding across reconnections.
async fn watch_keyframe_requests(mut binding: TrackBinding, control: Arc<VideoControl>) {
    loop {
        let Some(track) = connected_track(&mut binding).await else {
            return;
        };
        loop {
            tokio::select! {
                changed = binding.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                event = track.poll() => match event {
                    Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                        let mut requests = 0u64;
                        for packet in packets.iter().filter(|p| is_keyframe_request(p.as_ref())) {
                            requests += 1;
                            let ssrcs = requested_ssrcs(packet.as_ref());
                            if ssrcs.is_empty() {
                                control.request_keyframe();
                            }
                            for ssrc in ssrcs {
                                control.request_keyframe_for(ssrc);
                            }
                        }
                        if requests > 0 {
                            tracing::debug!(requests, "keyframe requested");
                            control
                                .keyframe_requests
                                .fetch_add(requests, Ordering::Relaxed);
                        }
                    }
                    Some(_) => {}
                    // Not bound to a negotiated sender yet (or unbound): look again shortly.
                    None => tokio::time::sleep(Duration::from_millis(50)).await,
                },
            }
        }
    }
}

/// Opus RTP: one packet per 20 ms frame, PT 111, 48 kHz timestamps from the capture time.
struct OpusPacketizer {
    ssrc: u32,
    state: RtpState,
}

impl OpusPacketizer {
    fn new(ssrc: u32, state: RtpState) -> Self {
        Self { ssrc, state }
    }

    fn packetize(&mut self, payload: Vec<u8>, capture_micros: u64) -> rtc::rtp::Packet {
        let first = *self
            .state
            .first_capture_micros
            .get_or_insert(capture_micros);
        let ticks = capture_micros.saturating_sub(first) * u64::from(SAMPLE_RATE) / 1_000_000;
        // RTP timestamps wrap at 2^32 by design.
        let mut timestamp = self.state.timestamp_base.wrapping_add(ticks as u32);
        if let Some(last) = self.state.last_timestamp
            && timestamp.wrapping_sub(last) as i32 <= 0
        {
            timestamp = last.wrapping_add(FRAME_SAMPLES as u32);
        }
        // After a pause (mute), the first packet of a talk spurt carries the marker bit.
        let marker = self
            .state
            .last_timestamp
            .is_none_or(|last| timestamp.wrapping_sub(last) > 2 * FRAME_SAMPLES as u32);
        self.state.last_timestamp = Some(timestamp);
        let sequence_number = self.state.sequence;
        self.state.sequence = self.state.sequence.wrapping_add(1);
        rtc::rtp::Packet {
            header: rtc::rtp::Header {
                version: 2,
                marker,
                payload_type: OPUS_PT,
                sequence_number,
                timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        }
    }
}

/// The part of the audio publish path that blocks: pulling 20 ms and encoding it.
struct AudioStage {
    source: Box<dyn AudioSource>,
    encoder: OpusEncoder,
    control: Arc<AudioControl>,
    meter: LevelMeter,
    /// An encoded source's next capture time (its packets carry none; 20 ms apart).
    replay_micros: Option<u64>,
}

impl AudioStage {
    fn step(
        &mut self,
        swap: Option<Box<dyn AudioSource>>,
    ) -> Result<(Vec<u8>, u64, AudioLevelExtension), PublishError> {
        if let Some(source) = swap {
            self.source = source;
        }
        if let Some(source) = self.source.encoded() {
            let packet = source.next_packet()?;
            let capture = self
                .replay_micros
                .unwrap_or_else(crate::media::unix_micros_now);
            self.replay_micros = Some(capture + FRAME_MICROS);
            self.control
                .level_bits
                .store(packet.level_dbov.to_bits(), Ordering::Relaxed);
            self.control.speaking.store(packet.voice, Ordering::Relaxed);
            let level = audio_level(packet.level_dbov, packet.voice);
            return Ok((packet.payload, capture, level));
        }
        self.replay_micros = None;
        let frame = self.source.next_frame()?;
        let level = self.meter.update(&frame.samples);
        let frame_level = audio_level(
            crate::audio::analysis::level_dbov(&frame.samples),
            self.meter.is_speaking(),
        );
        self.control
            .level_bits
            .store(level.to_bits(), Ordering::Relaxed);
        self.control
            .speaking
            .store(self.meter.is_speaking(), Ordering::Relaxed);
        let packet = self
            .encoder
            .encode(&frame)
            .map_err(|e| PublishError::Task(format!("Opus encoder: {e}")))?;
        Ok((packet, frame.capture_micros, frame_level))
    }
}

/// The RFC 6464 audio level of a frame at `dbov` (its RMS level, −127..=0): the level as
/// −dBov, 0 (loudest) to 127 (silence), and the voice-activity flag.
pub fn audio_level(dbov: f32, voice: bool) -> AudioLevelExtension {
    let level = if dbov.is_finite() {
        (-dbov).round().clamp(0.0, 127.0) as u8
    } else {
        127
    };
    AudioLevelExtension { level, voice }
}

/// Spawns the sending task of one audio track: every 20 ms, one frame from `source`, encoded to
/// one Opus packet, written to the bound track while the track is enabled. A live source (a
/// microphone) blocks in `next_frame` until its 20 ms are captured, so its device clock paces
/// the loop; a synthetic source is paced by the 20 ms interval.
pub fn spawn_audio_sender(
    binding: TrackBinding,
    source: Box<dyn AudioSource>,
    encoder: OpusEncoder,
    ssrc: u32,
    control: Arc<AudioControl>,
    ended: EndReports,
) -> JoinHandle<()> {
    let span = tracing::debug_span!("audio_send", ssrc);
    tokio::spawn(
        audio_send_loop(
            binding,
            AudioStage {
                source,
                encoder,
                control: Arc::clone(&control),
                meter: LevelMeter::default(),
                replay_micros: None,
            },
            ssrc,
            control,
            ended,
        )
        .instrument(span),
    )
}

async fn audio_send_loop(
    mut binding: TrackBinding,
    stage: AudioStage,
    ssrc: u32,
    control: Arc<AudioControl>,
    ended: EndReports,
) {
    let mut ticker = tokio::time::interval(Duration::from_micros(FRAME_MICROS));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut packetizer = OpusPacketizer::new(ssrc, control.rtp_state(ssrc, ssrc));
    let mut bound: Option<Arc<TrackLocalStaticRTP>> = None;
    let mut labels = Labels::default();
    let mut live = stage.source.is_live();
    let mut stage = Some(stage);
    let mut failures = Failures::default();
    loop {
        if !live {
            ticker.tick().await;
        }
        if binding.has_changed().is_err() {
            // The room is gone.
            return;
        }
        let track = binding.borrow_and_update().clone();
        if track.is_none() && !live {
            // A synthetic source can simply wait for a connection.
            if connected_track(&mut binding).await.is_none() {
                return;
            }
            continue;
        }
        let Some(current) = stage.take() else {
            return;
        };
        let swap = control.swap.take();
        let enabled = control.enabled();
        // A live source is read even while muted or unconnected, so that its buffer never holds
        // stale audio that would play late afterwards; the frames are dropped.
        let Some((current, result)) =
            on_blocking_pool(current, move |stage| stage.step(swap)).await
        else {
            let _ = ended.send(Ended::new(
                ssrc,
                MediaKind::Audio,
                "the audio encoder task failed",
            ));
            return;
        };
        live = current.source.is_live();
        stage = Some(current);
        let (payload, capture_micros, level) =
            match failures.judge(MediaKind::Audio, "microphone", ssrc, result, &ended) {
                Outcome::Frame(encoded) => encoded,
                Outcome::Skip => {
                    if live {
                        // Do not spin on a failing device.
                        tokio::time::sleep(Duration::from_micros(FRAME_MICROS)).await;
                    }
                    continue;
                }
                Outcome::Stop => return,
            };
        let Some(track) = track.filter(|_| enabled) else {
            continue;
        };
        if bound.as_ref().is_none_or(|b| !Arc::ptr_eq(b, &track)) {
            bound = Some(Arc::clone(&track));
            labels = Labels::default();
        }
        if !labels.resolved {
            labels = Labels::of(&control, &track).await;
        }
        let bytes = payload.len() as u64;
        let mut packet = packetizer.packetize(payload, capture_micros);
        control.save_rtp_state(ssrc, packetizer.state);
        labels.apply(&mut packet, None);
        if let Some(id) = labels.audio_level_id {
            let mut buf = BytesMut::zeroed(level.marshal_size());
            if level.marshal_to(&mut buf).is_ok() {
                let _ = packet.header.set_extension(id, buf.freeze());
            }
        }
        if write_packets(&track, vec![packet]).await == 1 {
            control.packets_sent.fetch_add(1, Ordering::Relaxed);
            control.frames_sent.fetch_add(1, Ordering::Relaxed);
            control.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

/// A send loop that stopped for good: which track (by SSRC), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The track's SSRC.
    pub ssrc: u32,
    /// Audio or video.
    pub kind: MediaKind,
    /// Why, for a person.
    pub reason: String,
}

impl Ended {
    fn new(ssrc: u32, kind: MediaKind, reason: impl Into<String>) -> Self {
        Self {
            ssrc,
            kind,
            reason: reason.into(),
        }
    }
}

/// Where a send loop reports that it stopped for good.
pub type EndReports = mpsc::UnboundedSender<Ended>;

/// Consecutive failed frames before a send loop gives up on its source.
const MAX_FAILURES: u32 = 50;

/// Counts consecutive failures of a source; after [`MAX_FAILURES`] the loop gives up.
#[derive(Default)]
struct Failures(u32);

/// What a send loop does with the result of one step.
enum Outcome<T> {
    /// Send it.
    Frame(T),
    /// Skip this frame.
    Skip,
    /// The source is gone or keeps failing: stop (the room has been told).
    Stop,
}

impl Failures {
    /// Judges one step's result; a source that ended or failed [`MAX_FAILURES`] times in a row
    /// is reported on `ended`.
    fn judge<T>(
        &mut self,
        kind: MediaKind,
        device: &str,
        ssrc: u32,
        result: Result<T, PublishError>,
        ended: &EndReports,
    ) -> Outcome<T> {
        match result {
            Ok(frame) => {
                self.0 = 0;
                Outcome::Frame(frame)
            }
            Err(PublishError::Source(SourceError::Ended)) => {
                tracing::info!("{device} source ended");
                let _ = ended.send(Ended::new(ssrc, kind, format!("the {device} stopped")));
                Outcome::Stop
            }
            Err(e) => {
                self.0 += 1;
                if self.0 == 1 {
                    tracing::warn!("{device} frame skipped: {e}");
                }
                if self.0 >= MAX_FAILURES {
                    let _ = ended.send(Ended::new(
                        ssrc,
                        kind,
                        format!("the {device} keeps failing: {e}"),
                    ));
                    return Outcome::Stop;
                }
                Outcome::Skip
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(capture_micros: u64, len: usize) -> EncodedFrame {
        EncodedFrame {
            data: vec![0x10; len],
            keyframe: false,
            capture_micros,
            frame_number: 0,
        }
    }

    #[test]
    fn picture_ids_are_always_fifteen_bits() {
        let mut state = RtpState::new();
        state.picture_id = 0;
        let mut p = Vp8Packetizer::new(7, state);
        for expected in 0u16..200 {
            let packets = p.packetize(&frame(1_000_000 + u64::from(expected) * 33_333, 2000));
            assert_eq!(packets.len(), 2);
            for (i, packet) in packets.iter().enumerate() {
                let d = &packet.payload;
                assert_eq!(d[0] & 0x80, 0x80, "X bit");
                assert_eq!(d[0] & 0x10 != 0, i == 0, "S bit on the first packet only");
                assert_eq!(d[1] & 0x80, 0x80, "I bit");
                assert_eq!(d[2] & 0x80, 0x80, "M bit at picture id {expected}");
                assert_eq!(u16::from_be_bytes([d[2], d[3]]) & 0x7FFF, expected);
            }
        }
        // Wraps at 15 bits.
        let mut state = RtpState::new();
        state.picture_id = 0x7FFF;
        let mut p = Vp8Packetizer::new(7, state);
        let a = p.packetize(&frame(1, 10));
        let b = p.packetize(&frame(2, 10));
        assert_eq!(&a[0].payload[2..4], &[0xFF, 0xFF]);
        assert_eq!(&b[0].payload[2..4], &[0x80, 0x00]);
    }

    #[test]
    fn audio_levels_follow_rfc_6464() {
        assert_eq!(
            audio_level(0.0, true),
            AudioLevelExtension {
                level: 0,
                voice: true
            }
        );
        assert_eq!(audio_level(-30.4, false).level, 30);
        assert_eq!(audio_level(-127.0, false).level, 127);
        assert_eq!(audio_level(-300.0, false).level, 127);
        assert_eq!(audio_level(f32::NAN, false).level, 127);
    }

    #[test]
    fn layer_sizes_and_rates() {
        let layers = camera_layers(5);
        assert_eq!(
            layers.iter().map(|l| l.rid).collect::<Vec<_>>(),
            [Some("q"), Some("h"), Some("f")]
        );
        assert_eq!(layers[2].ssrc, 5);
        assert!(layers[0].ssrc != layers[1].ssrc && layers[0].ssrc != 5);
        let sizes: Vec<_> = layers.iter().map(|l| l.size(1280, 720)).collect();
        assert_eq!(
            sizes,
            [Some((320, 180)), Some((640, 360)), Some((1280, 720))]
        );
        assert_eq!(layers[0].size(640, 360), Some((160, 90)));
        assert_eq!(layers[0].size(320, 240), None);
        assert_eq!(layers[1].size(320, 240), Some((160, 120)));
        assert_eq!(
            layers
                .iter()
                .map(|l| l.target_kbps(1500))
                .collect::<Vec<_>>(),
            [150, 500, 1500]
        );
        assert_eq!(layers[0].target_kbps(300), 60);
        assert_eq!(layers[1].target_kbps(100), 100);
    }

    #[test]
    fn a_layer_is_sent_when_both_want_it_or_else_the_best_the_budget_allows() {
        // Bits: 0 = quarter, 1 = half, 2 = full.
        assert_eq!(combined_pauses(0b000, 0b000, 3), 0b000);
        assert_eq!(combined_pauses(0b011, 0b000, 3), 0b011);
        assert_eq!(combined_pauses(0b100, 0b110, 3), 0b110);
        // The server wants the full layer only, the budget allows the quarter only: the
        // quarter goes out so the server has something to move its subscribers to.
        assert_eq!(combined_pauses(0b011, 0b110, 3), 0b110);
        assert_eq!(combined_pauses(0b001, 0b100, 3), 0b101);
        // Nobody wants the track at all: nothing.
        assert_eq!(combined_pauses(0b111, 0b110, 3), 0b111);
        assert_eq!(combined_pauses(0b1, 0b0, 1), 0b1);
        assert_eq!(combined_pauses(0b0, 0b0, 0), 0);
    }

    #[test]
    fn packetizer_splits_marks_and_stamps() {
        let mut p = Vp8Packetizer::new(42, RtpState::new());
        let a = p.packetize(&frame(1_000_000, 3000));
        assert_eq!(a.len(), 3);
        assert!(
            a.iter()
                .all(|x| x.header.ssrc == 42 && x.payload.len() <= 1188)
        );
        assert_eq!(
            a.iter().map(|x| x.header.marker).collect::<Vec<_>>(),
            [false, false, true]
        );
        let b = p.packetize(&frame(1_033_333, 100));
        assert_eq!(b.len(), 1);
        assert_eq!(
            b[0].header.sequence_number,
            a[2].header.sequence_number.wrapping_add(1)
        );
        assert_eq!(
            b[0].header.timestamp.wrapping_sub(a[0].header.timestamp),
            2999
        );
        // The same capture time again still advances the timestamp.
        let c = p.packetize(&frame(1_033_333, 100));
        assert_eq!(c[0].header.timestamp.wrapping_sub(b[0].header.timestamp), 1);
    }
}
