//! What a test peer sends: RTP with known payloads (checkable byte for byte), or real VP8 and
//! Opus replayed from the fixtures in `testkit/fixtures` (decodable by browsers).

use bytes::Bytes;
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;
use rtc::rtp;
use rtc::rtp::codec::opus::OpusPayloader;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::{Packetizer, new_packetizer};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use videoroom_protocol::MediaKind;
use videoroom_server::media::{OPUS_PT, VP8_PT};

/// Which media a test peer publishes on a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// One packet per tick whose payload [`payload_for`] can check: audio 50 packets/s of 160
    /// bytes, video 90 packets/s of 1000 bytes.
    Known,
    /// Real media: the 640x360 VP8 test pattern at 30 fps, or the 440 Hz Opus tone in 20 ms
    /// packets; looped (~1.5 Mbit/s together).
    Fixture,
}

/// The known payload of packet `counter` of a track: recognisable and checkable byte for byte.
pub fn payload_for(track_id: &str, counter: u32, len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(&counter.to_be_bytes());
    let seed = track_id.bytes().fold(counter, |a, b| {
        a.wrapping_mul(31).wrapping_add(u32::from(b))
    });
    while p.len() < len {
        p.push((seed.wrapping_add(p.len() as u32) % 251) as u8);
    }
    p
}

/// Reads the counter a known payload starts with.
pub fn counter_of(payload: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(payload.get(..4)?.try_into().ok()?))
}

/// Path of a file in `testkit/fixtures`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The fixture VP8 frames, read once per process.
pub fn vp8_frames() -> Arc<Vec<Bytes>> {
    static FRAMES: OnceLock<Arc<Vec<Bytes>>> = OnceLock::new();
    Arc::clone(FRAMES.get_or_init(|| {
        let file =
            std::fs::File::open(fixture_path("pattern-640x360-vp8.ivf")).expect("VP8 fixture");
        let (mut reader, _) = IVFReader::new(std::io::BufReader::new(file)).expect("IVF header");
        let mut frames = Vec::new();
        while let Ok((frame, _)) = reader.parse_next_frame() {
            frames.push(frame.freeze());
        }
        assert!(!frames.is_empty(), "VP8 fixture has no frames");
        Arc::new(frames)
    }))
}

/// The fixture Opus packets (one per Ogg page, 20 ms each), read once per process.
pub fn opus_packets() -> Arc<Vec<Bytes>> {
    static PACKETS: OnceLock<Arc<Vec<Bytes>>> = OnceLock::new();
    Arc::clone(PACKETS.get_or_init(|| {
        let file = std::fs::File::open(fixture_path("tone-440hz-opus.ogg")).expect("Opus fixture");
        let (mut reader, _) =
            OggReader::new(std::io::BufReader::new(file), true).expect("Ogg header");
        let mut packets = Vec::new();
        while let Ok((page, header)) = reader.parse_next_page() {
            // Skip the OpusHead/OpusTags pages (granule 0).
            if header.granule_position > 0 && !page.is_empty() {
                packets.push(page.freeze());
            }
        }
        assert!(!packets.is_empty(), "Opus fixture has no packets");
        Arc::new(packets)
    }))
}

/// Produces the packets of one track, one tick at a time.
pub struct PacketSource {
    kind: MediaKind,
    source: Source,
    track_id: String,
    ssrc: u32,
    counter: u32,
    seq: u16,
    index: usize,
    packetizer: Option<Box<dyn Packetizer>>,
}

impl PacketSource {
    /// A source for `track_id` sending on `ssrc`.
    pub fn new(kind: MediaKind, source: Source, track_id: &str, ssrc: u32) -> Self {
        let packetizer: Option<Box<dyn Packetizer>> = match source {
            Source::Known => None,
            Source::Fixture => Some(match kind {
                MediaKind::Video => Box::new(new_packetizer(
                    Instant::now(),
                    1200,
                    VP8_PT,
                    ssrc,
                    Box::new(Vp8Payloader::default()),
                    Box::new(rtp::sequence::new_random_sequencer()),
                    90_000,
                )),
                MediaKind::Audio => Box::new(new_packetizer(
                    Instant::now(),
                    1200,
                    OPUS_PT,
                    ssrc,
                    Box::new(OpusPayloader),
                    Box::new(rtp::sequence::new_random_sequencer()),
                    48_000,
                )),
            }),
        };
        Self {
            kind,
            source,
            track_id: track_id.to_owned(),
            ssrc,
            counter: 0,
            seq: rand::random(),
            index: 0,
            packetizer,
        }
    }

    /// Time between ticks.
    pub fn interval(&self) -> Duration {
        match (self.source, self.kind) {
            (Source::Known, MediaKind::Audio) | (Source::Fixture, MediaKind::Audio) => {
                Duration::from_millis(20)
            }
            (Source::Known, MediaKind::Video) => Duration::from_micros(11_111),
            (Source::Fixture, MediaKind::Video) => Duration::from_micros(33_333),
        }
    }

    /// The packets of the next tick.
    pub fn next_packets(&mut self) -> Vec<rtp::Packet> {
        match self.source {
            Source::Known => {
                let (len, pt, step) = match self.kind {
                    MediaKind::Audio => (160, OPUS_PT, 960u32),
                    MediaKind::Video => (1000, VP8_PT, 1000u32),
                };
                let packet = rtp::Packet {
                    header: rtp::header::Header {
                        version: 2,
                        payload_type: pt,
                        sequence_number: self.seq,
                        timestamp: self.counter.wrapping_mul(step),
                        ssrc: self.ssrc,
                        marker: true,
                        ..Default::default()
                    },
                    payload: payload_for(&self.track_id, self.counter, len).into(),
                };
                self.counter += 1;
                self.seq = self.seq.wrapping_add(1);
                vec![packet]
            }
            Source::Fixture => {
                let (data, samples) = match self.kind {
                    MediaKind::Video => {
                        let frames = vp8_frames();
                        (frames[self.index % frames.len()].clone(), 3000)
                    }
                    MediaKind::Audio => {
                        let packets = opus_packets();
                        (packets[self.index % packets.len()].clone(), 960)
                    }
                };
                self.index += 1;
                match &mut self.packetizer {
                    Some(p) => p
                        .packetize(Instant::now(), &data, samples)
                        .unwrap_or_default(),
                    None => Vec::new(),
                }
            }
        }
    }
}
