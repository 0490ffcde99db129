//! Moderation: the first participant moderates; only a moderator lowers hands, removes, locks
//! and ends the meeting; the grant passes to the longest present when the moderator leaves.
//! (Muting by a moderator, which needs real media, is in `moderator_mute.rs`.)

mod common;

use common::{Member, join_all, join_more, join_with_token};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use videoroom_protocol::{
    ClientMessage, ErrorCode, ModerationAction, PeerId, PeerInfo, ServerMessage,
};
use videoroom_testkit::*;

const ACTIONS: [ModerationAction; 4] = [
    ModerationAction::MuteMicrophone,
    ModerationAction::StopCamera,
    ModerationAction::StopScreen,
    ModerationAction::LowerHand,
];

fn moderate(target: &PeerId, action: ModerationAction) -> ClientMessage {
    ClientMessage::Moderate {
        peer_id: target.clone(),
        action,
    }
}

fn remove(target: &PeerId, reason: Option<&str>) -> ClientMessage {
    ClientMessage::RemovePeer {
        peer_id: target.clone(),
        reason: reason.map(str::to_owned),
    }
}

fn lock(locked: bool) -> ClientMessage {
    ClientMessage::LockRoom { locked }
}

fn raise_hand(raised: bool) -> ClientMessage {
    ClientMessage::RaiseHand { raised }
}

/// The next message, which must be `peer_updated`.
async fn next_peer_update(member: &mut Member) -> PeerInfo {
    match member.recv().await {
        ServerMessage::PeerUpdated { peer } => peer,
        other => panic!("{}: expected peer_updated, got {other:?}", member.name),
    }
}

/// Everyone in `members` gets `peer_joined` for `id` called `name`.
async fn all_see_joined(members: &mut [Member], id: PeerId, name: &str) {
    let peer = PeerInfo::new(id, name);
    all_get(members, &ServerMessage::PeerJoined { peer }).await;
}

/// Everyone in `members` gets `peer_left` for `peer_id`.
async fn all_see_left(members: &mut [Member], peer_id: PeerId) {
    all_get(members, &ServerMessage::PeerLeft { peer_id }).await;
}

/// Every member's next message is `expected`.
async fn all_get(members: &mut [Member], expected: &ServerMessage) {
    for member in members {
        assert_eq!(&member.recv().await, expected, "{}", member.name);
    }
}

/// Every member's next message is `peer_updated` for `who`; returns what they saw (the same).
async fn all_see_update(members: &mut [Member], who: &PeerId) -> PeerInfo {
    let mut seen: Option<PeerInfo> = None;
    for member in members {
        let peer = next_peer_update(member).await;
        assert_eq!(&peer.peer_id, who, "{}", member.name);
        match &seen {
            Some(first) => assert_eq!(&peer, first, "{}", member.name),
            None => seen = Some(peer),
        }
    }
    seen.expect("members")
}

#[tokio::test]
async fn the_first_participant_is_the_moderator() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let m = join_all(&url, "mod-first", &["ada", "bob", "cy"]).await;
    assert!(m[0].joined.moderator);
    assert!(!m[1].joined.moderator);
    assert!(!m[2].joined.moderator);
    assert!(m.iter().all(|member| !member.joined.locked));

    let peers = &m[2].joined.peers;
    let seen: Vec<(&PeerId, bool)> = peers.iter().map(|p| (&p.peer_id, p.moderator)).collect();
    assert_eq!(seen, [(&m[0].id, true), (&m[1].id, false)]);
    assert!(peers.iter().all(|p| p.hand_raised_at.is_none()));
}

