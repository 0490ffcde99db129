//! A screen share beside a camera on a slow link, on simulated time: one publisher sends a
//! simulcast camera (150 kbit/s, 500 kbit/s, 1.5 Mbit/s) and a plain one-layer screen share
//! (1920×1080, ~800 kbit/s); one subscriber shows both at the default view. With its link capped
//! at 1.2 Mbit/s, the screen (which cannot come down) takes its rate first: the camera must be on
//! its quarter layer within 5 s (the half layer beside the screen would overfill the link), and
//! from then on neither the screen nor the camera may freeze for more than 1 s.

use std::collections::{HashMap, HashSet};
use std::time::Duration;
use videoroom_protocol::MediaKind;
use videoroom_server::engine::View;
use videoroom_server::engine::sim::{Sim, SimulcastSender, longest_gap, vp8_layer_packet};
use videoroom_server::engine::vp8;

/// (rid, SSRC, size, bytes per frame at 30 fps)
const CAM: [(&str, u32, (u16, u16), usize); 3] = [
    ("q", 0x1000, (320, 180), 625),    // 150 kbit/s
    ("h", 0x2000, (640, 360), 2_083),  // 500 kbit/s
    ("f", 0x3000, (1280, 720), 6_250), // 1.5 Mbit/s
];
const SCREEN_SSRC: u32 = 0x5C2E;
const SCREEN_SIZE: (u16, u16) = (1920, 1080);
/// 800 kbit/s at 30 fps.
const SCREEN_BYTES: usize = 3_333;
const FRAME: Duration = Duration::from_micros(33_333);
const MTU_PAYLOAD: usize = 1_100;
const CAP_BPS: u64 = 1_200_000;

/// One frame as packets: `bytes` split at [`MTU_PAYLOAD`], the first one a keyframe header of
/// `key` (its size) if given, the last one marked.
fn frame_packets(
    seq: &mut u16,
    n: u32,
    key: Option<(u16, u16)>,
    bytes: usize,
) -> Vec<rtc::rtp::Packet> {
    let packets = bytes.div_ceil(MTU_PAYLOAD);
    (0..packets)
        .map(|p| {
            let len = (bytes / packets).max(1);
            let mut packet = vp8_layer_packet(
                *seq,
                n * 3000,
                (n % 0x8000) as u16,
                key.filter(|_| p == 0),
                len,
            );
            if p > 0 {
                // A continuation: S bit clear.
                let mut payload = bytes::BytesMut::from(&packet.payload[..]);
                payload[0] &= !0x10;
                packet.payload = payload.freeze();
            }
            packet.header.marker = p + 1 == packets;
            *seq = seq.wrapping_add(1);
            packet
        })
        .collect()
}

struct Publisher {
    i: usize,
    cam: SimulcastSender,
    screen: rtc::rtp_transceiver::RTCRtpSenderId,
    frame: u32,
    /// Next sequence number per camera layer, then the screen's.
    seq: [u16; 4],
    /// Keyframe requests already answered, per track id.
    answered: HashMap<String, usize>,
}

impl Publisher {
    fn new(sim: &mut Sim) -> Self {
        let i = sim.add_client();
        let layers: Vec<(&str, u32)> = CAM.iter().map(|&(r, s, _, _)| (r, s)).collect();
        let cam = sim.publish_simulcast(i, "cam", &layers);
        let screen = sim.publish(i, "screen", MediaKind::Video, SCREEN_SSRC);
        sim.client_offers(i).expect("offer/answer");
        assert!(sim.run_until_connected(i, Duration::from_secs(5)));
        Self {
            i,
            cam,
            screen,
            frame: 0,
            seq: [100, 20_000, 40_000, 60_000],
            answered: HashMap::new(),
        }
    }

    /// Whether a keyframe request about `track` came that is not answered yet; marks it answered.
    fn asked(&mut self, sim: &Sim, track: &str) -> bool {
        let requests = sim.clients[self.i]
            .rtcp
            .iter()
            .filter(|(t, _)| t == track)
            .flat_map(|(_, p)| p.iter())
            .filter(|p| videoroom_webrtc::is_keyframe_request(p.as_ref()))
            .count();
        let answered = self.answered.entry(track.to_owned()).or_default();
        let asked = requests > *answered;
        *answered = requests;
        asked
    }

