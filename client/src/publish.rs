//! The video publish path: [`VideoSource`] → [`Vp8Encoder`] (on the blocking pool) → RTP
//! (VP8 payloader, 90 kHz clock from the capture time) → `TrackLocalStaticRTP`, paced by a tokio
//! interval at the source's frame rate. Keyframe requests (PLI/FIR surfaced by
//! [`KeyframeRequestTap`](crate::peer::KeyframeRequestTap)) make the next frame a keyframe.

use crate::media::{EncodedFrame, SourceError, VideoSource, Vp8Config, Vp8Encoder, Vp8Error};
use crate::peer::{VP8_CLOCK_RATE, VP8_PT, is_keyframe_request};
use bytes::Bytes;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::Payloader;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

/// RTP packets are at most this large (header included), well under a 1500-byte path MTU once
/// SRTP, UDP, IP and any TURN framing are added.
const RTP_MTU: usize = 1200;
const RTP_HEADER: usize = 12;

/// Shared state between the room, the handle and the sending task of the local video track.
#[derive(Debug, Default)]
pub struct SendControl {
    enabled: AtomicBool,
    keyframe_wanted: AtomicBool,
    frames_sent: AtomicU64,
    keyframes_sent: AtomicU64,
    keyframe_requests: AtomicU64,
    packets_sent: AtomicU64,
}

/// Counters of the local video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SendStats {
    /// Frames encoded and written to the track.
    pub frames_sent: u64,
    /// Of those, keyframes.
    pub keyframes_sent: u64,
    /// Keyframe requests (PLI/FIR) received from the server.
    pub keyframe_requests: u64,
    /// RTP packets written.
    pub packets_sent: u64,
}

impl SendControl {
    /// A control for a track that starts enabled (sending) or not.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled: AtomicBool::new(enabled),
            ..Self::default()
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

    /// The counters so far.
    pub fn stats(&self) -> SendStats {
        SendStats {
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            keyframes_sent: self.keyframes_sent.load(Ordering::Relaxed),
            keyframe_requests: self.keyframe_requests.load(Ordering::Relaxed),
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
        }
    }
}

/// Why the publish path stopped or skipped a frame.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The source failed or ended.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The encoder failed.
    #[error(transparent)]
    Encoder(#[from] Vp8Error),
    /// The blocking encode task panicked or was cancelled.
    #[error("encoder task failed: {0}")]
    Task(String),
}

/// The part of the publish path that blocks: pulling a frame and encoding it.
struct EncodeStage {
    source: Box<dyn VideoSource>,
    encoder: Vp8Encoder,
}

impl EncodeStage {
    fn step(&mut self, keyframe: bool) -> Result<Option<EncodedFrame>, PublishError> {
        let frame = self.source.next_frame()?;
        if keyframe {
            self.encoder.force_keyframe();
        }
        Ok(self.encoder.encode(&frame)?)
    }
}

/// Turns VP8 frames into RTP packets: VP8 payload descriptor with picture id, our SSRC, a
/// sequence number from a random start, and a 90 kHz timestamp derived from the capture time.
struct Vp8Packetizer {
    payloader: Vp8Payloader,
    ssrc: u32,
    sequence: u16,
    timestamp_base: u32,
    first_capture_micros: Option<u64>,
    last_timestamp: Option<u32>,
}

impl Vp8Packetizer {
    fn new(ssrc: u32) -> Self {
        let mut payloader = Vp8Payloader::default();
        payloader.enable_picture_id = true;
        Self {
            payloader,
            ssrc,
            sequence: rand::random(),
            timestamp_base: rand::random(),
            first_capture_micros: None,
            last_timestamp: None,
        }
    }

