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
    /// Whether the participant may moderate the room (mute others, remove, lock, end).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moderator: bool,
    /// When the participant raised a hand (server time, ms since the Unix epoch); absent while
    /// the hand is down. Raised hands are listed in this order: earliest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_raised_at: Option<u64>,
}

impl PeerInfo {
    /// A participant with no metadata, no moderator grant and the hand down.
    pub fn new(peer_id: PeerId, display_name: impl Into<String>) -> Self {
        Self {
            peer_id,
            display_name: display_name.into(),
            metadata: None,
            moderator: false,
            hand_raised_at: None,
        }
    }
}

/// One chat message, as the server stamped it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Unique in the room, increasing in the order the server took the messages.
    pub id: u64,
    /// The sender.
    pub from: PeerId,
    /// The sender's display name when it was sent (the sender may have left since).
    pub from_name: String,
    /// The one recipient of a private message; absent for a message to everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<PeerId>,
    /// The text: plain text, never markup; at most 4 KiB of UTF-8, trimmed.
    pub text: String,
    /// When the server took it (ms since the Unix epoch).
    pub sent_at: u64,
}

/// What a moderator does to another participant's media or hand (`moderate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModerationAction {
    /// Mute the microphone; only its owner can unmute it.
    MuteMicrophone,
    /// Turn the camera off; only its owner can turn it on again.
    StopCamera,
    /// Stop the screen share.
    StopScreen,
    /// Lower the raised hand.
    LowerHand,
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

/// How large a subscriber shows one remote video track: the server forwards the smallest
/// simulcast layer that covers it, and nothing while it is hidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewSize {
    /// The publishing peer.
    pub peer_id: PeerId,
    /// The publisher's track id.
    pub track_id: TrackId,
    /// Width in device pixels the track is shown at; 0 (with `height` 0): not shown.
    pub width: u32,
    /// Height in device pixels the track is shown at; 0 (with `width` 0): not shown.
    pub height: u32,
}

impl ViewSize {
    /// Whether the track is not shown at all (either side is 0).
    pub fn hidden(&self) -> bool {
        self.width == 0 || self.height == 0
    }
}

/// The most entries one `set_view_sizes` may carry.
pub const MAX_VIEW_SIZES: usize = 64;

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
    /// The action needs the moderator grant, which the sender does not have.
    NotModerator,
    /// A moderator locked the room: it takes no new participants.
    RoomLocked,
    /// Too many messages of this kind in a short time; wait and send again.
    RateLimited,
    /// The peer named in the message is not in the room.
    UnknownPeer,
    /// A chat text over the size limit (4 KiB of UTF-8).
    MessageTooLong,
    /// The server admits only holders of an invitation (token), and the join carried none.
    TokenMissing,
    /// The token is not one this server signed (bad signature, unsigned, garbage).
    TokenInvalid,
    /// The token has expired.
    TokenExpired,
    /// The token is not valid yet.
    TokenNotYetValid,
    /// The token is for another room.
    TokenWrongRoom,
    /// The token is for another display name.
    TokenWrongName,
    /// The participant's token does not allow publishing; its offer's tracks were refused.
    PublishNotAllowed,
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
        /// The `resume_token` of an earlier session in this room, when rejoining after a lost
        /// connection: a locked room lets its holder back in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_token: Option<String>,
        /// The invitation (a JWT signed by the server's secret), required by servers that run
        /// with `--auth token`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
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
    /// A chat message to everyone, or to one peer.
    Chat {
        /// Plain text, at most 4 KiB of UTF-8 once trimmed.
        text: String,
        /// The one recipient of a private message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<PeerId>,
    },
    /// Raise or lower your own hand.
    RaiseHand {
        /// Up or down.
        raised: bool,
    },
    /// A moderator acts on another participant's microphone, camera, screen share or hand.
    Moderate {
        /// Whom.
        peer_id: PeerId,
        /// What.
        action: ModerationAction,
    },
    /// A moderator removes a participant from the room.
    RemovePeer {
        /// Whom.
        peer_id: PeerId,
        /// Why, shown to the removed person (at most 200 characters).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A moderator locks the room (no new participants) or unlocks it.
    LockRoom {
        /// Locked or not.
        locked: bool,
    },
    /// A moderator ends the meeting: everyone is removed and the room closes.
    EndMeeting,
    /// How large the client shows remote video tracks (at most [`MAX_VIEW_SIZES`] entries;
    /// a track not listed keeps its last size; before any, a track is shown large). Sent
    /// whenever the layout changes.
    SetViewSizes {
        /// One entry per track whose size changed.
        views: Vec<ViewSize>,
    },
    /// A moderator asks for an invite link to this room (`invite_created` answers).
    CreateInvite {
        /// How long the invitation is valid, in seconds (60 s to 30 days).
        ttl_secs: u64,
        /// Whether its holder moderates too.
        #[serde(default)]
        moderator: bool,
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
        /// Whether this peer may moderate the room.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        moderator: bool,
        /// Whether the room is locked (it takes no new participants).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        locked: bool,
        /// The room's last chat messages to everyone (at most 200), oldest first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chat_history: Vec<ChatMessage>,
        /// Secret for a `join` after a lost connection (a locked room lets it back in). Kept
        /// by the server for two minutes after the connection is gone; void after a removal.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        resume_token: String,
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
    /// A chat message: to everyone, or a private one to or from this peer. The sender gets its
    /// own message back, stamped.
    Chat {
        /// The message.
        message: ChatMessage,
    },
    /// The room was locked or unlocked.
    RoomUpdated {
        /// Whether it takes no new participants.
        locked: bool,
        /// The moderator who changed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<PeerId>,
    },
    /// A moderator acted on this peer's media or hand. For `mute_microphone`, `stop_camera`
    /// and `stop_screen` the client stops sending that media and reports it muted.
    Moderated {
        /// What was done.
        action: ModerationAction,
        /// The moderator.
        by: PeerId,
    },
    /// A moderator removed this peer from the room; the WebSocket close (1000) follows.
    Removed {
        /// The moderator.
        by: PeerId,
        /// Why, if the moderator said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A moderator ended the meeting; the WebSocket close (1000) follows.
    MeetingEnded {
        /// The moderator.
        by: PeerId,
    },
    /// The answer to `create_invite`.
    InviteCreated {
        /// The signed invitation for this room (token auth); absent in an open room, where the
        /// room's address is the invitation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// The ready link (`<public-url>/r/<room>#token=…`) when the server knows its public
        /// URL; otherwise the client builds it from the address it connected to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// When the token expires (seconds since the Unix epoch); absent without a token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
    },
    /// Which layers of one of the client's own video tracks anyone receives (dynacast): the
    /// client need not encode the others, nor the track at all when `active` is false. Sent
    /// when that changes; a track never named is wanted whole.
    LayersWanted {
        /// The client's track.
        track_id: TrackId,
        /// Whether anyone receives it.
        active: bool,
        /// The rids of the simulcast layers wanted (empty for a track without simulcast).
        #[serde(default)]
        rids: Vec<String>,
    },
    /// Who is speaking now, loudest first (empty: nobody). Sent to everyone, whenever the set
    /// or its order changes (at most a few times a second), from the audio-level header
    /// extension of the published audio: the server decodes nothing.
    ActiveSpeakers {
        /// The speaking peers, loudest first.
        peer_ids: Vec<PeerId>,
    },
}
