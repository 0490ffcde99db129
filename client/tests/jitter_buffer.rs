//! The audio jitter buffer against simulated networks: deterministic time, no sockets.
//!
//! Each test lays out packet arrivals (time, sequence number, RTP timestamp) and plays them
//! against a playout loop that calls `pop` every 20 ms, 1 ms after the sender's packet clock.
//! Payloads carry their sequence number, so the output reads as a list of what was played.

use bytes::Bytes;
use std::fmt;
use std::time::{Duration, Instant};
use videoroom_client::audio::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};

/// 20 ms in microseconds: the packet interval and the playout interval.
const TICK_US: u64 = 20_000;
/// RTP ticks per packet (20 ms at 48 kHz).
const TICKS: u32 = 960;
/// The playout loop runs this long after each packet's nominal send time.
const POP_PHASE_US: u64 = 1_000;

/// One packet on the network.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at_us: u64,
    sequence: u16,
    timestamp: u32,
}

/// Packet `k` of a stream whose first sequence number is `first`, sent on time.
fn packet(first: u16, k: u64) -> Arrival {
    Arrival {
        at_us: k * TICK_US,
        sequence: first.wrapping_add(k as u16),
        timestamp: TICKS.wrapping_mul(k as u32),
    }
}

fn stream(first: u16, count: u64) -> Vec<Arrival> {
    (0..count).map(|k| packet(first, k)).collect()
}

/// What one `pop` gave, readable in assertions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    /// A packet, by sequence number.
    P(u16),
    /// Conceal.
    L,
    /// Silence.
    S,
}
use Out::{L, P, S};

impl fmt::Debug for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            P(seq) => write!(f, "P{seq}"),
            L => write!(f, "L"),
            S => write!(f, "S"),
        }
    }
}

fn out(playout: Playout) -> Out {
    match playout {
        Playout::Packet(payload) => {
            let bytes: [u8; 2] = payload
                .as_ref()
                .try_into()
                .expect("test payloads are 2 bytes");
            P(u16::from_be_bytes(bytes))
        }
        Playout::Lost => L,
        Playout::Silence => S,
        _ => unreachable!("no other playout in this version"),
    }
}

/// A jitter buffer with a simulated clock and a network queue.
struct Sim {
    jb: JitterBuffer,
    t0: Instant,
    /// Pops done so far; pop `i` happens at `i × 20 ms + 1 ms`.
    pops: u64,
    /// Scheduled arrivals not delivered yet, in time order.
    network: Vec<Arrival>,
}

impl Sim {
    fn new() -> Self {
        Self::with_config(JitterConfig::default())
    }

    fn with_config(config: JitterConfig) -> Self {
        Self {
            jb: JitterBuffer::new(config),
            t0: Instant::now(),
            pops: 0,
            network: Vec::new(),
        }
    }

    fn at(&self, us: u64) -> Instant {
        self.t0 + Duration::from_micros(us)
    }

    /// Delivers one packet now, whatever its scheduled time.
    fn push(&mut self, a: Arrival) {
        let now = self.at(a.at_us);
        let payload = Bytes::copy_from_slice(&a.sequence.to_be_bytes());
        self.jb.push(now, a.sequence, a.timestamp, payload);
    }

    /// Queues arrivals for delivery by [`run`](Self::run) (stable in time order).
    fn schedule(&mut self, arrivals: &[Arrival]) {
        self.network.extend_from_slice(arrivals);
        self.network.sort_by_key(|a| a.at_us);
    }

    /// Runs `pops` playout ticks, delivering each scheduled arrival before the first pop at or
    /// after its arrival time.
    fn run(&mut self, pops: u64) -> Vec<Out> {
        let mut played = Vec::new();
        for _ in 0..pops {
            let pop_us = self.pops * TICK_US + POP_PHASE_US;
            let due = self.network.partition_point(|a| a.at_us <= pop_us);
            for a in self.network.drain(..due).collect::<Vec<_>>() {
                self.push(a);
            }
            played.push(out(self.jb.pop(self.at(pop_us))));
            self.pops += 1;
        }
        played
    }

