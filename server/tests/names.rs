//! Display and room names: text-direction controls, invisible names and lookalike tricks are
//! refused with `invalid_display_name` / `invalid_room_name` and a message a person can act on;
//! names are stored and shown in NFC; the length limit counts what a person sees.

use videoroom_protocol::{ClientMessage, ErrorCode, ServerMessage};
use videoroom_testkit::*;

/// The code and message of a `join_error`; panics on anything else.
fn join_error(m: ServerMessage) -> (ErrorCode, String) {
    match m {
        ServerMessage::JoinError { code, message } => (code, message),
        other => panic!("expected join_error, got {other:?}"),
    }
}

const FAMILY: &str = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";

#[tokio::test]
async fn bad_display_names_are_refused_with_a_clear_message() {
    let server = start_server(test_config()).await;
    let mut c = RawClient::connect(&ws_url(&server)).await;
    let too_long = "\u{e9}".repeat(65);
    let zalgo = format!("x{}", "\u{301}".repeat(20));
    for (name, says) in [
        ("admin\u{202e}gnp.exe", "text-direction control characters"),
        ("\u{202d}ada", "text-direction control characters"),
        ("ada\u{2066}", "text-direction control characters"),
        ("a\u{200f}b", "text-direction control characters"),
        ("a\u{61c}b", "text-direction control characters"),
        ("\u{200b}", "invisible characters"),
        ("\u{2060}\u{2060}", "invisible characters"),
        ("\u{feff}", "invisible characters"),
        ("\u{3164}", "invisible characters"),
        ("ad\u{200b}min", "invisible characters"),
        ("\u{115f}\u{1160}", "nothing visible"),
        ("\u{2800}", "nothing visible"),
        ("\u{301}\u{308}", "nothing visible"),
        ("\u{200d}", "nothing visible"),
        ("   ", "must not be empty"),
        ("ada\u{2028}admin", "line breaks"),
        (too_long.as_str(), "65 characters long; at most 64"),
        (zalgo.as_str(), "too many marks"),
    ] {
        let (code, message) = join_error(c.join("names", name).await);
        assert_eq!(code, ErrorCode::InvalidDisplayName, "{name:?}: {message}");
        assert!(message.contains(says), "{name:?}: {message}");
        assert!(message.len() < 300, "{name:?}: {message}");
    }
    // The refused connection joins with a good name.
    assert!(matches!(
        c.join("names", "Ada").await,
        ServerMessage::Joined { .. }
    ));
}

#[tokio::test]
async fn bad_room_names_are_refused() {
    let server = start_server(test_config()).await;
    let mut c = RawClient::connect(&ws_url(&server)).await;
    for (room, says) in [
        ("stand\u{202e}up", "text-direction control characters"),
        ("\u{200b}", "invisible characters"),
        ("\u{2800}\u{2800}", "nothing visible"),
    ] {
        let (code, message) = join_error(c.join(room, "ada").await);
        assert_eq!(code, ErrorCode::InvalidRoomName, "{room:?}: {message}");
        assert!(message.contains(says), "{room:?}: {message}");
    }
    // 64 family emoji are 64 characters a person sees: a valid room name.
    assert!(matches!(
        c.join(&FAMILY.repeat(64), "ada").await,
        ServerMessage::Joined { .. }
    ));
}

#[tokio::test]
async fn names_are_stored_and_shown_in_nfc() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut observer = RawClient::connect(&url).await;
    // "Café" typed with a combining accent: the same room as the precomposed one.
    assert!(matches!(
        observer.join("Cafe\u{301}", "observer").await,
        ServerMessage::Joined { .. }
    ));
    let mut c = RawClient::connect(&url).await;
    let ServerMessage::Joined {
        peer_id,
        room,
        peers,
        ..
    } = c.join("Caf\u{e9}", "e\u{301}").await
    else {
        panic!("join")
    };
    assert_eq!(room.as_str(), "Caf\u{e9}");
    assert_eq!(peers.len(), 1, "the same room: {peers:?}");
    let joined = observer
        .recv_until(|m| matches!(m, ServerMessage::PeerJoined { .. }))
        .await;
    let ServerMessage::PeerJoined { peer } = joined else {
        unreachable!()
    };
    assert_eq!(peer.peer_id, peer_id);
    assert_eq!(peer.display_name, "\u{e9}", "stored and broadcast in NFC");

    // A rename is normalized too.
    c.send(&ClientMessage::UpdatePeer {
        display_name: Some("Zoe\u{308}".into()),
        metadata: None,
    })
    .await;
    let updated = observer
        .recv_until(|m| matches!(m, ServerMessage::PeerUpdated { .. }))
        .await;
    let ServerMessage::PeerUpdated { peer } = updated else {
        unreachable!()
    };
    assert_eq!(peer.display_name, "Zo\u{eb}");

    // A rename to a bidi trick is refused and changes nothing.
    c.send(&ClientMessage::UpdatePeer {
        display_name: Some("admin\u{202e}gnp.exe".into()),
        metadata: None,
    })
    .await;
    let refused = c
        .recv_until(|m| matches!(m, ServerMessage::Error { .. }))
        .await;
    let ServerMessage::Error { code, message } = refused else {
        unreachable!()
    };
    assert_eq!(code, ErrorCode::InvalidDisplayName);
    assert!(
        message.contains("text-direction control characters"),
        "{message}"
    );
}

#[tokio::test]
async fn sixteen_family_emoji_fit_and_65_accented_letters_do_not() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let mut observer = RawClient::connect(&url).await;
    assert!(matches!(
        observer.join("emoji", "observer").await,
        ServerMessage::Joined { .. }
    ));
    let mut c = RawClient::connect(&url).await;
    let families = FAMILY.repeat(16);
    assert_eq!(families.chars().count(), 16 * 7);
    assert!(matches!(
        c.join("emoji", &families).await,
        ServerMessage::Joined { .. }
    ));
    let ServerMessage::PeerJoined { peer } = observer
        .recv_until(|m| matches!(m, ServerMessage::PeerJoined { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(peer.display_name, families);

    let mut d = RawClient::connect(&url).await;
    let (code, message) = join_error(d.join("emoji", &"e\u{301}".repeat(65)).await);
    assert_eq!(code, ErrorCode::InvalidDisplayName);
    assert!(message.contains("at most 64"), "{message}");
    assert!(matches!(
        d.join("emoji", &"e\u{301}".repeat(64)).await,
        ServerMessage::Joined { .. }
    ));
}
