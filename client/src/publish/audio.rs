//! The audio send loop: 20 ms frames from the source (or an encoded source's packets), Opus,
//! one RTP packet each with the audio-level extension, written to the bound track.

use super::control::AudioControl;
use super::ended::{EndReports, Ended, Failures, Outcome};
use super::rtp::{Labels, OpusPacketizer, audio_level};
use super::{PublishError, TrackBinding, connected_track, on_blocking_pool, write_packets};
use crate::audio::analysis::LevelMeter;
use crate::media::opus::FRAME_MICROS;
use crate::media::{AudioSource, OpusEncoder};
use bytes::BytesMut;
use rtc::rtp::extension::audio_level_extension::AudioLevelExtension;
use rtc::shared::marshal::{Marshal, MarshalSize};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::Instrument;
use videoroom_protocol::MediaKind;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

/// The part of the audio publish path that blocks: pulling 20 ms and encoding it.
pub(super) struct AudioStage {
    pub(super) source: Box<dyn AudioSource>,
    pub(super) encoder: OpusEncoder,
    pub(super) control: Arc<AudioControl>,
    pub(super) meter: LevelMeter,
    /// An encoded source's next capture time (its packets carry none; 20 ms apart).
    pub(super) replay_micros: Option<u64>,
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
