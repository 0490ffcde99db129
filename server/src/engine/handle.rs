//! The async face of the media engine for the control plane: [`Engine`] (start, add a peer),
//! [`PeerHandle`] (one peer's negotiation, what `peer.rs` calls) and [`ForwarderHandle`] (one
//! published track, what the room and the subscribers' endpoints use). Every call is a job run
//! on the media thread; the ones that answer wait on a oneshot.

use super::core::CoreConfig;
use super::core::{CoreError, CoreEvent, FwdKey, LegKey, MediaCore, PeerKey};
use super::io_tcp::TcpStats;
use super::layers::View;
use super::router::Router;
use super::worker::{
    EVENT_QUEUE, EngineConfig, EngineStartError, HOP_QUEUE, Job, Shard, Worker, WorkerState,
    advertised, tcp_candidate,
};
use crate::metrics::Metrics;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::RTCRtpSenderId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tracing::info;
use videoroom_protocol::{MediaKind, TrackId};

/// The media engine: its worker threads, its one UDP socket (and ICE-TCP listener).
pub struct Engine {
    workers: Vec<Worker>,
    handles: Vec<EngineHandle>,
    udp_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
    tcp_stats: Arc<TcpStats>,
}

impl Engine {
    /// Binds the UDP port (and the ICE-TCP port), makes the DTLS certificate, and starts the
    /// workers.
    pub fn start(config: EngineConfig, metrics: Arc<Metrics>) -> Result<Self, EngineStartError> {
        let udp = std::net::UdpSocket::bind(config.bind)
            .map_err(|e| EngineStartError::Bind(config.bind, e))?;
        let udp_addr = udp.local_addr()?;
        let candidates = advertised(udp_addr, config.public_ip);
        let tcp = match config.tcp_bind {
            Some(bind) => {
                let listener = std::net::TcpListener::bind(bind)
                    .map_err(|e| EngineStartError::TcpBind(bind, e))?;
                listener.set_nonblocking(true)?;
                Some(listener)
            }
            None => None,
        };
        let tcp_addr = tcp.as_ref().map(|l| l.local_addr()).transpose()?;
        let tcp_candidate = tcp_addr.map(|local| tcp_candidate(local, config.public_ip));
        let udp_candidates = if config.advertise_udp {
            candidates.clone()
        } else {
            Vec::new()
        };
        let core = CoreConfig::new(udp_candidates, tcp_candidate)?;
        let count = config.workers.max(1);
        let router = (count > 1).then(|| Arc::new(Router::new()));
        let (hops, mut hop_rxs): (Vec<_>, Vec<_>) =
            (0..count).map(|_| mpsc::channel(HOP_QUEUE)).unzip();
        let tcp_stats = Arc::new(TcpStats::default());
        let mut tcp = tcp;
        let mut workers = Vec::with_capacity(count);
        for (index, hop_rx) in hop_rxs.drain(..).enumerate() {
            let shard = Shard {
                index,
                udp: udp.try_clone()?,
                tcp: if index == 0 { tcp.take() } else { None },
                tcp_stats: Arc::clone(&tcp_stats),
                core: core.clone(),
                router: router.clone(),
                hops: hops.clone(),
                hop_rx,
                load: Arc::new(AtomicUsize::new(0)),
            };
            workers.push(Worker::start(shard, Arc::clone(&metrics))?);
        }
        info!(
            udp = %udp_addr,
            ?candidates,
            tcp = ?tcp_addr,
            ?tcp_candidate,
            advertise_udp = config.advertise_udp,
            workers = count,
            "media engine listening"
        );
        let handles = workers
            .iter()
            .map(|w| EngineHandle {
                jobs: w.jobs.clone(),
            })
            .collect();
        Ok(Self {
            workers,
            handles,
            udp_addr,
            tcp_addr,
            tcp_stats,
        })
    }

    /// The UDP socket's bound address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The ICE-TCP listener's bound address, if ICE-TCP is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The ICE-TCP counters so far (all zero when ICE-TCP is off).
    pub fn tcp_stats(&self) -> super::io_tcp::TcpCounts {
        self.tcp_stats.snapshot()
    }

