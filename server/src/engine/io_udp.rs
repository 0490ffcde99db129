//! The media engine's one UDP socket: batched receive (`recvmmsg`, GRO buffers split back into
//! datagrams) and batched send (runs of equal-size datagrams to one destination go out as one GSO
//! `sendmsg`), both through `quinn-udp` (plan §6).
//!
//! This file does no routing and keeps no per-peer state: the engine hands it [`Transmit`]s and
//! takes [`Datagram`]s. UDP semantics throughout: a send never blocks and never retries; what the
//! kernel refuses is counted in [`SendStats::dropped`], not reported as an error.
//!
//! Addresses are canonical on both sides: a dual-stack IPv6 socket reports an IPv4 sender as
//! `a.b.c.d:port` (not `::ffff:a.b.c.d`), an IPv6 sender without its flow label, and accepts
//! either form as a destination. Demux tables keyed by [`std::net::SocketAddr`] stay consistent.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::{Mutex, PoisonError};

use bytes::BytesMut;
use quinn_udp::{BATCH_SIZE, RecvMeta, UdpSockRef, UdpSocketState};
use tokio::io::Interest;

/// What is asked of the kernel for each of `SO_RCVBUF` and `SO_SNDBUF`. Linux caps it at
/// `net.core.rmem_max` / `net.core.wmem_max` without an error; `bind` logs what was granted.
const SOCKET_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// The size of one receive slot. GRO never builds a buffer over 64 KiB (the IP length limit), and
/// a slot this large also never truncates a single oversized datagram: it arrives whole and the
/// demux drops it as malformed instead of seeing a plausible-looking prefix.
const RECV_SLOT_LEN: usize = 64 * 1024;

/// The largest datagram sent as part of a GSO run; larger ones go out one `sendmsg` each.
///
/// The kernel refuses a GSO send with `EINVAL` when a segment plus its IP/UDP headers exceeds
/// the interface MTU, and `quinn-udp` then turns GSO off for the socket for good. 1232 =
/// 1280 − 48 (IPv6 + UDP headers) fits every link that can carry IPv6, and browsers packetize
/// RTP at ≤ 1200 bytes, so this costs no GSO in practice and cannot disable it by accident.
const MAX_GSO_SEGMENT: usize = 1232;

/// The most datagrams in one GSO run (the kernel's `UDP_MAX_SEGMENTS` is at least 64).
const MAX_GSO_SEGMENTS: usize = 64;

/// The most bytes in one GSO run: well under the 64 KiB IP datagram limit, which also bounds the
/// super-packet the kernel segments.
const MAX_GSO_BYTES: usize = 64_000;

/// One datagram received on the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Who sent it (canonical form, see the module docs).
    pub src: SocketAddr,
    /// The local IP it was sent to (`IP_PKTINFO`), where the platform reports it.
    pub dst_ip: Option<IpAddr>,
    /// Its payload. Datagrams of one receive batch share one allocation.
    pub bytes: BytesMut,
}

/// One datagram the engine wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub dst: SocketAddr,
    /// Its payload.
    pub bytes: BytesMut,
}

/// What one [`UdpIo::send`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Datagrams the kernel accepted.
    pub datagrams: u64,
    /// `sendmsg` calls made (a GSO run is one call for many datagrams).
    pub syscalls: u64,
    /// Datagrams not sent: the socket buffer was full (`WouldBlock`), the kernel refused them,
    /// or the destination can never be sent to from this socket (port 0, wrong address family).
    pub dropped: u64,
}

impl SendStats {
    /// Adds `other` to `self` (for per-worker running totals).
    pub fn add(&mut self, other: SendStats) {
        self.datagrams += other.datagrams;
        self.syscalls += other.syscalls;
        self.dropped += other.dropped;
    }
}

