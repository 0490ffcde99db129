//! The server's negotiation, message by message, as docs/protocol.md ("Sequences") describes it:
//! one server `sdp_offer` per change, carrying everything that changed.
//!
//! - A late joiner's first offer carries every existing track, and it gets no second one.
//! - A leave gives each remaining peer one `tracks_removed` (all the departed tracks), then
//!   `peer_left`, then exactly one offer, in which the departed tracks no longer send.
//! - A client publishing audio and video in one offer is announced to the others with one
//!   `tracks_added` carrying both, followed by exactly one offer.
//!
//! Real server, real WebRTC clients (the testkit's `TestPeer` answers every server offer).

use std::collections::BTreeSet;
use std::time::Duration;
use videoroom_protocol::{PeerId, ServerMessage};
use videoroom_testkit::*;

/// How long the "no further offer" checks watch. They assert that something does *not*
/// happen, which no condition can signal, so they wait this fixed window; everything the
/// server does for a change (its offer after an answer, a re-offer) happens within a few
/// milliseconds on loopback.
const QUIET: Duration = Duration::from_secs(1);

/// A forwarded track as the server's SDP names it: (publisher peer id, track id).
type Msid = (String, String);

/// One media section of an SDP, as far as these tests read it.
#[derive(Debug)]
struct Section {
    mid: String,
    port: String,
    /// `sendonly`, `recvonly`, `sendrecv` (also when absent) or `inactive`.
    direction: &'static str,
    msid: Option<Msid>,
}

impl Section {
    /// Not rejected (port 0) and sending.
    fn sends(&self) -> bool {
        self.port != "0" && matches!(self.direction, "sendonly" | "sendrecv")
    }
}

fn sections(sdp: &str) -> Vec<Section> {
    sdp.split("\r\nm=")
        .skip(1)
        .map(|section| {
            let lines: Vec<&str> = section.split("\r\n").collect();
            let attr = |name: &str| lines.iter().find_map(|l| l.strip_prefix(name));
            let direction = ["sendonly", "recvonly", "inactive", "sendrecv"]
                .into_iter()
                .find(|d| lines.iter().any(|l| l.strip_prefix("a=") == Some(*d)))
                .unwrap_or("sendrecv");
            Section {
                mid: attr("a=mid:").unwrap_or_default().to_owned(),
                port: section.split_whitespace().nth(1).unwrap_or("0").to_owned(),
                direction,
                msid: attr("a=msid:").and_then(|msid| {
                    let mut parts = msid.split_whitespace();
                    Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
                }),
            }
        })
        .collect()
}

/// The tracks an SDP sends: the `msid` of every sending media section.
fn sending_tracks(sdp: &str) -> BTreeSet<Msid> {
    sections(sdp)
        .into_iter()
        .filter(Section::sends)
        .filter_map(|s| s.msid)
        .collect()
}

fn msid(peer: &PeerId, track: &str) -> Msid {
    (peer.as_str().to_owned(), track.to_owned())
}

/// The SDP of every server offer a peer received, in order.
fn offers(peer: &TestPeer) -> Vec<String> {
    peer.state()
        .messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::SdpOffer { sdp } => Some(sdp.clone()),
            _ => None,
        })
        .collect()
}

/// A short name for a server message, for readable sequence assertions.
fn kind(m: &ServerMessage) -> &'static str {
    match m {
        ServerMessage::SdpOffer { .. } => "sdp_offer",
        ServerMessage::SdpAnswer { .. } => "sdp_answer",
        ServerMessage::TracksAdded { .. } => "tracks_added",
        ServerMessage::TracksRemoved { .. } => "tracks_removed",
        ServerMessage::PeerJoined { .. } => "peer_joined",
        ServerMessage::PeerLeft { .. } => "peer_left",
        ServerMessage::IceCandidate { .. } => "ice_candidate",
        ServerMessage::Error { .. } => "error",
        _ => "other",
    }
}

/// The peer's messages from index `from` on, without ICE candidates and without the room's
/// media notices (`active_speakers`, `layers_wanted`), which come whenever the audio levels or
/// the views change, on their own schedule, and are not part of a negotiation.
fn sequence_since(peer: &TestPeer, from: usize) -> Vec<ServerMessage> {
    peer.state().messages[from..]
        .iter()
        .filter(|m| {
            !matches!(
                m,
                ServerMessage::IceCandidate { .. }
                    | ServerMessage::ActiveSpeakers { .. }
                    | ServerMessage::LayersWanted { .. }
            )
        })
        .cloned()
        .collect()
}

