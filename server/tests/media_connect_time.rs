//! How fast subscribers connect (issue 10: "a subscriber must connect within 200 ms of its
//! answer on loopback"): one publisher, then 10 receive-only subscribers join at once. For each
//! subscriber: join → server offer → its answer → PeerConnection connected → first RTP packet.
//!
//! Asserts a generous bound (3 s), and the 200 ms target in a test of its own, and prints the
//! figures.
//!
//! The server's offer carries `a=ice-lite`, so a subscriber (rtc 0.21) answers `setup:passive`
//! and the *server* is the DTLS client towards it. Before the vendored rtc fix (vendor/rtc,
//! PATCHES.md), rtc queued the ClientHello on the selected-pair event but released it only at the
//! peer's next timer: every subscriber connected ~205 ms after its answer (pcap on loopback: ICE
//! done at ~5-10 ms, ClientHello at ~204 ms). With the fix: ~10-20 ms.

#[path = "common/media_port.rs"]
mod media_port;

use media_port::{ms, percentile};
use std::time::{Duration, Instant};
use videoroom_testkit::*;

const SUBSCRIBERS: usize = 10;
/// The bound asserted (the target is 200 ms).
const BOUND: Duration = Duration::from_secs(3);
/// The target: connected within 200 ms of the answer on loopback.
const TARGET: Duration = Duration::from_millis(200);

/// `later - earlier`, or zero if `later` came first.
fn since(later: Instant, earlier: Instant) -> Duration {
    later.saturating_duration_since(earlier)
}

/// One test of this file at a time (they time connections on a 2-core machine).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What one subscriber took, from its answer to the server's offer.
struct Timing {
    name: String,
    /// Answer sent → PeerConnection connected (ICE and DTLS).
    connect: Duration,
    /// Answer sent → first RTP packet of any track.
    first_rtp: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_subscribers_joining_at_once_connect_and_receive_quickly() {
    let _serial = SERIAL.lock().await;
    for t in measure().await {
        assert!(
            t.connect <= BOUND,
            "{} connected {} after its answer",
            t.name,
            ms(t.connect)
        );
        assert!(
            t.first_rtp <= BOUND,
            "{} got its first RTP packet {} after its answer",
            t.name,
            ms(t.first_rtp)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_subscribers_joining_at_once_connect_within_the_200_ms_target() {
    let _serial = SERIAL.lock().await;
    let timings = measure().await;
    let connect: Vec<Duration> = timings.iter().map(|t| t.connect).collect();
    let first: Vec<Duration> = timings.iter().map(|t| t.first_rtp).collect();
    assert!(
        percentile(&connect, 100) <= TARGET,
        "slowest connect {} (target {})",
        ms(percentile(&connect, 100)),
        ms(TARGET)
    );
    assert!(
        percentile(&first, 100) <= TARGET + Duration::from_millis(50),
        "slowest first RTP {} (target {} + 50 ms)",
        ms(percentile(&first, 100)),
        ms(TARGET)
    );
}

/// One publisher, then [`SUBSCRIBERS`] receive-only subscribers joining at once; prints a table
/// of each subscriber's figures and the summary, and returns them.
async fn measure() -> Vec<Timing> {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let alice = TestPeer::join(&url, "rush", "alice", PeerOptions::default()).await;
    wait_until(WAIT, "alice is connected and publishing", || {
        alice.state().connected && alice.state().sent.get("alice-cam").copied().unwrap_or(0) > 30
    })
    .await;

    let start = Instant::now();
    let joins = (0..SUBSCRIBERS).map(|i| {
        let url = url.clone();
        async move {
            let t = Instant::now();
            let peer = TestPeer::join(
                &url,
                "rush",
                &format!("sub{i}"),
                PeerOptions {
                    keep_payloads: false,
                    ..PeerOptions::receive_only()
                },
            )
            .await;
            (t, peer)
        }
    });
    let subscribers = futures::future::join_all(joins).await;
    wait_until(
        WAIT,
        "every subscriber receives alice's audio and video",
        || {
            subscribers.iter().all(|(_, p)| {
                let s = p.state();
                s.connected_at.is_some()
                    && ["alice-cam", "alice-mic"]
                        .iter()
                        .all(|t| s.received.get(*t).is_some_and(|r| r.first_at.is_some()))
            })
        },
    )
    .await;

    if let Some((_, first)) = subscribers.first() {
        let s = first.state();
        let offer = s.messages.iter().find_map(|m| match m {
            videoroom_protocol::ServerMessage::SdpOffer { sdp } => Some(sdp.clone()),
            _ => None,
        });
        let attrs: Vec<&str> = offer
            .as_deref()
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("a=ice-lite") || l.starts_with("a=setup:"))
            .collect();
        println!("the server's first offer to {}: {attrs:?}", first.name);
    }
    let mut to_connect = Vec::new();
    let mut to_first_rtp = Vec::new();
    let mut to_ice = Vec::new();
    println!(
        "{:<6} {:>12} {:>12} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "peer",
        "join→offer",
        "offer→answer",
        "join→answer",
        "answer→ICE",
        "answer→conn",
        "answer→1st rtp",
        "answer→1st vid"
    );
    for (joined_at, peer) in &subscribers {
        let s = peer.state();
        let offer = s.first_offer_at.expect("a server offer");
        let answer = s
            .first_answer_sent_at
            .expect("an answer to the server's offer");
        let connected = s.connected_at.expect("connected");
        let ice = s.ice_connected_at.unwrap_or(connected);
        let first = |t: &str| s.received.get(t).and_then(|r| r.first_at).expect("first");
        let (cam, mic) = (first("alice-cam"), first("alice-mic"));
        let first_rtp = cam.min(mic);
        println!(
            "{:<6} {:>12} {:>12} {:>12} {:>12} {:>12} {:>14} {:>14}",
            peer.name,
            ms(since(offer, *joined_at)),
            ms(since(answer, offer)),
            ms(since(answer, *joined_at)),
            ms(since(ice, answer)),
            ms(since(connected, answer)),
            ms(since(first_rtp, answer)),
            ms(since(cam, answer)),
        );
        to_connect.push(since(connected, answer));
        to_first_rtp.push(since(first_rtp, answer));
        to_ice.push(since(ice, answer));
    }
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    println!(
        "answer→ICE connected: p50 {}, max {}",
        ms(percentile(&to_ice, 50)),
        ms(max(&to_ice))
    );
    println!(
        "answer→connected: p50 {}, max {}; answer→first RTP: p50 {}, max {}; all {} received \
         within {} of the joins (target 200 ms)",
        ms(percentile(&to_connect, 50)),
        ms(max(&to_connect)),
        ms(percentile(&to_first_rtp, 50)),
        ms(max(&to_first_rtp)),
        SUBSCRIBERS,
        ms(start.elapsed()),
    );
    drop(alice);
    subscribers
        .iter()
        .zip(to_connect.iter().zip(&to_first_rtp))
        .map(|((_, peer), (c, r))| Timing {
            name: peer.name.clone(),
            connect: *c,
            first_rtp: *r,
        })
        .collect()
}
