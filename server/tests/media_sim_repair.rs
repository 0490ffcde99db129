//! Repair and control paths of the media engine's core, through the simulated network and clock
//! (`engine::sim`): per-leg NACK, coalesced keyframe requests, holding a track, and consent
//! loss. No sockets, no sleeping: every bound is simulated time.

use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::RTCRtpSenderId;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use videoroom_protocol::MediaKind;
use videoroom_server::engine::core::CoreEvent;
use videoroom_server::engine::sim::{Sim, Wire, vp8_packet};

const PUB_SSRC: u32 = 0x1111;

fn sub_ssrc(n: usize) -> u32 {
    0x2000 + n as u32
}

/// The sequence number of an SRTP datagram carrying VP8 (the RTP header is not encrypted);
/// `None` for RTCP and everything else.
fn rtp_seq(w: &Wire) -> Option<u16> {
    let b = &w.bytes;
    (b.len() >= 12 && (128..=191).contains(&b[0]) && b[1] & 0x7f == videoroom_webrtc::VP8_PT)
        .then(|| u16::from_be_bytes([b[2], b[3]]))
}

/// Client `a` sends `n` delta frames every 33 ms of simulated time from `*seq` on.
fn send_frames(sim: &mut Sim, a: usize, sender: RTCRtpSenderId, seq: &mut u16, n: u16) {
    for _ in 0..n {
        let ts = u32::from(*seq).wrapping_mul(3000);
        sim.send_rtp(a, sender, vp8_packet(*seq, ts, PUB_SSRC, false, 0xAB, 500));
        *seq = seq.wrapping_add(1);
        sim.advance(Duration::from_millis(33));
    }
}

fn seqs(sim: &Sim, i: usize) -> Vec<u16> {
    sim.clients[i]
        .received
        .get("cam")
        .map(|v| v.iter().map(|p| p.header.sequence_number).collect())
        .unwrap_or_default()
}

fn plis_at_publisher(sim: &Sim, a: usize) -> usize {
    sim.clients[a]
        .rtcp
        .iter()
        .flat_map(|(_, packets)| packets.iter())
        .filter(|p| p.as_any().is::<PictureLossIndication>())
        .count()
}

fn held_flag(sim: &Sim, a: usize) -> Arc<AtomicBool> {
    let key = sim.clients[a].key;
    sim.events
        .iter()
        .find_map(|e| match &e.event {
            CoreEvent::TrackOpened { held, .. } if e.key == key => Some(Arc::clone(held)),
            _ => None,
        })
        .expect("TrackOpened")
}

/// RTP sequence numbers seen on the wire per (from, to), including dropped ones.
#[derive(Default)]
struct WireLog {
    seen: BTreeMap<(SocketAddr, SocketAddr), Vec<u16>>,
    dropped: Vec<u16>,
}

