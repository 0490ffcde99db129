//! A panic inside one peer's `rtc` core (a parser bug reached by hostile input) fails that peer
//! only: the media thread, and every other peer's media, go on.

use std::time::Duration;
use videoroom_server::engine::core::{CoreError, CoreEvent};
use videoroom_server::engine::sim::{Sim, vp8_packet};

#[test]
fn a_panicking_core_fails_its_peer_and_spares_the_others() {
    let mut sim = Sim::new();
    let (a, sender) = sim.connect_publisher("cam", 0x1111);
    let (fwd, mut seq) = sim.open_track(a, sender, "cam", 0x1111, 0);
    let b = sim.connect_subscriber(fwd, 1, "cam", 0x2222);
    let c = sim.connect_subscriber(fwd, 2, "cam", 0x3333);
    let victim = sim.clients[c].key;

    let now = sim.now;
    let outcome = sim
        .server
        .with_peer(now, victim, |_| -> () { panic!("simulated rtc bug") });
    assert!(matches!(outcome, Err(CoreError::Panicked)), "{outcome:?}");
    sim.pump();
    assert!(
        sim.events.iter().any(|e| e.key == victim
            && matches!(
                e.event,
                CoreEvent::State(rtc::peer_connection::state::RTCPeerConnectionState::Failed)
            )),
        "the endpoint hears its connection failed"
    );
    assert_eq!(sim.server.stats().core_panics, 1);
    assert_eq!(sim.server.peer_count(), 2, "only the victim is gone");

    // The others still forward.
    let before = sim.received_count(b, "cam");
    for i in 0..10u32 {
        seq = seq.wrapping_add(1);
        sim.send_rtp(
            a,
            sender,
            vp8_packet(seq, 90_000 + i * 3000, 0x1111, false, 7, 800),
        );
        sim.advance(Duration::from_millis(33));
    }
    assert!(
        sim.run_until(Duration::from_secs(1), |s| s.received_count(b, "cam")
            >= before + 10),
        "subscriber b got {} packets after the panic",
        sim.received_count(b, "cam") - before
    );
    // Calls for the removed peer fail cleanly.
    let now = sim.now;
    assert!(matches!(
        sim.server
            .with_peer(now, victim, |pc| pc.local_description()),
        Err(CoreError::NoPeer)
    ));
}
