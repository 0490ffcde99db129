//! The media thread: one OS thread with a current-thread tokio runtime that owns the UDP socket
//! and the [`MediaCore`], and does everything on the media path without a hop: receive a batch,
//! demultiplex, run the peers' cores, forward, and send the results in GSO runs.
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
use super::io_tcp::{self, TcpConnections, TcpCounts, TcpEvent, TcpLimits, TcpStats};
use super::io_udp::{Datagram, Transmit, UdpIo};
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// A closure run on the media thread.
pub(crate) type Job = Box<dyn FnOnce(&mut WorkerState, Instant) + Send>;

/// How often the worker copies its counters into `/metrics`.
const METRICS_EVERY: Duration = Duration::from_millis(100);
/// Receive batches handled before the worker looks at its jobs and timers again.
const RECV_BATCHES_PER_TURN: usize = 16;
/// Events an endpoint may have pending before more are dropped (it is wedged or gone).
pub(crate) const EVENT_QUEUE: usize = 1024;

/// What the jobs see: the core, and where each peer's events go.
pub struct WorkerState {
    /// The engine's logic.
    pub core: MediaCore,
    pub(crate) sinks: HashMap<PeerKey, mpsc::Sender<CoreEvent>>,
    /// Set by the engine's owner going away: the loop closes every peer and ends.
    stop: bool,
    /// The open ICE-TCP connections (empty when ICE-TCP is off).
    pub(crate) tcp: TcpConnections,
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
}

impl EngineConfig {
    /// UDP on `bind`, advertised; no ICE-TCP.
    pub fn udp(bind: SocketAddr, public_ip: Option<IpAddr>) -> Self {
        Self {
            bind,
            public_ip,
            tcp_bind: None,
            advertise_udp: true,
        }
    }
}

