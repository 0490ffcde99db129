//! Adaptation to a subscriber's downlink, on simulated time: a publisher sends three simulcast
//! layers at realistic rates (150 kbit/s, 500 kbit/s, 1.5 Mbit/s); one subscriber's link is
//! capped at 600 kbit/s. It must get a lower layer within 5 s and then see no freeze over 1 s,
//! while an uncapped subscriber keeps the top layer; with the cap lifted it climbs back to the
//! top layer within 15 s.

use std::time::Duration;
use videoroom_server::engine::sim::{Sim, SimulcastSender, longest_gap, vp8_layer_packet};
use videoroom_server::engine::vp8;

/// (rid, SSRC, size, bytes per frame at 30 fps)
const LAYERS: [(&str, u32, (u16, u16), usize); 3] = [
    ("q", 0x1000, (320, 180), 625),    // 150 kbit/s
    ("h", 0x2000, (640, 360), 2_083),  // 500 kbit/s
    ("f", 0x3000, (1280, 720), 6_250), // 1.5 Mbit/s
];
const FRAME: Duration = Duration::from_micros(33_333);
const MTU_PAYLOAD: usize = 1_100;

struct Publisher {
    i: usize,
    track: SimulcastSender,
    frame: u32,
    seq: [u16; 3],
}

impl Publisher {
    fn new(sim: &mut Sim) -> Self {
        let i = sim.add_client();
        let layers: Vec<(&str, u32)> = LAYERS.iter().map(|&(r, s, _, _)| (r, s)).collect();
        let track = sim.publish_simulcast(i, "cam", &layers);
        sim.client_offers(i).expect("offer/answer");
        assert!(sim.run_until_connected(i, Duration::from_secs(5)));
        Self {
            i,
            track,
            frame: 0,
            seq: [100, 20_000, 40_000],
        }
    }

    /// One frame on every layer (a keyframe every 2 s, and when one is asked for), split into
    /// packets; then a frame interval passes.
    fn frame(&mut self, sim: &mut Sim) {
        let n = self.frame;
        let asked = sim.clients[self.i].keyframe_wanted();
        for (k, &(rid, _, size, bytes)) in LAYERS.iter().enumerate() {
            let key = n.is_multiple_of(60) || asked;
            let ts = n * 3000;
            let pic = (n % 0x8000) as u16;
            let packets = bytes.div_ceil(MTU_PAYLOAD);
            for p in 0..packets {
                let len = (bytes / packets).max(1);
                let mut packet =
                    vp8_layer_packet(self.seq[k], ts, pic, (key && p == 0).then_some(size), len);
                if p > 0 {
                    // A continuation: S bit clear.
                    let mut payload = bytes::BytesMut::from(&packet.payload[..]);
                    payload[0] &= !0x10;
                    packet.payload = payload.freeze();
                }
                packet.header.marker = p + 1 == packets;
                sim.send_layer(self.i, &self.track, rid, packet);
                self.seq[k] = self.seq[k].wrapping_add(1);
            }
        }
        if asked {
            sim.clients[self.i].keyframes_answered();
        }
        self.frame += 1;
        sim.advance(FRAME);
    }
}

/// What subscriber `b` saw: per complete frame (marker packet), its arrival time index and the
/// size of the layer it came from (by the last keyframe seen).
struct Watch {
    seen: usize,
    size: Option<(u16, u16)>,
    frames: Vec<(Duration, Option<(u16, u16)>)>,
}

impl Watch {
    fn new() -> Self {
        Self {
            seen: 0,
            size: None,
            frames: Vec::new(),
        }
    }

    fn poll(&mut self, sim: &Sim, b: usize, t: Duration) {
        let Some(got) = sim.clients[b].received.get("cam") else {
            return;
        };
        for p in &got[self.seen..] {
            if let Some(info) = vp8::parse(&p.payload)
                && let Some(size) = info.size
            {
                self.size = Some(size);
            }
            if p.header.marker {
                self.frames.push((t, self.size));
            }
        }
        self.seen = got.len();
    }

