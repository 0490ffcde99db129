//! Hostile datagrams against the media engine's core, through the simulated network and clock
//! (`engine::sim`): spoofed DTLS, forged SRTP (from a stranger and from a peer's own address),
//! STUN with unknown or wrong credentials, a seeded random-datagram fuzz, and candidates the
//! ICE-lite core must never contact. No sockets, no sleeping: every bound is simulated time.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::RTCRtpSenderId;
use std::net::SocketAddr;
use std::time::Duration;
use videoroom_server::engine::core::CoreEvent;
use videoroom_server::engine::demux::{Class, DropCounts, MAX_DATAGRAM, classify};
use videoroom_server::engine::sim::{Sim, vp8_packet};

const PUB_SSRC: u32 = 0x1111;
const SUB_SSRC: u32 = 0x2222;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// A plausible DTLS 1.2 ClientHello record (epoch 0, sequence 0): the cipher suites and
/// extensions a browser offers, with a seeded random.
fn client_hello(seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut body = Vec::new();
    body.extend_from_slice(&[0xfe, 0xfd]); // client_version DTLS 1.2
    let random: [u8; 32] = rng.random();
    body.extend_from_slice(&random);
    body.push(0); // session_id
    body.push(0); // cookie
    let suites: [u16; 4] = [0xc02b, 0xc02f, 0xc00a, 0xc014];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    let extensions: [&[u8]; 4] = [
        // supported_groups: x25519, secp256r1
        &[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17],
        // ec_point_formats: uncompressed
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00],
        // use_srtp: SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80, no MKI
        &[
            0x00, 0x0e, 0x00, 0x07, 0x00, 0x04, 0x00, 0x07, 0x00, 0x01, 0x00,
        ],
        // extended_master_secret
        &[0x00, 0x17, 0x00, 0x00],
    ];
    let ext_len: usize = extensions.iter().map(|e| e.len()).sum();
    body.extend_from_slice(&(ext_len as u16).to_be_bytes());
    for e in extensions {
        body.extend_from_slice(e);
    }
    let len = body.len() as u32;
    let mut handshake = vec![1]; // client_hello
    handshake.extend_from_slice(&len.to_be_bytes()[1..]);
    handshake.extend_from_slice(&[0, 0]); // message_seq
    handshake.extend_from_slice(&[0, 0, 0]); // fragment_offset
    handshake.extend_from_slice(&len.to_be_bytes()[1..]); // fragment_length
    handshake.extend_from_slice(&body);
    let mut record = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// An SRTP-looking packet: version 2, payload type VP8, `seq`, `ssrc`, and `len` random bytes
/// standing for the encrypted payload and the auth tag.
fn forged_srtp(rng: &mut StdRng, seq: u16, ssrc: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x80, videoroom_webrtc::VP8_PT];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&rng.random::<u32>().to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    let mut body = vec![0u8; len];
    rng.fill(&mut body[..]);
    p.extend_from_slice(&body);
    p
}

/// Datagrams the server put on the wire (or tried to: to no client) towards `dst`.
fn sent_to(sim: &Sim, dst: SocketAddr) -> usize {
    sim.wire_count(sim.server_addr(), dst) + sim.to_nowhere.iter().filter(|w| w.dst == dst).count()
}

fn sent_to_ip(sim: &Sim, ip: std::net::IpAddr) -> usize {
    let server = sim.server_addr();
    sim.trace
        .iter()
        .filter(|(_, s, d, _, _)| *s == server && d.ip() == ip)
        .count()
        + sim.to_nowhere.iter().filter(|w| w.dst.ip() == ip).count()
}

