//! What a person does in a room besides media: chat, a raised hand, and — for moderators —
//! muting others, removing them, locking and ending the meeting (`docs/protocol.md`,
//! "Chat" and "Moderation"). The server checks every action; refusals come back as
//! [`RoomEvent::Error`] with [`RoomError::Server`] (`rate_limited`, `not_moderator`, …).

use super::handle::{Command, lock};
use super::task::RoomTask;
use super::{RoomError, RoomHandle};
use videoroom_protocol::{ChatMessage, ClientMessage, MediaKind, ModerationAction, PeerId};

/// The room as of joining (also after a rejoin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomInfo {
    /// We may moderate.
    pub moderator: bool,
    /// The room takes no new participants.
    pub locked: bool,
    /// The room's recent messages to everyone, oldest first.
    pub chat_history: Vec<ChatMessage>,
}

/// An invitation to the room (`create_invite`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Invite {
    /// The signed token (servers with `--auth token`); none in an open room.
    pub token: Option<String>,
    /// The ready link, when the server knows its public address.
    pub url: Option<String>,
    /// When the token expires (seconds since the Unix epoch).
    pub expires_at: Option<u64>,
}

/// Longest wait for the server's answer to `create_invite`.
const INVITE_ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

impl RoomHandle {
    async fn send_message(&self, message: ClientMessage) -> Result<(), RoomError> {
        self.call(|tx| Command::Send(message, tx)).await?
    }

    /// Sends a chat message to everyone, or to `to` only. It comes back as
    /// [`RoomEvent::Chat`](super::RoomEvent::Chat) once the server took it.
    pub async fn send_chat(
        &self,
        text: impl Into<String>,
        to: Option<PeerId>,
    ) -> Result<(), RoomError> {
        let text = text.into();
        self.send_message(ClientMessage::Chat { text, to }).await
    }

    /// Raises or lowers our hand.
    pub async fn set_hand_raised(&self, raised: bool) -> Result<(), RoomError> {
        self.send_message(ClientMessage::RaiseHand { raised }).await
    }

    /// Moderators: mutes someone's microphone, stops their camera or screen share, or lowers
    /// their hand.
    pub async fn moderate(
        &self,
        peer_id: PeerId,
        action: ModerationAction,
    ) -> Result<(), RoomError> {
        self.send_message(ClientMessage::Moderate { peer_id, action })
            .await
    }

    /// Moderators: removes someone from the room, telling them `reason`.
    pub async fn remove_peer(
        &self,
        peer_id: PeerId,
        reason: Option<String>,
    ) -> Result<(), RoomError> {
        self.send_message(ClientMessage::RemovePeer { peer_id, reason })
            .await
    }

    /// Moderators: locks the room (no one new gets in) or unlocks it.
    pub async fn lock_room(&self, locked: bool) -> Result<(), RoomError> {
        self.send_message(ClientMessage::LockRoom { locked }).await
    }

    /// Moderators: ends the meeting for everyone.
    pub async fn end_meeting(&self) -> Result<(), RoomError> {
        self.send_message(ClientMessage::EndMeeting).await
    }

    /// Moderators: an invitation to the room valid for `ttl` (60 s to 30 days), making its
    /// holder a moderator too if `moderator`. Refusals (`not_moderator`, `rate_limited`, …) come
    /// back as [`RoomError::Server`].
    pub async fn create_invite(
        &self,
        ttl: std::time::Duration,
        moderator: bool,
    ) -> Result<Invite, RoomError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::CreateInvite(ttl.as_secs(), moderator, tx))
            .await
            .map_err(|_| RoomError::Closed)?;
        match tokio::time::timeout(INVITE_ANSWER_WITHIN, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(RoomError::Signaling(
                "the connection to the server was lost; try again in a moment".into(),
            )),
            Err(_) => Err(RoomError::Signaling(
                "the server did not answer; try again in a moment".into(),
            )),
        }
    }
}

impl RoomTask {
    /// Sends `message` on the current session; while reconnecting there is none.
    pub(super) async fn send_now(&mut self, message: ClientMessage) -> Result<(), RoomError> {
        let Some(session) = self.session.as_mut() else {
            return Err(RoomError::Signaling(
                "reconnecting to the room; try again in a moment".into(),
            ));
        };
        session
            .signaling
            .send(&message)
            .await
            .map_err(|e| RoomError::Signaling(e.to_string()))
    }

    /// A moderator acted on us: turn the media off as a mute of our own would (the server
    /// already holds it back), then tell the application.
    pub(super) async fn on_moderated(&mut self, action: ModerationAction, by: PeerId) {
        let kind = match action {
            ModerationAction::MuteMicrophone => Some(MediaKind::Audio),
            ModerationAction::StopCamera => Some(MediaKind::Video),
            // A hand is peer state.
            _ => None,
        };
        if let Some(kind) = kind
            && self
                .local
                .iter()
                .any(|t| t.source == super::local::device_source(kind))
            && let Err(e) = self.set_enabled(kind, false).await
        {
            tracing::warn!("turning media off for a moderator failed: {e}");
        }
        // The server holds the screen's packets already; the share ends here too.
        if action == ModerationAction::StopScreen
            && self
                .local
                .iter()
                .any(|t| t.source == videoroom_protocol::TrackSource::Screen)
            && let Err(e) = self
                .stop_screen(super::ScreenShareEnd::Moderator(by.clone()))
                .await
        {
            tracing::warn!("stopping the screen share for a moderator failed: {e}");
        }
        tracing::info!(?action, moderator = %by, "moderated");
        self.events.emit(super::RoomEvent::Moderated { action, by });
    }

    /// The display name of `peer_id`, for messages to a person.
    pub(super) fn name_of(&self, peer_id: &PeerId) -> String {
        if *lock(&self.shared.peer_id) == *peer_id {
            return "You".to_owned();
        }
        self.session
            .as_ref()
            .and_then(|s| s.peers.get(peer_id))
            .map(|p| p.display_name.clone())
            .unwrap_or_else(|| "A moderator".to_owned())
    }

    /// "Grace removed you from the room: <reason>".
    pub(super) fn removal_reason(&self, by: &PeerId, reason: Option<&str>) -> String {
        let who = self.name_of(by);
        match reason {
            Some(reason) => format!("{who} removed you from the room: {reason}"),
            None => format!("{who} removed you from the room"),
        }
    }
}