    /// Media worker threads.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Peers on each worker.
    pub fn worker_loads(&self) -> Vec<usize> {
        self.workers
            .iter()
            .map(|w| w.load.load(Ordering::Relaxed))
            .collect()
    }

    /// A handle of the first worker (tests, tools).
    pub fn handle(&self) -> EngineHandle {
        self.handles[0].clone()
    }

    /// The worker a new room goes to: the one with the fewest peers. Every peer of the room
    /// then lives there, so its fan-out never crosses threads.
    pub fn place_room(&self) -> EngineHandle {
        let least = self
            .workers
            .iter()
            .enumerate()
            .min_by_key(|(_, w)| w.load.load(Ordering::Relaxed))
            .map_or(0, |(i, _)| i);
        self.handles[least].clone()
    }
}

/// Sends jobs to the media thread; cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    jobs: mpsc::UnboundedSender<Job>,
}

impl EngineHandle {
    /// Runs `f` on the media thread and waits for its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut MediaCore, Instant) -> R + Send + 'static,
    ) -> Result<R, CoreError> {
        let (tx, rx) = oneshot::channel();
        self.cast_state(move |state, now| {
            let _ = tx.send(f(&mut state.core, now));
        });
        rx.await.map_err(|_| CoreError::Gone)
    }

    /// Runs `f` on the media thread without waiting.
    pub fn cast(&self, f: impl FnOnce(&mut MediaCore, Instant) + Send + 'static) {
        self.cast_state(move |state, now| f(&mut state.core, now));
    }

    fn cast_state(&self, f: impl FnOnce(&mut WorkerState, Instant) + Send + 'static) {
        // Closed only when the engine stops; then there is nothing left to do.
        let _ = self.jobs.send(Box::new(f));
    }

    /// A new peer, and the receiver of its events.
    pub async fn add_peer(&self) -> Result<(PeerHandle, mpsc::Receiver<CoreEvent>), CoreError> {
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (tx, rx) = oneshot::channel();
        self.cast_state(move |state, now| {
            let added = state.core.add_peer(now);
            if let Ok(key) = added {
                state.sinks.insert(key, events_tx);
                state.peer_added(key);
            }
            let _ = tx.send(added);
        });
        let key = rx.await.map_err(|_| CoreError::Gone)??;
        Ok((
            PeerHandle {
                engine: self.clone(),
                key,
                closed: false,
            },
            events,
        ))
    }
}

/// One peer's connection in the engine. Dropping it closes the connection.
pub struct PeerHandle {
    engine: EngineHandle,
    key: PeerKey,
    closed: bool,
}

impl PeerHandle {
    /// The peer's key in the engine.
    pub fn key(&self) -> PeerKey {
        self.key
    }

    /// Applies the client's offer or answer.
    pub async fn set_remote_description(
        &self,
        desc: RTCSessionDescription,
    ) -> Result<(), CoreError> {
        let key = self.key;
        self.engine
            .call(move |core, now| core.set_remote_description(now, key, desc))
            .await?
    }

    /// Applies our own offer or answer (or a rollback).
    pub async fn set_local_description(
        &self,
        desc: RTCSessionDescription,
    ) -> Result<(), CoreError> {
        let key = self.key;
        self.engine
            .call(move |core, now| core.set_local_description(now, key, desc))
            .await?
    }

    /// A new offer (not applied).
    pub async fn create_offer(&self) -> Result<RTCSessionDescription, CoreError> {
        let key = self.key;
        self.engine
            .call(move |core, now| {
                core.with_peer(now, key, |pc| pc.create_offer(None))?
                    .map_err(CoreError::from)
            })
            .await?
    }

    /// An answer to the applied remote offer (not applied).
    pub async fn create_answer(&self) -> Result<RTCSessionDescription, CoreError> {
        let key = self.key;
        self.engine
            .call(move |core, now| {
                core.with_peer(now, key, |pc| pc.create_answer(None))?
                    .map_err(CoreError::from)
            })
            .await?
    }

    /// The applied local description.
    pub async fn local_description(&self) -> Option<RTCSessionDescription> {
        let key = self.key;
        self.engine
            .call(move |core, now| core.with_peer(now, key, |pc| pc.local_description()).ok())
            .await
            .ok()
            .flatten()
            .flatten()
    }

