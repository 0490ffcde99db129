//! With several media workers on the one UDP port, which worker a datagram belongs to.
//!
//! Every worker receives from the same socket, so the kernel hands any datagram to any of them.
//! A worker that gets one of another worker's peers passes it on. The coarse rule mirrors the
//! demux (`demux.rs`), which still applies the strict one in the owning worker: STUN by the ufrag
//! in its USERNAME, anything else by the source address that a peer's core authenticated. An
//! unknown datagram stays where it landed, to be dropped and counted there.
//!
//! Passing on must not reorder a source's datagrams (audio forwarded out of order, seen as a
//! flake of `media_port_many_rooms`): when the kernel has a backlog, one worker's `recvmmsg` can
//! take a publisher's packet n and the other's, a moment later, n + 1; the owner forwarded n + 1
//! at once and n when the hop arrived. So a worker receives and routes under the router's
//! receive turn ([`Router::receive_turn`]), and takes the datagrams passed on to it before its
//! own batch (`worker.rs`, `receive_in_order`).
//!
//! With one worker (the default on a 2-core host) there is no router and no lookup.

use super::demux::{Class, Proto, classify};
use super::stun::{self, Username};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

/// Index of a media worker.
pub type WorkerId = usize;

/// The owner tables every worker shares; written only when a peer is added or removed, or one of
/// its addresses is authenticated.
#[derive(Debug, Default)]
pub struct Router {
    ufrags: RwLock<HashMap<Box<[u8]>, WorkerId>>,
    addrs: RwLock<HashMap<(Proto, SocketAddr), WorkerId>>,
    /// Held by a worker from its `recvmmsg` until that batch's other workers' datagrams are in
    /// their hop queues and its own hop queue is taken: the socket's order, kept across workers.
    turn: Mutex<()>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// A peer with local ufrag `ufrag` lives on `worker`.
    pub fn add_ufrag(&self, ufrag: &str, worker: WorkerId) {
        if let Ok(mut t) = self.ufrags.write() {
            t.insert(ufrag.as_bytes().into(), worker);
        }
    }

    /// The peer with `ufrag` is gone.
    pub fn remove_ufrag(&self, ufrag: &str) {
        if let Ok(mut t) = self.ufrags.write() {
            t.remove(ufrag.as_bytes());
        }
    }

    /// `(proto, addr)` was authenticated for a peer on `worker` (a newer one takes it over).
    pub fn bind(&self, proto: Proto, addr: SocketAddr, worker: WorkerId) {
        if let Ok(mut t) = self.addrs.write() {
            t.insert((proto, addr), worker);
        }
    }

    /// `(proto, addr)` no longer belongs to `worker`'s peers (left alone if another took it).
    pub fn unbind(&self, proto: Proto, addr: SocketAddr, worker: WorkerId) {
        if let Ok(mut t) = self.addrs.write()
            && t.get(&(proto, addr)) == Some(&worker)
        {
            t.remove(&(proto, addr));
        }
    }

    /// The receive turn: one worker at a time receives from the socket, passes on what is not its
    /// own and takes what was passed on to it, so each datagram received before another (of any
    /// source) is in its owner's queue before the later one can be handled. Held for a syscall
    /// and a few lookups; the work on the datagrams happens after it is released.
    pub fn receive_turn(&self) -> MutexGuard<'_, ()> {
        self.turn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The worker whose peer `buf` from `src` is for, if any is known.
    pub fn owner(&self, proto: Proto, src: SocketAddr, buf: &[u8]) -> Option<WorkerId> {
        if classify(buf) == Class::Stun
            && let Username::Present(value) = stun::find_username(buf)
            && let Some(local) = stun::local_part(value)
        {
            return self.ufrags.read().ok()?.get(local).copied();
        }
        self.addrs.read().ok()?.get(&(proto, src)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_goes_by_ufrag_and_the_rest_by_authenticated_address() {
        let router = Router::new();
        router.add_ufrag("abcd", 1);
        let check = stun::testing::request("abcd:efgh");
        let from: SocketAddr = "192.0.2.1:5000".parse().expect("addr");
        assert_eq!(router.owner(Proto::Udp, from, &check), Some(1));
        let rtp = [0x80u8, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(router.owner(Proto::Udp, from, &rtp), None, "not bound yet");
        router.bind(Proto::Udp, from, 1);
        assert_eq!(router.owner(Proto::Udp, from, &rtp), Some(1));
        assert_eq!(
            router.owner(Proto::Tcp, from, &rtp),
            None,
            "TCP is another source"
        );
        // Another worker's peer authenticated the same address later: it takes it over, and the
        // first worker's unbind does not take it away.
        router.bind(Proto::Udp, from, 0);
        router.unbind(Proto::Udp, from, 1);
        assert_eq!(router.owner(Proto::Udp, from, &rtp), Some(0));
        router.unbind(Proto::Udp, from, 0);
        assert_eq!(router.owner(Proto::Udp, from, &rtp), None);
        router.remove_ufrag("abcd");
        assert_eq!(router.owner(Proto::Udp, from, &check), None);
        assert_eq!(router.owner(Proto::Udp, from, &[]), None);
    }
}
