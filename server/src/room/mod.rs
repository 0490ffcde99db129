//! The room actor: who is in the room, what they publish, and who receives what.
//!
//! All room state lives in [`Room`], owned by one task; sessions and endpoints talk to it through a
//! [`RoomHandle`]. Every event is fanned out explicitly: a published track goes to every peer but
//! its publisher, a departure to everyone who remains.
//!
//! Changes to what a peer receives reach its endpoint as one command per change (a join's every
//! track, a publication's batch, a departure's tracks), and only after the messages announcing
//! them (`joined`, `tracks_added`, `tracks_removed` and `peer_left`) are in the peer's queue: the
//! endpoint's one `sdp_offer` for the change therefore follows them. The room ends when its last peer leaves
//! (removing itself from the registry first), when a moderator ends the meeting, or on server
//! shutdown. Chat, raised hands and moderation are in `actions.rs`.

mod actions;
mod speakers;

pub use actions::PeerAction;

use crate::Shared;
use crate::auth::Grants;
use crate::chat::{ActionLimiter, ChatHistory, action_limiter};
use crate::config::AuthMode;
use crate::engine::ForwarderHandle;
use crate::peer::{Endpoint, EndpointCommand, EndpointHandle};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};
use videoroom_protocol::{
    ErrorCode, PROTOCOL_VERSION, PeerId, PeerInfo, RoomName, ServerMessage, TrackId, TrackInfo,
};

/// How long the resume token of a peer whose connection was lost lets it back into a locked
/// room.
pub const RESUME_FOR: Duration = Duration::from_secs(120);

/// Why a join was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JoinRefused {
    /// The room is at its peer limit.
    #[error("room `{room}` is full ({max} peers); try again later or use another room")]
    Full {
        /// The room.
        room: RoomName,
        /// The limit.
        max: usize,
    },
    /// A moderator locked the room.
    #[error(
        "room `{room}` is locked: a moderator closed it to new participants; ask them to unlock it"
    )]
    Locked {
        /// The room.
        room: RoomName,
    },
    /// The room closed while the join was queued; the registry retries with a new room.
    #[error("room closed")]
    Closed,
    /// The server could not create the peer's media endpoint.
    #[error("cannot create a media endpoint: {0}")]
    Endpoint(String),
}

impl JoinRefused {
    /// The `join_error` code.
    pub fn code(&self) -> ErrorCode {
        match self {
            JoinRefused::Full { .. } => ErrorCode::RoomFull,
            JoinRefused::Locked { .. } => ErrorCode::RoomLocked,
            JoinRefused::Closed | JoinRefused::Endpoint(_) => ErrorCode::Internal,
        }
    }
}

/// A successful join, for the session.
pub struct Joined {
    /// The new peer's id.
    pub peer_id: PeerId,
    /// The peer's media endpoint, which takes its SDP and candidates.
    pub endpoint: EndpointHandle,
}

/// Orders for a room.
pub enum RoomCommand {
    /// A session asks to join.
    Join {
        /// Who.
        peer: PeerInfo,
        /// The session's outbound queue.
        out: mpsc::Sender<ServerMessage>,
        /// The resume token of an earlier session, if the client sent one.
        resume_token: Option<String>,
        /// What it may do.
        grants: Grants,
        /// The answer.
        reply: oneshot::Sender<Result<Joined, JoinRefused>>,
    },
    /// A peer leaves (or its WebSocket closed).
    Leave {
        /// Who.
        peer_id: PeerId,
        /// It sent `leave` (its resume token goes); else its connection was lost.
        deliberate: bool,
    },
    /// Chat, a raised hand, or a moderator's action.
    Act {
        /// Who.
        peer_id: PeerId,
        /// What.
        action: PeerAction,
    },
    /// A peer mutes or unmutes one of its tracks.
    UpdateTrack {
        /// Who.
        peer_id: PeerId,
        /// Which track.
        track_id: TrackId,
        /// New state.
        muted: bool,
        /// Sent back by the peer's endpoint (the track was published meanwhile): if the room
        /// still does not know it, it is an error, not another round trip.
        relayed: bool,
    },
    /// A peer changes its name or metadata.
    UpdatePeer {
        /// Who.
        peer_id: PeerId,
        /// New name.
        display_name: Option<String>,
        /// New metadata.
        metadata: Option<serde_json::Value>,
    },
    /// An endpoint started forwarding tracks its client publishes (announced together).
    TracksPublished {
        /// Publisher.
        peer_id: PeerId,
        /// The tracks and their forwarders.
        tracks: Vec<(TrackInfo, ForwarderHandle)>,
    },
    /// A publisher stopped sending tracks.
    TracksUnpublished {
        /// Publisher.
        peer_id: PeerId,
        /// The tracks.
        track_ids: Vec<TrackId>,
    },
    /// How loud one of a peer's audio tracks is (while it speaks, and once when it stops).
    SpeakerLevel {
        /// Publisher.
        peer_id: PeerId,
        /// The audio track.
        track_id: TrackId,
        /// Loudness 0..=1.
        level: f32,
        /// Whether it carries speech.
        speaking: bool,
    },
    /// A peer's media connection failed.
    PeerFailed {
        /// Who.
        peer_id: PeerId,
        /// Why, for the peer.
        reason: String,
    },
    /// Server shutdown: tell everyone and close.
    Shutdown,
}

