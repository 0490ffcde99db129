//! Forwarding cost in instructions, repeatable on a noisy machine: the server's sans-I/O core
//! (`MediaCore`) in the simulated network of `engine::sim`, one publisher and N subscribers, run
//! under `valgrind --tool=callgrind` with collection on only inside the core's entry points
//! (`handle_datagram`, `drain`, `handle_timeout`), so the simulated clients' own WebRTC stacks in
//! this process are not counted.
//!
//! One run prints how many packets the subscribers received. Setup (ICE, DTLS, the first
//! keyframe) costs the same in two runs that differ only in `--frames`, so
//! `(Ir(long) − Ir(short)) / (packets(long) − packets(short))` is the server's cost per
//! forwarded packet in steady state, TWCC feedback, reports and timers included.
//! `scripts/forwarding-instructions.sh [OLD_REV]` runs both lengths for this tree and, given a
//! revision, for that one too (in a worktree), and prints both figures and their ratio.
//!
//! ```text
//! cargo bench -p videoroom-server --bench forwarding_instructions -- --subscribers 50 --frames 60
//! ```
//! Printing only: it is not a test.

use std::time::Duration;
use videoroom_server::engine::sim::{Sim, vp8_packet};

/// RTP packets per video frame (a ~640×360 frame at ~1.5 Mbit/s is ~6 KB).
const PACKETS_PER_FRAME: u16 = 6;
/// Payload bytes per packet.
const PAYLOAD: usize = 1_000;
/// 30 frames per second.
const FRAME_INTERVAL: Duration = Duration::from_micros(33_333);
/// The publisher's SSRC.
const SSRC: u32 = 1111;

struct Args {
    subscribers: usize,
    frames: u32,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        subscribers: 50,
        frames: 60,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match flag.as_str() {
            "--subscribers" => args.subscribers = value("--subscribers")?.clamp(1, 200) as usize,
            "--frames" => args.frames = value("--frames")?.clamp(1, 100_000) as u32,
            // `cargo bench` passes this to every bench target.
            "--bench" => {}
            other => {
                return Err(format!(
                    "unknown option {other}; options: --subscribers N (1..=200), --frames N"
                ));
            }
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("forwarding_instructions: {e}");
            std::process::exit(2);
        }
    };
    let mut sim = Sim::new();
    let (publisher, sender) = sim.connect_publisher("cam", SSRC);
    let (fwd, mut seq) = sim.open_track(publisher, sender, "cam", SSRC, 0);
    let subscribers: Vec<(usize, String)> = (0..args.subscribers)
        .map(|s| {
            let track_id = format!("cam-{s}");
            let i = sim.connect_subscriber(fwd, s as u64, &track_id, 5000 + s as u32);
            (i, track_id)
        })
        .collect();
    let mut ts: u32 = 0;
    for frame in 0..args.frames {
        for k in 0..PACKETS_PER_FRAME {
            let mut packet = vp8_packet(seq, ts, SSRC, frame == 0, 0, PAYLOAD);
            packet.header.marker = k + 1 == PACKETS_PER_FRAME;
            sim.send_rtp(publisher, sender, packet);
            seq = seq.wrapping_add(1);
        }
        ts = ts.wrapping_add(3_000);
        sim.advance(FRAME_INTERVAL);
    }
    sim.advance(Duration::from_millis(200));
    let received: usize = subscribers
        .iter()
        .map(|(i, track_id)| sim.received_count(*i, track_id))
        .sum();
    println!(
        "subscribers {} frames {} packets_sent {} packets_received {}",
        args.subscribers,
        args.frames,
        args.frames * u32::from(PACKETS_PER_FRAME),
        received
    );
}