#[test]
fn a_nack_is_answered_by_the_subscribers_own_leg() {
    let mut sim = Sim::new();
    let (a, publisher_rtcp) = sim.add_client_logging_rtcp();
    let sender = sim.publish(a, "cam", MediaKind::Video, PUB_SSRC);
    sim.client_offers(a).expect("offer/answer");
    assert!(sim.run_until_connected(a, Duration::from_secs(5)));
    let (fwd, mut seq) = sim.open_track(a, sender, "cam", PUB_SSRC, 0);
    let s1 = sim.connect_subscriber(fwd, 1, "cam", sub_ssrc(1));
    let s2 = sim.connect_subscriber(fwd, 2, "cam", sub_ssrc(2));
    let (server, publisher, sub1, sub2) = (
        sim.server_addr(),
        sim.clients[a].addr,
        sim.clients[s1].addr,
        sim.clients[s2].addr,
    );
    send_frames(&mut sim, a, sender, &mut seq, 3);

    // Drop the 11th RTP datagram the server sends subscriber 2 from here on, once.
    let first = seq;
    let lost = first.wrapping_add(10);
    let log = Rc::new(RefCell::new(WireLog::default()));
    let filter_log = Rc::clone(&log);
    let mut to_sub2 = 0;
    sim.drop_filter = Some(Box::new(move |w: &Wire| {
        let Some(s) = rtp_seq(w) else {
            return false;
        };
        let mut l = filter_log.borrow_mut();
        l.seen.entry((w.src, w.dst)).or_default().push(s);
        if w.src == server && w.dst == sub2 && s >= first {
            to_sub2 += 1;
            if to_sub2 == 11 {
                assert_eq!(s, lost, "the 11th datagram to subscriber 2 is not {lost}");
                l.dropped.push(s);
                return true;
            }
        }
        false
    }));
    // 30 frames, 33 ms apart, the clock stepped by 1 ms to time the repair.
    let mut dropped_at = None;
    let mut recovered_at = None;
    for _ in 0..30 {
        let ts = u32::from(seq).wrapping_mul(3000);
        sim.send_rtp(a, sender, vp8_packet(seq, ts, PUB_SSRC, false, 0xAB, 500));
        seq = seq.wrapping_add(1);
        for _ in 0..33 {
            sim.advance(Duration::from_millis(1));
            if dropped_at.is_none() && !log.borrow().dropped.is_empty() {
                dropped_at = Some(sim.now);
            }
            if recovered_at.is_none() && seqs(&sim, s2).contains(&lost) {
                recovered_at = Some(sim.now);
            }
        }
    }
    let last = seq.wrapping_sub(1);
    let recovered = sim.run_until(Duration::from_secs(2), |s| seqs(s, s2).contains(&lost));
    let recovered_at = recovered_at.unwrap_or(sim.now);

    let l = log.borrow();
    assert_eq!(l.dropped.len(), 1, "nothing was dropped");
    let to2 = &l.seen[&(server, sub2)];
    let to1 = &l.seen[&(server, sub1)];
    let from_pub = &l.seen[&(publisher, server)];
    println!(
        "NACK: seq {lost} dropped, at subscriber 2 {:?} later (±1 ms); \
         wire: {} RTP to sub 2 ({} of seq {lost}), {} to sub 1, {} from the publisher",
        dropped_at.map_or(Duration::ZERO, |d| recovered_at - d),
        to2.len(),
        to2.iter().filter(|&&s| s == lost).count(),
        to1.len(),
        from_pub.len()
    );
    assert!(
        recovered,
        "subscriber 2 never got seq {lost}: {:?}",
        seqs(&sim, s2)
    );
    // A NACK interval (100 ms) plus a round trip, with margin.
    let repair = recovered_at - dropped_at.expect("drop time");
    assert!(
        repair <= Duration::from_millis(250),
        "repair took {repair:?}"
    );

    // Subscriber 2 has every sequence number, its leg resent the lost one.
    let got2: BTreeSet<u16> = seqs(&sim, s2).into_iter().collect();
    for s in first..=last {
        assert!(got2.contains(&s), "subscriber 2 lacks seq {s}");
    }
    assert_eq!(
        to2.iter().filter(|&&s| s == lost).count(),
        2,
        "one drop, one resend"
    );
    // Subscriber 1 saw no resend and received no duplicate.
    let got1 = seqs(&sim, s1);
    let unique1: BTreeSet<u16> = got1.iter().copied().collect();
    assert_eq!(
        unique1.len(),
        got1.len(),
        "subscriber 1 got a duplicate: {got1:?}"
    );
    assert_eq!(to1.iter().filter(|&&s| s == lost).count(), 1);
    // The publisher was not asked: no NACK reached it, and it sent seq `lost` once.
    let nacks: Vec<String> = publisher_rtcp
        .lock()
        .expect("log")
        .iter()
        .filter(|(_, p)| p.as_any().is::<TransportLayerNack>())
        .map(|(_, p)| format!("{p:?}"))
        .collect();
    assert!(nacks.is_empty(), "the publisher got NACKs: {nacks:?}");
    assert!(
        !publisher_rtcp.lock().expect("log").is_empty(),
        "the publisher's RTCP log is empty (the tap is not working)"
    );
    assert_eq!(from_pub.iter().filter(|&&s| s == lost).count(), 1);
}