    /// Schedules `arrivals` and runs `pops` ticks.
    fn play(&mut self, arrivals: &[Arrival], pops: u64) -> Vec<Out> {
        self.schedule(arrivals);
        self.run(pops)
    }

    fn stats(&self) -> JitterStats {
        self.jb.stats()
    }
}

/// Every packet given to the buffer is counted once: played, dropped for a reason, or held.
fn assert_accounted(jb: &JitterBuffer) {
    let stats = jb.stats();
    let accounted = stats.packets_played
        + stats.late_dropped
        + stats.duplicates
        + stats.overflow_dropped
        + stats.accelerated
        + stats.out_of_range
        + jb.len() as u64;
    // One packet may be on probation (a far-off sequence number waiting for its successor).
    assert!(
        stats.packets_received == accounted || stats.packets_received == accounted + 1,
        "{stats:?}, {} held",
        jb.len()
    );
}

fn packets(range: std::ops::Range<u16>) -> Vec<Out> {
    range.map(P).collect()
}

/// A deterministic pseudo-random sequence (64-bit LCG, Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        u64::from(self.next_u32()) % n
    }
}

#[test]
fn in_order_stream_plays_in_order_at_the_minimum_delay() {
    let mut sim = Sim::new();
    let played = sim.play(&stream(1000, 50), 53);
    // One silent pop while the first 40 ms buffer, then every packet, then the buffer runs dry.
    let mut expected = vec![S];
    expected.extend(packets(1000..1050));
    expected.extend([S, S]);
    assert_eq!(played, expected);

    let stats = sim.stats();
    assert_eq!(stats.packets_received, 50);
    assert_eq!(stats.packets_played, 50);
    assert_eq!(
        (stats.lost, stats.late_dropped, stats.duplicates),
        (0, 0, 0)
    );
    assert_eq!(stats.underruns, 1, "the end of the stream");
    assert_eq!(stats.jitter_ms, 0.0);
    assert_eq!(stats.target_delay_ms, 40);
}

#[test]
fn delay_while_playing_is_the_target() {
    let mut sim = Sim::new();
    sim.play(&stream(0, 20), 10);
    let stats = sim.stats();
    // After pop 9 (at 181 ms): packets 0..=9 arrived, 0..=8 played.
    assert_eq!(stats.current_delay_ms, 20);
    assert_eq!(sim.jb.len(), 1);
    // Just before the next pop, packet 10 has arrived: 40 ms buffered.
    sim.push(packet(0, 10));
    assert_eq!(sim.stats().current_delay_ms, 40);
}

#[test]
fn reordered_packets_within_the_delay_are_put_back_in_order() {
    // Pairs arrive swapped: 1, 0, 3, 2, ... each one tick late or early.
    let arrivals: Vec<Arrival> = (0..40u64)
        .map(|k| Arrival {
            at_us: (k ^ 1) * TICK_US,
            ..packet(0, k)
        })
        .collect();
    let mut sim = Sim::new();
    let played = sim.play(&arrivals, 45);
    let audio: Vec<Out> = played.into_iter().filter(|o| *o != S).collect();
    assert_eq!(audio, packets(0..40));
    let stats = sim.stats();
    assert_eq!((stats.lost, stats.late_dropped), (0, 0));
    assert!(
        stats.jitter_ms > 5.0,
        "reordering is jitter: {}",
        stats.jitter_ms
    );
}

#[test]
fn a_lost_packet_is_concealed_and_playback_continues() {
    let arrivals: Vec<Arrival> = stream(0, 30)
        .into_iter()
        .filter(|a| a.sequence != 10)
        .collect();
    let mut sim = Sim::new();
    let played = sim.play(&arrivals, 31);
    let mut expected = vec![S];
    expected.extend(packets(0..10));
    expected.push(L);
    expected.extend(packets(11..30));
    assert_eq!(played, expected);
    let stats = sim.stats();
    assert_eq!(
        (stats.lost, stats.packets_played, stats.underruns),
        (1, 29, 0)
    );
}

