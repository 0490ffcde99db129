//! A third bot joining a room where two bots are already talking gets both videos within 2 s of
//! joining; when it leaves, the others see it go (an engine participant in the test watches the
//! room).

mod common;

use std::time::Duration;
use videoroom_client::{AudioOutput, JoinOptions, Room, RoomEvent};
use videoroom_testkit::{start_server, test_config, ws_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_sees_everyone_quickly_and_its_leave_is_seen() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    // A watcher in the test process (receive-only) to see who comes and goes.
    let (watcher, mut events) = Room::join(
        &url,
        "late",
        "Watcher",
        JoinOptions::default()
            .with_udp_addrs(vec!["127.0.0.1:0".parse().unwrap()])
            .with_audio_output(AudioOutput::Null),
    )
    .await
    .unwrap();
    let mut a = common::spawn(&url, "late", "A", &["--duration", "60s"]);
    let mut b = common::spawn(&url, "late", "B", &["--duration", "60s"]);
    // A and B are exchanging video before C arrives.
    for bot in [&mut a, &mut b] {
        bot.wait_line(Duration::from_secs(30), |l| {
            l.contains("peers 2") && !l.contains("in 0.0 fps")
        })
        .await;
    }

    let mut c = common::spawn(&url, "late", "C", &["--duration", "4s"]);
    let mut c_id = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while c_id.is_none() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(RoomEvent::PeerJoined(p))) if p.display_name == "C" => c_id = Some(p.peer_id),
            Ok(Some(_)) => {}
            other => panic!("no PeerJoined for C: {other:?}"),
        }
    }
    assert_eq!(c.wait_exit(Duration::from_secs(30)).await, 0);
    let left_at = tokio::time::Instant::now();
    let c_id = c_id.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
            Ok(Some(RoomEvent::PeerLeft { peer_id })) if peer_id == c_id => break,
            Ok(Some(_)) => {}
            other => panic!("C's leave not seen within 2 s of its exit: {other:?}"),
        }
    }
    eprintln!("C's leave seen {:?} after it exited", left_at.elapsed());

    let report = c.report();
    eprintln!("C: {report:#}");
    for other in ["A", "B"] {
        let video = common::track_of(&report, other, "video");
        let first = video["join_to_first_frame_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("C never decoded {other}'s video"));
        assert!(
            first <= 2000.0,
            "C got {other}'s first frame {first} ms after joining"
        );
        assert!(video["frames_decoded"].as_u64().unwrap() >= 30);
        assert_eq!(video["frame_numbers_increasing"], true);
        common::track_of(&report, other, "audio");
    }
    // A and B are still going; they now see one peer (the watcher) besides each other.
    a.wait_line(Duration::from_secs(10), |l| l.contains("peers 2"))
        .await;
    assert!(a.child.try_wait().unwrap().is_none(), "A still running");
    let _ = a.child.kill().await;
    let _ = b.child.kill().await;
    watcher.leave().await;
    server.shutdown(Duration::from_secs(2)).await;
}
