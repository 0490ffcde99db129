//! How client input is classified: malformed, unknown type, invalid fields, or a message.

use videoroom_protocol::{ClientMessage, ErrorCode, ParseError, ServerMessage};

#[test]
fn malformed_json_is_malformed() {
    for text in [
        "{",
        "not json",
        "[1,2]",
        "42",
        r#"{"no_type": 1}"#,
        r#"{"type": 3}"#,
    ] {
        let err = ClientMessage::parse(text).unwrap_err();
        assert!(matches!(err, ParseError::Malformed(_)), "{text}: {err:?}");
        assert_eq!(err.code(), ErrorCode::MalformedMessage);
    }
}

#[test]
fn unknown_type_is_named() {
    let err = ClientMessage::parse(r#"{"type": "teleport", "to": "mars"}"#).unwrap_err();
    assert_eq!(err, ParseError::UnknownType("teleport".into()));
    assert_eq!(err.code(), ErrorCode::UnknownMessageType);
}

#[test]
fn missing_fields_are_invalid() {
    let err = ClientMessage::parse(r#"{"type": "join", "room": "r"}"#).unwrap_err();
    assert!(matches!(err, ParseError::InvalidFields { ref kind, .. } if kind == "join"));
    assert_eq!(err.code(), ErrorCode::InvalidMessage);
}

#[test]
fn unknown_error_codes_from_a_newer_server_still_parse() {
    let msg = ServerMessage::parse(r#"{"type":"error","code":"quota_exceeded","message":"m"}"#)
        .expect("parses");
    assert_eq!(
        msg,
        ServerMessage::Error {
            code: ErrorCode::Other,
            message: "m".into()
        }
    );
}

#[test]
fn ping_id_defaults_to_zero() {
    assert_eq!(
        ClientMessage::parse(r#"{"type":"ping"}"#).expect("parses"),
        ClientMessage::Ping { id: 0 }
    );
}

#[test]
fn errors_quote_only_a_short_prefix_of_the_input() {
    let huge = "x".repeat(60_000);
    let quotes = "\\\"".repeat(20_000);
    for text in [
        format!(r#"{{"type": "{huge}"}}"#),
        format!(r#"{{"type": "update_track", "track_id": "t", "muted": "{huge}"}}"#),
        format!(r#"{{"type": "update_track", "track_id": "t", "muted": "{quotes}"}}"#),
        format!(r#"{{"type": "moderate", "peer_id": "p", "action": "{huge}"}}"#),
        format!(r#"{{"type": "ping", "id": "{huge}"}}"#),
        format!(r#"{{"type": "join", "{huge}": 1}}"#),
        format!(r#"{{"type": "ping", "id": 1, {huge}"#),
    ] {
        let err = ClientMessage::parse(&text).unwrap_err();
        let message = err.to_string();
        assert!(message.len() < 200, "{} bytes: {message}", message.len());
    }
    // What is quoted still names the culprit.
    let err = ClientMessage::parse(&format!(r#"{{"type": "tele{huge}"}}"#)).unwrap_err();
    let ParseError::UnknownType(kind) = &err else {
        panic!("{err:?}")
    };
    assert!(kind.starts_with("telexxx") && kind.ends_with('…'), "{kind}");
}