#[test]
fn consecutive_losses_are_each_concealed() {
    let arrivals: Vec<Arrival> = stream(0, 30)
        .into_iter()
        .filter(|a| !(10..12).contains(&a.sequence))
        .collect();
    let mut sim = Sim::with_config(JitterConfig {
        min_delay: Duration::from_millis(80),
        ..JitterConfig::default()
    });
    let played = sim.play(&arrivals, 34);
    let mut expected = vec![S, S, S];
    expected.extend(packets(0..10));
    expected.extend([L, L]);
    expected.extend(packets(12..30));
    expected.push(S);
    assert_eq!(played, expected);
    assert_eq!(sim.stats().lost, 2);
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let mut arrivals = stream(0, 30);
    // Every fifth packet again a tick later (still buffered or just played), and packet 3
    // again much later (long played).
    arrivals.extend(
        stream(0, 30)
            .into_iter()
            .filter(|a| a.sequence % 5 == 0)
            .map(|a| Arrival {
                at_us: a.at_us + TICK_US,
                ..a
            }),
    );
    arrivals.push(Arrival {
        at_us: 25 * TICK_US,
        ..packet(0, 3)
    });
    let mut sim = Sim::new();
    let played = sim.play(&arrivals, 31);
    let mut expected = vec![S];
    expected.extend(packets(0..30));
    assert_eq!(played, expected);
    let stats = sim.stats();
    assert_eq!(stats.duplicates, 7);
    assert_eq!(stats.late_dropped, 0);
    assert_eq!(stats.packets_received, 37);
}

#[test]
fn a_packet_arriving_after_its_turn_is_dropped() {
    // Packet 10 is 100 ms late: concealed at its turn, dropped when it comes.
    let arrivals: Vec<Arrival> = stream(0, 30)
        .into_iter()
        .map(|a| {
            if a.sequence == 10 {
                Arrival {
                    at_us: a.at_us + 100_000,
                    ..a
                }
            } else {
                a
            }
        })
        .collect();
    let mut sim = Sim::new();
    let played = sim.play(&arrivals, 31);
    let mut expected = vec![S];
    expected.extend(packets(0..10));
    expected.push(L);
    expected.extend(packets(11..30));
    assert_eq!(played, expected);
    let stats = sim.stats();
    assert_eq!(
        (stats.lost, stats.late_dropped, stats.duplicates),
        (1, 1, 0)
    );
}

#[test]
fn sequence_numbers_wrap_around_65535() {
    let mut sim = Sim::new();
    let played = sim.play(&stream(65_520, 40), 41);
    let audio: Vec<Out> = played.into_iter().filter(|o| *o != S).collect();
    let expected: Vec<Out> = (0..40u16).map(|k| P(65_520u16.wrapping_add(k))).collect();
    assert_eq!(audio, expected);
    assert_eq!(sim.stats().packets_played, 40);
}

#[test]
fn reordering_and_loss_across_the_wrap() {
    // 65535 and 0 swapped, 1 lost, RTP timestamps wrapping at the same time.
    let mut arrivals: Vec<Arrival> = stream(65_530, 20)
        .into_iter()
        .map(|a| Arrival {
            timestamp: a.timestamp.wrapping_add(u32::MAX - 960 * 7),
            ..a
        })
        .filter(|a| a.sequence != 1)
        .collect();
    let i_max = arrivals.iter().position(|a| a.sequence == 65_535).unwrap();
    let i_zero = arrivals.iter().position(|a| a.sequence == 0).unwrap();
    let (t_max, t_zero) = (arrivals[i_max].at_us, arrivals[i_zero].at_us);
    arrivals[i_max].at_us = t_zero;
    arrivals[i_zero].at_us = t_max;

    let mut sim = Sim::new();
    let played = sim.play(&arrivals, 22);
    let audio: Vec<Out> = played.into_iter().filter(|o| *o != S).collect();
    let expected = [
        P(65_530),
        P(65_531),
        P(65_532),
        P(65_533),
        P(65_534),
        P(65_535),
        P(0),
        L,
        P(2),
    ];
    assert_eq!(audio[..9], expected);
    assert_eq!(audio.len(), 20);
    let stats = sim.stats();
    assert_eq!((stats.lost, stats.late_dropped), (1, 0));
    assert!(stats.jitter_ms < 5.0, "{}", stats.jitter_ms);
}

