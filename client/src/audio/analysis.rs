//! Measurements on blocks of 16-bit PCM: the dominant frequency (tests and the bot check that a
//! tone arrives as the tone it was), the level in dBov and a smoothed [`LevelMeter`] for the
//! "who is speaking" highlight.
//!
//! Pure functions over sample slices; no I/O.

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

/// The level of digital silence, dBov (as in RFC 6464 audio levels, which span 0 to −127).
pub const SILENCE_DBOV: f32 = -127.0;

/// Below this level (dBov) a block counts as silence for [`dominant_frequency`].
pub const MIN_TONE_DBOV: f32 = -60.0;

/// Fewer samples than this give no frequency estimate.
pub const MIN_FFT_SAMPLES: usize = 128;

/// Full scale of 16-bit samples.
const FULL_SCALE: f64 = 32768.0;

/// Root mean square of `samples` relative to full scale (0.0 to about 1.0); 0.0 if empty.
fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt() / FULL_SCALE
}

/// Converts a linear RMS (relative to full scale) to dBov, clamped to −127..=0.
fn to_dbov(rms: f64) -> f32 {
    if rms <= 0.0 {
        return SILENCE_DBOV;
    }
    ((20.0 * rms.log10()) as f32).clamp(SILENCE_DBOV, 0.0)
}

/// The RMS level of `samples` in dBov: 0 for a full-scale square wave, about −3 for a
/// full-scale sine, −127 for digital silence (and for an empty slice); clamped to −127..=0.
pub fn level_dbov(samples: &[i16]) -> f32 {
    to_dbov(rms(samples))
}

