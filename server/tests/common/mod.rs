//! Helpers shared by the chat and moderation tests: participants on a bare WebSocket, and the
//! few message shapes these tests read.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use videoroom_protocol::{
    ChatMessage, ClientMessage, ErrorCode, PROTOCOL_VERSION, PeerId, PeerInfo, RoomName,
    ServerMessage,
};
use videoroom_testkit::{RawClient, WAIT};

/// What a `joined` told its client.
#[derive(Debug, Clone)]
pub struct Joined {
    pub peer_id: PeerId,
    pub peers: Vec<PeerInfo>,
    pub moderator: bool,
    pub locked: bool,
    pub chat_history: Vec<ChatMessage>,
    pub resume_token: String,
}

impl Joined {
    /// Reads a `joined`; panics on anything else.
    pub fn from_message(m: ServerMessage) -> Joined {
        match m {
            ServerMessage::Joined {
                peer_id,
                peers,
                moderator,
                locked,
                chat_history,
                resume_token,
                ..
            } => Joined {
                peer_id,
                peers,
                moderator,
                locked,
                chat_history,
                resume_token,
            },
            other => panic!("expected joined, got {other:?}"),
        }
    }
}

/// A `join`, with a resume token if given.
pub fn join_with_token(room: &str, name: &str, resume_token: Option<String>) -> ClientMessage {
    ClientMessage::Join {
        protocol_version: PROTOCOL_VERSION,
        room: RoomName::new(room),
        display_name: name.to_owned(),
        metadata: None,
        resume_token,
        token: None,
    }
}

/// The code of a `join_error`; panics on anything else.
pub fn join_error_code(m: &ServerMessage) -> ErrorCode {
    match m {
        ServerMessage::JoinError { code, message } => {
            assert!(!message.is_empty(), "join_error {code:?} without a message");
            *code
        }
        other => panic!("expected join_error, got {other:?}"),
    }
}

/// A public chat message.
pub fn chat(text: &str) -> ClientMessage {
    ClientMessage::Chat {
        text: text.to_owned(),
        to: None,
    }
}

/// A private chat message.
pub fn chat_to(text: &str, to: &PeerId) -> ClientMessage {
    ClientMessage::Chat {
        text: text.to_owned(),
        to: Some(to.clone()),
    }
}

/// A participant on a bare WebSocket.
pub struct Member {
    pub name: String,
    pub id: PeerId,
    pub joined: Joined,
    pub client: RawClient,
}

impl Member {
    /// Connects and joins `room`; panics if refused.
    pub async fn join(url: &str, room: &str, name: &str) -> Member {
        Self::try_join(url, room, name, None)
            .await
            .unwrap_or_else(|code| panic!("{name}: join refused with {code:?}"))
    }

    /// Connects and joins `room` with `resume_token`; the `join_error` code if refused.
    pub async fn try_join(
        url: &str,
        room: &str,
        name: &str,
        resume_token: Option<String>,
    ) -> Result<Member, ErrorCode> {
        let mut client = RawClient::connect(url).await;
        client
            .send(&join_with_token(room, name, resume_token))
            .await;
        match client.recv().await {
            m @ ServerMessage::Joined { .. } => Ok(Member::new(client, name, m)),
            other => Err(join_error_code(&other)),
        }
    }

    /// A member from its connection and the `joined` it got.
    pub fn new(client: RawClient, name: &str, joined: ServerMessage) -> Member {
        let joined = Joined::from_message(joined);
        Member {
            name: name.to_owned(),
            id: joined.peer_id.clone(),
            joined,
            client,
        }
    }

    pub async fn send(&mut self, m: ClientMessage) {
        self.client.send(&m).await;
    }

    /// The next message, whatever it is.
    pub async fn recv(&mut self) -> ServerMessage {
        self.client.recv().await
    }

    pub async fn recv_until(&mut self, pred: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        self.client.recv_until(pred).await
    }

    /// Sends a public chat message.
    pub async fn say(&mut self, text: &str) {
        self.send(chat(text)).await;
    }

    /// The next message, which must be a chat message.
    pub async fn next_chat(&mut self) -> ChatMessage {
        match self.recv().await {
            ServerMessage::Chat { message } => message,
            other => panic!("{}: expected chat, got {other:?}", self.name),
        }
    }

    /// The next message, which must be `error` with `code`.
    pub async fn expect_error(&mut self, code: ErrorCode) {
        match self.recv().await {
            ServerMessage::Error { code: got, message } => {
                assert_eq!(got, code, "{}: {message}", self.name);
                assert!(
                    !message.is_empty(),
                    "{}: error without a message",
                    self.name
                );
            }
            other => panic!("{}: expected error {code:?}, got {other:?}", self.name),
        }
    }

    /// Proves nothing is queued for this member: the next message is the pong to a ping.
    pub async fn expect_nothing_pending(&mut self) {
        self.send(ClientMessage::Ping { id: 4242 }).await;
        let m = self.recv().await;
        assert_eq!(
            m,
            ServerMessage::Pong { id: 4242 },
            "{}: unexpected message",
            self.name
        );
    }

    /// Reads to the end of the socket: the close frame's code (`None` if the socket ended
    /// without one) and every message that came before it.
    pub async fn read_to_close(&mut self) -> (Option<CloseCode>, Vec<ServerMessage>) {
        let mut before = Vec::new();
        loop {
            let frame = tokio::time::timeout(WAIT, self.client.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: socket not closed within {WAIT:?}", self.name));
            match frame {
                Some(Ok(Message::Text(text))) => {
                    before.push(ServerMessage::parse(text.as_str()).expect("valid message"));
                }
                Some(Ok(Message::Close(frame))) => return (frame.map(|f| f.code), before),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return (None, before),
            }
        }
    }
}

/// Joins `names` to `room` in order. Every earlier member reads exactly the `peer_joined` of
/// each later one, so all queues are empty when this returns.
pub async fn join_all(url: &str, room: &str, names: &[&str]) -> Vec<Member> {
    let mut members = Vec::new();
    join_more(&mut members, url, room, names).await;
    members
}

/// Joins `names` to `room` after `members`, as [`join_all`] does.
pub async fn join_more(members: &mut Vec<Member>, url: &str, room: &str, names: &[&str]) {
    for name in names {
        let newcomer = Member::join(url, room, name).await;
        for member in members.iter_mut() {
            match member.recv().await {
                ServerMessage::PeerJoined { peer } => assert_eq!(
                    peer.peer_id, newcomer.id,
                    "{}: peer_joined for someone else",
                    member.name
                ),
                other => panic!("{}: expected peer_joined, got {other:?}", member.name),
            }
        }
        members.push(newcomer);
    }
}
