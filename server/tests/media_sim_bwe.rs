//! The per-subscriber downlink estimate (`engine::bwe`) through the simulated network: the
//! server numbers what it sends each subscriber, the subscriber's core returns TWCC feedback,
//! and the estimate follows a bottleneck in front of one subscriber while the other's stays
//! high. Simulated time, no sleeping.

use rtc::interceptor::{
    AttributedPacket, Interceptor, Packet, RTPHeaderExtension, Registry, StreamInfo, TaggedPacket,
};
use rtc::sansio::Protocol;
use std::time::{Duration, Instant};
use videoroom_protocol::MediaKind;
use videoroom_server::engine::bwe::{BweConfig, EstimateStats, with_downlink_estimation};
use videoroom_server::engine::sim::{Sim, vp8_packet};

const TWCC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
const SSRC: u32 = 0x1111;
/// 30 frames/s of 5 × 1200-byte packets: 1.44 Mbit/s of payload, ~1.5 Mbit/s on the wire.
const FRAME: Duration = Duration::from_micros(33_333);
const PACKETS_PER_FRAME: usize = 5;
const PACKET_PAYLOAD: usize = 1200;

/// A publisher sending video, two subscribers of it.
struct Setup {
    sim: Sim,
    publisher: usize,
    sender: rtc::rtp_transceiver::RTCRtpSenderId,
    seq: u16,
    ts: u32,
    subs: [usize; 2],
}

impl Setup {
    fn new() -> Self {
        let mut sim = Sim::new();
        let (publisher, sender) = sim.connect_publisher("cam", SSRC);
        let (fwd, seq) = sim.open_track(publisher, sender, "cam", SSRC, 0);
        let a = sim.connect_subscriber(fwd, 1, "cam", 0xA001);
        let b = sim.connect_subscriber(fwd, 2, "cam", 0xB002);
        Self {
            sim,
            publisher,
            sender,
            seq,
            ts: 0,
            subs: [a, b],
        }
    }

    /// The publisher sends one frame, then a frame interval passes.
    fn frame(&mut self) {
        self.ts = self.ts.wrapping_add(3000);
        for _ in 0..PACKETS_PER_FRAME {
            let p = vp8_packet(self.seq, self.ts, SSRC, false, 0x5A, PACKET_PAYLOAD);
            self.sim.send_rtp(self.publisher, self.sender, p);
            self.seq = self.seq.wrapping_add(1);
        }
        self.sim.advance(FRAME);
    }

    /// Subscriber `n`'s estimate (bits per second).
    fn estimate(&self, n: usize) -> Option<u64> {
        let key = self.sim.clients[self.subs[n]].key;
        self.sim.server.downlink_estimate(key)
    }

    fn stats(&self, n: usize) -> String {
        format!("{:?}", self.raw(n))
    }

    /// GCC's own target for subscriber `n`, before `bwe`'s bounds.
    fn raw(&self, n: usize) -> Option<EstimateStats> {
        let key = self.sim.clients[self.subs[n]].key;
        self.sim.server.downlink_stats(key)
    }

    /// Sends frames for `d`; returns the estimates of both subscribers after each frame, with
    /// when (since the start of this call).
    fn run(&mut self, d: Duration) -> Vec<Sample> {
        let start = self.sim.now;
        let mut samples = Vec::new();
        while self.sim.now - start < d {
            self.frame();
            samples.push((
                self.sim.now - start,
                self.estimate(0),
                self.estimate(1),
                self.raw(0).and_then(|s| s.gcc_bps),
            ));
        }
        samples
    }
}

/// When (since the start of a run), both subscribers' estimates, and GCC's own target for the
/// limited one.
type Sample = (Duration, Option<u64>, Option<u64>, Option<u64>);

fn kbps(v: Option<u64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{}k", v / 1000))
}

/// One line per 500 ms of a run, for the log.
fn print_timeline(label: &str, samples: &[Sample]) {
    let mut next = Duration::ZERO;
    for (at, a, b, gcc) in samples {
        if *at >= next {
            println!(
                "{label} t={:>5.1}s  limited {:>6} (GCC alone {:>6})  unlimited {:>6}",
                at.as_secs_f64(),
                kbps(*a),
                kbps(*gcc),
                kbps(*b)
            );
            next += Duration::from_millis(500);
        }
    }
}

#[test]
fn the_server_negotiates_transport_cc_towards_subscribers_and_gets_feedback() {
    let mut s = Setup::new();
    let now = s.sim.now;
    let key = s.sim.clients[s.subs[0]].key;
    let (offer, answer) = s
        .sim
        .server
        .with_peer(now, key, |pc| {
            (
                pc.local_description().expect("offer").sdp,
                pc.remote_description().expect("answer").sdp.clone(),
            )
        })
        .expect("peer");
    for (what, sdp) in [("offer", &offer), ("answer", &answer)] {
        let video = &sdp[sdp.find("m=video").expect("video m-line")..];
        assert!(
            video.contains(TWCC_URI),
            "{what} lacks the extension: {video}"
        );
        assert!(
            video.contains(" transport-cc"),
            "{what} lacks rtcp-fb: {video}"
        );
    }
    s.run(Duration::from_secs(1));
    for n in 0..2 {
        assert!(s.estimate(n).is_some(), "no estimate: {}", s.stats(n));
    }
    // The publisher's own connection sends nothing: no feedback, no estimate.
    let publisher = s.sim.clients[s.publisher].key;
    assert_eq!(s.sim.server.downlink_estimate(publisher), None);
}

