//! RTP out: a track's numbering ([`RtpState`]), the VP8 and Opus packetizers, and the labels
//! every packet carries (MID, RID, audio level) with the ids the other side negotiated.

use super::control::SendControl;
use crate::media::EncodedFrame;
use crate::media::opus::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::peer::{OPUS_PT, VP8_CLOCK_RATE, VP8_PT};
use bytes::{BufMut, Bytes, BytesMut};
use rtc::rtp::extension::audio_level_extension::AudioLevelExtension;
use std::sync::Arc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

/// RTP packets are at most this large (header included), well under a 1500-byte path MTU once
/// SRTP, UDP, IP and any TURN framing are added.
const RTP_MTU: usize = 1200;
const RTP_HEADER: usize = 12;
/// Room left in each video packet for header extensions: MID, RID and what the interceptors add
/// (transport-wide sequence number), with the RFC 8285 header and padding.
const EXTENSIONS_RESERVE: usize = 16;
/// The VP8 payload descriptor we write: X, I, and a 15-bit picture id (M bit set).
const VP8_DESCRIPTOR: usize = 4;

/// The RTP numbering of a local track: kept in its [`SendControl`] so that a restarted send
/// loop (a new source after the old one stopped) continues the sequence numbers, timestamps
/// and picture ids instead of jumping (SRTP would take a restarted sequence for replays and
/// drop it).
#[derive(Debug, Clone, Copy)]
pub struct RtpState {
    pub(super) sequence: u16,
    pub(super) timestamp_base: u32,
    pub(super) first_capture_micros: Option<u64>,
    pub(super) last_timestamp: Option<u32>,
    /// VP8: the next frame's picture id (15 bits).
    pub(super) picture_id: u16,
}

impl RtpState {
    pub(super) fn new() -> Self {
        Self {
            sequence: rand::random(),
            timestamp_base: rand::random(),
            first_capture_micros: None,
            last_timestamp: None,
            picture_id: rand::random::<u16>() & 0x7FFF,
        }
    }

    /// The timestamp of a frame captured at `capture_micros` on a `clock_rate` clock (from the
    /// track's first capture), at least `min_step` after the previous one (two frames must
    /// never share a timestamp: a receiver would merge them), and the previous one.
    fn next_timestamp(
        &mut self,
        capture_micros: u64,
        clock_rate: u32,
        min_step: u32,
    ) -> (u32, Option<u32>) {
        let first = *self.first_capture_micros.get_or_insert(capture_micros);
        let ticks = capture_micros.saturating_sub(first) * u64::from(clock_rate) / 1_000_000;
        // RTP timestamps wrap at 2^32 by design.
        let mut timestamp = self.timestamp_base.wrapping_add(ticks as u32);
        let previous = self.last_timestamp;
        if let Some(last) = previous
            && timestamp.wrapping_sub(last) as i32 <= 0
        {
            timestamp = last.wrapping_add(min_step);
        }
        self.last_timestamp = Some(timestamp);
        (timestamp, previous)
    }
}

/// How packets on the bound track are labelled: the transceiver's mid and the header extension
/// ids the other side negotiated (`None`: not negotiated, left out).
#[derive(Debug, Clone, Default)]
pub(super) struct Labels {
    /// The mid is known (the track's transceiver has one); until then labels are looked up
    /// again on every frame.
    pub(super) resolved: bool,
    pub(super) mid: Option<(u8, Bytes)>,
    pub(super) rid_id: Option<u8>,
    pub(super) audio_level_id: Option<u8>,
}

impl Labels {
    /// The labels of `track` from the transceiver the room noted for it.
    pub(super) async fn of<S: ?Sized>(
        control: &SendControl<S>,
        track: &Arc<TrackLocalStaticRTP>,
    ) -> Self {
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
    pub(super) fn apply(&self, packet: &mut rtc::rtp::Packet, rid: Option<&'static str>) {
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
pub(super) struct Vp8Packetizer {
    pub(super) ssrc: u32,
    pub(super) state: RtpState,
}

impl Vp8Packetizer {
    pub(super) fn new(ssrc: u32, state: RtpState) -> Self {
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

    pub(super) fn packetize(&mut self, frame: &EncodedFrame) -> Vec<rtc::rtp::Packet> {
        let (timestamp, _) = self
            .state
            .next_timestamp(frame.capture_micros, VP8_CLOCK_RATE, 1);
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

/// Opus RTP: one packet per 20 ms frame, PT 111, 48 kHz timestamps from the capture time.
pub(super) struct OpusPacketizer {
    pub(super) ssrc: u32,
    pub(super) state: RtpState,
}

impl OpusPacketizer {
    pub(super) fn new(ssrc: u32, state: RtpState) -> Self {
        Self { ssrc, state }
    }

    pub(super) fn packetize(&mut self, payload: Vec<u8>, capture_micros: u64) -> rtc::rtp::Packet {
        let (timestamp, previous) =
            self.state
                .next_timestamp(capture_micros, SAMPLE_RATE, FRAME_SAMPLES as u32);
        // After a pause (mute), the first packet of a talk spurt carries the marker bit.
        let marker =
            previous.is_none_or(|last| timestamp.wrapping_sub(last) > 2 * FRAME_SAMPLES as u32);
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