#[test]
fn a_pli_storm_of_ten_subscribers_costs_the_publisher_at_most_two_plis() {
    let mut sim = Sim::new();
    let (a, sender) = sim.connect_publisher("cam", PUB_SSRC);
    let (fwd, mut seq) = sim.open_track(a, sender, "cam", PUB_SSRC, 0);
    let subs: Vec<usize> = (0..10)
        .map(|n| sim.connect_subscriber(fwd, n as u64, "cam", sub_ssrc(n)))
        .collect();
    // Let the subscribe-time requests settle.
    send_frames(&mut sim, a, sender, &mut seq, 3);
    sim.advance(Duration::from_secs(2));
    let receivers: Vec<_> = subs
        .iter()
        .map(|&b| {
            sim.client_receiver(b, "cam")
                .expect("subscriber's receiver")
        })
        .collect();
    let before = plis_at_publisher(&sim, a);
    let requests_before = sim.server.stats().keyframe_requests;
    assert!(before >= 1, "the subscribes asked for no keyframe");

    let storm = sim.now;
    for (n, (&b, &r)) in subs.iter().zip(&receivers).enumerate() {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: sub_ssrc(n),
        };
        sim.send_receiver_rtcp(b, r, vec![Box::new(pli)]);
        sim.advance(Duration::from_millis(10));
    }
    assert!(sim.now - storm <= Duration::from_millis(101));
    sim.run_until(storm + Duration::from_secs(1) - sim.now, |_| false);
    let plis = plis_at_publisher(&sim, a) - before;
    let requests = sim.server.stats().keyframe_requests - requests_before;
    println!(
        "PLI storm: 10 PLIs in 100 ms -> {plis} PLIs at the publisher within 1 s ({requests} sent)"
    );
    assert!(plis >= 1, "the storm reached no PLI to the publisher");
    assert!(plis <= 2, "{plis} PLIs reached the publisher");
    assert_eq!(requests as usize, plis);
}

#[test]
fn a_held_track_reaches_nobody_until_released() {
    let mut sim = Sim::new();
    let (a, sender) = sim.connect_publisher("cam", PUB_SSRC);
    let (fwd, mut seq) = sim.open_track(a, sender, "cam", PUB_SSRC, 0);
    let subs: Vec<usize> = (0..2)
        .map(|n| sim.connect_subscriber(fwd, n as u64, "cam", sub_ssrc(n)))
        .collect();
    send_frames(&mut sim, a, sender, &mut seq, 5);
    assert!(sim.run_until(Duration::from_secs(1), |s| {
        subs.iter().all(|&b| s.received_count(b, "cam") >= 5)
    }));
    let held = held_flag(&sim, a);
    let counts: Vec<usize> = subs.iter().map(|&b| sim.received_count(b, "cam")).collect();
    let held_before = sim.server.stats().held;

    held.store(true, Ordering::Relaxed);
    send_frames(&mut sim, a, sender, &mut seq, 10);
    sim.advance(Duration::from_millis(200));
    for (&b, &n) in subs.iter().zip(&counts) {
        assert_eq!(
            sim.received_count(b, "cam"),
            n,
            "subscriber {b} got media while held"
        );
    }
    assert_eq!(sim.server.stats().held - held_before, 10);

    held.store(false, Ordering::Relaxed);
    send_frames(&mut sim, a, sender, &mut seq, 10);
    assert!(
        sim.run_until(Duration::from_secs(1), |s| subs
            .iter()
            .zip(&counts)
            .all(|(&b, &n)| s.received_count(b, "cam") >= n + 10)),
        "media did not resume: {:?} -> {:?}",
        counts,
        subs.iter()
            .map(|&b| sim.received_count(b, "cam"))
            .collect::<Vec<_>>()
    );
    assert_eq!(sim.server.stats().held - held_before, 10);
}

