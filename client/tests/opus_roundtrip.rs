//! Opus round trip of a 440 Hz tone: the decoded audio is still a 440 Hz tone of similar energy.

use videoroom_client::media::opus::{FRAME_SAMPLES, SAMPLE_RATE};
use videoroom_client::media::{
    AudioSource, Channels, OpusConfig, OpusDecoder, OpusEncoder, ToneSource,
};

/// Power of `samples` at `freq` (Goertzel).
fn goertzel(samples: &[f64], freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / f64::from(SAMPLE_RATE);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// The strongest frequency between 50 Hz and 4 kHz: 10 Hz steps, then 1 Hz steps around the peak.
fn dominant_frequency(samples: &[f64]) -> f64 {
    let best = |range: Vec<f64>| {
        range
            .into_iter()
            .map(|f| (f, goertzel(samples, f)))
            .fold((0.0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a })
            .0
    };
    let coarse = best((5..=400).map(|k| f64::from(k) * 10.0).collect());
    best((-10..=10).map(|d| coarse + f64::from(d)).collect())
}

fn rms(samples: &[f64]) -> f64 {
    (samples.iter().map(|x| x * x).sum::<f64>() / samples.len() as f64).sqrt()
}

fn roundtrip(channels: Channels) {
    let mut source = ToneSource::new(440.0, 0.5, channels);
    let mut encoder = OpusEncoder::new(OpusConfig {
        channels,
        ..OpusConfig::voice()
    })
    .expect("tone, encode or decode failed");
    let mut decoder = OpusDecoder::new(channels).expect("tone, encode or decode failed");
    let n = channels.count();
    let (mut input, mut output) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let frame = source.next_frame().expect("tone, encode or decode failed");
        assert_eq!(frame.samples.len(), FRAME_SAMPLES * n);
        let packet = encoder
            .encode(&frame)
            .expect("tone, encode or decode failed");
        assert!(
            !packet.is_empty() && packet.len() < 400,
            "packet of {} bytes",
            packet.len()
        );
        let pcm = decoder
            .decode(&packet)
            .expect("tone, encode or decode failed");
        assert_eq!(pcm.len(), FRAME_SAMPLES * n);
        // First channel only.
        input.extend(frame.samples.iter().step_by(n).map(|&s| f64::from(s)));
        output.extend(pcm.iter().step_by(n).map(|&s| f64::from(s)));
    }
    // Skip the codec's start-up (lookahead and the first frames' ramp).
    let output = &output[4800..];
    let input = &input[4800..];
    let freq = dominant_frequency(output);
    assert!((freq - 440.0).abs() <= 10.0, "dominant frequency {freq} Hz");
    let ratio = rms(output) / rms(input);
    eprintln!("{channels:?}: dominant {freq} Hz, RMS out/in {ratio:.3}");
    assert!((0.5..=2.0).contains(&ratio), "RMS ratio {ratio}");
    // Packet loss concealment yields a full frame too.
    assert_eq!(
        decoder
            .decode_lost()
            .expect("tone, encode or decode failed")
            .len(),
        FRAME_SAMPLES * n
    );
}

#[test]
fn tone_440hz_mono_survives_opus() {
    roundtrip(Channels::Mono);
}

#[test]
fn tone_440hz_stereo_survives_opus() {
    roundtrip(Channels::Stereo);
}

#[test]
fn goertzel_finds_other_tones_too() {
    // Guards the detector itself: a 1 kHz tone is not reported as 440 Hz.
    let mut source = ToneSource::new(1000.0, 0.5, Channels::Mono);
    let samples: Vec<f64> = (0..10)
        .flat_map(|_| source.next_frame().unwrap().samples)
        .map(f64::from)
        .collect();
    assert!((dominant_frequency(&samples) - 1000.0).abs() <= 2.0);
}

#[test]
fn wrong_frame_length_is_an_error() {
    let mut encoder = OpusEncoder::new(OpusConfig::voice()).unwrap();
    let mut frame = ToneSource::new(440.0, 0.5, Channels::Mono)
        .next_frame()
        .unwrap();
    frame.samples.truncate(100);
    assert!(encoder.encode(&frame).is_err());
    let mut decoder = OpusDecoder::new(Channels::Mono).unwrap();
    assert!(decoder.decode(&[0u8; 2000]).is_err());
}
