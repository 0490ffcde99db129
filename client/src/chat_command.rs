//! Chat lines as a keyboard command line: `/msg NAME text`, `/hand`, `/mute NAME`, `/lock`…
//! (the same commands the desktop app's chat box takes). A line not starting with `/` is a
//! message to everyone; `//text` sends "/text".
//!
//! Names may contain spaces: the longest display name (case-insensitive) that starts the rest
//! of the line wins, or the name is given in double quotes.

use videoroom_protocol::{ModerationAction, PeerId, PeerInfo};

/// What a chat line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    /// Send `text` to everyone, or to one peer.
    Say {
        /// The text.
        text: String,
        /// The one recipient.
        to: Option<PeerId>,
    },
    /// Raise (`Some(true)`), lower (`Some(false)`) or toggle (`None`) our hand.
    Hand(Option<bool>),
    /// A moderator's action on someone.
    Moderate {
        /// Whom.
        peer: PeerId,
        /// What.
        action: ModerationAction,
    },
    /// Remove someone.
    Remove {
        /// Whom.
        peer: PeerId,
        /// Why.
        reason: Option<String>,
    },
    /// Lock (`true`) or unlock the room.
    Lock(bool),
    /// End the meeting.
    End,
    /// Show [`HELP`].
    Help,
}

/// The commands, one per line.
pub const HELP: &str = "\
/msg NAME text     private message to NAME
/hand              raise or lower your hand
/mute NAME         (moderators) mute NAME's microphone
/stopvideo NAME    (moderators) turn NAME's camera off
/stopscreen NAME   (moderators) stop NAME's screen share
/lower NAME        (moderators) lower NAME's hand
/remove NAME [why] (moderators) remove NAME from the room (also /kick)
/lock, /unlock     (moderators) close the room to new people, or open it
/end               (moderators) end the meeting for everyone
//text             send a message that starts with /";

/// Parses one chat line against the people in the room (`peers`, ourselves excluded or not).
/// The error is a sentence for the person who typed it.
pub fn parse(line: &str, peers: &[PeerInfo]) -> Result<ChatCommand, String> {
    let line = line.trim();
    if let Some(literal) = line.strip_prefix("//") {
        return Ok(ChatCommand::Say {
            text: format!("/{literal}"),
            to: None,
        });
    }
    let Some(command) = line.strip_prefix('/') else {
        return Ok(ChatCommand::Say {
            text: line.to_owned(),
            to: None,
        });
    };
    let (word, rest) = match command.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim_start()),
        None => (command, ""),
    };
    match word.to_lowercase().as_str() {
        "help" | "?" => Ok(ChatCommand::Help),
        "msg" | "w" => {
            let (peer, text) = find_peer(rest, peers)?;
            if text.is_empty() {
                return Err("nothing to send: /msg NAME text".into());
            }
            Ok(ChatCommand::Say {
                text: text.to_owned(),
                to: Some(peer),
            })
        }
        "hand" => Ok(ChatCommand::Hand(match rest {
            "up" | "on" => Some(true),
            "down" | "off" => Some(false),
            _ => None,
        })),
        "mute" => moderate(find_peer(rest, peers)?, ModerationAction::MuteMicrophone),
        "stopvideo" | "stopcamera" => {
            moderate(find_peer(rest, peers)?, ModerationAction::StopCamera)
        }
        "stopscreen" => moderate(find_peer(rest, peers)?, ModerationAction::StopScreen),
        "lower" => moderate(find_peer(rest, peers)?, ModerationAction::LowerHand),
        "remove" | "kick" => {
            let (peer, reason) = find_peer(rest, peers)?;
            Ok(ChatCommand::Remove {
                peer,
                reason: Some(reason.to_owned()).filter(|r| !r.is_empty()),
            })
        }
        "lock" => Ok(ChatCommand::Lock(true)),
        "unlock" => Ok(ChatCommand::Lock(false)),
        "end" => Ok(ChatCommand::End),
        other => Err(format!("unknown command /{other}; /help lists them")),
    }
}

fn moderate(
    (peer, extra): (PeerId, &str),
    action: ModerationAction,
) -> Result<ChatCommand, String> {
    if !extra.is_empty() {
        return Err(format!("unexpected text after the name: {extra:?}"));
    }
    Ok(ChatCommand::Moderate { peer, action })
}

