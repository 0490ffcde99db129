//! ICE over TCP, the connections (plan §3; the framing is in `tcp_framing.rs`): [`spawn_listener`] accepts on the `--tcp-port` listener, on the media
//! thread's runtime, and runs one task per connection. The task reads frames and hands them to
//! the worker loop as [`TcpEvent`]s; the worker keeps a [`TcpConnections`] table that routes
//! them into the core and queues what the core emits for a connection's remote address on that
//! connection's [`WriteQueue`] (whole frames dropped and counted when full, so a slow TCP
//! subscriber stalls only itself). Rules:
//! - the first frame must be a STUN Binding request whose ufrag the demux knows, or the
//!   connection is closed;
//! - a connection must be authenticated (the core answered one of its checks with a Binding
//!   success) within [`FIRST_STUN_TIMEOUT`], and is closed after [`IDLE_TIMEOUT`] without a
//!   frame;
//! - at most [`MAX_UNBOUND`] connections are waiting for that at once, and at most
//!   [`MAX_PER_IP`] are open from one IP address; more are refused at accept.
//!
//! Closes and refusals are logged at debug level and counted in [`TcpStats`].

use super::stun;
use bytes::BytesMut;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tracing::debug;

pub use super::tcp_framing::{
    DEFAULT_WRITE_QUEUE_BYTES, FrameDecoder, FrameError, MAX_FRAME, TcpIoError, WriteQueue,
    encode_frame, read_frames, write_queued,
};

/// A new connection must be authenticated within this time: the core must have answered one of
/// its STUN checks with a Binding success (RFC 6544 §10: the first frame is a check).
pub const FIRST_STUN_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that delivers no frame for this long is closed (clients send a consent check
/// every few seconds).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections not yet authenticated, at most, at once; more are refused at accept.
pub const MAX_UNBOUND: usize = 256;
/// Open connections from one IP address, at most; more are refused at accept.
pub const MAX_PER_IP: usize = 16;
/// [`TcpEvent`]s waiting for the worker loop; when full, connection tasks wait before they read
/// more (TCP flow control pushes back on the sender).
pub const EVENT_QUEUE: usize = 256;

/// The limits of [`spawn_listener`] (the `pub const`s of this module by default; tests shorten
/// the timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// [`MAX_UNBOUND`].
    pub max_unbound: usize,
    /// [`MAX_PER_IP`].
    pub max_per_ip: usize,
    /// [`FIRST_STUN_TIMEOUT`].
    pub first_stun_timeout: Duration,
    /// [`IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// The bound of each connection's [`WriteQueue`] ([`DEFAULT_WRITE_QUEUE_BYTES`]).
    pub write_queue_bytes: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self {
            max_unbound: MAX_UNBOUND,
            max_per_ip: MAX_PER_IP,
            first_stun_timeout: FIRST_STUN_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            write_queue_bytes: DEFAULT_WRITE_QUEUE_BYTES,
        }
    }
}

/// Why an ICE-TCP connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side.
    PeerClosed,
    /// A frame that cannot be valid (zero length, or over [`MAX_FRAME`]).
    BadFrame,
    /// Reading or writing failed.
    Io,
    /// The first frame was not a STUN Binding request.
    NotStun,
    /// The demux refused the first frame (unknown ufrag, or over the peer's STUN budget).
    Refused,
    /// Not authenticated within [`FIRST_STUN_TIMEOUT`].
    Unauthenticated,
    /// No frame for [`IDLE_TIMEOUT`].
    Idle,
    /// The engine is stopping.
    Shutdown,
}

impl CloseReason {
    /// Every reason, in the order of [`TcpCounts::closed`].
    pub const ALL: [CloseReason; 8] = [
        CloseReason::PeerClosed,
        CloseReason::BadFrame,
        CloseReason::Io,
        CloseReason::NotStun,
        CloseReason::Refused,
        CloseReason::Unauthenticated,
        CloseReason::Idle,
        CloseReason::Shutdown,
    ];

