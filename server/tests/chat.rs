//! Chat: messages to everyone and to one peer, the history a late joiner gets, and the limits
//! on text, rate and history. A refused message reaches no one.

mod common;

use common::{Member, chat, chat_to, join_all};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use videoroom_protocol::{ChatMessage, ClientMessage, ErrorCode, PeerId, ServerMessage};
use videoroom_testkit::*;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// `members[sender]` sends `message`; every member who should get it (everyone, or the sender
/// and the recipient of a private message) gets it as its very next message, identical for all.
async fn deliver(members: &mut [Member], sender: usize, message: ClientMessage) -> ChatMessage {
    let ClientMessage::Chat { to, .. } = &message else {
        panic!("not a chat message: {message:?}")
    };
    let to = to.clone();
    let from = members[sender].id.clone();
    members[sender].send(message).await;
    let mut stamped: Option<ChatMessage> = None;
    for member in members.iter_mut() {
        if to
            .as_ref()
            .is_some_and(|to| to != &member.id && from != member.id)
        {
            continue;
        }
        let got = member.next_chat().await;
        match &stamped {
            Some(first) => assert_eq!(&got, first, "{} got another version", member.name),
            None => stamped = Some(got),
        }
    }
    let stamped = stamped.expect("someone gets it");
    assert_eq!(stamped.from, from);
    assert_eq!(stamped.to, to);
    stamped
}

#[tokio::test]
async fn a_message_to_everyone_reaches_everyone_the_sender_included() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "chat-all", &["ada", "bob", "cy"]).await;
    let bob = m[1].id.clone();

    let before = unix_ms();
    let first = deliver(&mut m, 1, chat("  Slides: https://example.org/deck.pdf \n")).await;
    let after = unix_ms();
    assert_eq!(first.from, bob);
    assert_eq!(first.from_name, "bob");
    assert_eq!(first.text, "Slides: https://example.org/deck.pdf");
    assert_eq!(first.to, None);
    assert!(
        (before..=after).contains(&first.sent_at),
        "sent_at {} not within {before}..={after}",
        first.sent_at
    );

    let second = deliver(&mut m, 2, chat("Thanks!")).await;
    assert_eq!(second.from_name, "cy");
    assert!(
        second.id > first.id,
        "ids increase: {second:?} after {first:?}"
    );
    assert!(second.sent_at >= first.sent_at);
}

#[tokio::test]
async fn a_private_message_reaches_only_its_sender_and_recipient() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "chat-private", &["ada", "bob", "cy"]).await;
    let (ada, bob) = (m[0].id.clone(), m[1].id.clone());

    // `deliver` reads it from ada and bob only.
    let private = deliver(&mut m, 0, chat_to("Can you share your screen next?", &bob)).await;
    assert_eq!(private.to, Some(bob.clone()));
    assert_eq!(private.from, ada);
    assert_eq!(private.text, "Can you share your screen next?");
    let reply = deliver(&mut m, 1, chat_to("Sure", &ada)).await;
    assert!(reply.id > private.id);

    // Cy got neither: the next thing cy gets is a later public message.
    let public = deliver(&mut m, 1, chat("Sharing now")).await;
    assert_eq!(public.to, None);
    assert!(public.id > reply.id);
}

#[tokio::test]
async fn a_late_joiner_gets_the_history_in_order_without_private_messages() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "chat-history", &["ada", "bob"]).await;
    let ada = m[0].id.clone();

    let one = deliver(&mut m, 0, chat("Agenda in the doc")).await;
    deliver(&mut m, 1, chat_to("psst, not for the record", &ada)).await;
    let two = deliver(&mut m, 1, chat("Line one\nline two")).await;
    let three = deliver(&mut m, 0, chat("Let's start")).await;
    let kept = vec![one, two, three];

    let cy = Member::join(&url, "chat-history", "cy").await;
    assert_eq!(cy.joined.chat_history, kept);

    // The history outlives its senders' presence (with the names they had).
    let mut bob = m.pop().expect("bob");
    bob.send(ClientMessage::Leave).await;
    m[0].recv_until(|msg| matches!(msg, ServerMessage::PeerLeft { .. }))
        .await;
    let dan = Member::join(&url, "chat-history", "dan").await;
    assert_eq!(dan.joined.chat_history, kept);
}

#[tokio::test]
async fn chat_text_limits_are_enforced_and_refused_messages_reach_no_one() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "chat-limits", &["ada", "bob"]).await;
    let bob = m[1].id.clone();

    let longest = "x".repeat(4096);
    let accented = "é".repeat(2048); // 4096 bytes
    for (sent, kept) in [
        (format!(" \n {longest}\t \n"), longest.clone()),
        (accented.clone(), accented.clone()),
        (
            "Two\nlines\tand a tab".to_owned(),
            "Two\nlines\tand a tab".to_owned(),
        ),
    ] {
        let stamped = deliver(&mut m, 0, chat(&sent)).await;
        assert_eq!(stamped.text, kept);
    }

    let refused = [
        (chat(&format!("{longest}x")), ErrorCode::MessageTooLong),
        (chat(&format!("{accented}x")), ErrorCode::MessageTooLong),
        (
            chat_to(&format!("{longest}x"), &bob),
            ErrorCode::MessageTooLong,
        ),
        (chat(""), ErrorCode::InvalidMessage),
        (chat(" \n\t  "), ErrorCode::InvalidMessage),
        (chat_to("   ", &bob), ErrorCode::InvalidMessage),
        (chat("ring \u{7} ring"), ErrorCode::InvalidMessage),
        (chat("\u{1b}[31mred"), ErrorCode::InvalidMessage),
        (chat("nul\u{0}"), ErrorCode::InvalidMessage),
        (chat("delete\u{7f}"), ErrorCode::InvalidMessage),
    ];
    for (message, code) in refused {
        m[0].send(message).await;
        m[0].expect_error(code).await;
    }
    // Bob got none of them: his next message is the next accepted one.
    let after = deliver(&mut m, 0, chat("After the refusals")).await;
    assert_eq!(after.text, "After the refusals");
}

