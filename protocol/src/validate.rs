//! Validation of names and ids that arrive from the network.

use crate::{ErrorCode, RoomName, TrackId};

/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 64;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest track id, in characters.
pub const MAX_TRACK_ID_CHARS: usize = 128;
/// Largest `metadata` value, serialized, in bytes.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Longest chat text, in bytes of UTF-8 after trimming.
pub const MAX_CHAT_BYTES: usize = 4096;
/// Longest reason a moderator gives for a removal, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// A name or id that was refused, with the code the server answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidName {
    /// The code sent to the client.
    pub code: ErrorCode,
    /// A sentence a person can act on.
    pub message: String,
}

fn check_text(
    what: &str,
    text: &str,
    max_chars: usize,
    code: ErrorCode,
) -> Result<(), InvalidName> {
    let fail = |message: String| Err(InvalidName { code, message });
    if text.trim().is_empty() {
        return fail(format!("{what} must not be empty"));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return fail(format!(
            "{what} is {chars} characters long; at most {max_chars} are allowed"
        ));
    }
    if text.chars().any(char::is_control) {
        return fail(format!("{what} must not contain control characters"));
    }
    if text.trim() != text {
        return fail(format!("{what} must not start or end with white space"));
    }
    Ok(())
}

/// Checks a room name: 1 to 64 characters, no control characters, no surrounding white space.
pub fn validate_room_name(name: &str) -> Result<RoomName, InvalidName> {
    check_text(
        "room name",
        name,
        MAX_ROOM_NAME_CHARS,
        ErrorCode::InvalidRoomName,
    )?;
    Ok(RoomName::new(name))
}

/// Checks a display name: 1 to 64 characters, no control characters, no surrounding white space.
pub fn validate_display_name(name: &str) -> Result<String, InvalidName> {
    check_text(
        "display name",
        name,
        MAX_DISPLAY_NAME_CHARS,
        ErrorCode::InvalidDisplayName,
    )?;
    Ok(name.to_owned())
}

/// Checks a track id: 1 to 128 characters from the SDP `token` set (it is used as an `msid`).
pub fn validate_track_id(id: &str) -> Result<TrackId, InvalidName> {
    let fail = |message: String| {
        Err(InvalidName {
            code: ErrorCode::InvalidTrack,
            message,
        })
    };
    if id.is_empty() || id.len() > MAX_TRACK_ID_CHARS {
        return fail(format!(
            "track id must be 1 to {MAX_TRACK_ID_CHARS} characters"
        ));
    }
    // RFC 8866 token-char: %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E
    let token_char = |c: char| matches!(c, '!' | '#'..='\'' | '*' | '+' | '-' | '.' | '0'..='9' | 'A'..='Z' | '^'..='~');
    if !id.chars().all(token_char) {
        return fail(format!(
            "track id `{id}` has characters an SDP msid cannot carry"
        ));
    }
    Ok(TrackId::new(id))
}

/// Checks that `metadata` serializes to at most [`MAX_METADATA_BYTES`].
pub fn validate_metadata(metadata: &serde_json::Value) -> Result<(), InvalidName> {
    let len = metadata.to_string().len();
    if len > MAX_METADATA_BYTES {
        return Err(InvalidName {
            code: ErrorCode::InvalidMessage,
            message: format!("metadata is {len} bytes; at most {MAX_METADATA_BYTES} are allowed"),
        });
    }
    Ok(())
}

/// Checks a chat text and returns it trimmed, with line breaks as `\n`: not empty, at most
/// [`MAX_CHAT_BYTES`] of UTF-8, no control characters but line breaks and tabs.
pub fn validate_chat_text(text: &str) -> Result<String, InvalidName> {
    // Windows and old Mac line breaks are line breaks too.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err(InvalidName {
            code: ErrorCode::InvalidMessage,
            message: "chat text is empty".into(),
        });
    }
    if text.len() > MAX_CHAT_BYTES {
        return Err(InvalidName {
            code: ErrorCode::MessageTooLong,
            message: format!(
                "chat text is {} bytes long; at most {MAX_CHAT_BYTES} are allowed: split it",
                text.len()
            ),
        });
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(InvalidName {
            code: ErrorCode::InvalidMessage,
            message:
                "chat text must not contain control characters other than line breaks and tabs"
                    .into(),
        });
    }
    Ok(text.to_owned())
}

/// Checks a removal reason and returns it trimmed (`None` when blank): at most
/// [`MAX_REASON_CHARS`] characters, no control characters.
pub fn validate_reason(reason: Option<&str>) -> Result<Option<String>, InvalidName> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    check_text(
        "reason",
        reason,
        MAX_REASON_CHARS,
        ErrorCode::InvalidMessage,
    )?;
    Ok(Some(reason.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert!(validate_room_name("standup").is_ok());
        assert!(validate_room_name("Café ☕ 3").is_ok());
        for bad in ["", "   ", " lead", "tab\there", "nl\n", &"x".repeat(65)] {
            let err = validate_room_name(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRoomName, "{bad:?}");
        }
        assert!(validate_room_name(&"é".repeat(64)).is_ok());
    }

    #[test]
    fn display_names() {
        assert!(validate_display_name("Ada Lovelace").is_ok());
        let err = validate_display_name("\u{7}bell").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidDisplayName);
    }

    #[test]
    fn track_ids() {
        assert!(validate_track_id("3f2c-9a_video.1").is_ok());
        assert!(validate_track_id("{a1b2c3d4-0000-4000-8000-000000000000}").is_ok());
        assert!(validate_track_id("with space").is_err());
        assert!(validate_track_id("colon:no").is_err());
        assert!(validate_track_id("").is_err());
    }

    #[test]
    fn chat_texts() {
        assert_eq!(validate_chat_text("  hi\n").expect("ok"), "hi");
        assert_eq!(
            validate_chat_text("line 1\nline 2\tx").expect("ok"),
            "line 1\nline 2\tx"
        );
        assert_eq!(validate_chat_text("a\r\nb\rc").expect("ok"), "a\nb\nc");
        assert_eq!(
            validate_chat_text(" \n ").unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            validate_chat_text("bell\u{7}").unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        // The limit counts bytes after trimming: padding does not count, multi-byte text does.
        let padded = format!("  {}  ", "x".repeat(MAX_CHAT_BYTES));
        assert!(validate_chat_text(&padded).is_ok());
        let err = validate_chat_text(&"é".repeat(MAX_CHAT_BYTES / 2 + 1)).unwrap_err();
        assert_eq!(err.code, ErrorCode::MessageTooLong);
    }

    #[test]
    fn reasons() {
        assert_eq!(validate_reason(None).expect("ok"), None);
        assert_eq!(validate_reason(Some("  ")).expect("ok"), None);
        assert_eq!(
            validate_reason(Some(" off topic ")).expect("ok").as_deref(),
            Some("off topic")
        );
        assert!(validate_reason(Some(&"x".repeat(201))).is_err());
    }

    #[test]
    fn metadata_size() {
        assert!(validate_metadata(&serde_json::json!({"avatar": "x"})).is_ok());
        let big = serde_json::json!({"blob": "x".repeat(MAX_METADATA_BYTES)});
        assert!(validate_metadata(&big).is_err());
    }
}
