//! One WebSocket connection: the session between a client and the server.
//!
//! The session parses each frame ([`ClientMessage::parse`]), checks it is allowed in the current
//! state (lobby or joined), and hands it to the room (membership, mute, metadata) or to the peer's
//! endpoint (SDP, candidates). It writes everything the room and endpoint queue for the client.
//! Bad input gets an `error` and the connection stays usable; an oversized frame closes with 1009.

use crate::Shared;
use crate::peer::{EndpointCommand, EndpointHandle};
use crate::registry::JoinError;
use crate::room::{PeerAction, RoomCommand, RoomHandle};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};
use videoroom_protocol::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, PeerId, RoomName, ServerMessage,
    validate_chat_text, validate_display_name, validate_metadata, validate_reason,
    validate_room_name,
};

/// Messages the room and endpoint may queue for one client before it counts as not reading.
pub const OUTBOUND_QUEUE: usize = 256;
/// A connection silent for this long (no frame, no pong) is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const PING_INTERVAL: Duration = Duration::from_secs(10);

enum State {
    Lobby,
    Joined {
        room: RoomHandle,
        peer_id: PeerId,
        endpoint: EndpointHandle,
        from_room: mpsc::Receiver<ServerMessage>,
    },
}

/// Why the session loop ended.
enum End {
    /// The client closed, vanished, or broke the protocol at the transport level.
    ClientGone,
    /// The client sent `leave`.
    Left,
    /// We close with this code and reason.
    Close(u16, &'static str),
}

/// Runs one session to its end. `permit` is the connection-limit slot it holds.
pub async fn run(
    socket: WebSocket,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
    remote: String,
) {
    let span =
        info_span!("session", %remote, room = tracing::field::Empty, peer = tracing::field::Empty);
    Session {
        socket,
        shared,
        state: State::Lobby,
        last_seen: Instant::now(),
    }
    .run()
    .instrument(span)
    .await;
    drop(permit);
}

struct Session {
    socket: WebSocket,
    shared: Arc<Shared>,
    state: State,
    last_seen: Instant,
}

impl Session {
    async fn run(mut self) {
        self.shared.metrics.connections.inc();
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The room sent `removed` or `meeting_ended`: its closing the queue is not a failure.
        let mut sent_away = false;
        let end = loop {
            let joined = matches!(self.state, State::Joined { .. });
            tokio::select! {
                frame = self.socket.recv() => {
                    self.last_seen = Instant::now();
                    match self.on_frame(frame).await {
                        Ok(()) => {}
                        Err(end) => break end,
                    }
                }
                queued = recv_queued(&mut self.state), if joined => match queued {
                    Some(message) => {
                        if let ServerMessage::Removed { .. } | ServerMessage::MeetingEnded { .. } = message {
                            sent_away = true;
                        }
                        if self.send(&message).await.is_err() {
                            break End::ClientGone;
                        }
                    }
                    // A moderator removed this peer or ended the meeting: a normal close.
                    None if sent_away => break End::Close(close_code::NORMAL, "removed by a moderator"),
                    // The room removed this peer (failure or shutdown) and said why.
                    None => break End::Close(close_code::AWAY, "removed from room"),
                },
                _ = self.shared.shutdown.cancelled(), if !joined => {
                    let _ = self.send(&ServerMessage::Closing { reason: "server shutting down".into() }).await;
                    break End::Close(close_code::AWAY, "server shutting down");
                }
                _ = ping.tick() => {
                    if self.last_seen.elapsed() > IDLE_TIMEOUT {
                        info!("client silent for 30 s; closing");
                        break End::Close(close_code::AWAY, "idle timeout");
                    }
                    if self.socket.send(Message::Ping(Default::default())).await.is_err() {
                        break End::ClientGone;
                    }
                }
            }
        };
        if let State::Joined { room, peer_id, .. } = &self.state {
            room.send(RoomCommand::Leave {
                peer_id: peer_id.clone(),
                deliberate: matches!(end, End::Left),
            })
            .await;
        }
        let end = match end {
            End::Left => End::Close(close_code::NORMAL, "bye"),
            other => other,
        };
        if let End::Close(code, reason) = end {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = self.socket.send(Message::Close(Some(frame))).await;
        }
        self.shared.metrics.connections.dec();
        debug!("session ended");
    }

    async fn send(&mut self, message: &ServerMessage) -> Result<(), axum::Error> {
        self.socket
            .send(Message::Text(message.to_json().into()))
            .await
    }

