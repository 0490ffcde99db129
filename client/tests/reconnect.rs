//! Reconnection: Alice's signaling goes through a TCP proxy that the test cuts. Alice's room
//! notices, reports `Reconnecting`, rejoins (new peer id, new track ids, same media pipeline) and
//! media flows both ways again; Bob sees the old Alice leave and the new one arrive. When the
//! server stays unreachable, the room gives up after its bound and reports `Failed`/`Closed`.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};
use videoroom_client::{ConnectionState, JoinOptions, RemoteVideo, Room, RoomEvent, RoomHandle};
use videoroom_protocol::TrackId;
use videoroom_testkit::{WAIT, start_server, test_config, wait_until, ws_url};

/// A TCP proxy whose connections the test can cut.
struct Proxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let registry = Arc::clone(&links);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                registry.lock().expect("lock").push(link.abort_handle());
            }
        });
        Proxy {
            addr,
            accept,
            links,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Drops every open connection (both sockets close).
    fn cut(&self) {
        for link in self.links.lock().expect("lock").drain(..) {
            link.abort();
        }
    }

    /// Stops accepting: new connections are refused.
    fn refuse(&self) {
        self.accept.abort();
    }
}

fn options() -> JoinOptions {
    common::with_pattern()
}

/// Collects events in the background so the test can look at them at any time.
fn record(mut events: mpsc::Receiver<RoomEvent>) -> Arc<Mutex<Vec<RoomEvent>>> {
    let seen: Arc<Mutex<Vec<RoomEvent>>> = Arc::default();
    let sink = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            sink.lock().expect("lock").push(e);
        }
    });
    seen
}

fn any(seen: &Mutex<Vec<RoomEvent>>, pred: impl Fn(&RoomEvent) -> bool) -> bool {
    seen.lock().expect("lock").iter().any(pred)
}