    /// A short label (logs, metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::BadFrame => "bad_frame",
            CloseReason::Io => "io",
            CloseReason::NotStun => "not_stun",
            CloseReason::Refused => "refused",
            CloseReason::Unauthenticated => "unauthenticated",
            CloseReason::Idle => "idle",
            CloseReason::Shutdown => "shutdown",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Counters of the ICE-TCP side, shared by the listener, the connection tasks and the worker
/// (relaxed atomics, one increment per connection event or frame).
#[derive(Debug, Default)]
pub struct TcpStats {
    accepted: AtomicU64,
    refused_unbound: AtomicU64,
    refused_per_ip: AtomicU64,
    closed: [AtomicU64; CloseReason::ALL.len()],
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    frames_dropped: AtomicU64,
    frames_unroutable: AtomicU64,
}

/// A copy of [`TcpStats`] at one moment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TcpCounts {
    /// Connections accepted (not refused).
    pub accepted: u64,
    /// Connections refused because [`MAX_UNBOUND`] were waiting for authentication.
    pub refused_unbound: u64,
    /// Connections refused because [`MAX_PER_IP`] were open from that address.
    pub refused_per_ip: u64,
    /// Connections closed, per [`CloseReason`] (in the order of [`CloseReason::ALL`]).
    pub closed: [u64; CloseReason::ALL.len()],
    /// Frames (datagrams) received.
    pub frames_in: u64,
    /// Frames queued for sending.
    pub frames_out: u64,
    /// Frames dropped because a connection's write queue was full.
    pub frames_dropped: u64,
    /// Datagrams the core emitted for a TCP address with no open connection.
    pub frames_unroutable: u64,
}

impl TcpCounts {
    /// Connections closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[reason.index()]
    }
}

impl TcpStats {
    /// The counters now.
    pub fn snapshot(&self) -> TcpCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TcpCounts {
            accepted: get(&self.accepted),
            refused_unbound: get(&self.refused_unbound),
            refused_per_ip: get(&self.refused_per_ip),
            closed: std::array::from_fn(|i| get(&self.closed[i])),
            frames_in: get(&self.frames_in),
            frames_out: get(&self.frames_out),
            frames_dropped: get(&self.frames_dropped),
            frames_unroutable: get(&self.frames_unroutable),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many connections hold the limits.
#[derive(Debug, Default)]
struct Occupancy {
    unbound: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One connection's hold on the limits: one unbound place until [`Slot::bind`], one place of
/// its IP until dropped.
#[derive(Debug)]
struct Slot {
    occupancy: Arc<Mutex<Occupancy>>,
    ip: IpAddr,
    bound: AtomicBool,
}

impl Slot {
    /// Takes a place if the limits allow it.
    fn take(
        occupancy: &Arc<Mutex<Occupancy>>,
        ip: IpAddr,
        limits: &TcpLimits,
    ) -> Result<Self, &'static str> {
        let mut o = lock(occupancy);
        if o.unbound >= limits.max_unbound {
            return Err("unbound");
        }
        let from_ip = o.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= limits.max_per_ip {
            return Err("per_ip");
        }
        o.unbound += 1;
        o.per_ip.insert(ip, from_ip + 1);
        Ok(Self {
            occupancy: Arc::clone(occupancy),
            ip,
            bound: AtomicBool::new(false),
        })
    }

    /// The connection is authenticated: it no longer counts as unbound. Idempotent.
    fn bind(&self) {
        let mut o = lock(&self.occupancy);
        if !self.bound.swap(true, Ordering::Relaxed) {
            o.unbound = o.unbound.saturating_sub(1);
        }
    }

    fn is_bound(&self) -> bool {
        self.bound.load(Ordering::Relaxed)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = lock(&self.occupancy);
        if !self.bound.swap(true, Ordering::Relaxed) {
            o.unbound = o.unbound.saturating_sub(1);
        }
        if let Some(n) = o.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                o.per_ip.remove(&self.ip);
            }
        }
    }
}

/// What a connection task and the worker share: the write queue, its wake-up, the close request
/// and the connection's place in the limits.
#[derive(Debug)]
pub struct Connection {
    slot: Slot,
    queue: Mutex<WriteQueue>,
    wake: Notify,
    close: Mutex<Option<CloseReason>>,
}

impl Connection {
    fn request_close(&self, reason: CloseReason) {
        lock(&self.close).get_or_insert(reason);
        self.wake.notify_one();
    }

