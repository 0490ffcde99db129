//! [`MicrophoneSource`] and [`SpeakerSink`]: the system's audio devices through cpal (ALSA on
//! Linux), adapted to the media layer's 48 kHz, 20 ms frames.
//!
//! Both prefer a device configuration at 48 kHz; otherwise they run the device at the supported
//! rate nearest to it and convert with rubato's FFT resampler (`RateConverter`, also used by
//! [`WavSource`](crate::media::wav::WavSource)). Channel layouts are adapted too: the microphone
//! averages the device's channels to mono; the speaker copies a mono frame to every output
//! channel, or downmixes stereo to a mono device.
//!
//! Between cpal's real-time callback thread and the caller sits a bounded queue (a short
//! `Mutex` section and a `Condvar`; the callback never waits on anything else):
//! - microphone: the callback appends, dropping the oldest samples beyond [`MIC_BUFFER`] so a
//!   slow reader hears the present, not a growing backlog; `next_frame` blocks until 20 ms are
//!   there, and fails if the device delivers nothing for [`STALL_TIMEOUT`];
//! - speaker: `write` blocks while more than [`SPEAKER_BUFFER`] is queued, so the device clock
//!   paces the caller; the callback plays silence when the queue runs dry.
//!
//! Resampling runs on the caller's thread (in `next_frame` and `write`), not in the callback.

use super::{DeviceError, DeviceInfo, DeviceKind};
use crate::media::opus::{
    AudioFrame, AudioSource, Channels, FRAME_MICROS, FRAME_SAMPLES, SAMPLE_RATE,
};
use crate::media::sink::{AudioSink, SinkError};
use crate::media::{SourceError, unix_micros_now};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample, SupportedStreamConfigRange};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{FixedSync, Resampler};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The most captured audio kept for a reader that falls behind; older samples are dropped.
pub const MIC_BUFFER: Duration = Duration::from_millis(200);
/// How much audio `SpeakerSink::write` lets queue up before it blocks.
pub const SPEAKER_BUFFER: Duration = Duration::from_millis(60);
/// How long a device may deliver (or consume) nothing before it counts as failed.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long cpal may take to set a stream up.
const OPEN_TIMEOUT: Duration = Duration::from_secs(2);
/// Timestamps jump ahead to the device's clock when it is this much later than a steady 20 ms
/// step.
const REANCHOR_MICROS: u64 = 40_000;

/// Converts interleaved `f32` audio between two fixed sample rates (rubato's FFT resampler).
pub(crate) struct RateConverter {
    inner: rubato::Fft<f32>,
    channels: usize,
    out: Vec<f32>,
}

impl RateConverter {
    /// A converter from `from_hz` to `to_hz` for `channels` interleaved channels. `chunk` is
    /// the fixed number of frames per call on the `fixed` side.
    pub(crate) fn new(
        from_hz: u32,
        to_hz: u32,
        chunk: usize,
        channels: usize,
        fixed: FixedSync,
    ) -> Result<Self, String> {
        let inner = rubato::Fft::new(from_hz as usize, to_hz as usize, chunk, channels, fixed)
            .map_err(|e| format!("cannot resample {from_hz} Hz to {to_hz} Hz: {e}"))?;
        Ok(Self {
            inner,
            channels,
            out: Vec::new(),
        })
    }

    /// Frames the next [`process`](Self::process) call takes.
    pub(crate) fn input_frames_next(&self) -> usize {
        self.inner.input_frames_next()
    }

    /// The resampler's delay, in output frames.
    pub(crate) fn delay_frames(&self) -> usize {
        self.inner.output_delay()
    }

    /// Resamples `input` (exactly [`input_frames_next`](Self::input_frames_next) frames,
    /// interleaved) and returns the output frames, interleaved.
    pub(crate) fn process(&mut self, input: &[f32]) -> Result<&[f32], String> {
        let frames = input.len() / self.channels;
        let input = InterleavedSlice::new(input, self.channels, frames).map_err(err_string)?;
        let out_frames = self.inner.output_frames_max();
        self.out.resize(out_frames * self.channels, 0.0);
        let mut output = InterleavedSlice::new_mut(&mut self.out, self.channels, out_frames)
            .map_err(err_string)?;
        let (_, written) = self
            .inner
            .process_into_buffer(&input, &mut output, None)
            .map_err(err_string)?;
        Ok(&self.out[..written * self.channels])
    }
}