#[tokio::test]
async fn a_non_moderator_is_refused_every_action_and_nothing_changes() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "mod-refusals", &["ada", "bob", "cy"]).await;
    let (ada, cy) = (m[0].id.clone(), m[2].id.clone());
    // Cy's hand is up, so that lowering it would change something.
    m[2].send(raise_hand(true)).await;
    let cy_before = all_see_update(&mut m, &cy).await;
    assert!(cy_before.hand_raised_at.is_some());

    let mut refused = Vec::new();
    for target in [&cy, &ada] {
        refused.extend(ACTIONS.map(|action| moderate(target, action)));
        refused.push(remove(target, Some("Bye")));
    }
    refused.extend([lock(true), lock(false), ClientMessage::EndMeeting]);
    for message in refused {
        m[1].send(message.clone()).await;
        match m[1].recv().await {
            ServerMessage::Error {
                code: ErrorCode::NotModerator,
                ..
            } => {}
            other => panic!("{message:?}: expected not_moderator, got {other:?}"),
        }
    }

    // Nobody was told anything: everyone's next message is a later chat.
    m[0].say("Still here").await;
    for member in &mut m {
        assert_eq!(member.next_chat().await.text, "Still here");
    }
    // A newcomer finds the room as it was: open, ada moderating, cy's hand up.
    let dan = Member::join(&url, "mod-refusals", "dan").await;
    assert!(!dan.joined.locked);
    assert!(!dan.joined.moderator);
    let expected: Vec<PeerInfo> = vec![
        PeerInfo {
            moderator: true,
            ..PeerInfo::new(ada, "ada")
        },
        PeerInfo::new(m[1].id.clone(), "bob"),
        cy_before,
    ];
    assert_eq!(dan.joined.peers, expected);
}

#[tokio::test]
async fn the_moderator_lowers_a_raised_hand() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "mod-hand", &["ada", "bob", "cy"]).await;
    let (ada, bob) = (m[0].id.clone(), m[1].id.clone());
    m[1].send(raise_hand(true)).await;
    assert!(all_see_update(&mut m, &bob).await.hand_raised_at.is_some());

    m[0].send(moderate(&bob, ModerationAction::LowerHand)).await;
    let lowered = all_see_update(&mut m, &bob).await;
    assert_eq!(lowered, PeerInfo::new(bob.clone(), "bob"));
    assert_eq!(
        m[1].recv().await,
        ServerMessage::Moderated {
            action: ModerationAction::LowerHand,
            by: ada
        }
    );
    for member in &mut m {
        member.expect_nothing_pending().await;
    }
}

#[tokio::test]
async fn the_moderator_removes_a_participant_who_may_join_again() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "mod-remove", &["ada", "bob", "cy"]).await;
    let ada = m[0].id.clone();
    let reason = "Please join the other room";
    let mut bob = m.remove(1);
    m[0].send(remove(&bob.id, Some(reason))).await;

    assert_eq!(
        bob.recv().await,
        ServerMessage::Removed {
            by: ada,
            reason: Some(reason.to_owned())
        }
    );
    let bob_closed = bob.read_to_close().await;
    all_see_left(&mut m, bob.id.clone()).await;

    // The room is unlocked: bob may come back (as a new peer).
    let back = Member::join(&url, "mod-remove", "bob").await;
    assert_ne!(back.id, bob.id);
    assert!(!back.joined.moderator);
    let joined = ServerMessage::PeerJoined {
        peer: PeerInfo::new(back.id.clone(), "bob"),
    };
    all_get(&mut m, &joined).await;

    // Checked last so the rest runs even if it fails: `removed` is followed by the close (1000).
    assert_eq!(
        bob_closed,
        (Some(CloseCode::Normal), vec![]),
        "after `removed` the socket closes with 1000 (close code, messages in between)"
    );
}

