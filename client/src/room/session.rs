//! One media session: a joined signaling socket and its PeerConnection, and how it is joined.

use super::{JoinError, RoomInfo};
use crate::peer::{self, PcEvent};
use crate::signaling::Signaling;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use videoroom_protocol::{
    ClientMessage, PROTOCOL_VERSION, PeerId, PeerInfo, RoomName, ServerMessage, TrackId, TrackInfo,
};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit};

/// PeerConnection events waiting for the room task.
const PC_EVENT_QUEUE: usize = 256;

/// Where and how to (re)join.
#[derive(Debug, Clone)]
pub(super) struct Link {
    pub(super) url: String,
    pub(super) room: String,
    pub(super) display_name: String,
    pub(super) connect_timeout: Duration,
    pub(super) join_timeout: Duration,
    pub(super) udp_addrs: Vec<SocketAddr>,
    /// The last session's resume token: a room locked meanwhile lets us back in with it.
    pub(super) resume_token: Option<String>,
    /// The invitation, for servers that admit token holders only.
    pub(super) token: Option<String>,
    /// Certificate fingerprints trusted besides the system's authorities.
    pub(super) trusted_certificates: Vec<String>,
    /// The uplink budget: each session hands it its bandwidth estimate.
    pub(super) budget: Arc<crate::budget::SendBudget>,
}

/// The server's `joined`.
#[derive(Debug, Clone)]
pub(super) struct Joined {
    pub(super) peer_id: PeerId,
    pub(super) peers: Vec<PeerInfo>,
    pub(super) tracks: Vec<TrackInfo>,
    pub(super) room: RoomInfo,
    pub(super) resume_token: String,
}

/// One of our tracks in a session: its RTP track and the transceiver that sends it (removed when
/// the track is unpublished).
pub(super) struct LocalRtp {
    pub(super) ssrc: u32,
    pub(super) rtp: Arc<TrackLocalStaticRTP>,
    pub(super) transceiver: Arc<dyn webrtc::rtp_transceiver::RtpTransceiver>,
}

/// One media session: a joined signaling socket and its PeerConnection. Replaced as a whole on
/// reconnection.
pub(super) struct Session {
    pub(super) signaling: Signaling,
    pub(super) pc: Arc<dyn PeerConnection>,
    pub(super) pc_events: mpsc::Receiver<PcEvent>,
    /// The room's uplink budget (our tracks are registered with it as they are added).
    pub(super) budget: Arc<crate::budget::SendBudget>,
    /// Our tracks' RTP tracks in this session, one per `RoomTask::local` entry (by SSRC).
    pub(super) local_tracks: Vec<LocalRtp>,
    /// Remote tracks announced in this session.
    pub(super) remote: HashMap<TrackId, TrackInfo>,
    pub(super) peers: HashMap<PeerId, PeerInfo>,
    pub(super) receivers: HashMap<TrackId, JoinHandle<()>>,
    /// Our offer is out and unanswered (server offers are ignored meanwhile: glare rule).
    pub(super) making_offer: bool,
    /// Something changed while our offer was out: offer again after the answer.
    pub(super) offer_again: bool,
    pub(super) remote_set: bool,
    pub(super) pending_candidates: Vec<RTCIceCandidateInit>,
    pub(super) connected: bool,
    /// ICE is connected or completed (over whichever path).
    pub(super) ice_connected: bool,
    /// The server's TCP candidates, held back while UDP gets its chance (`peer::TCP_HOLD_BACK`).
    pub(super) held_tcp: Vec<RTCIceCandidateInit>,
    /// When the held TCP candidates are added unless ICE has connected by then.
    pub(super) tcp_release_at: Option<tokio::time::Instant>,
    /// TCP candidates were released: later ones are added at once.
    pub(super) tcp_released: bool,
    /// When the server last sent anything.
    pub(super) last_inbound: Instant,
    /// `close` ran (otherwise `Drop` closes the PeerConnection).
    pub(super) closed: bool,
}

