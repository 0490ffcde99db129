//! The mixer: one input per remote audio track (its [`JitterBuffer`] and its own
//! [`OpusDecoder`]), mixed into one mono 20 ms frame per [`Mixer::mix`] call.
//!
//! Network side: the receive task of each track [`push`](Mixer::push)es RTP packets into that
//! track's jitter buffer. Playout side: the playout thread calls [`mix`](Mixer::mix) once per
//! 20 ms of device time; each input yields a decoded packet, a concealed one (Opus PLC) or
//! silence, and the inputs are summed with saturation. Per input the mixer keeps the counters,
//! a speaking level and the last second of decoded audio (for a frequency check in tests and
//! the bot's statistics).

use super::analysis::{LevelMeter, dominant_frequency};
use super::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::media::opus::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::media::{AudioFrame, Channels, OpusDecoder, unix_micros_now};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::mpsc;
use videoroom_protocol::{PeerId, TrackId};

/// Decoded audio kept per input for [`RemoteAudio::dominant_frequency`]: one second.
const RECENT_SAMPLES: usize = SAMPLE_RATE as usize;

/// Counters and state of one remote audio track.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AudioStats {
    /// RTP packets received from the network.
    pub packets_received: u64,
    /// 20 ms frames decoded from real packets and played.
    pub frames_decoded: u64,
    /// 20 ms frames concealed (a packet was lost or late).
    pub frames_concealed: u64,
    /// Packets the decoder rejected.
    pub decode_errors: u64,
    /// The jitter buffer's counters.
    pub jitter: JitterStats,
    /// Smoothed level of what was played, dBov (−127 = silence).
    pub level_dbov: f32,
    /// Whether that level counts as speech (for a speaking indicator).
    pub speaking: bool,
    /// When the track was announced.
    pub added_at: Option<Instant>,
    /// When its first packet was decoded and played.
    pub first_frame_at: Option<Instant>,
}

struct Input {
    peer_id: PeerId,
    jitter: JitterBuffer,
    decoder: Option<OpusDecoder>,
    meter: LevelMeter,
    recent: VecDeque<i16>,
    stats: AudioStats,
    first_frame: Arc<OnceLock<Instant>>,
}

impl Input {
    /// The next 20 ms of this input (960 samples), or `None` while it is silent.
    fn next(&mut self, now: Instant) -> Option<Vec<i16>> {
        let decoder = self.decoder.as_mut()?;
        let pcm = match self.jitter.pop(now) {
            Playout::Packet(payload) => match decoder.decode(&payload) {
                Ok(pcm) => {
                    self.stats.frames_decoded += 1;
                    Some(pcm)
                }
                Err(e) => {
                    tracing::debug!("Opus packet rejected: {e}");
                    self.stats.decode_errors += 1;
                    decoder.decode_lost().ok()
                }
            },
            Playout::Lost => {
                self.stats.frames_concealed += 1;
                decoder.decode_lost().ok()
            }
            Playout::Silence => None,
        };
        let pcm = pcm.map(|mut pcm| {
            // Packets of another duration than 20 ms are cut or padded to the frame.
            pcm.resize(FRAME_SAMPLES, 0);
            pcm
        });
        let samples: &[i16] = pcm.as_deref().unwrap_or(&[0; FRAME_SAMPLES]);
        self.stats.level_dbov = self.meter.update(samples);
        self.stats.speaking = self.meter.is_speaking();
        if self.recent.len() + samples.len() > RECENT_SAMPLES {
            let excess = self.recent.len() + samples.len() - RECENT_SAMPLES;
            self.recent.drain(..excess.min(self.recent.len()));
        }
        self.recent.extend(samples.iter().copied());
        pcm
    }
}

/// The mixer shared by the receive tasks (producers) and the playout thread (consumer).
#[derive(Clone)]
pub struct Mixer {
    inputs: Arc<Mutex<HashMap<TrackId, Input>>>,
    ready: Option<mpsc::Sender<TrackId>>,
}

