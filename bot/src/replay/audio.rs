//! A fixture's audio: the tone as 20 ms Opus packets in Ogg (RFC 7845), written and read with
//! the `ogg` crate, and [`ReplayAudio`], which sends them in a loop.
//!
//! The stream is what RFC 7845 asks for: an OpusHead packet alone on the first page, an
//! OpusTags packet on the next, then the audio, one page per second (50 packets); each page's
//! granule position counts the 48 kHz samples of the packets that end on it, the last page is
//! the end-of-stream page.

use super::{AUDIO_FILE, FixtureSpec, ReplayError, read_meta};
use ogg::{OggReadError, PacketReader, PacketWriteEndInfo, PacketWriter};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use videoroom_client::audio::analysis::level_dbov;
use videoroom_client::media::opus::{FRAME_SAMPLES, SAMPLE_RATE};
use videoroom_client::media::{
    AudioFrame, AudioSource, EncodedAudio, EncodedAudioSource, OpusConfig, OpusEncoder,
    SourceError, ToneSource,
};

/// Opus packets per second (20 ms each), and so per Ogg page.
const PACKETS_PER_SECOND: u32 = 50;
/// libopus' lookahead at 48 kHz (VoIP and audio applications): the decoder's output starts this
/// many samples late, so a player skips them (OpusHead's pre-skip).
const PRE_SKIP: u16 = 312;
/// The OpusTags vendor string.
const VENDOR: &[u8] = b"videoroom-bot replay fixture";

/// RFC 7845 5.1: the identification header, channel mapping family 0 (mono or stereo).
fn opus_head(channels: u8) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(channels);
    head.extend_from_slice(&PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&SAMPLE_RATE.to_le_bytes()); // the input's rate, informational
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family
    head
}

/// RFC 7845 5.2: the comment header, a vendor string and no comments.
fn opus_tags() -> Vec<u8> {
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&(VENDOR.len() as u32).to_le_bytes());
    tags.extend_from_slice(VENDOR);
    tags.extend_from_slice(&0u32.to_le_bytes()); // user comments
    tags
}