    /// Adds a `sendonly` transceiver carrying another peer's track.
    pub async fn add_sender(
        &self,
        stream_id: String,
        track_id: String,
        kind: MediaKind,
        ssrc: u32,
    ) -> Result<RTCRtpSenderId, CoreError> {
        let key = self.key;
        self.engine
            .call(move |core, now| core.add_sender(now, key, &stream_id, &track_id, kind, ssrc))
            .await?
    }

    /// Removes a transceiver added by [`add_sender`](Self::add_sender).
    pub async fn remove_sender(&self, sender: RTCRtpSenderId) -> Result<(), CoreError> {
        let key = self.key;
        self.engine
            .call(move |core, now| core.remove_sender(now, key, sender))
            .await?
    }

    /// The payload type negotiated for a sender, once negotiated.
    pub async fn payload_type(&self, sender: RTCRtpSenderId) -> Option<u8> {
        let key = self.key;
        self.engine
            .call(move |core, _| core.sender_payload_type(key, sender))
            .await
            .ok()
            .flatten()
    }

    /// Closes the connection (idempotent).
    pub fn close(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        let key = self.key;
        self.engine.cast_state(move |state, now| {
            state.remove_peer(now, key);
            state.core.drain(now);
        });
    }
}

impl Drop for PeerHandle {
    fn drop(&mut self) {
        self.close();
    }
}

/// One published track's forwarder in the engine; cloning it is cheap.
#[derive(Clone)]
pub struct ForwarderHandle {
    engine: EngineHandle,
    fwd: FwdKey,
    held: Arc<AtomicBool>,
    /// The forwarded track's id.
    pub track_id: TrackId,
    /// Audio or video.
    pub kind: MediaKind,
}

impl std::fmt::Debug for ForwarderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Forwarder({})", self.track_id)
    }
}

/// Where one subscriber receives a forwarded track.
#[derive(Debug, Clone, Copy)]
pub struct Leg {
    /// Chosen by the subscriber's endpoint, unique per forwarder.
    pub key: LegKey,
    /// The subscriber.
    pub peer: PeerKey,
    /// Its sender for this track.
    pub sender: RTCRtpSenderId,
    /// The SSRC it announced.
    pub ssrc: u32,
    /// The payload type negotiated on it.
    pub payload_type: u8,
    /// How the subscriber shows the track (chooses the simulcast layer; hidden: nothing).
    pub view: View,
}

impl ForwarderHandle {
    /// A handle for a forwarder the core opened.
    pub fn new(
        engine: EngineHandle,
        fwd: FwdKey,
        held: Arc<AtomicBool>,
        track_id: TrackId,
        kind: MediaKind,
    ) -> Self {
        Self {
            engine,
            fwd,
            held,
            track_id,
            kind,
        }
    }

    /// Starts forwarding to `leg` (asks the publisher for a keyframe).
    pub fn subscribe(&self, leg: Leg) {
        let fwd = self.fwd;
        self.engine.cast(move |core, now| {
            core.subscribe(
                now,
                fwd,
                leg.key,
                leg.peer,
                leg.sender,
                leg.ssrc,
                leg.payload_type,
                leg.view,
            )
        });
    }

    /// The subscriber of leg `key` now shows the track as `view`.
    pub fn set_view(&self, key: LegKey, view: View) {
        let fwd = self.fwd;
        self.engine
            .cast(move |core, now| core.set_view(now, fwd, key, view));
    }

    /// Stops forwarding to the leg `key`.
    pub fn unsubscribe(&self, key: LegKey) {
        let fwd = self.fwd;
        self.engine.cast(move |core, _| core.unsubscribe(fwd, key));
    }

    /// A keyframe is wanted (coalesced).
    pub fn request_keyframe(&self) {
        let fwd = self.fwd;
        self.engine
            .cast(move |core, now| core.request_keyframe(now, fwd));
    }

    /// Holds the track back (a moderator muted it: nothing is forwarded, whatever the publisher
    /// sends) or lets it through again (its publisher unmuted it). Video resumes with a keyframe.
    pub fn set_held(&self, held: bool) {
        let was = self.held.swap(held, Ordering::Relaxed);
        if was && !held && self.kind == MediaKind::Video {
            self.request_keyframe();
        }
    }
}