impl std::fmt::Debug for Mixer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mixer")
            .field("inputs", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl Default for Mixer {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Mixer {
    /// A mixer with no inputs. `ready` receives a track's id when its first packet is played.
    pub fn new(ready: Option<mpsc::Sender<TrackId>>) -> Self {
        Self {
            inputs: Arc::new(Mutex::new(HashMap::new())),
            ready,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TrackId, Input>> {
        // Every update keeps the map consistent; a panic elsewhere does not poison the audio.
        self.inputs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an input for a remote track (no-op if it exists).
    pub fn add_track(&self, track_id: TrackId, peer_id: PeerId) {
        let mut inputs = self.lock();
        inputs.entry(track_id).or_insert_with(|| {
            let decoder = match OpusDecoder::new(Channels::Mono) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::error!("cannot create an Opus decoder: {e}");
                    None
                }
            };
            Input {
                peer_id,
                jitter: JitterBuffer::new(JitterConfig::default()),
                decoder,
                meter: LevelMeter::default(),
                recent: VecDeque::with_capacity(RECENT_SAMPLES),
                stats: AudioStats {
                    added_at: Some(Instant::now()),
                    level_dbov: -127.0,
                    ..AudioStats::default()
                },
                first_frame: Arc::new(OnceLock::new()),
            }
        });
    }

    /// Removes a track's input.
    pub fn remove_track(&self, track_id: &TrackId) {
        self.lock().remove(track_id);
    }

    /// Removes every input.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Queues a received RTP packet of `track_id`. Unknown tracks are ignored.
    pub fn push(
        &self,
        track_id: &TrackId,
        now: Instant,
        sequence: u16,
        rtp_timestamp: u32,
        payload: Bytes,
    ) {
        if let Some(input) = self.lock().get_mut(track_id) {
            input.stats.packets_received += 1;
            input.jitter.push(now, sequence, rtp_timestamp, payload);
        }
    }

    /// Mixes the next 20 ms of every input into one mono frame.
    pub fn mix(&self, now: Instant) -> AudioFrame {
        let mut sum = vec![0i32; FRAME_SAMPLES];
        let mut newly_ready = Vec::new();
        {
            let mut inputs = self.lock();
            for (track_id, input) in inputs.iter_mut() {
                let Some(pcm) = input.next(now) else {
                    continue;
                };
                for (acc, s) in sum.iter_mut().zip(&pcm) {
                    *acc += i32::from(*s);
                }
                if input.stats.frames_decoded > 0 && input.first_frame.set(now).is_ok() {
                    input.stats.first_frame_at = Some(now);
                    newly_ready.push(track_id.clone());
                }
            }
        }
        if let Some(ready) = &self.ready {
            for track_id in newly_ready {
                let _ = ready.try_send(track_id);
            }
        }
        AudioFrame {
            samples: sum
                .into_iter()
                .map(|s| s.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
                .collect(),
            channels: Channels::Mono,
            capture_micros: unix_micros_now(),
        }
    }

    /// A view of one remote audio track.
    pub fn remote_audio(&self, track_id: &TrackId) -> Option<RemoteAudio> {
        self.lock().get(track_id).map(|input| RemoteAudio {
            track_id: track_id.clone(),
            peer_id: input.peer_id.clone(),
            mixer: self.clone(),
        })
    }

    /// Views of every remote audio track.
    pub fn remote_audios(&self) -> Vec<RemoteAudio> {
        self.lock()
            .iter()
            .map(|(track_id, input)| RemoteAudio {
                track_id: track_id.clone(),
                peer_id: input.peer_id.clone(),
                mixer: self.clone(),
            })
            .collect()
    }
}

/// A consumer's view of one remote audio track.
#[derive(Debug, Clone)]
pub struct RemoteAudio {
    track_id: TrackId,
    peer_id: PeerId,
    mixer: Mixer,
}

impl RemoteAudio {
    /// The track id.
    pub fn track_id(&self) -> &TrackId {
        &self.track_id
    }

    /// The publisher.
    pub fn peer_id(&self) -> &PeerId {
        &self.peer_id
    }

    /// The counters so far (default values once the track is gone).
    pub fn stats(&self) -> AudioStats {
        self.mixer
            .lock()
            .get(&self.track_id)
            .map(|input| {
                let mut stats = input.stats.clone();
                stats.jitter = input.jitter.stats();
                stats
            })
            .unwrap_or_default()
    }

    /// The dominant frequency (Hz) of the last second played from this track, `None` if it was
    /// silent.
    pub fn dominant_frequency(&self) -> Option<f32> {
        let recent: Vec<i16> = self
            .mixer
            .lock()
            .get(&self.track_id)
            .map(|input| input.recent.iter().copied().collect())?;
        dominant_frequency(&recent, SAMPLE_RATE)
    }
}
