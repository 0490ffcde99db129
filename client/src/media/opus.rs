//! Audio: the [`AudioSource`] trait, a synthetic [`ToneSource`], and Opus over libopus.
//!
//! Opus comes from the `opus` 0.3 crate (safe bindings, via `audiopus_sys`, to the system
//! `libopus` found through pkg-config). Everything runs at 48 kHz in 20 ms frames, as WebRTC does.

use super::{SourceError, unix_micros_now};

/// The Opus and WebRTC sample rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per channel in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 960;
/// Duration of one frame in microseconds.
pub const FRAME_MICROS: u64 = 20_000;
/// The largest Opus packet we produce or accept (RFC 6716 allows up to 1275 bytes per frame).
const MAX_PACKET: usize = 1500;

/// Mono or stereo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// One channel.
    Mono,
    /// Two channels, interleaved left/right.
    Stereo,
}

impl Channels {
    /// Number of channels.
    pub fn count(self) -> usize {
        match self {
            Channels::Mono => 1,
            Channels::Stereo => 2,
        }
    }

    fn to_opus(self) -> opus::Channels {
        match self {
            Channels::Mono => opus::Channels::Mono,
            Channels::Stereo => opus::Channels::Stereo,
        }
    }
}

/// 20 ms of 48 kHz PCM, interleaved if stereo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// `FRAME_SAMPLES × channels` samples.
    pub samples: Vec<i16>,
    /// Channel layout of `samples`.
    pub channels: Channels,
    /// Capture time of the first sample, µs since the UNIX epoch.
    pub capture_micros: u64,
}

/// Something that produces 20 ms audio frames: a microphone, a file, a synthetic tone.
pub trait AudioSource: Send {
    /// The next 20 ms frame.
    fn next_frame(&mut self) -> Result<AudioFrame, SourceError>;

    /// Whether the source runs on a device clock: `next_frame` blocks until 20 ms have been
    /// captured. A live source paces its sender; a synthetic one (the default) is paced by a
    /// timer.
    fn is_live(&self) -> bool {
        false
    }

    /// A source of packets already encoded (a replayed recording, see [`super::encoded`]):
    /// the publish path takes its packets from here and never calls `next_frame`.
    fn encoded(&mut self) -> Option<&mut dyn super::EncodedAudioSource> {
        None
    }
}

/// A sine tone. Timestamps start at the wall clock when the source is created and advance by
/// exactly 20 ms per frame (the source does not pace itself).
#[derive(Debug, Clone)]
pub struct ToneSource {
    frequency_hz: f64,
    amplitude: f64,
    channels: Channels,
    phase: f64,
    next_micros: u64,
}

impl ToneSource {
    /// A tone of `frequency_hz` at `amplitude` (0.0..=1.0 of full scale).
    pub fn new(frequency_hz: f64, amplitude: f64, channels: Channels) -> Self {
        Self::with_start(frequency_hz, amplitude, channels, unix_micros_now())
    }

    /// The same, with the first frame stamped `start_micros`.
    pub fn with_start(
        frequency_hz: f64,
        amplitude: f64,
        channels: Channels,
        start_micros: u64,
    ) -> Self {
        Self {
            frequency_hz: frequency_hz.clamp(0.0, f64::from(SAMPLE_RATE) / 2.0),
            amplitude: amplitude.clamp(0.0, 1.0),
            channels,
            phase: 0.0,
            next_micros: start_micros,
        }
    }
}

impl AudioSource for ToneSource {
    fn next_frame(&mut self) -> Result<AudioFrame, SourceError> {
        let step = std::f64::consts::TAU * self.frequency_hz / f64::from(SAMPLE_RATE);
        let mut samples = Vec::with_capacity(FRAME_SAMPLES * self.channels.count());
        for _ in 0..FRAME_SAMPLES {
            let s = (self.phase.sin() * self.amplitude * f64::from(i16::MAX)).round() as i16;
            for _ in 0..self.channels.count() {
                samples.push(s);
            }
            self.phase = (self.phase + step) % std::f64::consts::TAU;
        }
        let capture_micros = self.next_micros;
        self.next_micros += FRAME_MICROS;
        Ok(AudioFrame {
            samples,
            channels: self.channels,
            capture_micros,
        })
    }
}

