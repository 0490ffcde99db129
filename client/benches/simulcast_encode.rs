//! Simulcast encode cost: CPU per captured 1280×720 frame (30 fps content, one encoder thread)
//! of
//! - `single`: one 720p layer (the full layer's encoder alone),
//! - `separate`: three independent encoders plus box downscaling, as `publish/encode.rs`'s
//!   `EncodeStage` does (`camera_layers`, `LayerSpec::size`/`target_kbps`, quarter scaled from
//!   half),
//! - `multi`: libvpx's multi-resolution encoder ([`Vp8MultiEncoder`]) at the same sizes and
//!   targets (the same box downscaling, done inside the wrapper),
//! - `multi+pli`: `multi` with a keyframe forced on the top layer alone at frame 30 (a PLI), to
//!   see whether the layers' motion reuse survives a keyframe on one layer,
//!
//! with each layer's produced bitrate and Y PSNR (decoded vs the downscaled source), so the
//! cheaper variant is compared at equal rates and quality. Variants are interleaved in each run
//! (this machine is shared); figures are medians over the runs of thread CPU time
//! (`/proc/thread-self/schedstat`), pattern generation excluded.
//!
//! Run: `cargo bench -p videoroom-client --bench simulcast_encode`
//! Options (after `--`): `--runs N` (default 5), `--frames N` (default 150), `--only NAME` (one
//! variant, e.g. under `valgrind --tool=callgrind` or `perf record`), `--cpu-used N` (libvpx
//! speed; the app's 8 lets libvpx pick its speed from wall-clock encode times, so a slowed-down
//! run — valgrind, a loaded machine — encodes faster and worse; -4 fixes speed 4, which is
//! where 8 settles when encodes are fast), `--no-quality` (skip the decode and PSNR pass).

use std::time::Instant;

use videoroom_client::media::downscale::downscale;
use videoroom_client::media::vp8_multi::{LayerTarget, Vp8MultiEncoder};
use videoroom_client::media::{
    EncodedFrame, I420Frame, PatternClock, PatternSource, VideoSource, Vp8Config, Vp8Decoder,
    Vp8Encoder,
};
use videoroom_client::publish::{LayerSpec, camera_layers};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const FPS: u32 = 30;
const TOP_KBPS: u32 = 1500;

/// CPU time of this thread in nanoseconds, if available.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The layers as `EncodeStage` has them: highest resolution first, size and target from the
/// `LayerSpec`s.
fn layers() -> Vec<(LayerSpec, LayerTarget)> {
    let mut specs = camera_layers(1);
    specs.sort_by_key(|l| l.divisor);
    specs
        .into_iter()
        .filter_map(|spec| {
            let (width, height) = spec.size(WIDTH, HEIGHT)?;
            Some((
                spec,
                LayerTarget {
                    width,
                    height,
                    target_kbps: spec.target_kbps(TOP_KBPS),
                },
            ))
        })
        .collect()
}

/// The full layer's configuration, as `new_encoder` builds it for the camera (`cpu_used`
/// overridden by `--cpu-used`; the smaller layers' by `--small-cpu-used`).
fn top_config() -> Vp8Config {
    let mut config = Vp8Config::new(WIDTH, HEIGHT, TOP_KBPS);
    config.fps = FPS;
    if let Some(cpu) = arg_value("--cpu-used") {
        config.cpu_used = cpu;
    }
    config
}

/// The number after `flag` on the command line.
fn arg_value(flag: &str) -> Option<i32> {
    std::env::args()
        .skip_while(|a| a != flag)
        .nth(1)
        .and_then(|v| v.parse().ok())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Single,
    Separate,
    Multi,
    MultiPli,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Single,
        Variant::Separate,
        Variant::Multi,
        Variant::MultiPli,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Single => "single",
            Variant::Separate => "separate",
            Variant::Multi => "multi",
            Variant::MultiPli => "multi+pli",
        }
    }
}

/// One run of one variant.
struct Run {
    cpu_ns: u64,
    wall_ns: u64,
    /// Encoded frames per layer (highest first).
    output: Vec<Vec<EncodedFrame>>,
    /// `separate` only: wall ns spent downscaling, and encoding each layer.
    scale_ns: u64,
    layer_ns: Vec<u64>,
    /// Wall ns of frames 60.. (after the PLI of `multi+pli` has settled).
    tail_ns: u64,
}

