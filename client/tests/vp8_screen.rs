//! The screen preset through the real libvpx at 1920×1080: synthetic text stays sharp (and
//! sharper than with the camera preset at the same bitrate), the moving pattern keeps its
//! quality, frames above 1920×1080 are scaled to fit, and frames rate control drops are `None`.

mod common;

use common::psnr::psnr_y;
use common::screen_text::text_frame;
use videoroom_client::media::{
    I420Frame, PatternClock, PatternSource, ScreenScaler, VideoSource, Vp8Config, Vp8Decoder,
    Vp8Encoder, read_burned_in,
};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
/// The screen budget until congestion control drives it (plan §5).
const KBPS: u32 = 1200;
/// Capture interval at 15 fps, µs.
const FRAME_MICROS: u64 = 66_667;
const START_MICROS: u64 = 1_763_950_000_000_000;

/// One frame of `frames` with its capture time at 15 fps.
fn stamped(mut frame: I420Frame, n: u64) -> I420Frame {
    frame.frame_number = n;
    frame.capture_micros = START_MICROS + n * FRAME_MICROS;
    frame
}

/// What an encode + decode run over some frames gave.
#[derive(Debug, Default)]
struct Run {
    /// Y PSNR of each decoded frame against its source (dropped frames left out).
    psnr: Vec<f64>,
    /// Bytes of each produced frame.
    sizes: Vec<usize>,
    /// Frames rate control dropped.
    dropped: usize,
    /// Frames in.
    frames: usize,
    /// For each input frame, its index in `psnr`/`sizes` (`None`: dropped).
    index: Vec<Option<usize>>,
    /// "size/PSNR" or "D" per input frame, for the failure message.
    trace: Vec<String>,
}

impl Run {
    fn kbps(&self) -> f64 {
        let seconds = self.frames as f64 * FRAME_MICROS as f64 / 1e6;
        self.sizes.iter().sum::<usize>() as f64 * 8.0 / seconds / 1000.0
    }

    /// PSNR of input frame `n`, if it was encoded.
    fn psnr_at(&self, n: usize) -> Option<f64> {
        self.index.get(n).copied().flatten().map(|i| self.psnr[i])
    }
}

/// Encodes and decodes `frames` with `config`, checking every produced frame decodes.
fn run(config: Vp8Config, frames: impl IntoIterator<Item = I420Frame>) -> Run {
    let mut encoder = Vp8Encoder::new(config).expect("encoder");
    let mut decoder = Vp8Decoder::new().expect("decoder");
    let mut out = Run::default();
    for frame in frames {
        out.frames += 1;
        match encoder.encode(&frame).expect("a drop is not an error") {
            None => {
                out.dropped += 1;
                out.index.push(None);
                out.trace.push("D".into());
            }
            Some(encoded) => {
                assert_eq!(encoded.frame_number, frame.frame_number);
                out.index.push(Some(out.sizes.len()));
                out.sizes.push(encoded.data.len());
                let decoded = decoder
                    .decode(&encoded.data)
                    .expect("decodes")
                    .expect("every frame is shown");
                out.psnr.push(psnr_y(&frame, &decoded));
                out.trace.push(format!(
                    "{}k/{:.1}",
                    encoded.data.len() / 1000,
                    out.psnr.last().copied().unwrap_or(0.0)
                ));
            }
        }
    }
    out
}