/// The buffers of one `recvmmsg` batch, reused across calls.
struct RecvBufs {
    /// `BATCH_SIZE` slots of `RECV_SLOT_LEN` bytes.
    buf: Box<[u8]>,
    meta: [RecvMeta; BATCH_SIZE],
}

/// The engine's UDP socket: a tokio socket (for readiness) driven through `quinn-udp` (for
/// `recvmmsg`, GRO, GSO and `IP_PKTINFO`).
///
/// Every method takes `&self`, so one `Arc<UdpIo>` can be received from by one task and sent on
/// by several threads at once (plan §8). Readiness belongs to the tokio runtime `bind` ran in:
/// await [`UdpIo::readable`] on that runtime. [`UdpIo::send`] needs no runtime.
pub struct UdpIo {
    socket: tokio::net::UdpSocket,
    state: UdpSocketState,
    local_is_ipv4: bool,
    recv: Mutex<RecvBufs>,
    /// The reusable buffer a GSO run is concatenated into. A sender that finds it taken by
    /// another thread uses a buffer of its own for that call rather than wait.
    gso_scratch: Mutex<Vec<u8>>,
}

impl std::fmt::Debug for UdpIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpIo")
            .field("local_addr", &self.socket.local_addr().ok())
            .field("max_gso_segments", &self.state.max_gso_segments())
            .field("gro_segments", &self.state.gro_segments())
            .finish_non_exhaustive()
    }
}

