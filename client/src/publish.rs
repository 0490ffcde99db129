//! The publish paths.
//!
//! - Video: [`VideoSource`] → [`Vp8Encoder`] (on the blocking pool) → RTP (VP8 payloader, 90 kHz
//!   clock from the capture time) → `TrackLocalStaticRTP`, paced by a tokio interval at the
//!   source's frame rate. Keyframe requests (PLI/FIR surfaced by
//!   [`KeyframeRequestTap`](crate::peer::KeyframeRequestTap)) make the next frame a keyframe.
//! - Audio: [`AudioSource`] → [`OpusEncoder`] → one RTP packet per 20 ms (48 kHz clock).
//!
//! Senders outlive a media session: they write to whatever track the room binds
//! ([`TrackBinding`]), so a reconnection swaps the track under them without restarting the
//! source or the encoder.

use crate::audio::analysis::{LevelMeter, SILENCE_DBOV};
use crate::media::I420Frame;
use crate::media::opus::{FRAME_MICROS, FRAME_SAMPLES, SAMPLE_RATE};
use crate::media::{
    AudioSource, EncodedFrame, OpusEncoder, SourceError, VideoSource, Vp8Config, Vp8Encoder,
    Vp8Error,
};
use crate::peer::{OPUS_PT, VP8_CLOCK_RATE, VP8_PT, is_keyframe_request};
use bytes::Bytes;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::Payloader;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;
use videoroom_protocol::MediaKind;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

/// RTP packets are at most this large (header included), well under a 1500-byte path MTU once
/// SRTP, UDP, IP and any TURN framing are added.
const RTP_MTU: usize = 1200;
const RTP_HEADER: usize = 12;

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

/// Shared state between the room, the handle and the sending task of one local track.
pub struct SendControl<S: ?Sized> {
    enabled: AtomicBool,
    keyframe_wanted: AtomicBool,
    frames_sent: AtomicU64,
    keyframes_sent: AtomicU64,
    keyframe_requests: AtomicU64,
    packets_sent: AtomicU64,
    bytes_sent: AtomicU64,
    swap: SourceSwap<S>,
    rtp: Mutex<RtpState>,
    /// Video: the newest captured frame (self view).
    preview: watch::Sender<Option<Arc<I420Frame>>>,
    /// Audio: the smoothed capture level, dBov as `f32` bits, and whether it counts as speech.
    level_bits: AtomicU32,
    speaking: AtomicBool,
}

/// Counters of a local track.
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
}

