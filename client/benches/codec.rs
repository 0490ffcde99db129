//! Codec speed: VP8 encode/decode ms per frame at 640x360 and 1280x720 (30 fps content,
//! real-time settings, one encoder thread), the share of one core a 720p30 encode needs, the
//! 1920×1080 screen preset on a static text page and on the moving pattern (ms per frame, share
//! of a core at 5 and 15 fps; the motion gate's block hashing), and Opus µs per 20 ms frame.
//! Each figure is the median over several runs.
//!
//! Run: `cargo bench -p videoroom-client --bench codec`
//!
//! Times are wall-clock and, where Linux exposes it (`/proc/thread-self/schedstat`), also CPU
//! time of the benchmark thread, which is what matters on a busy machine.

use std::time::{Duration, Instant};

#[path = "../tests/common/screen_text.rs"]
mod screen_text;

use videoroom_client::media::{
    AudioSource, Channels, EncodedFrame, I420Frame, MotionGate, OpusConfig, OpusEncoder,
    PatternClock, PatternSource, ToneSource, VideoSource, Vp8Config, Vp8Decoder, Vp8Encoder,
};

const RUNS: usize = 5;
const FRAMES: usize = 90;

/// CPU time of this thread in nanoseconds, if available.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Measures `f` and returns (wall ns, CPU ns if known).
fn measure(f: impl FnOnce()) -> (u64, Option<u64>) {
    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    f();
    let wall = t0.elapsed().as_nanos() as u64;
    let cpu = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    (wall, cpu)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Figures {
    wall: f64,
    cpu: Option<f64>,
}

impl Figures {
    fn from_runs(runs: &[(u64, Option<u64>)], per: f64) -> Self {
        let wall = median(runs.iter().map(|r| r.0 as f64 / per).collect());
        let cpu = runs
            .iter()
            .map(|r| r.1.map(|c| c as f64 / per))
            .collect::<Option<Vec<_>>>();
        Self {
            wall,
            cpu: cpu.map(median),
        }
    }

    fn show(&self, scale: f64, unit: &str) -> String {
        match self.cpu {
            Some(cpu) => format!(
                "{:8.3} {unit} wall, {:8.3} {unit} CPU",
                self.wall / scale,
                cpu / scale
            ),
            None => format!("{:8.3} {unit} wall", self.wall / scale),
        }
    }
}

fn vp8(width: u32, height: u32, kbps: u32) -> (Figures, Figures) {
    let mut source = PatternSource::new(width, height, 30)
        .expect("valid size")
        .with_clock(PatternClock::Simulated {
            start_micros: 1_000_000,
        });
    let frames: Vec<I420Frame> = (0..FRAMES)
        .map(|_| source.next_frame().expect("synthetic source"))
        .collect();
    let mut encode_runs = Vec::new();
    let mut decode_runs = Vec::new();
    let mut bytes = 0;
    for _ in 0..RUNS {
        let mut encoder = Vp8Encoder::new(Vp8Config::new(width, height, kbps)).expect("encoder");
        let mut packets: Vec<EncodedFrame> = Vec::with_capacity(FRAMES);
        encode_runs.push(measure(|| {
            for f in &frames {
                if let Some(p) = encoder.encode(f).expect("encode") {
                    packets.push(p);
                }
            }
        }));
        bytes = packets.iter().map(|p| p.data.len()).sum::<usize>();
        let mut decoder = Vp8Decoder::new().expect("decoder");
        decode_runs.push(measure(|| {
            for p in &packets {
                std::hint::black_box(decoder.decode(&p.data).expect("decode"));
            }
        }));
    }
    let kbps_out = bytes as f64 * 8.0 * 30.0 / FRAMES as f64 / 1000.0;
    println!("  ({width}x{height}: target {kbps} kbit/s, produced {kbps_out:.0} kbit/s)");
    (
        Figures::from_runs(&encode_runs, FRAMES as f64),
        Figures::from_runs(&decode_runs, FRAMES as f64),
    )
}

/// 1920×1080 frames captured at 15 fps: `frames` copies of a static text page, or the moving
/// pattern.
fn screen_frames(text: bool, frames: usize) -> Vec<I420Frame> {
    let start = 1_000_000;
    if text {
        let page = screen_text::text_frame(1920, 1080, 0);
        (0..frames as u64)
            .map(|n| {
                let mut f = page.clone();
                f.frame_number = n;
                f.capture_micros = start + n * 66_667;
                f
            })
            .collect()
    } else {
        let mut source = PatternSource::new(1920, 1080, 15)
            .expect("valid size")
            .with_clock(PatternClock::Simulated {
                start_micros: start,
            });
        (0..frames)
            .map(|_| source.next_frame().expect("synthetic source"))
            .collect()
    }
}

/// Encodes `frames` with `config`; per-frame figures and the produced kbit/s.
fn screen_encode(config: &Vp8Config, frames: &[I420Frame]) -> (Figures, f64) {
    let mut runs = Vec::new();
    let mut bytes = 0;
    for _ in 0..RUNS {
        let mut encoder = Vp8Encoder::new(config.clone()).expect("encoder");
        let mut produced = 0;
        runs.push(measure(|| {
            for f in frames {
                if let Some(p) = encoder.encode(f).expect("encode") {
                    produced += p.data.len();
                }
            }
        }));
        bytes = produced;
    }
    let seconds = frames.len() as f64 / 15.0;
    (
        Figures::from_runs(&runs, frames.len() as f64),
        bytes as f64 * 8.0 / seconds / 1000.0,
    )
}

fn screen() {
    const SCREEN_FRAMES: usize = 45;
    let text = screen_frames(true, SCREEN_FRAMES);
    let moving = screen_frames(false, SCREEN_FRAMES);
    let preset = Vp8Config::screen(1920, 1080, 1200);
    println!(
        "VP8 screen 1920x1080 (Vp8Config::screen: cpu-used {}, mode {}, 1200 kbit/s, {SCREEN_FRAMES} frames at 15 fps x {RUNS} runs, medians)",
        preset.cpu_used, preset.screen_content_mode
    );
    let share = |f: &Figures, fps: f64| f.cpu.unwrap_or(f.wall) * fps / 1e9 * 100.0;
    let mut variants = vec![("screen".to_string(), preset.clone())];
    for cpu in [-4, -6, 10] {
        if cpu != preset.cpu_used {
            let mut c = preset.clone();
            c.cpu_used = cpu;
            variants.push((format!("screen cpu {cpu}"), c));
        }
    }
    variants.push(("camera preset".into(), Vp8Config::new(1920, 1080, 1200)));
    for (name, config) in &variants {
        for (content, frames) in [("static text", &text), ("moving pattern", &moving)] {
            let (fig, kbps) = screen_encode(config, frames);
            println!(
                "  {name:14} {content:14} encode {} ({kbps:5.0} kbit/s); {:5.1}% of a core at 5 fps, {:5.1}% at 15 fps",
                fig.show(1e6, "ms/frame"),
                share(&fig, 5.0),
                share(&fig, 15.0),
            );
        }
    }
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let mut gate = MotionGate::new();
        let t0 = Instant::now();
        runs.push(measure(|| {
            for (i, f) in moving.iter().enumerate() {
                std::hint::black_box(gate.observe(
                    f,
                    t0 + Duration::from_millis(66 * i as u64),
                    false,
                ));
            }
        }));
    }
    println!(
        "  motion gate (16x16 block hashes) {}",
        Figures::from_runs(&runs, SCREEN_FRAMES as f64).show(1e6, "ms/frame")
    );
}