    /// The longest time without a frame in `from..to`.
    fn longest_gap(&self, from: Duration, to: Duration) -> Duration {
        longest_gap(self.frames.iter().map(|&(t, _)| t), from, to)
    }

    /// When frames of `size` were first seen from `from` on.
    fn first_of(&self, size: (u16, u16), from: Duration) -> Option<Duration> {
        self.frames
            .iter()
            .find(|(t, s)| *t >= from && *s == Some(size))
            .map(|(t, _)| *t)
    }
}

#[test]
fn a_capped_subscriber_steps_down_and_climbs_back() {
    let mut sim = Sim::new();
    let mut publisher = Publisher::new(&mut sim);
    publisher.frame(&mut sim);
    let fwd = sim.wait_layers(publisher.i, "cam", 3);
    let capped = sim.connect_subscriber(fwd, 1, "cam", 0xCA9);
    let free = sim.connect_subscriber(fwd, 2, "cam", 0xF4EE);
    let start = sim.now;
    let (mut wc, mut wf) = (Watch::new(), Watch::new());
    let run =
        |sim: &mut Sim, publisher: &mut Publisher, secs: u32, wc: &mut Watch, wf: &mut Watch| {
            for _ in 0..secs * 30 {
                publisher.frame(sim);
                let t = sim.now - start;
                wc.poll(sim, capped, t);
                wf.poll(sim, free, t);
            }
        };
    run(&mut sim, &mut publisher, 5, &mut wc, &mut wf);
    assert_eq!(wc.size, Some((1280, 720)), "both start on the top layer");

    let capped_at = sim.now - start;
    let addr = sim.clients[capped].addr;
    sim.set_link_rate(addr, Some(600_000), Duration::from_millis(200));
    run(&mut sim, &mut publisher, 20, &mut wc, &mut wf);
    let lifted_at = sim.now - start;
    let down = wc
        .frames
        .iter()
        .find(|(t, s)| *t >= capped_at && s.is_some_and(|(w, _)| w < 1280))
        .map(|(t, _)| *t - capped_at)
        .expect("the capped subscriber never got a lower layer");
    let estimate = sim.server.downlink_estimate(sim.clients[capped].key);
    eprintln!("cap → lower layer in {down:?}; estimate at the end of the cap: {estimate:?}");
    assert!(down <= Duration::from_secs(5), "took {down:?}");
    let settled = capped_at + down;
    let mut last: Option<(Duration, Option<(u16, u16)>)> = None;
    for &(t, size) in wc.frames.iter().filter(|(t, _)| *t >= capped_at) {
        if let Some((lt, ls)) = last
            && (t - lt > Duration::from_millis(300) || ls != size)
        {
            eprintln!("{lt:?} {ls:?} -> {t:?} {size:?}");
        }
        last = Some((t, size));
    }
    let gap = wc.longest_gap(settled, lifted_at);
    eprintln!("longest freeze after the switch: {gap:?}");
    assert!(gap <= Duration::from_secs(1), "froze {gap:?} under the cap");
    let free_sizes: Vec<_> = wf
        .frames
        .iter()
        .filter(|(t, _)| *t >= capped_at)
        .map(|(_, s)| *s)
        .collect();
    assert!(
        free_sizes.iter().all(|s| *s == Some((1280, 720))),
        "the uncapped subscriber left the top layer"
    );
    assert!(wf.longest_gap(capped_at, lifted_at) <= Duration::from_millis(200));

    sim.set_link_rate(addr, None, Duration::ZERO);
    run(&mut sim, &mut publisher, 20, &mut wc, &mut wf);
    let up = wc
        .first_of((1280, 720), lifted_at)
        .map(|t| t - lifted_at)
        .expect("never back on the top layer");
    eprintln!("cap lifted → top layer in {up:?}");
    assert!(up <= Duration::from_secs(15), "took {up:?} to climb back");
}