    fn close_requested(&self) -> Option<CloseReason> {
        *lock(&self.close)
    }
}

/// What the listener and the connection tasks tell the worker loop.
#[derive(Debug)]
#[non_exhaustive]
pub enum TcpEvent {
    /// A connection was accepted (sent before any of its frames).
    Opened {
        /// Unique for the listener's lifetime.
        id: u64,
        /// The remote address (canonical: an IPv4 peer of a dual-stack socket as `a.b.c.d`).
        src: SocketAddr,
        /// Its shared state.
        conn: Arc<Connection>,
    },
    /// Datagrams arrived on a connection, in order.
    Frames {
        /// The connection.
        id: u64,
        /// Its remote address.
        src: SocketAddr,
        /// The datagrams (framing removed).
        frames: Vec<BytesMut>,
    },
    /// The connection ended; the worker forgets it.
    Closed {
        /// The connection.
        id: u64,
        /// Its remote address.
        src: SocketAddr,
    },
}

/// Accepts connections on `listener` (on the current runtime, which must be the media
/// thread's) and runs one task per connection, until the runtime stops. Everything the tasks
/// learn goes to `events`.
pub fn spawn_listener(
    listener: TcpListener,
    limits: TcpLimits,
    stats: Arc<TcpStats>,
    events: mpsc::Sender<TcpEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(accept_loop(listener, limits, stats, events))
}

async fn accept_loop(
    listener: TcpListener,
    limits: TcpLimits,
    stats: Arc<TcpStats>,
    events: mpsc::Sender<TcpEvent>,
) {
    let occupancy = Arc::new(Mutex::new(Occupancy::default()));
    let mut next_id: u64 = 1;
    loop {
        let (stream, src) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before accept: wait a little
                // rather than spin.
                debug!("ICE-TCP accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let src = SocketAddr::new(src.ip().to_canonical(), src.port());
        let slot = match Slot::take(&occupancy, src.ip(), &limits) {
            Ok(slot) => slot,
            Err(which) => {
                let counter = if which == "unbound" {
                    &stats.refused_unbound
                } else {
                    &stats.refused_per_ip
                };
                TcpStats::add(counter, 1);
                debug!(%src, limit = which, "ICE-TCP connection refused: over the limit");
                drop(stream);
                continue;
            }
        };
        TcpStats::add(&stats.accepted, 1);
        // Media: every datagram goes out at once.
        let _ = stream.set_nodelay(true);
        let id = next_id;
        next_id += 1;
        let conn = Arc::new(Connection {
            slot,
            queue: Mutex::new(WriteQueue::new(limits.write_queue_bytes)),
            wake: Notify::new(),
            close: Mutex::new(None),
        });
        let opened = TcpEvent::Opened {
            id,
            src,
            conn: Arc::clone(&conn),
        };
        if events.send(opened).await.is_err() {
            return;
        }
        tokio::spawn(serve(
            stream,
            id,
            src,
            conn,
            events.clone(),
            limits,
            Arc::clone(&stats),
        ));
    }
}

/// One connection: reads frames for the worker and writes what the worker queued, at the same
/// time (a peer blocked writing to us must never wait for our own write to finish).
async fn serve(
    stream: TcpStream,
    id: u64,
    src: SocketAddr,
    conn: Arc<Connection>,
    events: mpsc::Sender<TcpEvent>,
    limits: TcpLimits,
    stats: Arc<TcpStats>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let reason = tokio::select! {
        reason = read_side(&mut rd, id, src, &conn, &events, &limits, &stats) => reason,
        reason = write_side(&mut wr, &conn) => reason,
    };
    TcpStats::add(&stats.closed[reason.index()], 1);
    debug!(%src, reason = reason.as_str(), "ICE-TCP connection closed");
    drop((rd, wr));
    let _ = events.send(TcpEvent::Closed { id, src }).await;
}

async fn read_side(
    rd: &mut OwnedReadHalf,
    id: u64,
    src: SocketAddr,
    conn: &Connection,
    events: &mpsc::Sender<TcpEvent>,
    limits: &TcpLimits,
    stats: &TcpStats,
) -> CloseReason {
    let accepted = Instant::now();
    let mut last_frame = accepted;
    let mut dec = FrameDecoder::new();
    let mut frames = Vec::new();
    let mut first = true;
    loop {
        let idle_at = last_frame + limits.idle_timeout;
        let deadline = if conn.slot.is_bound() {
            idle_at
        } else {
            idle_at.min(accepted + limits.first_stun_timeout)
        };
        let read =
            tokio::time::timeout_at(deadline.into(), read_frames(rd, &mut dec, &mut frames)).await;
        match read {
            Err(_elapsed) => {
                let now = Instant::now();
                if now >= last_frame + limits.idle_timeout {
                    return CloseReason::Idle;
                }
                if !conn.slot.is_bound() && now >= accepted + limits.first_stun_timeout {
                    return CloseReason::Unauthenticated;
                }
                // Authenticated meanwhile: wait on with the idle deadline.
            }
            Ok(Err(TcpIoError::Closed)) => return CloseReason::PeerClosed,
            Ok(Err(TcpIoError::Frame(_))) => return CloseReason::BadFrame,
            Ok(Err(TcpIoError::Io(_))) => return CloseReason::Io,
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                if first {
                    first = false;
                    let is_request = frames
                        .first()
                        .is_some_and(|f| stun::message_type(f) == Some(stun::BINDING_REQUEST));
                    if !is_request {
                        return CloseReason::NotStun;
                    }
                }
                last_frame = Instant::now();
                TcpStats::add(&stats.frames_in, n as u64);
                let batch = TcpEvent::Frames {
                    id,
                    src,
                    frames: std::mem::take(&mut frames),
                };
                if events.send(batch).await.is_err() {
                    return CloseReason::Shutdown;
                }
            }
        }
    }
}

