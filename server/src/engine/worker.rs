//! The media thread: one OS thread with a current-thread tokio runtime that owns the UDP socket
//! and the [`MediaCore`], and does everything on the media path without a hop: receive a batch,
//! demultiplex, run the peers' cores, forward, and send the results in GSO runs.
//!
//! The control plane (sessions, rooms, endpoints on the main runtime) reaches it with jobs:
//! closures run on the thread against the core, answered over a oneshot (`handle.rs`).

use super::core::{CoreConfig, CoreError, CoreEvent, CoreStats, MediaCore, PeerKey};
use super::demux::{DropCounts, Proto};
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
}

/// Where the engine listens and what it advertises.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The UDP socket's address (`--rtc-bind-ip`, `--udp-port`; port 0 picks one).
    pub bind: SocketAddr,
    /// The address clients reach us at behind a 1:1 NAT (`--public-ip`).
    pub public_ip: Option<IpAddr>,
}

/// The running media thread.
pub struct Worker {
    pub(crate) jobs: mpsc::UnboundedSender<Job>,
    udp_addr: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Binds the UDP socket and starts the thread.
    pub fn start(config: EngineConfig, metrics: Arc<Metrics>) -> Result<Self, EngineStartError> {
        let (jobs, inbox) = mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
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
                    let core_config = match CoreConfig::new(candidates.clone(), None) {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready_tx.send(Err(EngineStartError::Core(e)));
                            return;
                        }
                    };
                    info!(udp = %local, ?candidates, "media engine listening");
                    let _ = ready_tx.send(Ok(local));
                    let state = WorkerState {
                        core: MediaCore::new(core_config),
                        sinks: HashMap::new(),
                        stop: false,
                    };
                    run(state, udp, inbox, metrics).await;
                });
            })
            .map_err(EngineStartError::Io)?;
        let udp_addr = ready_rx
            .recv()
            .map_err(|_| EngineStartError::Io(std::io::Error::other("media thread died")))??;
        Ok(Self {
            jobs,
            udp_addr,
            thread: Some(thread),
        })
    }

    /// The UDP socket's bound address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
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
    exported.export(&state.core, &metrics);
    info!("media engine stopped");
}

fn flush(state: &mut WorkerState, udp: &UdpIo, out: &mut Vec<Transmit>) {
    while let Some(t) = state.core.poll_transmit() {
        match t.proto {
            Proto::Udp => out.push(Transmit {
                dst: t.dst,
                bytes: t.bytes,
            }),
            Proto::Tcp => {}
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