/// The peer named at the start of `rest`, and what follows the name.
fn find_peer<'a>(rest: &'a str, peers: &[PeerInfo]) -> Result<(PeerId, &'a str), String> {
    if rest.is_empty() {
        return Err("name someone: the command needs a NAME".into());
    }
    if let Some(quoted) = rest.strip_prefix('"') {
        let Some((name, after)) = quoted.split_once('"') else {
            return Err("missing closing \" after the name".into());
        };
        let matching: Vec<&PeerInfo> = peers
            .iter()
            .filter(|p| p.display_name.to_lowercase() == name.to_lowercase())
            .collect();
        return one(name, &matching).map(|id| (id, after.trim_start()));
    }
    // The longest name that starts the line (ignoring case) and ends at a word boundary.
    let starts_with = |p: &PeerInfo| {
        let n = &p.display_name;
        rest.get(..n.len())
            .is_some_and(|head| head.to_lowercase() == n.to_lowercase())
            && rest[n.len()..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace)
    };
    let Some(len) = peers
        .iter()
        .filter(|p| starts_with(p))
        .map(|p| p.display_name.len())
        .max()
    else {
        let word = rest.split_whitespace().next().unwrap_or(rest);
        return Err(format!("no one called {word:?} is in the room"));
    };
    let matching: Vec<&PeerInfo> = peers
        .iter()
        .filter(|p| p.display_name.len() == len && starts_with(p))
        .collect();
    one(&rest[..len], &matching).map(|id| (id, rest[len..].trim_start()))
}

fn one(name: &str, matching: &[&PeerInfo]) -> Result<PeerId, String> {
    match matching {
        [p] => Ok(p.peer_id.clone()),
        [] => Err(format!("no one called {name:?} is in the room")),
        _ => Err(format!(
            "{} people are called {name:?}; use the People list instead",
            matching.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> Vec<PeerInfo> {
        [("p-1", "Grace"), ("p-2", "Grace Hopper"), ("p-3", "Ada")]
            .into_iter()
            .map(|(id, name)| PeerInfo::new(PeerId::new(id), name))
            .collect()
    }

    #[test]
    fn plain_text_and_escaped_slash_are_messages() {
        let say = |t: &str| ChatCommand::Say {
            text: t.into(),
            to: None,
        };
        assert_eq!(parse("  hello  ", &peers()), Ok(say("hello")));
        assert_eq!(parse("//shrug", &peers()), Ok(say("/shrug")));
    }

    #[test]
    fn names_with_spaces_take_the_longest_match_or_quotes() {
        let p = peers();
        assert_eq!(
            parse("/msg grace hopper are you there", &p),
            Ok(ChatCommand::Say {
                text: "are you there".into(),
                to: Some(PeerId::new("p-2"))
            })
        );
        assert_eq!(
            parse("/msg Grace hi", &p),
            Ok(ChatCommand::Say {
                text: "hi".into(),
                to: Some(PeerId::new("p-1"))
            })
        );
        assert_eq!(
            parse("/mute \"Grace\"", &p),
            Ok(ChatCommand::Moderate {
                peer: PeerId::new("p-1"),
                action: ModerationAction::MuteMicrophone
            })
        );
        // "Adam" is not "Ada" followed by a word boundary.
        assert!(parse("/mute Adam", &p).is_err());
    }

    #[test]
    fn moderation_commands() {
        let p = peers();
        assert_eq!(
            parse("/kick Ada off topic", &p),
            Ok(ChatCommand::Remove {
                peer: PeerId::new("p-3"),
                reason: Some("off topic".into())
            })
        );
        assert_eq!(
            parse("/remove Ada", &p),
            Ok(ChatCommand::Remove {
                peer: PeerId::new("p-3"),
                reason: None
            })
        );
        assert_eq!(
            parse("/stopscreen Grace Hopper", &p),
            Ok(ChatCommand::Moderate {
                peer: PeerId::new("p-2"),
                action: ModerationAction::StopScreen
            })
        );
        assert!(HELP.contains("/stopscreen NAME"));
        assert_eq!(parse("/lock", &p), Ok(ChatCommand::Lock(true)));
        assert_eq!(parse("/unlock", &p), Ok(ChatCommand::Lock(false)));
        assert_eq!(parse("/end", &p), Ok(ChatCommand::End));
        assert_eq!(parse("/hand", &p), Ok(ChatCommand::Hand(None)));
        assert_eq!(parse("/hand up", &p), Ok(ChatCommand::Hand(Some(true))));
        assert_eq!(parse("/help", &p), Ok(ChatCommand::Help));
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        let p = peers();
        assert!(parse("/mute", &p).unwrap_err().contains("NAME"));
        assert!(parse("/mute Linus", &p).unwrap_err().contains("Linus"));
        assert!(parse("/frobnicate", &p).unwrap_err().contains("/help"));
        assert!(
            parse("/msg Ada", &p)
                .unwrap_err()
                .contains("nothing to send")
        );
        assert!(parse("/mute \"Ada", &p).unwrap_err().contains('"'));
        let twins = vec![
            PeerInfo::new(PeerId::new("p-1"), "Sam"),
            PeerInfo::new(PeerId::new("p-2"), "sam"),
        ];
        assert!(parse("/mute Sam", &twins).unwrap_err().contains("2 people"));
        // Case changes that alter byte lengths never split a character.
        let odd = vec![PeerInfo::new(PeerId::new("p-1"), "İx")];
        // (Slicing at a byte length taken from another string would panic here.)
        let _ = parse("/mute i̇x", &odd);
        assert!(parse("/mute é", &odd).is_err());
    }
}