fn err_string(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Converts a sample in [-1, 1] to 16 bits.
pub(crate) fn to_i16(sample: f32) -> i16 {
    (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// A queue shared with a cpal callback.
struct Shared<T> {
    state: Mutex<T>,
    changed: Condvar,
}

impl<T> Shared<T> {
    fn new(state: T) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(state),
            changed: Condvar::new(),
        })
    }

    /// Locks the state. A panic elsewhere while holding the lock cannot leave the queue
    /// inconsistent (every update is a push or pop), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, T> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a stream error ends the stream (as opposed to a glitch it recovers from).
fn is_fatal(e: &cpal::Error) -> bool {
    !matches!(
        e.kind(),
        cpal::ErrorKind::Xrun | cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied
    )
}

/// Sample formats this module converts.
fn format_supported(format: SampleFormat) -> bool {
    matches!(
        format,
        SampleFormat::F32
            | SampleFormat::I16
            | SampleFormat::I32
            | SampleFormat::U16
            | SampleFormat::U8
            | SampleFormat::I8
            | SampleFormat::F64
    )
}

/// The best configuration among `ranges`: a sample format we convert, 48 kHz if possible
/// (otherwise the supported rate nearest to it), the channel count earliest in `channels`
/// (others after those, fewest first), and float or 16-bit samples over other formats.
/// Returns the range and the rate to run it at.
pub(crate) fn choose_config(
    ranges: impl IntoIterator<Item = SupportedStreamConfigRange>,
    channels: &[u16],
) -> Option<(SupportedStreamConfigRange, u32)> {
    ranges
        .into_iter()
        .filter(|r| format_supported(r.sample_format()) && r.channels() > 0)
        .map(|r| {
            let rate = SAMPLE_RATE.clamp(r.min_sample_rate(), r.max_sample_rate());
            (r, rate)
        })
        .min_by_key(|(r, rate)| {
            let channel_rank = channels
                .iter()
                .position(|&c| c == r.channels())
                .unwrap_or(channels.len() + usize::from(r.channels()));
            let format_rank = match r.sample_format() {
                SampleFormat::F32 => 0,
                SampleFormat::I16 => 1,
                _ => 2,
            };
            (rate.abs_diff(SAMPLE_RATE), channel_rank, format_rank)
        })
}

/// `DeviceInfo` for a cpal device.
fn info(device: &cpal::Device) -> DeviceInfo {
    let id = device
        .id()
        .map(|id| id.to_string())
        .unwrap_or_else(|_| device.to_string());
    let name = device
        .description()
        .map(|d| d.name().to_owned())
        .unwrap_or_else(|_| device.to_string());
    DeviceInfo { id, name }
}

/// ALSA's `null` device (discards playback, captures silence) is in every ALSA configuration but
/// is no device a person would pick; it is left out of the lists (`open` still accepts its id).
fn is_real(device: &cpal::Device) -> bool {
    !device.id().is_ok_and(|id| id.id() == "null")
}

fn list(kind: DeviceKind) -> Vec<DeviceInfo> {
    match cpal::default_host().devices() {
        Ok(devices) => devices
            .filter(is_real)
            .filter(|d| match kind {
                DeviceKind::Microphone => d.supports_input(),
                _ => d.supports_output(),
            })
            .map(|d| info(&d))
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "cannot list audio devices");
            Vec::new()
        }
    }
}

/// The microphones on this machine (empty if there are none; never fails).
pub fn list_microphones() -> Vec<DeviceInfo> {
    list(DeviceKind::Microphone)
}

/// The speakers (audio outputs) on this machine (empty if there are none; never fails).
pub fn list_speakers() -> Vec<DeviceInfo> {
    list(DeviceKind::Speaker)
}

