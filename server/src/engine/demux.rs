//! Which peer a datagram belongs to: the demux in front of the per-peer cores (plan §4).
//!
//! Every datagram that arrives on the shared UDP socket (or as a frame on an ICE-TCP connection)
//! goes through [`Demux::route`] before any core sees it:
//! - STUN requests are routed by the local part of USERNAME (our ufrag of that peer), with a
//!   token bucket per peer so a flood of wrong-credential checks cannot keep a core busy with
//!   HMACs and log lines.
//! - Everything else (DTLS, SRTP/SRTCP, STUN responses and indications) is routed only by a
//!   table of validated addresses. An address enters it only when that peer's core emits a STUN
//!   Binding success response to it ([`Demux::note_sent`]); the core answers only checks that
//!   passed MESSAGE-INTEGRITY, so the entry is proof of the ICE password without a second HMAC.
//!
//! Sans-I/O and time-explicit: the caller passes `now`, nothing here reads a clock, logs or
//! allocates per datagram. Drops are counted per [`DropReason`] for `/metrics`.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::stun::{self, Username};

/// The largest datagram routed; larger ones are dropped as [`DropReason::Oversized`].
pub const MAX_DATAGRAM: usize = 1500;
/// How many addresses one peer may have bound at once; binding one more evicts its least
/// recently seen.
pub const MAX_ADDRESSES_PER_PEER: usize = 4;
/// A bound address unused for this long is forgotten.
pub const BINDING_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// USERNAME-routed STUN datagrams per second allowed per peer (the token bucket's refill).
pub const STUN_RATE_PER_SEC: u64 = 50;
/// USERNAME-routed STUN datagrams a peer may send at once (the token bucket's size).
pub const STUN_BURST: u64 = 50;

/// The transport a datagram came in on (the same address on UDP and TCP is two sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// The shared UDP socket.
    Udp,
    /// An ICE-TCP connection (RFC 6544 framing already removed).
    Tcp,
}

/// What a datagram is, by its first byte (RFC 7983).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// First byte 0..=3.
    Stun,
    /// First byte 20..=63.
    Dtls,
    /// First byte 128..=191 (RTP and RTCP, both SRTP-protected).
    Rtp,
    /// Anything else, including an empty datagram.
    Other,
}

/// Classifies a datagram by its first byte (RFC 7983 §7). Empty → [`Class::Other`].
pub fn classify(buf: &[u8]) -> Class {
    match buf.first() {
        Some(0..=3) => Class::Stun,
        Some(20..=63) => Class::Dtls,
        Some(128..=191) => Class::Rtp,
        _ => Class::Other,
    }
}

/// Why [`Demux::route`] dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Empty, not STUN/DTLS/RTP by its first byte, or a STUN message whose header or attributes
    /// do not parse (or whose USERNAME has no `:`).
    Malformed,
    /// A STUN message whose USERNAME names no ufrag of ours.
    UnknownUfrag,
    /// A datagram without USERNAME from an address no peer has authenticated (or that expired).
    UnknownSource,
    /// A STUN message over its peer's budget ([`STUN_RATE_PER_SEC`], burst [`STUN_BURST`]).
    StunRateLimited,
    /// Larger than [`MAX_DATAGRAM`].
    Oversized,
}

impl DropReason {
    /// Every reason, in the order of [`DropCounts`]' fields (for registering metrics).
    pub const ALL: [DropReason; 5] = [
        DropReason::Malformed,
        DropReason::UnknownUfrag,
        DropReason::UnknownSource,
        DropReason::StunRateLimited,
        DropReason::Oversized,
    ];

    /// The metrics label (`reason="..."` of `videoroom_media_dropped_datagrams_total`).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownUfrag => "unknown_ufrag",
            DropReason::UnknownSource => "unknown_source",
            DropReason::StunRateLimited => "stun_rate_limited",
            DropReason::Oversized => "oversized",
        }
    }
}

/// Where [`Demux::route`] sends a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<K> {
    /// Feed it to this peer's core.
    Peer(K),
    /// Drop it (already counted).
    Drop(DropReason),
}

/// Datagrams dropped so far, per reason. Counters saturate instead of wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// [`DropReason::Malformed`].
    pub malformed: u64,
    /// [`DropReason::UnknownUfrag`].
    pub unknown_ufrag: u64,
    /// [`DropReason::UnknownSource`].
    pub unknown_source: u64,
    /// [`DropReason::StunRateLimited`].
    pub stun_rate_limited: u64,
    /// [`DropReason::Oversized`].
    pub oversized: u64,
}

