//! With several media workers on the one UDP port, which worker a datagram belongs to.
//!
//! Every worker receives from the same socket, so the kernel hands any datagram to any of them.
//! A worker that gets one of another worker's peers passes it on. The coarse rule mirrors the
//! demux (`demux.rs`), which still applies the strict one in the owning worker: STUN by the ufrag
//! in its USERNAME, anything else by the source address that a peer's core authenticated. An
//! unknown datagram stays where it landed, to be dropped and counted there.
//!
//! With one worker (the default on a 2-core host) there is no router and no lookup.

use super::demux::{Class, Proto, classify};
use super::stun::{self, Username};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;

/// Index of a media worker.
pub type WorkerId = usize;

/// The owner tables every worker shares; written only when a peer is added or removed, or one of
/// its addresses is authenticated.
#[derive(Debug, Default)]
pub struct Router {
    ufrags: RwLock<HashMap<Box<[u8]>, WorkerId>>,
    addrs: RwLock<HashMap<(Proto, SocketAddr), WorkerId>>,
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