fn server_states(sim: &Sim, i: usize) -> Vec<RTCPeerConnectionState> {
    let key = sim.clients[i].key;
    sim.events
        .iter()
        .filter(|e| e.key == key)
        .filter_map(|e| match e.event {
            CoreEvent::State(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// A publisher connected and its track forwarded to one subscriber; returns the sim, the
/// publisher, its sender, the subscriber, and the next sequence number.
fn call() -> (Sim, usize, RTCRtpSenderId, usize, u16) {
    let mut sim = Sim::new();
    let (a, sender) = sim.connect_publisher("cam", PUB_SSRC);
    let (fwd, seq) = sim.open_track(a, sender, "cam", PUB_SSRC, 0);
    let b = sim.connect_subscriber(fwd, 1, "cam", SUB_SSRC);
    (sim, a, sender, b, seq)
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

/// Runs until subscriber `b` has `n` packets of "cam" (1 s of simulated time at most).
fn wait_received(sim: &mut Sim, b: usize, n: usize) -> bool {
    sim.run_until(Duration::from_secs(1), |s| s.received_count(b, "cam") >= n)
}

#[test]
fn spoofed_client_hellos_during_the_handshake_are_dropped_and_never_answered() {
    let mut sim = Sim::new();
    let a = sim.add_client();
    sim.publish(a, "cam", videoroom_protocol::MediaKind::Video, PUB_SSRC);
    sim.client_offers(a).expect("offer/answer");
    let client = sim.clients[a].addr;
    let server = sim.server_addr();
    let spoofers = [addr("10.9.9.9:4444"), addr("10.9.9.10:4444")];
    let hello = client_hello(1);
    assert_eq!(hello[0], 22);
    assert_eq!(classify(&hello), Class::Dtls);
    let before = sim.server.dropped();

    // Right after the answer, before any ICE check.
    for s in spoofers {
        sim.inject(s, &hello);
    }
    // And once the real client's ClientHello is on the wire (ICE done, DTLS under way).
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.trace.iter().any(
            |(_, src, dst, b, _)| *src == client && *dst == server && *b == 22
        )),
        "the client never sent its ClientHello"
    );
    assert!(
        sim.clients[a].connected_at.is_none(),
        "connected before the spoof"
    );
    for (n, s) in spoofers.iter().enumerate() {
        for k in 0..5 {
            sim.inject(*s, &client_hello(100 + n as u64 * 10 + k));
        }
    }
    let injected = 2 + 2 * 5;

    assert!(
        sim.run_until_connected(a, Duration::from_secs(5)),
        "the real client did not connect: {:?}",
        sim.clients[a].state
    );
    let after = sim.server.dropped();
    assert_eq!(
        after.unknown_source - before.unknown_source,
        injected,
        "{before:?} -> {after:?}"
    );
    for s in spoofers {
        assert_eq!(sent_to(&sim, s), 0, "the server sent something to {s}");
    }
    assert!(
        sim.to_nowhere.is_empty(),
        "{} datagrams to nowhere",
        sim.to_nowhere.len()
    );
    // Only the real client's address was ever bound.
    let addrs = sim.server.peer_addresses(sim.clients[a].key);
    assert_eq!(addrs.iter().map(|a| a.1).collect::<Vec<_>>(), vec![client]);
}

#[test]
fn a_burst_of_forged_srtp_from_a_stranger_is_dropped_and_media_keeps_flowing() {
    let (mut sim, a, sender, b, mut seq) = call();
    send_frames(&mut sim, a, sender, &mut seq, 5);
    assert!(wait_received(&mut sim, b, 5), "no media before the burst");
    let got_before = sim.received_count(b, "cam");
    let out_before = sim.server.stats().rtp_out;
    let in_before = sim.server.stats().rtp_in;
    let drops_before = sim.server.dropped();

    let mut rng = StdRng::seed_from_u64(2);
    let stranger = addr("10.9.9.9:4444");
    for k in 0..1000u16 {
        let len = rng.random_range(20..1200);
        let p = forged_srtp(&mut rng, seq.wrapping_add(k), PUB_SSRC, len);
        sim.inject(stranger, &p);
    }
    sim.advance(Duration::from_millis(100));
    let stats = sim.server.stats().clone();
    assert_eq!(stats.rtp_out, out_before, "forged packets were forwarded");
    assert_eq!(stats.rtp_in, in_before, "forged packets reached a core");
    let drops = sim.server.dropped();
    assert_eq!(
        drops.unknown_source - drops_before.unknown_source,
        1000,
        "{drops:?}"
    );
    assert_eq!(sim.received_count(b, "cam"), got_before);
    assert_eq!(sent_to(&sim, stranger), 0);

    // The real stream goes on, on the very sequence numbers the forgeries used.
    send_frames(&mut sim, a, sender, &mut seq, 10);
    assert!(
        wait_received(&mut sim, b, got_before + 10),
        "media stopped after the burst: {} -> {}",
        got_before,
        sim.received_count(b, "cam")
    );
    assert_eq!(sim.server.stats().rtp_out, out_before + 10);
}

#[test]
fn forged_srtp_from_the_publishers_own_address_is_not_forwarded_and_does_not_break_it() {
    let (mut sim, a, sender, b, mut seq) = call();
    send_frames(&mut sim, a, sender, &mut seq, 5);
    assert!(
        wait_received(&mut sim, b, 5),
        "no media before the forgeries"
    );
    let got_before = sim.received_count(b, "cam");
    let out_before = sim.server.stats().rtp_out;
    let in_before = sim.server.stats().rtp_in;
    let drops_before = sim.server.dropped();
    let publisher = sim.clients[a].addr;

    // Spoofed source (possible on a LAN): the demux routes them to the publisher's core, whose
    // SRTP authentication must reject them without poisoning the replay window or the
    // rollover counter: the forgeries use the next real sequence numbers and far-ahead ones.
    let mut rng = StdRng::seed_from_u64(3);
    for k in 0..1000u16 {
        let s = if k % 2 == 0 {
            seq.wrapping_add(k % 20)
        } else {
            rng.random()
        };
        let len = rng.random_range(20..1200);
        let p = forged_srtp(&mut rng, s, PUB_SSRC, len);
        sim.inject(publisher, &p);
    }
    sim.advance(Duration::from_millis(100));
    assert_eq!(
        sim.server.stats().rtp_in,
        in_before,
        "a forged packet decrypted"
    );
    assert_eq!(
        sim.server.stats().rtp_out,
        out_before,
        "a forged packet was forwarded"
    );
    assert_eq!(sim.received_count(b, "cam"), got_before);
    // Routed (the address is authenticated), so not a demux drop.
    assert_eq!(sim.server.dropped(), drops_before);

    send_frames(&mut sim, a, sender, &mut seq, 20);
    assert!(
        wait_received(&mut sim, b, got_before + 20),
        "real packets after the forgeries were lost: {} of 20 arrived",
        sim.received_count(b, "cam") - got_before
    );
    let got: Vec<u16> = sim.clients[b].received["cam"]
        .iter()
        .map(|p| p.header.sequence_number)
        .collect();
    assert!(
        got.iter().all(|s| *s < seq),
        "the subscriber got a sequence number nobody sent: {got:?}"
    );
    assert_eq!(sim.clients[a].state, RTCPeerConnectionState::Connected);
    assert!(!server_states(&sim, a).contains(&RTCPeerConnectionState::Failed));
}

/// A STUN Binding request as an ICE agent sends it: USERNAME, ICE-CONTROLLING, PRIORITY,
/// MESSAGE-INTEGRITY with `password`, FINGERPRINT.
fn binding_request(rng: &mut StdRng, username: &str, password: &str) -> Vec<u8> {
    use rtc::stun::attributes::ATTR_USERNAME;
    use rtc::stun::fingerprint::FINGERPRINT;
    use rtc::stun::integrity::MessageIntegrity;
    use rtc::stun::message::{BINDING_REQUEST, Message, TransactionId};
    use rtc::stun::textattrs::Username;
    let provider = rtc::crypto::default_provider().expect("crypto provider");
    let mut msg = Message::new();
    msg.build(&[
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId(rng.random())),
        Box::new(Username::new(ATTR_USERNAME, username.to_owned())),
        Box::new(rtc::ice::attributes::control::AttrControlling(rng.random())),
        Box::new(rtc::ice::attributes::priority::PriorityAttr(2_130_706_431)),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            password.to_owned(),
            provider.crypto(),
        )),
        Box::new(FINGERPRINT),
    ])
    .expect("STUN message");
    msg.raw
}