async fn remote_video(viewer: &RoomHandle, track: &TrackId) -> RemoteVideo {
    wait_until(WAIT, "the track is announced", || {
        viewer.remote_video(track).is_some()
    })
    .await;
    viewer.remote_video(track).expect("announced")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_connection_is_rejoined_and_media_resumes() {
    let server = start_server(test_config()).await;
    let proxy = Proxy::start(server.local_addr()).await;
    let (alice, alice_events) = Room::join(&proxy.url(), "blip", "Alice", options())
        .await
        .unwrap();
    let (bob, bob_events) = Room::join(&ws_url(&server), "blip", "Bob", options())
        .await
        .unwrap();
    let alice_events = record(alice_events);
    let bob_events = record(bob_events);
    let old_alice = alice.peer_id();
    let old_alice_cam = alice.camera_track_id().unwrap();
    let bob_cam = bob.camera_track_id().unwrap();
    let bob_at_alice = remote_video(&alice, &bob_cam).await;
    let alice_at_bob = remote_video(&bob, &old_alice_cam).await;
    wait_until(WAIT, "video flows both ways", || {
        bob_at_alice.stats().frames_decoded >= 10 && alice_at_bob.stats().frames_decoded >= 10
    })
    .await;

    proxy.cut();
    wait_until(WAIT, "Alice reports Reconnecting", || {
        any(&alice_events, |e| {
            matches!(e, RoomEvent::ConnectionState(ConnectionState::Reconnecting))
        })
    })
    .await;
    wait_until(WAIT, "Alice rejoins under a new id", || {
        any(
            &alice_events,
            |e| matches!(e, RoomEvent::Joined { peer_id, .. } if *peer_id != old_alice),
        )
    })
    .await;
    let new_alice = alice.peer_id();
    assert_ne!(new_alice, old_alice);
    let new_alice_cam = alice.camera_track_id().unwrap();
    assert_ne!(
        new_alice_cam, old_alice_cam,
        "a new session publishes under a new id"
    );

    // Bob: the old Alice leaves, the new one arrives, and her video is decoded again.
    wait_until(
        WAIT,
        "Bob sees the old Alice leave and the new one join",
        || {
            any(
                &bob_events,
                |e| matches!(e, RoomEvent::PeerLeft { peer_id } if *peer_id == old_alice),
            ) && any(
                &bob_events,
                |e| matches!(e, RoomEvent::PeerJoined(p) if p.peer_id == new_alice),
            )
        },
    )
    .await;
    let new_at_bob = remote_video(&bob, &new_alice_cam).await;
    wait_until(WAIT, "Bob decodes the rejoined Alice", || {
        new_at_bob.stats().frames_decoded >= 10
    })
    .await;
    // Alice: Bob's track is the same; its slot survived, and frames resume in it.
    let before = bob_at_alice.stats().frames_decoded;
    wait_until(WAIT, "Alice decodes Bob again", || {
        bob_at_alice.stats().frames_decoded >= before + 10
    })
    .await;
    wait_until(WAIT, "Alice's media is connected again", || {
        let seen = alice_events.lock().unwrap();
        let rejoined = seen
            .iter()
            .position(|e| matches!(e, RoomEvent::Joined { peer_id, .. } if *peer_id == new_alice));
        rejoined.is_some_and(|i| {
            seen[i..]
                .iter()
                .any(|e| matches!(e, RoomEvent::ConnectionState(ConnectionState::Connected)))
        })
    })
    .await;
    assert!(!any(&alice_events, |e| matches!(
        e,
        RoomEvent::Closed { .. }
    )));
    alice.leave().await;
    bob.leave().await;
    server.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_server_ends_the_room_after_the_bound() {
    let server = start_server(test_config()).await;
    let proxy = Proxy::start(server.local_addr()).await;
    let (alice, events) = Room::join(
        &proxy.url(),
        "gone",
        "Alice",
        options().with_reconnect(Some(Duration::from_secs(2))),
    )
    .await
    .unwrap();
    let events = record(events);
    wait_until(WAIT, "connected", || {
        any(&events, |e| {
            matches!(e, RoomEvent::ConnectionState(ConnectionState::Connected))
        })
    })
    .await;
    let lost_at = tokio::time::Instant::now();
    proxy.refuse();
    proxy.cut();
    wait_until(WAIT, "the room gives up", || {
        any(&events, |e| matches!(e, RoomEvent::Closed { .. }))
    })
    .await;
    let gave_up_after = lost_at.elapsed();
    let seen = events.lock().unwrap().clone();
    eprintln!("gave up after {gave_up_after:?}: {:?}", seen.last());
    assert!(any(&events, |e| matches!(
        e,
        RoomEvent::ConnectionState(ConnectionState::Reconnecting)
    )));
    assert!(any(&events, |e| matches!(
        e,
        RoomEvent::ConnectionState(ConnectionState::Failed)
    )));
    let Some(RoomEvent::Closed { reason }) = seen.last() else {
        panic!("Closed is the last event: {seen:?}");
    };
    assert!(reason.contains("reconnecting failed"), "{reason}");
    assert!(gave_up_after >= Duration::from_secs(2), "{gave_up_after:?}");
    // Commands after the end say so instead of hanging.
    assert!(alice.set_camera_enabled(false).await.is_err());
    alice.leave().await;
    server.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_camera_muted_across_a_rejoin_unmutes_for_everyone() {
    let server = start_server(test_config()).await;
    let proxy = Proxy::start(server.local_addr()).await;
    let (alice, alice_events) = Room::join(&proxy.url(), "muted", "Alice", options())
        .await
        .expect("Alice joins");
    let (bob, bob_events) = Room::join(&ws_url(&server), "muted", "Bob", options())
        .await
        .expect("Bob joins");
    let alice_events = record(alice_events);
    let bob_events = record(bob_events);
    let old_alice = alice.peer_id();
    alice.set_camera_enabled(false).await.expect("mute");

    // Rejoin while muted: the new session declares the camera muted and sends nothing, so the
    // server has not published it when Alice unmutes.
    proxy.cut();
    wait_until(WAIT, "Alice rejoins", || {
        any(
            &alice_events,
            |e| matches!(e, RoomEvent::Joined { peer_id, .. } if *peer_id != old_alice),
        )
    })
    .await;
    let new_alice = alice.peer_id();
    wait_until(WAIT, "Bob sees the new Alice", || {
        any(
            &bob_events,
            |e| matches!(e, RoomEvent::PeerJoined(p) if p.peer_id == new_alice),
        )
    })
    .await;
    alice.set_camera_enabled(true).await.expect("unmute");
    let cam = alice.camera_track_id().expect("camera");
    let video = remote_video(&bob, &cam).await;
    wait_until(WAIT, "Bob decodes the unmuted camera", || {
        video.stats().frames_decoded >= 10
    })
    .await;
    // What Bob believes: announced (perhaps muted, if the first packet beat the unmute to the
    // server), then updated; it must end unmuted.
    wait_until(WAIT, "Bob sees the camera unmuted", || {
        let seen = bob_events.lock().expect("lock");
        seen.iter().fold(None, |muted, e| match e {
            RoomEvent::TrackAdded(info) if info.track_id == cam => Some(info.muted),
            RoomEvent::TrackMuted { track_id } if *track_id == cam => Some(true),
            RoomEvent::TrackUnmuted { track_id } if *track_id == cam => Some(false),
            _ => muted,
        }) == Some(false)
    })
    .await;
    assert!(
        !any(&alice_events, |e| matches!(e, RoomEvent::Error(_))),
        "no error for Alice: {:?}",
        alice_events.lock().expect("lock")
    );
    alice.leave().await;
    bob.leave().await;
    server.shutdown(Duration::from_secs(2)).await;
}
