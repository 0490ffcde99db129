//! A media worker: one OS thread with a current-thread tokio runtime that owns a [`MediaCore`]
//! and a handle of the one UDP socket, and does everything on the media path without a hop:
//! receive a batch, demultiplex, run the peers' cores, forward, and send the results in GSO runs.
//!
//! With several workers (`--media-workers`), every worker receives from the same socket and a
//! room lives on one worker, so a room's fan-out never crosses threads; a datagram the kernel
//! handed to another worker than its peer's is passed on once ([`Hop`], `router.rs`).
//!
//! The control plane (sessions, rooms, endpoints on the main runtime) reaches it with jobs:
//! closures run on the thread against the core, answered over a oneshot (`handle.rs`).
//!
//! ICE over TCP (`--tcp-port`, optional): the listener and one task per connection run on this
//! thread's runtime too (`io_tcp.rs`); their frames reach the loop as [`TcpEvent`]s and enter the
//! same core as `Proto::Tcp` datagrams, and the core's TCP transmits go to the connections'
//! write queues.

use super::core::{CoreConfig, CoreError, CoreEvent, CoreStats, MediaCore, PeerKey};
use super::demux::{DropCounts, Proto};
use super::io_tcp::{self, TcpConnections, TcpEvent, TcpLimits, TcpStats};
use super::io_udp::{Datagram, Transmit, UdpIo};
use super::router::{Router, WorkerId};
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// A closure run on the media thread.
pub(crate) type Job = Box<dyn FnOnce(&mut WorkerState, Instant) + Send>;

/// Receive batches handled before the worker looks at its jobs and timers again.
const RECV_BATCHES_PER_TURN: usize = 16;
/// Datagrams one worker may have waiting to be passed on to another; beyond it they are
/// dropped (UDP semantics: a worker that falls behind never makes the others buffer without end).
pub(crate) const HOP_QUEUE: usize = 4096;
/// Events an endpoint may have pending before more are dropped (it is wedged or gone).
pub(crate) const EVENT_QUEUE: usize = 1024;

/// What the jobs see: the core, and where each peer's events go.
pub struct WorkerState {
    /// The engine's logic.
    pub core: MediaCore,
    pub(crate) sinks: HashMap<PeerKey, mpsc::Sender<CoreEvent>>,
    /// Set by the engine's owner going away: the loop closes every peer and ends.
    stop: bool,
    /// The open ICE-TCP connections (empty when ICE-TCP is off, and on every worker but 0).
    pub(crate) tcp: TcpConnections,
    /// This worker's index.
    index: WorkerId,
    /// With several workers: who owns which ufrag and address.
    router: Option<Arc<Router>>,
    /// Every worker's inbox of passed-on datagrams (this one's included).
    hops: Vec<mpsc::Sender<Hop>>,
    /// Addresses of each peer published to the router, to take back when it goes.
    routed: HashMap<PeerKey, Vec<(Proto, SocketAddr)>>,
    /// Peers on this worker (placement picks the least loaded worker for a new room).
    pub(crate) load: Arc<AtomicUsize>,
    /// The ICE-TCP counters (exported by worker 0, which owns the connections).
    tcp_stats: Arc<TcpStats>,
}

impl WorkerState {
    /// Registers a new peer's ufrag with the router and counts it.
    pub(crate) fn peer_added(&mut self, key: PeerKey) {
        self.load.fetch_add(1, Ordering::Relaxed);
        if let (Some(router), Some(ufrag)) = (&self.router, self.core.peer_ufrag(key)) {
            router.add_ufrag(ufrag, self.index);
        }
    }

    /// Removes a peer from the core, the router and the count.
    pub(crate) fn remove_peer(&mut self, now: Instant, key: PeerKey) {
        if let (Some(router), Some(ufrag)) = (&self.router, self.core.peer_ufrag(key)) {
            router.remove_ufrag(ufrag);
        }
        if let Some(router) = &self.router {
            for (proto, addr) in self.routed.remove(&key).unwrap_or_default() {
                router.unbind(proto, addr, self.index);
            }
        }
        if self.sinks.remove(&key).is_some() {
            self.load.fetch_sub(1, Ordering::Relaxed);
        }
        self.core.remove_peer(now, key);
    }
}

