//! Simulcast through the media core, on simulated time: a publisher sends three layers (each
//! its own SSRC, MID and RID header extensions, 15-bit picture ids), every subscriber gets the
//! layer that fits how it shows the track, switches happen on keyframes, and the subscriber sees
//! one continuous stream whatever the layer.

use std::time::Duration;
use videoroom_server::engine::View;
use videoroom_server::engine::core::CoreEvent;
use videoroom_server::engine::sim::{Sim, SimulcastSender, vp8_layer_packet};
use videoroom_server::engine::vp8;

const LAYERS: [(&str, u32, (u16, u16)); 3] = [
    ("q", 0x1000, (320, 180)),
    ("h", 0x2000, (640, 360)),
    ("f", 0x3000, (1280, 720)),
];

/// One publisher's three layers, each with its own sequence, timestamp and picture id
/// spaces (as a browser's encoders have).
struct Publisher {
    i: usize,
    track: SimulcastSender,
    frame: u32,
    /// Layers it still sends.
    sending: [bool; 3],
}

impl Publisher {
    fn new(sim: &mut Sim) -> Self {
        let i = sim.add_client();
        let layers: Vec<(&str, u32)> = LAYERS.iter().map(|&(r, s, _)| (r, s)).collect();
        let track = sim.publish_simulcast(i, "cam", &layers);
        sim.client_offers(i).expect("offer/answer");
        assert!(
            sim.run_until_connected(i, Duration::from_secs(5)),
            "publisher did not connect"
        );
        Self {
            i,
            track,
            frame: 0,
            sending: [true; 3],
        }
    }

    /// One frame on every layer (a keyframe every 10th), then 33 ms pass.
    fn frame(&mut self, sim: &mut Sim) {
        let n = self.frame;
        for (k, &(rid, _, size)) in LAYERS.iter().enumerate() {
            if !self.sending[k] {
                continue;
            }
            let base = 10_000 * (k as u32 + 1);
            let seq = (base + n) as u16;
            let ts = base * 7 + n * 3000;
            let pic = ((base + n) % 0x8000) as u16;
            let key = n.is_multiple_of(10).then_some(size);
            let len = [100, 300, 900][k];
            sim.send_layer(
                self.i,
                &self.track,
                rid,
                vp8_layer_packet(seq, ts, pic, key, len),
            );
        }
        self.frame += 1;
        sim.advance(Duration::from_millis(33));
    }
}

/// One packet as a subscriber got it: (seq, ts, picture id, keyframe size).
type Got = (u16, u32, u16, Option<(u16, u16)>);

/// What subscriber `b` received of "cam".
fn received(sim: &Sim, b: usize) -> Vec<Got> {
    sim.clients[b]
        .received
        .get("cam")
        .map_or_else(Vec::new, |v| {
            v.iter()
                .map(|p| {
                    let info = vp8::parse(&p.payload).expect("VP8");
                    let (pic, long) = info.picture_id.expect("picture id");
                    assert!(long, "the 15-bit form is kept");
                    (p.header.sequence_number, p.header.timestamp, pic, info.size)
                })
                .collect()
        })
}

/// The keyframe sizes subscriber `b` received from packet `from` on.
fn sizes_from(sim: &Sim, b: usize, from: usize) -> Vec<(u16, u16)> {
    received(sim, b)[from..]
        .iter()
        .filter_map(|r| r.3)
        .collect()
}

/// Every packet continues the one before: sequence +1, picture id +1 (one packet per frame
/// here), timestamp forward by at most `max_gap` (the wall-clock time between them).
fn assert_continuous(got: &[Got], max_gap: Duration) {
    for w in got.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert_eq!(b.0, a.0.wrapping_add(1), "sequence gap: {a:?} -> {b:?}");
        assert_eq!(b.2, (a.2 + 1) % 0x8000, "picture id gap: {a:?} -> {b:?}");
        let step = b.1.wrapping_sub(a.1);
        assert!(
            (1..=max_gap.as_millis() as u32 * 90).contains(&step),
            "timestamp went back or jumped: {a:?} -> {b:?}"
        );
    }
}