impl DropCounts {
    /// All drops, whatever the reason (saturating).
    pub fn total(&self) -> u64 {
        DropReason::ALL
            .iter()
            .fold(0_u64, |sum, &r| sum.saturating_add(self.get(r)))
    }

    /// The counter of one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Malformed => self.malformed,
            DropReason::UnknownUfrag => self.unknown_ufrag,
            DropReason::UnknownSource => self.unknown_source,
            DropReason::StunRateLimited => self.stun_rate_limited,
            DropReason::Oversized => self.oversized,
        }
    }

    fn record(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::Malformed => &mut self.malformed,
            DropReason::UnknownUfrag => &mut self.unknown_ufrag,
            DropReason::UnknownSource => &mut self.unknown_source,
            DropReason::StunRateLimited => &mut self.stun_rate_limited,
            DropReason::Oversized => &mut self.oversized,
        };
        *counter = counter.saturating_add(1);
    }
}

/// A token bucket in nano-tokens, so a refill of `elapsed_ns * rate` is exact (no rounding).
#[derive(Debug)]
struct TokenBucket {
    nano_tokens: u64,
    last: Option<Instant>,
}

impl TokenBucket {
    const TOKEN: u64 = 1_000_000_000;
    const CAPACITY: u64 = STUN_BURST * Self::TOKEN;

    fn full() -> Self {
        Self {
            nano_tokens: Self::CAPACITY,
            last: None,
        }
    }

    /// Refills for the time since the last call and takes one token if there is one.
    fn take(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now <= last => {}
            Some(last) => {
                let elapsed =
                    u64::try_from(now.duration_since(last).as_nanos()).unwrap_or(u64::MAX);
                self.nano_tokens = self
                    .nano_tokens
                    .saturating_add(elapsed.saturating_mul(STUN_RATE_PER_SEC))
                    .min(Self::CAPACITY);
                self.last = Some(now);
            }
            None => self.last = Some(now),
        }
        if self.nano_tokens >= Self::TOKEN {
            self.nano_tokens -= Self::TOKEN;
            true
        } else {
            false
        }
    }
}

/// One bound (validated) source address.
type Addr = (Proto, SocketAddr);

#[derive(Debug)]
struct Peer {
    /// Our local ICE ufrag of this peer (the key it had in `ufrags` when added).
    ufrag: Box<[u8]>,
    stun_budget: TokenBucket,
    /// Addresses bound to this peer, oldest binding first; `bound[a].key` is this peer for each.
    addrs: Vec<Addr>,
}

#[derive(Debug)]
struct Binding<K> {
    key: K,
    last_seen: Instant,
}

fn expired(last_seen: Instant, now: Instant) -> bool {
    now.saturating_duration_since(last_seen) >= BINDING_IDLE_TIMEOUT
}

/// Removes `key`'s expired addresses from `addrs` and from `bound`.
fn prune_addrs<K: Copy + Eq + Hash>(
    bound: &mut HashMap<Addr, Binding<K>>,
    key: K,
    addrs: &mut Vec<Addr>,
    now: Instant,
) {
    addrs.retain(|a| match bound.get(a) {
        Some(b) if b.key == key && expired(b.last_seen, now) => {
            bound.remove(a);
            false
        }
        Some(b) => b.key == key,
        None => false,
    });
}

/// Routes datagrams to peers: STUN requests by ufrag, the rest by validated source address.
///
/// `K` is the caller's peer id. Invariant: an address is in `bound` with key `k` exactly when
/// it is in `peers[k].addrs`.
#[derive(Debug)]
pub struct Demux<K> {
    /// Local ufrag → peer. Looked up with the `&[u8]` taken from USERNAME (no allocation).
    ufrags: HashMap<Box<[u8]>, K>,
    peers: HashMap<K, Peer>,
    bound: HashMap<Addr, Binding<K>>,
    dropped: DropCounts,
}

impl<K: Copy + Eq + Hash + Debug> Default for Demux<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq + Hash + Debug> Demux<K> {
    /// An empty demux: no peers, nothing bound, no drops.
    pub fn new() -> Self {
        Self {
            ufrags: HashMap::new(),
            peers: HashMap::new(),
            bound: HashMap::new(),
            dropped: DropCounts::default(),
        }
    }