/// The device `id` (its cpal id, or its name), or the system default for `kind`.
fn find_device(kind: DeviceKind, id: Option<&str>) -> Result<cpal::Device, DeviceError> {
    let host = cpal::default_host();
    let not_found = || DeviceError::NotFound {
        kind,
        id: id.map(str::to_owned),
    };
    match id {
        None => match kind {
            DeviceKind::Microphone => host.default_input_device(),
            _ => host.default_output_device(),
        }
        .ok_or_else(not_found),
        Some(id) => host
            .devices()
            .map_err(|_| not_found())?
            .find(|d| {
                let DeviceInfo { id: dev_id, name } = info(d);
                dev_id == id || name == id || d.id().is_ok_and(|i| i.id() == id)
            })
            .ok_or_else(not_found),
    }
}

/// The device's configurations for `kind`, mapped to a `DeviceError` a person can act on. An
/// absent default device (ALSA's `default` on a machine without a sound card) is `NotFound`.
fn device_configs(
    kind: DeviceKind,
    id: Option<&str>,
    device: &cpal::Device,
) -> Result<Vec<SupportedStreamConfigRange>, DeviceError> {
    let name = info(device).name;
    let configs = match kind {
        DeviceKind::Microphone => device
            .supported_input_configs()
            .map(|c| c.collect::<Vec<_>>()),
        _ => device
            .supported_output_configs()
            .map(|c| c.collect::<Vec<_>>()),
    };
    match configs {
        Ok(configs) if configs.is_empty() => Err(DeviceError::Unsupported {
            kind,
            name,
            detail: "it reports no configuration".to_owned(),
        }),
        Ok(configs) => Ok(configs),
        Err(e) => Err(match e.kind() {
            cpal::ErrorKind::DeviceNotAvailable
            | cpal::ErrorKind::HostUnavailable
            | cpal::ErrorKind::UnsupportedOperation => DeviceError::NotFound {
                kind,
                id: id.map(str::to_owned),
            },
            _ => DeviceError::Open {
                kind,
                name,
                reason: e.to_string(),
            },
        }),
    }
}

/// Opens `kind` and picks its configuration.
fn open_device(
    kind: DeviceKind,
    id: Option<&str>,
    channels: &[u16],
) -> Result<(cpal::Device, String, SupportedStreamConfigRange, u32), DeviceError> {
    let device = find_device(kind, id)?;
    let name = info(&device).name;
    let configs = device_configs(kind, id, &device)?;
    let offered: Vec<String> = configs
        .iter()
        .map(|c| {
            format!(
                "{} ch {} {}-{} Hz",
                c.channels(),
                c.sample_format(),
                c.min_sample_rate(),
                c.max_sample_rate()
            )
        })
        .collect();
    let (range, rate) =
        choose_config(configs, channels).ok_or_else(|| DeviceError::Unsupported {
            kind,
            name: name.clone(),
            detail: format!("it offers {}", offered.join(", ")),
        })?;
    Ok((device, name, range, rate))
}

fn stream_error(kind: DeviceKind, name: &str, e: cpal::Error) -> DeviceError {
    match e.kind() {
        cpal::ErrorKind::UnsupportedConfig => DeviceError::Unsupported {
            kind,
            name: name.to_owned(),
            detail: e.to_string(),
        },
        _ => DeviceError::Open {
            kind,
            name: name.to_owned(),
            reason: e.to_string(),
        },
    }
}

/// What the microphone callback shares with `next_frame`.
struct Captured {
    /// Mono samples at the device rate, oldest first.
    samples: VecDeque<f32>,
    /// At most this many samples are kept.
    capacity: usize,
    /// Wall clock (µs) when the newest sample arrived.
    newest_micros: u64,
    /// Samples dropped because the reader fell behind.
    dropped: u64,
    /// A fatal stream error.
    error: Option<String>,
}

/// The microphone callback for sample type `T`: averages channels to mono and queues.
fn capture_callback<T>(
    shared: Arc<Shared<Captured>>,
    channels: usize,
) -> impl FnMut(&[T], &cpal::InputCallbackInfo) + Send + 'static
where
    T: Sample,
    f32: FromSample<T>,
{
    move |data: &[T], _| {
        let now = unix_micros_now();
        let mut state = shared.lock();
        let scale = 1.0 / channels as f32;
        for frame in data.chunks_exact(channels) {
            let sum: f32 = frame.iter().map(|&s| s.to_sample::<f32>()).sum();
            state.samples.push_back(sum * scale);
        }
        let excess = state.samples.len().saturating_sub(state.capacity);
        if excess > 0 {
            state.samples.drain(..excess);
            state.dropped += excess as u64;
        }
        state.newest_micros = now;
        drop(state);
        shared.changed.notify_all();
    }
}