#[test]
fn stun_with_unknown_or_wrong_credentials_is_never_answered_and_is_rate_limited() {
    let (mut sim, a, sender, b, mut seq) = call();
    let (server_ufrag, server_pwd) = sim.server_ice_credentials(a).expect("server credentials");
    let client_ufrag = sim.client_ice_ufrag(a).expect("client ufrag");
    let mut rng = StdRng::seed_from_u64(4);
    let before = sim.server.dropped();

    // An unknown ufrag: dropped by the demux before any HMAC.
    let prober = addr("10.9.9.9:4444");
    for _ in 0..20 {
        let m = binding_request(
            &mut rng,
            "NoSuchUfrag00000:abcd",
            "0123456789abcdef0123456789",
        );
        sim.inject(prober, &m);
    }
    let d = sim.server.dropped();
    assert_eq!(d.unknown_ufrag - before.unknown_ufrag, 20, "{d:?}");

    // The real ufrag with a wrong password, 500 at 500/s (a 2 ms step each).
    let flooder = addr("10.9.9.10:4444");
    let flood_start = sim.now;
    let username = format!("{server_ufrag}:{client_ufrag}");
    let wrong = format!("{}x", &server_pwd[..server_pwd.len() - 1]);
    assert_ne!(wrong, server_pwd);
    for k in 0..500u32 {
        let m = binding_request(&mut rng, &username, &wrong);
        sim.inject(flooder, &m);
        if k % 5 == 4 {
            sim.advance(Duration::from_millis(10));
        }
        if k % 33 == 0 {
            let ts = u32::from(seq).wrapping_mul(3000);
            sim.send_rtp(a, sender, vp8_packet(seq, ts, PUB_SSRC, false, 0xAB, 500));
            seq = seq.wrapping_add(1);
        }
    }
    let after = sim.server.dropped();
    let limited = after.stun_rate_limited - before.stun_rate_limited;
    println!(
        "wrong-password flood of 500 in {:?}: {limited} rate limited, drops {after:?}",
        sim.now - flood_start
    );
    assert!(limited > 0, "no STUN was rate limited: {after:?}");
    // Burst 50 + 50/s over the flood's ~1 s: at most ~100 reached the core.
    assert!(limited >= 350, "only {limited} of 500 rate limited");

    // Nothing answered, nothing bound.
    for s in [prober, flooder] {
        assert_eq!(sent_to(&sim, s), 0, "the server answered {s}");
    }
    let addrs = sim.server.peer_addresses(sim.clients[a].key);
    assert_eq!(
        addrs.iter().map(|a| a.1).collect::<Vec<_>>(),
        vec![sim.clients[a].addr]
    );

    // The connection survives (the real client's consent checks go on for 10 s) and media
    // still flows to the subscriber.
    let got = sim.received_count(b, "cam");
    send_frames(&mut sim, a, sender, &mut seq, 10);
    sim.advance(Duration::from_secs(10));
    assert!(sim.received_count(b, "cam") >= got + 10);
    assert_eq!(sim.clients[a].state, RTCPeerConnectionState::Connected);
    let states = server_states(&sim, a);
    assert_eq!(
        states.last(),
        Some(&RTCPeerConnectionState::Connected),
        "server states {states:?}"
    );
}

