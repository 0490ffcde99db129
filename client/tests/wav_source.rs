//! `WavSource`: reads back WAV files written with `hound`: 20 ms frames, looping, timestamps,
//! frequency kept (also across resampling), stereo/float handling, and bad input.

use std::path::PathBuf;
use videoroom_client::media::wav::{WavError, WavSource};
use videoroom_client::media::{AudioFrame, AudioSource, Channels, unix_micros_now};

const FRAME: usize = 960;

/// A fresh file path in the system temp dir, unique to this process and test.
fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("videoroom-wav-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

fn spec(channels: u16, rate: u32, float: bool) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: if float { 32 } else { 16 },
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    }
}

fn write_i16(name: &str, channels: u16, rate: u32, samples: &[i16]) -> PathBuf {
    let path = temp_path(name);
    let mut w = hound::WavWriter::create(&path, spec(channels, rate, false)).expect("create wav");
    for &s in samples {
        w.write_sample(s).expect("write sample");
    }
    w.finalize().expect("finalize wav");
    path
}

fn write_f32(name: &str, channels: u16, rate: u32, samples: &[f32]) -> PathBuf {
    let path = temp_path(name);
    let mut w = hound::WavWriter::create(&path, spec(channels, rate, true)).expect("create wav");
    for &s in samples {
        w.write_sample(s).expect("write sample");
    }
    w.finalize().expect("finalize wav");
    path
}

/// `seconds` of a sine at `hz` and half of full scale, at `rate`.
fn sine(hz: f64, rate: u32, seconds: f64) -> Vec<i16> {
    let n = (f64::from(rate) * seconds) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            ((std::f64::consts::TAU * hz * t).sin() * 16384.0).round() as i16
        })
        .collect()
}

/// Frequency of a tone from its upward zero crossings, measured between the first and the last.
fn frequency(samples: &[i16], rate: f64) -> f64 {
    let ups: Vec<usize> = samples
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0 && w[1] >= 0)
        .map(|(i, _)| i)
        .collect();
    assert!(ups.len() > 10, "no tone: {} crossings", ups.len());
    let (first, last) = (ups[0], ups[ups.len() - 1]);
    (ups.len() - 1) as f64 * rate / (last - first) as f64
}

fn read(src: &mut WavSource, frames: usize) -> Vec<AudioFrame> {
    (0..frames)
        .map(|_| src.next_frame().expect("frame"))
        .collect()
}

#[test]
fn frames_are_20ms_and_the_file_loops() {
    // 1500 distinct samples: not a whole number of frames, so the loop seam falls mid-frame.
    let ramp: Vec<i16> = (0..1500).map(|i| (i * 13 - 9000) as i16).collect();
    let path = write_i16("ramp.wav", 1, 48_000, &ramp);
    let mut src = WavSource::open(&path).unwrap();
    let frames = read(&mut src, 4);
    let all: Vec<i16> = frames.iter().flat_map(|f| f.samples.clone()).collect();
    for f in &frames {
        assert_eq!(f.samples.len(), FRAME);
        assert_eq!(f.channels, Channels::Mono);
    }
    for (k, &s) in all.iter().enumerate() {
        assert_eq!(
            s,
            ramp[k % ramp.len()],
            "sample {k} (loop seam at 1500, 3000)"
        );
    }
}

#[test]
fn timestamps_start_at_open_and_step_20ms() {
    let path = write_i16("silence.wav", 1, 48_000, &[0; 4800]);
    let before = unix_micros_now();
    let mut src = WavSource::open(&path).unwrap();
    let after = unix_micros_now();
    let frames = read(&mut src, 12);
    assert!(
        (before..=after).contains(&frames[0].capture_micros),
        "first frame stamped {} not within open ({before}..={after})",
        frames[0].capture_micros
    );
    for pair in frames.windows(2) {
        assert_eq!(pair[1].capture_micros - pair[0].capture_micros, 20_000);
    }
}

#[test]
fn a_440_hz_tone_stays_440_hz() {
    let path = write_i16("a440.wav", 1, 48_000, &sine(440.0, 48_000, 1.0));
    let mut src = WavSource::open(&path).unwrap();
    let samples: Vec<i16> = read(&mut src, 40)
        .iter()
        .flat_map(|f| f.samples.clone())
        .collect();
    let hz = frequency(&samples, 48_000.0);
    assert!((hz - 440.0).abs() < 1.0, "measured {hz:.2} Hz");
}

#[test]
fn a_44k1_file_is_resampled_to_48k_without_changing_pitch() {
    let path = write_i16("a440-44k1.wav", 1, 44_100, &sine(440.0, 44_100, 1.0));
    let mut src = WavSource::open(&path).unwrap();
    assert_eq!(src.spec().sample_rate, 44_100);
    let frames = read(&mut src, 40);
    assert!(frames.iter().all(|f| f.samples.len() == FRAME));
    // Skip the resampler's start-up delay.
    let samples: Vec<i16> = frames[3..].iter().flat_map(|f| f.samples.clone()).collect();
    // Played at 48 kHz without resampling it would measure 479 Hz.
    let hz = frequency(&samples, 48_000.0);
    assert!((hz - 440.0).abs() < 2.0, "measured {hz:.2} Hz");
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!(
        (15_000..=17_800).contains(&peak),
        "amplitude changed: peak {peak}"
    );
}

#[test]
fn stereo_float_is_averaged_to_mono_or_kept_as_stereo() {
    let stereo: Vec<f32> = (0..3 * FRAME).flat_map(|_| [0.6f32, 0.2]).collect();
    let path = write_f32("stereo-float.wav", 2, 48_000, &stereo);

    let mut mono = WavSource::open(&path).unwrap();
    let f = mono.next_frame().unwrap();
    assert_eq!((f.channels, f.samples.len()), (Channels::Mono, FRAME));
    // (0.6 + 0.2) / 2 = 0.4 of full scale.
    assert!(
        f.samples
            .iter()
            .all(|&s| (i32::from(s) - 13_107).abs() <= 1),
        "{:?}",
        &f.samples[..4]
    );

    let mut both = WavSource::open_with(&path, Channels::Stereo).unwrap();
    let f = both.next_frame().unwrap();
    assert_eq!((f.channels, f.samples.len()), (Channels::Stereo, 2 * FRAME));
    for lr in f.samples.chunks_exact(2) {
        assert!((i32::from(lr[0]) - 19_661).abs() <= 1, "left {}", lr[0]);
        assert!((i32::from(lr[1]) - 6_554).abs() <= 1, "right {}", lr[1]);
    }
}

#[test]
fn a_missing_file_is_an_open_error() {
    let path = temp_path("does-not-exist.wav");
    let err = WavSource::open(&path).unwrap_err();
    assert!(matches!(err, WavError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("does-not-exist.wav"), "{err}");
}

#[test]
fn a_garbage_file_is_a_header_error() {
    let path = temp_path("garbage.wav");
    std::fs::write(
        &path,
        b"this is not a WAV file, just some text pretending to be one",
    )
    .expect("write garbage");
    let err = WavSource::open(&path).unwrap_err();
    assert!(matches!(err, WavError::BadHeader { .. }), "{err:?}");
}

#[test]
fn unusable_files_are_rejected_clearly() {
    let path = write_i16("three-channels.wav", 3, 48_000, &[0; 3 * 960]);
    let err = WavSource::open(&path).unwrap_err();
    assert!(matches!(err, WavError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("3 channels"), "{err}");

    let path = write_i16("empty.wav", 1, 48_000, &[]);
    let err = WavSource::open(&path).unwrap_err();
    assert!(matches!(err, WavError::Empty { .. }), "{err:?}");
}