/// Waits until `peer` receives `more` packets on each of `tracks` beyond what it had.
async fn wait_for_media(peer: &TestPeer, tracks: &[&str], more: usize) {
    let base: Vec<usize> = tracks.iter().map(|t| peer.received_count(t)).collect();
    for (track, base) in tracks.iter().zip(base) {
        wait_until(WAIT, &format!("{} receives {track}", peer.name), || {
            peer.received_count(track) >= base + more
        })
        .await;
    }
}

/// Alice and Bob publish audio and video; both receive each other's tracks.
async fn two_publishers(url: &str, room: &str) -> (TestPeer, TestPeer) {
    let a = TestPeer::join(url, room, "alice", PeerOptions::default()).await;
    wait_until(WAIT, "alice is sending", || {
        let state = a.state();
        state.sent.len() == 2 && state.sent.values().all(|n| *n > 10)
    })
    .await;
    let b = TestPeer::join(url, room, "bob", PeerOptions::default()).await;
    wait_for_media(&a, &["bob-mic", "bob-cam"], 20).await;
    wait_for_media(&b, &["alice-mic", "alice-cam"], 20).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tracks_published_in_one_offer_are_announced_once() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let (a, b) = two_publishers(&url, "announce").await;
    tokio::time::sleep(QUIET).await; // see QUIET: nothing else may arrive

    // Alice was alone when Bob published his microphone and camera in one offer: she got one
    // `tracks_added` with both, and one offer carrying both.
    let seq = sequence_since(&a, 1);
    let kinds: Vec<&str> = seq.iter().map(kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "tracks_added").count(),
        1,
        "alice: one tracks_added for bob's two tracks: {kinds:?}"
    );
    let added = seq
        .iter()
        .find_map(|m| match m {
            ServerMessage::TracksAdded { tracks } => Some(tracks.clone()),
            _ => None,
        })
        .expect("tracks_added");
    let mut ids: Vec<&str> = added.iter().map(|t| t.track_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["bob-cam", "bob-mic"]);
    assert!(added.iter().all(|t| t.peer_id == b.peer_id));
    let offers_a = offers(&a);
    assert_eq!(
        offers_a.len(),
        1,
        "alice: exactly one server offer for bob's publication: {kinds:?}"
    );
    assert_eq!(
        sending_tracks(&offers_a[0]),
        BTreeSet::from([msid(&b.peer_id, "bob-mic"), msid(&b.peer_id, "bob-cam")]),
    );
    // The announcement comes before the offer that carries the tracks.
    let added_at = kinds.iter().position(|k| *k == "tracks_added");
    let offered_at = kinds.iter().position(|k| *k == "sdp_offer");
    assert!(
        added_at < offered_at,
        "tracks_added before sdp_offer: {kinds:?}"
    );

    // Bob joined a room with alice's two tracks (or just before they were announced): every
    // server offer he got carried both (he may have got two: his own offer crossed the first,
    // and the glare rule re-offers).
    let offers_b = offers(&b);
    assert!(
        !offers_b.is_empty() && offers_b.len() <= 2,
        "{}",
        offers_b.len()
    );
    for offer in &offers_b {
        assert_eq!(
            sending_tracks(offer),
            BTreeSet::from([msid(&a.peer_id, "alice-mic"), msid(&a.peer_id, "alice-cam")]),
        );
    }
    let ServerMessage::Joined { tracks, .. } = &b.joined else {
        unreachable!()
    };
    let added_b: Vec<Vec<String>> = b
        .state()
        .messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::TracksAdded { tracks } => {
                let mut ids: Vec<String> = tracks.iter().map(|t| t.track_id.to_string()).collect();
                ids.sort();
                Some(ids)
            }
            _ => None,
        })
        .collect();
    if tracks.is_empty() {
        // Announced after bob joined: one announcement, both tracks.
        assert_eq!(added_b, [["alice-cam", "alice-mic"]]);
    } else {
        let mut listed: Vec<&str> = tracks.iter().map(|t| t.track_id.as_str()).collect();
        listed.sort();
        assert_eq!(listed, ["alice-cam", "alice-mic"], "joined lists both");
        assert!(added_b.is_empty(), "{added_b:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_gets_one_offer_with_every_track() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let (a, b) = two_publishers(&url, "late-offer").await;
    let (offers_a, offers_b) = (offers(&a).len(), offers(&b).len());

    let c = TestPeer::join(&url, "late-offer", "carol", PeerOptions::receive_only()).await;
    wait_until(WAIT, "carol gets a server offer", || !offers(&c).is_empty()).await;
    let every_track = BTreeSet::from([
        msid(&a.peer_id, "alice-mic"),
        msid(&a.peer_id, "alice-cam"),
        msid(&b.peer_id, "bob-mic"),
        msid(&b.peer_id, "bob-cam"),
    ]);
    let first = offers(&c).remove(0);
    assert_eq!(
        first.matches("\r\nm=").count(),
        4,
        "one media section per track:\n{first}"
    );
    assert_eq!(sending_tracks(&first), every_track, "\n{first}");

    // Carol answered (media flows on all four), and nothing changed since: no second offer.
    wait_for_media(&c, &["alice-mic", "alice-cam", "bob-mic", "bob-cam"], 20).await;
    tokio::time::sleep(QUIET).await; // see QUIET
    let kinds: Vec<&str> = sequence_since(&c, 0).iter().map(kind).collect();
    assert_eq!(
        kinds,
        ["other", "sdp_offer"],
        "carol: joined, then one offer, nothing else"
    );
    // Carol publishes nothing: alice and bob are not renegotiated.
    assert_eq!(offers(&a).len(), offers_a, "alice got no offer");
    assert_eq!(offers(&b).len(), offers_b, "bob got no offer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_yields_one_offer_without_the_departed_tracks() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let (a, b) = two_publishers(&url, "leave-offer").await;
    let c = TestPeer::join(&url, "leave-offer", "carol", PeerOptions::receive_only()).await;
    wait_for_media(&c, &["alice-mic", "alice-cam", "bob-mic", "bob-cam"], 20).await;
    tokio::time::sleep(QUIET).await; // see QUIET: every negotiation is over
    let before_a = a.state().messages.len();
    let before_c = c.state().messages.len();
    let (offers_a, offers_c) = (offers(&a).len(), offers(&c).len());

    let bob = b.peer_id.clone();
    b.leave().await;
    for (peer, offers_before) in [(&a, offers_a), (&c, offers_c)] {
        wait_until(
            WAIT,
            &format!("{} gets an offer after bob left", peer.name),
            || offers(peer).len() > offers_before,
        )
        .await;
    }
    // Both answer it (media from alice keeps reaching carol), then nothing more happens.
    wait_for_media(&c, &["alice-mic", "alice-cam"], 20).await;
    tokio::time::sleep(QUIET).await; // see QUIET

    for (peer, from, offers_before) in [(&a, before_a, offers_a), (&c, before_c, offers_c)] {
        let seq = sequence_since(peer, from);
        let kinds: Vec<&str> = seq.iter().map(kind).collect();
        assert_eq!(
            kinds,
            ["tracks_removed", "peer_left", "sdp_offer"],
            "{}: one tracks_removed, peer_left, one offer",
            peer.name
        );
        let ServerMessage::TracksRemoved { track_ids } = &seq[0] else {
            unreachable!()
        };
        let mut ids: Vec<&str> = track_ids.iter().map(|t| t.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["bob-cam", "bob-mic"], "{}", peer.name);
        assert!(matches!(&seq[1], ServerMessage::PeerLeft { peer_id } if *peer_id == bob));
        let all = offers(peer);
        assert_eq!(all.len(), offers_before + 1, "{}", peer.name);
        let offer = all.last().expect("offer");
        let sending = sending_tracks(offer);
        for track in ["bob-mic", "bob-cam"] {
            assert!(
                !sending.contains(&msid(&bob, track)),
                "{}: the offer after bob left still sends {track}:\n{offer}",
                peer.name
            );
        }
        // The previous offer sent bob's tracks; in this one (rtc 0.21) their media sections stay,
        // in place, `a=inactive` and without an msid: nothing else changed.
        let previous = sections(&all[all.len() - 2]);
        let now = sections(offer);
        assert_eq!(
            now.len(),
            previous.len(),
            "{}: media sections kept",
            peer.name
        );
        for (was, is) in previous.iter().zip(&now) {
            assert_eq!(was.mid, is.mid);
            let bobs = was
                .msid
                .as_ref()
                .is_some_and(|(stream, _)| stream == bob.as_str());
            if bobs {
                assert!(was.sends());
                assert_eq!(is.direction, "inactive", "{}: {is:?}", peer.name);
                assert_eq!(is.msid, None, "{}: {is:?}", peer.name);
            } else {
                assert_eq!(
                    (is.direction, &is.msid),
                    (was.direction, &was.msid),
                    "{}: only bob's sections change",
                    peer.name
                );
            }
        }
        assert_eq!(
            previous
                .iter()
                .filter(|s| s.msid.as_ref().is_some_and(|m| m.0 == bob.as_str()))
                .count(),
            2,
            "{}: bob's two tracks were offered before",
            peer.name
        );
    }
    // Carol still receives alice's tracks in the same offer.
    let offer = offers(&c).pop().expect("offer");
    assert_eq!(
        sending_tracks(&offer),
        BTreeSet::from([msid(&a.peer_id, "alice-mic"), msid(&a.peer_id, "alice-cam")]),
    );
}