fn build_input<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    shared: &Arc<Shared<Captured>>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let on_error = {
        let shared = Arc::clone(shared);
        move |e: cpal::Error| {
            if is_fatal(&e) {
                shared.lock().error = Some(e.to_string());
                shared.changed.notify_all();
            } else {
                tracing::debug!(error = %e, "microphone glitch");
            }
        }
    };
    let callback = capture_callback::<T>(Arc::clone(shared), usize::from(config.channels));
    device.build_input_stream::<T, _, _>(config, callback, on_error, Some(OPEN_TIMEOUT))
}

/// The microphone: mono 48 kHz, 20 ms frames, stamped with their capture time.
pub struct MicrophoneSource {
    name: String,
    device_rate: u32,
    device_channels: u16,
    shared: Arc<Shared<Captured>>,
    resampler: Option<RateConverter>,
    next_micros: Option<u64>,
    block: Vec<f32>,
    _stream: cpal::Stream,
}

impl std::fmt::Debug for MicrophoneSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicrophoneSource")
            .field("name", &self.name)
            .field("device_rate", &self.device_rate)
            .field("device_channels", &self.device_channels)
            .finish_non_exhaustive()
    }
}

impl MicrophoneSource {
    /// Opens the microphone `id` (from [`list_microphones`]: its id or name), or the system's
    /// default input if `None`, and starts capturing.
    pub fn open(id: Option<&str>) -> Result<Self, DeviceError> {
        let kind = DeviceKind::Microphone;
        let (device, name, range, rate) = open_device(kind, id, &[1, 2])?;
        let format = range.sample_format();
        let config = range.with_sample_rate(rate).config();
        let capacity = (rate as usize * MIC_BUFFER.as_millis() as usize / 1000).max(FRAME_SAMPLES);
        let shared = Shared::new(Captured {
            samples: VecDeque::with_capacity(capacity + 4096),
            capacity,
            newest_micros: 0,
            dropped: 0,
            error: None,
        });
        let resampler = if rate == SAMPLE_RATE {
            None
        } else {
            Some(
                RateConverter::new(rate, SAMPLE_RATE, FRAME_SAMPLES, 1, FixedSync::Output)
                    .map_err(|detail| DeviceError::Unsupported {
                        kind,
                        name: name.clone(),
                        detail,
                    })?,
            )
        };
        let device_channels = config.channels;
        let stream = match format {
            SampleFormat::F32 => build_input::<f32>(&device, config, &shared),
            SampleFormat::I16 => build_input::<i16>(&device, config, &shared),
            SampleFormat::I32 => build_input::<i32>(&device, config, &shared),
            SampleFormat::U16 => build_input::<u16>(&device, config, &shared),
            SampleFormat::U8 => build_input::<u8>(&device, config, &shared),
            SampleFormat::I8 => build_input::<i8>(&device, config, &shared),
            _ => build_input::<f64>(&device, config, &shared),
        }
        .map_err(|e| stream_error(kind, &name, e))?;
        stream.play().map_err(|e| stream_error(kind, &name, e))?;
        tracing::info!(
            microphone = %name,
            rate,
            channels = device_channels,
            format = %format,
            "microphone opened"
        );
        Ok(Self {
            name,
            device_rate: rate,
            device_channels,
            shared,
            resampler,
            next_micros: None,
            block: Vec::with_capacity(FRAME_SAMPLES * 2),
            _stream: stream,
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rate the device runs at (frames are converted to 48 kHz).
    pub fn device_rate(&self) -> u32 {
        self.device_rate
    }

    /// Samples dropped so far because the reader fell more than [`MIC_BUFFER`] behind.
    pub fn dropped_samples(&self) -> u64 {
        self.shared.lock().dropped
    }
}

impl AudioSource for MicrophoneSource {
    fn is_live(&self) -> bool {
        true
    }

    fn next_frame(&mut self) -> Result<AudioFrame, SourceError> {
        let need = self
            .resampler
            .as_ref()
            .map_or(FRAME_SAMPLES, RateConverter::input_frames_next);
        let deadline = Instant::now() + STALL_TIMEOUT;
        let mut state = self.shared.lock();
        loop {
            if let Some(e) = &state.error {
                return Err(SourceError::Failed(format!(
                    "microphone \"{}\": {e}",
                    self.name
                )));
            }
            if state.samples.len() >= need {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SourceError::Failed(format!(
                    "microphone \"{}\" delivered no audio for {} s",
                    self.name,
                    STALL_TIMEOUT.as_secs()
                )));
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        // The first sample taken is `len` samples older than the newest one.
        let age_micros = state.samples.len() as u64 * 1_000_000 / u64::from(self.device_rate);
        let newest = state.newest_micros;
        self.block.clear();
        self.block.extend(state.samples.drain(..need));
        drop(state);

        let mut estimate = newest.saturating_sub(age_micros);
        let mono: Vec<f32> = match &mut self.resampler {
            None => self.block.clone(),
            Some(r) => {
                estimate = estimate
                    .saturating_sub(r.delay_frames() as u64 * 1_000_000 / u64::from(SAMPLE_RATE));
                r.process(&self.block)
                    .map_err(SourceError::Failed)?
                    .to_vec()
            }
        };
        // A steady 20 ms step; jump ahead when the device is clearly later than that (audio was
        // dropped, or the reader stalled). Never step back: timestamps become RTP timestamps.
        let capture_micros = match self.next_micros {
            Some(next) if estimate <= next + REANCHOR_MICROS => next,
            _ => estimate,
        };
        self.next_micros = Some(capture_micros + FRAME_MICROS);
        let mut samples: Vec<i16> = mono.iter().map(|&s| to_i16(s)).collect();
        samples.resize(FRAME_SAMPLES, 0);
        Ok(AudioFrame {
            samples,
            channels: Channels::Mono,
            capture_micros,
        })
    }
}

/// What `SpeakerSink::write` shares with the output callback.
struct Playout {
    /// Interleaved samples in the device's layout and rate, oldest first.
    samples: VecDeque<f32>,
    /// When the callback last took samples.
    last_pull: Instant,
    /// Callbacks that found too little queued and played silence.
    underruns: u64,
    /// A fatal stream error.
    error: Option<String>,
}

fn build_output<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    shared: &Arc<Shared<Playout>>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let on_error = {
        let shared = Arc::clone(shared);
        move |e: cpal::Error| {
            if is_fatal(&e) {
                shared.lock().error = Some(e.to_string());
                shared.changed.notify_all();
            } else {
                tracing::debug!(error = %e, "speaker glitch");
            }
        }
    };
    let callback = {
        let shared = Arc::clone(shared);
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
            let mut state = shared.lock();
            if state.samples.len() < data.len() && !state.samples.is_empty() {
                state.underruns += 1;
            }
            for out in data.iter_mut() {
                *out = T::from_sample(state.samples.pop_front().unwrap_or(0.0));
            }
            state.last_pull = Instant::now();
            drop(state);
            shared.changed.notify_all();
        }
    };
    device.build_output_stream::<T, _, _>(config, callback, on_error, Some(OPEN_TIMEOUT))
}

/// The speaker: plays 48 kHz frames (mono or stereo) on the device, paced by its clock.
pub struct SpeakerSink {
    name: String,
    device_rate: u32,
    device_channels: usize,
    /// Most samples queued before `write` blocks.
    high_water: usize,
    shared: Arc<Shared<Playout>>,
    /// Converter for the channel count of the frames written so far.
    resampler: Option<(usize, RateConverter)>,
    _stream: cpal::Stream,
}

impl std::fmt::Debug for SpeakerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeakerSink")
            .field("name", &self.name)
            .field("device_rate", &self.device_rate)
            .field("device_channels", &self.device_channels)
            .finish_non_exhaustive()
    }
}