/// Handle to a room actor.
#[derive(Clone)]
pub struct RoomHandle {
    tx: mpsc::Sender<RoomCommand>,
    /// The room's name.
    pub name: RoomName,
}

impl RoomHandle {
    /// Sends a command; false if the room has ended.
    pub async fn send(&self, command: RoomCommand) -> bool {
        self.tx.send(command).await.is_ok()
    }

    /// Sends a command without waiting; false if the room has ended or its queue is full
    /// (for reports that the next one replaces, like speaker levels).
    pub fn try_send(&self, command: RoomCommand) -> bool {
        self.tx.try_send(command).is_ok()
    }

    pub(crate) fn same_room(&self, other: &RoomHandle) -> bool {
        self.tx.same_channel(&other.tx)
    }

    pub(crate) async fn tracks_published(
        &self,
        peer_id: PeerId,
        tracks: Vec<(TrackInfo, ForwarderHandle)>,
    ) {
        self.send(RoomCommand::TracksPublished { peer_id, tracks })
            .await;
    }

    pub(crate) async fn tracks_unpublished(&self, peer_id: PeerId, track_ids: Vec<TrackId>) {
        self.send(RoomCommand::TracksUnpublished { peer_id, track_ids })
            .await;
    }

    pub(crate) async fn peer_failed(&self, peer_id: PeerId, reason: String) {
        self.send(RoomCommand::PeerFailed { peer_id, reason }).await;
    }
}

struct Member {
    info: PeerInfo,
    out: mpsc::Sender<ServerMessage>,
    endpoint: EndpointHandle,
    /// Join order: lower joined earlier.
    seq: u64,
    resume_token: String,
    /// Resume tokens of this person's earlier sessions in the room (revoked with a removal).
    earlier_tokens: Vec<String>,
    limiter: ActionLimiter,
    grants: Grants,
}

/// How a member leaves the room.
#[derive(Debug, Clone)]
enum Departure {
    /// It sent `leave`.
    Left,
    /// Its WebSocket ended without `leave`.
    Lost,
    /// Its media connection failed, or it stopped reading: it is told why.
    Failed(String),
    /// A moderator removed it (it was told).
    Removed,
}

struct Publication {
    info: TrackInfo,
    forwarder: ForwarderHandle,
}

/// The room actor's state.
pub struct Room {
    handle: RoomHandle,
    commands: mpsc::Receiver<RoomCommand>,
    shared: Arc<Shared>,
    /// The media worker every peer of this room lives on (chosen when the room opens).
    media: crate::engine::EngineHandle,
    members: BTreeMap<PeerId, Member>,
    tracks: BTreeMap<TrackId, Publication>,
    /// Who is speaking, loudest first (`active_speakers`).
    speakers: speakers::ActiveSpeakers,
    stalled: Vec<PeerId>,
    next_seq: u64,
    locked: bool,
    chat: ChatHistory,
    /// Resume tokens of peers whose connection was lost, and until when they hold.
    resumable: HashMap<String, Instant>,
    /// Resume tokens of every session of someone a moderator removed: never good again (a
    /// ghost of theirs leaving later must not make one good).
    revoked: std::collections::HashSet<String>,
    /// The meeting was ended: the actor stops once the members are gone.
    ended: bool,
}