#[test]
fn a_bottleneck_brings_one_subscribers_estimate_down_and_lifting_it_brings_it_back() {
    let mut s = Setup::new();
    // Warm up unlimited.
    let warm = s.run(Duration::from_secs(2));
    print_timeline("warm-up", &warm);
    for n in 0..2 {
        let e = s.estimate(n).expect("estimate");
        assert!(
            e >= 1_200_000,
            "subscriber {n} after warm-up: {}",
            s.stats(n)
        );
    }

    // 600 kbit/s with a 150 ms drop-tail queue in front of the first subscriber.
    let limited = s.sim.clients[s.subs[0]].addr;
    s.sim
        .set_link_rate(limited, Some(600_000), Duration::from_millis(150));
    let congested = s.run(Duration::from_secs(10));
    print_timeline("limited", &congested);
    println!("after 10 s limited: {} / {}", s.stats(0), s.stats(1));
    println!("link drops {}", s.sim.link_drops);
    // Settled below 700 kbit/s within 5 s: from the last sample above it on.
    let settled = congested
        .iter()
        .rev()
        .find(|(_, a, _, _)| a.is_none_or(|a| a >= 700_000))
        .map_or(Duration::ZERO, |(at, _, _, _)| *at);
    println!("limited estimate below 700k for good after {settled:?}");
    assert!(
        settled <= Duration::from_secs(5),
        "settled only after {settled:?}: {}",
        s.stats(0)
    );
    let low = congested
        .iter()
        .filter(|(at, _, _, _)| *at >= Duration::from_secs(5))
        .filter_map(|(_, a, _, _)| *a)
        .min()
        .expect("samples");
    println!("limited estimate's lowest after 5 s: {}k", low / 1000);
    assert!(low >= 300_000, "collapsed to {low}");
    let unlimited_min = congested
        .iter()
        .filter_map(|(_, _, b, _)| *b)
        .min()
        .expect("samples");
    println!("unlimited estimate's lowest: {}k", unlimited_min / 1000);
    assert!(unlimited_min >= 1_200_000, "{}", s.stats(1));

    // Lift the limit.
    s.sim.set_link_rate(limited, None, Duration::ZERO);
    let recovery = s.run(Duration::from_secs(15));
    print_timeline("lifted", &recovery);
    let back = recovery
        .iter()
        .find(|(_, a, _, _)| a.is_some_and(|a| a > 1_200_000))
        .map(|(at, _, _, _)| *at);
    println!("limited estimate above 1.2M after {back:?}; {}", s.stats(0));
    assert!(back.is_some(), "never recovered: {}", s.stats(0));
}

/// Rough CPU cost of the congestion-control pair (TWCC numbering + send history) on the write
/// path, against an empty chain: printed, asserted only loosely.
#[test]
fn the_cc_interceptors_cost_per_packet() {
    const N: u32 = 20_000;
    let info = StreamInfo {
        ssrc: 7,
        clock_rate: 90_000,
        mime_type: "video/VP8".to_owned(),
        payload_type: 96,
        rtp_header_extensions: vec![RTPHeaderExtension {
            uri: TWCC_URI.to_owned(),
            id: 5,
        }],
        ..Default::default()
    };
    let packet = vp8_packet(0, 0, 7, false, 0, PACKET_PAYLOAD);
    let measure = |registry: Registry| {
        let mut chain = registry.build();
        chain.bind_local_stream(&info);
        let epoch = Instant::now();
        let start = Instant::now();
        for i in 0..N {
            let now = epoch + Duration::from_micros(u64::from(i) * 200);
            let mut p = packet.clone();
            p.header.sequence_number = i as u16;
            chain
                .handle_write(TaggedPacket {
                    now,
                    transport: Default::default(),
                    message: AttributedPacket::new(Packet::Rtp(p)),
                })
                .expect("write");
            while chain.poll_write().is_some() {}
            if i % 1000 == 0 {
                chain.handle_timeout(now).expect("timeout");
            }
        }
        start.elapsed() / N
    };
    let bare = measure(Registry::new());
    let (registry, _estimate) = with_downlink_estimation(Registry::new(), BweConfig::default());
    let with_cc = measure(registry);
    println!(
        "write path per packet: empty chain {bare:?}, with TWCC numbering + cc history {with_cc:?}"
    );
    assert!(with_cc < Duration::from_millis(1), "{with_cc:?}");
}

/// The whole simulated path per forwarded packet, for scale (same build as the above).
#[test]
fn forwarding_cost_in_the_simulation() {
    let mut s = Setup::new();
    let before = s.sim.server.stats().rtp_out;
    let start = Instant::now();
    s.run(Duration::from_secs(3));
    let forwarded = s.sim.server.stats().rtp_out - before;
    let took = start.elapsed();
    println!(
        "{forwarded} packets forwarded in {took:?} of wall time: {:?} each, whole simulation (both ends, SRTP, feedback) included",
        took / forwarded.max(1) as u32
    );
    assert!(forwarded > 500, "{forwarded}");
    let _ = MediaKind::Video;
}
