//! 5 % random loss on one subscriber's downlink (an in-process UDP relay drops it; `tc netem` is
//! not in this kernel): NACK retransmissions and keyframe requests keep that subscriber's video
//! moving (no freeze over 1 s once it started), and the other subscriber of the same publisher
//! sees no loss at all: the server repairs each leg from that leg's own history and asks the
//! publisher for nothing it does not need.

mod common;

use common::relay::Relay;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use videoroom_server::Config;

const LOSSY: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_loss_on_one_leg_is_repaired_and_spares_the_others() {
    // The server advertises the relay (its public IP, same port), so media goes through it.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let server = videoroom_testkit::start_server(Config {
        udp_port: port,
        public_ip: Some(RELAY_IP),
        ..videoroom_testkit::test_config()
    })
    .await;
    let relay = Relay::start(
        SocketAddr::new(RELAY_IP, port),
        server.udp_addr(),
        LOSSY,
        0.05,
    )
    .await;
    let url = videoroom_testkit::ws_url(&server);
    let watch = [
        "--duration",
        "14s",
        "--video",
        "none",
        "--audio",
        "none",
        "-q",
    ];
    let mut publisher = common::spawn(&url, "loss", "Pub", &["--duration", "16s", "-q"]);
    let mut clean = common::spawn(&url, "loss", "Clean", &watch);
    let mut lossy = common::spawn_via_media_ip(
        tokio::process::Command::new(common::BOT),
        &url,
        "loss",
        "Lossy",
        Some("127.0.0.2"),
        &watch,
    );
    for (name, bot) in [("Lossy", &mut lossy), ("Clean", &mut clean)] {
        assert_eq!(bot.wait_exit(Duration::from_secs(90)).await, 0, "{name}");
    }
    assert_eq!(publisher.wait_exit(Duration::from_secs(90)).await, 0);

    let (lossy_sent, lossy_dropped) = relay.down(LOSSY);
    let (clean_sent, clean_dropped) = relay.down(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let share = lossy_dropped as f64 / (lossy_sent + lossy_dropped).max(1) as f64;
    eprintln!(
        "lossy leg: {lossy_sent} forwarded, {lossy_dropped} dropped ({:.1} %); clean: {clean_sent} forwarded",
        share * 100.0
    );
    assert!((0.03..0.07).contains(&share), "dropped {share}");
    assert_eq!(clean_dropped, 0);

    let l = lossy.report();
    let c = clean.report();
    let lv = common::track_of(&l, "Pub", "video");
    let cv = common::track_of(&c, "Pub", "video");
    eprintln!("lossy video: {lv}\nclean video: {cv}");
    let lossy_frames = lv["frames_decoded"].as_u64().unwrap_or(0);
    let clean_frames = cv["frames_decoded"].as_u64().unwrap_or(0);
    assert!(clean_frames >= 200, "clean viewer decoded {clean_frames}");
    assert!(
        lossy_frames * 10 >= clean_frames * 8,
        "the lossy viewer decoded {lossy_frames} frames against {clean_frames}"
    );
    // No freeze over 1 s once the video started (the first second is the join).
    let first = lv["size_timeline"][0][0].as_u64().expect("a first frame");
    let worst = lv["freeze_timeline"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|e| Some((e[0].as_u64()?, e[1].as_u64()?)))
                .filter(|&(t, gap)| t.saturating_sub(gap) > first)
                .map(|(_, gap)| gap)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    assert!(worst <= 1_000, "the lossy viewer froze {worst} ms");
    assert_eq!(cv["freezes"], 0, "the clean viewer froze");
    assert_eq!(cv["frames_dropped"], 0, "the clean viewer lost frames");
    assert_eq!(cv["frame_numbers_increasing"], true);
    // The lossy viewer's audio went on (Opus conceals what NACK does not repair).
    let la = common::track_of(&l, "Pub", "audio");
    let decoded = la["frames_decoded"].as_u64().unwrap_or(0);
    assert!(
        decoded >= 400,
        "lossy viewer decoded {decoded} audio frames"
    );
}