impl UdpIo {
    /// Binds `addr` (non-blocking, 8 MiB socket buffers best effort, GRO and `IP_PKTINFO` on
    /// where available) and registers the socket with the current tokio runtime.
    ///
    /// Must be called inside a tokio runtime (an error otherwise). Bind a concrete IP on
    /// multi-homed hosts: batched sends cannot choose the source address per datagram (plan §6).
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        // `from_std` below would panic outside a runtime.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "UdpIo::bind must run inside a tokio runtime",
            ));
        }
        Self::from_std(std::net::UdpSocket::bind(addr)?)
    }

    /// Wraps a bound socket (or a `try_clone` of one: every media worker receives and sends on
    /// its own handle of the one port) and registers it with the current tokio runtime.
    pub fn from_std(std_socket: std::net::UdpSocket) -> io::Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "UdpIo::from_std must run inside a tokio runtime",
            ));
        }
        // Also sets O_NONBLOCK.
        let state = UdpSocketState::new(UdpSockRef::from(&std_socket))?;
        std_socket.set_nonblocking(true)?;

        if let Err(err) =
            state.set_recv_buffer_size(UdpSockRef::from(&std_socket), SOCKET_BUFFER_BYTES)
        {
            tracing::debug!(%err, "could not set SO_RCVBUF on the media UDP socket");
        }
        if let Err(err) =
            state.set_send_buffer_size(UdpSockRef::from(&std_socket), SOCKET_BUFFER_BYTES)
        {
            tracing::debug!(%err, "could not set SO_SNDBUF on the media UDP socket");
        }
        let local = std_socket.local_addr()?;
        tracing::debug!(
            %local,
            requested = SOCKET_BUFFER_BYTES,
            // Linux reports twice what it grants for bookkeeping; below the request, raise
            // net.core.rmem_max / net.core.wmem_max.
            recv_buffer = state.recv_buffer_size(UdpSockRef::from(&std_socket)).ok(),
            send_buffer = state.send_buffer_size(UdpSockRef::from(&std_socket)).ok(),
            gro_segments = state.gro_segments(),
            max_gso_segments = state.max_gso_segments(),
            "media UDP socket bound"
        );

        let socket = tokio::net::UdpSocket::from_std(std_socket)?;
        Ok(Self {
            socket,
            state,
            local_is_ipv4: local.is_ipv4(),
            recv: Mutex::new(RecvBufs {
                buf: vec![0u8; BATCH_SIZE * RECV_SLOT_LEN].into_boxed_slice(),
                meta: [RecvMeta::default(); BATCH_SIZE],
            }),
            gso_scratch: Mutex::new(Vec::with_capacity(MAX_GSO_BYTES)),
        })
    }

    /// The address the socket is bound to (with the port the kernel picked for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// How many datagrams one GSO `sendmsg` may carry right now: 1 when GSO is unavailable or
    /// `quinn-udp` turned it off after an `EIO`/`EINVAL` (for metrics and logs).
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Waits until the socket is readable. Then call [`UdpIo::try_recv`] until it returns 0.
    pub async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Receives what is queued, without blocking: one `recvmmsg` batch (up to
    /// `quinn_udp::BATCH_SIZE` buffers), each GRO buffer split by its stride into one
    /// [`Datagram`] per datagram, appended to `out`. Returns how many were appended; `Ok(0)` when
    /// nothing is queued (readiness is then cleared, so [`UdpIo::readable`] waits again).
    ///
    /// An error other than `WouldBlock` is returned as is; it concerns this call only (the
    /// socket stays usable).
    pub fn try_recv(&self, out: &mut Vec<Datagram>) -> io::Result<usize> {
        let mut guard = self.recv.lock().unwrap_or_else(PoisonError::into_inner);
        let RecvBufs { buf, meta } = &mut *guard;
        let received = self.socket.try_io(Interest::READABLE, || {
            let mut slots = buf.chunks_mut(RECV_SLOT_LEN);
            let mut slices: [IoSliceMut<'_>; BATCH_SIZE] =
                std::array::from_fn(|_| IoSliceMut::new(slots.next().unwrap_or_default()));
            self.state
                .recv(UdpSockRef::from(&self.socket), &mut slices, meta)
        });
        let count = match received {
            Ok(count) => count.min(BATCH_SIZE),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(err) => return Err(err),
        };

        let metas = &meta[..count];
        // One allocation for the whole batch; each datagram is split off it.
        let total = metas.iter().map(|m| m.len.min(RECV_SLOT_LEN)).sum();
        let mut chunk = BytesMut::with_capacity(total);
        let before = out.len();
        for (slot, m) in buf.chunks(RECV_SLOT_LEN).zip(metas) {
            let data = &slot[..m.len.min(slot.len())];
            let src = canonical(m.addr);
            let dst_ip = m.dst_ip.map(|ip| ip.to_canonical());
            if data.is_empty() {
                // An empty datagram is still a datagram: the demux counts it as malformed.
                out.push(Datagram {
                    src,
                    dst_ip,
                    bytes: BytesMut::new(),
                });
                continue;
            }
            for segment in gro_segments(data, m.stride) {
                chunk.extend_from_slice(segment);
                out.push(Datagram {
                    src,
                    dst_ip,
                    bytes: chunk.split(),
                });
            }
        }
        Ok(out.len() - before)
    }

    /// Sends every transmit in `queue` and empties it, in order per destination. Consecutive
    /// transmits to one destination of equal length (a shorter last one allowed, each at most
    /// 1232 bytes) go out as one GSO `sendmsg`, up to the socket's segment limit and 64 000
    /// bytes; the rest go out one `sendmsg` each.
    ///
    /// Never blocks and never fails: `WouldBlock` drops the rest of the current run, a refused
    /// datagram is dropped, and a failed GSO run is retried as single sends (`quinn-udp` turns
    /// GSO off by itself after `EIO`/`EINVAL`). Everything is counted in the returned
    /// [`SendStats`].
    pub fn send(&self, queue: &mut Vec<Transmit>) -> SendStats {
        let mut stats = SendStats::default();
        let mut shared = self.gso_scratch.try_lock().ok();
        let mut own = Vec::new();
        let scratch: &mut Vec<u8> = match shared.as_deref_mut() {
            Some(buf) => buf,
            None => &mut own,
        };
        let max_segments = self.state.max_gso_segments().min(MAX_GSO_SEGMENTS);

        let n = queue.len();
        let mut i = 0;
        while i < n {
            let first = &queue[i];
            let seg = first.bytes.len();
            let mut end = i + 1;
            if max_segments > 1 && seg > 0 && seg <= MAX_GSO_SEGMENT {
                let mut total = seg;
                while end < n && end - i < max_segments {
                    let next = &queue[end];
                    let len = next.bytes.len();
                    if next.dst != first.dst || len == 0 || len > seg || total + len > MAX_GSO_BYTES
                    {
                        break;
                    }
                    total += len;
                    end += 1;
                    if len < seg {
                        // A shorter datagram can only be the last segment.
                        break;
                    }
                }
            }
            let run = &queue[i..end];
            i = end;

            let Some(dst) = self.normalize_dst(first.dst) else {
                // Port 0 or an address family this socket cannot reach. Filtered here because
                // the kernel's EINVAL for it would make quinn-udp turn GSO off for everyone.
                stats.dropped += run.len() as u64;
                continue;
            };
            if run.len() == 1 {
                self.send_singles(dst, run, &mut stats);
                continue;
            }

            scratch.clear();
            for t in run {
                scratch.extend_from_slice(&t.bytes);
            }
            stats.syscalls += 1;
            match self.try_send(dst, scratch, Some(seg)) {
                Ok(()) => stats.datagrams += run.len() as u64,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    stats.dropped += run.len() as u64;
                }
                Err(_) => self.send_singles(dst, run, &mut stats),
            }
        }
        queue.clear();
        if max_segments > 1 && self.state.max_gso_segments() == 1 {
            // Once per socket: quinn-udp never turns GSO back on.
            tracing::warn!(
                local = ?self.socket.local_addr().ok(),
                "UDP GSO turned off on the media socket after a send error (EIO/EINVAL from the \
                 NIC driver or a segment over the interface MTU); sends now cost one syscall per \
                 datagram"
            );
        }
        stats
    }

    /// Sends `run` (all to `dst`) one `sendmsg` each; `WouldBlock` drops the rest of the run.
    fn send_singles(&self, dst: SocketAddr, run: &[Transmit], stats: &mut SendStats) {
        for (k, t) in run.iter().enumerate() {
            stats.syscalls += 1;
            match self.try_send(dst, &t.bytes, None) {
                Ok(()) => stats.datagrams += 1,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    stats.dropped += (run.len() - k) as u64;
                    return;
                }
                Err(_) => stats.dropped += 1,
            }
        }
    }

    fn try_send(
        &self,
        dst: SocketAddr,
        contents: &[u8],
        segment_size: Option<usize>,
    ) -> io::Result<()> {
        let transmit = quinn_udp::Transmit {
            destination: dst,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        self.state
            .try_send(UdpSockRef::from(&self.socket), &transmit)
    }

    /// The destination as this socket's address family needs it, or `None` when it can never be
    /// sent to (port 0; an IPv6 address on an IPv4 socket).
    fn normalize_dst(&self, dst: SocketAddr) -> Option<SocketAddr> {
        if dst.port() == 0 {
            return None;
        }
        match (self.local_is_ipv4, dst) {
            (true, SocketAddr::V4(_)) | (false, SocketAddr::V6(_)) => Some(dst),
            (true, SocketAddr::V6(v6)) => v6
                .ip()
                .to_ipv4_mapped()
                .map(|ip| SocketAddr::new(IpAddr::V4(ip), v6.port())),
            (false, SocketAddr::V4(v4)) => Some(SocketAddr::new(
                IpAddr::V6(v4.ip().to_ipv6_mapped()),
                v4.port(),
            )),
        }
    }
}