impl Room {
    /// Spawns an empty room.
    pub fn spawn(name: RoomName, shared: Arc<Shared>) -> RoomHandle {
        let (tx, commands) = mpsc::channel(1024);
        let handle = RoomHandle {
            tx,
            name: name.clone(),
        };
        let media = shared.media.place_room();
        let room = Room {
            handle: handle.clone(),
            commands,
            shared,
            media,
            members: BTreeMap::new(),
            tracks: BTreeMap::new(),
            speakers: speakers::ActiveSpeakers::default(),
            stalled: Vec::new(),
            next_seq: 0,
            locked: false,
            chat: ChatHistory::default(),
            resumable: HashMap::new(),
            revoked: std::collections::HashSet::new(),
            ended: false,
        };
        tokio::spawn(
            room.run()
                .instrument(info_span!(parent: None, "room", room = %name)),
        );
        handle
    }

    async fn run(mut self) {
        self.shared.metrics.rooms.inc();
        info!("room opened");
        while let Some(command) = self.commands.recv().await {
            if let RoomCommand::Shutdown = command {
                self.shutdown();
                break;
            }
            self.handle(command).await;
            while let Some(peer_id) = self.stalled.pop() {
                warn!(peer = %peer_id, "peer stopped reading signaling messages; removing it");
                let reason = "signaling messages were not read".to_owned();
                self.remove(&peer_id, Departure::Failed(reason));
            }
            if self.members.is_empty() {
                // Unlist first, so no new join reaches this actor; then refuse what is queued.
                self.shared.rooms.remove(&self.handle);
                self.commands.close();
                while let Some(command) = self.commands.recv().await {
                    match command {
                        RoomCommand::Join { reply, .. } => {
                            let _ = reply.send(Err(JoinRefused::Closed));
                        }
                        RoomCommand::TracksPublished { tracks, .. } => drop(tracks),
                        _ => {}
                    }
                }
                break;
            }
        }
        self.shared.metrics.rooms.dec();
        info!("room closed");
    }

    async fn handle(&mut self, command: RoomCommand) {
        match command {
            RoomCommand::Join {
                peer,
                out,
                resume_token,
                grants,
                reply,
            } => {
                let result = self.join(peer, out, resume_token, grants).await;
                let _ = reply.send(result);
            }
            RoomCommand::Leave {
                peer_id,
                deliberate,
            } => {
                let how = if deliberate {
                    Departure::Left
                } else {
                    Departure::Lost
                };
                self.remove(&peer_id, how);
            }
            RoomCommand::Act { peer_id, action } => self.act(&peer_id, action),
            RoomCommand::PeerFailed { peer_id, reason } => {
                self.remove(&peer_id, Departure::Failed(reason));
            }
            RoomCommand::UpdateTrack {
                peer_id,
                track_id,
                muted,
                relayed,
            } => self.update_track(&peer_id, &track_id, muted, relayed),
            RoomCommand::UpdatePeer {
                peer_id,
                display_name,
                metadata,
            } => {
                let Some(member) = self.members.get_mut(&peer_id) else {
                    return;
                };
                if let Some(name) = display_name {
                    member.info.display_name = name;
                }
                if metadata.is_some() {
                    member.info.metadata = metadata;
                }
                let peer = member.info.clone();
                self.broadcast(None, ServerMessage::PeerUpdated { peer });
            }
            RoomCommand::TracksPublished { peer_id, tracks } => self.publish(peer_id, tracks),
            RoomCommand::SpeakerLevel {
                peer_id,
                track_id,
                level,
                speaking,
            } => {
                if self.members.contains_key(&peer_id)
                    && let Some(peer_ids) =
                        self.speakers.update(&peer_id, &track_id, level, speaking)
                {
                    self.broadcast(None, ServerMessage::ActiveSpeakers { peer_ids });
                }
            }
            RoomCommand::TracksUnpublished { peer_id, track_ids } => {
                let theirs: Vec<TrackId> = track_ids
                    .into_iter()
                    .filter(|id| {
                        self.tracks
                            .get(id)
                            .is_some_and(|p| p.info.peer_id == peer_id)
                    })
                    .collect();
                for track_id in &theirs {
                    if let Some(peer_ids) = self.speakers.update(&peer_id, track_id, 0.0, false) {
                        self.broadcast(None, ServerMessage::ActiveSpeakers { peer_ids });
                    }
                }
                let removed = self.withdraw(&theirs);
                self.unsubscribe_all(&removed);
            }
            RoomCommand::Shutdown => {}
        }
    }