#[tokio::test]
async fn a_locked_room_refuses_joins_until_unlocked() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "mod-lock", &["ada", "bob"]).await;
    let ada = m[0].id.clone();
    m[0].send(lock(true)).await;
    let locked = ServerMessage::RoomUpdated {
        locked: true,
        by: Some(ada.clone()),
    };
    all_get(&mut m, &locked).await;

    let mut cy = RawClient::connect(&url).await;
    cy.send(&join_with_token("mod-lock", "cy", None)).await;
    match cy.recv().await {
        ServerMessage::JoinError {
            code: ErrorCode::RoomLocked,
            message,
        } => assert!(message.contains("locked"), "{message}"),
        other => panic!("expected join_error room_locked, got {other:?}"),
    }
    for member in &mut m {
        member.expect_nothing_pending().await;
    }

    m[0].send(lock(false)).await;
    let unlocked = ServerMessage::RoomUpdated {
        locked: false,
        by: Some(ada),
    };
    all_get(&mut m, &unlocked).await;
    // The refused connection may join now.
    cy.send(&join_with_token("mod-lock", "cy", None)).await;
    let joined = cy.recv().await;
    let cy = Member::new(cy, "cy", joined);
    assert!(!cy.joined.locked);
    all_see_joined(&mut m, cy.id.clone(), "cy").await;
}

#[tokio::test]
async fn a_lost_connection_rejoins_a_locked_room_with_its_resume_token() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "mod-resume", &["ada", "bob", "cy"]).await;
    let ada = m[0].id.clone();
    let bob_token = m[1].joined.resume_token.clone();
    let cy_token = m[2].joined.resume_token.clone();
    assert!(!bob_token.is_empty());
    assert_ne!(bob_token, cy_token);
    m[0].send(lock(true)).await;
    all_get(
        &mut m,
        &ServerMessage::RoomUpdated {
            locked: true,
            by: Some(ada.clone()),
        },
    )
    .await;

    // Bob's connection is lost: the socket goes without `leave`.
    let bob = m.remove(1);
    let bob_id = bob.id.clone();
    drop(bob);
    all_see_left(&mut m, bob_id.clone()).await;
    // Cy is removed: its token is void.
    let mut cy = m.remove(1);
    m[0].send(remove(&cy.id, None)).await;
    assert_eq!(
        cy.recv().await,
        ServerMessage::Removed {
            by: ada.clone(),
            reason: None
        }
    );
    cy.read_to_close().await;
    all_see_left(&mut m, cy.id.clone()).await;

    for token in [None, Some("0".repeat(32)), Some(cy_token)] {
        match Member::try_join(&url, "mod-resume", "someone", token.clone()).await {
            Err(ErrorCode::RoomLocked) => {}
            Err(other) => panic!("token {token:?}: expected room_locked, got {other:?}"),
            Ok(_) => panic!("token {token:?}: admitted to a locked room"),
        }
    }
    let back = Member::try_join(&url, "mod-resume", "bob", Some(bob_token))
        .await
        .expect("bob's resume token lets him back in");
    assert!(back.joined.locked);
    assert!(!back.joined.moderator);
    assert_ne!(back.id, bob_id);
    all_see_joined(&mut m, back.id.clone(), "bob").await;
}

#[tokio::test]
async fn ending_the_meeting_disconnects_everyone_and_closes_the_room() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "mod-end", &["ada", "bob", "cy"]).await;
    let ada = m[0].id.clone();
    m[1].say("Before the end").await;
    for member in &mut m {
        member.next_chat().await;
    }
    m[0].send(lock(true)).await;
    all_get(
        &mut m,
        &ServerMessage::RoomUpdated {
            locked: true,
            by: Some(ada.clone()),
        },
    )
    .await;

    m[0].send(ClientMessage::EndMeeting).await;
    all_get(&mut m, &ServerMessage::MeetingEnded { by: ada }).await;
    let mut closes = Vec::new();
    for member in &mut m {
        closes.push((member.name.clone(), member.read_to_close().await));
    }
    wait_until(WAIT, "the room closes", || server.room_count() == 0).await;

    // A later join opens a fresh room: unlocked, no history, the joiner moderates.
    let dan = Member::join(&url, "mod-end", "dan").await;
    assert!(dan.joined.moderator);
    assert!(!dan.joined.locked);
    assert!(dan.joined.peers.is_empty());
    assert!(dan.joined.chat_history.is_empty());

    // Checked last so the rest runs even if it fails: the close (1000) follows `meeting_ended`.
    let expected = (Some(CloseCode::Normal), vec![]);
    let wrong: Vec<_> = closes.iter().filter(|(_, c)| c != &expected).collect();
    assert!(
        wrong.is_empty(),
        "after `meeting_ended` each socket closes with 1000, nothing in between; \
         (name, (close code, messages in between)): {wrong:?}"
    );
}

