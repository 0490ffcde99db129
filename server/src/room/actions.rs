//! What members do in a room besides media: chat, raised hands, and moderation.
//!
//! Every action arrives as [`PeerAction`] from the member's session (which validated the text),
//! and is checked here against the room's state: the member's rate limit for chat and hands,
//! the moderator grant for everything a moderator does. A refusal is an `error` to the sender
//! and changes nothing.

use super::{Departure, Room};
use crate::auth::{Claims, unix_now};
use crate::chat::unix_ms;
use crate::config::AuthMode;
use crate::invite::invite_link;
use crate::peer::EndpointCommand;
use tracing::info;
use videoroom_protocol::{
    ErrorCode, ModerationAction, PeerId, ServerMessage, TrackId, TrackSource,
};

/// Something a member asks the room to do.
#[derive(Debug, Clone)]
pub enum PeerAction {
    /// A (validated, trimmed) chat text, to everyone or to one peer.
    Chat {
        /// The text.
        text: String,
        /// The one recipient.
        to: Option<PeerId>,
    },
    /// Raise or lower one's own hand.
    RaiseHand(bool),
    /// A moderator acts on someone's media or hand.
    Moderate {
        /// Whom.
        target: PeerId,
        /// What.
        action: ModerationAction,
    },
    /// A moderator removes someone.
    Remove {
        /// Whom.
        target: PeerId,
        /// Why (validated).
        reason: Option<String>,
    },
    /// A moderator locks or unlocks the room.
    Lock(bool),
    /// A moderator ends the meeting.
    EndMeeting,
    /// A moderator asks for an invitation to the room.
    CreateInvite {
        /// How long it is valid (checked by the session: 60 s to 30 days).
        ttl: std::time::Duration,
        /// Whether its holder moderates too.
        moderator: bool,
    },
}

impl Room {
    pub(super) fn act(&mut self, peer_id: &PeerId, action: PeerAction) {
        let Some(member) = self.members.get(peer_id) else {
            return;
        };
        let moderator = member.info.moderator;
        let result = match action {
            PeerAction::Chat { text, to } => self.chat(peer_id, text, to),
            PeerAction::RaiseHand(raised) => self.raise_hand(peer_id, raised),
            _ if !moderator => Err((
                ErrorCode::NotModerator,
                "only a moderator can do this; ask one of the room's moderators".to_owned(),
            )),
            PeerAction::Moderate { target, action } => self.moderate(peer_id, &target, action),
            PeerAction::Remove { target, reason } => self.remove_peer(peer_id, &target, reason),
            PeerAction::Lock(locked) => {
                self.lock(peer_id, locked);
                Ok(())
            }
            PeerAction::EndMeeting => {
                self.end_meeting(peer_id);
                Ok(())
            }
            PeerAction::CreateInvite { ttl, moderator } => {
                self.create_invite(peer_id, ttl, moderator)
            }
        };
        if let Err((code, message)) = result {
            self.shared.metrics.signaling_errors.inc();
            if let Some(member) = self.members.get(peer_id) {
                let _ = member.out.try_send(ServerMessage::Error { code, message });
            }
        }
    }

    /// The member's rate limit, shared by chat and hands.
    fn within_limit(&self, peer_id: &PeerId) -> Result<(), (ErrorCode, String)> {
        let Some(member) = self.members.get(peer_id) else {
            return Ok(());
        };
        member.limiter.check().map_err(|_| {
            self.shared.metrics.rate_limited.inc();
            (
                ErrorCode::RateLimited,
                "too many messages at once; wait a second and send again".to_owned(),
            )
        })
    }

    fn target(&self, target: &PeerId) -> Result<(), (ErrorCode, String)> {
        if self.members.contains_key(target) {
            Ok(())
        } else {
            Err((
                ErrorCode::UnknownPeer,
                format!(
                    "no one with id `{}` is in this room (they may have left)",
                    videoroom_protocol::excerpt(target.as_str())
                ),
            ))
        }
    }

    fn chat(
        &mut self,
        peer_id: &PeerId,
        text: String,
        to: Option<PeerId>,
    ) -> Result<(), (ErrorCode, String)> {
        if let Some(to) = &to {
            self.target(to)?;
        }
        self.within_limit(peer_id)?;
        let Some(sender) = self.members.get(peer_id) else {
            return Ok(());
        };
        let message = self.chat.post(&sender.info, to, text, unix_ms());
        self.shared.metrics.chat_messages.inc();
        let to = message.to.clone();
        let out = ServerMessage::Chat { message };
        match to {
            None => self.broadcast(None, out),
            Some(to) => {
                self.send_to(peer_id, out.clone());
                if &to != peer_id {
                    self.send_to(&to, out);
                }
            }
        }
        Ok(())
    }

    fn raise_hand(&mut self, peer_id: &PeerId, raised: bool) -> Result<(), (ErrorCode, String)> {
        let up = self
            .members
            .get(peer_id)
            .is_some_and(|m| m.info.hand_raised_at.is_some());
        if up == raised {
            return Ok(()); // nothing changes; nothing to tell anyone
        }
        self.within_limit(peer_id)?;
        self.set_hand(peer_id, raised);
        Ok(())
    }

    fn set_hand(&mut self, peer_id: &PeerId, raised: bool) {
        // Strictly increasing stamps keep the order of raised hands exact.
        let latest = self
            .members
            .values()
            .filter_map(|m| m.info.hand_raised_at)
            .max()
            .unwrap_or(0);
        let Some(member) = self.members.get_mut(peer_id) else {
            return;
        };
        member.info.hand_raised_at = raised.then(|| unix_ms().max(latest + 1));
        let peer = member.info.clone();
        self.broadcast(None, ServerMessage::PeerUpdated { peer });
    }