    async fn join(
        &mut self,
        mut peer: PeerInfo,
        out: mpsc::Sender<ServerMessage>,
        resume_token: Option<String>,
        grants: Grants,
    ) -> Result<Joined, JoinRefused> {
        if self.ended {
            return Err(JoinRefused::Closed);
        }
        let max = self.shared.config.max_peers_per_room;
        if self.members.len() >= max {
            return Err(JoinRefused::Full {
                room: self.handle.name.clone(),
                max,
            });
        }
        let now = Instant::now();
        self.resumable.retain(|_, until| *until > now);
        // A token of an earlier session (lost, or a ghost still present) of this person.
        let resumed = resume_token.filter(|t| {
            !self.revoked.contains(t)
                && (self.resumable.contains_key(t)
                    || self.members.values().any(|m| &m.resume_token == t))
        });
        if self.locked && resumed.is_none() {
            return Err(JoinRefused::Locked {
                room: self.handle.name.clone(),
            });
        }
        let endpoint = Endpoint::spawn(
            peer.peer_id.clone(),
            self.handle.clone(),
            out.clone(),
            &self.shared.rtc,
            &self.media,
            Arc::clone(&self.shared.metrics),
            grants.publish,
        )
        .await
        .map_err(|e| JoinRefused::Endpoint(e.to_string()))?;
        let peer_id = peer.peer_id.clone();
        // Open rooms: the first participant moderates (and whoever is present longest after);
        // with tokens, whoever's token grants it.
        peer.moderator = match self.shared.config.auth {
            AuthMode::Open => !self.members.values().any(|m| m.info.moderator),
            AuthMode::Token => grants.moderator,
        };
        peer.hand_raised_at = None;
        let resume_token = format!("{:032x}", rand::random::<u128>());
        // `joined` goes into the session's queue before anything the endpoint sends.
        let joined = ServerMessage::Joined {
            protocol_version: PROTOCOL_VERSION,
            peer_id: peer_id.clone(),
            room: self.handle.name.clone(),
            peers: self.peers_in_join_order(),
            tracks: self.tracks.values().map(|p| p.info.clone()).collect(),
            ice_servers: self.shared.config.ice_servers.clone(),
            moderator: peer.moderator,
            locked: self.locked,
            chat_history: self.chat.messages(),
            resume_token: resume_token.clone(),
        };
        if out.try_send(joined).is_err() {
            endpoint.try_send(EndpointCommand::Close);
            return Err(JoinRefused::Endpoint("session went away".into()));
        }
        self.broadcast(None, ServerMessage::PeerJoined { peer: peer.clone() });
        if !self.speakers.current().is_empty() {
            // Who is speaking right now; the next change comes with everyone's.
            let _ = out.try_send(ServerMessage::ActiveSpeakers {
                peer_ids: self.speakers.current().to_vec(),
            });
        }
        if grants.subscribe && !self.tracks.is_empty() {
            // Every existing track in one order: the endpoint's first offer carries them all.
            endpoint.try_send(EndpointCommand::Subscribe {
                tracks: self
                    .tracks
                    .values()
                    .map(|p| (p.info.clone(), p.forwarder.clone()))
                    .collect(),
            });
        }
        info!(peer = %peer_id, name = %peer.display_name, peers = self.members.len() + 1, "peer joined");
        // Joined: the earlier session's token is used up (only now: a join that failed on the
        // way may be tried again with it), and travels with this person.
        let mut earlier_tokens = Vec::new();
        if let Some(token) = resumed {
            self.resumable.remove(&token);
            if let Some(ghost) = self.members.values().find(|m| m.resume_token == token) {
                earlier_tokens.extend(ghost.earlier_tokens.iter().cloned());
            }
            earlier_tokens.push(token);
        }
        self.next_seq += 1;
        self.members.insert(
            peer_id.clone(),
            Member {
                info: peer,
                out,
                endpoint: endpoint.clone(),
                seq: self.next_seq,
                resume_token,
                earlier_tokens,
                limiter: action_limiter(),
                grants,
            },
        );
        self.shared.metrics.peers.inc();
        Ok(Joined { peer_id, endpoint })
    }

