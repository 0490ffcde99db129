//! The bot's side of chat, hands and moderation: `--say`, `--say-every`, `--raise-hand` and
//! `--commands-from-stdin`, where every line is a chat line or a command (`/mute NAME`,
//! `/remove NAME why`, `/lock`… see [`chat_command::HELP`]), and the JSON lines of those events
//! for `--events`.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use videoroom_client::chat_command::{self, ChatCommand};
use videoroom_client::{RoomEvent, RoomHandle};
use videoroom_protocol::{ModerationAction, PeerId, PeerInfo};

/// Who is in the room (for names in commands and in the event log) and our own state.
#[derive(Debug, Default)]
pub struct People {
    others: BTreeMap<PeerId, PeerInfo>,
    own: Option<PeerId>,
    /// Our display name.
    pub own_name: String,
    hand_up: bool,
    /// A moderator removed us or ended the meeting.
    pub sent_away: bool,
}

impl People {
    /// Keeps the list in step with `event`.
    pub fn on_event(&mut self, event: &RoomEvent) {
        match event {
            RoomEvent::Joined { peer_id, peers, .. } => {
                self.own = Some(peer_id.clone());
                self.others = peers
                    .iter()
                    .map(|p| (p.peer_id.clone(), p.clone()))
                    .collect();
                // A rejoin starts with the hand down.
                self.hand_up = false;
            }
            RoomEvent::PeerJoined(p) => {
                self.others.insert(p.peer_id.clone(), p.clone());
            }
            RoomEvent::PeerUpdated(p) if Some(&p.peer_id) == self.own.as_ref() => {
                self.hand_up = p.hand_raised_at.is_some();
            }
            RoomEvent::PeerUpdated(p) => {
                self.others.insert(p.peer_id.clone(), p.clone());
            }
            RoomEvent::PeerLeft { peer_id } => {
                self.others.remove(peer_id);
            }
            RoomEvent::Removed { .. } | RoomEvent::MeetingEnded { .. } => self.sent_away = true,
            _ => {}
        }
    }

    fn name(&self, id: &PeerId) -> String {
        self.others
            .get(id)
            .map(|p| p.display_name.clone())
            .unwrap_or_else(|| {
                if Some(id) == self.own.as_ref() {
                    self.own_name.clone()
                } else {
                    id.to_string()
                }
            })
    }

    /// The `--events` line of a chat or moderation event (`None` for other events).
    pub fn event_line(&self, event: &RoomEvent) -> Option<Value> {
        Some(match event {
            RoomEvent::Chat(m) => json!({
                "event": "chat",
                "id": m.id,
                "from": m.from_name,
                "from_id": m.from.as_str(),
                "to": m.to.as_ref().map(|t| self.name(t)),
                "private": m.to.is_some(),
                "text": m.text,
            }),
            RoomEvent::RoomLocked { locked, by } => json!({
                "event": "room_locked",
                "locked": locked,
                "by": by.as_ref().map(|b| self.name(b)),
            }),
            RoomEvent::Moderated { action, by } => json!({
                "event": "moderated",
                "action": action_name(*action),
                "by": self.name(by),
            }),
            RoomEvent::Removed { by, reason } => json!({
                "event": "removed", "by": self.name(by), "reason": reason,
            }),
            RoomEvent::MeetingEnded { by } => json!({
                "event": "meeting_ended", "by": self.name(by),
            }),
            RoomEvent::ActiveSpeakers(ids) => json!({
                "event": "active_speakers",
                "peers": ids.iter().map(|id| self.name(id)).collect::<Vec<_>>(),
                "peer_ids": ids.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
            }),
            _ => return None,
        })
    }

    /// Runs one chat line (a message or a command); returns what to print.
    pub async fn run_line(&mut self, room: &RoomHandle, line: &str) -> Result<String, String> {
        if line.trim().is_empty() {
            return Ok(String::new());
        }
        let people: Vec<PeerInfo> = self.others.values().cloned().collect();
        let command = chat_command::parse(line, &people)?;
        let result = match &command {
            ChatCommand::Say { text, to } => room.send_chat(text.clone(), to.clone()).await,
            ChatCommand::Hand(want) => {
                let raise = want.unwrap_or(!self.hand_up);
                room.set_hand_raised(raise).await
            }
            ChatCommand::Moderate { peer, action } => room.moderate(peer.clone(), *action).await,
            ChatCommand::Remove { peer, reason } => {
                room.remove_peer(peer.clone(), reason.clone()).await
            }
            ChatCommand::Lock(locked) => room.lock_room(*locked).await,
            ChatCommand::End => room.end_meeting().await,
            ChatCommand::Help => return Ok(chat_command::HELP.to_owned()),
        };
        result.map_err(|e| e.to_string())?;
        Ok(match command {
            ChatCommand::Say { to: Some(to), .. } => format!("sent to {}", self.name(&to)),
            ChatCommand::Say { .. } => "sent".to_owned(),
            ChatCommand::Moderate { peer, action } => {
                format!("{} {}", action_name(action), self.name(&peer))
            }
            ChatCommand::Remove { peer, .. } => format!("removing {}", self.name(&peer)),
            other => format!("{other:?}").to_lowercase(),
        })
    }
}

fn action_name(action: ModerationAction) -> &'static str {
    match action {
        ModerationAction::MuteMicrophone => "mute_microphone",
        ModerationAction::StopCamera => "stop_camera",
        ModerationAction::StopScreen => "stop_screen",
        ModerationAction::LowerHand => "lower_hand",
        _ => "other",
    }
}