#[test]
fn underrun_plays_silence_then_rebuffers() {
    // Packets 20.. are held up 200 ms by the network, then flow again on time.
    let arrivals: Vec<Arrival> = stream(0, 60)
        .into_iter()
        .map(|a| {
            if a.sequence >= 20 {
                Arrival {
                    at_us: a.at_us + 200_000,
                    ..a
                }
            } else {
                a
            }
        })
        .collect();
    let mut sim = Sim::new();
    let played = sim.play(&arrivals, 72);
    // Playback: packet k at pop k + 1 until 19 (pop 20); the buffer runs dry; packet 20 comes
    // at 600 ms (before pop 30), 21 at 620 ms, and with 40 ms buffered again it plays on.
    assert_eq!(
        played[..21],
        {
            let mut v = vec![S];
            v.extend(packets(0..20));
            v
        }[..]
    );
    assert!(played[21..31].iter().all(|o| *o == S), "{played:?}");
    assert_eq!(played[31..71], packets(20..60)[..]);
    let stats = sim.stats();
    assert_eq!(stats.underruns, 2, "the stall and the end of the stream");
    assert_eq!((stats.lost, stats.late_dropped), (0, 0));
    assert_eq!(stats.packets_played, 60);
}

#[test]
fn a_lone_packet_plays_after_the_target_delay() {
    // Like Opus DTX: one packet every 400 ms, its timestamp saying so. Each one plays once it
    // has waited 40 ms.
    let arrivals: Vec<Arrival> = (0..5u64)
        .map(|k| Arrival {
            at_us: k * 20 * TICK_US,
            timestamp: 20 * TICKS * k as u32,
            ..packet(0, k)
        })
        .collect();
    let mut sim = Sim::new();
    let played = sim.play(&arrivals, 100);
    for k in 0..5u16 {
        let pop = played
            .iter()
            .position(|o| *o == P(k))
            .expect("every packet plays");
        assert_eq!(pop, usize::from(k) * 20 + 2, "{played:?}");
    }
    assert_eq!(sim.stats().lost, 0);
}

#[test]
fn burst_after_an_outage_is_cut_back_to_the_target() {
    // 1 s outage: packets 50..100 are all delivered at once when it ends, then on time.
    let arrivals: Vec<Arrival> = stream(0, 200)
        .into_iter()
        .map(|a| {
            if (50..100).contains(&a.sequence) {
                Arrival {
                    at_us: 100 * TICK_US,
                    ..a
                }
            } else {
                a
            }
        })
        .collect();
    let mut sim = Sim::new();
    let played = sim.play(&arrivals, 100);
    assert_eq!(played[51..100], [S; 49][..], "the outage");
    let during = sim.stats();
    assert_eq!(during.underruns, 1);

    let after = sim.run(20);
    // The 1 s burst arrived with its newest packets; the old audio is skipped, not queued.
    let first = match after[0] {
        P(seq) => seq,
        other => panic!("playback resumes at once: {after:?} {other:?}"),
    };
    assert!(first >= 90, "starts near the newest packet: {after:?}");
    let stats = sim.stats();
    assert!(stats.accelerated >= 40, "{stats:?}");
    assert_accounted(&sim.jb);
    assert!(
        stats.current_delay_ms <= stats.target_delay_ms + 40,
        "{stats:?}"
    );
    assert!(
        stats.target_delay_ms <= 400,
        "never beyond max_delay: {stats:?}"
    );
    // And it keeps playing in order from there.
    let audio: Vec<Out> = after.into_iter().filter(|o| *o != S).collect();
    assert_eq!(
        audio,
        (first..first + audio.len() as u16)
            .map(P)
            .collect::<Vec<_>>()
    );
}

#[test]
fn outage_with_loss_resumes_with_the_new_packets() {
    // Packets 20..40 never arrive.
    let arrivals: Vec<Arrival> = stream(0, 80)
        .into_iter()
        .filter(|a| !(20..40).contains(&a.sequence))
        .collect();
    let mut sim = Sim::new();
    let played = sim.play(&arrivals, 81);
    let mut expected = vec![S];
    expected.extend(packets(0..20));
    // Dry at pop 21; packet 40 arrives before pop 40, 41 before pop 41: plays from pop 41.
    expected.extend([S; 20]);
    expected.extend(packets(40..80));
    assert_eq!(played, expected);
    let stats = sim.stats();
    assert_eq!(
        stats.lost, 0,
        "a gap re-buffers, it is not concealed for 400 ms"
    );
    assert_eq!(stats.underruns, 1);
}