    /// The others, in the order they joined.
    fn peers_in_join_order(&self) -> Vec<PeerInfo> {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.seq);
        members.into_iter().map(|m| m.info.clone()).collect()
    }

    fn remove(&mut self, peer_id: &PeerId, how: Departure) {
        let Some(member) = self.members.remove(peer_id) else {
            return;
        };
        self.shared.metrics.peers.dec();
        if let Departure::Failed(reason) = &how {
            let _ = member.out.try_send(ServerMessage::Closing {
                reason: format!("media connection failed: {reason}"),
            });
        }
        // A lost or failed connection may come back (its client rejoins with the token); a
        // peer that left or was removed may not, with this token or an earlier session's.
        if let Departure::Removed = how {
            for token in member.earlier_tokens.iter().chain([&member.resume_token]) {
                self.resumable.remove(token);
                self.revoked.insert(token.clone());
            }
        }
        if matches!(how, Departure::Lost | Departure::Failed(_))
            && !self.revoked.contains(&member.resume_token)
        {
            self.resumable
                .insert(member.resume_token.clone(), Instant::now() + RESUME_FOR);
        }
        let was_moderator = member.info.moderator;
        member.endpoint.try_send(EndpointCommand::Close);
        if let Some(peer_ids) = self.speakers.remove_peer(peer_id) {
            self.broadcast(None, ServerMessage::ActiveSpeakers { peer_ids });
        }
        // Dropping `member.out` lets the session see its queue end and close the socket.
        drop(member);
        let theirs: Vec<TrackId> = self
            .tracks
            .values()
            .filter(|p| &p.info.peer_id == peer_id)
            .map(|p| p.info.track_id.clone())
            .collect();
        // `tracks_removed`, `peer_left`, then the one offer each endpoint makes for it.
        let removed = self.withdraw(&theirs);
        self.broadcast(
            None,
            ServerMessage::PeerLeft {
                peer_id: peer_id.clone(),
            },
        );
        self.unsubscribe_all(&removed);
        info!(peer = %peer_id, peers = self.members.len(), how = ?how, "peer left");
        if was_moderator {
            self.hand_over_moderation();
        }
    }

    /// Open rooms always have one moderator: when it leaves, the member present longest takes
    /// over, and everyone is told.
    fn hand_over_moderation(&mut self) {
        let open = self.shared.config.auth == AuthMode::Open;
        if !open || self.ended || self.members.values().any(|m| m.info.moderator) {
            return;
        }
        let Some(next) = self.members.values_mut().min_by_key(|m| m.seq) else {
            return;
        };
        next.info.moderator = true;
        let peer = next.info.clone();
        info!(peer = %peer.peer_id, "moderation handed over");
        self.broadcast(None, ServerMessage::PeerUpdated { peer });
    }

    /// Publishes a batch of one peer's tracks: one `tracks_added` to every other member, then
    /// one `Subscribe` order with all of them to each subscriber's endpoint.
    fn publish(&mut self, peer_id: PeerId, tracks: Vec<(TrackInfo, ForwarderHandle)>) {
        let Some(publisher) = self.members.get(&peer_id) else {
            return; // left meanwhile; dropping the handles stops the forwarders once unused
        };
        let mut accepted = Vec::new();
        for (info, forwarder) in tracks {
            if info.peer_id != peer_id {
                continue;
            }
            if let Some(existing) = self.tracks.get(&info.track_id) {
                if existing.info.peer_id != peer_id {
                    warn!(track = %info.track_id, "track id already used in this room");
                    let _ = publisher.out.try_send(ServerMessage::Error {
                        code: ErrorCode::InvalidTrack,
                        message: format!(
                            "track id `{}` is already used in this room; publish it under another id",
                            videoroom_protocol::excerpt(info.track_id.as_str())
                        ),
                    });
                }
                continue;
            }
            if accepted
                .iter()
                .any(|(a, _): &(TrackInfo, ForwarderHandle)| a.track_id == info.track_id)
            {
                continue;
            }
            accepted.push((info, forwarder));
        }
        if accepted.is_empty() {
            return;
        }
        self.broadcast(
            Some(&peer_id),
            ServerMessage::TracksAdded {
                tracks: accepted.iter().map(|(info, _)| info.clone()).collect(),
            },
        );
        for (id, member) in &self.members {
            if id != &peer_id && member.grants.subscribe {
                let sent = member.endpoint.try_send(EndpointCommand::Subscribe {
                    tracks: accepted.clone(),
                });
                if !sent {
                    warn!(peer = %member.info.peer_id, "endpoint not taking orders; it will be removed when its connection fails");
                }
            }
        }
        debug!(tracks = accepted.len(), publisher = %peer_id, "tracks published");
        for (info, forwarder) in accepted {
            self.tracks
                .insert(info.track_id.clone(), Publication { info, forwarder });
        }
    }

    /// Removes one peer's publications and tells every other member with one `tracks_removed`;
    /// returns the removed tracks, for [`Room::unsubscribe_all`].
    fn withdraw(&mut self, track_ids: &[TrackId]) -> Vec<TrackInfo> {
        let mut removed = Vec::new();
        for track_id in track_ids {
            if let Some(publication) = self.tracks.remove(track_id) {
                removed.push(publication.info);
            }
        }
        if let Some(first) = removed.first() {
            let publisher = first.peer_id.clone();
            let track_ids = removed.iter().map(|i| i.track_id.clone()).collect();
            self.broadcast(Some(&publisher), ServerMessage::TracksRemoved { track_ids });
        }
        removed
    }

    /// Orders every member but the publisher to stop receiving `removed`, in one command each.
    fn unsubscribe_all(&self, removed: &[TrackInfo]) {
        let Some(first) = removed.first() else {
            return;
        };
        let track_ids: Vec<TrackId> = removed.iter().map(|i| i.track_id.clone()).collect();
        for (id, member) in &self.members {
            if id != &first.peer_id {
                member.endpoint.try_send(EndpointCommand::Unsubscribe {
                    track_ids: track_ids.clone(),
                });
            }
        }
    }

    fn update_track(&mut self, peer_id: &PeerId, track_id: &TrackId, muted: bool, relayed: bool) {
        let Some(member) = self.members.get(peer_id) else {
            return;
        };
        match self.tracks.get_mut(track_id) {
            Some(p) if &p.info.peer_id == peer_id => {
                p.info.muted = muted;
                if !muted {
                    // Its owner unmuted it: a moderator's hold ends.
                    p.forwarder.set_held(false);
                }
                let track = p.info.clone();
                self.broadcast(None, ServerMessage::TrackUpdated { track });
            }
            // Not published (yet): a track is published on its first RTP packet, and a muted
            // track sends none. The peer's endpoint holds the declarations from its offers; it
            // updates the declaration (used when the track is published), or answers
            // `invalid_track` if the peer declared no such track.
            None if !relayed => {
                let _ = member.endpoint.try_send(EndpointCommand::UpdateDeclared {
                    track_id: track_id.clone(),
                    muted,
                });
            }
            _ => {
                self.shared.metrics.signaling_errors.inc();
                let _ = member.out.try_send(ServerMessage::Error {
                    code: ErrorCode::InvalidTrack,
                    message: format!(
                        "you publish no track `{}`",
                        videoroom_protocol::excerpt(track_id.as_str())
                    ),
                });
            }
        }
    }

    /// Sends `message` to every member except `except`, without waiting. A member whose queue
    /// (256 messages) is full has stopped reading: it is removed after this command rather than
    /// silently missing a message.
    fn broadcast(&mut self, except: Option<&PeerId>, message: ServerMessage) {
        for (id, member) in &self.members {
            if Some(id) != except
                && let Err(mpsc::error::TrySendError::Full(_)) =
                    member.out.try_send(message.clone())
            {
                self.stalled.push(id.clone());
            }
        }
    }

    fn shutdown(&mut self) {
        info!(peers = self.members.len(), "closing room for shutdown");
        for (_, member) in std::mem::take(&mut self.members) {
            let _ = member.out.try_send(ServerMessage::Closing {
                reason: "server shutting down".into(),
            });
            member.endpoint.try_send(EndpointCommand::Close);
            self.shared.metrics.peers.dec();
        }
        self.tracks.clear();
        self.shared.rooms.remove(&self.handle);
    }
}