fn opus() -> Figures {
    let mut source = ToneSource::with_start(440.0, 0.5, Channels::Mono, 0);
    let frames: Vec<_> = (0..1500)
        .map(|_| source.next_frame().expect("tone"))
        .collect();
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let mut encoder = OpusEncoder::new(OpusConfig::voice()).expect("encoder");
        runs.push(measure(|| {
            for f in &frames {
                std::hint::black_box(encoder.encode(f).expect("encode"));
            }
        }));
    }
    Figures::from_runs(&runs, frames.len() as f64)
}

fn main() {
    println!("VP8 (cpu-used 8, 1 thread, CBR, {FRAMES} frames x {RUNS} runs, medians)");
    let (enc360, dec360) = vp8(640, 360, 1000);
    println!("  640x360  encode {}", enc360.show(1e6, "ms/frame"));
    println!("  640x360  decode {}", dec360.show(1e6, "ms/frame"));
    let (enc720, dec720) = vp8(1280, 720, 2500);
    println!("  1280x720 encode {}", enc720.show(1e6, "ms/frame"));
    println!("  1280x720 decode {}", dec720.show(1e6, "ms/frame"));
    let share = |ns_per_frame: f64| ns_per_frame * 30.0 / 1e9 * 100.0;
    let cpu_share = enc720.cpu.map(share).unwrap_or(share(enc720.wall));
    println!(
        "  720p30 encode needs {:.1}% of one core (wall-based {:.1}%; target <= 25%: {})",
        cpu_share,
        share(enc720.wall),
        if cpu_share <= 25.0 { "met" } else { "NOT met" }
    );
    screen();
    let op = opus();
    println!("Opus (48 kHz mono, 32 kbit/s, VoIP, 20 ms frames)");
    println!("  encode {}", op.show(1e3, "us/frame"));
}
