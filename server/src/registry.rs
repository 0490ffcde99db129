//! The list of open rooms: a room is created on its first join and unlisted by its own actor
//! when its last peer leaves. The registry holds handles only; room state lives in each actor.

use crate::Shared;
use crate::auth::Grants;
use crate::room::{JoinRefused, Joined, Room, RoomCommand, RoomHandle};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use videoroom_protocol::{PeerId, PeerInfo, RoomName, ServerMessage};

/// Why a join through the registry failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The room refused.
    #[error(transparent)]
    Refused(#[from] JoinRefused),
    /// The server is shutting down.
    #[error("the server is shutting down and takes no new joins; try again in a minute")]
    ShuttingDown,
}

/// A checked `join`: what the session asks the registry for.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The room.
    pub room: RoomName,
    /// The (validated) display name.
    pub display_name: String,
    /// The (validated) metadata.
    pub metadata: Option<serde_json::Value>,
    /// The resume token of an earlier session, if sent.
    pub resume_token: Option<String>,
    /// What the participant may do (from its token, or an open room's defaults).
    pub grants: Grants,
}

/// Open rooms by name.
pub struct Rooms {
    rooms: Mutex<HashMap<RoomName, RoomHandle>>,
    shutting_down: AtomicBool,
    next_peer: AtomicU64,
    /// Random per server run, part of every peer id: ids are never reused, not even by the
    /// next run after a restart (a rejoining client tells its own earlier session from a
    /// newcomer by id, and the counter alone starts over at 1).
    run: u32,
}

impl Default for Rooms {
    fn default() -> Self {
        Self {
            rooms: Mutex::default(),
            shutting_down: AtomicBool::default(),
            next_peer: AtomicU64::default(),
            run: rand::random(),
        }
    }
}

impl Rooms {
    /// Joins `room`, creating it if needed. Returns the peer's id and endpoint.
    pub async fn join(
        &self,
        shared: &Arc<Shared>,
        request: JoinRequest,
        out: mpsc::Sender<ServerMessage>,
    ) -> Result<(RoomHandle, Joined), JoinError> {
        let JoinRequest {
            room,
            display_name,
            metadata,
            resume_token,
            grants,
        } = request;
        let peer_id = PeerId::new(format!(
            "p-{}-{:08x}",
            self.next_peer.fetch_add(1, Ordering::Relaxed) + 1,
            self.run
        ));
        let peer = PeerInfo {
            metadata,
            ..PeerInfo::new(peer_id, display_name)
        };
        // A room that unlisted itself between our lookup and its reply answers `Closed`;
        // the next attempt finds no entry and creates a fresh room.
        for _ in 0..3 {
            let handle = self.get_or_create(shared, &room)?;
            let (reply, answer) = oneshot::channel();
            let sent = handle
                .send(RoomCommand::Join {
                    peer: peer.clone(),
                    out: out.clone(),
                    resume_token: resume_token.clone(),
                    grants,
                    reply,
                })
                .await;
            if !sent {
                self.remove(&handle);
                continue;
            }
            match answer.await {
                Ok(Ok(joined)) => return Ok((handle, joined)),
                Ok(Err(JoinRefused::Closed)) | Err(_) => {
                    self.remove(&handle);
                    continue;
                }
                Ok(Err(refused)) => return Err(refused.into()),
            }
        }
        Err(JoinRefused::Closed.into())
    }

    fn get_or_create(
        &self,
        shared: &Arc<Shared>,
        room: &RoomName,
    ) -> Result<RoomHandle, JoinError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(JoinError::ShuttingDown);
        }
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        Ok(rooms
            .entry(room.clone())
            .or_insert_with(|| Room::spawn(room.clone(), Arc::clone(shared)))
            .clone())
    }

    /// Unlists `handle`'s room, if the entry is still that room.
    pub fn remove(&self, handle: &RoomHandle) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if rooms.get(&handle.name).is_some_and(|h| h.same_room(handle)) {
            rooms.remove(&handle.name);
        }
    }

    /// Stops new joins and tells every room to close.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let handles: Vec<RoomHandle> = {
            let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
            rooms.values().cloned().collect()
        };
        for handle in handles {
            handle.send(RoomCommand::Shutdown).await;
        }
    }

    /// Whether new joins are refused.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Number of open rooms.
    pub fn len(&self) -> usize {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no room is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