/// What one worker passes to another.
#[derive(Debug)]
pub(crate) enum Hop {
    /// A datagram for this worker's core: one that arrived on another worker, or (in the
    /// `ready` list of `receive_in_order`) one of its own.
    In {
        /// UDP or an ICE-TCP connection.
        proto: Proto,
        /// From.
        src: SocketAddr,
        /// The local IP it arrived at.
        dst_ip: Option<IpAddr>,
        /// The datagram.
        bytes: bytes::BytesMut,
    },
    /// A datagram for an ICE-TCP connection (they all live on worker 0).
    TcpOut {
        /// The connection's remote address.
        dst: SocketAddr,
        /// The datagram.
        bytes: bytes::BytesMut,
    },
}

/// Where the engine listens and what it advertises.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The UDP socket's address (`--rtc-bind-ip`, `--udp-port`; port 0 picks one).
    pub bind: SocketAddr,
    /// The address clients reach us at behind a 1:1 NAT (`--public-ip`).
    pub public_ip: Option<IpAddr>,
    /// The ICE-TCP listener's address (`--rtc-bind-ip`, `--tcp-port`; port 0 picks one), or
    /// `None`: no listener and no TCP candidate.
    pub tcp_bind: Option<SocketAddr>,
    /// Whether peers advertise the UDP host candidates. Always, except in tests that prove a
    /// call works over ICE-TCP alone.
    pub advertise_udp: bool,
    /// Media worker threads (`--media-workers`; at least 1).
    pub workers: usize,
}

impl EngineConfig {
    /// UDP on `bind`, advertised; no ICE-TCP.
    pub fn udp(bind: SocketAddr, public_ip: Option<IpAddr>) -> Self {
        Self {
            bind,
            public_ip,
            tcp_bind: None,
            advertise_udp: true,
            workers: 1,
        }
    }
}

/// Everything one worker thread starts from.
pub(crate) struct Shard {
    pub(crate) index: WorkerId,
    /// This worker's handle of the one UDP socket (a `try_clone`).
    pub(crate) udp: std::net::UdpSocket,
    /// The ICE-TCP listener (worker 0 only, when ICE-TCP is on).
    pub(crate) tcp: Option<std::net::TcpListener>,
    pub(crate) tcp_stats: Arc<TcpStats>,
    pub(crate) core: CoreConfig,
    pub(crate) router: Option<Arc<Router>>,
    pub(crate) hops: Vec<mpsc::Sender<Hop>>,
    pub(crate) hop_rx: mpsc::Receiver<Hop>,
    pub(crate) load: Arc<AtomicUsize>,
}

/// One running media worker thread.
pub struct Worker {
    pub(crate) jobs: mpsc::UnboundedSender<Job>,
    pub(crate) load: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread: registers its socket handle (and listener) with its own runtime and
    /// runs the loop until the engine stops.
    pub(crate) fn start(shard: Shard, metrics: Arc<Metrics>) -> Result<Self, EngineStartError> {
        let (jobs, inbox) = mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let load = Arc::clone(&shard.load);
        let thread = std::thread::Builder::new()
            .name(format!("media-{}", shard.index))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(EngineStartError::Io(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let udp = match UdpIo::from_std(shard.udp) {
                        Ok(udp) => udp,
                        Err(e) => {
                            let _ = ready_tx.send(Err(EngineStartError::Io(e)));
                            return;
                        }
                    };
                    let tcp_events = match shard.tcp.map(tokio::net::TcpListener::from_std) {
                        None => None,
                        Some(Ok(listener)) => {
                            let (events_tx, events) = mpsc::channel(io_tcp::EVENT_QUEUE);
                            io_tcp::spawn_listener(
                                listener,
                                TcpLimits::default(),
                                Arc::clone(&shard.tcp_stats),
                                events_tx,
                            );
                            Some(events)
                        }
                        Some(Err(e)) => {
                            let _ = ready_tx.send(Err(EngineStartError::Io(e)));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let state = WorkerState {
                        core: MediaCore::new(shard.core),
                        sinks: HashMap::new(),
                        stop: false,
                        tcp: TcpConnections::new(Arc::clone(&shard.tcp_stats)),
                        tcp_stats: shard.tcp_stats,
                        index: shard.index,
                        router: shard.router,
                        hops: shard.hops,
                        routed: HashMap::new(),
                        load: shard.load,
                    };
                    run(state, udp, inbox, shard.hop_rx, metrics, tcp_events).await;
                });
            })
            .map_err(EngineStartError::Io)?;
        ready_rx
            .recv()
            .map_err(|_| EngineStartError::Io(std::io::Error::other("media thread died")))??;
        Ok(Self {
            jobs,
            load,
            thread: Some(thread),
        })
    }
}