/// The counter in today's peer ids (`p-<counter>-<run>`), if they still look like that.
fn id_counter(id: &PeerId) -> Option<u64> {
    id.as_str().split('-').nth(1)?.parse().ok()
}

#[tokio::test]
async fn the_grant_passes_to_the_participant_present_longest() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "mod-handover", &["ada"]).await;
    // Use up ids so that bob gets p-9 and cy p-10: bob's id sorts after cy's, and only the
    // join order can pick bob.
    let mut fillers = Vec::new();
    let mut last = m[0].id.clone();
    while id_counter(&last).is_some_and(|n| n < 8) {
        let filler = Member::join(&url, &format!("filler-{}", fillers.len()), "filler").await;
        last = filler.id.clone();
        fillers.push(filler);
    }
    join_more(&mut m, &url, "mod-handover", &["bob", "cy"]).await;
    let (ada, bob, cy) = (m[0].id.clone(), m[1].id.clone(), m[2].id.clone());

    m[0].send(ClientMessage::Leave).await;
    m.remove(0);
    all_see_left(&mut m, ada).await;
    let granted = all_see_update(&mut m, &bob).await;
    assert_eq!(
        granted,
        PeerInfo {
            moderator: true,
            ..PeerInfo::new(bob.clone(), "bob")
        },
        "bob (joined before cy, id {bob}) moderates, not cy (id {cy})"
    );

    // Bob may moderate now; cy still may not.
    m[0].send(lock(true)).await;
    all_get(
        &mut m,
        &ServerMessage::RoomUpdated {
            locked: true,
            by: Some(bob.clone()),
        },
    )
    .await;
    m[1].send(lock(false)).await;
    m[1].expect_error(ErrorCode::NotModerator).await;
    m[0].send(lock(false)).await;
    all_get(
        &mut m,
        &ServerMessage::RoomUpdated {
            locked: false,
            by: Some(bob.clone()),
        },
    )
    .await;
    let dan = Member::join(&url, "mod-handover", "dan").await;
    assert!(!dan.joined.moderator);
    let seen: Vec<(&PeerId, bool)> = dan
        .joined
        .peers
        .iter()
        .map(|p| (&p.peer_id, p.moderator))
        .collect();
    assert_eq!(seen, [(&bob, true), (&cy, false)]);
}

