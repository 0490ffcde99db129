//! The replay fixtures end to end: generate, open, replay at the capture times, decode; and
//! what a missing, damaged or truncated fixture gives.

use super::*;
use crate::replay::ivf;
use std::sync::atomic::{AtomicU32, Ordering};
use videoroom_client::media::{
    AudioSource, Channels, EncodedAudioSource, EncodedVideoSource, OpusDecoder, SourceError,
    VideoSource, Vp8Decoder, read_burned_in, unix_micros_now,
};

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "videoroom-replay-{name}-{}-{}-{}",
            std::process::id(),
            unix_micros_now(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn capture_of(meta: &FixtureMeta, k: u64) -> u64 {
    capture_micros(meta.start_unix_micros, meta.fps, k)
}

fn spec(seconds: u32, start_unix_micros: u64) -> FixtureSpec {
    FixtureSpec {
        width: 640,
        height: 360,
        fps: 30,
        seconds,
        start_unix_micros,
        target_kbps: 800,
        keyframe_interval: 15,
        tone_hz: 440.0,
        amplitude: 0.5,
    }
}

#[test]
fn a_fixture_replays_every_layer_at_its_capture_times() {
    let dir = TempDir::new("video");
    let started = std::time::Instant::now();
    // Starts 1 s from now: generating takes ~0.5 s in a debug build; the replay then sends
    // from frame 0 (under heavy load it starts later, which the checks below allow).
    let meta = generate(&dir.0, &spec(2, unix_micros_now() + 1_000_000)).expect("generate");
    eprintln!("generate (2 s, 640x360): {:?}", started.elapsed());
    assert_eq!(meta.layers, vec![(640, 360), (320, 180), (160, 90)]);
    assert_eq!(meta.frames, 60);
    assert_eq!(meta.version, FORMAT_VERSION);
    // A 0.5 full-scale sine: 20·log10(0.5/√2) ≈ −9 dBov.
    assert!(
        (meta.audio_level_dbov + 9.03).abs() < 0.2,
        "{}",
        meta.audio_level_dbov
    );

    let mut video = ReplayVideo::open(&dir.0).expect("open");
    assert_eq!(video.meta(), &meta);
    assert_eq!(video.layer_sizes(), meta.layers);
    assert!(video.next_frame().is_err());
    assert!(video.encoded().is_some());

    // The whole recording: every capture of every layer, keyframes exactly every 15 frames.
    assert_eq!(video.captures.len(), 60);
    for (k, capture) in video.captures.iter().enumerate() {
        let k = k as u64;
        assert_eq!(capture.frame_number, k);
        assert_eq!(capture.capture_micros, capture_of(&meta, k));
        let mut layers: Vec<usize> = capture.frames.iter().map(|f| f.layer).collect();
        layers.sort_unstable();
        assert_eq!(layers, vec![0, 1, 2], "frame {k}");
        for f in &capture.frames {
            assert_eq!(
                f.keyframe,
                k.is_multiple_of(15),
                "frame {k} layer {}",
                f.layer
            );
        }
    }

    // Layer 0 decodes to the pattern, stamped with each frame's number and capture time.
    let mut decoder = Vp8Decoder::new().expect("decoder");
    let mut stamped = 0;
    for capture in &video.captures {
        let frame = capture
            .frames
            .iter()
            .find(|f| f.layer == 0)
            .expect("layer 0");
        let Some(picture) = decoder.decode(&frame.data).expect("decode") else {
            continue;
        };
        assert_eq!((picture.width(), picture.height()), (640, 360));
        if let Some(stamp) = read_burned_in(&picture) {
            assert_eq!(stamp, (capture.frame_number, capture.capture_micros));
            stamped += 1;
        }
    }
    assert!(stamped >= 50, "{stamped} of 60 frames had a readable stamp");

    // Paced replay: starts at the first capture still to come, then sends every capture in
    // order, none before its time, each with all its layers.
    let first_call = unix_micros_now();
    let mut sent: Vec<u64> = Vec::new();
    loop {
        match video.next_frames() {
            Ok(frames) => {
                let now = unix_micros_now();
                let (_, first) = frames.first().expect("frames of a capture");
                let k = first.frame_number;
                assert!(now >= first.capture_micros, "frame {k} sent early");
                let mut layers: Vec<usize> = frames.iter().map(|(l, _)| *l).collect();
                layers.sort_unstable();
                assert_eq!(layers, vec![0, 1, 2]);
                for (_, f) in &frames {
                    assert_eq!(f.frame_number, k);
                    assert_eq!(f.capture_micros, capture_of(&meta, k));
                    assert_eq!(f.keyframe, k.is_multiple_of(15));
                }
                sent.push(k);
            }
            Err(SourceError::Ended) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let first = *sent.first().expect("some captures were still to come");
    assert!(capture_of(&meta, first) >= first_call);
    assert!(first == 0 || capture_of(&meta, first - 1) < first_call);
    assert_eq!(sent, (first..60).collect::<Vec<_>>());
    assert!(matches!(video.next_frames(), Err(SourceError::Ended)));

    // Opened again after the end: nothing left to send.
    let mut late = ReplayVideo::open(&dir.0).expect("open");
    assert!(matches!(late.next_frames(), Err(SourceError::Ended)));
}

#[test]
fn audio_loops_over_decodable_opus_packets() {
    let dir = TempDir::new("audio");
    let meta = generate(&dir.0, &spec(1, unix_micros_now())).expect("generate");
    let mut audio = ReplayAudio::open(&dir.0).expect("open");
    assert_eq!(audio.packets.len(), 50);
    assert!(audio.next_frame().is_err());
    assert!(audio.encoded().is_some());
    let mut decoder = OpusDecoder::new(Channels::Mono).expect("decoder");
    let mut first_loop = Vec::new();
    for i in 0..120 {
        let packet = audio.next_packet().expect("packet");
        assert!(!packet.payload.is_empty());
        assert!(packet.voice);
        assert_eq!(packet.level_dbov, meta.audio_level_dbov);
        assert_eq!(decoder.decode(&packet.payload).expect("decode").len(), 960);
        if i < 50 {
            first_loop.push(packet.payload);
        } else {
            assert_eq!(packet.payload, first_loop[i % 50], "packet {i}");
        }
    }
}

/// The `ogg` crate's reader on a damaged `audio.ogg`: every cut and a flipped byte are
/// errors that name the file, never a panic or a shorter loop.
#[test]
fn truncated_or_damaged_audio_is_an_error() {
    let dir = TempDir::new("bad-audio");
    generate(&dir.0, &spec(1, unix_micros_now())).expect("generate");
    let path = dir.0.join(AUDIO_FILE);
    let good = std::fs::read(&path).expect("read");
    assert_eq!(audio::read(&path, &good).expect("good file").len(), 50);

    // Cut inside a page (its body is missing) and at a page boundary (no end-of-stream page).
    let err = audio::read(&path, &good[..good.len() - 10]).expect_err("cut in a page");
    assert!(matches!(err, ReplayError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("cut short"), "{err}");
    let second_page = 28 + 19; // OpusHead alone on page 0: header, 1 lacing value, 19 bytes
    assert_eq!(&good[second_page..second_page + 4], b"OggS");
    let err = audio::read(&path, &good[..second_page]).expect_err("cut at a page");
    assert!(err.to_string().contains("cut short"), "{err}");
    for cut in (1..good.len()).step_by(7) {
        assert!(audio::read(&path, &good[..cut]).is_err(), "cut at {cut}");
    }

    // A flipped byte in the audio: the page checksum says so.
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xFF;
    std::fs::write(&path, &flipped).expect("write");
    let err = ReplayAudio::open(&dir.0).expect_err("checksum");
    assert!(
        matches!(
            err,
            ReplayError::Ogg {
                source: ogg::OggReadError::HashMismatch(..),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("audio.ogg"), "{err}");
}

#[test]
fn missing_or_broken_fixtures_are_errors() {
    let dir = TempDir::new("broken");
    let err = ReplayVideo::open(&dir.0).expect_err("missing dir");
    assert!(matches!(err, ReplayError::Io { .. }), "{err}");
    assert!(err.to_string().contains(META_FILE), "{err}");
    assert!(ReplayAudio::open(&dir.0).is_err());

    std::fs::create_dir_all(&dir.0).expect("mkdir");
    std::fs::write(dir.0.join(META_FILE), b"{ not json").expect("write");
    let err = ReplayVideo::open(&dir.0).expect_err("corrupt meta");
    assert!(matches!(err, ReplayError::BadMeta { .. }), "{err}");

    std::fs::write(dir.0.join(META_FILE), br#"{"version": 99}"#).expect("write");
    let err = ReplayAudio::open(&dir.0).expect_err("other version");
    assert!(
        matches!(err, ReplayError::Version { found: 99, .. }),
        "{err}"
    );

    // A good fixture whose files are then damaged.
    generate(&dir.0, &spec(1, unix_micros_now())).expect("generate");
    let layer = dir.0.join(layer_file(1));
    let bytes = std::fs::read(&layer).expect("read");
    std::fs::write(&layer, &bytes[..bytes.len() - 10]).expect("truncate");
    let err = ReplayVideo::open(&dir.0).expect_err("truncated layer");
    assert!(matches!(err, ReplayError::Corrupt { .. }), "{err}");
    std::fs::write(&layer, &bytes[..ivf::HEADER_LEN]).expect("truncate");
    assert!(ReplayVideo::open(&dir.0).is_err());
    std::fs::write(dir.0.join(AUDIO_FILE), b"OggS").expect("write");
    let err = ReplayAudio::open(&dir.0).expect_err("not Ogg");
    assert!(matches!(err, ReplayError::Ogg { .. }), "{err}");
    assert!(err.to_string().contains(AUDIO_FILE), "{err}");

    assert!(matches!(
        generate(
            &dir.0,
            &FixtureSpec {
                fps: 0,
                ..spec(1, 0)
            }
        ),
        Err(ReplayError::InvalidSpec(_))
    ));
}

/// How long a benchmark-length fixture takes to make:
/// `cargo test -p videoroom-bot --release --bin videoroom-bot replay -- --ignored --nocapture`.
#[test]
#[ignore = "slow: a 60 s fixture"]
fn time_a_60_second_fixture() {
    let dir = TempDir::new("timing");
    let started = std::time::Instant::now();
    let meta = generate(&dir.0, &spec(60, unix_micros_now())).expect("generate");
    let size: u64 = std::fs::read_dir(&dir.0)
        .expect("list")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "generate 60 s 640x360 ({} frames, {} layers): {:?}, {} kB",
        meta.frames,
        meta.layers.len(),
        started.elapsed(),
        size / 1000
    );
}