/// Encodes `spec.seconds` of the tone into `path`; returns its RMS level in dBov.
pub(super) fn write(path: &Path, spec: &FixtureSpec) -> Result<f32, ReplayError> {
    let config = OpusConfig::voice();
    let mut tone = ToneSource::with_start(
        spec.tone_hz,
        spec.amplitude,
        config.channels,
        spec.start_unix_micros,
    );
    let mut encoder = OpusEncoder::new(config)?;
    let io_error = |e| ReplayError::io(path, e);
    let file = File::create(path).map_err(io_error)?;
    let mut ogg = PacketWriter::new(BufWriter::new(file));
    // The logical stream's serial number: any will do for a file of one stream.
    let serial = (spec.start_unix_micros ^ (spec.start_unix_micros >> 32)) as u32;
    let channels = u8::try_from(config.channels.count()).unwrap_or(1);
    ogg.write_packet(opus_head(channels), serial, PacketWriteEndInfo::EndPage, 0)
        .map_err(io_error)?;
    ogg.write_packet(opus_tags(), serial, PacketWriteEndInfo::EndPage, 0)
        .map_err(io_error)?;

    let mut samples: Vec<i16> = Vec::new();
    let packets = spec.seconds * PACKETS_PER_SECOND;
    for i in 1..=packets {
        let frame: AudioFrame = tone.next_frame()?;
        let payload = encoder.encode(&frame)?;
        samples.extend_from_slice(&frame.samples);
        let end = if i == packets {
            PacketWriteEndInfo::EndStream
        } else if i % PACKETS_PER_SECOND == 0 {
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        // The granule position after this packet: every sample so far, pre-skip included.
        let granule = u64::from(i) * FRAME_SAMPLES as u64;
        ogg.write_packet(payload, serial, end, granule)
            .map_err(io_error)?;
    }
    let mut out = ogg.into_inner();
    out.flush().map_err(io_error)?;
    out.get_ref().sync_all().map_err(io_error)?;
    Ok(level_dbov(&samples))
}

/// The audio packets of an Ogg Opus file: those of its first logical stream after OpusHead
/// and OpusTags, checked to be complete (an end-of-stream page whose granule position counts
/// them all).
pub(super) fn read(path: &Path, bytes: &[u8]) -> Result<Vec<Vec<u8>>, ReplayError> {
    let corrupt = |reason: String| ReplayError::corrupt(path, format!("not Ogg Opus: {reason}"));
    let mut reader = PacketReader::new(std::io::Cursor::new(bytes));
    let mut serial = None;
    let mut packets = Vec::new();
    let mut end_granule = None;
    while let Some(packet) = reader.read_packet().map_err(|e| ogg_error(path, e))? {
        if *serial.get_or_insert(packet.stream_serial()) != packet.stream_serial() {
            continue; // another logical stream (a fixture has one)
        }
        let last = packet.last_in_stream();
        let granule = packet.absgp_page();
        packets.push(packet.data);
        if last {
            end_granule = Some(granule);
            break;
        }
    }
    let Some(end_granule) = end_granule else {
        return Err(corrupt(
            "no end-of-stream page (the file is cut short)".into(),
        ));
    };

    let mut packets = packets.into_iter();
    let head = packets.next().unwrap_or_default();
    if head.len() < 19 || !head.starts_with(b"OpusHead") || head[8] != 1 {
        return Err(corrupt("no OpusHead version 1 first".into()));
    }
    if !packets.next().unwrap_or_default().starts_with(b"OpusTags") {
        return Err(corrupt("no OpusTags second".into()));
    }
    let packets: Vec<Vec<u8>> = packets.collect();
    let expected = packets.len() as u64 * FRAME_SAMPLES as u64;
    if end_granule != expected {
        return Err(corrupt(format!(
            "the last granule position is {end_granule}, {} packets of 20 ms make {expected}",
            packets.len()
        )));
    }
    // An empty packet carries no audio (it would be sent as a lost one).
    Ok(packets.into_iter().filter(|p| !p.is_empty()).collect())
}

/// The `ogg` reader's error as ours: a file cut inside a page is said to be truncated.
fn ogg_error(path: &Path, error: OggReadError) -> ReplayError {
    match error {
        OggReadError::ReadError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            ReplayError::corrupt(path, "not Ogg Opus: truncated page (the file is cut short)")
        }
        OggReadError::ReadError(e) => ReplayError::io(path, e),
        source => ReplayError::Ogg {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// A fixture's audio, replayed: its Opus packets in a loop, paced by the caller.
#[derive(Debug)]
pub struct ReplayAudio {
    pub(super) packets: Vec<Vec<u8>>,
    next: usize,
    level_dbov: f32,
}

impl ReplayAudio {
    /// Loads the fixture's audio in `dir` (every packet, into memory).
    pub fn open(dir: &Path) -> Result<Self, ReplayError> {
        let meta = read_meta(dir)?;
        let path = dir.join(AUDIO_FILE);
        let bytes = std::fs::read(&path).map_err(|e| ReplayError::io(&path, e))?;
        let packets = read(&path, &bytes)?;
        if packets.is_empty() {
            return Err(ReplayError::Empty { path });
        }
        Ok(Self {
            packets,
            next: 0,
            level_dbov: meta.audio_level_dbov,
        })
    }
}

impl AudioSource for ReplayAudio {
    fn next_frame(&mut self) -> Result<AudioFrame, SourceError> {
        Err(SourceError::Failed(
            "a replayed recording is encoded".into(),
        ))
    }

    fn encoded(&mut self) -> Option<&mut dyn EncodedAudioSource> {
        Some(self)
    }
}

impl EncodedAudioSource for ReplayAudio {
    fn next_packet(&mut self) -> Result<EncodedAudio, SourceError> {
        let payload = self
            .packets
            .get(self.next)
            .cloned()
            .ok_or(SourceError::Ended)?;
        self.next = (self.next + 1) % self.packets.len();
        Ok(EncodedAudio {
            payload,
            level_dbov: self.level_dbov,
            voice: true,
        })
    }
}