#[test]
fn a_seeded_random_datagram_fuzz_is_dropped_counted_and_harmless() {
    let (mut sim, a, sender, b, mut seq) = call();
    send_frames(&mut sim, a, sender, &mut seq, 3);
    assert!(wait_received(&mut sim, b, 3));
    let got_before = sim.received_count(b, "cam");
    let before = sim.server.dropped();
    let clients: Vec<SocketAddr> = sim.clients.iter().map(|c| c.addr).collect();

    let mut rng = StdRng::seed_from_u64(5);
    let mut expect = DropCounts::default();
    let mut buf = vec![0u8; 2000];
    let total = 100_000u32;
    let mut real = 0u16;
    let started = std::time::Instant::now();
    for k in 0..total {
        let len = rng.random_range(0..2000usize);
        rng.fill(&mut buf[..len]);
        let src = SocketAddr::from((
            [10, rng.random_range(2..255), rng.random(), rng.random()],
            rng.random_range(1..65535),
        ));
        assert!(!clients.contains(&src));
        let d = &buf[..len];
        if len == 0 {
            expect.malformed += 1;
        } else if len > MAX_DATAGRAM {
            expect.oversized += 1;
        } else {
            match classify(d) {
                Class::Dtls | Class::Rtp => expect.unknown_source += 1,
                // Random bytes: no magic cookie, so not parseable STUN.
                Class::Stun | Class::Other => expect.malformed += 1,
            }
        }
        sim.inject(src, d);
        // 1000 datagrams per 10 ms of simulated time, with a real frame every 33 ms.
        if k % 1000 == 999 {
            sim.advance(Duration::from_millis(10));
            if k % 3000 == 2999 {
                let ts = u32::from(seq).wrapping_mul(3000);
                sim.send_rtp(a, sender, vp8_packet(seq, ts, PUB_SSRC, false, 0xAB, 500));
                seq = seq.wrapping_add(1);
                real += 1;
            }
        }
    }
    let cpu = started.elapsed();
    assert!(
        wait_received(&mut sim, b, got_before + usize::from(real)),
        "the subscriber stopped receiving: {} of {real} during the fuzz",
        sim.received_count(b, "cam") - got_before
    );
    let after = sim.server.dropped();
    let delta = DropCounts {
        malformed: after.malformed - before.malformed,
        unknown_ufrag: after.unknown_ufrag - before.unknown_ufrag,
        unknown_source: after.unknown_source - before.unknown_source,
        stun_rate_limited: after.stun_rate_limited - before.stun_rate_limited,
        oversized: after.oversized - before.oversized,
    };
    println!(
        "fuzz: {total} datagrams in {cpu:?} of CPU, {real} real frames delivered meanwhile, drops {delta:?}"
    );
    assert_eq!(
        delta.total(),
        u64::from(total),
        "not every datagram was counted"
    );
    assert_eq!(delta, expect);
    assert!(
        sim.to_nowhere.is_empty(),
        "{} datagrams to nowhere",
        sim.to_nowhere.len()
    );
    assert_eq!(sim.clients[a].state, RTCPeerConnectionState::Connected);
    assert_eq!(sim.clients[b].state, RTCPeerConnectionState::Connected);
}