/// The datagrams in one received buffer: `stride`-sized pieces (the last may be shorter). A
/// buffer without GRO has `stride == data.len()`; a zero stride is treated the same way.
fn gro_segments(data: &[u8], stride: usize) -> std::slice::Chunks<'_, u8> {
    let step = if stride == 0 { data.len() } else { stride };
    data.chunks(step.max(1))
}

/// `addr` as the engine keys peers: IPv4-mapped IPv6 as IPv4, IPv6 without its flow label
/// (which a sender may change at any time).
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => addr,
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::new(IpAddr::V4(ip), v6.port()),
            None => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, v6.scope_id())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn localhost() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    /// A payload of `len` bytes that says who it is: `tag`, `index`, then a pattern.
    fn payload(tag: u8, index: u16, len: usize) -> BytesMut {
        let mut bytes = BytesMut::with_capacity(len);
        for k in 0..len {
            let b = match k {
                0 => tag,
                1 => (index >> 8) as u8,
                2 => index as u8,
                _ => (k as u8).wrapping_mul(31).wrapping_add(index as u8),
            };
            bytes.extend_from_slice(&[b]);
        }
        bytes
    }

    /// Receives on `io` until `n` datagrams arrived (or panics after 5 s).
    async fn recv_n(io: &UdpIo, n: usize) -> Vec<Datagram> {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), async {
            while out.len() < n {
                io.readable().await.unwrap();
                while io.try_recv(&mut out).unwrap() > 0 {}
            }
        })
        .await
        .unwrap_or_else(|_| panic!("received {} of {n} datagrams", out.len()));
        out
    }

    #[test]
    fn gro_buffers_split_by_stride() {
        let data: Vec<u8> = (0..10u8).collect();
        let parts: Vec<&[u8]> = gro_segments(&data, 4).collect();
        assert_eq!(parts, [&[0, 1, 2, 3][..], &[4, 5, 6, 7], &[8, 9]]);
        assert_eq!(gro_segments(&data, 10).count(), 1);
        assert_eq!(gro_segments(&data, 0).count(), 1);
        assert_eq!(gro_segments(&data, 64).count(), 1);
    }

    #[test]
    fn bind_outside_a_runtime_is_an_error() {
        assert!(UdpIo::bind(localhost()).is_err());
    }

    #[test]
    fn addresses_are_canonical() {
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:5000".parse().unwrap();
        assert_eq!(
            canonical(mapped),
            "10.0.0.1:5000".parse::<SocketAddr>().unwrap()
        );
        let flow = SocketAddr::V6(SocketAddrV6::new("2001:db8::1".parse().unwrap(), 9, 77, 0));
        assert_eq!(
            canonical(flow),
            "[2001:db8::1]:9".parse::<SocketAddr>().unwrap()
        );
    }

    #[tokio::test]
    async fn runs_and_mixed_sizes_arrive_in_order() {
        let tx = UdpIo::bind(localhost()).unwrap();
        let b = UdpIo::bind(localhost()).unwrap();
        let c = UdpIo::bind(localhost()).unwrap();
        let (b_addr, c_addr) = (b.local_addr().unwrap(), c.local_addr().unwrap());

        // 100 equal datagrams to one destination: GSO runs.
        let mut queue: Vec<Transmit> = (0..100)
            .map(|i| Transmit {
                dst: b_addr,
                bytes: payload(1, i, 1200),
            })
            .collect();
        let sent = tx.send(&mut queue);
        assert!(queue.is_empty());
        assert_eq!((sent.datagrams, sent.dropped), (100, 0), "{sent:?}");
        if cfg!(target_os = "linux") {
            assert!(sent.syscalls < sent.datagrams, "no GSO: {sent:?}");
        }
        let got = recv_n(&b, 100).await;
        assert_eq!(got.len(), 100);
        for (i, d) in got.iter().enumerate() {
            assert_eq!(d.bytes, payload(1, i as u16, 1200), "datagram {i}");
            assert_eq!(d.src, tx.local_addr().unwrap());
        }

        // 30 of varied sizes to two destinations, interleaved in short equal-size runs.
        let sizes = [
            1200, 1200, 1200, 800, 20, 1400, 1400, 100, 100, 99, 1, 1500, 600, 600, 1232,
        ];
        let mut expected: HashMap<SocketAddr, Vec<BytesMut>> = HashMap::new();
        let mut queue = Vec::new();
        for i in 0..30u16 {
            let dst = if (i / 2) % 2 == 0 { b_addr } else { c_addr };
            let bytes = payload(2, i, sizes[i as usize % sizes.len()]);
            expected.entry(dst).or_default().push(bytes.clone());
            queue.push(Transmit { dst, bytes });
        }
        let sent = tx.send(&mut queue);
        assert_eq!((sent.datagrams, sent.dropped), (30, 0), "{sent:?}");
        for (io, addr) in [(&b, b_addr), (&c, c_addr)] {
            let want = &expected[&addr];
            let got: Vec<BytesMut> = recv_n(io, want.len())
                .await
                .into_iter()
                .map(|d| d.bytes)
                .collect();
            assert_eq!(&got, want, "to {addr}");
        }
    }

    #[tokio::test]
    async fn receive_splits_a_gro_batch() {
        let tx = UdpIo::bind(localhost()).unwrap();
        let rx = UdpIo::bind(localhost()).unwrap();
        let mut queue: Vec<Transmit> = (0..20)
            .map(|i| Transmit {
                dst: rx.local_addr().unwrap(),
                bytes: payload(3, i, 1200),
            })
            .collect();
        let sent = tx.send(&mut queue);
        assert_eq!(sent.datagrams, 20);
        let got = recv_n(&rx, 20).await;
        assert_eq!(got.len(), 20);
        for (i, d) in got.iter().enumerate() {
            assert_eq!(d.bytes.len(), 1200);
            assert_eq!(d.bytes, payload(3, i as u16, 1200));
            assert_eq!(d.src, tx.local_addr().unwrap());
            if cfg!(target_os = "linux") {
                assert_eq!(d.dst_ip, Some(IpAddr::from([127, 0, 0, 1])));
            }
        }
        // Nothing else is queued.
        assert_eq!(rx.try_recv(&mut Vec::new()).unwrap(), 0);
    }

    #[tokio::test]
    async fn bad_destinations_are_counted_not_errors() {
        let tx = UdpIo::bind(localhost()).unwrap();
        let rx = UdpIo::bind(localhost()).unwrap();
        // A port nobody listens on any more (the socket is dropped at the end of the statement).
        let closed = UdpIo::bind(localhost()).unwrap().local_addr().unwrap();
        let gso_before = tx.max_gso_segments();

        let mut queue = vec![
            Transmit {
                dst: closed,
                bytes: payload(4, 0, 100),
            },
            Transmit {
                dst: closed,
                bytes: payload(4, 1, 100),
            },
            Transmit {
                dst: "127.0.0.1:0".parse().unwrap(),
                bytes: payload(4, 2, 100),
            },
            Transmit {
                dst: "[2001:db8::1]:9".parse().unwrap(),
                bytes: payload(4, 3, 100),
            },
        ];
        let sent = tx.send(&mut queue);
        assert_eq!(sent.datagrams + sent.dropped, 4, "{sent:?}");
        // Port 0 and IPv6-on-IPv4 are dropped before the kernel sees them...
        assert!(sent.dropped >= 2, "{sent:?}");
        // ...so GSO stays on, and the socket still works.
        assert_eq!(tx.max_gso_segments(), gso_before);
        let mut queue: Vec<Transmit> = (0..10)
            .map(|i| Transmit {
                dst: rx.local_addr().unwrap(),
                bytes: payload(5, i, 500),
            })
            .collect();
        let sent = tx.send(&mut queue);
        assert_eq!(sent.datagrams, 10);
        assert_eq!(recv_n(&rx, 10).await.len(), 10);
    }
}