/// The default number of media workers: one per core beyond two (left to the kernel's network
/// processing and the signaling runtime), at least one, at most 12.
pub fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(2).clamp(1, 12)
}

/// The passive ICE-TCP candidate for a listener on `local`: the first address the UDP side would
/// advertise for this bind (the public IP behind a 1:1 NAT). A connection to another local
/// address of a wildcard bind still works: the core sees every TCP datagram as arriving at it.
pub fn tcp_candidate(local: SocketAddr, public_ip: Option<IpAddr>) -> SocketAddr {
    advertised(local, public_ip)
        .first()
        .copied()
        .unwrap_or(local)
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Handles may outlive the engine (their calls then fail with `Gone`), so the queue does
        // not close by itself: ask the loop to end, and wait for the last close_notify to go out.
        let _ = self.jobs.send(Box::new(|state, _| state.stop = true));
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            warn!("media thread panicked");
        }
    }
}

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineStartError {
    /// The UDP port could not be bound.
    #[error("cannot bind the media UDP socket to {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
    /// The ICE-TCP port could not be bound.
    #[error("cannot bind the ICE-TCP port {0} (--tcp-port; `off` turns it off): {1}")]
    TcpBind(SocketAddr, #[source] std::io::Error),
    /// Thread or runtime creation failed.
    #[error("cannot start the media thread: {0}")]
    Io(#[from] std::io::Error),
    /// The DTLS certificate could not be made.
    #[error("cannot set up the media engine: {0}")]
    Core(#[from] CoreError),
}

/// The host candidates for a socket bound to `local`: the public IP if one is configured; the
/// interfaces' addresses for a wildcard bind (loopback only when nothing else exists); the bound
/// address otherwise. All on the one port.
pub fn advertised(local: SocketAddr, public_ip: Option<IpAddr>) -> Vec<SocketAddr> {
    let port = local.port();
    if let Some(ip) = public_ip {
        return vec![SocketAddr::new(ip, port)];
    }
    if !local.ip().is_unspecified() {
        return vec![local];
    }
    let mut usable = Vec::new();
    let mut loopback = Vec::new();
    if let Ok(interfaces) = rtc::shared::ifaces::ifaces() {
        for interface in interfaces {
            let Some(addr) = interface.addr else { continue };
            let ip = addr.ip();
            if ip.is_ipv4() != local.is_ipv4() || ip.is_unspecified() {
                continue;
            }
            let link_local = match ip {
                IpAddr::V4(v4) => v4.is_link_local(),
                IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
            };
            let a = SocketAddr::new(ip, port);
            if ip.is_loopback() {
                loopback.push(a);
            } else if !link_local && !usable.contains(&a) {
                usable.push(a);
            }
        }
    }
    if usable.is_empty() {
        if loopback.is_empty() {
            loopback.push(SocketAddr::new(
                if local.is_ipv4() {
                    IpAddr::from([127, 0, 0, 1])
                } else {
                    IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
                },
                port,
            ));
        }
        return loopback;
    }
    usable
}

async fn run(
    mut state: WorkerState,
    udp: UdpIo,
    mut inbox: mpsc::UnboundedReceiver<Job>,
    mut hop_rx: mpsc::Receiver<Hop>,
    metrics: Arc<Metrics>,
    mut tcp_events: Option<mpsc::Receiver<TcpEvent>>,
) {
    let mut batch: Vec<Datagram> = Vec::with_capacity(64);
    let mut inbound: Vec<Hop> = Vec::with_capacity(64);
    let mut out: Vec<Transmit> = Vec::with_capacity(256);
    let mut exported = Exported::default();
    loop {
        let deadline = state.core.poll_timeout();
        tokio::select! {
            biased;
            job = inbox.recv() => match job {
                Some(job) => {
                    let now = Instant::now();
                    job(&mut state, now);
                    while let Ok(job) = inbox.try_recv() {
                        job(&mut state, now);
                    }
                }
                None => break,
            },
            ready = udp.readable() => {
                if let Err(e) = ready {
                    warn!("media socket: {e}");
                    continue;
                }
                let now = Instant::now();
                for _ in 0..RECV_BATCHES_PER_TURN {
                    let route = state.router.as_deref().map(|r| (r, state.index, &state.hops[..]));
                    match receive_in_order(&udp, route, &mut hop_rx, &mut batch, &mut inbound) {
                        Ok(0) => break,
                        Ok(_) => {
                            for hop in inbound.drain(..) {
                                handle_hop(&mut state, now, hop);
                            }
                        }
                        Err(e) => {
                            debug!("media socket receive: {e}");
                            break;
                        }
                    }
                }
            }
            Some(event) = next_tcp_event(&mut tcp_events) => {
                let now = Instant::now();
                handle_tcp_event(&mut state, now, event);
                for _ in 0..TCP_EVENTS_PER_TURN {
                    let Some(event) = tcp_events.as_mut().and_then(|rx| rx.try_recv().ok()) else {
                        break;
                    };
                    handle_tcp_event(&mut state, now, event);
                }
            }
            Some(hop) = hop_rx.recv() => {
                let now = Instant::now();
                handle_hop(&mut state, now, hop);
                while let Ok(hop) = hop_rx.try_recv() {
                    handle_hop(&mut state, now, hop);
                }
            }
            _ = sleep_until(deadline) => state.core.handle_timeout(Instant::now()),
        }
        if state.stop {
            break;
        }
        let now = Instant::now();
        state.core.drain(now);
        flush(&mut state, &udp, &mut out);
        // After every turn (a few subtractions and atomic adds per batch, never per packet), so
        // /metrics is never behind what was sent.
        exported.export(&state, &metrics);
    }
    // Shutting down: close every connection so clients hear it at once.
    let now = Instant::now();
    let keys: Vec<PeerKey> = state.sinks.keys().copied().collect();
    for key in keys {
        state.remove_peer(now, key);
    }
    flush(&mut state, &udp, &mut out);
    // The connection tasks run on this runtime: give them a moment to write the close_notifys.
    state.tcp.flush(TCP_SHUTDOWN_FLUSH).await;
    exported.export(&state, &metrics);
    info!("media engine stopped");
}

/// ICE-TCP events handled in one turn after the first, before jobs, sockets and timers get a
/// look again.
const TCP_EVENTS_PER_TURN: usize = 64;
/// How long a stopping engine waits for ICE-TCP connections to write what is queued.
const TCP_SHUTDOWN_FLUSH: Duration = Duration::from_millis(200);

/// The next event of the ICE-TCP connections; never ready when ICE-TCP is off.
async fn next_tcp_event(events: &mut Option<mpsc::Receiver<TcpEvent>>) -> Option<TcpEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Routes one ICE-TCP event into the core: its frames are `Proto::Tcp` datagrams from the
/// connection's remote address. The demux decides about each (a connection whose first check it
/// refuses is closed by the table).
fn handle_tcp_event(state: &mut WorkerState, now: Instant, event: TcpEvent) {
    let core = &mut state.core;
    let (router, index, hops) = (&state.router, state.index, &state.hops);
    state.tcp.handle(event, |src, datagram| {
        // A peer of another worker: its core decides there (a check it refuses gets no answer,
        // and the connection, never authenticated, times out).
        if let Some(owner) = router
            .as_ref()
            .and_then(|r| r.owner(Proto::Tcp, src, &datagram))
            .filter(|w| *w != index)
        {
            return hops[owner]
                .try_send(Hop::In {
                    proto: Proto::Tcp,
                    src,
                    dst_ip: None,
                    bytes: datagram,
                })
                .is_ok();
        }
        let dropped = core.dropped().total();
        core.handle_datagram(now, Proto::Tcp, src, None, datagram);
        core.dropped().total() == dropped
    });
}

/// Receives one `recvmmsg` batch and puts what this worker must handle into `ready`, in the
/// order the socket had it; passes on other workers' datagrams (`route`: the router, this
/// worker's index, every worker's hop queue; `None` with one worker). Returns how many datagrams
/// the socket gave (0: nothing is queued, readiness is cleared).
///
/// Why the order needs care: every worker receives from the one socket, so under a backlog one
/// worker's batch can hold a publisher's packet n (passed on to the owner) and the owner's next
/// batch n + 1. Handling the owner's own batch first, or taking its hop queue before the other
/// worker has put n in it, forwards n + 1 before n. So, under the router's receive turn: receive,
/// take the hop queue (everything in it came from earlier batches, whose workers passed it on
/// before giving the turn back), then route this batch. `ready` is that queue first, then this
/// batch's own datagrams; what arrives in the queue later comes from later batches.
pub(crate) fn receive_in_order(
    udp: &UdpIo,
    route: Option<(&Router, WorkerId, &[mpsc::Sender<Hop>])>,
    hop_rx: &mut mpsc::Receiver<Hop>,
    batch: &mut Vec<Datagram>,
    ready: &mut Vec<Hop>,
) -> std::io::Result<usize> {
    let _turn = route.map(|(router, _, _)| router.receive_turn());
    batch.clear();
    let received = udp.try_recv(batch)?;
    if received == 0 {
        return Ok(0);
    }
    if route.is_some() {
        while let Ok(hop) = hop_rx.try_recv() {
            ready.push(hop);
        }
    }
    for d in batch.drain(..) {
        let elsewhere = route.and_then(|(router, index, hops)| {
            router
                .owner(Proto::Udp, d.src, &d.bytes)
                .filter(|w| *w != index)
                .and_then(|w| hops.get(w))
        });
        let hop = Hop::In {
            proto: Proto::Udp,
            src: d.src,
            dst_ip: d.dst_ip,
            bytes: d.bytes,
        };
        match elsewhere {
            // A full queue drops it (UDP semantics), never reorders.
            Some(queue) => {
                let _ = queue.try_send(hop);
            }
            None => ready.push(hop),
        }
    }
    Ok(received)
}

/// A datagram passed on by another worker, or one of this worker's own (`receive_in_order`).
fn handle_hop(state: &mut WorkerState, now: Instant, hop: Hop) {
    match hop {
        Hop::In {
            proto,
            src,
            dst_ip,
            bytes,
        } => state.core.handle_datagram(now, proto, src, dst_ip, bytes),
        Hop::TcpOut { dst, bytes } => {
            state.tcp.send(dst, &bytes);
        }
    }
}

fn flush(state: &mut WorkerState, udp: &UdpIo, out: &mut Vec<Transmit>) {
    while let Some(t) = state.core.poll_transmit() {
        match t.proto {
            Proto::Udp => out.push(Transmit {
                dst: t.dst,
                bytes: t.bytes,
            }),
            // ICE-TCP connections live on worker 0.
            Proto::Tcp if state.index == 0 => {
                state.tcp.send(t.dst, &t.bytes);
            }
            Proto::Tcp => {
                let _ = state.hops[0].try_send(Hop::TcpOut {
                    dst: t.dst,
                    bytes: t.bytes,
                });
            }
        }
    }
    if !out.is_empty() {
        udp.send(out);
    }
    while let Some((key, proto, addr)) = state.core.poll_binding() {
        if let Some(router) = &state.router {
            router.bind(proto, addr, state.index);
            let routed = state.routed.entry(key).or_default();
            if !routed.contains(&(proto, addr)) {
                // Bounded like the demux's table (4 per peer): the oldest goes.
                if routed.len() >= 4 {
                    let (p, a) = routed.remove(0);
                    router.unbind(p, a, state.index);
                }
                routed.push((proto, addr));
            }
        }
    }
    while let Some((key, event)) = state.core.poll_event() {
        if let Some(sink) = state.sinks.get(&key)
            && sink.try_send(event).is_err()
        {
            debug!(
                peer = key,
                "endpoint event queue full or closed; event dropped"
            );
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// What was already copied into the prometheus counters.
#[derive(Default)]
struct Exported {
    stats: CoreStats,
    dropped: DropCounts,
    tracks: i64,
    paused: i64,
    /// When peers' downlink estimates are next sampled into the histogram.
    estimates_at: Option<Instant>,
    tcp: io_tcp::TcpCounts,
}

/// How often each peer's downlink estimate is sampled into `/metrics`.
const ESTIMATE_SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The `layer` label of `videoroom_layer_packets_total`, by rank.
const LAYER_LABELS: [&str; super::layers::MAX_LAYERS] = ["0", "1", "2", "3"];

impl Exported {
    fn export(&mut self, state: &WorkerState, metrics: &Metrics) {
        if state.index == 0 {
            let tcp = state.tcp_stats.snapshot();
            metrics.count_ice_tcp(&tcp, &self.tcp);
            self.tcp = tcp;
        }
        let core = &state.core;
        let s = core.stats();
        metrics.rtp_packets_in.inc_by(s.rtp_in - self.stats.rtp_in);
        metrics
            .rtp_bytes_in
            .inc_by(s.rtp_bytes_in - self.stats.rtp_bytes_in);
        metrics
            .rtp_packets_out
            .inc_by(s.rtp_out - self.stats.rtp_out);
        metrics
            .rtp_bytes_out
            .inc_by(s.rtp_bytes_out - self.stats.rtp_bytes_out);
        metrics
            .dropped_packets
            .inc_by(s.rtp_dropped - self.stats.rtp_dropped);
        metrics.held_packets.inc_by(s.held - self.stats.held);
        metrics
            .keyframe_requests
            .inc_by(s.keyframe_requests - self.stats.keyframe_requests);
        metrics
            .layer_switches
            .inc_by(s.layer_switches - self.stats.layer_switches);
        for (rank, (now, before)) in s
            .layer_packets
            .iter()
            .zip(self.stats.layer_packets.iter())
            .enumerate()
        {
            if now > before {
                metrics
                    .layer_packets
                    .get_or_create(&[("layer", LAYER_LABELS[rank])])
                    .inc_by(now - before);
            }
        }
        let now = Instant::now();
        if self.estimates_at.is_none_or(|at| now >= at) {
            self.estimates_at = Some(now + ESTIMATE_SAMPLE_EVERY);
            for bps in core.downlink_estimates() {
                metrics.downlink_estimate.observe(bps as f64);
            }
        }
        let paused = core.paused_legs() as i64;
        metrics.paused_tracks.inc_by(paused - self.paused);
        self.paused = paused;
        let d = core.dropped();
        metrics.count_media_drops(&d, &self.dropped);
        // Every worker adds its own share to the gauge.
        let tracks = core.track_count() as i64;
        metrics.tracks.inc_by(tracks - self.tracks);
        self.tracks = tracks;
        self.stats = s.clone();
        self.dropped = d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// An RTP-looking datagram (not STUN: routed by source address) carrying `n`.
    fn numbered(n: u32) -> [u8; 8] {
        let [a, b, c, d] = n.to_be_bytes();
        [0x80, 111, 0, 0, a, b, c, d]
    }

    fn number_of(hop: &Hop) -> u32 {
        match hop {
            Hop::In { bytes, .. } => u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            Hop::TcpOut { .. } => panic!("no TCP here"),
        }
    }

    /// Two workers' handles of one socket, the router (`from` owned by worker 0) and the hop
    /// queues.
    struct TwoWorkers {
        socket: std::net::UdpSocket,
        router: Arc<Router>,
        hops: Vec<mpsc::Sender<Hop>>,
        hop_rxs: Vec<mpsc::Receiver<Hop>>,
    }

    fn two_workers(from: SocketAddr) -> TwoWorkers {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let router = Arc::new(Router::new());
        router.bind(Proto::Udp, from, 0);
        let (hops, hop_rxs) = (0..2).map(|_| mpsc::channel(HOP_QUEUE)).unzip();
        TwoWorkers {
            socket,
            router,
            hops,
            hop_rxs,
        }
    }

    /// Worker 1 takes the first half of a burst from the socket and passes it on; worker 0 takes
    /// the second: worker 0 handles the first half first.
    #[tokio::test]
    async fn what_another_worker_received_earlier_is_handled_before_the_own_batch() {
        let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut w = two_workers(client.local_addr().expect("addr"));
        let server = w.socket.local_addr().expect("addr");
        let ios = [
            UdpIo::from_std(w.socket.try_clone().expect("clone")).expect("io"),
            UdpIo::from_std(w.socket.try_clone().expect("clone")).expect("io"),
        ];
        let (mut batch, mut ready) = (Vec::new(), Vec::new());
        for n in 0..4 {
            client.send_to(&numbered(n), server).expect("send");
        }
        ios[1].readable().await.expect("readable");
        let route = Some((&*w.router, 1, &w.hops[..]));
        let got = receive_in_order(&ios[1], route, &mut w.hop_rxs[1], &mut batch, &mut ready);
        assert_eq!(got.expect("recv"), 4);
        assert!(ready.is_empty(), "all of them are worker 0's");

        for n in 4..8 {
            client.send_to(&numbered(n), server).expect("send");
        }
        ios[0].readable().await.expect("readable");
        let route = Some((&*w.router, 0, &w.hops[..]));
        let got = receive_in_order(&ios[0], route, &mut w.hop_rxs[0], &mut batch, &mut ready);
        assert_eq!(got.expect("recv"), 4);
        let order: Vec<u32> = ready.iter().map(number_of).collect();
        assert_eq!(order, (0..8).collect::<Vec<_>>());
    }

    /// The race itself: two threads receive a stream of bursts from the one socket at once, as
    /// two media workers do, and everything belongs to worker 0. It must see the sender's order.
    #[test]
    fn two_workers_receiving_at_once_keep_a_sources_order() {
        const BURSTS: u32 = 400;
        const BURST: u32 = 24;
        let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut w = two_workers(client.local_addr().expect("addr"));
        let server = w.socket.local_addr().expect("addr");
        let done = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (index, mut hop_rx) in w.hop_rxs.drain(..).enumerate().rev() {
            let socket = w.socket.try_clone().expect("clone");
            let (router, hops, done) = (Arc::clone(&w.router), w.hops.clone(), Arc::clone(&done));
            threads.push(std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let udp = UdpIo::from_std(socket).expect("io");
                    let (mut batch, mut ready, mut seen) = (Vec::new(), Vec::new(), Vec::new());
                    while !done.load(Ordering::Relaxed) {
                        let route = Some((&*router, index, &hops[..]));
                        tokio::select! {
                            biased;
                            r = udp.readable() => {
                                r.expect("readable");
                                while receive_in_order(
                                    &udp, route, &mut hop_rx, &mut batch, &mut ready,
                                ).expect("recv") > 0
                                {
                                    seen.extend(ready.drain(..).map(|h| number_of(&h)));
                                }
                            }
                            Some(hop) = hop_rx.recv() => seen.push(number_of(&hop)),
                            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                        }
                    }
                    seen
                })
            }));
        }
        for burst in 0..BURSTS {
            for k in 0..BURST {
                let _ = client.send_to(&numbered(burst * BURST + k), server);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(300));
        done.store(true, Ordering::Relaxed);
        let seen: Vec<Vec<u32>> = threads
            .into_iter()
            .map(|t| t.join().expect("worker thread"))
            .collect();
        let (worker0, worker1) = (&seen[1], &seen[0]);
        assert!(worker1.is_empty(), "worker 1 handled worker 0's datagrams");
        assert!(
            worker0.len() as u32 > BURSTS * BURST / 2,
            "only {} of {} arrived",
            worker0.len(),
            BURSTS * BURST
        );
        let reordered: Vec<(u32, u32)> = worker0
            .windows(2)
            .filter(|p| p[1] <= p[0])
            .map(|p| (p[0], p[1]))
            .collect();
        assert!(
            reordered.is_empty(),
            "{} of {} handled out of order, e.g. {:?}",
            reordered.len(),
            worker0.len(),
            &reordered[..reordered.len().min(5)]
        );
    }
}