async fn write_side(wr: &mut OwnedWriteHalf, conn: &Connection) -> CloseReason {
    loop {
        if let Some(reason) = conn.close_requested() {
            return reason;
        }
        let chunk = lock(&conn.queue).take();
        if chunk.is_empty() {
            conn.wake.notified().await;
            continue;
        }
        if wr.write_all(&chunk).await.is_err() {
            return CloseReason::Io;
        }
        lock(&conn.queue).release(chunk.len());
    }
}

/// The worker's table of open ICE-TCP connections, by remote address: it routes their frames
/// into the core and queues what the core emits for them.
#[derive(Debug)]
pub struct TcpConnections {
    conns: HashMap<SocketAddr, Conn>,
    stats: Arc<TcpStats>,
}

#[derive(Debug)]
struct Conn {
    id: u64,
    conn: Arc<Connection>,
    /// The demux took the first frame: the rest go to the core as they come.
    routed: bool,
}

impl TcpConnections {
    /// An empty table counting into `stats`.
    pub fn new(stats: Arc<TcpStats>) -> Self {
        Self {
            conns: HashMap::new(),
            stats,
        }
    }

    /// Open connections the worker knows.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Acts on one event of the connection tasks. `feed(src, datagram)` hands a datagram to the
    /// core and returns whether the demux took it: a connection whose first datagram it refuses
    /// is closed and forgotten.
    pub fn handle(&mut self, event: TcpEvent, mut feed: impl FnMut(SocketAddr, BytesMut) -> bool) {
        match event {
            TcpEvent::Opened { id, src, conn } => {
                let old = self.conns.insert(
                    src,
                    Conn {
                        id,
                        conn,
                        routed: false,
                    },
                );
                // A connection from the same address whose close is still on its way.
                if let Some(old) = old {
                    old.conn.request_close(CloseReason::Io);
                }
            }
            TcpEvent::Frames { id, src, frames } => {
                let Some(c) = self.conns.get_mut(&src) else {
                    return;
                };
                if c.id != id {
                    return;
                }
                let mut frames = frames.into_iter();
                if !c.routed {
                    let Some(first) = frames.next() else {
                        return;
                    };
                    if !feed(src, first) {
                        debug!(%src, "ICE-TCP connection refused: its first STUN check names no peer");
                        c.conn.request_close(CloseReason::Refused);
                        self.conns.remove(&src);
                        return;
                    }
                    c.routed = true;
                }
                for frame in frames {
                    feed(src, frame);
                }
            }
            TcpEvent::Closed { id, src } => {
                if self.conns.get(&src).is_some_and(|c| c.id == id) {
                    self.conns.remove(&src);
                }
            }
        }
    }