/// Plan §7 "Sequence rewrite": packets dropped on purpose (a held track) are taken out of the
/// leg's sequence, so the subscriber sees no gap it would NACK.
#[test]
fn a_released_track_resumes_without_a_sequence_gap() {
    let mut sim = Sim::new();
    let (a, sender) = sim.connect_publisher("cam", PUB_SSRC);
    let (fwd, mut seq) = sim.open_track(a, sender, "cam", PUB_SSRC, 0);
    let b = sim.connect_subscriber(fwd, 1, "cam", sub_ssrc(1));
    send_frames(&mut sim, a, sender, &mut seq, 5);
    assert!(sim.run_until(Duration::from_secs(1), |s| s.received_count(b, "cam") >= 5));
    let held = held_flag(&sim, a);
    held.store(true, Ordering::Relaxed);
    send_frames(&mut sim, a, sender, &mut seq, 10);
    held.store(false, Ordering::Relaxed);
    send_frames(&mut sim, a, sender, &mut seq, 10);
    assert!(sim.run_until(Duration::from_secs(1), |s| s.received_count(b, "cam") >= 15));
    let got = seqs(&sim, b);
    let gaps: Vec<(u16, u16)> = got
        .windows(2)
        .filter(|w| w[1] != w[0].wrapping_add(1))
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(
        gaps.is_empty(),
        "the subscriber sees gaps {gaps:?} in {got:?}"
    );
}

#[test]
fn a_silent_client_goes_disconnected_then_failed() {
    let mut sim = Sim::new();
    let (a, _sender) = sim.connect_publisher("cam", PUB_SSRC);
    let key = sim.clients[a].key;
    let client = sim.clients[a].addr;
    sim.advance(Duration::from_millis(1500));
    let silent = sim.now;
    sim.drop_filter = Some(Box::new(move |w: &Wire| w.src == client));
    // The server's agent last heard the client one latency after its last STUN check: rtc's
    // ICE handler passes DTLS and SRTP by without telling the agent (`handler/ice.rs:77-101`
    // never calls `validate_non_stun_traffic`), so only STUN counts as consent.
    let server_addr = sim.server_addr();
    let last_heard = sim
        .trace
        .iter()
        .filter(|(_, s, d, b, _)| *s == client && *d == server_addr && *b <= 3)
        .map(|(at, ..)| *at + sim.latency)
        .max()
        .expect("the client sent something");
    let state_at = |sim: &Sim, state: RTCPeerConnectionState| {
        sim.events.iter().find_map(|e| {
            (e.key == key && e.at >= silent && matches!(e.event, CoreEvent::State(s) if s == state))
                .then_some(e.at - last_heard)
        })
    };
    let started = Instant::now();
    let failed = sim.run_until(Duration::from_secs(60), |s| {
        state_at(s, RTCPeerConnectionState::Failed).is_some()
    });
    let cpu = started.elapsed();
    let disconnected = state_at(&sim, RTCPeerConnectionState::Disconnected);
    let failed_after = state_at(&sim, RTCPeerConnectionState::Failed);
    let states: Vec<String> = sim
        .events
        .iter()
        .filter(|e| e.key == key && e.at >= silent)
        .filter_map(|e| match e.event {
            CoreEvent::State(s) => Some(format!("{s:?} after {:?}", e.at - last_heard)),
            _ => None,
        })
        .collect();
    println!(
        "consent loss: server states after the client's last STUN check: {states:?} ({cpu:?} of CPU for {:?} simulated)",
        sim.now - last_heard
    );
    assert!(failed, "no Failed within 60 s: {states:?}");
    let disconnected = disconnected.expect("no Disconnected before Failed");
    let failed_after = failed_after.expect("Failed");
    // The engine's agent: Disconnected after 10 s without a check, Failed 20 s later, both
    // checked on rtc's 2 s keepalive tick (`core::ICE_DISCONNECTED_TIMEOUT`, `ICE_FAILED_TIMEOUT`).
    assert!(
        (Duration::from_secs(9)..=Duration::from_secs(13)).contains(&disconnected),
        "Disconnected after {disconnected:?}"
    );
    assert!(
        (Duration::from_secs(28)..=Duration::from_secs(36)).contains(&failed_after),
        "Failed after {failed_after:?}"
    );
}