impl<S: ?Sized> SendControl<S> {
    /// A control for a track that starts enabled (sending) or not.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled: AtomicBool::new(enabled),
            keyframe_wanted: AtomicBool::new(false),
            frames_sent: AtomicU64::new(0),
            keyframes_sent: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            swap: SourceSwap::new(),
            rtp: Mutex::new(RtpState::new()),
            preview: watch::channel(None).0,
            level_bits: AtomicU32::new(SILENCE_DBOV.to_bits()),
            speaking: AtomicBool::new(false),
        }
    }

    /// Starts or stops sending frames. Resuming starts with a keyframe.
    pub fn set_enabled(&self, enabled: bool) {
        let was = self.enabled.swap(enabled, Ordering::SeqCst);
        if enabled && !was {
            self.keyframe_wanted.store(true, Ordering::SeqCst);
        }
    }

    /// Whether frames are being sent.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// Makes the next frame a keyframe.
    pub fn request_keyframe(&self) {
        self.keyframe_wanted.store(true, Ordering::SeqCst);
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

    fn rtp_state(&self) -> RtpState {
        *self.rtp.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save_rtp_state(&self, state: RtpState) {
        *self.rtp.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// The counters so far.
    pub fn stats(&self) -> SendStats {
        SendStats {
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            keyframes_sent: self.keyframes_sent.load(Ordering::Relaxed),
            keyframe_requests: self.keyframe_requests.load(Ordering::Relaxed),
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
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

/// The part of the video publish path that blocks: pulling a frame and encoding it.
struct EncodeStage {
    source: Box<dyn VideoSource>,
    encoder: Vp8Encoder,
    control: Arc<VideoControl>,
    /// A screen share's scaling and motion gate (`None` for a camera).
    screen: Option<ScreenPrep>,
}

impl EncodeStage {
    fn step(
        &mut self,
        keyframe: bool,
        swap: Option<Box<dyn VideoSource>>,
    ) -> Result<Option<EncodedFrame>, PublishError> {
        if let Some(source) = swap {
            self.source = source;
        }
        let mut frame = self.source.next_frame()?;
        if let Some(prep) = self.screen.as_mut() {
            if let std::borrow::Cow::Owned(scaled) = prep.scaler.fit(&frame)? {
                frame = scaled;
            }
            let decision = prep
                .gate
                .observe(&frame, std::time::Instant::now(), keyframe);
            if !decision.should_encode() {
                return Ok(None);
            }
        }
        let config = self.encoder.config();
        if frame.width() != config.width || frame.height() != config.height {
            // A new source (device switch, a file) with another size: a new encoder at that
            // size, same rate settings. Its first frame is a keyframe.
            let mut config = config.clone();
            config.width = frame.width();
            config.height = frame.height();
            tracing::info!(
                width = config.width,
                height = config.height,
                "video size changed; new encoder"
            );
            self.encoder = Vp8Encoder::new(config)?;
        }
        if keyframe {
            self.encoder.force_keyframe();
        }
        let encoded = self.encoder.encode(&frame)?;
        self.control.preview.send_replace(Some(Arc::new(frame)));
        Ok(encoded)
    }
}

/// The RTP numbering of a local track: kept in its [`SendControl`] so that a restarted send
/// loop (a new source after the old one stopped) continues the sequence numbers and timestamps
/// instead of jumping (SRTP would take a restarted sequence for replays and drop it).
#[derive(Debug, Clone, Copy)]
pub struct RtpState {
    sequence: u16,
    timestamp_base: u32,
    first_capture_micros: Option<u64>,
    last_timestamp: Option<u32>,
}

impl RtpState {
    fn new() -> Self {
        Self {
            sequence: rand::random(),
            timestamp_base: rand::random(),
            first_capture_micros: None,
            last_timestamp: None,
        }
    }
}

/// Turns VP8 frames into RTP packets: VP8 payload descriptor with picture id, our SSRC, a
/// sequence number from a random start, and a 90 kHz timestamp derived from the capture time.
struct Vp8Packetizer {
    payloader: Vp8Payloader,
    ssrc: u32,
    state: RtpState,
}

impl Vp8Packetizer {
    fn new(ssrc: u32, state: RtpState) -> Self {
        let mut payloader = Vp8Payloader::default();
        payloader.enable_picture_id = true;
        Self {
            payloader,
            ssrc,
            state,
        }
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
        let payloads = match self
            .payloader
            .payload(RTP_MTU - RTP_HEADER, &Bytes::copy_from_slice(&frame.data))
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("VP8 payloader refused a frame: {e}");
                return Vec::new();
            }
        };
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
    /// Encoder target bitrate.
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

/// Spawns the sending task and the keyframe-request watcher of one video track. Frames are only
/// produced while there is a connected track to write to (`binding`) and the track is enabled.
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
    let span = tracing::debug_span!("video_send", ssrc, screen);
    let watcher = watch_keyframe_requests(binding.clone(), Arc::clone(&control));
    let sender = video_send_loop(
        binding,
        EncodeStage {
            source,
            encoder,
            control: Arc::clone(&control),
            screen: screen.then(ScreenPrep::default),
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
    let mut ticker = tokio::time::interval(period);
    // An encoder that falls behind skips ticks instead of bursting to catch up.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut packetizer = Vp8Packetizer::new(ssrc, control.rtp_state());
    let mut stage = Some(stage);
    let mut bound: Option<Arc<TrackLocalStaticRTP>> = None;
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
        }
        if !control.enabled() {
            continue;
        }
        let Some(current) = stage.take() else {
            return;
        };
        let keyframe = control.keyframe_wanted.swap(false, Ordering::SeqCst);
        let swap = control.swap.take();
        let Some((current, result)) =
            on_blocking_pool(current, move |stage| stage.step(keyframe, swap)).await
        else {
            let _ = ended.send(Ended::new(
                ssrc,
                MediaKind::Video,
                "the video encoder task failed",
            ));
            return;
        };
        stage = Some(current);
        let frame = match failures.judge(MediaKind::Video, device, ssrc, result, &ended) {
            Outcome::Frame(Some(frame)) => frame,
            Outcome::Frame(None) | Outcome::Skip => continue,
            Outcome::Stop => return,
        };
        let packets = packetizer.packetize(&frame);
        control.save_rtp_state(packetizer.state);
        let total = packets.len() as u64;
        let written = write_packets(&track, packets).await;
        control.packets_sent.fetch_add(written, Ordering::Relaxed);
        if written < total {
            // A receiver got a partial frame: what follows cannot be decoded without a keyframe.
            control.request_keyframe();
            continue;
        }
        control
            .bytes_sent
            .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
        control.frames_sent.fetch_add(1, Ordering::Relaxed);
        if frame.keyframe {
            control.keyframes_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Turns PLI/FIR on the bound track into "next frame is a keyframe", following the binding
/// across reconnections.
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
                        let requests = packets
                            .iter()
                            .filter(|p| is_keyframe_request(p.as_ref()))
                            .count() as u64;
                        if requests > 0 {
                            tracing::debug!(requests, "keyframe requested");
                            control
                                .keyframe_requests
                                .fetch_add(requests, Ordering::Relaxed);
                            control.request_keyframe();
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
}

impl AudioStage {
    fn step(&mut self, swap: Option<Box<dyn AudioSource>>) -> Result<(Vec<u8>, u64), PublishError> {
        if let Some(source) = swap {
            self.source = source;
        }
        let frame = self.source.next_frame()?;
        let level = self.meter.update(&frame.samples);
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
        Ok((packet, frame.capture_micros))
    }
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
    let mut packetizer = OpusPacketizer::new(ssrc, control.rtp_state());
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
        let (payload, capture_micros) =
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
        let bytes = payload.len() as u64;
        let packet = packetizer.packetize(payload, capture_micros);
        control.save_rtp_state(packetizer.state);
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