    async fn error(&mut self, code: ErrorCode, message: impl Into<String>) -> Result<(), End> {
        self.shared.metrics.signaling_errors.inc();
        let message = message.into();
        debug!(?code, %message, "refusing message");
        self.send(&ServerMessage::Error { code, message })
            .await
            .map_err(|_| End::ClientGone)
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> Result<(), End> {
        let limit = self.shared.config.max_message_bytes;
        let text = match frame {
            None | Some(Ok(Message::Close(_))) => return Err(End::ClientGone),
            Some(Err(e)) => {
                return Err(if is_too_big(&e) {
                    warn!("frame over the size limit; closing with 1009");
                    End::Close(close_code::SIZE, "message too big")
                } else {
                    debug!("socket error: {e}");
                    End::ClientGone
                });
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(()),
            Some(Ok(Message::Binary(bytes))) => {
                if bytes.len() > limit {
                    return Err(End::Close(close_code::SIZE, "message too big"));
                }
                return self
                    .error(
                        ErrorCode::MalformedMessage,
                        "binary frames are not part of the protocol; send JSON text",
                    )
                    .await;
            }
            Some(Ok(Message::Text(text))) => text,
        };
        if text.len() > limit {
            warn!(
                bytes = text.len(),
                limit, "message over the size limit; closing with 1009"
            );
            return Err(End::Close(close_code::SIZE, "message too big"));
        }
        match ClientMessage::parse(text.as_str()) {
            Ok(message) => self.on_message(message).await,
            Err(e) => self.error(e.code(), e.to_string()).await,
        }
    }

    async fn on_message(&mut self, message: ClientMessage) -> Result<(), End> {
        match (&self.state, message) {
            (_, ClientMessage::Ping { id }) => self
                .send(&ServerMessage::Pong { id })
                .await
                .map_err(|_| End::ClientGone),
            (
                State::Lobby,
                ClientMessage::Join {
                    protocol_version,
                    room,
                    display_name,
                    metadata,
                    resume_token,
                },
            ) => {
                let names = (room.as_str(), display_name);
                self.join(protocol_version, names, metadata, resume_token)
                    .await
            }
            (State::Joined { .. }, ClientMessage::Join { .. }) => {
                self.error(
                    ErrorCode::InvalidState,
                    "already joined; send `leave` first",
                )
                .await
            }
            (State::Lobby, ClientMessage::Leave) => Err(End::Close(close_code::NORMAL, "bye")),
            (State::Lobby, other) => {
                let kind = kind_of(&other);
                self.error(
                    ErrorCode::InvalidState,
                    format!("`{kind}` before `join`: join a room first"),
                )
                .await
            }
            (State::Joined { endpoint, .. }, ClientMessage::SdpOffer { sdp, tracks }) => {
                let endpoint = endpoint.clone();
                self.forward(endpoint, EndpointCommand::ClientOffer { sdp, tracks })
                    .await
            }
            (State::Joined { endpoint, .. }, ClientMessage::SdpAnswer { sdp }) => {
                let endpoint = endpoint.clone();
                self.forward(endpoint, EndpointCommand::ClientAnswer { sdp })
                    .await
            }
            (State::Joined { endpoint, .. }, ClientMessage::IceCandidate { candidate }) => {
                let endpoint = endpoint.clone();
                self.forward(endpoint, EndpointCommand::ClientCandidate(candidate))
                    .await
            }
            (
                State::Joined { room, peer_id, .. },
                ClientMessage::UpdateTrack { track_id, muted },
            ) => {
                let command = RoomCommand::UpdateTrack {
                    peer_id: peer_id.clone(),
                    track_id,
                    muted,
                    relayed: false,
                };
                room.clone().send(command).await;
                Ok(())
            }
            (
                State::Joined { room, peer_id, .. },
                ClientMessage::UpdatePeer {
                    display_name,
                    metadata,
                },
            ) => {
                let (room, peer_id) = (room.clone(), peer_id.clone());
                if let Some(name) = &display_name
                    && let Err(e) = validate_display_name(name)
                {
                    return self.error(e.code, e.message).await;
                }
                if let Some(m) = &metadata
                    && let Err(e) = validate_metadata(m)
                {
                    return self.error(e.code, e.message).await;
                }
                room.send(RoomCommand::UpdatePeer {
                    peer_id,
                    display_name,
                    metadata,
                })
                .await;
                Ok(())
            }
            (State::Joined { .. }, ClientMessage::Leave) => Err(End::Left),
            (State::Joined { room, peer_id, .. }, message) if is_room_action(&message) => {
                let (room, peer_id) = (room.clone(), peer_id.clone());
                match room_action(message) {
                    Ok(action) => {
                        room.send(RoomCommand::Act { peer_id, action }).await;
                        Ok(())
                    }
                    Err((code, message)) => self.error(code, message).await,
                }
            }
            (State::Joined { .. }, other) => {
                let kind = kind_of(&other);
                self.error(
                    ErrorCode::UnknownMessageType,
                    format!("`{kind}` is not handled by this server"),
                )
                .await
            }
        }
    }

    async fn forward(
        &mut self,
        endpoint: EndpointHandle,
        command: EndpointCommand,
    ) -> Result<(), End> {
        if endpoint.send(command).await {
            Ok(())
        } else {
            self.error(
                ErrorCode::Internal,
                "media endpoint is gone; leave and join again",
            )
            .await
        }
    }

    async fn join(
        &mut self,
        protocol_version: u32,
        (room, display_name): (&str, String),
        metadata: Option<serde_json::Value>,
        resume_token: Option<String>,
    ) -> Result<(), End> {
        let refuse = |code, message: String| ServerMessage::JoinError { code, message };
        let (room, name) =
            match check_join(protocol_version, room, &display_name, metadata.as_ref()) {
                Ok(ok) => ok,
                Err((code, message)) => {
                    self.shared.metrics.signaling_errors.inc();
                    return self
                        .send(&refuse(code, message))
                        .await
                        .map_err(|_| End::ClientGone);
                }
            };
        let (out, from_room) = mpsc::channel(OUTBOUND_QUEUE);
        let shared = Arc::clone(&self.shared);
        let joining = shared
            .rooms
            .join(&shared, room, name, metadata, resume_token, out);
        match joining.await {
            Ok((room, joined)) => {
                let span = tracing::Span::current();
                span.record("room", tracing::field::display(&room.name));
                span.record("peer", tracing::field::display(&joined.peer_id));
                self.state = State::Joined {
                    room,
                    peer_id: joined.peer_id,
                    endpoint: joined.endpoint,
                    from_room,
                };
                Ok(())
            }
            Err(e) => {
                let code = match &e {
                    JoinError::ShuttingDown => ErrorCode::ShuttingDown,
                    JoinError::Refused(r) => r.code(),
                };
                info!(?code, "join refused: {e}");
                self.shared.metrics.signaling_errors.inc();
                self.send(&refuse(code, e.to_string()))
                    .await
                    .map_err(|_| End::ClientGone)
            }
        }
    }
}

/// Whether `message` is chat, a hand or a moderator's action (handled by [`room_action`]).
fn is_room_action(message: &ClientMessage) -> bool {
    matches!(
        message,
        ClientMessage::Chat { .. }
            | ClientMessage::RaiseHand { .. }
            | ClientMessage::Moderate { .. }
            | ClientMessage::RemovePeer { .. }
            | ClientMessage::LockRoom { .. }
            | ClientMessage::EndMeeting
    )
}

/// Turns chat, hand and moderation messages into the room's [`PeerAction`], checking their
/// texts; what needs the room's state (rate limit, moderator grant, the target) is checked there.
fn room_action(message: ClientMessage) -> Result<PeerAction, (ErrorCode, String)> {
    Ok(match message {
        ClientMessage::Chat { text, to } => PeerAction::Chat {
            text: validate_chat_text(&text).map_err(|e| (e.code, e.message))?,
            to,
        },
        ClientMessage::RaiseHand { raised } => PeerAction::RaiseHand(raised),
        ClientMessage::Moderate { peer_id, action } => PeerAction::Moderate {
            target: peer_id,
            action,
        },
        ClientMessage::RemovePeer { peer_id, reason } => PeerAction::Remove {
            target: peer_id,
            reason: validate_reason(reason.as_deref()).map_err(|e| (e.code, e.message))?,
        },
        ClientMessage::LockRoom { locked } => PeerAction::Lock(locked),
        ClientMessage::EndMeeting => PeerAction::EndMeeting,
        other => {
            return Err((
                ErrorCode::UnknownMessageType,
                format!("`{}` is not a room action", kind_of(&other)),
            ));
        }
    })
}

/// Checks a `join`'s version, names and metadata.
fn check_join(
    protocol_version: u32,
    room: &str,
    display_name: &str,
    metadata: Option<&serde_json::Value>,
) -> Result<(RoomName, String), (ErrorCode, String)> {
    if protocol_version != PROTOCOL_VERSION {
        return Err((
            ErrorCode::UnsupportedVersion,
            format!(
                "this server speaks protocol version {PROTOCOL_VERSION}, not {protocol_version}; update the app"
            ),
        ));
    }
    let room = validate_room_name(room).map_err(|e| (e.code, e.message))?;
    let name = validate_display_name(display_name).map_err(|e| (e.code, e.message))?;
    if let Some(m) = metadata {
        validate_metadata(m).map_err(|e| (e.code, e.message))?;
    }
    Ok((room, name))
}

async fn recv_queued(state: &mut State) -> Option<ServerMessage> {
    match state {
        State::Joined { from_room, .. } => from_room.recv().await,
        State::Lobby => std::future::pending().await,
    }
}

fn kind_of(message: &ClientMessage) -> &'static str {
    match message {
        ClientMessage::Join { .. } => "join",
        ClientMessage::SdpOffer { .. } => "sdp_offer",
        ClientMessage::SdpAnswer { .. } => "sdp_answer",
        ClientMessage::IceCandidate { .. } => "ice_candidate",
        ClientMessage::UpdateTrack { .. } => "update_track",
        ClientMessage::UpdatePeer { .. } => "update_peer",
        ClientMessage::Leave => "leave",
        ClientMessage::Ping { .. } => "ping",
        ClientMessage::Chat { .. } => "chat",
        ClientMessage::RaiseHand { .. } => "raise_hand",
        ClientMessage::Moderate { .. } => "moderate",
        ClientMessage::RemovePeer { .. } => "remove_peer",
        ClientMessage::LockRoom { .. } => "lock_room",
        ClientMessage::EndMeeting => "end_meeting",
        _ => "unknown",
    }
}

/// Whether a socket error is tungstenite refusing a frame over `max_message_size`.
fn is_too_big(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(tungstenite::Error::Capacity(_)) = e.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}