    /// One frame on every camera layer and on the screen (each a keyframe every 2 s, and when
    /// one is asked for); then a frame interval passes.
    fn frame(&mut self, sim: &mut Sim) {
        let n = self.frame;
        let periodic = n.is_multiple_of(60);
        let cam_key = self.asked(sim, "cam") || periodic;
        let screen_key = self.asked(sim, "screen") || periodic;
        for (k, &(rid, _, size, bytes)) in CAM.iter().enumerate() {
            for packet in frame_packets(&mut self.seq[k], n, cam_key.then_some(size), bytes) {
                sim.send_layer(self.i, &self.cam, rid, packet);
            }
        }
        let key = screen_key.then_some(SCREEN_SIZE);
        for mut packet in frame_packets(&mut self.seq[3], n, key, SCREEN_BYTES) {
            packet.header.ssrc = SCREEN_SSRC;
            sim.send_rtp(self.i, self.screen, packet);
        }
        self.frame += 1;
        sim.advance(FRAME);
    }
}

/// A frame not complete yet: the sequence numbers that came, and where it starts and ends.
#[derive(Default)]
struct Partial {
    seqs: HashSet<u16>,
    first: Option<u16>,
    last: Option<u16>,
    size: Option<(u16, u16)>,
}

/// What the subscriber saw of one track: per complete frame (its start, its marker and every
/// packet between came), when, and the size of the last complete keyframe.
struct Watch {
    track: &'static str,
    seen: usize,
    size: Option<(u16, u16)>,
    partial: HashMap<u32, Partial>,
    complete: HashSet<u32>,
    frames: Vec<(Duration, Option<(u16, u16)>)>,
}

impl Watch {
    fn new(track: &'static str) -> Self {
        Self {
            track,
            seen: 0,
            size: None,
            partial: HashMap::new(),
            complete: HashSet::new(),
            frames: Vec::new(),
        }
    }

    fn poll(&mut self, sim: &Sim, b: usize, t: Duration) {
        let Some(got) = sim.clients[b].received.get(self.track) else {
            return;
        };
        for p in &got[self.seen..] {
            let ts = p.header.timestamp;
            if self.complete.contains(&ts) {
                continue;
            }
            let seq = p.header.sequence_number;
            let f = self.partial.entry(ts).or_default();
            f.seqs.insert(seq);
            if let Some(info) = vp8::parse(&p.payload)
                && info.frame_start
            {
                f.first = Some(seq);
                f.size = f.size.or(info.size);
            }
            if p.header.marker {
                f.last = Some(seq);
            }
            if let (Some(first), Some(last)) = (f.first, f.last)
                && f.seqs.len() == usize::from(last.wrapping_sub(first)) + 1
            {
                if f.size.is_some() {
                    self.size = f.size;
                }
                self.partial.remove(&ts);
                self.complete.insert(ts);
                self.frames.push((t, self.size));
            }
        }
        self.seen = got.len();
    }

    /// The longest time without a complete frame in `from..to` (up to `to` itself: a stream
    /// that stopped counts).
    fn longest_gap(&self, from: Duration, to: Duration) -> Duration {
        longest_gap(self.frames.iter().map(|&(t, _)| t), from, to)
    }

    /// The layer changes and freezes over 300 ms from `from` on, for the log.
    fn log_changes(&self, from: Duration) {
        let mut last: Option<(Duration, Option<(u16, u16)>)> = None;
        for &(t, size) in self.frames.iter().filter(|(t, _)| *t >= from) {
            if let Some((lt, ls)) = last
                && (t - lt > Duration::from_millis(300) || ls != size)
            {
                eprintln!("  {}: {lt:?} {ls:?} -> {t:?} {size:?}", self.track);
            }
            last = Some((t, size));
        }
    }
}