/// Errors from the Opus codecs.
#[derive(Debug, thiserror::Error)]
pub enum OpusError {
    /// The input frame has the wrong number of samples.
    #[error("expected {expected} samples (20 ms), got {got}")]
    FrameLength {
        /// Samples required.
        expected: usize,
        /// Samples given.
        got: usize,
    },
    /// The input frame has a different channel layout than the codec.
    #[error("frame is {got:?}, codec is {expected:?}")]
    ChannelMismatch {
        /// The codec's layout.
        expected: Channels,
        /// The frame's layout.
        got: Channels,
    },
    /// The packet is larger than any valid Opus packet.
    #[error("Opus packet of {0} bytes is too large")]
    PacketTooLarge(usize),
    /// libopus returned an error.
    #[error("libopus: {0}")]
    Codec(#[from] opus::Error),
}

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// Mono or stereo.
    pub channels: Channels,
    /// Target bitrate in bit/s.
    pub bitrate_bps: i32,
    /// In-band forward error correction (helps at packet loss, costs bits).
    pub inband_fec: bool,
}

impl OpusConfig {
    /// Voice defaults: mono, 32 kbit/s, in-band FEC on.
    pub fn voice() -> Self {
        Self {
            channels: Channels::Mono,
            bitrate_bps: 32_000,
            inband_fec: true,
        }
    }
}

/// An Opus encoder for 20 ms frames at 48 kHz (VoIP application).
pub struct OpusEncoder {
    inner: opus::Encoder,
    channels: Channels,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// Creates an encoder.
    pub fn new(config: OpusConfig) -> Result<Self, OpusError> {
        let mut inner = opus::Encoder::new(
            SAMPLE_RATE,
            config.channels.to_opus(),
            opus::Application::Voip,
        )?;
        inner.set_bitrate(opus::Bitrate::Bits(config.bitrate_bps))?;
        inner.set_inband_fec(config.inband_fec)?;
        Ok(Self {
            inner,
            channels: config.channels,
        })
    }

    /// Changes the target bitrate (bit/s).
    pub fn set_bitrate(&mut self, bitrate_bps: i32) -> Result<(), OpusError> {
        self.inner.set_bitrate(opus::Bitrate::Bits(bitrate_bps))?;
        Ok(())
    }

    /// Tells the encoder the expected packet loss (0..=100 %), for FEC.
    pub fn set_packet_loss_percent(&mut self, percent: i32) -> Result<(), OpusError> {
        self.inner.set_packet_loss_perc(percent.clamp(0, 100))?;
        Ok(())
    }

    /// Encodes one 20 ms frame into one Opus packet.
    pub fn encode(&mut self, frame: &AudioFrame) -> Result<Vec<u8>, OpusError> {
        if frame.channels != self.channels {
            return Err(OpusError::ChannelMismatch {
                expected: self.channels,
                got: frame.channels,
            });
        }
        let expected = FRAME_SAMPLES * self.channels.count();
        if frame.samples.len() != expected {
            return Err(OpusError::FrameLength {
                expected,
                got: frame.samples.len(),
            });
        }
        Ok(self.inner.encode_vec(&frame.samples, MAX_PACKET)?)
    }
}

/// An Opus decoder producing 48 kHz PCM.
pub struct OpusDecoder {
    inner: opus::Decoder,
    channels: Channels,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// Creates a decoder with the given output layout.
    pub fn new(channels: Channels) -> Result<Self, OpusError> {
        Ok(Self {
            inner: opus::Decoder::new(SAMPLE_RATE, channels.to_opus())?,
            channels,
        })
    }

    /// Decodes one packet into interleaved PCM (960 samples per channel for a 20 ms packet).
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, OpusError> {
        if packet.len() > MAX_PACKET {
            return Err(OpusError::PacketTooLarge(packet.len()));
        }
        if packet.is_empty() {
            return self.decode_lost();
        }
        // Room for the longest Opus packet: 120 ms.
        self.decode_into(packet, FRAME_SAMPLES * 6)
    }

    /// Conceals one lost 20 ms packet (packet loss concealment).
    pub fn decode_lost(&mut self) -> Result<Vec<i16>, OpusError> {
        // For a lost packet libopus synthesises as many samples as the buffer holds.
        self.decode_into(&[], FRAME_SAMPLES)
    }

    fn decode_into(
        &mut self,
        packet: &[u8],
        samples_per_channel: usize,
    ) -> Result<Vec<i16>, OpusError> {
        let mut out = vec![0i16; samples_per_channel * self.channels.count()];
        let n = self.inner.decode(packet, &mut out, false)?;
        out.truncate(n * self.channels.count());
        Ok(out)
    }
}