/// The running media thread.
pub struct Worker {
    pub(crate) jobs: mpsc::UnboundedSender<Job>,
    udp_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
    tcp_stats: Arc<TcpStats>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Binds the UDP socket and starts the thread.
    pub fn start(config: EngineConfig, metrics: Arc<Metrics>) -> Result<Self, EngineStartError> {
        let (jobs, inbox) = mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let tcp_stats = Arc::new(TcpStats::default());
        let stats = Arc::clone(&tcp_stats);
        let thread = std::thread::Builder::new()
            .name("media".to_owned())
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
                    let udp = match UdpIo::bind(config.bind) {
                        Ok(udp) => udp,
                        Err(e) => {
                            let _ = ready_tx.send(Err(EngineStartError::Bind(config.bind, e)));
                            return;
                        }
                    };
                    let local = match udp.local_addr() {
                        Ok(a) => a,
                        Err(e) => {
                            let _ = ready_tx.send(Err(EngineStartError::Io(e)));
                            return;
                        }
                    };
                    let candidates = advertised(local, config.public_ip);
                    let tcp = match TcpSide::bind(&config, stats).await {
                        Ok(tcp) => tcp,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let udp_candidates = if config.advertise_udp {
                        candidates.clone()
                    } else {
                        Vec::new()
                    };
                    let tcp_candidate = tcp.as_ref().map(|t| t.candidate);
                    let core_config = match CoreConfig::new(udp_candidates, tcp_candidate) {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready_tx.send(Err(EngineStartError::Core(e)));
                            return;
                        }
                    };
                    let tcp_local = tcp.as_ref().map(|t| t.local);
                    info!(
                        udp = %local,
                        ?candidates,
                        tcp = ?tcp_local,
                        ?tcp_candidate,
                        advertise_udp = config.advertise_udp,
                        "media engine listening"
                    );
                    let _ = ready_tx.send(Ok((local, tcp_local)));
                    let state = WorkerState {
                        core: MediaCore::new(core_config),
                        sinks: HashMap::new(),
                        stop: false,
                        tcp: TcpConnections::new(tcp.as_ref().map_or_else(
                            || Arc::new(TcpStats::default()),
                            |t| Arc::clone(&t.stats),
                        )),
                    };
                    let tcp_events = tcp.map(TcpSide::start);
                    run(state, udp, inbox, metrics, tcp_events).await;
                });
            })
            .map_err(EngineStartError::Io)?;
        let (udp_addr, tcp_addr) = ready_rx
            .recv()
            .map_err(|_| EngineStartError::Io(std::io::Error::other("media thread died")))??;
        Ok(Self {
            jobs,
            udp_addr,
            tcp_addr,
            tcp_stats,
            thread: Some(thread),
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
    pub fn tcp_stats(&self) -> TcpCounts {
        self.tcp_stats.snapshot()
    }
}

/// The ICE-TCP listener before the loop starts.
struct TcpSide {
    listener: tokio::net::TcpListener,
    local: SocketAddr,
    /// The passive candidate every peer advertises.
    candidate: SocketAddr,
    stats: Arc<TcpStats>,
}

impl TcpSide {
    /// Binds the listener if the configuration asks for one (inside the media runtime).
    async fn bind(
        config: &EngineConfig,
        stats: Arc<TcpStats>,
    ) -> Result<Option<Self>, EngineStartError> {
        let Some(bind) = config.tcp_bind else {
            return Ok(None);
        };
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| EngineStartError::TcpBind(bind, e))?;
        let local = listener.local_addr()?;
        // One passive candidate: the first address the UDP side would advertise for this bind
        // (the public IP behind a 1:1 NAT). A connection to another local address of a wildcard
        // bind still works: the core sees every TCP datagram as arriving at this candidate.
        let candidate = advertised(local, config.public_ip)
            .first()
            .copied()
            .unwrap_or(local);
        Ok(Some(Self {
            listener,
            local,
            candidate,
            stats,
        }))
    }

    /// Starts accepting; returns what the connection tasks report.
    fn start(self) -> mpsc::Receiver<TcpEvent> {
        let (events_tx, events) = mpsc::channel(io_tcp::EVENT_QUEUE);
        io_tcp::spawn_listener(self.listener, TcpLimits::default(), self.stats, events_tx);
        events
    }
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
    metrics: Arc<Metrics>,
    mut tcp_events: Option<mpsc::Receiver<TcpEvent>>,
) {
    let mut batch: Vec<Datagram> = Vec::with_capacity(64);
    let mut out: Vec<Transmit> = Vec::with_capacity(256);
    let mut exported = Exported::default();
    let mut last_export = Instant::now();
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
                    batch.clear();
                    match udp.try_recv(&mut batch) {
                        Ok(0) => break,
                        Ok(_) => {
                            for d in batch.drain(..) {
                                state.core.handle_datagram(now, Proto::Udp, d.src, d.dst_ip, d.bytes);
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
            _ = sleep_until(deadline) => state.core.handle_timeout(Instant::now()),
        }
        if state.stop {
            break;
        }
        let now = Instant::now();
        state.core.drain(now);
        flush(&mut state, &udp, &mut out);
        if now >= last_export + METRICS_EVERY {
            last_export = now;
            exported.export(&state.core, &metrics);
        }
    }
    // Shutting down: close every connection so clients hear it at once.
    let now = Instant::now();
    let keys: Vec<PeerKey> = state.sinks.keys().copied().collect();
    for key in keys {
        state.core.remove_peer(now, key);
    }
    flush(&mut state, &udp, &mut out);
    // The connection tasks run on this runtime: give them a moment to write the close_notifys.
    state.tcp.flush(TCP_SHUTDOWN_FLUSH).await;
    exported.export(&state.core, &metrics);
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
    state.tcp.handle(event, |src, datagram| {
        let dropped = core.dropped().total();
        core.handle_datagram(now, Proto::Tcp, src, None, datagram);
        core.dropped().total() == dropped
    });
}

fn flush(state: &mut WorkerState, udp: &UdpIo, out: &mut Vec<Transmit>) {
    while let Some(t) = state.core.poll_transmit() {
        match t.proto {
            Proto::Udp => out.push(Transmit {
                dst: t.dst,
                bytes: t.bytes,
            }),
            Proto::Tcp => {
                state.tcp.send(t.dst, &t.bytes);
            }
        }
    }
    if !out.is_empty() {
        udp.send(out);
    }
    while let Some((key, event)) = state.core.poll_event() {
        if let Some(sink) = state.sinks.get(&key)
            && sink.try_send(event).is_err()
        {
            debug!(peer = key, "endpoint event queue full or closed; event dropped");
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
}

impl Exported {
    fn export(&mut self, core: &MediaCore, metrics: &Metrics) {
        let s = core.stats();
        metrics.rtp_packets_in.inc_by(s.rtp_in - self.stats.rtp_in);
        metrics
            .rtp_bytes_in
            .inc_by(s.rtp_bytes_in - self.stats.rtp_bytes_in);
        metrics.rtp_packets_out.inc_by(s.rtp_out - self.stats.rtp_out);
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
        let d = core.dropped();
        metrics.count_media_drops(&d, &self.dropped);
        metrics.tracks.set(core.track_count() as i64);
        self.stats = s.clone();
        self.dropped = d;
    }
}