impl SpeakerSink {
    /// Opens the speaker `id` (from [`list_speakers`]: its id or name), or the system's default
    /// output if `None`, and starts playing (silence until the first `write`).
    pub fn open(id: Option<&str>) -> Result<Self, DeviceError> {
        let kind = DeviceKind::Speaker;
        let (device, name, range, rate) = open_device(kind, id, &[2, 1])?;
        let format = range.sample_format();
        let config = range.with_sample_rate(rate).config();
        let device_channels = usize::from(config.channels);
        let high_water =
            rate as usize * SPEAKER_BUFFER.as_millis() as usize / 1000 * device_channels;
        let shared = Shared::new(Playout {
            samples: VecDeque::with_capacity(high_water * 2 + 8192),
            last_pull: Instant::now(),
            underruns: 0,
            error: None,
        });
        let stream = match format {
            SampleFormat::F32 => build_output::<f32>(&device, config, &shared),
            SampleFormat::I16 => build_output::<i16>(&device, config, &shared),
            SampleFormat::I32 => build_output::<i32>(&device, config, &shared),
            SampleFormat::U16 => build_output::<u16>(&device, config, &shared),
            SampleFormat::U8 => build_output::<u8>(&device, config, &shared),
            SampleFormat::I8 => build_output::<i8>(&device, config, &shared),
            _ => build_output::<f64>(&device, config, &shared),
        }
        .map_err(|e| stream_error(kind, &name, e))?;
        stream.play().map_err(|e| stream_error(kind, &name, e))?;
        tracing::info!(
            speaker = %name,
            rate,
            channels = device_channels,
            format = %format,
            "speaker opened"
        );
        Ok(Self {
            name,
            device_rate: rate,
            device_channels,
            high_water,
            shared,
            resampler: None,
            _stream: stream,
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rate the device runs at (frames are converted from 48 kHz).
    pub fn device_rate(&self) -> u32 {
        self.device_rate
    }

    /// Device callbacks so far that ran out of audio part-way and played silence.
    pub fn underruns(&self) -> u64 {
        self.shared.lock().underruns
    }

    /// `frame` as `f32` at the device rate, still in the frame's channel layout.
    fn resample(&mut self, frame: &AudioFrame) -> Result<Vec<f32>, SinkError> {
        let channels = frame.channels.count();
        let samples: Vec<f32> = frame
            .samples
            .iter()
            .map(|&s| f32::from(s) / 32768.0)
            .collect();
        if self.device_rate == SAMPLE_RATE {
            return Ok(samples);
        }
        if self.resampler.as_ref().is_none_or(|(c, _)| *c != channels) {
            let r = RateConverter::new(
                SAMPLE_RATE,
                self.device_rate,
                FRAME_SAMPLES,
                channels,
                FixedSync::Input,
            )
            .map_err(SinkError::Failed)?;
            self.resampler = Some((channels, r));
        }
        let Some((_, r)) = self.resampler.as_mut() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        // The converter takes exactly one 20 ms frame per call; pad a short frame with silence.
        let chunk = r.input_frames_next() * channels;
        for block in samples.chunks(chunk) {
            let mut block = block.to_vec();
            block.resize(chunk, 0.0);
            out.extend_from_slice(r.process(&block).map_err(SinkError::Failed)?);
        }
        Ok(out)
    }
}

/// Maps interleaved `from`-channel audio to `to` channels: mono is copied to every channel,
/// stereo to a mono device is averaged, and otherwise the shared channels are copied and any
/// extra output channels are silent.
pub(crate) fn remix(samples: &[f32], from: usize, to: usize) -> Vec<f32> {
    if from == to {
        return samples.to_vec();
    }
    let mut out = Vec::with_capacity(samples.len() / from.max(1) * to);
    for frame in samples.chunks_exact(from.max(1)) {
        match (from, to) {
            (1, _) => out.extend(std::iter::repeat_n(frame[0], to)),
            (_, 1) => out.push(frame.iter().sum::<f32>() / from as f32),
            _ => out.extend((0..to).map(|c| frame.get(c).copied().unwrap_or(0.0))),
        }
    }
    out
}

impl AudioSink for SpeakerSink {
    fn write(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
        let samples = self.resample(frame)?;
        let samples = remix(&samples, frame.channels.count(), self.device_channels);
        let mut state = self.shared.lock();
        loop {
            if let Some(e) = &state.error {
                return Err(SinkError::Failed(format!("speaker \"{}\": {e}", self.name)));
            }
            if state.samples.len() <= self.high_water {
                break;
            }
            // The device takes samples every few ms; if it stopped, so does playout.
            let stalled_for = state.last_pull.elapsed();
            if stalled_for >= STALL_TIMEOUT {
                return Err(SinkError::Failed(format!(
                    "speaker \"{}\" has played nothing for {} s",
                    self.name,
                    STALL_TIMEOUT.as_secs()
                )));
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, STALL_TIMEOUT - stalled_for)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        state.samples.extend(samples);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpal::SupportedBufferSize;

    fn range(
        channels: u16,
        min: u32,
        max: u32,
        format: SampleFormat,
    ) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(channels, min, max, SupportedBufferSize::Unknown, format)
    }

    #[test]
    fn config_prefers_48k_then_channels_then_float() {
        let ranges = vec![
            range(2, 44_100, 44_100, SampleFormat::F32),
            range(2, 8_000, 96_000, SampleFormat::I16),
            range(1, 8_000, 96_000, SampleFormat::I16),
            range(1, 8_000, 96_000, SampleFormat::F32),
        ];
        let (r, rate) = choose_config(ranges.clone(), &[1, 2]).unwrap();
        assert_eq!(
            (r.channels(), r.sample_format(), rate),
            (1, SampleFormat::F32, 48_000)
        );
        let (r, rate) = choose_config(ranges, &[2, 1]).unwrap();
        assert_eq!(
            (r.channels(), r.sample_format(), rate),
            (2, SampleFormat::I16, 48_000)
        );
    }

    #[test]
    fn config_falls_back_to_the_nearest_rate() {
        let ranges = vec![
            range(2, 22_050, 22_050, SampleFormat::I16),
            range(2, 44_100, 44_100, SampleFormat::I16),
            range(2, 96_000, 192_000, SampleFormat::I16),
        ];
        let (_, rate) = choose_config(ranges, &[1, 2]).unwrap();
        assert_eq!(rate, 44_100);
        let unusable = vec![range(2, 48_000, 48_000, SampleFormat::U64)];
        assert!(choose_config(unusable, &[2]).is_none());
    }

    #[test]
    fn remix_layouts() {
        assert_eq!(remix(&[0.5, -0.5], 1, 2), vec![0.5, 0.5, -0.5, -0.5]);
        assert_eq!(remix(&[0.25, 0.75], 2, 1), vec![0.5]);
        assert_eq!(remix(&[0.1, 0.2], 2, 4), vec![0.1, 0.2, 0.0, 0.0]);
        assert_eq!(remix(&[0.1, 0.2], 2, 2), vec![0.1, 0.2]);
    }

    #[test]
    fn rate_converter_chunk_sizes_follow_the_ratio() {
        // Speaker side: 20 ms at 48 kHz in, 20 ms at 44.1 kHz (882 frames) out, per call.
        let mut down = RateConverter::new(48_000, 44_100, 960, 2, FixedSync::Input).unwrap();
        assert_eq!(down.input_frames_next(), 960);
        let total: usize = (0..10)
            .map(|_| down.process(&[0.25; 960 * 2]).unwrap().len())
            .sum();
        assert_eq!(total, 10 * 882 * 2);
        // Microphone side: 882 frames at 44.1 kHz in for each 20 ms at 48 kHz out.
        let mut up = RateConverter::new(44_100, 48_000, 960, 1, FixedSync::Output).unwrap();
        assert_eq!(up.input_frames_next(), 882);
        assert_eq!(up.process(&[0.0; 882]).unwrap().len(), 960);
        assert!(RateConverter::new(0, 48_000, 960, 1, FixedSync::Output).is_err());
    }

    #[test]
    fn to_i16_clamps() {
        assert_eq!(to_i16(0.0), 0);
        assert_eq!(to_i16(1.0), i16::MAX);
        assert_eq!(to_i16(-1.0), i16::MIN);
        assert_eq!(to_i16(2.0), i16::MAX);
    }
}
