//! The receive paths. Audio: RTP → the track's jitter buffer in the [`Mixer`] (decoded and
//! played by the playout thread). Video: RTP from `on_track` → [`FrameAssembler`] (VP8
//! depacketizer, reordering, a frame released on its marker packet)
//! → a dedicated decoder thread ([`Vp8Decoder`]) → a `watch` channel holding only the newest
//! [`DecodedFrame`]. A slow consumer therefore only ever sees the latest picture, and nothing
//! queues without bound: the decoder queue is small, and when it is full the frame is dropped and
//! the track waits for (and asks for) a keyframe.

use crate::assembler::FrameAssembler;
use crate::audio::Mixer;
use crate::media::{I420Frame, Vp8Decoder, read_burned_in};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use videoroom_protocol::{PeerId, TrackId};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// Frames waiting for the decoder; more are dropped (and a keyframe requested).
const DECODE_QUEUE: usize = 8;
/// At most one keyframe request per this interval.
const PLI_INTERVAL: Duration = Duration::from_millis(500);

/// One decoded picture of a remote video track.
#[derive(Debug)]
#[non_exhaustive]
pub struct DecodedFrame {
    /// The track it belongs to.
    pub track_id: TrackId,
    /// Its publisher.
    pub peer_id: PeerId,
    /// The picture. `frame_number` and `capture_micros` are those burned into the pixels by a
    /// [`PatternSource`](crate::media::PatternSource), or 0 if it carries none.
    pub frame: I420Frame,
    /// The burned-in (frame number, capture time in µs since the UNIX epoch), if readable.
    pub burned_in: Option<(u64, u64)>,
    /// The RTP timestamp (90 kHz) of the frame.
    pub rtp_timestamp: u32,
    /// When the decoder finished it.
    pub decoded_at: Instant,
    /// The same moment on the wall clock, µs since the UNIX epoch (comparable with
    /// `frame.capture_micros` on one machine: capture → decode latency).
    pub decoded_at_micros: u64,
}

/// Counters of one remote video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VideoStats {
    /// Frames decoded.
    pub frames_decoded: u64,
    /// Complete frames dropped before decoding (waiting for a keyframe, decoder queue full).
    pub frames_dropped: u64,
    /// Frames the decoder rejected.
    pub decode_errors: u64,
    /// Keyframe requests (PLI) sent to the publisher.
    pub keyframe_requests: u64,
    /// When the track was announced to this client.
    pub added_at: Instant,
    /// When its first frame was decoded.
    pub first_frame_at: Option<Instant>,
    /// Width of the newest decoded frame (0 before the first).
    pub width: u32,
    /// Height of the newest decoded frame (0 before the first).
    pub height: u32,
    /// Width of the largest decoded frame so far (by area; 0 before the first).
    pub max_width: u32,
    /// Height of the largest decoded frame so far (by area; 0 before the first).
    pub max_height: u32,
    /// Times the decoded size changed from one frame to the next: the layer switches (or the
    /// publisher's size changes) as this subscriber sees them.
    pub size_changes: u64,
}

#[derive(Debug)]
struct StatsCell {
    frames_decoded: AtomicU64,
    frames_dropped: AtomicU64,
    decode_errors: AtomicU64,
    keyframe_requests: AtomicU64,
    added_at: Instant,
    first_frame_at: OnceLock<Instant>,
    /// Newest and largest decoded size, each `width << 32 | height` (written by the decoder
    /// thread only, so a load and a store are enough).
    size: AtomicU64,
    max_size: AtomicU64,
    size_changes: AtomicU64,
}

/// `(width, height)` packed into one word, so a reader never sees half of an update.
fn pack(width: u32, height: u32) -> u64 {
    u64::from(width) << 32 | u64::from(height)
}

fn unpack(packed: u64) -> (u32, u32) {
    ((packed >> 32) as u32, packed as u32)
}

impl StatsCell {
    fn new() -> Self {
        Self {
            frames_decoded: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            added_at: Instant::now(),
            first_frame_at: OnceLock::new(),
            size: AtomicU64::new(0),
            max_size: AtomicU64::new(0),
            size_changes: AtomicU64::new(0),
        }
    }