#[test]
fn a_screen_share_takes_its_rate_first_and_the_camera_comes_down() {
    let mut sim = Sim::new();
    let mut publisher = Publisher::new(&mut sim);
    publisher.frame(&mut sim);
    let cam = sim.wait_layers(publisher.i, "cam", 3);
    assert!(
        sim.run_until(Duration::from_secs(1), |s| s
            .forwarder_of(publisher.i, "screen")
            .is_some()),
        "no forwarder for the screen"
    );
    let screen = sim.forwarder_of(publisher.i, "screen").expect("forwarder");
    assert_eq!(
        sim.server.layers(screen).len(),
        1,
        "the screen is one layer"
    );

    // One subscriber with both tracks in one offer, at the default view.
    let b = sim.add_client();
    let key = sim.clients[b].key;
    let now = sim.now;
    let legs = [(cam, 1, "cam", 0xCA9), (screen, 2, "screen", 0x5C9)];
    let senders: Vec<_> = legs
        .iter()
        .map(|&(_, _, track, ssrc)| {
            sim.server
                .add_sender(now, key, "client0", track, MediaKind::Video, ssrc)
                .expect("add_sender")
        })
        .collect();
    sim.server_offers(b).expect("server offer");
    assert!(
        sim.run_until_connected(b, Duration::from_secs(5)),
        "subscriber did not connect: {:?}",
        sim.clients[b].state
    );
    let now = sim.now;
    for (&(fwd, leg, _, ssrc), sender) in legs.iter().zip(senders) {
        let pt = sim
            .server
            .sender_payload_type(key, sender)
            .expect("negotiated payload type");
        sim.server
            .subscribe(now, fwd, leg, key, sender, ssrc, pt, View::Default);
    }
    sim.pump();

    let start = sim.now;
    let (mut wc, mut ws) = (Watch::new("cam"), Watch::new("screen"));
    let run =
        |sim: &mut Sim, publisher: &mut Publisher, secs: u32, wc: &mut Watch, ws: &mut Watch| {
            for _ in 0..secs * 30 {
                publisher.frame(sim);
                let t = sim.now - start;
                wc.poll(sim, b, t);
                ws.poll(sim, b, t);
            }
        };
    run(&mut sim, &mut publisher, 5, &mut wc, &mut ws);
    eprintln!(
        "uncapped, after 5 s: camera {:?}, screen {:?}, estimate {:?}",
        wc.size,
        ws.size,
        sim.server.downlink_estimate(key)
    );
    assert_eq!(ws.size, Some(SCREEN_SIZE), "the screen arrives uncapped");
    assert!(wc.size.is_some(), "the camera arrives uncapped");

    let capped_at = sim.now - start;
    let addr = sim.clients[b].addr;
    sim.set_link_rate(addr, Some(CAP_BPS), Duration::from_millis(200));
    run(&mut sim, &mut publisher, 20, &mut wc, &mut ws);
    let end = sim.now - start;
    eprintln!(
        "estimate at the end of the cap: {:?}; link drops {}",
        sim.server.downlink_estimate(key),
        sim.link_drops
    );
    wc.log_changes(capped_at);
    ws.log_changes(capped_at);

    let down = wc
        .frames
        .iter()
        .find(|(t, s)| *t >= capped_at && *s == Some(CAM[0].2))
        .map(|(t, _)| *t - capped_at);
    eprintln!("cap → camera on the quarter layer in {down:?}");
    let down = down.expect("the camera never came down to the quarter layer");
    assert!(down <= Duration::from_secs(5), "took {down:?} to come down");

    let from = capped_at + down + Duration::from_secs(3);
    let (screen_gap, cam_gap) = (ws.longest_gap(from, end), wc.longest_gap(from, end));
    eprintln!(
        "from {from:?} to {end:?}: longest screen gap {screen_gap:?}, camera gap {cam_gap:?}"
    );
    assert!(
        screen_gap <= Duration::from_secs(1),
        "the screen froze {screen_gap:?}"
    );
    assert!(
        cam_gap <= Duration::from_secs(1),
        "the camera froze {cam_gap:?}"
    );
    let last_screen = ws.frames.last().map(|(t, _)| *t);
    assert!(
        last_screen.is_some_and(|t| end - t <= Duration::from_millis(500)),
        "the screen stopped: last complete frame at {last_screen:?}, run ended at {end:?}"
    );
}