    /// Queues a datagram the core emitted for the connection from `dst`. A STUN Binding success
    /// authenticates the connection. Returns false (and counts) when no connection is open from
    /// `dst` or its queue is full.
    pub fn send(&mut self, dst: SocketAddr, datagram: &[u8]) -> bool {
        let Some(c) = self.conns.get(&dst) else {
            TcpStats::add(&self.stats.frames_unroutable, 1);
            return false;
        };
        if stun::is_binding_success(datagram) {
            c.conn.slot.bind();
        }
        if lock(&c.conn.queue).push(datagram) {
            TcpStats::add(&self.stats.frames_out, 1);
            c.conn.wake.notify_one();
            true
        } else {
            TcpStats::add(&self.stats.frames_dropped, 1);
            false
        }
    }

    /// Waits (at most `bound`) until every connection has written what is queued: the last
    /// DTLS close_notify before the engine stops.
    pub async fn flush(&self, bound: Duration) {
        let deadline = tokio::time::Instant::now() + bound;
        while self.conns.values().any(|c| !lock(&c.conn.queue).is_idle())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    use crate::engine::stun::testing;
    use tokio::net::{TcpListener as Listener, TcpStream as Stream};

    /// The worker's side in a test: the table, the events, and a demux stand-in that knows the
    /// ufrag `good`.
    struct Harness {
        addr: SocketAddr,
        events: mpsc::Receiver<TcpEvent>,
        table: TcpConnections,
        stats: Arc<TcpStats>,
        fed: Vec<(SocketAddr, BytesMut)>,
    }

    impl Harness {
        async fn start(limits: TcpLimits) -> Self {
            let listener = Listener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let stats = Arc::new(TcpStats::default());
            let (tx, events) = mpsc::channel(EVENT_QUEUE);
            spawn_listener(listener, limits, Arc::clone(&stats), tx);
            Self {
                addr,
                events,
                table: TcpConnections::new(Arc::clone(&stats)),
                stats,
                fed: Vec::new(),
            }
        }

        /// Handles events until `done` holds (at most 5 s).
        async fn until(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while !done(self) {
                let event = tokio::time::timeout_at(deadline, self.events.recv())
                    .await
                    .unwrap_or_else(|_| panic!("timed out waiting until {what}"))
                    .expect("listener alive");
                let fed = &mut self.fed;
                self.table.handle(event, |src, d| {
                    let known = stun::username_local_part(&d) == Some(&b"good"[..])
                        || stun::message_type(&d) != Some(stun::BINDING_REQUEST);
                    if known {
                        fed.push((src, d));
                    }
                    known
                });
            }
        }

        fn counts(&self) -> TcpCounts {
            self.stats.snapshot()
        }
    }

    async fn send_frame(s: &mut Stream, datagram: &[u8]) {
        let mut out = BytesMut::new();
        encode_frame(datagram, &mut out).unwrap();
        s.write_all(&out).await.unwrap();
    }

    /// Reads until the server closes the connection (at most 5 s); returns what arrived.
    async fn read_to_close(s: &mut Stream) -> Vec<u8> {
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got));
        match read.await.expect("the server closes the connection") {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
        got
    }