/// Delivers `count` packets with network delays uniform in `0..max_delay_ms` (seeded) and
/// returns the output of the playout loop and the stats.
fn jittery(seed: u64, count: u64, max_delay_ms: u64) -> (Vec<Out>, JitterStats) {
    let mut rng = Lcg(seed);
    let arrivals: Vec<Arrival> = stream(7, count)
        .into_iter()
        .map(|a| Arrival {
            at_us: a.at_us + rng.below(max_delay_ms * 1000 + 1),
            ..a
        })
        .collect();
    let mut sim = Sim::new();
    let played = sim.play(&arrivals, count + 30);
    assert_accounted(&sim.jb);
    (played, sim.stats())
}

#[test]
fn target_delay_grows_with_jitter() {
    let (_, calm) = jittery(1, 500, 0);
    assert_eq!(calm.target_delay_ms, 40);
    assert_eq!(calm.lost + calm.late_dropped, 0);

    let (_, mild) = jittery(2, 1000, 30);
    let (played, rough) = jittery(3, 1000, 150);
    // Uniform delays in 0..D: RFC 3550 jitter ≈ D / 3.
    assert!(
        (30.0..70.0).contains(&rough.jitter_ms),
        "jitter estimate {rough:?}"
    );
    assert!(mild.jitter_ms < rough.jitter_ms, "{mild:?} {rough:?}");
    assert!(
        rough.target_delay_ms >= 100 && rough.target_delay_ms <= 400,
        "{rough:?}"
    );
    assert!(rough.target_delay_ms > mild.target_delay_ms);
    assert_eq!(rough.overflow_dropped, 0);

    // With the buffer adapted, nearly everything plays, in order.
    assert!(
        rough.packets_played >= 950,
        "{rough:?}: too much lost to jitter"
    );
    let mut last = None;
    for o in &played {
        if let P(seq) = o {
            if let Some(last) = last {
                assert!(
                    (1..0x8000).contains(&seq.wrapping_sub(last)),
                    "out of order: {last} then {seq}"
                );
            }
            last = Some(*seq);
        }
    }
}

#[test]
fn target_delay_shrinks_when_jitter_subsides() {
    let mut rng = Lcg(42);
    let arrivals: Vec<Arrival> = stream(0, 1500)
        .into_iter()
        .map(|a| {
            let delay = if a.sequence < 500 {
                rng.below(200_001)
            } else {
                0
            };
            Arrival {
                at_us: a.at_us + delay,
                ..a
            }
        })
        .collect();
    let mut sim = Sim::new();
    sim.play(&arrivals, 500);
    let rough = sim.stats();
    assert!(rough.target_delay_ms > 150, "{rough:?}");
    // The rest of the stream arrives on time.
    let played = sim.run(1000);
    let calm = sim.stats();
    assert_eq!(calm.target_delay_ms, 40, "{calm:?}");
    assert!(calm.current_delay_ms <= 80, "caught up: {calm:?}");
    assert!(calm.accelerated > rough.accelerated, "{calm:?}");
    assert!(played[900..].iter().all(|o| matches!(o, P(_))));
}

#[test]
fn overflow_drops_the_oldest() {
    let mut sim = Sim::with_config(JitterConfig {
        capacity: 10,
        ..JitterConfig::default()
    });
    // 30 packets before the playout loop first runs.
    for a in stream(0, 30) {
        sim.push(Arrival { at_us: 0, ..a });
    }
    let stats = sim.stats();
    assert_eq!(stats.overflow_dropped, 20);
    assert_eq!(sim.jb.len(), 10);
    let played = sim.run(12);
    let audio: Vec<Out> = played.into_iter().filter(|o| *o != S).collect();
    assert!(!audio.is_empty());
    for o in &audio {
        assert!(matches!(o, P(seq) if *seq >= 20), "{audio:?}");
    }
    let stats = sim.stats();
    assert_eq!(
        stats.packets_played + stats.accelerated + stats.overflow_dropped,
        30
    );
    assert_accounted(&sim.jb);
}