/// Random bytes with a STUN, DTLS or RTP first byte, half of them behind a well-formed header
/// (a STUN header with the magic cookie and the right length, a DTLS record header of epoch 0
/// or 1 with the right length, an RTP or RTCP header on the peers' SSRCs), from the peers' own
/// (authenticated) addresses: they reach the `rtc` cores' parsers, which must neither panic nor
/// drop the call.
#[test]
fn random_datagrams_from_authenticated_addresses_do_not_break_the_call() {
    let (mut sim, a, sender, b, mut seq) = call();
    send_frames(&mut sim, a, sender, &mut seq, 3);
    assert!(wait_received(&mut sim, b, 3));
    let sources = [sim.clients[a].addr, sim.clients[b].addr];
    let before = sim.server.dropped();
    let mut rng = StdRng::seed_from_u64(6);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let total = 20_000u32;
    let mut stun_class = 0;
    let started = std::time::Instant::now();
    for k in 0..total {
        let len = rng.random_range(1..=MAX_DATAGRAM);
        rng.fill(&mut buf[..len]);
        let structured = rng.random_bool(0.5);
        match rng.random_range(0..3) {
            0 => {
                stun_class += 1;
                buf[0] = rng.random_range(0..=3);
                if structured && len >= 20 {
                    let body = (len - 20) & !3;
                    buf[2..4].copy_from_slice(&(body as u16).to_be_bytes());
                    buf[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
                    sim.inject(sources[(k % 2) as usize], &buf[..20 + body]);
                    continue;
                }
            }
            1 => {
                buf[0] = rng.random_range(20..=63);
                if structured && len >= 13 {
                    buf[0] = rng.random_range(20..=23);
                    buf[1..3].copy_from_slice(&[0xfe, 0xfd]);
                    buf[3..5].copy_from_slice(&u16::from(rng.random_bool(0.5)).to_be_bytes());
                    buf[11..13].copy_from_slice(&((len - 13) as u16).to_be_bytes());
                }
            }
            _ => {
                buf[0] = rng.random_range(128..=191);
                if structured && len >= 12 {
                    buf[0] = 0x80 | (buf[0] & 0x1f);
                    buf[1] = if rng.random_bool(0.5) {
                        videoroom_webrtc::VP8_PT
                    } else {
                        rng.random_range(200..=206)
                    };
                    let ssrc = [PUB_SSRC, SUB_SSRC][rng.random_range(0..2)];
                    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
                }
            }
        }
        sim.inject(sources[(k % 2) as usize], &buf[..len]);
        if k % 1000 == 999 {
            sim.advance(Duration::from_millis(10));
        }
    }
    let cpu = started.elapsed();
    let after = sim.server.dropped();
    println!(
        "{total} random datagrams from authenticated sources in {cpu:?} of CPU; demux drops {:?} -> {after:?}",
        before
    );
    // DTLS and RTP-class datagrams from a bound address all reached an rtc core; of the
    // STUN-class ones only those the demux could not parse were dropped.
    assert_eq!(after.unknown_source, before.unknown_source);
    assert!(after.malformed - before.malformed <= stun_class);
    let got = sim.received_count(b, "cam");
    send_frames(&mut sim, a, sender, &mut seq, 10);
    assert!(
        wait_received(&mut sim, b, got + 10),
        "media stopped: {} of 10 arrived",
        sim.received_count(b, "cam") - got
    );
    for i in [a, b] {
        assert_eq!(sim.clients[i].state, RTCPeerConnectionState::Connected);
        let states = server_states(&sim, i);
        assert_eq!(
            states.last(),
            Some(&RTCPeerConnectionState::Connected),
            "{states:?}"
        );
    }
}

#[test]
fn ice_lite_never_contacts_signalled_remote_candidates() {
    let mut sim = Sim::new();
    let a = sim.add_client();
    let sender = sim.publish(a, "cam", videoroom_protocol::MediaKind::Video, PUB_SSRC);
    sim.client_offers(a).expect("offer/answer");
    let key = sim.clients[a].key;
    // 50 during the handshake and 50 once connected, as a client (or a hostile one) might
    // trickle them: odd addresses, odd ports, UDP and TCP.
    let mut rng = StdRng::seed_from_u64(7);
    let mut odd = Vec::new();
    let mut accepted = 0;
    let mut signal = |sim: &mut Sim, rng: &mut StdRng, odd: &mut Vec<SocketAddr>| {
        for n in 0..50u32 {
            let ip = [10, 66, rng.random(), rng.random_range(1..255)];
            let port: u16 = rng.random_range(1..65535);
            let target = SocketAddr::from((ip, port));
            odd.push(target);
            let (proto, tail) = if n % 5 == 0 {
                ("tcp", " tcptype passive")
            } else {
                ("udp", "")
            };
            let init = RTCIceCandidateInit {
                candidate: format!(
                    "candidate:{n} 1 {proto} {} {}.{}.{}.{} {port} typ host{tail}",
                    2_130_706_431 - n,
                    ip[0],
                    ip[1],
                    ip[2],
                    ip[3]
                ),
                sdp_mline_index: Some(0),
                ..Default::default()
            };
            let now = sim.now;
            if let Ok(Ok(())) = sim
                .server
                .with_peer(now, key, |pc| pc.add_remote_candidate(init))
            {
                accepted += 1;
            }
        }
    };
    signal(&mut sim, &mut rng, &mut odd);
    assert!(
        sim.run_until_connected(a, Duration::from_secs(5)),
        "no connection"
    );
    signal(&mut sim, &mut rng, &mut odd);
    let (_fwd, mut seq) = sim.open_track(a, sender, "cam", PUB_SSRC, 0);
    send_frames(&mut sim, a, sender, &mut seq, 10);
    sim.advance(Duration::from_secs(10));
    println!("{accepted} of 100 signalled candidates accepted by the server's rtc core");
    for t in &odd {
        assert_eq!(sent_to_ip(&sim, t.ip()), 0, "the server sent to {t}");
    }
    assert!(
        sim.to_nowhere.is_empty(),
        "{} datagrams to nowhere",
        sim.to_nowhere.len()
    );
    assert_eq!(sim.clients[a].state, RTCPeerConnectionState::Connected);
}

/// The demux's STUN budget is per peer, so a sustained wrong-password flood with the peer's
/// real ufrag (visible in clear in every check on the path) also eats the real client's
/// consent checks; rtc's agent counts only STUN as consent, so the peer must still not fail.
#[test]
fn a_sustained_wrong_password_flood_does_not_starve_the_clients_consent_checks() {
    let (mut sim, a, sender, b, mut seq) = call();
    let (server_ufrag, server_pwd) = sim.server_ice_credentials(a).expect("server credentials");
    let client_ufrag = sim.client_ice_ufrag(a).expect("client ufrag");
    let mut rng = StdRng::seed_from_u64(8);
    let wrong = format!("{}x", &server_pwd[..server_pwd.len() - 1]);
    let flood = binding_request(&mut rng, &format!("{server_ufrag}:{client_ufrag}"), &wrong);
    let flooder = addr("10.9.9.10:4444");
    let before = sim.server.dropped();
    let start = sim.now;
    // 1000/s for 40 s, with media at 30 frames/s meanwhile.
    for ms in 0..40_000u32 {
        sim.inject(flooder, &flood);
        if ms % 33 == 0 {
            let ts = u32::from(seq).wrapping_mul(3000);
            sim.send_rtp(a, sender, vp8_packet(seq, ts, PUB_SSRC, false, 0xAB, 200));
            seq = seq.wrapping_add(1);
        }
        sim.advance(Duration::from_millis(1));
    }
    let limited = sim.server.dropped().stun_rate_limited - before.stun_rate_limited;
    let key = sim.clients[a].key;
    let states: Vec<String> = sim
        .events
        .iter()
        .filter(|e| e.key == key && e.at >= start)
        .filter_map(|e| match e.event {
            CoreEvent::State(s) => Some(format!("{s:?} after {:?}", e.at - start)),
            _ => None,
        })
        .collect();
    println!("sustained flood: 40000 in 40 s, {limited} rate limited; server states {states:?}");
    assert_eq!(sent_to(&sim, flooder), 0);
    assert!(
        states.is_empty(),
        "the flood changed the peer's state: {states:?}"
    );
    let got = sim.received_count(b, "cam");
    send_frames(&mut sim, a, sender, &mut seq, 5);
    assert!(wait_received(&mut sim, b, got + 5), "media stopped");
}
