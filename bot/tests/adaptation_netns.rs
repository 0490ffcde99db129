//! Downlink adaptation on a real shaped link: a viewer in a network namespace whose downlink is
//! limited with `tc tbf` to 600 kbit/s gets a lower simulcast layer of a 1280x720 camera
//! (layers 1.5 Mbit/s, 500 kbit/s, 150 kbit/s) within 5 s and then no freeze over 1 s, while a
//! viewer on the host keeps the top layer; with the limit lifted it is back on the top layer
//! within 15 s. The server measures each subscriber's downlink from its TWCC feedback and picks
//! the layer; nothing in the test tells it about the limit.
//!
//! Needs root (network namespaces, veth, `tc`); skipped with a message otherwise.

mod common;

use common::netns::Netns;
use common::timeline::{freezes, sizes, wall_ms};
use std::time::Duration;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_downlink_gets_a_lower_layer_and_climbs_back() {
    let Some(net) = Netns::or_skip("bwe") else {
        return;
    };
    let (server, url) = net.server(false).await;
    let host = net.host_ip.to_string();
    let inside = net.ns_ip.to_string();
    let watch = [
        "--duration",
        "42s",
        "--video",
        "none",
        "--audio",
        "none",
        "-q",
    ];
    let mut publisher = common::spawn_via_media_ip(
        Command::new(common::BOT),
        &url,
        "adapt",
        "Pub",
        Some(&host),
        &[&["--duration", "44s", "-q"][..], &common::CAMERA_720P].concat(),
    );
    let mut free = common::spawn_via_media_ip(
        Command::new(common::BOT),
        &url,
        "adapt",
        "Free",
        Some(&host),
        &watch,
    );
    let mut capped = common::spawn_via_media_ip(
        net.command(common::BOT),
        &url,
        "adapt",
        "Capped",
        Some(&inside),
        &watch,
    );

    // The call runs uncapped first (the scenario's timeline, not a wait for a condition).
    tokio::time::sleep(Duration::from_secs(8)).await;
    net.limit_downlink(Some(600)).expect("tc tbf");
    let capped_at = wall_ms();
    tokio::time::sleep(Duration::from_secs(18)).await;
    net.limit_downlink(None).expect("tc qdisc del");
    let lifted_at = wall_ms();

    for (name, bot) in [("Capped", &mut capped), ("Free", &mut free)] {
        assert_eq!(bot.wait_exit(Duration::from_secs(90)).await, 0, "{name}");
    }
    assert_eq!(publisher.wait_exit(Duration::from_secs(90)).await, 0);

    let capped_report = capped.report();
    let free_report = free.report();
    let c = common::track_of(&capped_report, "Pub", "video");
    let f = common::track_of(&free_report, "Pub", "video");
    let (cs, cf) = (sizes(c), freezes(c));
    eprintln!(
        "capped at {capped_at}, lifted at {lifted_at}\ncapped sizes {cs:?}\ncapped freezes {cf:?}\nfree sizes {:?}\nfree freezes {:?}",
        sizes(f),
        freezes(f)
    );
    assert!(
        cs.iter().any(|&(t, w, _)| t < capped_at && w == 1280),
        "the capped viewer was on the top layer before the cap"
    );
    let down = cs
        .iter()
        .find(|&&(t, w, _)| t >= capped_at && w < 1280)
        .map(|&(t, _, _)| t - capped_at)
        .expect("the capped viewer never got a lower layer");
    eprintln!("cap → lower layer: {down} ms");
    assert!(down <= 5_000, "{down} ms to a lower layer");
    let settled = capped_at + down;
    let worst = cf
        .iter()
        .filter(|&&(t, gap)| t > settled && t.saturating_sub(gap) < lifted_at)
        .map(|&(_, gap)| gap)
        .max()
        .unwrap_or(0);
    eprintln!("longest freeze under the cap after the switch: {worst} ms");
    assert!(worst <= 1_000, "froze {worst} ms under the cap");
    let up = cs
        .iter()
        .find(|&&(t, w, _)| t >= lifted_at && w == 1280)
        .map(|&(t, _, _)| t - lifted_at)
        .expect("never back on the top layer after the limit was lifted");
    eprintln!("limit lifted → top layer: {up} ms");
    assert!(up <= 15_000, "{up} ms back to the top layer");

    // The uncapped viewer kept the top layer and did not freeze.
    assert!(
        sizes(f).iter().all(|&(t, w, _)| t < capped_at || w == 1280),
        "the uncapped viewer left the top layer: {:?}",
        sizes(f)
    );
    let free_worst = freezes(f)
        .iter()
        .filter(|&&(t, _)| t > capped_at)
        .map(|&(_, gap)| gap)
        .max()
        .unwrap_or(0);
    assert!(
        free_worst <= 1_000,
        "the uncapped viewer froze {free_worst} ms"
    );
    // The switches and the estimates are in /metrics.
    let metrics = server.metrics().render();
    let value = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(value("videoroom_layer_switches_total") >= 2.0, "{metrics}");
    assert!(
        value("videoroom_downlink_estimate_bps_count") >= 10.0,
        "{metrics}"
    );
}
