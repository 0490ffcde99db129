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