#[tokio::test]
async fn raised_hands_are_stamped_in_order() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "mod-hands", &["ada", "bob", "cy"]).await;
    let ids: Vec<PeerId> = m.iter().map(|member| member.id.clone()).collect();

    // One after the other: cy, ada, bob.
    let mut stamps = Vec::new();
    for who in [2, 0, 1] {
        m[who].send(raise_hand(true)).await;
        let peer = all_see_update(&mut m, &ids[who]).await;
        stamps.push(peer.hand_raised_at.expect("hand raised"));
    }
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "stamps in raise order (cy, ada, bob): {stamps:?}"
    );
    // A newcomer sees the same stamps.
    let dan = Member::join(&url, "mod-hands", "dan").await;
    for member in &mut m {
        member
            .recv_until(|msg| matches!(msg, ServerMessage::PeerJoined { .. }))
            .await;
    }
    let seen: Vec<Option<u64>> = dan.joined.peers.iter().map(|p| p.hand_raised_at).collect();
    assert_eq!(seen, [Some(stamps[1]), Some(stamps[2]), Some(stamps[0])]);

    // Lowering clears the stamp; raising again goes to the back of the queue.
    m[0].send(raise_hand(false)).await;
    let lowered = all_see_update(&mut m, &ids[0]).await;
    assert_eq!(lowered.hand_raised_at, None);
    m[0].send(raise_hand(true)).await;
    let again = all_see_update(&mut m, &ids[0]).await;
    assert!(again.hand_raised_at.expect("raised") > stamps[2]);

    // Hands raised at once (most likely within the same millisecond) still get distinct,
    // increasing stamps, in the order the server took them.
    for who in 0..3 {
        m[who].send(raise_hand(false)).await;
        all_see_update(&mut m, &ids[who]).await;
    }
    for member in &mut m {
        member.send(raise_hand(true)).await;
    }
    let mut order: Option<Vec<(PeerId, u64)>> = None;
    for member in &mut m {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let peer = next_peer_update(member).await;
            seen.push((peer.peer_id, peer.hand_raised_at.expect("raised")));
        }
        match &order {
            Some(first) => assert_eq!(&seen, first, "{}", member.name),
            None => order = Some(seen),
        }
    }
    let order = order.expect("members");
    assert!(
        order.windows(2).all(|w| w[0].1 < w[1].1),
        "stamps increase in the order the hands were taken: {order:?}"
    );
}

#[tokio::test]
async fn acting_on_someone_not_in_the_room_is_refused() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "mod-unknown", &["ada", "bob"]).await;
    let mut elsewhere = Member::join(&url, "another-room", "eve").await;
    let mut bob = m.remove(1);
    bob.send(ClientMessage::Leave).await;
    all_see_left(&mut m, bob.id.clone()).await;

    for target in [
        PeerId::new("p-999999-00000000"),
        bob.id.clone(), // left
        elsewhere.id.clone(),
    ] {
        for message in ACTIONS
            .map(|action| moderate(&target, action))
            .into_iter()
            .chain([remove(&target, Some("Bye"))])
        {
            m[0].send(message.clone()).await;
            match m[0].recv().await {
                ServerMessage::Error {
                    code: ErrorCode::UnknownPeer,
                    ..
                } => {}
                other => panic!("{message:?}: expected unknown_peer, got {other:?}"),
            }
        }
    }
    elsewhere.expect_nothing_pending().await;
    m[0].expect_nothing_pending().await;
}

#[tokio::test]
async fn a_removed_person_cannot_come_back_with_an_earlier_sessions_token() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "mod-revoke", &["ada", "bob"]).await;
    let ada = m[0].id.clone();
    // Bob's connection blips while the room is open: he comes back with his first token.
    let bob = m.remove(1);
    let (first_id, first_token) = (bob.id.clone(), bob.joined.resume_token.clone());
    drop(bob);
    all_see_left(&mut m, first_id).await;
    let mut bob = Member::try_join(&url, "mod-revoke", "bob", Some(first_token.clone()))
        .await
        .expect("an open room lets bob back in");
    let second_token = bob.joined.resume_token.clone();
    m[0].recv_until(|msg| matches!(msg, ServerMessage::PeerJoined { .. }))
        .await;
    // Removed, then the room locked: neither of his tokens opens it.
    m[0].send(remove(&bob.id, Some("not today"))).await;
    bob.recv_until(|msg| matches!(msg, ServerMessage::Removed { .. }))
        .await;
    bob.read_to_close().await;
    m[0].send(lock(true)).await;
    m[0].recv_until(|msg| matches!(msg, ServerMessage::RoomUpdated { locked: true, .. }))
        .await;
    for token in [first_token, second_token] {
        match Member::try_join(&url, "mod-revoke", "bob", Some(token)).await {
            Err(ErrorCode::RoomLocked) => {}
            Err(other) => panic!("expected room_locked, got {other:?}"),
            Ok(_) => panic!("a removed person got back into the locked room"),
        }
    }
    assert_eq!(m[0].id, ada);
}
