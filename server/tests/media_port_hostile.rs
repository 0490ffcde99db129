//! Hostile traffic at the one media UDP port while real WebRTC calls run through it (issue 10):
//! spoofed DTLS ClientHellos and forged SRTP during a handshake, 100 000 random datagrams during
//! a call, and a wrong-credential STUN flood that names a real peer's ufrag. The calls connect
//! and keep flowing, the junk is dropped before DTLS/SRTP and counted in `/metrics`, nothing is
//! sent back to the attacker, memory stays flat and the log stays short.
//!
//! The tests run one at a time (they measure gaps and memory on a 2-core machine).

#[path = "common/media_port.rs"]
mod media_port;

use media_port::*;
use std::time::{Duration, Instant};
use videoroom_protocol::ServerMessage;
use videoroom_server::engine::demux::DropReason;
use videoroom_testkit::*;

/// One test of this file at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Random datagrams fired at the media port by the flood test.
const FLOOD: usize = 100_000;
/// Log lines the server may write while a flood is handled.
const MAX_FLOOD_LOG_LINES: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_client_hellos_and_forged_srtp_during_the_handshake_are_dropped_and_counted() {
    let _serial = SERIAL.lock().await;
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let metrics = server.metrics();
    let alice = TestPeer::join(&url, "spoof", "alice", PeerOptions::default()).await;
    wait_until(WAIT, "alice's media connection is up", || {
        alice.state().connected
    })
    .await;
    let unknown_before = metrics.media_drops(DropReason::UnknownSource);

    // The spoofer fires from before bob joins until bob receives media: through bob's whole
    // ICE + DTLS handshake.
    let spoofer = Spoofer::start(server.udp_addr(), 0x5900F, Duration::from_secs(60));
    let spoof_start = Instant::now();
    let bob = TestPeer::join(&url, "spoof", "bob", PeerOptions::receive_only()).await;
    wait_until(WAIT, "bob receives alice's audio and video", || {
        bob.received_count("alice-cam") >= 50 && bob.received_count("alice-mic") >= 20
    })
    .await;
    let (report, socket) = spoofer.stop();
    let spoof_for = spoof_start.elapsed();
    let (answered, connected) = {
        let s = bob.state();
        (s.first_answer_sent_at, s.connected_at)
    };
    let connected = connected.expect("bob's media connection reached connected");
    let answered = answered.expect("bob answered the server's offer");
    println!(
        "spoofer fired {} ClientHellos and {} forged SRTP in {spoof_for:?} from {}; bob answered \
         {:?} and connected {:?} after the spoofer started; before bob connected: {} \
         ClientHellos and {} SRTP",
        report.client_hellos,
        report.srtp,
        spoofer_addr(&socket),
        answered - spoof_start,
        connected - spoof_start,
        report.client_hellos_before(connected),
        report.srtp_before(connected),
    );
    // Spoofed datagrams were in flight through bob's whole handshake: fired before his answer
    // (so before ICE and DTLS) and until he received media.
    assert!(
        report.client_hellos_before(answered) >= 1 && report.srtp_before(answered) >= 10,
        "the spoofer fired before bob's handshake began: {} ClientHellos, {} SRTP",
        report.client_hellos_before(answered),
        report.srtp_before(answered)
    );
    assert!(
        report.client_hellos_before(connected) < report.sent_at.len(),
        "the spoofer kept firing after bob connected"
    );

    // The real call is intact: byte for byte, in order.
    assert!(bob.check_received("alice-cam", alice.peer_id.as_str()) >= 50);
    assert!(bob.check_received("alice-mic", alice.peer_id.as_str()) >= 20);

    // Nothing went back to the spoofer, during or after.
    assert_eq!(
        report.replies, 0,
        "the server answered the spoofing socket while it fired"
    );
    assert!(
        !got_datagram_within(&socket, Duration::from_millis(500)),
        "the server sent a datagram to the spoofing socket"
    );

    // Every forged datagram was dropped as coming from an unauthenticated source.
    let fired = report.fired();
    wait_until(
        Duration::from_secs(5),
        &format!("{fired} unknown_source drops are counted"),
        || metrics.media_drops(DropReason::UnknownSource) - unknown_before >= fired,
    )
    .await;
    let text = metrics.render();
    println!("after the spoof: {}", format_drops(&drop_counts(&text)));
    assert!(
        text.lines()
            .any(|l| l
                .starts_with("videoroom_media_dropped_datagrams_total{reason=\"unknown_source\"}")),
        "{text}"
    );
}