    /// Adds a peer with our local ICE ufrag of it (ASCII, at most 256 bytes).
    ///
    /// Adding a key again replaces its ufrag and keeps its bound addresses. If another peer
    /// already has this ufrag, the new one takes it (ufrags are random, so that is a caller bug).
    pub fn add_peer(&mut self, ufrag: &str, key: K) {
        let ufrag: Box<[u8]> = ufrag.as_bytes().into();
        if let Some(peer) = self.peers.get_mut(&key) {
            if self.ufrags.get(&peer.ufrag) == Some(&key) {
                self.ufrags.remove(&peer.ufrag);
            }
            peer.ufrag = ufrag.clone();
        } else {
            self.peers.insert(
                key,
                Peer {
                    ufrag: ufrag.clone(),
                    stun_budget: TokenBucket::full(),
                    addrs: Vec::with_capacity(MAX_ADDRESSES_PER_PEER),
                },
            );
        }
        self.ufrags.insert(ufrag, key);
    }

    /// Forgets a peer: its ufrag and every address bound to it. Unknown keys are ignored.
    pub fn remove_peer(&mut self, key: K) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        if self.ufrags.get(&peer.ufrag) == Some(&key) {
            self.ufrags.remove(&peer.ufrag);
        }
        for a in &peer.addrs {
            if self.bound.get(a).is_some_and(|b| b.key == key) {
                self.bound.remove(a);
            }
        }
    }

    /// Decides where an incoming datagram from `src` goes. Drops are counted in
    /// [`dropped`](Self::dropped).
    ///
    /// Empty and non-STUN/DTLS/RTP datagrams are malformed; anything over [`MAX_DATAGRAM`] is
    /// oversized, whatever its first byte. STUN with USERNAME goes to the peer whose ufrag is
    /// its local part (within that peer's STUN budget); everything else goes to the peer that
    /// `(proto, src)` is bound to, which refreshes the binding.
    pub fn route(&mut self, now: Instant, proto: Proto, src: SocketAddr, buf: &[u8]) -> Route<K> {
        let route = self.decide(now, (proto, src), buf);
        if let Route::Drop(reason) = route {
            self.dropped.record(reason);
        }
        route
    }

    fn decide(&mut self, now: Instant, src: Addr, buf: &[u8]) -> Route<K> {
        if buf.is_empty() {
            return Route::Drop(DropReason::Malformed);
        }
        if buf.len() > MAX_DATAGRAM {
            return Route::Drop(DropReason::Oversized);
        }
        match classify(buf) {
            Class::Other => Route::Drop(DropReason::Malformed),
            Class::Dtls | Class::Rtp => self.by_address(now, src),
            Class::Stun => match stun::find_username(buf) {
                Username::Malformed => Route::Drop(DropReason::Malformed),
                Username::Absent => self.by_address(now, src),
                Username::Present(value) => match stun::local_part(value) {
                    None => Route::Drop(DropReason::Malformed),
                    Some(local) => self.by_ufrag(now, src, local),
                },
            },
        }
    }

    fn by_ufrag(&mut self, now: Instant, src: Addr, local: &[u8]) -> Route<K> {
        let Some(&key) = self.ufrags.get(local) else {
            return Route::Drop(DropReason::UnknownUfrag);
        };
        // The peer's own authenticated address (its consent checks) never pays from the shared
        // budget: the ufrag travels in clear, so a flood with it and a wrong password from
        // elsewhere must not starve the real client's checks.
        if let Some(binding) = self.bound.get_mut(&src)
            && binding.key == key
            && !expired(binding.last_seen, now)
        {
            binding.last_seen = binding.last_seen.max(now);
            return Route::Peer(key);
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            // Unreachable by the invariant of `ufrags`; treated as unknown rather than trusted.
            return Route::Drop(DropReason::UnknownUfrag);
        };
        if peer.stun_budget.take(now) {
            Route::Peer(key)
        } else {
            Route::Drop(DropReason::StunRateLimited)
        }
    }

    fn by_address(&mut self, now: Instant, src: Addr) -> Route<K> {
        let Some(binding) = self.bound.get_mut(&src) else {
            return Route::Drop(DropReason::UnknownSource);
        };
        if !expired(binding.last_seen, now) {
            binding.last_seen = binding.last_seen.max(now);
            return Route::Peer(binding.key);
        }
        let key = binding.key;
        self.bound.remove(&src);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.addrs.retain(|a| *a != src);
        }
        Route::Drop(DropReason::UnknownSource)
    }

    /// Every datagram a peer's core emits goes through here before it is sent. A STUN Binding
    /// success response (`0x0101`) to `dst` binds `(proto, dst)` to `key`: the core answers only
    /// checks that passed MESSAGE-INTEGRITY. Anything else is ignored (a cheap header test).
    ///
    /// Binding prunes `key`'s expired addresses first, takes the address over from another peer
    /// if it had it, and evicts `key`'s least recently seen address when it already has
    /// [`MAX_ADDRESSES_PER_PEER`]. Keys that were never added (or were removed) bind nothing.
    pub fn note_sent(&mut self, now: Instant, key: K, proto: Proto, dst: SocketAddr, buf: &[u8]) {
        if !stun::is_binding_success(buf) {
            return;
        }
        let addr = (proto, dst);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        prune_addrs(&mut self.bound, key, &mut peer.addrs, now);
        match self.bound.get_mut(&addr) {
            Some(b) if b.key == key => {
                b.last_seen = b.last_seen.max(now);
                return;
            }
            Some(b) => {
                let previous = b.key;
                self.bound.remove(&addr);
                if let Some(old) = self.peers.get_mut(&previous) {
                    old.addrs.retain(|a| *a != addr);
                }
            }
            None => {}
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.addrs.len() >= MAX_ADDRESSES_PER_PEER {
            let bound = &self.bound;
            let lru = peer
                .addrs
                .iter()
                .enumerate()
                .min_by_key(|(_, a)| bound.get(*a).map(|b| b.last_seen))
                .map(|(i, _)| i);
            if let Some(i) = lru {
                let victim = peer.addrs.remove(i);
                self.bound.remove(&victim);
            }
        }
        peer.addrs.push(addr);
        self.bound.insert(
            addr,
            Binding {
                key,
                last_seen: now,
            },
        );
    }

    /// Removes every expired binding. Optional: expiry is also applied lazily on access, and a
    /// peer never holds more than [`MAX_ADDRESSES_PER_PEER`], so this only frees memory sooner.
    pub fn prune(&mut self, now: Instant) {
        for (&key, peer) in &mut self.peers {
            prune_addrs(&mut self.bound, key, &mut peer.addrs, now);
        }
    }

    /// Addresses currently bound to `key`, oldest binding first (for tests and diagnostics).
    /// Expired ones are included until they are pruned.
    pub fn addresses(&self, key: K) -> Vec<(Proto, SocketAddr)> {
        self.peers
            .get(&key)
            .map(|p| p.addrs.clone())
            .unwrap_or_default()
    }

    /// Datagrams dropped so far, per reason (counters the worker exports to `/metrics`).
    pub fn dropped(&self) -> DropCounts {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stun::testing;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const A: SocketAddr = addr(1, 5000);
    const B: SocketAddr = addr(2, 5000);

    const fn addr(host: u8, port: u16) -> SocketAddr {
        SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, host)),
            port,
        )
    }

    /// A DTLS ClientHello-ish record header.
    fn dtls() -> Vec<u8> {
        let mut b = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        b.resize(100, 0);
        b
    }

    /// An RTP-ish packet (version 2).
    fn rtp(len: usize) -> Vec<u8> {
        let mut b = vec![0x80, 96];
        b.resize(len, 0xAB);
        b
    }

    fn demux_with_peers() -> Demux<u32> {
        let mut d = Demux::new();
        d.add_peer("abcd", 1);
        d.add_peer("wxyz", 2);
        d
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn classify_by_first_byte() {
        assert_eq!(classify(&[]), Class::Other);
        for (b, c) in [
            (0, Class::Stun),
            (3, Class::Stun),
            (4, Class::Other),
            (19, Class::Other),
            (20, Class::Dtls),
            (63, Class::Dtls),
            (64, Class::Other),
            (127, Class::Other),
            (128, Class::Rtp),
            (191, Class::Rtp),
            (192, Class::Other),
            (255, Class::Other),
        ] {
            assert_eq!(classify(&[b, 0, 0]), c, "first byte {b}");
        }
    }

    #[test]
    fn drop_reason_labels() {
        let labels: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            [
                "malformed",
                "unknown_ufrag",
                "unknown_source",
                "stun_rate_limited",
                "oversized"
            ]
        );
    }

    #[test]
    fn stun_routed_by_ufrag_from_any_address() {
        let mut d = demux_with_peers();
        let now = Instant::now();
        let req = testing::request("abcd:remote");
        assert_eq!(d.route(now, Proto::Udp, A, &req), Route::Peer(1));
        assert_eq!(d.route(now, Proto::Tcp, B, &req), Route::Peer(1));
        let req = testing::request("wxyz:remote");
        assert_eq!(d.route(now, Proto::Udp, A, &req), Route::Peer(2));
        // Routing by ufrag binds nothing: only the core's success response does.
        assert!(d.addresses(1).is_empty());
        assert_eq!(
            d.route(now, Proto::Udp, A, &dtls()),
            Route::Drop(DropReason::UnknownSource)
        );
        assert_eq!(d.dropped().total(), 1);
    }

    #[test]
    fn unknown_ufrag_is_dropped_and_counted() {
        let mut d = demux_with_peers();
        let now = Instant::now();
        for u in ["efgh:abcd", "abc:x", "abcde:x", ":abcd"] {
            let req = testing::request(u);
            assert_eq!(
                d.route(now, Proto::Udp, A, &req),
                Route::Drop(DropReason::UnknownUfrag),
                "{u}"
            );
        }
        assert_eq!(d.dropped().unknown_ufrag, 4);
        assert_eq!(d.dropped().total(), 4);
    }

    #[test]
    fn username_without_colon_or_lying_attributes_is_malformed() {
        let mut d = demux_with_peers();
        let now = Instant::now();
        let req = testing::request("abcd");
        assert_eq!(
            d.route(now, Proto::Udp, A, &req),
            Route::Drop(DropReason::Malformed)
        );
        let mut req = testing::request("abcd:remote");
        req[22..24].copy_from_slice(&[0x40, 0]); // USERNAME claims 16 KiB
        assert_eq!(
            d.route(now, Proto::Udp, A, &req),
            Route::Drop(DropReason::Malformed)
        );
        let req = testing::request("abcd:remote");
        assert_eq!(
            d.route(now, Proto::Udp, A, &req[..req.len() - 4]),
            Route::Drop(DropReason::Malformed)
        );
        assert_eq!(d.dropped().malformed, 3);
    }

    #[test]
    fn dtls_and_rtp_from_an_unbound_address_are_dropped() {
        let mut d = demux_with_peers();
        let now = Instant::now();
        assert_eq!(
            d.route(now, Proto::Udp, A, &dtls()),
            Route::Drop(DropReason::UnknownSource)
        );
        assert_eq!(
            d.route(now, Proto::Udp, A, &rtp(200)),
            Route::Drop(DropReason::UnknownSource)
        );
        // STUN without USERNAME (a response, an indication) too.
        let ind = testing::indication();
        assert_eq!(
            d.route(now, Proto::Udp, A, &ind),
            Route::Drop(DropReason::UnknownSource)
        );
        assert_eq!(d.dropped().unknown_source, 3);
    }

    #[test]
    fn bound_after_success_response_then_dtls_and_rtp_routed() {
        let mut d = demux_with_peers();
        let now = Instant::now();
        d.note_sent(now, 1, Proto::Udp, A, &testing::success());
        assert_eq!(d.addresses(1), vec![(Proto::Udp, A)]);
        assert_eq!(d.route(now, Proto::Udp, A, &dtls()), Route::Peer(1));
        assert_eq!(d.route(now, Proto::Udp, A, &rtp(1200)), Route::Peer(1));
        assert_eq!(
            d.route(now, Proto::Udp, A, &testing::indication()),
            Route::Peer(1)
        );
        assert_eq!(
            d.route(now, Proto::Udp, A, &testing::success()),
            Route::Peer(1)
        );
        // The same address on the other transport, or another port, is another source.
        assert_eq!(
            d.route(now, Proto::Tcp, A, &dtls()),
            Route::Drop(DropReason::UnknownSource)
        );
        assert_eq!(
            d.route(now, Proto::Udp, addr(1, 5001), &dtls()),
            Route::Drop(DropReason::UnknownSource)
        );
        // Binding the same address again does not duplicate it.
        d.note_sent(now, 1, Proto::Udp, A, &testing::success());
        assert_eq!(d.addresses(1), vec![(Proto::Udp, A)]);
        assert!(d.addresses(2).is_empty());
    }

    #[test]
    fn note_sent_of_anything_but_a_success_response_binds_nothing() {
        let mut d = demux_with_peers();
        let now = Instant::now();
        let success = testing::success();
        let mut wrong_length = success.clone();
        wrong_length.extend_from_slice(&[0, 0, 0, 0]);
        for buf in [
            testing::request("remote:abcd"),
            testing::error(),
            testing::indication(),
            rtp(200),
            dtls(),
            success[..success.len() - 4].to_vec(),
            wrong_length,
            vec![],
        ] {
            d.note_sent(now, 1, Proto::Udp, A, &buf);
        }
        assert!(d.addresses(1).is_empty());
        assert_eq!(
            d.route(now, Proto::Udp, A, &dtls()),
            Route::Drop(DropReason::UnknownSource)
        );
        // A key that was never added binds nothing either.
        d.note_sent(now, 99, Proto::Udp, A, &success);
        assert!(d.addresses(99).is_empty());
        assert_eq!(
            d.route(now, Proto::Udp, A, &dtls()),
            Route::Drop(DropReason::UnknownSource)
        );
    }

    #[test]
    fn fifth_address_evicts_the_least_recently_seen() {
        let mut d = demux_with_peers();
        let t0 = Instant::now();
        let success = testing::success();
        for i in 0..4 {
            d.note_sent(secs(t0, i), 1, Proto::Udp, addr(10 + i as u8, 1), &success);
        }
        // The oldest binding (10) is seen again, so 11 is now the least recently seen.
        assert_eq!(
            d.route(secs(t0, 5), Proto::Udp, addr(10, 1), &rtp(100)),
            Route::Peer(1)
        );
        d.note_sent(secs(t0, 6), 1, Proto::Udp, addr(20, 1), &success);
        let addrs = d.addresses(1);
        assert_eq!(addrs.len(), MAX_ADDRESSES_PER_PEER);
        assert!(!addrs.contains(&(Proto::Udp, addr(11, 1))));
        for host in [10, 12, 13, 20] {
            assert!(addrs.contains(&(Proto::Udp, addr(host, 1))), "{host}");
        }
        assert_eq!(
            d.route(secs(t0, 6), Proto::Udp, addr(11, 1), &rtp(100)),
            Route::Drop(DropReason::UnknownSource)
        );
        // Another peer's addresses do not count against this one.
        d.note_sent(secs(t0, 6), 2, Proto::Udp, addr(30, 1), &success);
        assert_eq!(d.addresses(1).len(), MAX_ADDRESSES_PER_PEER);
        assert_eq!(d.addresses(2).len(), 1);
    }

    #[test]
    fn bindings_expire_after_30_s_unused() {
        let mut d = demux_with_peers();
        let t0 = Instant::now();
        let success = testing::success();
        d.note_sent(t0, 1, Proto::Udp, A, &success);
        // Traffic keeps it alive.
        assert_eq!(
            d.route(secs(t0, 29), Proto::Udp, A, &rtp(100)),
            Route::Peer(1)
        );
        assert_eq!(
            d.route(secs(t0, 58), Proto::Udp, A, &rtp(100)),
            Route::Peer(1)
        );
        // 30 s of silence: gone, and removed from the peer's list on that access.
        assert_eq!(
            d.route(secs(t0, 88), Proto::Udp, A, &rtp(100)),
            Route::Drop(DropReason::UnknownSource)
        );
        assert!(d.addresses(1).is_empty());
        assert_eq!(
            d.route(secs(t0, 88), Proto::Udp, A, &rtp(100)),
            Route::Drop(DropReason::UnknownSource)
        );

        // note_sent prunes the peer's expired addresses before binding a new one.
        d.note_sent(secs(t0, 100), 1, Proto::Udp, A, &success);
        d.note_sent(secs(t0, 120), 1, Proto::Udp, B, &success);
        d.note_sent(secs(t0, 131), 1, Proto::Udp, addr(3, 1), &success);
        assert_eq!(
            d.addresses(1),
            vec![(Proto::Udp, B), (Proto::Udp, addr(3, 1))]
        );

        // A success response refreshes an existing binding.
        d.note_sent(secs(t0, 149), 1, Proto::Udp, B, &success);
        assert_eq!(
            d.route(secs(t0, 170), Proto::Udp, B, &dtls()),
            Route::Peer(1)
        );

        // prune() sweeps everything expired.
        d.prune(secs(t0, 200));
        assert!(d.addresses(1).is_empty());
        assert_eq!(
            d.route(secs(t0, 200), Proto::Udp, B, &dtls()),
            Route::Drop(DropReason::UnknownSource)
        );
    }

    #[test]
    fn another_peer_authenticating_an_address_takes_it_over() {
        let mut d = demux_with_peers();
        let now = Instant::now();
        let success = testing::success();
        d.note_sent(now, 1, Proto::Udp, A, &success);
        d.note_sent(now, 1, Proto::Udp, B, &success);
        d.note_sent(now, 2, Proto::Udp, A, &success);
        assert_eq!(d.route(now, Proto::Udp, A, &rtp(100)), Route::Peer(2));
        assert_eq!(d.addresses(1), vec![(Proto::Udp, B)]);
        assert_eq!(d.addresses(2), vec![(Proto::Udp, A)]);
        // Removing the old owner does not touch the address it lost.
        d.remove_peer(1);
        assert_eq!(d.route(now, Proto::Udp, A, &rtp(100)), Route::Peer(2));
    }

    #[test]
    fn remove_peer_forgets_its_ufrag_and_addresses() {
        let mut d = demux_with_peers();
        let now = Instant::now();
        let success = testing::success();
        d.note_sent(now, 1, Proto::Udp, A, &success);
        d.note_sent(now, 1, Proto::Tcp, B, &success);
        d.note_sent(now, 2, Proto::Udp, B, &success);
        d.remove_peer(1);
        d.remove_peer(1); // twice is harmless
        assert!(d.addresses(1).is_empty());
        assert_eq!(
            d.route(now, Proto::Udp, A, &testing::request("abcd:remote")),
            Route::Drop(DropReason::UnknownUfrag)
        );
        assert_eq!(
            d.route(now, Proto::Udp, A, &dtls()),
            Route::Drop(DropReason::UnknownSource)
        );
        assert_eq!(
            d.route(now, Proto::Tcp, B, &dtls()),
            Route::Drop(DropReason::UnknownSource)
        );
        // The other peer is untouched.
        assert_eq!(d.route(now, Proto::Udp, B, &dtls()), Route::Peer(2));
        assert_eq!(
            d.route(now, Proto::Udp, A, &testing::request("wxyz:remote")),
            Route::Peer(2)
        );
        // A removed peer's core may still emit: that binds nothing.
        d.note_sent(now, 1, Proto::Udp, A, &success);
        assert_eq!(
            d.route(now, Proto::Udp, A, &dtls()),
            Route::Drop(DropReason::UnknownSource)
        );
        // Its ufrag can be reused.
        d.add_peer("abcd", 3);
        assert_eq!(
            d.route(now, Proto::Udp, A, &testing::request("abcd:remote")),
            Route::Peer(3)
        );
    }

    #[test]
    fn re_adding_a_peer_or_a_ufrag() {
        let mut d = demux_with_peers();
        let now = Instant::now();
        // Same key, new ufrag: the old ufrag is forgotten.
        d.add_peer("abcd2", 1);
        assert_eq!(
            d.route(now, Proto::Udp, A, &testing::request("abcd:r")),
            Route::Drop(DropReason::UnknownUfrag)
        );
        assert_eq!(
            d.route(now, Proto::Udp, A, &testing::request("abcd2:r")),
            Route::Peer(1)
        );
        // Same ufrag, new key: the newer wins, and removing the older keeps it.
        d.add_peer("abcd2", 7);
        assert_eq!(
            d.route(now, Proto::Udp, A, &testing::request("abcd2:r")),
            Route::Peer(7)
        );
        d.remove_peer(1);
        assert_eq!(
            d.route(now, Proto::Udp, A, &testing::request("abcd2:r")),
            Route::Peer(7)
        );
    }

    #[test]
    fn stun_rate_limit_per_peer() {
        let mut d = demux_with_peers();
        let t0 = Instant::now();
        let req = testing::request("abcd:remote");
        let mut passed = 0;
        let mut limited = 0;
        for _ in 0..60 {
            match d.route(t0, Proto::Udp, A, &req) {
                Route::Peer(1) => passed += 1,
                Route::Drop(DropReason::StunRateLimited) => limited += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((passed, limited), (50, 10));
        assert_eq!(d.dropped().stun_rate_limited, 10);
        // Another peer has its own budget.
        assert_eq!(
            d.route(t0, Proto::Udp, A, &testing::request("wxyz:r")),
            Route::Peer(2)
        );
        // 20 ms refill one token.
        let t = t0 + Duration::from_millis(20);
        assert_eq!(d.route(t, Proto::Udp, A, &req), Route::Peer(1));
        assert_eq!(
            d.route(t, Proto::Udp, A, &req),
            Route::Drop(DropReason::StunRateLimited)
        );
        // 1 s later the bucket is full again (and not fuller).
        let t = secs(t0, 1) + Duration::from_millis(20);
        let passed = (0..60)
            .filter(|_| d.route(t, Proto::Udp, A, &req) == Route::Peer(1))
            .count();
        assert_eq!(passed, 50);
        // A long pause does not overfill it.
        let t = secs(t0, 3600);
        let passed = (0..60)
            .filter(|_| d.route(t, Proto::Udp, A, &req) == Route::Peer(1))
            .count();
        assert_eq!(passed, 50);
        // Time going backwards neither panics nor refills.
        assert_eq!(
            d.route(t0, Proto::Udp, A, &req),
            Route::Drop(DropReason::StunRateLimited)
        );
        // Address-routed STUN (no USERNAME) is not limited.
        d.note_sent(t, 1, Proto::Udp, A, &testing::success());
        let ind = testing::indication();
        assert!((0..100).all(|_| d.route(t, Proto::Udp, A, &ind) == Route::Peer(1)));
    }

    #[test]
    fn oversized_and_empty() {
        let mut d = demux_with_peers();
        let now = Instant::now();
        d.note_sent(now, 1, Proto::Udp, A, &testing::success());
        assert_eq!(
            d.route(now, Proto::Udp, A, &rtp(MAX_DATAGRAM)),
            Route::Peer(1)
        );
        assert_eq!(
            d.route(now, Proto::Udp, A, &rtp(MAX_DATAGRAM + 1)),
            Route::Drop(DropReason::Oversized)
        );
        assert_eq!(
            d.route(now, Proto::Tcp, A, &vec![0xFF; 60_000]),
            Route::Drop(DropReason::Oversized)
        );
        assert_eq!(
            d.route(now, Proto::Udp, A, &[]),
            Route::Drop(DropReason::Malformed)
        );
        assert_eq!(
            d.route(now, Proto::Udp, A, &[0xFF; 100]),
            Route::Drop(DropReason::Malformed)
        );
        let c = d.dropped();
        assert_eq!((c.oversized, c.malformed, c.total()), (2, 2, 4));
    }

    #[test]
    fn counters_saturate() {
        let mut d: Demux<u32> = Demux::new();
        d.dropped.malformed = u64::MAX;
        d.dropped.oversized = u64::MAX;
        let now = Instant::now();
        assert_eq!(
            d.route(now, Proto::Udp, A, &[]),
            Route::Drop(DropReason::Malformed)
        );
        assert_eq!(d.dropped().malformed, u64::MAX);
        assert_eq!(d.dropped().total(), u64::MAX);
    }

    #[test]
    fn random_datagrams_never_panic_and_every_drop_is_counted() {
        let mut d = demux_with_peers();
        let t0 = Instant::now();
        let success = testing::success();
        d.note_sent(t0, 1, Proto::Udp, A, &success);
        d.note_sent(t0, 2, Proto::Tcp, B, &success);
        let seeds = [
            testing::request("abcd:remote"),
            testing::request("wxyz:remote"),
            success.clone(),
            testing::indication(),
            dtls(),
            rtp(300),
        ];
        let mut rng = StdRng::seed_from_u64(7983);
        let mut drops = 0_u64;
        for i in 0..20_000_u64 {
            let now = t0 + Duration::from_millis(i);
            let mut buf = if rng.random_bool(0.5) {
                let len = rng.random_range(0..1_600);
                (0..len).map(|_| rng.random()).collect::<Vec<u8>>()
            } else {
                seeds[rng.random_range(0..seeds.len())].clone()
            };
            for _ in 0..rng.random_range(0..3) {
                if buf.is_empty() {
                    break;
                }
                let j = rng.random_range(0..buf.len());
                if rng.random_bool(0.5) {
                    buf[j] = rng.random();
                } else {
                    buf.truncate(j);
                }
            }
            let proto = if rng.random_bool(0.5) {
                Proto::Udp
            } else {
                Proto::Tcp
            };
            let src = [A, B, addr(3, 3)][rng.random_range(0..3)];
            if let Route::Drop(_) = d.route(now, proto, src, &buf) {
                drops += 1;
            }
            // Random output from a core binds only if it is a success response.
            if rng.random_bool(0.1) {
                d.note_sent(now, 1 + (i % 2) as u32, proto, src, &buf);
            }
        }
        assert_eq!(d.dropped().total(), drops);
        assert!(drops > 10_000, "{drops}");
        for key in [1, 2] {
            assert!(d.addresses(key).len() <= MAX_ADDRESSES_PER_PEER);
        }
    }
}