    fn moderate(
        &mut self,
        by: &PeerId,
        target: &PeerId,
        action: ModerationAction,
    ) -> Result<(), (ErrorCode, String)> {
        self.target(target)?;
        let sources: &[TrackSource] = match action {
            ModerationAction::MuteMicrophone => &[TrackSource::Microphone],
            ModerationAction::StopCamera => &[TrackSource::Camera],
            ModerationAction::StopScreen => &[TrackSource::Screen, TrackSource::ScreenAudio],
            ModerationAction::LowerHand => {
                let up = self
                    .members
                    .get(target)
                    .is_some_and(|m| m.info.hand_raised_at.is_some());
                if up {
                    self.set_hand(target, false);
                }
                &[]
            }
            _ => {
                return Err((
                    ErrorCode::InvalidMessage,
                    "this server does not know that action".to_owned(),
                ));
            }
        };
        // Hold the media back at once, whatever the client does; its owner unmutes it.
        let held: Vec<TrackId> = self
            .tracks
            .values_mut()
            .filter(|p| &p.info.peer_id == target && sources.contains(&p.info.source))
            .map(|p| {
                p.forwarder.set_held(true);
                p.info.track_id.clone()
            })
            .collect();
        for track_id in held {
            if let Some(p) = self.tracks.get_mut(&track_id)
                && !p.info.muted
            {
                p.info.muted = true;
                let track = p.info.clone();
                self.broadcast(None, ServerMessage::TrackUpdated { track });
            }
        }
        self.shared.metrics.moderation_actions.inc();
        info!(moderator = %by, peer = %target, ?action, "moderated");
        self.send_to(
            target,
            ServerMessage::Moderated {
                action,
                by: by.clone(),
            },
        );
        Ok(())
    }

    fn remove_peer(
        &mut self,
        by: &PeerId,
        target: &PeerId,
        reason: Option<String>,
    ) -> Result<(), (ErrorCode, String)> {
        self.target(target)?;
        if by == target {
            return Err((
                ErrorCode::InvalidMessage,
                "you cannot remove yourself; send `leave`".to_owned(),
            ));
        }
        self.shared.metrics.moderation_actions.inc();
        info!(moderator = %by, peer = %target, reason = reason.as_deref(), "removing peer");
        self.send_to(
            target,
            ServerMessage::Removed {
                by: by.clone(),
                reason,
            },
        );
        self.remove(target, Departure::Removed);
        Ok(())
    }

    fn lock(&mut self, by: &PeerId, locked: bool) {
        if self.locked == locked {
            return;
        }
        self.locked = locked;
        self.shared.metrics.moderation_actions.inc();
        info!(moderator = %by, locked, "room lock changed");
        self.broadcast(
            None,
            ServerMessage::RoomUpdated {
                locked,
                by: Some(by.clone()),
            },
        );
    }

    /// Signs an invitation to this room (token auth; an open room's invitation is its address)
    /// and answers the moderator alone. Rate limited like chat: tokens are cheap to make.
    fn create_invite(
        &mut self,
        by: &PeerId,
        ttl: std::time::Duration,
        moderator: bool,
    ) -> Result<(), (ErrorCode, String)> {
        self.within_limit(by)?;
        let config = &self.shared.config;
        let room = self.handle.name.as_str();
        let base = config.public_url.as_deref();
        let message = match (&self.shared.authority, config.auth) {
            (Some(authority), AuthMode::Token) => {
                let mut claims = Claims::new(room, unix_now(), ttl);
                claims.grants.moderator = moderator;
                let token = authority.issue(&claims).map_err(|e| {
                    tracing::error!("cannot sign an invitation: {e}");
                    (
                        ErrorCode::Internal,
                        "the server could not sign the invitation".to_owned(),
                    )
                })?;
                ServerMessage::InviteCreated {
                    url: base.and_then(|b| invite_link(b, room, Some(&token))),
                    expires_at: Some(claims.exp),
                    token: Some(token),
                }
            }
            _ => ServerMessage::InviteCreated {
                url: base.and_then(|b| invite_link(b, room, None)),
                token: None,
                expires_at: None,
            },
        };
        info!(moderator_invite = moderator, ttl_secs = ttl.as_secs(), by = %by, "invitation created");
        self.send_to(by, message);
        Ok(())
    }

    fn end_meeting(&mut self, by: &PeerId) {
        self.shared.metrics.moderation_actions.inc();
        info!(moderator = %by, peers = self.members.len(), "meeting ended");
        self.ended = true;
        self.broadcast(None, ServerMessage::MeetingEnded { by: by.clone() });
        // Everyone goes at once: no one hears of the others leaving after `meeting_ended`.
        for (_, member) in std::mem::take(&mut self.members) {
            member.endpoint.try_send(EndpointCommand::Close);
            self.shared.metrics.peers.dec();
        }
        self.tracks.clear();
    }

    /// Queues `message` for one member; a full queue marks it as stalled, like a broadcast.
    fn send_to(&mut self, peer_id: &PeerId, message: ServerMessage) {
        if let Some(member) = self.members.get(peer_id)
            && let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) =
                member.out.try_send(message)
        {
            self.stalled.push(peer_id.clone());
        }
    }
}