#[test]
fn each_subscriber_gets_the_layer_that_fits_and_switches_are_seamless() {
    let mut sim = Sim::new();
    let mut publisher = Publisher::new(&mut sim);
    publisher.frame(&mut sim);
    let fwd = sim.wait_layers(publisher.i, "cam", 3);
    let opened = sim
        .events
        .iter()
        .filter(|e| matches!(e.event, CoreEvent::TrackOpened { .. }))
        .count();
    assert_eq!(opened, 1, "one track, not one per layer");
    let mut rids: Vec<_> = sim
        .server
        .layers(fwd)
        .into_iter()
        .map(|l| (l.rid.expect("rid"), l.ssrc, l.size))
        .collect();
    rids.sort();
    assert_eq!(
        rids,
        vec![
            ("f".to_owned(), 0x3000, Some((1280, 720))),
            ("h".to_owned(), 0x2000, Some((640, 360))),
            ("q".to_owned(), 0x1000, Some((320, 180))),
        ]
    );

    let big = sim.connect_subscriber(fwd, 1, "cam", 0xB16);
    let small = sim.connect_subscriber(fwd, 2, "cam", 0x5A11);
    let now = sim.now;
    sim.server.set_view(now, fwd, 2, View::Size(320, 180));
    // Two seconds: the layers (quiet while the subscribers connected) have settled again.
    for _ in 0..60 {
        publisher.frame(&mut sim);
    }
    assert!(sim.run_until(Duration::from_secs(1), |s| received(s, small).len() >= 20));
    assert_eq!(
        sizes_from(&sim, big, 0).first(),
        Some(&(1280, 720)),
        "the large view starts on the top layer"
    );
    assert!(sizes_from(&sim, big, 0).iter().all(|&s| s == (1280, 720)));
    assert!(!sizes_from(&sim, small, 0).is_empty());
    assert!(
        sizes_from(&sim, small, 0).iter().all(|&s| s == (320, 180)),
        "a 320x180 view gets the low layer: {:?}",
        sizes_from(&sim, small, 0)
    );
    // Only the low layer's payload reached the small view.
    let small_bytes: Vec<usize> = sim.clients[small].received["cam"]
        .iter()
        .map(|p| p.payload.len())
        .collect();
    assert!(small_bytes.iter().all(|&n| n < 200), "{small_bytes:?}");

    // The small view grows: it switches up at the top layer's next keyframe.
    let before = received(&sim, small).len();
    let now = sim.now;
    sim.server.set_view(now, fwd, 2, View::Size(1280, 720));
    for _ in 0..25 {
        publisher.frame(&mut sim);
    }
    assert!(
        sim.run_until(Duration::from_secs(1), |s| received(s, small).len()
            >= before + 20)
    );
    assert_eq!(sizes_from(&sim, small, before).last(), Some(&(1280, 720)));
    let (layer, switches) = sim.server.leg_layer(fwd, 2).expect("leg");
    // Up one layer at a time once the subscriber's downlink is measured (q → h → f).
    assert!((1..=2).contains(&switches), "{switches} switches");
    assert_eq!(
        sim.server.layers(fwd)[layer.expect("a layer")].size,
        Some((1280, 720))
    );
    assert_continuous(&received(&sim, small), Duration::from_secs(1));
    assert_continuous(&received(&sim, big), Duration::from_secs(1));
    assert_eq!(sim.server.stats().layer_switches, switches);

    // Hidden: nothing more reaches it, while the large view goes on.
    let now = sim.now;
    sim.server.set_view(now, fwd, 2, View::Hidden);
    assert_eq!(sim.server.paused_legs(), 1);
    sim.pump();
    let (small_n, big_n) = (received(&sim, small).len(), received(&sim, big).len());
    for _ in 0..20 {
        publisher.frame(&mut sim);
    }
    assert!(
        sim.run_until(Duration::from_secs(1), |s| received(s, big).len()
            >= big_n + 20)
    );
    assert_eq!(
        received(&sim, small).len(),
        small_n,
        "a hidden track got media"
    );

    // Shown again (small): it resumes at a low-layer keyframe, its stream still continuous.
    let now = sim.now;
    sim.server.set_view(now, fwd, 2, View::Size(160, 90));
    for _ in 0..20 {
        publisher.frame(&mut sim);
    }
    assert!(
        sim.run_until(Duration::from_secs(1), |s| received(s, small).len()
            > small_n + 5)
    );
    assert_eq!(sizes_from(&sim, small, small_n).first(), Some(&(320, 180)));
    assert_continuous(&received(&sim, small), Duration::from_secs(1));
}

#[test]
fn a_layer_that_stops_is_replaced_by_the_next_one_down() {
    let mut sim = Sim::new();
    let mut publisher = Publisher::new(&mut sim);
    publisher.frame(&mut sim);
    let fwd = sim.wait_layers(publisher.i, "cam", 3);
    let b = sim.connect_subscriber(fwd, 1, "cam", 0xB);
    for _ in 0..20 {
        publisher.frame(&mut sim);
    }
    assert!(sizes_from(&sim, b, 0).iter().all(|&s| s == (1280, 720)));
    // The publisher's uplink no longer carries the top layer.
    publisher.sending[2] = false;
    let before = received(&sim, b).len();
    let stopped = sim.now;
    let mut switched = None;
    for _ in 0..90 {
        publisher.frame(&mut sim);
        if switched.is_none() && sizes_from(&sim, b, before).contains(&(640, 360)) {
            switched = Some(sim.now - stopped);
        }
    }
    let took = switched.expect("never switched down to the half layer");
    assert!(
        took <= Duration::from_secs(3),
        "took {took:?} to replace a stopped layer"
    );
    // The picture froze from the stop to the switch; the timestamps say so.
    assert_continuous(&received(&sim, b), took + Duration::from_millis(100));
}

