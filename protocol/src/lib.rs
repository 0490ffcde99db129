//! Videoroom signaling protocol: every message exchanged over the `/ws` WebSocket, as serde types.
//!
//! This crate is the one definition shared by `videoroom-server` and every client. It holds data
//! types, parsing and validation only: no I/O, no WebRTC. `docs/protocol.md` documents each message
//! with a JSON example; the `golden` test parses those examples with these types.
//!
//! Messages are JSON text frames tagged by `"type"` in snake_case. Clients send [`ClientMessage`],
//! the server sends [`ServerMessage`]. Parse client input with [`ClientMessage::parse`], which tells
//! malformed JSON, an unknown `type` and bad fields apart so the server can answer each precisely.

mod ids;
mod messages;
mod validate;

pub use ids::{PeerId, RoomName, TrackId};
pub use messages::{
    ChatMessage, ClientMessage, ErrorCode, IceCandidate, IceServer, MAX_VIEW_SIZES, MediaKind,
    ModerationAction, PeerInfo, PublishedTrack, ServerMessage, TrackInfo, TrackSource, ViewSize,
};
pub use validate::{
    InvalidName, MAX_CHAT_BYTES, MAX_CODE_POINTS_PER_CHAR, MAX_DISPLAY_NAME_CHARS, MAX_ECHO_CHARS,
    MAX_METADATA_BYTES, MAX_QUOTING_ERROR_CHARS, MAX_REASON_CHARS, MAX_ROOM_NAME_CHARS,
    MAX_TRACK_ID_CHARS, clip_quoted, excerpt, excerpt_to, validate_chat_text,
    validate_display_name, validate_metadata, validate_reason, validate_room_name,
    validate_track_id,
};

/// Version of this protocol. A client states the version it speaks in `join`; the server answers
/// `join_error {code: "unsupported_version"}` when it does not speak it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Why a text frame could not be turned into a [`ClientMessage`]. What it quotes of the frame
/// is cut to [`excerpt`]s, so an error never echoes more than a short prefix of the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON, or JSON that is not an object with a string `type`.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A well-formed message whose `type` this protocol version does not know.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// A known `type` whose fields are missing or of the wrong shape.
    #[error("invalid `{kind}` message: {reason}")]
    InvalidFields {
        /// The message's `type`.
        kind: String,
        /// What serde said was wrong.
        reason: String,
    },
}

impl ParseError {
    /// The error code the server answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ParseError::Malformed(_) => ErrorCode::MalformedMessage,
            ParseError::UnknownType(_) => ErrorCode::UnknownMessageType,
            ParseError::InvalidFields { .. } => ErrorCode::InvalidMessage,
        }
    }
}

impl ClientMessage {
    /// Parses one text frame sent by a client.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ParseError::Malformed(quote_safely(&e)))?;
        let kind = value
            .get("type")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                ParseError::Malformed("expected a JSON object with a string `type`".into())
            })?
            .to_owned();
        if !Self::TYPES.contains(&kind.as_str()) {
            return Err(ParseError::UnknownType(excerpt(&kind)));
        }
        serde_json::from_value(value).map_err(|e| ParseError::InvalidFields {
            kind,
            reason: quote_safely(&e),
        })
    }

    /// Every `type` a client may send.
    pub const TYPES: &'static [&'static str] = &[
        "join",
        "sdp_offer",
        "sdp_answer",
        "ice_candidate",
        "update_track",
        "update_peer",
        "leave",
        "ping",
        "chat",
        "raise_hand",
        "moderate",
        "remove_peer",
        "lock_room",
        "end_meeting",
        "create_invite",
        "set_view_sizes",
    ];

    /// Serializes to the JSON text frame.
    pub fn to_json(&self) -> String {
        // A derive-generated Serialize over strings, numbers and serde_json::Value cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A serde error's text made safe to send back: serde quotes the input it refuses.
fn quote_safely(error: &serde_json::Error) -> String {
    clip_quoted(&error.to_string())
}

impl ServerMessage {
    /// Parses one text frame sent by the server (used by clients).
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Serializes to the JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