    fn packetize(&mut self, frame: &EncodedFrame) -> Vec<rtc::rtp::Packet> {
        let first = *self
            .first_capture_micros
            .get_or_insert(frame.capture_micros);
        let ticks =
            frame.capture_micros.saturating_sub(first) * u64::from(VP8_CLOCK_RATE) / 1_000_000;
        // RTP timestamps wrap at 2^32 by design.
        let mut timestamp = self.timestamp_base.wrapping_add(ticks as u32);
        if let Some(last) = self.last_timestamp
            && timestamp.wrapping_sub(last) as i32 <= 0
        {
            // Two frames must never share a timestamp: a receiver would merge them.
            timestamp = last.wrapping_add(1);
        }
        self.last_timestamp = Some(timestamp);
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
                let sequence_number = self.sequence;
                self.sequence = self.sequence.wrapping_add(1);
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

/// Creates the encoder (fails early on a bad configuration).
pub fn new_encoder(settings: &VideoSendSettings) -> Result<Vp8Encoder, Vp8Error> {
    let mut config = Vp8Config::new(settings.width, settings.height, settings.target_kbps);
    config.fps = settings.fps.max(1);
    Vp8Encoder::new(config)
}

/// Spawns the sending task and the keyframe-request watcher of one video track. Frames are only
/// produced while the media connection is up (`connected`) and the track is enabled.
pub fn spawn_video_sender(
    track: Arc<TrackLocalStaticRTP>,
    source: Box<dyn VideoSource>,
    encoder: Vp8Encoder,
    settings: VideoSendSettings,
    ssrc: u32,
    control: Arc<SendControl>,
    connected: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let span = tracing::debug_span!("video_send", ssrc);
    let watcher = watch_keyframe_requests(Arc::clone(&track), Arc::clone(&control));
    let sender = send_loop(
        track,
        EncodeStage { source, encoder },
        settings,
        ssrc,
        control,
        connected,
    );
    vec![
        tokio::spawn(sender.instrument(span.clone())),
        tokio::spawn(watcher.instrument(span)),
    ]
}

async fn send_loop(
    track: Arc<TrackLocalStaticRTP>,
    stage: EncodeStage,
    settings: VideoSendSettings,
    ssrc: u32,
    control: Arc<SendControl>,
    mut connected: watch::Receiver<bool>,
) {
    let period = Duration::from_micros(1_000_000 / u64::from(settings.fps.max(1)));
    let mut ticker = tokio::time::interval(period);
    // An encoder that falls behind skips ticks instead of bursting to catch up.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut packetizer = Vp8Packetizer::new(ssrc);
    let mut stage = Some(stage);
    let mut was_connected = false;
    loop {
        ticker.tick().await;
        let is_connected = *connected.borrow_and_update();
        if !is_connected {
            was_connected = false;
            // Nothing to send to: wait for the connection instead of ticking idly.
            if connected.changed().await.is_err() {
                return;
            }
            continue;
        }
        if !was_connected {
            // (Re)connected: receivers need a keyframe to start from.
            control.request_keyframe();
            was_connected = true;
        }
        if !control.enabled() {
            continue;
        }
        let Some(mut current) = stage.take() else {
            return;
        };
        let keyframe = control.keyframe_wanted.swap(false, Ordering::SeqCst);
        let joined = tokio::task::spawn_blocking(move || {
            let result = current.step(keyframe);
            (current, result)
        })
        .await;
        let (current, result) = match joined {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!("{}", PublishError::Task(e.to_string()));
                return;
            }
        };
        stage = Some(current);
        let frame = match result {
            Ok(Some(frame)) => frame,
            Ok(None) => continue,
            Err(PublishError::Source(SourceError::Ended)) => {
                tracing::info!("video source ended");
                return;
            }
            Err(e) => {
                tracing::warn!("frame skipped: {e}");
                continue;
            }
        };
        let packets = packetizer.packetize(&frame);
        let total = packets.len() as u64;
        let mut written = 0u64;
        for packet in packets {
            if let Err(e) = track.write_rtp(packet).await {
                tracing::debug!("write_rtp failed: {e}");
                break;
            }
            written += 1;
        }
        control.packets_sent.fetch_add(written, Ordering::Relaxed);
        if written < total {
            // A receiver got a partial frame: what follows cannot be decoded without a keyframe.
            control.request_keyframe();
            continue;
        }
        control.frames_sent.fetch_add(1, Ordering::Relaxed);
        if frame.keyframe {
            control.keyframes_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Turns PLI/FIR on the track into "next frame is a keyframe".
async fn watch_keyframe_requests(track: Arc<TrackLocalStaticRTP>, control: Arc<SendControl>) {
    loop {
        match track.poll().await {
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
        let mut p = Vp8Packetizer::new(42);
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