fn pages(frames: impl Iterator<Item = (usize, u64)>) -> impl Iterator<Item = I420Frame> {
    frames.map(|(scroll, n)| stamped(text_frame(WIDTH, HEIGHT, scroll), n))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// 2 s of a static text page, then 1 s scrolling by a line per frame, at 15 fps.
fn static_then_scroll() -> Vec<I420Frame> {
    pages(
        (0..30)
            .map(|n| (0, n))
            .chain((1..=15).map(|s| (s, 29 + s as u64))),
    )
    .collect()
}

/// Text stays sharp: measured (cpu-used -4, 1200 kbit/s) the keyframe is 131 kB at 29.3 dB,
/// rate control then drops 8 frames to pay for it, and the page refines to 37.5 dB at 1.2 s,
/// 39.2 dB at 2 s; scrolling stays at 40.5-41 dB with ~8 kB frames; ~1140 kbit/s overall.
/// The floors leave ~1 dB for libvpx versions and load.
#[test]
fn text_stays_sharp_while_static_and_scrolling() {
    let run = run(Vp8Config::screen(WIDTH, HEIGHT, KBPS), static_then_scroll());
    let trace = run.trace.join(" ");
    eprintln!(
        "screen preset on text: {:.0} kbit/s, {} dropped, {trace}",
        run.kbps(),
        run.dropped
    );
    let after_2s = run.psnr_at(29).expect("the frame at 2 s is encoded");
    assert!(
        after_2s >= 38.0,
        "text after 2 s static: {after_2s:.2} dB < 38 dB"
    );
    let scroll: Vec<f64> = (30..45).filter_map(|i| run.psnr_at(i)).collect();
    assert!(scroll.len() >= 12, "scrolled frames dropped: {trace}");
    assert!(min(&scroll) >= 38.0, "scrolling text: {scroll:?} dB");
    assert!(
        run.kbps() <= f64::from(KBPS) * 1.25,
        "{:.0} kbit/s for a {KBPS} kbit/s target",
        run.kbps()
    );
}

/// The same text at the same bitrate through the camera preset is blurrier while the page
/// settles (measured: 1-2 s mean 35.6 dB vs 37.3 dB) and its keyframe is worse (27.0 vs 29.3 dB).
#[test]
fn the_screen_preset_beats_the_camera_preset_on_text() {
    let frames: Vec<I420Frame> = pages((0..30).map(|n| (0, n))).collect();
    let screen = run(Vp8Config::screen(WIDTH, HEIGHT, KBPS), frames.clone());
    let camera = run(Vp8Config::new(WIDTH, HEIGHT, KBPS), frames);
    let settle = |r: &Run| -> Vec<f64> { (15..30).filter_map(|i| r.psnr_at(i)).collect() };
    let (s, c) = (mean(&settle(&screen)), mean(&settle(&camera)));
    let (sk, ck) = (screen.psnr[0], camera.psnr[0]);
    eprintln!(
        "1-2 s mean: screen {s:.2} dB ({:.0} kbit/s), camera {c:.2} dB ({:.0} kbit/s); keyframe {sk:.2} vs {ck:.2} dB",
        screen.kbps(),
        camera.kbps()
    );
    assert!(s >= c + 0.5, "screen {s:.2} dB vs camera {c:.2} dB");
    assert!(sk > ck, "keyframe: screen {sk:.2} dB vs camera {ck:.2} dB");
}

/// The moving pattern (every block changes every frame): measured mean 36.4 dB, min 36.0 dB.
#[test]
fn the_moving_pattern_keeps_quality_and_stamps() {
    let mut source = PatternSource::new(WIDTH, HEIGHT, 15)
        .expect("pattern")
        .with_clock(PatternClock::Simulated {
            start_micros: START_MICROS,
        });
    let frames: Vec<I420Frame> = (0..30)
        .map(|_| source.next_frame().expect("pattern"))
        .collect();
    let mut encoder = Vp8Encoder::new(Vp8Config::screen(WIDTH, HEIGHT, KBPS)).expect("encoder");
    let mut decoder = Vp8Decoder::new().expect("decoder");
    let mut psnrs = Vec::new();
    for frame in &frames {
        let Some(encoded) = encoder.encode(frame).expect("a drop is not an error") else {
            continue;
        };
        let decoded = decoder
            .decode(&encoded.data)
            .expect("decodes")
            .expect("shown");
        assert_eq!(
            read_burned_in(&decoded),
            Some((frame.frame_number, frame.capture_micros))
        );
        psnrs.push(psnr_y(frame, &decoded));
    }
    eprintln!(
        "pattern: mean {:.2} dB, min {:.2} dB, {} of 30 frames",
        mean(&psnrs),
        min(&psnrs),
        psnrs.len()
    );
    assert!(
        psnrs.len() >= 27,
        "only {} of 30 frames encoded",
        psnrs.len()
    );
    assert!(min(&psnrs) >= 34.0, "pattern PSNR {psnrs:?}");
}

/// Screens above 1920×1080 are sent scaled to fit with their aspect ratio, and still decode to
/// the (scaled) picture.
#[test]
fn frames_above_1080p_are_scaled_to_fit() {
    let mut scaler = ScreenScaler::new();
    for ((width, height), expected) in [((2560, 1440), (1920, 1080)), ((3440, 1440), (1920, 802))] {
        let mut source = PatternSource::new(width, height, 15)
            .expect("pattern")
            .with_clock(PatternClock::Simulated {
                start_micros: START_MICROS,
            });
        let mut encoder = None;
        let mut decoder = Vp8Decoder::new().expect("decoder");
        let mut psnrs = Vec::new();
        for _ in 0..5 {
            let native = source.next_frame().expect("pattern");
            let sent = scaler.fit(&native).expect("scales");
            assert_eq!(
                (sent.width(), sent.height()),
                expected,
                "from {width}x{height}"
            );
            assert_eq!(sent.frame_number, native.frame_number);
            let encoder = encoder.get_or_insert_with(|| {
                Vp8Encoder::new(Vp8Config::screen(sent.width(), sent.height(), KBPS))
                    .expect("encoder")
            });
            let Some(encoded) = encoder.encode(&sent).expect("a drop is not an error") else {
                continue;
            };
            let decoded = decoder
                .decode(&encoded.data)
                .expect("decodes")
                .expect("shown");
            assert_eq!((decoded.width(), decoded.height()), expected);
            psnrs.push(psnr_y(&sent, &decoded));
        }
        eprintln!("{width}x{height} -> {expected:?}: {psnrs:.2?} dB");
        assert!(
            psnrs.len() >= 3,
            "{width}x{height}: {} of 5 frames",
            psnrs.len()
        );
        assert!(min(&psnrs) >= 27.0, "{width}x{height}: {psnrs:.2?} dB");
    }
}

/// Mode 2 and the drop threshold drop frames after the keyframe's burst (measured: 8 of the
/// first 10 at 1200 kbit/s, and a second keyframe costs about as many again): they come back as `None`, the stream stays decodable, and a
/// keyframe asked for while frames are dropped is still the next frame that comes out.
#[test]
fn dropped_frames_are_none_and_keep_a_wanted_keyframe() {
    let mut encoder = Vp8Encoder::new(Vp8Config::screen(WIDTH, HEIGHT, KBPS)).expect("encoder");
    let mut decoder = Vp8Decoder::new().expect("decoder");
    let mut dropped = 0;
    let mut produced = Vec::new();
    for frame in pages((0..30).map(|n| (0, n))) {
        // Asked for while rate control is still paying for the first keyframe.
        if frame.frame_number == 3 {
            encoder.force_keyframe();
        }
        match encoder.encode(&frame).expect("a drop is not an error") {
            None => dropped += 1,
            Some(encoded) => {
                decoder
                    .decode(&encoded.data)
                    .expect("decodes")
                    .expect("shown");
                produced.push((encoded.frame_number, encoded.keyframe));
            }
        }
    }
    eprintln!("dropped {dropped}; produced {produced:?}");
    assert!(dropped >= 1, "no frame was dropped: {produced:?}");
    assert!(produced.len() >= 8, "too few frames: {produced:?}");
    let after_request = produced
        .iter()
        .find(|(n, _)| *n >= 3)
        .expect("a later frame");
    assert!(
        after_request.1,
        "the asked-for keyframe was lost: {produced:?}"
    );
    assert_eq!(
        produced.iter().filter(|(_, k)| *k).count(),
        2,
        "{produced:?}"
    );
}
