//! One WebSocket connection: the session between a client and the server.
//!
//! The session parses each frame ([`ClientMessage::parse`]), checks it is allowed in the current
//! state (lobby or joined), and hands it to the room (membership, mute, metadata) or to the peer's
//! endpoint (SDP, candidates). It writes everything the room and endpoint queue for the client.
//! Bad input gets an `error` (quoting at most a short excerpt of it) and the connection stays
//! usable; an oversized frame closes with 1009, a text frame that is not UTF-8 with 1007, a
//! frame that breaks the WebSocket protocol with 1002.

use crate::Shared;
use crate::auth::{Admission, Grants, unix_now};
use crate::config::AuthMode;
use crate::limits::{LimitKind, Limited, MessageLimiter};
use crate::peer::{EndpointCommand, EndpointHandle};
use crate::registry::{JoinError, JoinRequest};
use crate::room::{PeerAction, RoomCommand, RoomHandle};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};
use videoroom_protocol::{
    ClientMessage, ErrorCode, MAX_VIEW_SIZES, PROTOCOL_VERSION, PeerId, RoomName, ServerMessage,
    excerpt_to, validate_chat_text, validate_display_name, validate_metadata, validate_reason,
    validate_room_name,
};

/// Longest `error` or `join_error` message sent, in characters (longer ones are cut).
pub const MAX_ERROR_MESSAGE_CHARS: usize = 300;
/// Messages the room and endpoint may queue for one client before it counts as not reading.
pub const OUTBOUND_QUEUE: usize = 256;
/// Longest wait for the client to take one frame.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection in no room (never joined, or every join refused) is closed after this long.
pub const LOBBY_TIMEOUT: Duration = Duration::from_secs(60);
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
        grants: Grants,
        /// The invitation named this participant: no renaming.
        fixed_name: bool,
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
    client_ip: IpAddr,
) {
    let span =
        info_span!("session", %remote, room = tracing::field::Empty, peer = tracing::field::Empty);
    let messages = shared.limits.message_limiter();
    Session {
        client_ip,
        messages,
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
    /// The client's address, as the abuse limits count it.
    client_ip: IpAddr,
    /// This connection's bucket of signaling messages.
    messages: MessageLimiter,
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
        let mut sent_away: Option<&'static str> = None;
        // A connection that joins no room is closed after a while: it holds a connection slot.
        let lobby_deadline = tokio::time::sleep(LOBBY_TIMEOUT);
        tokio::pin!(lobby_deadline);
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
                        match message {
                            ServerMessage::Removed { .. } => sent_away = Some("removed by a moderator"),
                            ServerMessage::MeetingEnded { .. } => sent_away = Some("meeting ended"),
                            _ => {}
                        }
                        if self.send(&message).await.is_err() {
                            break End::ClientGone;
                        }
                    }
                    // A moderator removed this peer or ended the meeting: a normal close.
                    None if sent_away.is_some() => {
                        break End::Close(close_code::NORMAL, sent_away.unwrap_or_default());
                    }
                    // The room removed this peer (failure or shutdown) and said why.
                    None => break End::Close(close_code::AWAY, "removed from room"),
                },
                _ = self.shared.shutdown.cancelled(), if !joined => {
                    let _ = self.send(&ServerMessage::Closing { reason: "server shutting down".into() }).await;
                    break End::Close(close_code::AWAY, "server shutting down");
                }
                () = &mut lobby_deadline, if !joined => {
                    info!("no room joined within {LOBBY_TIMEOUT:?}; closing");
                    break End::Close(close_code::POLICY, "join a room or disconnect");
                }
                _ = ping.tick() => {
                    if self.last_seen.elapsed() > IDLE_TIMEOUT {
                        info!("client silent for 30 s; closing");
                        break End::Close(close_code::AWAY, "idle timeout");
                    }
                    if self.send_frame(Message::Ping(Default::default())).await.is_err() {
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
            let _ = self.send_frame(Message::Close(Some(frame))).await;
        }
        self.shared.metrics.connections.dec();
        debug!("session ended");
    }

    async fn send(&mut self, message: &ServerMessage) -> Result<(), axum::Error> {
        let text = match message {
            // The last guard against echoing a client's input at length: every quote of it is
            // cut to an excerpt where the message is made; no message is longer than this.
            ServerMessage::Error { code, message } if message.len() > MAX_ERROR_MESSAGE_CHARS => {
                ServerMessage::Error {
                    code: *code,
                    message: excerpt_to(message, MAX_ERROR_MESSAGE_CHARS),
                }
                .to_json()
            }
            ServerMessage::JoinError { code, message }
                if message.len() > MAX_ERROR_MESSAGE_CHARS =>
            {
                ServerMessage::JoinError {
                    code: *code,
                    message: excerpt_to(message, MAX_ERROR_MESSAGE_CHARS),
                }
                .to_json()
            }
            other => other.to_json(),
        };
        self.send_frame(Message::Text(text.into())).await
    }

    /// Sends a frame, giving up after [`SEND_TIMEOUT`]: a client that stops reading (its TCP
    /// window shut) must not hold this task, its socket and its connection slot forever.
    async fn send_frame(&mut self, frame: Message) -> Result<(), axum::Error> {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(frame)).await {
            Ok(sent) => sent,
            Err(_) => {
                info!("client took no message for {SEND_TIMEOUT:?}; closing");
                Err(axum::Error::new(std::io::Error::from(
                    std::io::ErrorKind::TimedOut,
                )))
            }
        }
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
        if let Some(Ok(Message::Text(_) | Message::Binary(_))) = &frame
            && let Err(limited) = self.messages.check()
        {
            return self.rate_limited(LimitKind::Message, limited).await;
        }
        let limit = self.shared.config.max_message_bytes;
        let text = match frame {
            None | Some(Ok(Message::Close(_))) => return Err(End::ClientGone),
            Some(Err(e)) => return Err(end_for(&e)),
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
                    token,
                },
            ) => {
                let names = (room.as_str(), display_name);
                self.join(protocol_version, names, metadata, (resume_token, token))
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
            (State::Joined { grants, .. }, ClientMessage::SdpOffer { tracks, .. })
                if !grants.publish && !tracks.is_empty() =>
            {
                self.error(
                    ErrorCode::PublishNotAllowed,
                    "your invitation lets you watch and listen, not publish; ask the organizer \
                     for one that allows publishing",
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
            (State::Joined { .. }, ClientMessage::SetViewSizes { views })
                if views.len() > MAX_VIEW_SIZES =>
            {
                self.error(
                    ErrorCode::InvalidMessage,
                    format!(
                        "set_view_sizes takes at most {MAX_VIEW_SIZES} entries, not {}; send several",
                        views.len()
                    ),
                )
                .await
            }
            (State::Joined { endpoint, .. }, ClientMessage::SetViewSizes { views }) => {
                let endpoint = endpoint.clone();
                self.forward(endpoint, EndpointCommand::SetViews(views)).await
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
                State::Joined {
                    fixed_name: true, ..
                },
                ClientMessage::UpdatePeer {
                    display_name: Some(_),
                    ..
                },
            ) => {
                self.error(
                    ErrorCode::InvalidDisplayName,
                    "your invitation is for this name; it cannot be changed in the room",
                )
                .await
            }
            (
                State::Joined { room, peer_id, .. },
                ClientMessage::UpdatePeer {
                    display_name,
                    metadata,
                },
            ) => {
                let (room, peer_id) = (room.clone(), peer_id.clone());
                // The room stores and shows others the name in NFC.
                let display_name = match display_name.as_deref().map(validate_display_name) {
                    Some(Err(e)) => return self.error(e.code, e.message).await,
                    Some(Ok(name)) => Some(name),
                    None => None,
                };
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
        (resume_token, token): (Option<String>, Option<String>),
    ) -> Result<(), End> {
        if let Err(limited) = self.shared.limits.check_join(self.client_ip) {
            return self.rate_limited(LimitKind::Join, limited).await;
        }
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
        // The token is checked before the room is looked at: a refusal reveals nothing of it.
        let admission = match self.admission(token.as_deref(), room.as_str(), &name) {
            Ok(admission) => admission,
            Err(e) => {
                info!(code = ?e.code(), "join refused: {e}");
                self.shared.metrics.signaling_errors.inc();
                return self
                    .send(&refuse(e.code(), e.to_string()))
                    .await
                    .map_err(|_| End::ClientGone);
            }
        };
        let (out, from_room) = mpsc::channel(OUTBOUND_QUEUE);
        let shared = Arc::clone(&self.shared);
        let request = JoinRequest {
            room,
            display_name: name,
            metadata,
            resume_token,
            grants: admission.grants,
        };
        let joining = shared.rooms.join(&shared, request, out);
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
                    grants: admission.grants,
                    fixed_name: admission.fixed_name,
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

impl Session {
    /// What the joining participant may do: in an open room everything but moderating (the
    /// room decides that); with `--auth token`, what its token grants.
    fn admission(
        &self,
        token: Option<&str>,
        room: &str,
        name: &str,
    ) -> Result<Admission, crate::auth::TokenError> {
        match (self.shared.config.auth, &self.shared.authority) {
            (AuthMode::Token, Some(authority)) => authority.verify(token, room, name, unix_now()),
            // `Config::check` refuses token auth without a secret.
            (AuthMode::Token, None) => Err(crate::auth::TokenError::Invalid),
            (AuthMode::Open, _) => Ok(Admission::open()),
        }
    }
}

impl Session {
    /// Refuses a message (`error`) or a join (`join_error`) over the abuse limits with
    /// `rate_limited`; the connection stays usable.
    async fn rate_limited(&mut self, kind: LimitKind, limited: Limited) -> Result<(), End> {
        self.shared.metrics.count_limited(kind);
        let secs = limited.retry_after_secs();
        if kind == LimitKind::Join {
            info!(client_ip = %self.client_ip, "join rate limited");
            self.shared.metrics.signaling_errors.inc();
            let message = format!("too many joins from your address; try again in {secs} s");
            self.send(&ServerMessage::JoinError {
                code: ErrorCode::RateLimited,
                message,
            })
            .await
            .map_err(|_| End::ClientGone)
        } else {
            let message = format!("too many messages; slow down and send again in {secs} s");
            self.error(ErrorCode::RateLimited, message).await
        }
    }
}

/// How long an invitation created in the room may be valid (`create_invite`).
const INVITE_TTL_SECS: std::ops::RangeInclusive<u64> = 60..=30 * 24 * 3600;

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
            | ClientMessage::CreateInvite { .. }
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
        ClientMessage::CreateInvite {
            ttl_secs,
            moderator,
        } => {
            if !INVITE_TTL_SECS.contains(&ttl_secs) {
                return Err((
                    ErrorCode::InvalidMessage,
                    format!(
                        "an invitation is valid for 60 seconds to 30 days, not {ttl_secs} seconds"
                    ),
                ));
            }
            PeerAction::CreateInvite {
                ttl: std::time::Duration::from_secs(ttl_secs),
                moderator,
            }
        }
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
        ClientMessage::CreateInvite { .. } => "create_invite",
        ClientMessage::SetViewSizes { .. } => "set_view_sizes",
        _ => "unknown",
    }
}

/// How a session ends on a socket error: a frame over `max_message_size` closes with 1009, a
/// text frame that is not UTF-8 with 1007, a frame that breaks RFC 6455 (unmasked, reserved
/// bits, fragmented or oversized control frame, unknown opcode, stray continuation) with 1002;
/// anything else (the connection reset or gone) just ends the session.
fn end_for(error: &axum::Error) -> End {
    use tungstenite::error::ProtocolError as P;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        match e.downcast_ref::<tungstenite::Error>() {
            Some(tungstenite::Error::Capacity(_)) => {
                warn!("frame over the size limit; closing with 1009");
                return End::Close(close_code::SIZE, "message too big");
            }
            Some(tungstenite::Error::Utf8(_)) => {
                info!("text frame is not UTF-8; closing with 1007");
                return End::Close(close_code::INVALID, "text frame is not valid UTF-8");
            }
            Some(tungstenite::Error::Protocol(p)) => {
                let reason = match p {
                    P::NonZeroReservedBits => "reserved bits set without an extension",
                    P::UnmaskedFrameFromClient => "client frames must be masked",
                    P::FragmentedControlFrame => "control frames must not be fragmented",
                    P::ControlFrameTooBig => "control frame over 125 bytes",
                    P::UnknownControlFrameType(_)
                    | P::UnknownDataFrameType(_)
                    | P::InvalidOpcode(_) => "unknown opcode",
                    P::UnexpectedContinueFrame => "continuation frame without a message",
                    P::ExpectedFragment(_) => "new message before the last one ended",
                    P::InvalidCloseSequence => "invalid close frame",
                    // Reset, or frames after a close: nobody to tell.
                    _ => break,
                };
                info!("WebSocket protocol violation ({reason}); closing with 1002");
                return End::Close(close_code::PROTOCOL, reason);
            }
            _ => {}
        }
        source = e.source();
    }
    debug!("socket error: {error}");
    End::ClientGone
}