impl Session {
    /// Connects, joins and builds the PeerConnection.
    pub(super) async fn connect(link: &Link) -> Result<(Session, Joined), JoinError> {
        let mut signaling =
            Signaling::connect(&link.url, link.connect_timeout, &link.trusted_certificates)
                .await
                .map_err(JoinError::Unreachable)?;
        signaling
            .send(&ClientMessage::Join {
                protocol_version: PROTOCOL_VERSION,
                room: RoomName::new(link.room.clone()),
                display_name: link.display_name.clone(),
                metadata: None,
                resume_token: link.resume_token.clone(),
                token: link.token.clone(),
            })
            .await
            .map_err(JoinError::Unreachable)?;
        let (joined, ice_servers) = match wait_for_join(&mut signaling, link.join_timeout).await {
            Ok(joined) => joined,
            Err(e) => {
                signaling.close().await;
                return Err(e);
            }
        };
        let (pc_events_tx, pc_events) = mpsc::channel(PC_EVENT_QUEUE);
        let pc = match peer::build_peer_connection_estimated(
            &ice_servers,
            &link.udp_addrs,
            pc_events_tx,
        )
        .await
        {
            Ok((pc, estimate)) => {
                link.budget.set_estimate(Some(estimate));
                pc
            }
            Err(e) => {
                signaling.close().await;
                return Err(e.into());
            }
        };
        Ok((
            Session {
                signaling,
                pc,
                pc_events,
                budget: Arc::clone(&link.budget),
                local_tracks: Vec::new(),
                remote: HashMap::new(),
                peers: joined
                    .peers
                    .iter()
                    .map(|p| (p.peer_id.clone(), p.clone()))
                    .collect(),
                receivers: HashMap::new(),
                making_offer: false,
                offer_again: false,
                remote_set: false,
                pending_candidates: Vec::new(),
                connected: false,
                ice_connected: false,
                held_tcp: Vec::new(),
                tcp_release_at: None,
                tcp_released: false,
                last_inbound: Instant::now(),
                closed: false,
            },
            joined,
        ))
    }

    pub(super) async fn send(&mut self, message: ClientMessage) {
        if let Err(e) = self.signaling.send(&message).await {
            // The read side sees the broken socket next and ends the session.
            tracing::debug!("send failed: {e}");
        }
    }

    /// Closes the socket (sending `leave` first if `leave`) and the PeerConnection.
    pub(super) async fn close(mut self, leave: bool) {
        for (_, task) in self.receivers.drain() {
            task.abort();
        }
        if leave {
            let _ = self.signaling.send(&ClientMessage::Leave).await;
        }
        self.signaling.close().await;
        self.closed = true;
        if let Err(e) = self.pc.close().await {
            tracing::debug!("closing the PeerConnection: {e}");
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for task in self.receivers.values() {
            task.abort();
        }
        // Dropped without `close` (an error path, a cancelled join): the PeerConnection's
        // driver and sockets would otherwise live on.
        if !self.closed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let pc = Arc::clone(&self.pc);
            runtime.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

async fn wait_for_join(
    signaling: &mut Signaling,
    timeout: Duration,
) -> Result<(Joined, Vec<videoroom_protocol::IceServer>), JoinError> {
    let answer = async {
        loop {
            match signaling.recv().await {
                Ok(Some(ServerMessage::Joined {
                    peer_id,
                    peers,
                    tracks,
                    ice_servers,
                    moderator,
                    locked,
                    chat_history,
                    resume_token,
                    ..
                })) => {
                    let room = RoomInfo {
                        moderator,
                        locked,
                        chat_history,
                    };
                    let joined = Joined {
                        peer_id,
                        peers,
                        tracks,
                        room,
                        resume_token,
                    };
                    return Ok((joined, ice_servers));
                }
                Ok(Some(ServerMessage::JoinError { code, message })) => {
                    return Err(JoinError::Refused { code, message });
                }
                Ok(Some(ServerMessage::Error { code, message })) => {
                    return Err(JoinError::Protocol(format!(
                        "server error ({code:?}) instead of `joined`: {message}"
                    )));
                }
                Ok(Some(ServerMessage::Closing { reason })) => {
                    return Err(JoinError::Protocol(format!(
                        "server is closing the connection: {reason}"
                    )));
                }
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(JoinError::Protocol(
                        "server closed the connection before answering `join`".into(),
                    ));
                }
                Err(e) => return Err(JoinError::Protocol(e.to_string())),
            }
        }
    };
    tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| JoinError::Timeout(timeout))?
}
