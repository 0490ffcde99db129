//! Uplink recovery on a real shaped link: a publisher (1280x720 camera at 15 fps, layers
//! 1.5 Mbit/s, 500 kbit/s, 150 kbit/s, and a tone) in a network namespace whose uplink is
//! limited with `tc tbf` to 400 kbit/s for 12 s, then freed. Under the cap its allocator pauses
//! the upper layers; after the cap is gone, nothing tells the publisher: its estimate climbs
//! while it sends only the quarter layer, and its first probe (~30 s after the pause: a paused
//! layer's keyframe, held until the feedback on it is in) finds the path free, so the half
//! layer goes on again and the viewer is switched up to it. Neither the probe nor the switch
//! freezes the viewer for over 1 s.
//!
//! Needs root (network namespaces, veth, `tc`); skipped with a message otherwise.

mod common;

use common::netns::Netns;
use common::timeline::{budget, freezes, local_camera, sizes, wall_ms};
use std::time::Duration;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freed_uplink_gets_its_upper_layer_back_through_a_probe() {
    let Some(net) = Netns::or_skip("upr") else {
        return;
    };
    let (_server, url) = net.server(false).await;
    let host = net.host_ip.to_string();
    let inside = net.ns_ip.to_string();
    let mut publisher = common::spawn_via_media_ip(
        net.command(common::BOT),
        &url,
        "uplink-recovery",
        "Pub",
        Some(&inside),
        &[
            &["--duration", "62s", "--audio", "tone", "-q"][..],
            &common::CAMERA_720P,
        ]
        .concat(),
    );
    let mut viewer = common::spawn_via_media_ip(
        Command::new(common::BOT),
        &url,
        "uplink-recovery",
        "View",
        Some(&host),
        &[
            "--duration",
            "60s",
            "--video",
            "none",
            "--audio",
            "none",
            "-q",
        ],
    );

    // The scenario's timeline (not waits for conditions): 7 s free, 12 s capped, then free.
    tokio::time::sleep(Duration::from_secs(7)).await;
    net.limit_uplink(Some(400)).expect("tc tbf");
    let capped_at = wall_ms();
    tokio::time::sleep(Duration::from_secs(12)).await;
    net.limit_uplink(None).expect("tc tbf removed");
    let freed_at = wall_ms();

    assert_eq!(viewer.wait_exit(Duration::from_secs(90)).await, 0, "viewer");
    assert_eq!(publisher.wait_exit(Duration::from_secs(90)).await, 0);

    let pub_report = publisher.report();
    let camera = local_camera(&pub_report);
    let timeline = budget(camera);
    eprintln!(
        "capped at {capped_at}, freed at {freed_at} (+{} ms)",
        freed_at - capped_at
    );
    for [t, kbps, paused, sent] in &timeline {
        eprintln!(
            "  {:+6} ms  budget {kbps:5} kbit/s  paused {paused}  sent {sent}",
            *t as i64 - capped_at as i64
        );
    }
    let paused_under_cap = timeline
        .iter()
        .any(|&[t, _, paused, _]| t >= capped_at && t < freed_at && paused >= 1);
    assert!(paused_under_cap, "no layer paused under the cap");
    // Back: two layers or more sent again, the budget pausing at most the top one.
    let back = timeline
        .iter()
        .find(|&&[t, _, paused, sent]| t >= freed_at && paused <= 1 && sent >= 2)
        .map(|&[t, ..]| t);
    let back = back.unwrap_or_else(|| panic!("the upper layers never came back: {timeline:?}"));
    eprintln!(
        "freed → two layers sent again: {} ms ({} ms after the cap)",
        back - freed_at,
        back - capped_at
    );

    let report = viewer.report();
    let video = common::track_of(&report, "Pub", "video");
    let (s, f) = (sizes(video), freezes(video));
    eprintln!("viewer: sizes {s:?}\n  freezes {f:?}");
    let up = s
        .iter()
        .find(|&&(t, w, _)| t >= back && w >= 640)
        .map(|&(t, ..)| t);
    let up = up.unwrap_or_else(|| panic!("the viewer never got 640x360 or more back: {s:?}"));
    eprintln!(
        "viewer back on a larger layer {} ms after the freeing",
        up - freed_at
    );
    let worst = f
        .iter()
        .filter(|&&(t, gap)| t.saturating_sub(gap) >= capped_at + 5_000)
        .map(|&(_, gap)| gap)
        .max()
        .unwrap_or(0);
    eprintln!("viewer: longest freeze starting after cap + 5 s: {worst} ms");
    assert!(worst <= 1_000, "the viewer froze {worst} ms");
}
