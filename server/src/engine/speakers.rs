//! Who is speaking, from the audio-level header extension (RFC 6464) alone: no decoding. Each
//! published audio track has a [`LevelMeter`]; every [`LEVEL_INTERVAL`] the core reads it and
//! tells the publisher's endpoint what changed, and the room ranks its speakers.

use std::time::Duration;

/// How often audio levels are summed up and reported.
pub const LEVEL_INTERVAL: Duration = Duration::from_millis(250);

/// A packet this loud (−dBov) or louder counts as speech even without the voice-activity bit.
const LOUD_DBOV: u8 = 35;
/// A packet with the voice-activity bit counts as speech only if at least this loud (−dBov).
const VOICED_DBOV: u8 = 70;
/// The share of an interval's packets that must be speech for the track to be speaking.
const SPEECH_SHARE: f32 = 0.4;
/// Smoothing of the level between intervals (weight of the new interval).
const SMOOTHING: f32 = 0.6;

/// The audio level of one packet: `(−dBov 0..=127, voice activity)`, from the one-byte value
/// of the extension. `None` for an empty value.
pub fn parse_audio_level(value: &[u8]) -> Option<(u8, bool)> {
    let b = *value.first()?;
    Some((b & 0x7f, b & 0x80 != 0))
}

/// What a track's meter says after an interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeakerLevel {
    /// Loudness 0..=1 (linear amplitude relative to full scale, smoothed).
    pub level: f32,
    /// Whether it carries speech.
    pub speaking: bool,
}

/// One audio track's levels over the current interval.
#[derive(Debug, Default)]
pub struct LevelMeter {
    packets: u32,
    speech: u32,
    amplitude: f32,
    smoothed: f32,
    speaking: bool,
}

impl LevelMeter {
    /// One packet's level.
    pub fn on_packet(&mut self, dbov: u8, voice: bool) {
        self.packets += 1;
        if dbov <= LOUD_DBOV || (voice && dbov <= VOICED_DBOV) {
            self.speech += 1;
        }
        self.amplitude += 10f32.powf(-f32::from(dbov) / 20.0);
    }

    /// Ends the interval. Returns the new state when it is worth telling: while speaking
    /// (every interval, for the ranking), and once when it stops.
    pub fn tick(&mut self) -> Option<SpeakerLevel> {
        let (mean, speaking) = if self.packets == 0 {
            (0.0, false)
        } else {
            let n = self.packets as f32;
            (self.amplitude / n, self.speech as f32 >= SPEECH_SHARE * n)
        };
        self.smoothed = SMOOTHING * mean + (1.0 - SMOOTHING) * self.smoothed;
        let was = self.speaking;
        self.speaking = speaking;
        self.packets = 0;
        self.speech = 0;
        self.amplitude = 0.0;
        (speaking || was).then_some(SpeakerLevel {
            level: self.smoothed,
            speaking,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(m: &mut LevelMeter, dbov: u8, voice: bool, n: u32) -> Option<SpeakerLevel> {
        for _ in 0..n {
            m.on_packet(dbov, voice);
        }
        m.tick()
    }

    #[test]
    fn silence_says_nothing_speech_is_reported_and_its_end_once() {
        let mut m = LevelMeter::default();
        assert_eq!(interval(&mut m, 127, false, 12), None);
        assert_eq!(
            interval(&mut m, 90, true, 12),
            None,
            "too quiet to be speech"
        );
        let s = interval(&mut m, 20, true, 12).expect("speaking");
        assert!(s.speaking && s.level > 0.0);
        assert!(interval(&mut m, 25, false, 12).expect("still").speaking);
        let end = interval(&mut m, 127, false, 12).expect("the end is told");
        assert!(!end.speaking);
        assert_eq!(interval(&mut m, 127, false, 12), None);
        // No packets at all (muted, held): not speaking.
        interval(&mut m, 10, true, 12).expect("speaking");
        assert!(!m.tick().expect("told").speaking);
    }

    #[test]
    fn louder_is_a_higher_level() {
        let (mut loud, mut soft) = (LevelMeter::default(), LevelMeter::default());
        let mut a = None;
        let mut b = None;
        for _ in 0..4 {
            a = interval(&mut loud, 10, true, 12);
            b = interval(&mut soft, 30, true, 12);
        }
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.speaking && b.speaking);
        assert!(a.level > 2.0 * b.level, "{a:?} vs {b:?}");
    }

    #[test]
    fn the_extension_byte_is_level_and_voice_bit() {
        assert_eq!(parse_audio_level(&[0x80 | 42]), Some((42, true)));
        assert_eq!(parse_audio_level(&[127]), Some((127, false)));
        assert_eq!(parse_audio_level(&[]), None);
    }
}
