//! Many peers, one port (issue 10): 30 real WebRTC peers in 3 rooms of 10 share the server's
//! single UDP port. Every peer receives every other peer of its room, byte for byte, and nothing
//! from the other rooms.
//!
//! Audio only (known 160-byte payloads, 50 packets/s, seeded by the track id so a packet that
//! reached the wrong track would fail the byte check): 270 subscriptions on 2 cores.

#[path = "common/media_port.rs"]
mod media_port;

use media_port::ms;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use videoroom_protocol::ServerMessage;
use videoroom_testkit::*;

const ROOMS: usize = 3;
const PER_ROOM: usize = 10;
/// Packets each subscription must deliver before it counts as flowing.
const FLOWING: usize = 25;

/// The ports of the UDP candidates in `sdp` (`a=candidate:` lines).
fn udp_candidate_ports(sdp: &str) -> Vec<u16> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .filter_map(candidate_udp_port)
        .collect()
}

/// The port of an ICE candidate attribute (`candidate:f 1 udp prio ip port typ …`) if it is UDP.
fn candidate_udp_port(candidate: &str) -> Option<u16> {
    let fields: Vec<&str> = candidate
        .strip_prefix("candidate:")?
        .split_whitespace()
        .collect();
    if !fields.get(2)?.eq_ignore_ascii_case("udp") {
        return None;
    }
    fields.get(5)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_peers_in_three_rooms_share_one_udp_port_and_stay_in_their_rooms() {
    thirty_peers_in_three_rooms(1).await;
}

/// The same with two media workers: the rooms are spread over both, every datagram the kernel
/// hands to the wrong worker is passed on, and still nothing crosses rooms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_media_workers_thirty_peers_in_three_rooms_stay_in_their_rooms() {
    thirty_peers_in_three_rooms(2).await;
}

async fn thirty_peers_in_three_rooms(media_workers: usize) {
    let mut config = test_config();
    config.media_workers = media_workers;
    let server = start_server(config).await;
    assert_eq!(server.media_workers(), media_workers);
    let url = ws_url(&server);
    let udp_port = server.udp_addr().port();
    let options = PeerOptions {
        audio: Some(Source::Known),
        video: None,
        ..PeerOptions::default()
    };

    let start = Instant::now();
    let mut rooms: Vec<Vec<TestPeer>> = (0..ROOMS).map(|_| Vec::new()).collect();
    // Interleaved joins: r0p0, r1p0, r2p0, r0p1, …
    for p in 0..PER_ROOM {
        for (r, room) in rooms.iter_mut().enumerate() {
            let name = format!("r{r}p{p}");
            room.push(TestPeer::join(&url, &format!("room{r}"), &name, options.clone()).await);
        }
    }
    let joined = start.elapsed();

    let deadline = Duration::from_secs(120);
    let mut last_report = Instant::now();
    loop {
        let mut missing = Vec::new();
        for room in &rooms {
            for receiver in room {
                for publisher in room {
                    if receiver.peer_id == publisher.peer_id {
                        continue;
                    }
                    let track = format!("{}-mic", publisher.name);
                    if receiver.received_count(&track) < FLOWING {
                        missing.push(format!("{}<-{track}", receiver.name));
                    }
                }
            }
        }
        if missing.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < deadline,
            "after {deadline:?}, {} of 270 subscriptions do not flow: {missing:?}",
            missing.len()
        );
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            println!(
                "{:?}: {} of 270 subscriptions still waiting",
                start.elapsed(),
                missing.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_flowing = start.elapsed();
    let loads = server.media_worker_loads();
    println!("peers per media worker: {loads:?}");
    assert_eq!(loads.iter().sum::<usize>(), 30, "{loads:?}");
    assert!(
        loads.iter().all(|&n| n >= 10),
        "every worker hosts at least one room of 10: {loads:?}"
    );
    println!(
        "30 peers joined in {}; all 270 subscriptions flowing ({FLOWING}+ packets each) {} \
         after the first join ({} after the last)",
        ms(joined),
        ms(all_flowing),
        ms(all_flowing - joined)
    );

    for (r, room) in rooms.iter().enumerate() {
        let ids: BTreeSet<String> = room.iter().map(|p| p.peer_id.as_str().to_owned()).collect();
        for receiver in room {
            let expected: BTreeSet<String> = room
                .iter()
                .filter(|p| p.peer_id != receiver.peer_id)
                .map(|p| format!("{}-mic", p.name))
                .collect();
            let (got, foreign_streams, ports) = {
                let s = receiver.state();
                let got: BTreeSet<String> = s.received.keys().cloned().collect();
                let foreign: Vec<String> = s
                    .received
                    .values()
                    .filter(|r| !ids.contains(&r.stream_id))
                    .map(|r| r.stream_id.clone())
                    .collect();
                // Every UDP candidate the server gave this peer, in SDP or trickled.
                let mut ports = Vec::new();
                for m in &s.messages {
                    match m {
                        ServerMessage::SdpOffer { sdp } | ServerMessage::SdpAnswer { sdp } => {
                            ports.extend(udp_candidate_ports(sdp));
                        }
                        ServerMessage::IceCandidate { candidate } => {
                            ports.extend(candidate_udp_port(&candidate.candidate));
                        }
                        _ => {}
                    }
                }
                (got, foreign, ports)
            };
            assert_eq!(
                got, expected,
                "room{r}: {} receives exactly the other 9 peers of its room",
                receiver.name
            );
            assert!(
                foreign_streams.is_empty(),
                "room{r}: {} got streams of other rooms' peers: {foreign_streams:?}",
                receiver.name
            );
            assert!(
                !ports.is_empty() && ports.iter().all(|p| *p == udp_port),
                "room{r}: {}'s UDP candidates are all on the one port {udp_port}: {ports:?}",
                receiver.name
            );
            for publisher in room {
                if publisher.peer_id == receiver.peer_id {
                    continue;
                }
                let track = format!("{}-mic", publisher.name);
                let n = receiver.check_received(&track, publisher.peer_id.as_str());
                assert!(n >= FLOWING, "{}: {n} packets of {track}", receiver.name);
            }
        }
    }
    // Nothing leaves for a peer of another room, negotiated or not: over 2 s, each packet in
    // goes out exactly to the 9 other peers of its room (a leg into another room would make
    // it more).
    let m = server.metrics();
    let (in0, out0) = (m.rtp_packets_in.get(), m.rtp_packets_out.get());
    let window = Instant::now();
    wait_until(Duration::from_secs(10), "2 s of forwarding", || {
        window.elapsed() >= Duration::from_secs(2)
    })
    .await;
    let (in1, out1) = (m.rtp_packets_in.get(), m.rtp_packets_out.get());
    let fan_out = (out1 - out0) as f64 / (in1 - in0).max(1) as f64;
    println!(
        "over 2 s: {} RTP packets in, {} out: {fan_out:.3} out per packet in (9 expected)",
        in1 - in0,
        out1 - out0
    );
    assert!(in1 - in0 >= 30 * 50, "30 tracks at 50 packets/s for 2 s");
    assert!(
        (8.7..=9.1).contains(&fan_out),
        "each packet goes to the 9 other peers of its room, not {fan_out:.3}"
    );
    let metrics = server.metrics().render();
    assert!(metrics.contains("videoroom_peers 30"), "{metrics}");
    assert!(metrics.contains("videoroom_rooms 3"), "{metrics}");
    assert!(metrics.contains("videoroom_tracks 30"), "{metrics}");
}