    #[tokio::test]
    async fn a_first_frame_that_is_not_a_stun_request_closes_the_connection() {
        let mut h = Harness::start(TcpLimits::default()).await;
        let mut c = Stream::connect(h.addr).await.unwrap();
        // DTLS-looking, then a valid check: the check must not be taken after it.
        send_frame(&mut c, &[22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).await;
        send_frame(&mut c, &testing::request("good:remote")).await;
        assert!(read_to_close(&mut c).await.is_empty());
        h.until("closed", |h| h.counts().closed(CloseReason::NotStun) == 1)
            .await;
        h.until("forgotten", |h| h.table.is_empty()).await;
        assert!(h.fed.is_empty(), "nothing reaches the core");
        // A success indication first is no better than DTLS.
        let mut c = Stream::connect(h.addr).await.unwrap();
        send_frame(&mut c, &testing::success()).await;
        read_to_close(&mut c).await;
        h.until("closed", |h| h.counts().closed(CloseReason::NotStun) == 2)
            .await;
    }

    #[tokio::test]
    async fn a_check_with_an_unknown_ufrag_closes_the_connection() {
        let mut h = Harness::start(TcpLimits::default()).await;
        let mut c = Stream::connect(h.addr).await.unwrap();
        send_frame(&mut c, &testing::request("nobody:remote")).await;
        h.until("closed", |h| h.counts().closed(CloseReason::Refused) == 1)
            .await;
        read_to_close(&mut c).await;
        assert!(h.table.is_empty());
        assert!(h.fed.is_empty());
    }

    #[tokio::test]
    async fn a_known_check_binds_and_frames_flow_both_ways() {
        let mut h = Harness::start(TcpLimits::default()).await;
        let mut c = Stream::connect(h.addr).await.unwrap();
        let src = c.local_addr().unwrap();
        let check = testing::request("good:remote");
        // The check and a DTLS record in one write, then a later RTP packet.
        let mut wire = BytesMut::new();
        encode_frame(&check, &mut wire).unwrap();
        encode_frame(&[22, 1, 2, 3], &mut wire).unwrap();
        c.write_all(&wire).await.unwrap();
        h.until("two frames fed", |h| h.fed.len() == 2).await;
        send_frame(&mut c, &[0x80, 96, 0, 1]).await;
        h.until("three frames fed", |h| h.fed.len() == 3).await;
        assert!(h.fed.iter().all(|(a, _)| *a == src));
        assert_eq!(h.fed[0].1, &check[..]);
        assert_eq!(h.fed[2].1, &[0x80, 96, 0, 1][..]);

        // What the core emits for `src` arrives framed, in order.
        let success = testing::success();
        assert!(h.table.send(src, &success));
        assert!(h.table.send(src, &[23, 9, 9]));
        assert!(!h.table.send("127.0.0.1:9".parse().unwrap(), &[23]));
        let mut dec = FrameDecoder::new();
        let mut frames = Vec::new();
        while frames.len() < 2 {
            read_frames(&mut c, &mut dec, &mut frames).await.unwrap();
        }
        assert_eq!(frames, [&success[..], &[23, 9, 9][..]]);
        let counts = h.counts();
        assert_eq!(
            (counts.accepted, counts.frames_in, counts.frames_out),
            (1, 3, 2)
        );
        assert_eq!(counts.frames_unroutable, 1);

        // The client closes: the worker forgets the connection.
        drop(c);
        h.until("forgotten", |h| h.table.is_empty()).await;
        assert_eq!(h.counts().closed(CloseReason::PeerClosed), 1);
    }

    #[tokio::test]
    async fn unauthenticated_and_idle_connections_are_closed() {
        let limits = TcpLimits {
            first_stun_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(900),
            ..TcpLimits::default()
        };
        let mut h = Harness::start(limits).await;

        // Silent from the start.
        let mut silent = Stream::connect(h.addr).await.unwrap();
        // A known check the core never answers: still not authenticated.
        let mut unanswered = Stream::connect(h.addr).await.unwrap();
        send_frame(&mut unanswered, &testing::request("good:remote")).await;
        // Answered: authenticated, then idle.
        let mut answered = Stream::connect(h.addr).await.unwrap();
        let answered_src = answered.local_addr().unwrap();
        send_frame(&mut answered, &testing::request("good:remote")).await;
        h.until("both checks fed", |h| h.fed.len() == 2).await;
        assert!(h.table.send(answered_src, &testing::success()));

        let started = Instant::now();
        read_to_close(&mut silent).await;
        read_to_close(&mut unanswered).await;
        let unauthenticated = started.elapsed();
        read_to_close(&mut answered).await;
        let idle = started.elapsed();
        h.until("all closed", |h| h.table.is_empty()).await;
        let counts = h.counts();
        assert_eq!(counts.closed(CloseReason::Unauthenticated), 2, "{counts:?}");
        assert_eq!(counts.closed(CloseReason::Idle), 1, "{counts:?}");
        assert!(
            unauthenticated >= Duration::from_millis(250),
            "{unauthenticated:?}"
        );
        assert!(idle >= Duration::from_millis(700), "{idle:?}");
    }

    #[tokio::test]
    async fn limits_refuse_connections_at_accept() {
        let limits = TcpLimits {
            max_unbound: 3,
            max_per_ip: 2,
            ..TcpLimits::default()
        };
        let mut h = Harness::start(limits).await;
        let mut a = Stream::connect(h.addr).await.unwrap();
        let _b = Stream::connect(h.addr).await.unwrap();
        h.until("two open", |h| h.table.len() == 2).await;
        // A third from 127.0.0.1 is over the per-IP limit.
        let mut c = Stream::connect(h.addr).await.unwrap();
        read_to_close(&mut c).await;
        assert_eq!(h.counts().refused_per_ip, 1);
        // Another address (127.0.0.2, also loopback) may still connect, up to 3 unbound in all.
        let server = h.addr;
        let other = |ip: &str| {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
            sock.connect(server)
        };
        let _d = other("127.0.0.2").await.unwrap();
        h.until("three open", |h| h.table.len() == 3).await;
        let mut e = other("127.0.0.3").await.unwrap();
        read_to_close(&mut e).await;
        assert_eq!(h.counts().refused_unbound, 1);

        // Authenticating `a` frees an unbound place (not its per-IP one).
        let a_src = a.local_addr().unwrap();
        send_frame(&mut a, &testing::request("good:remote")).await;
        h.until("check fed", |h| h.fed.len() == 1).await;
        assert!(h.table.send(a_src, &testing::success()));
        let f = other("127.0.0.3").await.unwrap();
        h.until("four open", |h| h.table.len() == 4).await;
        drop(f);
        let counts = h.counts();
        assert_eq!((counts.accepted, counts.refused_unbound), (4, 1));
    }

    #[tokio::test]
    async fn a_full_write_queue_drops_whole_frames_of_that_connection_only() {
        let limits = TcpLimits {
            write_queue_bytes: 8 * 1024,
            ..TcpLimits::default()
        };
        let mut h = Harness::start(limits).await;
        let mut slow = Stream::connect(h.addr).await.unwrap();
        let mut fast = Stream::connect(h.addr).await.unwrap();
        let (slow_src, fast_src) = (slow.local_addr().unwrap(), fast.local_addr().unwrap());
        send_frame(&mut slow, &testing::request("good:remote")).await;
        send_frame(&mut fast, &testing::request("good:remote")).await;
        h.until("checks fed", |h| h.fed.len() == 2).await;

        // `slow` never reads: once the kernel buffers are full, its frames are dropped whole.
        let mut dropped = 0;
        let mut sent = 0u32;
        for i in 0..20_000u32 {
            let mut d = vec![0x80; 1200];
            d[4..8].copy_from_slice(&i.to_be_bytes());
            if h.table.send(slow_src, &d) {
                sent += 1;
            } else {
                dropped += 1;
            }
            if i % 64 == 0 {
                tokio::task::yield_now().await;
            }
            if dropped > 100 {
                break;
            }
        }
        assert!(dropped > 100, "sent {sent}, nothing dropped");
        assert_eq!(h.counts().frames_dropped, dropped);

        // `fast` is unaffected.
        for i in 0..100u8 {
            assert!(h.table.send(fast_src, &[0x80, i, 1, 2]));
        }
        let mut dec = FrameDecoder::new();
        let mut frames = Vec::new();
        while frames.len() < 100 {
            tokio::time::timeout(
                Duration::from_secs(5),
                read_frames(&mut fast, &mut dec, &mut frames),
            )
            .await
            .expect("fast reads in time")
            .unwrap();
        }
        assert!(frames.iter().enumerate().all(|(i, f)| f[1] == i as u8));

        // What `slow` gets when it reads at last: whole frames in order, a gap where frames were
        // dropped, never half a frame.
        let mut dec = FrameDecoder::new();
        let mut frames = Vec::new();
        while frames.len() < sent as usize {
            tokio::time::timeout(
                Duration::from_secs(5),
                read_frames(&mut slow, &mut dec, &mut frames),
            )
            .await
            .expect("slow reads what was queued")
            .unwrap();
        }
        let numbers: Vec<u32> = frames
            .iter()
            .map(|f| {
                assert_eq!(f.len(), 1200);
                u32::from_be_bytes([f[4], f[5], f[6], f[7]])
            })
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in order");
    }
}