#[test]
fn overflow_while_playing_moves_playback_forward() {
    let mut sim = Sim::with_config(JitterConfig {
        capacity: 5,
        ..JitterConfig::default()
    });
    let played = sim.play(&stream(0, 10), 5);
    assert_eq!(played, [S, P(0), P(1), P(2), P(3)]);
    // The playout loop stalls while 20 more packets arrive.
    for k in 10..30 {
        sim.push(packet(0, k));
    }
    assert_eq!(sim.jb.len(), 5);
    let played = sim.run(3);
    assert!(matches!(played[0], P(seq) if seq >= 25), "{played:?}");
    assert_accounted(&sim.jb);
}

#[test]
fn a_sequence_restart_continues_after_the_old_packets() {
    // Sequence 100.. then the sender restarts at 40000 with new timestamps.
    let mut arrivals = stream(100, 30);
    arrivals.extend((30..60).map(|k| Arrival {
        at_us: k * TICK_US,
        sequence: 40_000 + k as u16,
        timestamp: 123_456_789 + 960 * k as u32,
    }));
    let mut sim = Sim::new();
    let played = sim.play(&arrivals, 62);
    let audio: Vec<Out> = played.into_iter().filter(|o| *o != S).collect();
    let mut expected = packets(100..130);
    expected.extend(packets(40_030..40_060));
    assert_eq!(audio, expected);
    let stats = sim.stats();
    assert_eq!((stats.restarts, stats.out_of_range, stats.lost), (1, 0, 0));
    assert!(stats.jitter_ms < 1.0, "{stats:?}");
    assert_accounted(&sim.jb);
}

#[test]
fn a_stray_far_off_packet_is_dropped() {
    let mut arrivals = stream(100, 30);
    arrivals.push(Arrival {
        at_us: 10 * TICK_US,
        sequence: 30_000,
        timestamp: 5,
    });
    let mut sim = Sim::new();
    let played = sim.play(&arrivals, 31);
    let mut expected = vec![S];
    expected.extend(packets(100..130));
    assert_eq!(played, expected);
    let stats = sim.stats();
    assert_eq!((stats.restarts, stats.out_of_range), (0, 1));
    assert_accounted(&sim.jb);
}

#[test]
fn garbage_never_panics() {
    for config in [
        JitterConfig::default(),
        JitterConfig {
            min_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            capacity: 0,
        },
        JitterConfig {
            min_delay: Duration::from_secs(3600),
            max_delay: Duration::MAX,
            capacity: usize::MAX,
        },
        JitterConfig {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_millis(1),
            capacity: 3,
        },
    ] {
        let mut rng = Lcg(7);
        let mut jb = JitterBuffer::new(config);
        let t0 = Instant::now();
        let mut now_us = 0u64;
        let mut seq = 0u16;
        for i in 0..20_000u32 {
            // Time mostly forward, sometimes backward; sequence numbers mostly in order, with
            // jumps of every size; timestamps anything.
            let step = rng.below(50_000);
            now_us = if rng.below(10) == 0 {
                now_us.saturating_sub(step)
            } else {
                now_us + step
            };
            seq = match rng.below(8) {
                0 => rng.next_u32() as u16,
                1 => seq.wrapping_sub(rng.below(200) as u16),
                2 => seq.wrapping_add(rng.below(5000) as u16),
                3 => seq,
                _ => seq.wrapping_add(1),
            };
            let timestamp = match rng.below(4) {
                0 => rng.next_u32(),
                _ => u32::from(seq).wrapping_mul(960),
            };
            let len = rng.below(3) as usize;
            let now = t0 + Duration::from_micros(now_us);
            jb.push(now, seq, timestamp, Bytes::from(vec![0u8; len]));
            if i % 2 == 0 {
                let _ = jb.pop(now);
            }
            let stats = jb.stats();
            assert!(stats.jitter_ms.is_finite() && stats.jitter_ms >= 0.0);
            assert!(jb.len() <= jb.config().capacity);
        }
        assert_eq!(jb.stats().packets_received, 20_000);
        assert_accounted(&jb);
    }
}
