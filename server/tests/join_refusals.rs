//! Joins that are refused: full rooms, bad names, wrong protocol version. The connection stays
//! open and can join elsewhere.

use videoroom_protocol::{ClientMessage, ErrorCode, RoomName, ServerMessage};
use videoroom_testkit::*;

fn join_error_code(m: &ServerMessage) -> ErrorCode {
    match m {
        ServerMessage::JoinError { code, message } => {
            assert!(!message.is_empty());
            *code
        }
        other => panic!("expected join_error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_full_room_refuses_and_others_stay_open() {
    let mut config = test_config();
    config.max_peers_per_room = 2;
    let server = start_server(config).await;
    let url = ws_url(&server);
    let mut a = RawClient::connect(&url).await;
    let mut b = RawClient::connect(&url).await;
    let mut c = RawClient::connect(&url).await;
    assert!(matches!(
        a.join("small", "a").await,
        ServerMessage::Joined { .. }
    ));
    assert!(matches!(
        b.join("small", "b").await,
        ServerMessage::Joined { .. }
    ));
    let refused = c.join("small", "c").await;
    assert_eq!(join_error_code(&refused), ErrorCode::RoomFull);
    let ServerMessage::JoinError { message, .. } = refused else {
        unreachable!()
    };
    assert!(message.contains("full"), "{message}");
    // The refused connection can join another room.
    assert!(matches!(
        c.join("other", "c").await,
        ServerMessage::Joined { .. }
    ));
    // And once someone leaves, the full room takes a new peer.
    b.send(&ClientMessage::Leave).await;
    a.recv_until(|m| matches!(m, ServerMessage::PeerLeft { .. }))
        .await;
    let mut d = RawClient::connect(&url).await;
    assert!(matches!(
        d.join("small", "d").await,
        ServerMessage::Joined { .. }
    ));
}

#[tokio::test]
async fn invalid_names_and_versions_are_refused() {
    let server = start_server(test_config()).await;
    let mut c = RawClient::connect(&ws_url(&server)).await;
    let long = "x".repeat(65);
    for (room, name, code) in [
        ("", "ada", ErrorCode::InvalidRoomName),
        ("   ", "ada", ErrorCode::InvalidRoomName),
        (long.as_str(), "ada", ErrorCode::InvalidRoomName),
        ("tab\there", "ada", ErrorCode::InvalidRoomName),
        ("ok", "", ErrorCode::InvalidDisplayName),
        ("ok", "line\nbreak", ErrorCode::InvalidDisplayName),
        ("ok", long.as_str(), ErrorCode::InvalidDisplayName),
    ] {
        let m = c.join(room, name).await;
        assert_eq!(join_error_code(&m), code, "room {room:?} name {name:?}");
    }
    c.send(&ClientMessage::Join {
        protocol_version: 99,
        room: RoomName::new("ok"),
        display_name: "ada".into(),
        metadata: None,
        resume_token: None,
        token: None,
    })
    .await;
    assert_eq!(
        join_error_code(&c.recv().await),
        ErrorCode::UnsupportedVersion
    );
    c.send(&ClientMessage::Join {
        protocol_version: videoroom_protocol::PROTOCOL_VERSION,
        room: RoomName::new("ok"),
        display_name: "ada".into(),
        metadata: Some(serde_json::json!({"blob": "x".repeat(5000)})),
        resume_token: None,
        token: None,
    })
    .await;
    assert_eq!(join_error_code(&c.recv().await), ErrorCode::InvalidMessage);
    assert!(matches!(
        c.join("ok", "ada").await,
        ServerMessage::Joined { .. }
    ));
}
