//! The messages themselves. `docs/protocol.md` shows each one as JSON.

use crate::{PeerId, RoomName, TrackId};
use serde::{Deserialize, Serialize};

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Opus audio.
    Audio,
    /// VP8 video.
    Video,
}

/// Where a track's media comes from, so a UI can lay out a screen share apart from a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TrackSource {
    /// A camera (or a synthetic video source standing in for one).
    Camera,
    /// A microphone (or a synthetic audio source standing in for one).
    Microphone,
    /// A shared screen or window.
    Screen,
    /// The audio of a shared screen.
    ScreenAudio,
}

impl TrackSource {
    /// The source a track of `kind` has when its publisher did not say.
    pub fn default_for(kind: MediaKind) -> Self {
        match kind {
            MediaKind::Audio => TrackSource::Microphone,
            MediaKind::Video => TrackSource::Camera,
        }
    }
}

/// A participant as the others see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Server-assigned id.
    pub peer_id: PeerId,
    /// The name shown on the participant's tile.
    pub display_name: String,
    /// Free-form JSON the participant attached (at most 4 KiB serialized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// A published track as the room sees it.
///
/// In every SDP the server sends, this track's `msid` is `<peer_id> <track_id>`, so a receiver maps
/// an incoming WebRTC track (stream id, track id) to this info.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// The track's id (its publisher's `msid` track id).
    pub track_id: TrackId,
    /// The publishing peer.
    pub peer_id: PeerId,
    /// Audio or video.
    pub kind: MediaKind,
    /// Camera, microphone or screen.
    pub source: TrackSource,
    /// Whether the publisher muted it (a muted track sends no media).
    pub muted: bool,
}

/// What a publisher says about a track it offers: the `tracks` field of its `sdp_offer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedTrack {
    /// The `msid` track id of the track in the offer's SDP.
    pub track_id: TrackId,
    /// Camera, microphone or screen.
    pub source: TrackSource,
    /// Whether the track starts muted.
    #[serde(default)]
    pub muted: bool,
}

/// A trickled ICE candidate, the JSON form of the browser's `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The `candidate:` attribute line without `a=`.
    pub candidate: String,
    /// The media section's `mid`.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// The media section's index.
    #[serde(default)]
    pub sdp_mline_index: Option<u16>,
    /// The ICE ufrag the candidate belongs to.
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// A STUN or TURN server the client should use, handed out in `joined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Machine-readable reason in `error` and `join_error`. Clients must accept codes they do not
/// know (they arrive as [`ErrorCode::Other`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, or not an object with a string `type`.
    MalformedMessage,
    /// A `type` this protocol version does not have.
    UnknownMessageType,
    /// A known `type` with missing or wrong fields.
    InvalidMessage,
    /// A message that is not allowed now (e.g. `sdp_offer` before `join`, `join` twice).
    InvalidState,
    /// The room has as many peers as the server allows.
    RoomFull,
    /// The room name is empty, too long or has control characters.
    InvalidRoomName,
    /// The display name is empty, too long or has control characters.
    InvalidDisplayName,
    /// The client speaks a protocol version the server does not.
    UnsupportedVersion,
    /// The server is shutting down and takes no new joins.
    ShuttingDown,
    /// An SDP that could not be applied; the peer stays in the room.
    InvalidSdp,
    /// An ICE candidate that could not be applied.
    InvalidCandidate,
    /// A track id that is malformed, unknown, or already used in the room.
    InvalidTrack,
    /// The server failed; the message is for operators.
    Internal,
    /// A code this build does not know.
    #[serde(other)]
    Other,
}

/// Everything a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientMessage {
    /// Join a room by name; it is created on first join.
    Join {
        /// The protocol version the client speaks ([`crate::PROTOCOL_VERSION`]).
        protocol_version: u32,
        /// Room to join.
        room: RoomName,
        /// Name shown to the others.
        display_name: String,
        /// Free-form JSON shown to the others (at most 4 KiB).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<serde_json::Value>,
    },
    /// An SDP offer: the client publishes or changes its tracks.
    SdpOffer {
        /// The SDP.
        sdp: String,
        /// Every track the client publishes after this offer, keyed by `msid` track id.
        #[serde(default)]
        tracks: Vec<PublishedTrack>,
    },
    /// The answer to the server's `sdp_offer`.
    SdpAnswer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled ICE candidate.
    IceCandidate {
        /// The candidate.
        candidate: IceCandidate,
    },
    /// Mute or unmute one of the client's own tracks.
    UpdateTrack {
        /// The track.
        track_id: TrackId,
        /// The new muted state.
        muted: bool,
    },
    /// Change the client's display name or metadata.
    UpdatePeer {
        /// New display name, if changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        /// New metadata, if changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<serde_json::Value>,
    },
    /// Leave the room; the server closes the connection after it.
    Leave,
    /// Keep-alive; answered by `pong` with the same `id`.
    Ping {
        /// Echoed back.
        #[serde(default)]
        id: u64,
    },
}

/// Everything the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMessage {
    /// The join succeeded.
    Joined {
        /// The protocol version the server speaks.
        protocol_version: u32,
        /// The id the server gave this peer.
        peer_id: PeerId,
        /// The room joined.
        room: RoomName,
        /// The other peers already in the room.
        peers: Vec<PeerInfo>,
        /// Every track already published in the room; they arrive in a following `sdp_offer`.
        tracks: Vec<TrackInfo>,
        /// STUN/TURN servers the client should use.
        ice_servers: Vec<IceServer>,
    },
    /// The join was refused; the connection stays open and the client may try again.
    JoinError {
        /// Why.
        code: ErrorCode,
        /// A sentence a person can act on.
        message: String,
    },
    /// Another peer joined.
    PeerJoined {
        /// Who.
        peer: PeerInfo,
    },
    /// Another peer left (or was removed because its connection died).
    PeerLeft {
        /// Who.
        peer_id: PeerId,
    },
    /// Another peer changed its display name or metadata.
    PeerUpdated {
        /// The peer as it is now.
        peer: PeerInfo,
    },
    /// Tracks were published; each arrives in the next `sdp_offer` from the server.
    TracksAdded {
        /// The new tracks.
        tracks: Vec<TrackInfo>,
    },
    /// Tracks were unpublished; their transceivers go inactive in the next `sdp_offer`.
    TracksRemoved {
        /// The tracks.
        track_ids: Vec<TrackId>,
    },
    /// A track was muted or unmuted.
    TrackUpdated {
        /// The track as it is now.
        track: TrackInfo,
    },
    /// An SDP offer from the server (it sends new tracks, or stops sending old ones).
    SdpOffer {
        /// The SDP.
        sdp: String,
    },
    /// The answer to the client's `sdp_offer`.
    SdpAnswer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled ICE candidate of the server's.
    IceCandidate {
        /// The candidate.
        candidate: IceCandidate,
    },
    /// A message could not be handled; the connection stays usable.
    Error {
        /// Why.
        code: ErrorCode,
        /// A sentence a person can act on.
        message: String,
    },
    /// The answer to `ping`.
    Pong {
        /// The `ping`'s id.
        id: u64,
    },
    /// The server is closing this connection (shutdown); the WebSocket close follows.
    Closing {
        /// Why, for a person.
        reason: String,
    },
}
