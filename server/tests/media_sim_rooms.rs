//! Many peers on one media core, through the simulated network and clock (`engine::sim`): 30
//! peers in 3 "rooms" of 10 (a room is only which forwarders a peer is subscribed to). Every
//! peer publishes one video track and receives the other 9 of its room on 9 senders of one
//! server offer; nothing crosses rooms. No sockets, no sleeping: every bound is simulated time.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use videoroom_protocol::MediaKind;
use videoroom_server::engine::View;
use videoroom_server::engine::sim::{Sim, vp8_packet};

const PEERS: usize = 30;
const ROOM_SIZE: usize = 10;
const FRAMES: u16 = 10;

fn room(i: usize) -> usize {
    i / ROOM_SIZE
}

fn track(i: usize) -> String {
    format!("cam{i}")
}

fn pub_ssrc(i: usize) -> u32 {
    0x1000 + i as u32
}

/// The SSRC of `publisher`'s track on `subscriber`'s connection.
fn leg_ssrc(subscriber: usize, publisher: usize) -> u32 {
    0x10_0000 + (subscriber as u32) * 0x100 + publisher as u32
}

#[test]
fn thirty_peers_in_three_rooms_receive_exactly_their_rooms_tracks() {
    let started = Instant::now();
    let mut sim = Sim::new();
    let sim_start = sim.now;

    // Everyone joins and publishes (the client-offers path).
    let mut senders = Vec::new();
    for i in 0..PEERS {
        let c = sim.add_client();
        assert_eq!(c, i);
        senders.push(sim.publish(i, &track(i), MediaKind::Video, pub_ssrc(i)));
        sim.client_offers(i).expect("offer/answer");
    }
    let all_connected = sim.run_until(Duration::from_secs(5), |s| {
        (0..PEERS)
            .all(|i| s.clients[i].connected_at.is_some() && s.server_connected(s.clients[i].key))
    });
    assert!(
        all_connected,
        "not every peer connected: {:?}",
        sim.clients.iter().map(|c| c.state).collect::<Vec<_>>()
    );
    let connected = started.elapsed();

    // Every track opens a forwarder.
    let mut fwds = Vec::new();
    let mut seqs = [0u16; PEERS];
    for i in 0..PEERS {
        let (fwd, next) = sim.open_track(i, senders[i], &track(i), pub_ssrc(i), 0);
        fwds.push(fwd);
        seqs[i] = next;
    }
    assert_eq!(sim.server.track_count(), PEERS);
    assert_eq!(sim.server.peer_count(), PEERS);

    // Each peer gets one server offer with 9 senders: the rest of its room.
    let negotiate = Instant::now();
    for i in 0..PEERS {
        let key = sim.clients[i].key;
        let mut added = Vec::new();
        for j in (0..PEERS).filter(|&j| j != i && room(j) == room(i)) {
            let now = sim.now;
            let sender = sim
                .server
                .add_sender(
                    now,
                    key,
                    &format!("client{j}"),
                    &track(j),
                    MediaKind::Video,
                    leg_ssrc(i, j),
                )
                .expect("add_sender");
            added.push((j, sender));
        }
        assert_eq!(added.len(), ROOM_SIZE - 1);
        sim.server_offers(i).expect("server offer with 9 senders");
        let now = sim.now;
        for (j, sender) in added {
            let pt = sim
                .server
                .sender_payload_type(key, sender)
                .expect("negotiated payload type");
            assert_eq!(pt, videoroom_webrtc::VP8_PT);
            let leg = (i * PEERS + j) as u64;
            sim.server.subscribe(
                now,
                fwds[j],
                leg,
                key,
                sender,
                leg_ssrc(i, j),
                pt,
                View::Default,
            );
        }
        sim.pump();
    }
    sim.advance(Duration::from_millis(50));
    let negotiated = negotiate.elapsed();

    // Every peer sends FRAMES frames whose payload bytes are its own index.
    let forward = Instant::now();
    let rtp_out_before = sim.server.stats().rtp_out;
    for f in 0..FRAMES {
        for i in 0..PEERS {
            let seq = seqs[i];
            let ts = u32::from(f + 1) * 3000;
            sim.send_rtp(
                i,
                senders[i],
                vp8_packet(seq, ts, pub_ssrc(i), false, i as u8, 800),
            );
            seqs[i] = seq.wrapping_add(1);
        }
        sim.advance(Duration::from_millis(33));
    }
    let expected_per_track = usize::from(FRAMES);
    let delivered = sim.run_until(Duration::from_secs(1), |s| {
        (0..PEERS).all(|i| {
            (0..PEERS)
                .filter(|&j| j != i && room(j) == room(i))
                .all(|j| s.received_count(i, &track(j)) >= expected_per_track)
        })
    });
    let forwarding = forward.elapsed();
    let total = started.elapsed();
    println!(
        "30 peers / 3 rooms: connect {connected:?}, 30 server offers with 9 senders + 270 subscribes {negotiated:?}, \
         {FRAMES} frames x 30 publishers -> {} RTP out in {forwarding:?}, whole test {total:?} of CPU ({:?} simulated)",
        sim.server.stats().rtp_out - rtp_out_before,
        sim.now - sim_start,
    );

    for i in 0..PEERS {
        let expected: BTreeSet<String> = (0..PEERS)
            .filter(|&j| j != i && room(j) == room(i))
            .map(track)
            .collect();
        let got: BTreeSet<String> = sim.clients[i].received.keys().cloned().collect();
        assert_eq!(
            got,
            expected,
            "peer {i} (room {}) received the wrong tracks",
            room(i)
        );
        for j in expected
            .iter()
            .map(|t| t[3..].parse::<usize>().expect("index"))
        {
            let packets = &sim.clients[i].received[&track(j)];
            assert!(
                packets.len() >= expected_per_track,
                "peer {i} got {} packets from peer {j}",
                packets.len()
            );
            for p in packets {
                assert_eq!(
                    p.header.ssrc,
                    leg_ssrc(i, j),
                    "peer {i} from {j}: wrong SSRC"
                );
                assert!(
                    p.payload[2..].iter().all(|&b| usize::from(b) == j),
                    "peer {i} got bytes of another publisher on peer {j}'s track"
                );
            }
        }
    }
    assert!(delivered, "not every peer got every track of its room");
    // 30 publishers x 9 subscribers x FRAMES, nothing more.
    assert_eq!(
        sim.server.stats().rtp_out - rtp_out_before,
        (PEERS * (ROOM_SIZE - 1) * expected_per_track) as u64
    );
}