fn run(variant: Variant, frames: &[I420Frame]) -> Run {
    let layers = layers();
    let top = top_config();
    let mut output: Vec<Vec<EncodedFrame>> = vec![Vec::new(); layers.len()];
    let mut layer_ns = vec![0u64; layers.len()];
    let mut scale_ns = 0u64;
    let mut tail_ns = 0u64;
    // Encoders are created outside the measurement (as publish/ does once per track).
    let mut single =
        (variant == Variant::Single).then(|| Vp8Encoder::new(top.clone()).expect("encoder"));
    let mut separate: Vec<Vp8Encoder> = if variant == Variant::Separate {
        layers
            .iter()
            .enumerate()
            .map(|(i, (_, t))| {
                let mut c = top.clone();
                c.width = t.width;
                c.height = t.height;
                c.target_kbps = t.target_kbps;
                if i > 0
                    && let Some(cpu) = arg_value("--small-cpu-used")
                {
                    c.cpu_used = cpu;
                }
                Vp8Encoder::new(c).expect("encoder")
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut multi = matches!(variant, Variant::Multi | Variant::MultiPli).then(|| {
        let targets: Vec<LayerTarget> = layers.iter().map(|(_, t)| *t).collect();
        Vp8MultiEncoder::new(&top, &targets).expect("multi encoder")
    });

    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    for (n, frame) in frames.iter().enumerate() {
        let f0 = Instant::now();
        if let Some(encoder) = single.as_mut()
            && let Some(p) = encoder.encode(frame).expect("encode")
        {
            output[0].push(p);
        }
        if !separate.is_empty() {
            // EncodeStage::step: each layer scaled from the previous (larger) one.
            let mut scaled: Option<I420Frame> = None;
            for (i, ((_, target), encoder)) in layers.iter().zip(&mut separate).enumerate() {
                let s0 = Instant::now();
                let input = if (target.width, target.height) == (frame.width(), frame.height()) {
                    None
                } else {
                    let from = scaled.as_ref().unwrap_or(frame);
                    Some(downscale(from, target.width, target.height).expect("downscale"))
                };
                let s1 = Instant::now();
                scale_ns += (s1 - s0).as_nanos() as u64;
                let picture = input.as_ref().unwrap_or(frame);
                if let Some(p) = encoder.encode(picture).expect("encode") {
                    output[i].push(p);
                }
                layer_ns[i] += s1.elapsed().as_nanos() as u64;
                if input.is_some() {
                    scaled = input;
                }
            }
        }
        if let Some(encoder) = multi.as_mut() {
            if variant == Variant::MultiPli && n == 30 {
                encoder.force_keyframe_layer(0).expect("layer");
            }
            for (i, p) in encoder
                .encode(frame)
                .expect("encode")
                .into_iter()
                .enumerate()
            {
                if let Some(p) = p {
                    output[i].push(p);
                }
            }
        }
        if n >= 60 {
            tail_ns += f0.elapsed().as_nanos() as u64;
        }
    }
    let wall_ns = t0.elapsed().as_nanos() as u64;
    let cpu_ns = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall_ns,
    };
    Run {
        cpu_ns,
        wall_ns,
        output,
        scale_ns,
        layer_ns,
        tail_ns,
    }
}

/// Y PSNR of `decoded` against `source` (same size), in dB (99 for identical planes).
fn psnr_y(decoded: &I420Frame, source: &I420Frame) -> f64 {
    let sse: u64 = decoded
        .y()
        .iter()
        .zip(source.y())
        .map(|(&a, &b)| {
            let d = i64::from(a) - i64::from(b);
            (d * d) as u64
        })
        .sum();
    if sse == 0 {
        return 99.0;
    }
    let mse = sse as f64 / source.y().len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// Per layer: (kbit/s produced, mean Y PSNR over the decoded frames, keyframes).
fn quality(output: &[Vec<EncodedFrame>], sources: &[Vec<I420Frame>]) -> Vec<(f64, f64, usize)> {
    output
        .iter()
        .zip(sources)
        .map(|(packets, sources)| {
            let bytes: usize = packets.iter().map(|p| p.data.len()).sum();
            let kbps = bytes as f64 * 8.0 * f64::from(FPS) / sources.len() as f64 / 1000.0;
            let mut decoder = Vp8Decoder::new().expect("decoder");
            let mut sum = 0.0;
            let mut count = 0;
            for p in packets {
                let Some(picture) = decoder.decode(&p.data).expect("decode") else {
                    continue;
                };
                let source = &sources[p.frame_number as usize];
                sum += psnr_y(&picture, source);
                count += 1;
            }
            let keyframes = packets.iter().filter(|p| p.keyframe).count();
            (kbps, sum / f64::from(count.max(1)), keyframes)
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs: usize = arg("--runs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let count: usize = arg("--frames")
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
        .max(1);
    let only = arg("--only");
    let variants: Vec<Variant> = Variant::ALL
        .into_iter()
        .filter(|v| only.as_deref().is_none_or(|o| o == v.name()))
        .collect();
    assert!(
        !variants.is_empty(),
        "--only takes single, separate, multi or multi+pli"
    );

    let mut source = PatternSource::new(WIDTH, HEIGHT, FPS)
        .expect("valid size")
        .with_clock(PatternClock::Simulated {
            start_micros: 1_000_000,
        });
    let frames: Vec<I420Frame> = (0..count)
        .map(|_| source.next_frame().expect("synthetic source"))
        .collect();
    let layers = layers();
    println!(
        "Simulcast encode, {WIDTH}x{HEIGHT}@{FPS} pattern, {count} frames x {runs} runs (interleaved), one thread, cpu-used {}; layers {}",
        top_config().cpu_used,
        layers
            .iter()
            .map(|(s, t)| format!(
                "{}={}x{}@{}k",
                s.rid.unwrap_or("-"),
                t.width,
                t.height,
                t.target_kbps
            ))
            .collect::<Vec<_>>()
            .join(" ")
    );

    let mut results: Vec<Vec<Run>> = variants.iter().map(|_| Vec::new()).collect();
    for r in 0..runs {
        // Rotate the order so no variant always runs first (cache, frequency, neighbours).
        for k in 0..variants.len() {
            let i = (k + r) % variants.len();
            let done = run(variants[i], &frames);
            results[i].push(done);
        }
    }

    let per = count as f64;
    let single_cpu = variants
        .iter()
        .position(|&v| v == Variant::Single)
        .map(|i| median(results[i].iter().map(|r| r.cpu_ns as f64 / per).collect()));
    println!(
        "  {:10} {:>12} {:>12} {:>9} {:>12} {:>10}",
        "variant", "CPU ms/frame", "wall ms/fr", "x single", "% core @30", "tail ms/fr"
    );
    for (v, runs) in variants.iter().zip(&results) {
        let cpu = median(runs.iter().map(|r| r.cpu_ns as f64 / per).collect());
        let wall = median(runs.iter().map(|r| r.wall_ns as f64 / per).collect());
        let tail_frames = count.saturating_sub(60).max(1) as f64;
        let tail = median(
            runs.iter()
                .map(|r| r.tail_ns as f64 / tail_frames)
                .collect(),
        );
        let ratio = single_cpu.map_or("-".to_string(), |s| format!("{:.2}x", cpu / s));
        println!(
            "  {:10} {:12.3} {:12.3} {:>9} {:11.1}% {:10.3}",
            v.name(),
            cpu / 1e6,
            wall / 1e6,
            ratio,
            cpu * f64::from(FPS) / 1e9 * 100.0,
            tail / 1e6
        );
        if *v == Variant::Separate {
            let scale = median(runs.iter().map(|r| r.scale_ns as f64 / per).collect());
            let parts: Vec<String> = layers
                .iter()
                .enumerate()
                .map(|(i, (s, _))| {
                    let ns = median(runs.iter().map(|r| r.layer_ns[i] as f64 / per).collect());
                    format!("{} {:.3}", s.rid.unwrap_or("-"), ns / 1e6)
                })
                .collect();
            println!(
                "    separate breakdown (wall ms/frame): downscale {:.3}, encode {}",
                scale / 1e6,
                parts.join(", ")
            );
        }
    }

    if args.iter().any(|a| a == "--no-quality") {
        return;
    }
    // Quality and rates, from each variant's last run.
    let mut sources: Vec<Vec<I420Frame>> = vec![frames.clone()];
    for (i, (_, t)) in layers.iter().enumerate().skip(1) {
        let scaled = sources[i - 1]
            .iter()
            .map(|f| downscale(f, t.width, t.height).expect("downscale"))
            .collect();
        sources.push(scaled);
    }
    println!("  per layer: produced kbit/s (target), Y PSNR vs downscaled source, keyframes");
    for (v, runs) in variants.iter().zip(&results) {
        let Some(last) = runs.last() else { continue };
        let figures = quality(&last.output, &sources);
        let text: Vec<String> = figures
            .iter()
            .zip(&layers)
            .take(if *v == Variant::Single {
                1
            } else {
                layers.len()
            })
            .map(|((kbps, psnr, kf), (s, t))| {
                format!(
                    "{} {kbps:6.0} ({:4}) {psnr:5.2} dB {kf} kf",
                    s.rid.unwrap_or("-"),
                    t.target_kbps
                )
            })
            .collect();
        println!("  {:10} {}", v.name(), text.join(" | "));
    }
}