/// The frequency (Hz) with the most energy in `samples`, or `None` if the block is silent
/// (below [`MIN_TONE_DBOV`]), shorter than [`MIN_FFT_SAMPLES`] or `sample_rate` is 0.
///
/// The mean is removed, a Hann window applied and the FFT's peak bin refined by fitting a
/// parabola through the log magnitudes of it and its two neighbours, so the estimate is a small
/// fraction of a bin (`sample_rate / samples.len()`) off for a pure tone. The DC bin is never
/// the answer.
pub fn dominant_frequency(samples: &[i16], sample_rate: u32) -> Option<f32> {
    let n = samples.len();
    if n < MIN_FFT_SAMPLES || sample_rate == 0 || level_dbov(samples) < MIN_TONE_DBOV {
        return None;
    }
    let mean = samples.iter().map(|&s| f64::from(s)).sum::<f64>() / n as f64;
    let (fft, window) = plan(n);
    let mut buffer: Vec<Complex<f32>> = samples
        .iter()
        .zip(window.iter())
        .map(|(&s, &w)| Complex::new(((f64::from(s) - mean) * w / FULL_SCALE) as f32, 0.0))
        .collect();
    fft.process(&mut buffer);

    // Bins 1..=n/2 - 1, so the peak always has two neighbours (0..=n/2).
    let magnitude = |k: usize| buffer[k].norm();
    let peak = (1..n / 2).max_by(|&a, &b| magnitude(a).total_cmp(&magnitude(b)))?;
    if magnitude(peak) <= 0.0 {
        return None;
    }
    let log = |k: usize| f64::from(magnitude(k)).max(1e-30).ln();
    let (left, centre, right) = (log(peak - 1), log(peak), log(peak + 1));
    let curvature = left - 2.0 * centre + right;
    let offset = if curvature < 0.0 {
        (0.5 * (left - right) / curvature).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    let hz = (peak as f64 + offset) * f64::from(sample_rate) / n as f64;
    Some(hz as f32)
}

/// The forward FFT of `n` points and the periodic Hann window of `n`, made once per thread for
/// the last size asked (a caller measures blocks of one size, e.g. the bot a second of each
/// remote track every second: planning and the window's cosines each time cost more than the
/// FFT itself).
fn plan(n: usize) -> (Arc<dyn Fft<f32>>, Arc<[f64]>) {
    type Plan = (usize, Arc<dyn Fft<f32>>, Arc<[f64]>);
    thread_local! {
        static LAST: RefCell<Option<Plan>> = const { RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((size, fft, window)) = last.as_ref()
            && *size == n
        {
            return (Arc::clone(fft), Arc::clone(window));
        }
        let fft = FftPlanner::<f32>::new().plan_fft_forward(n);
        let step = std::f64::consts::TAU / n as f64;
        let window: Arc<[f64]> = (0..n)
            .map(|i| 0.5 - 0.5 * (step * i as f64).cos())
            .collect();
        *last = Some((n, Arc::clone(&fft), Arc::clone(&window)));
        (fft, window)
    })
}

/// A smoothed level for a speaking indicator: fast attack, slower release, and a speaking flag
/// with hysteresis.
///
/// The RMS of each block is smoothed in the linear domain with one time constant when it rises
/// (`attack`) and another when it falls (`release`), so after speech the level falls at a steady
/// number of dB per second (≈ 58 dB/s with the default 150 ms release) instead of dropping with
/// each pause between words. [`is_speaking`](Self::is_speaking) turns on above
/// `speaking_on_dbov` and off below `speaking_off_dbov`.
#[derive(Debug, Clone)]
pub struct LevelMeter {
    sample_rate: u32,
    attack: Duration,
    release: Duration,
    speaking_on_dbov: f32,
    speaking_off_dbov: f32,
    /// Smoothed RMS relative to full scale.
    rms: f64,
    speaking: bool,
}

impl Default for LevelMeter {
    /// 48 kHz, 10 ms attack, 150 ms release, speaking above −40 dBov until below −50 dBov.
    fn default() -> Self {
        Self::new(48_000)
    }
}

impl LevelMeter {
    /// A meter for blocks at `sample_rate` with the default ballistics and thresholds.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate: sample_rate.max(1),
            attack: Duration::from_millis(10),
            release: Duration::from_millis(150),
            speaking_on_dbov: -40.0,
            speaking_off_dbov: -50.0,
            rms: 0.0,
            speaking: false,
        }
    }

    /// Sets the time constants for a rising and a falling level.
    pub fn with_ballistics(mut self, attack: Duration, release: Duration) -> Self {
        self.attack = attack;
        self.release = release;
        self
    }

    /// Sets the speaking thresholds (dBov); `off_dbov` is lowered to `on_dbov` if above it.
    pub fn with_speaking_thresholds(mut self, on_dbov: f32, off_dbov: f32) -> Self {
        self.speaking_on_dbov = on_dbov;
        self.speaking_off_dbov = off_dbov.min(on_dbov);
        self
    }

    /// Feeds the next block of samples; returns the smoothed level, dBov.
    pub fn update(&mut self, samples: &[i16]) -> f32 {
        if samples.is_empty() {
            return self.level_dbov();
        }
        let block = rms(samples);
        let elapsed = samples.len() as f64 / f64::from(self.sample_rate);
        let tau = if block > self.rms {
            self.attack
        } else {
            self.release
        }
        .as_secs_f64();
        let gain = if tau > 0.0 {
            1.0 - (-elapsed / tau).exp()
        } else {
            1.0
        };
        self.rms += gain * (block - self.rms);
        let level = self.level_dbov();
        if level >= self.speaking_on_dbov {
            self.speaking = true;
        } else if level < self.speaking_off_dbov {
            self.speaking = false;
        }
        level
    }

    /// The smoothed level, dBov (−127 before any sound).
    pub fn level_dbov(&self) -> f32 {
        to_dbov(self.rms)
    }

    /// Whether the level is above the speaking threshold (with hysteresis).
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Back to silence.
    pub fn reset(&mut self) {
        self.rms = 0.0;
        self.speaking = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, amplitude: f64, sample_rate: u32, len: usize) -> Vec<i16> {
        (0..len)
            .map(|i| {
                let t = i as f64 / f64::from(sample_rate);
                (amplitude * (std::f64::consts::TAU * freq * t).sin()).round() as i16
            })
            .collect()
    }

    #[test]
    fn finds_440_hz() {
        // 4096 samples at 48 kHz: 11.7 Hz bins, 440 Hz falls between bins 37 and 38.
        let f = dominant_frequency(&sine(440.0, 10_000.0, 48_000, 4096), 48_000).unwrap();
        assert!((f - 440.0).abs() < 2.0, "{f}");
    }

    #[test]
    fn finds_1_khz_and_off_bin_tones() {
        for (freq, rate, len) in [
            (1000.0, 48_000, 960),
            (1000.0, 48_000, 48_000),
            (1234.5, 44_100, 2048),
            (440.0, 16_000, 1000),
            (97.0, 48_000, 9600),
        ] {
            let f = dominant_frequency(&sine(freq, 8000.0, rate, len), rate).unwrap();
            let bin = f64::from(rate) / len as f64;
            let error = (f64::from(f) - freq).abs();
            assert!(
                error < 2.0_f64.max(0.1 * bin),
                "{freq} Hz at {rate}/{len}: {f}"
            );
        }
    }

    #[test]
    fn ignores_dc_and_noise_floor() {
        let mut samples = sine(440.0, 5000.0, 48_000, 4800);
        for s in &mut samples {
            *s = s.saturating_add(8000);
        }
        let f = dominant_frequency(&samples, 48_000).unwrap();
        assert!((f - 440.0).abs() < 2.0, "{f}");
    }

    #[test]
    fn silence_and_short_blocks_give_none() {
        assert_eq!(dominant_frequency(&[0; 4800], 48_000), None);
        assert_eq!(dominant_frequency(&[], 48_000), None);
        // −70 dBov: below the tone threshold.
        assert_eq!(
            dominant_frequency(&sine(440.0, 10.0, 48_000, 4800), 48_000),
            None
        );
        assert_eq!(
            dominant_frequency(&sine(440.0, 10_000.0, 48_000, 100), 48_000),
            None
        );
        assert_eq!(
            dominant_frequency(&sine(440.0, 10_000.0, 48_000, 4800), 0),
            None
        );
    }

    #[test]
    fn level_of_full_scale_sine_is_minus_3_dbov() {
        let level = level_dbov(&sine(1000.0, 32767.0, 48_000, 4800));
        assert!((level + 3.01).abs() < 0.05, "{level}");
        let square: Vec<i16> = (0..960)
            .map(|i| if i % 48 < 24 { i16::MAX } else { i16::MIN })
            .collect();
        assert!(level_dbov(&square).abs() < 0.01);
        // Half amplitude: −6 dB lower.
        let half = level_dbov(&sine(1000.0, 16384.0, 48_000, 4800));
        assert!((half - (level - 6.02)).abs() < 0.05, "{half}");
    }

    #[test]
    fn level_of_silence_is_minus_127() {
        assert_eq!(level_dbov(&[0; 960]), SILENCE_DBOV);
        assert_eq!(level_dbov(&[]), SILENCE_DBOV);
        // One LSB of noise is about −90 dBov, well inside the range.
        let lsb = level_dbov(&[1; 960]);
        assert!((lsb + 90.3).abs() < 0.1, "{lsb}");
    }

    #[test]
    fn meter_attacks_fast_and_releases_slowly() {
        let mut meter = LevelMeter::default();
        assert_eq!(meter.level_dbov(), SILENCE_DBOV);
        assert!(!meter.is_speaking());
        let speech = sine(300.0, 3000.0, 48_000, 960); // ≈ −24 dBov
        let silence = [0i16; 960];

        let first = meter.update(&speech);
        assert!(first > -26.0, "one 20 ms block is enough to rise: {first}");
        assert!(meter.is_speaking());
        for _ in 0..10 {
            meter.update(&speech);
        }
        let steady = meter.level_dbov();
        assert!((steady - level_dbov(&speech)).abs() < 0.5, "{steady}");

        // A 100 ms pause between words keeps the speaker highlighted.
        for _ in 0..5 {
            meter.update(&silence);
        }
        assert!(meter.is_speaking(), "{}", meter.level_dbov());
        assert!(meter.level_dbov() < steady);
        // A second of silence ends it.
        for _ in 0..50 {
            meter.update(&silence);
        }
        assert!(!meter.is_speaking(), "{}", meter.level_dbov());
        assert!(meter.level_dbov() < -60.0);
    }

    #[test]
    fn meter_hysteresis() {
        let mut meter = LevelMeter::new(48_000)
            .with_ballistics(Duration::ZERO, Duration::ZERO)
            .with_speaking_thresholds(-40.0, -50.0);
        let block = |dbov: f64| {
            sine(
                500.0,
                32767.0 * 2f64.sqrt() * 10f64.powf(dbov / 20.0),
                48_000,
                960,
            )
        };
        meter.update(&block(-45.0));
        assert!(!meter.is_speaking(), "below the on threshold");
        meter.update(&block(-35.0));
        assert!(meter.is_speaking());
        meter.update(&block(-45.0));
        assert!(meter.is_speaking(), "between the thresholds: stays on");
        meter.update(&block(-55.0));
        assert!(!meter.is_speaking());
        meter.update(&[]);
        assert!(!meter.is_speaking());
        meter.reset();
        assert_eq!(meter.level_dbov(), SILENCE_DBOV);
    }
}
