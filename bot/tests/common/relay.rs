//! A UDP relay in the test process between participants and the server's media port, which
//! loses a share of what the server sends to chosen participants (`tc netem` is not in this
//! kernel). The server advertises the relay's address (its `--public-ip` with the same port), so
//! every participant's media goes through it; each participant address gets its own upstream
//! socket, so the server still sees one source per participant.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Counters of what the relay carried.
#[derive(Default, Debug)]
pub struct RelayCounts {
    /// Datagrams server → participants, per participant IP: (forwarded, dropped on purpose).
    pub down: std::sync::Mutex<HashMap<IpAddr, (u64, u64)>>,
    /// Datagrams participants → server.
    pub up: AtomicU64,
}

/// A running relay; stops on drop.
pub struct Relay {
    /// Where participants send (the address the server advertises).
    pub addr: SocketAddr,
    /// What it carried.
    pub counts: Arc<RelayCounts>,
    task: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A deterministic xorshift generator: the same losses every run.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Relay {
    /// Listens on `listen`, forwards to `server`, and drops `loss` (0..1) of the datagrams the
    /// server sends to a participant whose IP is `lossy`.
    pub async fn start(listen: SocketAddr, server: SocketAddr, lossy: IpAddr, loss: f64) -> Self {
        let socket = Arc::new(UdpSocket::bind(listen).await.expect("relay socket"));
        let addr = socket.local_addr().expect("relay address");
        let counts = Arc::new(RelayCounts::default());
        let task = tokio::spawn(run(socket, server, lossy, loss, Arc::clone(&counts)));
        Self { addr, counts, task }
    }

    /// (forwarded, dropped) datagrams from the server to participants at `ip`.
    pub fn down(&self, ip: IpAddr) -> (u64, u64) {
        self.counts
            .down
            .lock()
            .map(|d| d.get(&ip).copied().unwrap_or_default())
            .unwrap_or_default()
    }
}

async fn run(
    socket: Arc<UdpSocket>,
    server: SocketAddr,
    lossy: IpAddr,
    loss: f64,
    counts: Arc<RelayCounts>,
) {
    let mut upstreams: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    // Dropped (the relay stopped): every participant's return path stops too.
    let mut tasks = tokio::task::JoinSet::new();
    let mut buf = vec![0u8; 65_536];
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let upstream = match upstreams.get(&from) {
            Some(u) => Arc::clone(u),
            None => {
                let Ok(u) = UdpSocket::bind(SocketAddr::new(server.ip(), 0)).await else {
                    continue;
                };
                let u = Arc::new(u);
                upstreams.insert(from, Arc::clone(&u));
                seed = seed.wrapping_add(0x2545_F491_4F6C_DD1D);
                let rng = Rng(seed | 1);
                let drop_share = if from.ip() == lossy { loss } else { 0.0 };
                tasks.spawn(back(
                    Arc::clone(&u),
                    Arc::clone(&socket),
                    from,
                    drop_share,
                    rng,
                    Arc::clone(&counts),
                ));
                u
            }
        };
        counts.up.fetch_add(1, Ordering::Relaxed);
        let _ = upstream.send_to(&buf[..n], server).await;
    }
}

/// Server → one participant.
async fn back(
    upstream: Arc<UdpSocket>,
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    loss: f64,
    mut rng: Rng,
    counts: Arc<RelayCounts>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok(n) = upstream.recv(&mut buf).await else {
            continue;
        };
        let dropped = loss > 0.0 && rng.next_f64() < loss;
        if let Ok(mut down) = counts.down.lock() {
            let entry = down.entry(to.ip()).or_default();
            if dropped {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
        }
        if !dropped {
            let _ = socket.send_to(&buf[..n], to).await;
        }
    }
}