fn spoofer_addr(socket: &std::net::UdpSocket) -> String {
    socket
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// The arrival instants of `track_id` at `peer`.
fn arrivals(peer: &TestPeer, track_id: &str) -> Vec<Instant> {
    peer.state()
        .received
        .get(track_id)
        .map(|r| r.arrivals.iter().map(|(_, t)| *t).collect())
        .unwrap_or_default()
}

/// A two-peer call (both publish known audio and video, arrival times recorded) on `server`,
/// flowing both ways.
async fn two_peer_call(server: &ChildServer, room: &str) -> (TestPeer, TestPeer) {
    let options = PeerOptions {
        keep_payloads: false,
        record_times: true,
        ..PeerOptions::default()
    };
    let url = server.ws_url();
    let alice = TestPeer::join(&url, room, "alice", options.clone()).await;
    let bob = TestPeer::join(&url, room, "bob", options).await;
    wait_until(WAIT, "alice and bob receive each other's video", || {
        alice.received_count("bob-cam") >= 90 && bob.received_count("alice-cam") >= 90
    })
    .await;
    (alice, bob)
}

/// Waits until both directions of the call got `video_packets` more video packets and at least
/// `at_least` has passed since `since`.
async fn call_goes_on(
    alice: &TestPeer,
    bob: &TestPeer,
    video_packets: usize,
    since: Instant,
    at_least: Duration,
) {
    let (a0, b0) = (
        alice.received_count("bob-cam"),
        bob.received_count("alice-cam"),
    );
    wait_until(
        Duration::from_secs(10),
        &format!("the call goes on ({video_packets} more video packets each way)"),
        || {
            alice.received_count("bob-cam") >= a0 + video_packets
                && bob.received_count("alice-cam") >= b0 + video_packets
                && since.elapsed() >= at_least
        },
    )
    .await;
}

/// The largest gap in either direction of the call within `[from, to]`.
fn call_gap(alice: &TestPeer, bob: &TestPeer, from: Instant, to: Instant) -> Duration {
    ["bob-cam", "bob-mic"]
        .iter()
        .map(|t| largest_gap(&arrivals(alice, t), from, to))
        .chain(
            ["alice-cam", "alice-mic"]
                .iter()
                .map(|t| largest_gap(&arrivals(bob, t), from, to)),
        )
        .max()
        .unwrap_or_default()
}

/// Checks the lines a flood made the server log: few, short, no byte dumps.
fn assert_log_bounded(lines: &[String], what: &str) {
    for l in lines {
        assert!(
            l.len() <= 2000,
            "{what}: a log line of {} chars: {}…",
            l.len(),
            l.chars().take(200).collect::<String>()
        );
        assert!(
            !l.to_ascii_lowercase().contains("payload:"),
            "{what}: a log line with a payload: {l}"
        );
        assert!(!looks_like_a_dump(l), "{what}: a log line dumps bytes: {l}");
    }
    assert!(
        lines.len() < MAX_FLOOD_LOG_LINES,
        "{what}: {} log lines (at most {MAX_FLOOD_LOG_LINES} allowed):\n{}",
        lines.len(),
        lines.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_random_datagrams_do_not_disturb_a_call() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let mut server = ChildServer::spawn(Some("info"));
    let (alice, bob) = two_peer_call(&server, "flood").await;
    // One more second of call, measured as the baseline gap.
    let baseline_from = Instant::now();
    call_goes_on(&alice, &bob, 90, baseline_from, Duration::from_secs(1)).await;
    let baseline_gap = call_gap(&alice, &bob, baseline_from, Instant::now());

    let rss_before = server.rss_kib();
    let drops_before = drop_counts(&http_get(server.http, "/metrics").await.1);
    let rcvbuf_before = udp_rcvbuf_errors();
    let log_before = server.log_len();

    let udp = server.udp;
    let flood_start = Instant::now();
    let flood = tokio::task::spawn_blocking(move || random_flood(udp, FLOOD, 4, 0xF100D))
        .await
        .expect("flood");
    let flood_end = Instant::now();

    let (status, body) = http_get(server.http, "/healthz").await;
    assert_eq!(status, 200, "/healthz after the flood: {body}");
    assert!(server.running(), "the server process is still running");
    // The call goes on, and the gap window reaches one second past the flood.
    call_goes_on(&alice, &bob, 90, flood_end, Duration::from_secs(1)).await;
    let gap = call_gap(
        &alice,
        &bob,
        flood_start,
        flood_end + Duration::from_secs(1),
    );

    // Every datagram is counted by the server, or was dropped by the kernel for a full
    // receive buffer (machine-wide counter: an upper bound of what this flood lost there).
    let counted = |after: &[u64; 5]| -> u64 {
        after
            .iter()
            .zip(&drops_before)
            .map(|(a, b)| a - b)
            .sum::<u64>()
    };
    let settle = Instant::now();
    let (drops_after, rcvbuf_lost) = loop {
        let drops = drop_counts(&http_get(server.http, "/metrics").await.1);
        let lost = udp_rcvbuf_errors() - rcvbuf_before;
        if counted(&drops) + lost >= flood.sent || settle.elapsed() > Duration::from_secs(10) {
            break (drops, lost);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rss_after = server.rss_kib();
    let log = server.log_since(log_before);
    let delta: [u64; 5] = std::array::from_fn(|i| drops_after[i] - drops_before[i]);

    println!(
        "flood: {} datagrams ({} send errors) from 4 sockets in {:?} ({:.0}/s)",
        flood.sent,
        flood.send_errors,
        flood.elapsed,
        flood.sent as f64 / flood.elapsed.as_secs_f64()
    );
    println!(
        "drops counted by the server: {} (total {}); kernel receive-buffer drops machine-wide: \
         {rcvbuf_lost}",
        format_drops(&delta),
        counted(&drops_after)
    );
    println!(
        "largest call gap: {} during flood+1 s, {} in the second before (baseline)",
        ms(gap),
        ms(baseline_gap)
    );
    println!(
        "server RSS: {} KiB before, {} KiB after ({:+} KiB), peak {} KiB",
        rss_before,
        rss_after,
        rss_after as i64 - rss_before as i64,
        server.peak_rss_kib()
    );
    println!("server log lines during the flood: {}", log.len());
    for l in &log {
        println!("  | {l}");
    }

    assert_eq!(flood.replies, 0, "the server answered the flood");
    assert!(
        counted(&drops_after) + rcvbuf_lost >= flood.sent,
        "{} datagrams sent, {} counted by the server, at most {rcvbuf_lost} lost in the kernel",
        flood.sent,
        counted(&drops_after)
    );
    for (i, reason) in DROP_REASONS.iter().enumerate() {
        if ["malformed", "oversized", "unknown_source"].contains(reason) {
            assert!(delta[i] > 0, "no {reason} drops counted for random bytes");
        }
    }
    assert!(
        gap < Duration::from_secs(2),
        "the call stalled for {} during the flood",
        ms(gap)
    );
    assert!(
        rss_after <= rss_before + 20 * 1024,
        "server RSS grew by {} KiB over the flood",
        rss_after as i64 - rss_before as i64
    );
    assert_log_bounded(&log, "random flood");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_stun_flood_naming_a_real_ufrag_is_not_answered_and_not_logged() {
    stun_flood_naming_a_real_ufrag(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_stun_flood_is_not_logged_with_rust_log_info() {
    stun_flood_naming_a_real_ufrag(Some("info")).await;
}

/// A two-peer call on the binary run with `rust_log`; 5000 Binding requests that carry bob's
/// server-side ufrag and a wrong password, from another socket over ~2 s: none is answered,
/// the flood is rate limited, the call goes on, and the log stays short.
async fn stun_flood_naming_a_real_ufrag(rust_log: Option<&str>) {
    let _serial = SERIAL.lock().await;
    init_tracing();
    let server = ChildServer::spawn(rust_log);
    let (alice, bob) = two_peer_call(&server, "stunflood").await;
    // The server's ufrag for bob, from the last description it sent him.
    let ufrag = bob
        .state()
        .messages
        .iter()
        .rev()
        .find_map(|m| match m {
            ServerMessage::SdpAnswer { sdp } | ServerMessage::SdpOffer { sdp } => ice_ufrag(sdp),
            _ => None,
        })
        .expect("the server's ufrag in its SDP to bob");
    let drops_before = drop_counts(&http_get(server.http, "/metrics").await.1);
    let log_before = server.log_len();

    // 5000 checks with bob's server-side ufrag and a wrong password, over ~2 s.
    let udp = server.udp;
    let flood_start = Instant::now();
    let (sent, replies) = tokio::task::spawn_blocking(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
        let mut sent = 0_u64;
        for i in 0..5000 {
            let request = stun_binding_request(
                &format!("{ufrag}:attacker"),
                "not-the-password-of-this-peer",
            );
            if socket.send_to(&request, udp).is_ok() {
                sent += 1;
            }
            if i % 5 == 4 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let replied = got_datagram_within(&socket, Duration::from_millis(500));
        (sent, replied)
    })
    .await
    .expect("stun flood");
    let flood_end = Instant::now();
    call_goes_on(&alice, &bob, 90, flood_end, Duration::from_secs(1)).await;
    let gap = call_gap(
        &alice,
        &bob,
        flood_start,
        flood_end + Duration::from_secs(1),
    );
    let drops_after = drop_counts(&http_get(server.http, "/metrics").await.1);
    let delta: [u64; 5] = std::array::from_fn(|i| drops_after[i] - drops_before[i]);
    let log = server.log_since(log_before);
    println!(
        "RUST_LOG={rust_log:?}: wrong-password STUN flood: {sent} requests in {:?}; drops {}; largest call gap {}; {} \
         log lines",
        flood_end - flood_start,
        format_drops(&delta),
        ms(gap),
        log.len()
    );
    for l in log.iter().take(20) {
        println!("  | {l}");
    }

    assert!(
        !replies,
        "the server answered a check with a wrong password"
    );
    assert!(
        delta[4] > 0,
        "the flood is over the per-peer STUN budget: stun_rate_limited drops expected"
    );
    assert!(
        gap < Duration::from_secs(2),
        "the call stalled for {} during the STUN flood",
        ms(gap)
    );
    assert_log_bounded(&log, "wrong-password STUN flood");
}