#[tokio::test]
async fn a_message_to_someone_not_in_the_room_is_refused() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "chat-unknown", &["ada", "bob", "cy"]).await;
    let mut elsewhere = Member::join(&url, "another-room", "dan").await;
    let mut cy = m.pop().expect("cy");
    cy.send(ClientMessage::Leave).await;
    for member in &mut m {
        assert_eq!(
            member.recv().await,
            ServerMessage::PeerLeft {
                peer_id: cy.id.clone()
            }
        );
    }

    for to in [
        PeerId::new("p-999999-00000000"),
        cy.id.clone(), // left
        elsewhere.id.clone(),
    ] {
        m[0].send(chat_to("Are you there?", &to)).await;
        m[0].expect_error(ErrorCode::UnknownPeer).await;
    }
    elsewhere.expect_nothing_pending().await;
    // Bob got nothing either: his next message is the next accepted one.
    deliver(&mut m, 0, chat("Anyone?")).await;
}

#[tokio::test]
async fn a_burst_of_ten_passes_then_the_rate_limit_refuses() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut m = join_all(&url, "chat-rate", &["ada", "bob"]).await;

    let t0 = tokio::time::Instant::now();
    for i in 0..12 {
        m[0].say(&format!("burst {i}")).await;
    }
    let mut passed = Vec::new();
    for i in 0..10 {
        let echo = m[0].next_chat().await;
        assert_eq!(echo.text, format!("burst {i}"));
        passed.push(echo);
    }
    m[0].expect_error(ErrorCode::RateLimited).await;
    m[0].expect_error(ErrorCode::RateLimited).await;
    // Raising a hand shares the limit.
    m[0].send(ClientMessage::RaiseHand { raised: true }).await;
    m[0].expect_error(ErrorCode::RateLimited).await;

    // Bob saw exactly the ten: then comes his own message.
    for sent in &passed {
        assert_eq!(&m[1].next_chat().await, sent);
    }
    deliver(&mut m, 1, chat("Bob's turn")).await;

    // One more a second after the burst began, and not two.
    let refilled = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "still rate limited 5 s after the burst"
        );
        m[0].say("later").await;
        match m[0].recv().await {
            ServerMessage::Chat { message } => {
                assert_eq!(message.text, "later");
                break t0.elapsed();
            }
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("expected chat or rate_limited, got {other:?}"),
        }
    };
    assert!(
        refilled >= Duration::from_millis(900),
        "the 11th message passed {refilled:?} after the burst"
    );
    m[0].say("too soon").await;
    m[0].expect_error(ErrorCode::RateLimited).await;
}

/// Posts `texts` in order from a relay of senders: each joins, sends at most a burst (10),
/// reads its echoes, and leaves once the next sender is in, so the room stays open and no
/// one hits the rate limit. Returns the stamped messages and the last sender, still present.
async fn post_in_relay(url: &str, room: &str, texts: &[String]) -> (Vec<ChatMessage>, Member) {
    let mut stamped = Vec::new();
    let mut current: Option<Member> = None;
    for (n, batch) in texts.chunks(10).enumerate() {
        let mut sender = Member::join(url, room, &format!("sender {n}")).await;
        if let Some(mut previous) = current.take() {
            previous.send(ClientMessage::Leave).await;
        }
        for text in batch {
            sender.say(text).await;
        }
        for text in batch {
            let ServerMessage::Chat { message } = sender
                .recv_until(|m| matches!(m, ServerMessage::Chat { .. }))
                .await
            else {
                unreachable!()
            };
            assert_eq!(&message.text, text);
            assert_eq!(message.from, sender.id);
            stamped.push(message);
        }
        current = Some(sender);
    }
    (stamped, current.expect("at least one message"))
}

#[tokio::test]
async fn the_history_keeps_the_last_200_messages() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let texts: Vec<String> = (0..210).map(|i| format!("message {i}")).collect();
    let (stamped, _last) = post_in_relay(&url, "chat-long", &texts).await;

    let late = Member::join(&url, "chat-long", "late").await;
    let history = &late.joined.chat_history;
    assert_eq!(history.len(), 200);
    assert_eq!(history[..], stamped[10..]);
}

#[tokio::test]
async fn the_history_keeps_at_most_256_kib_of_text() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    // 65 messages of 4 KiB: the newest 64 are exactly 256 KiB.
    let texts: Vec<String> = (0..65)
        .map(|i| format!("{i:04}{}", "y".repeat(4092)))
        .collect();
    let (stamped, _last) = post_in_relay(&url, "chat-big", &texts).await;

    let late = Member::join(&url, "chat-big", "late").await;
    let history = &late.joined.chat_history;
    let bytes: usize = history.iter().map(|m| m.text.len()).sum();
    assert_eq!(bytes, 256 * 1024);
    assert_eq!(history[..], stamped[1..]);
}