    /// Records the size of a decoded frame. Called by the decoder thread only.
    fn on_decoded_size(&self, width: u32, height: u32) {
        let now = pack(width, height);
        let previous = self.size.swap(now, Ordering::Relaxed);
        if previous != 0 && previous != now {
            self.size_changes.fetch_add(1, Ordering::Relaxed);
        }
        let (mw, mh) = unpack(self.max_size.load(Ordering::Relaxed));
        if u64::from(width) * u64::from(height) > u64::from(mw) * u64::from(mh) {
            self.max_size.store(now, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> VideoStats {
        let (width, height) = unpack(self.size.load(Ordering::Relaxed));
        let (max_width, max_height) = unpack(self.max_size.load(Ordering::Relaxed));
        VideoStats {
            frames_decoded: self.frames_decoded.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            decode_errors: self.decode_errors.load(Ordering::Relaxed),
            keyframe_requests: self.keyframe_requests.load(Ordering::Relaxed),
            added_at: self.added_at,
            first_frame_at: self.first_frame_at.get().copied(),
            width,
            height,
            max_width,
            max_height,
            size_changes: self.size_changes.load(Ordering::Relaxed),
        }
    }
}

type FrameSlot = Option<Arc<DecodedFrame>>;

/// The room's end of one remote video track: where decoded frames are published.
#[derive(Debug, Clone)]
pub(crate) struct VideoSlot {
    track_id: TrackId,
    peer_id: PeerId,
    frames: Arc<watch::Sender<FrameSlot>>,
    stats: Arc<StatsCell>,
}

impl VideoSlot {
    pub(crate) fn new(track_id: TrackId, peer_id: PeerId) -> Self {
        let (frames, _) = watch::channel(None);
        Self {
            track_id,
            peer_id,
            frames: Arc::new(frames),
            stats: Arc::new(StatsCell::new()),
        }
    }

    /// A consumer's view.
    pub(crate) fn subscribe(&self) -> RemoteVideo {
        RemoteVideo {
            track_id: self.track_id.clone(),
            peer_id: self.peer_id.clone(),
            frames: self.frames.subscribe(),
            stats: Arc::clone(&self.stats),
        }
    }
}

/// A consumer's view of one remote video track: the newest decoded frame and the counters.
#[derive(Debug, Clone)]
pub struct RemoteVideo {
    track_id: TrackId,
    peer_id: PeerId,
    frames: watch::Receiver<FrameSlot>,
    stats: Arc<StatsCell>,
}

impl RemoteVideo {
    /// The track id.
    pub fn track_id(&self) -> &TrackId {
        &self.track_id
    }

    /// The publisher.
    pub fn peer_id(&self) -> &PeerId {
        &self.peer_id
    }

    /// A receiver of the newest decoded frame (`None` until the first one). Latest-frame policy:
    /// each new frame replaces the previous one; `changed()` wakes on every replacement. The
    /// sender side closes when the track is removed.
    pub fn frames(&self) -> watch::Receiver<Option<Arc<DecodedFrame>>> {
        self.frames.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> VideoStats {
        self.stats.snapshot()
    }
}

/// What the receive task reports upward.
pub(crate) enum ReceiveEvent {
    /// The first frame of the track was decoded.
    FirstFrame(TrackId),
}

/// Whether a VP8 frame (bitstream, payload descriptor removed) is a keyframe: the P bit of the
/// frame tag is 0.
fn is_vp8_keyframe(data: &[u8]) -> bool {
    data.first().is_some_and(|b| b & 0x01 == 0) && data.len() >= 10
}

struct Encoded {
    data: bytes::Bytes,
    rtp_timestamp: u32,
}

/// Runs the receive path of one remote video track until the track ends. `ready` gets
/// [`ReceiveEvent::FirstFrame`] once.
pub(crate) async fn receive_video(
    track: Arc<dyn TrackRemote>,
    slot: VideoSlot,
    ready: mpsc::Sender<ReceiveEvent>,
) {
    let media_ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
    let (to_decoder, from_receiver) = mpsc::channel::<Encoded>(DECODE_QUEUE);
    // The decoder asks for a keyframe through this; one pending request is enough.
    let (need_keyframe_tx, mut need_keyframe) = mpsc::channel::<()>(1);
    let decoder_slot = slot.clone();
    let span = tracing::Span::current();
    let spawned = std::thread::Builder::new()
        .name(format!("vp8-dec-{}", slot.track_id))
        .spawn(move || {
            let _entered = span.enter();
            decode_loop(from_receiver, decoder_slot, need_keyframe_tx, ready);
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the decoder thread: {e}");
        return;
    }

    let mut assembler = FrameAssembler::default();
    let mut waiting_for_keyframe = true;
    let mut last_pli: Option<Instant> = None;
    let stats = Arc::clone(&slot.stats);
    loop {
        let mut want_pli = false;
        tokio::select! {
            event = track.poll() => match event {
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    let h = &packet.header;
                    let frames = assembler.push(Instant::now(), h.sequence_number, h.timestamp, h.marker, &packet.payload);
                    for frame in frames {
                        if frame.after_gap && !waiting_for_keyframe {
                            tracing::debug!("packets lost; waiting for a keyframe");
                            waiting_for_keyframe = true;
                        }
                        if waiting_for_keyframe {
                            if is_vp8_keyframe(&frame.data) {
                                waiting_for_keyframe = false;
                            } else {
                                stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
                                want_pli = true;
                                continue;
                            }
                        }
                        let frame = Encoded { data: frame.data, rtp_timestamp: frame.rtp_timestamp };
                        if to_decoder.try_send(frame).is_err() {
                            // The decoder is behind (or gone): drop this frame, and since the
                            // following delta frames depend on it, restart from a keyframe.
                            stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
                            waiting_for_keyframe = true;
                            want_pli = true;
                        }
                    }
                }
                Some(TrackRemoteEvent::OnEnded) | None => break,
                Some(_) => {}
            },
            Some(()) = need_keyframe.recv() => {
                waiting_for_keyframe = true;
                want_pli = true;
            }
        }
        if want_pli && last_pli.is_none_or(|t| t.elapsed() >= PLI_INTERVAL) {
            last_pli = Some(Instant::now());
            stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            if let Err(e) = track.write_rtcp(vec![Box::new(pli)]).await {
                tracing::debug!("PLI not sent: {e}");
            }
        }
    }
    tracing::debug!("remote video track ended");
}

/// The decoder thread: decodes every queued frame, reads the burned-in stamp, publishes the
/// frame as the newest one. Ends when the receive task drops its sender.
fn decode_loop(
    mut frames: mpsc::Receiver<Encoded>,
    slot: VideoSlot,
    need_keyframe: mpsc::Sender<()>,
    ready: mpsc::Sender<ReceiveEvent>,
) {
    let mut decoder = match Vp8Decoder::new() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("cannot create the VP8 decoder: {e}");
            return;
        }
    };
    while let Some(encoded) = frames.blocking_recv() {
        let picture = match decoder.decode(&encoded.data) {
            Ok(Some(picture)) => picture,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!("decode failed: {e}");
                slot.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                let _ = need_keyframe.try_send(());
                continue;
            }
        };
        publish_frame(&slot, picture, encoded.rtp_timestamp, &ready);
    }
}

fn publish_frame(
    slot: &VideoSlot,
    mut picture: I420Frame,
    rtp_timestamp: u32,
    ready: &mpsc::Sender<ReceiveEvent>,
) {
    let burned_in = read_burned_in(&picture);
    if let Some((number, capture)) = burned_in {
        picture.frame_number = number;
        picture.capture_micros = capture;
    }
    let decoded_at = Instant::now();
    slot.stats
        .on_decoded_size(picture.width(), picture.height());
    slot.stats.frames_decoded.fetch_add(1, Ordering::Relaxed);
    if slot.stats.first_frame_at.set(decoded_at).is_ok() {
        tracing::debug!("first frame decoded");
        // The room relays this as `TrackReady`; if its queue is full the event is lost, but the
        // stats still carry `first_frame_at`.
        let _ = ready.try_send(ReceiveEvent::FirstFrame(slot.track_id.clone()));
    }
    slot.frames.send_replace(Some(Arc::new(DecodedFrame {
        track_id: slot.track_id.clone(),
        peer_id: slot.peer_id.clone(),
        frame: picture,
        burned_in,
        rtp_timestamp,
        decoded_at,
        decoded_at_micros: crate::media::unix_micros_now(),
    })));
}

/// Receives a remote track and drops its packets (a participant that does not decode it), so
/// nothing backs up.
pub(crate) async fn drain(track: Arc<dyn TrackRemote>) {
    while let Some(event) = track.poll().await {
        if matches!(event, TrackRemoteEvent::OnEnded) {
            break;
        }
    }
}

/// Runs the receive path of one remote audio track until the track ends: every RTP packet goes
/// into the track's jitter buffer in the [`Mixer`]; the playout thread decodes and plays it.
pub(crate) async fn receive_audio(track: Arc<dyn TrackRemote>, track_id: TrackId, mixer: Mixer) {
    loop {
        match track.poll().await {
            Some(TrackRemoteEvent::OnRtpPacket(packet)) => mixer.push(
                &track_id,
                Instant::now(),
                packet.header.sequence_number,
                packet.header.timestamp,
                packet.payload,
            ),
            Some(TrackRemoteEvent::OnEnded) | None => break,
            Some(_) => {}
        }
    }
    tracing::debug!("remote audio track ended");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_bit() {
        assert!(is_vp8_keyframe(&[0x50, 0, 0, 0x9d, 0x01, 0x2a, 0, 0, 0, 0]));
        assert!(!is_vp8_keyframe(&[0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!is_vp8_keyframe(&[]));
    }

    /// Encodes `count` pattern frames at `width`×`height` (the first a keyframe, as after a
    /// layer switch) starting at frame number `first`.
    fn encode_run(width: u32, height: u32, first: u64, count: u64) -> Vec<Encoded> {
        use crate::media::{PatternSource, Vp8Config, Vp8Encoder};
        let pattern = PatternSource::new(width, height, 30).unwrap();
        let mut encoder = Vp8Encoder::new(Vp8Config::new(width, height, 600)).unwrap();
        (first..first + count)
            .filter_map(|n| {
                let frame = pattern.render(n, 1_000_000 + n * 33_333);
                let encoded = encoder.encode(&frame).unwrap()?;
                Some(Encoded {
                    data: encoded.data.into(),
                    rtp_timestamp: (n * 3000) as u32,
                })
            })
            .collect()
    }

    /// A stream whose frame size changes mid-stream (a simulcast layer switch, or a publisher
    /// that changed its size) goes through the decoder thread: every frame is decoded at its
    /// own size, the burned-in numbers survive, and the stats count the switches and keep the
    /// largest size.
    #[test]
    fn decoder_follows_size_changes() {
        let slot = VideoSlot::new(TrackId::new("t"), PeerId::new("p"));
        let view = slot.subscribe();
        let (to_decoder, from_receiver) = mpsc::channel(64);
        let (need_keyframe, mut keyframe_requests) = mpsc::channel(1);
        let (ready, mut ready_rx) = mpsc::channel(4);
        let runs = [(320, 180, 0), (640, 360, 10), (320, 180, 20)];
        let mut stream = Vec::new();
        for (w, h, first) in runs {
            stream.extend(encode_run(w, h, first, 10));
        }
        let total = stream.len() as u64;
        assert_eq!(total, 30, "the real-time encoder drops no frame");
        let decoder_slot = slot.clone();
        let decoder = std::thread::spawn(move || {
            decode_loop(from_receiver, decoder_slot, need_keyframe, ready)
        });
        let mut seen = Vec::new();
        let mut frames = view.frames();
        // A UI tile that keeps its buffers across frames copes with the size changing.
        let mut scaler = crate::media::tile::TileScaler::new();
        for encoded in stream {
            to_decoder.blocking_send(encoded).unwrap();
            // One at a time, so every frame is observed through the latest-frame channel.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if frames.has_changed().unwrap_or(false) {
                    let frame = frames.borrow_and_update().clone().unwrap();
                    let tile = scaler.scale(&frame.frame, 240, 240).unwrap();
                    assert_eq!((tile.width(), tile.height()), (240, 240));
                    // Letterboxed: 240x135 in the middle, black bars above and below.
                    assert_eq!(tile.pixel(120, 10), Some([0, 0, 0, 255]));
                    seen.push((frame.frame.width(), frame.frame.height(), frame.burned_in));
                    break;
                }
                assert!(Instant::now() < deadline, "frame not decoded in time");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(to_decoder);
        decoder.join().unwrap();

        assert_eq!(seen.len() as u64, total);
        for (i, (w, h, stamp)) in seen.iter().enumerate() {
            let (ew, eh, first) = runs[i / 10];
            assert_eq!((*w, *h), (ew, eh), "frame {i}");
            assert_eq!(
                stamp.map(|s| s.0),
                Some(first + (i % 10) as u64),
                "frame {i}"
            );
        }
        let stats = view.stats();
        assert_eq!(stats.frames_decoded, total);
        assert_eq!(stats.decode_errors, 0);
        assert_eq!((stats.width, stats.height), (320, 180));
        assert_eq!((stats.max_width, stats.max_height), (640, 360));
        assert_eq!(stats.size_changes, 2);
        assert!(
            keyframe_requests.try_recv().is_err(),
            "no keyframe asked for"
        );
        assert!(matches!(
            ready_rx.try_recv(),
            Ok(ReceiveEvent::FirstFrame(_))
        ));
        assert!(ready_rx.try_recv().is_err(), "first frame reported once");
    }

    #[test]
    fn size_stats_before_any_frame() {
        let stats = VideoSlot::new(TrackId::new("t"), PeerId::new("p"))
            .subscribe()
            .stats();
        assert_eq!(
            (
                stats.width,
                stats.max_width,
                stats.max_height,
                stats.size_changes
            ),
            (0, 0, 0, 0)
        );
    }
}