/// The last `layers_wanted` the publisher's endpoint got: (rids sorted, active).
fn last_wanted(sim: &Sim, publisher: usize) -> Option<(Vec<String>, bool)> {
    let key = sim.clients[publisher].key;
    sim.events.iter().rev().find_map(|e| match &e.event {
        CoreEvent::LayersWanted { rids, active, .. } if e.key == key => {
            let mut rids = rids.clone();
            rids.sort();
            Some((rids, *active))
        }
        _ => None,
    })
}

#[test]
fn the_publisher_is_told_which_layers_anyone_receives() {
    let mut sim = Sim::new();
    let mut publisher = Publisher::new(&mut sim);
    publisher.frame(&mut sim);
    let fwd = sim.wait_layers(publisher.i, "cam", 3);
    // Nobody subscribed: after the release delay, nothing is wanted.
    for _ in 0..80 {
        publisher.frame(&mut sim);
    }
    assert_eq!(last_wanted(&sim, publisher.i), Some((vec![], false)));

    // A small view: only the quarter layer, at once.
    let b = sim.connect_subscriber(fwd, 1, "cam", 0xB);
    let now = sim.now;
    sim.server.set_view(now, fwd, 1, View::Size(320, 180));
    sim.pump();
    assert_eq!(
        last_wanted(&sim, publisher.i),
        Some((vec!["f".to_owned(), "q".to_owned()], true)),
        "what the leg got first (the default view) and what it wants now"
    );
    publisher.sending = [true, false, false];
    for _ in 0..80 {
        publisher.frame(&mut sim);
    }
    assert_eq!(
        last_wanted(&sim, publisher.i),
        Some((vec!["q".to_owned()], true))
    );
    assert!(sizes_from(&sim, b, 0).contains(&(320, 180)));

    // Hidden: nothing wanted after the delay.
    let now = sim.now;
    sim.server.set_view(now, fwd, 1, View::Hidden);
    sim.pump();
    for _ in 0..80 {
        publisher.frame(&mut sim);
    }
    assert_eq!(last_wanted(&sim, publisher.i), Some((vec![], false)));
    let told = sim.server.stats().layer_demand_changes;

    // Large again: the top layer is wanted at once, though it is not flowing yet.
    let now = sim.now;
    sim.server.set_view(now, fwd, 1, View::Default);
    sim.pump();
    assert_eq!(
        last_wanted(&sim, publisher.i),
        Some((vec!["f".to_owned(), "q".to_owned()], true)),
        "the top layer, and the one it flows on until the top layer comes"
    );
    assert_eq!(sim.server.stats().layer_demand_changes, told + 1);
    // The publisher resumes the top layer (the quarter one goes on): the leg moves up, and
    // the quarter layer is let go.
    publisher.sending = [true, false, true];
    let before = received(&sim, b).len();
    for _ in 0..90 {
        publisher.frame(&mut sim);
    }
    assert_eq!(sizes_from(&sim, b, before).last(), Some(&(1280, 720)));
    assert_eq!(
        last_wanted(&sim, publisher.i),
        Some((vec!["f".to_owned()], true))
    );
}

/// Padding-only packets (a browser's bandwidth probe on a layer's SSRC, no RTX negotiated) are
/// not forwarded, and the subscriber's sequence numbers show no gap for them.
#[test]
fn padding_only_packets_are_not_forwarded_and_leave_no_gap() {
    let mut sim = Sim::new();
    let mut publisher = Publisher::new(&mut sim);
    publisher.frame(&mut sim);
    let fwd = sim.wait_layers(publisher.i, "cam", 3);
    let b = sim.connect_subscriber(fwd, 1, "cam", 0xB);
    for _ in 0..60 {
        publisher.frame(&mut sim);
    }
    let before = received(&sim, b).len();
    assert!(before > 20);
    // Five padding packets on the top layer, numbered in its sequence, between two frames.
    let base = 10_000 * 3 + publisher.frame;
    for k in 0..5u32 {
        let mut padding = vp8_layer_packet((base + k) as u16, 0, 0, None, 0);
        padding.payload = bytes::Bytes::new();
        padding.header.padding = true;
        sim.send_layer(publisher.i, &publisher.track, "f", padding);
    }
    // The publisher's next frames on the top layer continue after the padding.
    for (k, _) in (0..20).enumerate() {
        let n = publisher.frame;
        let ts = 10_000 * 3 * 7 + n * 3000;
        let pic = ((10_000 * 3 + n) % 0x8000) as u16;
        let seq = (base + 5 + k as u32) as u16;
        sim.send_layer(
            publisher.i,
            &publisher.track,
            "f",
            vp8_layer_packet(seq, ts, pic, None, 900),
        );
        publisher.frame += 1;
        sim.advance(Duration::from_millis(33));
    }
    assert!(
        sim.run_until(Duration::from_secs(1), |s| received(s, b).len()
            >= before + 20)
    );
    let got = received(&sim, b);
    assert!(
        got.iter().all(|p| p.0 != 0 || p.2 != 0),
        "no empty packet forwarded"
    );
    for w in got.windows(2) {
        assert_eq!(
            w[1].0,
            w[0].0.wrapping_add(1),
            "gap: {:?} -> {:?}",
            w[0],
            w[1]
        );
    }
}
