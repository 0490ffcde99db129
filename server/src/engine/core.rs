//! `MediaCore`: the sync, time-explicit heart of the media engine. It owns one sans-I/O `rtc`
//! PeerConnection per peer, the demultiplexer that says which datagram belongs to which of
//! them, and the forwarders that copy each published track to its subscribers' connections.
//!
//! It does no I/O and reads no clock: datagrams come in through [`MediaCore::handle_datagram`],
//! time through [`MediaCore::handle_timeout`], and what it wants sent, and what happened, comes
//! out of [`MediaCore::poll_transmit`] and [`MediaCore::poll_event`] (the shape of quinn-proto's
//! `Endpoint` and str0m's `Rtc`). `worker.rs` drives it from real sockets; `sim.rs` drives it
//! from a simulated network and clock.

use super::demux::{Demux, Proto, Route};
use super::forward::Fwd;
use super::speakers::{LEVEL_INTERVAL, SpeakerLevel};
use bytes::BytesMut;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// One peer of the engine (unique for the engine's lifetime).
pub type PeerKey = u64;
/// One published track's forwarder (unique for the engine's lifetime).
pub type FwdKey = u64;
/// One subscriber of one forwarder (chosen by the caller).
pub type LegKey = u64;

/// STUN checks kept per peer while its remote description is not set yet (a browser's first
/// checks can overtake the signaling that carries its offer).
const EARLY_STUN_MAX: usize = 8;
/// A deadline already past is handled at most this often per peer (an expired deadline that an
/// rtc handler returns again and again must not spin the worker; webrtc#862).
const MIN_TIMER_STEP: Duration = Duration::from_millis(1);
/// No client check for this long: the connection is disconnected.
pub const ICE_DISCONNECTED_TIMEOUT: Duration = Duration::from_secs(10);
/// This long disconnected: the connection has failed (30 s after the last check).
pub const ICE_FAILED_TIMEOUT: Duration = Duration::from_secs(20);
/// Authenticated addresses kept for [`MediaCore::poll_binding`] until read.
const MAX_PENDING_BINDINGS: usize = 1024;
/// Cap of the `rtc` error log lines per peer (counted beyond it).
const LOGGED_ERRORS_MAX: u32 = 5;

/// What the engine errors with.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The peer was removed (or never existed).
    #[error("no such peer")]
    NoPeer,
    /// The sender was removed (or never existed).
    #[error("no such sender")]
    NoSender,
    /// The WebRTC stack panicked on this peer's input; the peer is being removed.
    #[error("the connection failed inside the WebRTC stack")]
    Panicked,
    /// The media engine has stopped.
    #[error("the media engine has stopped")]
    Gone,
    /// The `rtc` core refused the operation.
    #[error(transparent)]
    Rtc(#[from] rtc::shared::error::Error),
}

/// How the core addresses itself to clients.
#[derive(Clone)]
pub struct CoreConfig {
    /// The UDP host candidates it advertises (the public IP with `--public-ip`; the interface
    /// addresses for a wildcard bind), all on the one UDP port. The first is the default local
    /// address of a datagram whose destination IP is not known.
    pub udp_candidates: Vec<SocketAddr>,
    /// The passive ICE-TCP candidate, if ICE over TCP is on.
    pub tcp_candidate: Option<SocketAddr>,
    /// The DTLS certificate of every connection (one per process: no key generation per peer).
    pub certificate: RTCCertificate,
}

impl CoreConfig {
    /// A configuration with a freshly generated ECDSA P-256 certificate.
    pub fn new(
        udp_candidates: Vec<SocketAddr>,
        tcp_candidate: Option<SocketAddr>,
    ) -> Result<Self, CoreError> {
        use rtc::crypto::SignatureScheme;
        use rtc::peer_connection::certificate::CertificateParams;
        let provider = rtc::crypto::default_provider()
            .map_err(|e| rtc::shared::error::Error::Other(e.to_string()))?;
        let params = CertificateParams::new(vec!["videoroom".to_owned()])
            .map_err(|e| rtc::shared::error::Error::Other(e.to_string()))?;
        let certificate =
            RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params)?;
        Ok(Self {
            udp_candidates,
            tcp_candidate,
            certificate,
        })
    }
}

/// A datagram the core wants sent.
#[derive(Debug)]
pub struct Transmit {
    /// UDP or TCP (an ICE-TCP connection, found by `dst`).
    pub proto: Proto,
    /// Where to.
    pub dst: SocketAddr,
    /// The datagram.
    pub bytes: BytesMut,
}

/// What happened to a peer, for its endpoint.
#[derive(Debug)]
pub enum CoreEvent {
    /// A local ICE candidate to signal.
    LocalCandidate(RTCIceCandidateInit),
    /// The connection's state changed.
    State(RTCPeerConnectionState),
    /// The peer's first RTP of a track arrived: a forwarder now exists for it.
    TrackOpened {
        /// Its forwarder.
        fwd: FwdKey,
        /// The `msid` track id the client gave it.
        track_id: String,
        /// Audio or video.
        kind: RtpCodecKind,
        /// The publisher's SSRC.
        ssrc: u32,
        /// Shared with the forwarder: while set, nothing is forwarded.
        held: Arc<AtomicBool>,
    },
    /// How loud an audio track the peer publishes is, every
    /// [`LEVEL_INTERVAL`](super::speakers::LEVEL_INTERVAL) while it carries speech and once
    /// when it stops (from the audio-level header extension).
    SpeakerLevel {
        /// The `msid` track id.
        track_id: String,
        /// Its level and whether it carries speech.
        level: SpeakerLevel,
    },
    /// Which simulcast layers of a video track the peer publishes someone receives
    /// (dynacast): the publisher need not encode the others. Sent when that changes.
    LayersWanted {
        /// The `msid` track id.
        track_id: String,
        /// The rids of the layers wanted (empty for a track without simulcast).
        rids: Vec<String>,
        /// Whether anyone receives the track at all.
        active: bool,
    },
    /// A track the peer published ended (renegotiated away, or the connection closed).
    TrackEnded {
        /// Its forwarder.
        fwd: FwdKey,
        /// The `msid` track id.
        track_id: String,
    },
}

/// Counters the worker exports.
#[derive(Debug, Default, Clone)]
pub struct CoreStats {
    /// RTP packets received from publishers.
    pub rtp_in: u64,
    /// RTP bytes (header + payload) received from publishers.
    pub rtp_bytes_in: u64,
    /// RTP packets handed to subscribers' connections.
    pub rtp_out: u64,
    /// RTP bytes handed to subscribers' connections.
    pub rtp_bytes_out: u64,
    /// Packets a subscriber's connection refused.
    pub rtp_dropped: u64,
    /// Packets not forwarded because a moderator holds the track.
    pub held: u64,
    /// Keyframe requests sent to publishers.
    pub keyframe_requests: u64,
    /// STUN checks that arrived before the remote description and were dropped (buffer full).
    pub early_stun_dropped: u64,
    /// Peers removed because a call into their `rtc` core panicked.
    pub core_panics: u64,
    /// RTP packets on an SSRC that is not one of its track's layers (past the fourth).
    pub rtp_unknown_layer: u64,
    /// Switches from one simulcast layer to another on some subscriber's leg.
    pub layer_switches: u64,
    /// Times a publisher was told which layers of a track are wanted (dynacast).
    pub layer_demand_changes: u64,
    /// Packets received per layer rank within their track (0 = the smallest picture; a
    /// track without simulcast counts as rank 0).
    pub layer_packets: [u64; super::layers::MAX_LAYERS],
}

pub(super) struct Peer {
    pub(super) pc: RTCPeerConnection,
    /// Our ICE ufrag for it.
    pub(super) ufrag: String,
    /// The remote description was applied once: datagrams go straight to the core.
    pub(super) remote_set: bool,
    /// Our host candidates were added (after the first local description).
    pub(super) candidates_added: bool,
    pub(super) early: Vec<(Proto, SocketAddr, Option<std::net::IpAddr>, BytesMut)>,
    /// Published tracks: the `msid` track id → its forwarder.
    pub(super) published: HashMap<String, FwdKey>,
    /// Subscribed tracks: our local track id → (forwarder, leg).
    pub(super) legs: HashMap<String, (FwdKey, LegKey)>,
    pub(super) deadline: Option<Instant>,
    pub(super) last_fired: Option<Instant>,
    pub(super) dirty: bool,
    /// A call into its core panicked: it is removed at the next drain.
    pub(super) poisoned: bool,
    pub(super) errors_logged: u32,
    /// Its downlink bandwidth estimate (from its TWCC feedback).
    pub(super) downlink: super::bwe::DownlinkEstimate,
}

/// The engine's logic for one worker: every peer it hosts, their forwarders, and the demux.
pub struct MediaCore {
    pub(super) config: CoreConfig,
    pub(super) peers: HashMap<PeerKey, Peer>,
    pub(super) fwds: HashMap<FwdKey, Fwd>,
    pub(super) demux: Demux<PeerKey>,
    pub(super) next_peer: PeerKey,
    pub(super) next_fwd: FwdKey,
    pub(super) dirty: Vec<PeerKey>,
    pub(super) timers: BTreeSet<(Instant, PeerKey)>,
    /// When audio levels are next summed up (while any audio track is published).
    pub(super) next_levels: Option<Instant>,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<(PeerKey, CoreEvent)>,
    /// Addresses authenticated since the last `poll_binding` (for the multi-worker router).
    pub(super) bindings: VecDeque<(PeerKey, Proto, SocketAddr)>,
    pub(super) stats: CoreStats,
    // Scratch space reused by `drain`.
    pub(super) scratch_events: Vec<RTCPeerConnectionEvent>,
    pub(super) scratch_reads: Vec<TaggedRTCMessage>,
}

impl MediaCore {
    /// An empty core.
    pub fn new(config: CoreConfig) -> Self {
        Self {
            config,
            peers: HashMap::new(),
            fwds: HashMap::new(),
            demux: Demux::new(),
            next_peer: 1,
            next_fwd: 1,
            dirty: Vec::new(),
            timers: BTreeSet::new(),
            next_levels: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            bindings: VecDeque::new(),
            stats: CoreStats::default(),
            scratch_events: Vec::new(),
            scratch_reads: Vec::new(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &CoreStats {
        &self.stats
    }

    /// Datagrams the demux dropped so far, per reason.
    pub fn dropped(&self) -> super::demux::DropCounts {
        self.demux.dropped()
    }

    /// Published tracks being forwarded.
    pub fn track_count(&self) -> usize {
        self.fwds.len()
    }

    /// Peers hosted.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The downlink bandwidth estimate of `peer` in bits per second, from its TWCC feedback
    /// (`engine::bwe`); `None` for an unknown peer or before its first feedback.
    pub fn downlink_estimate(&self, peer: PeerKey) -> Option<u64> {
        self.peers.get(&peer)?.downlink.bps()
    }

    /// Every peer's downlink estimate that exists (bits/s).
    pub fn downlink_estimates(&self) -> Vec<u64> {
        self.peers
            .values()
            .filter_map(|p| p.downlink.bps())
            .collect()
    }

    /// The downlink estimate of `peer` and what it is made of (tests, diagnostics).
    pub fn downlink_stats(&self, peer: PeerKey) -> Option<super::bwe::EstimateStats> {
        Some(self.peers.get(&peer)?.downlink.stats())
    }

    /// Addresses authenticated for `key` (tests, diagnostics).
    pub fn peer_addresses(&self, key: PeerKey) -> Vec<(Proto, SocketAddr)> {
        self.demux.addresses(key)
    }

    /// A new peer: an ICE-lite, controlled, DTLS-server PeerConnection with random ICE
    /// credentials and our host candidates, mDNS off, replay protection on.
    pub fn add_peer(&mut self, now: Instant) -> Result<PeerKey, CoreError> {
        let ufrag = random_token(16);
        let pwd = random_token(32);
        let (engine, registry) = videoroom_webrtc::engine_and_interceptors()?;
        let (registry, downlink) =
            super::bwe::with_downlink_estimation(registry, super::bwe::BweConfig::default());
        let settings = videoroom_webrtc::setting_engine()
            .with_lite(true)
            .with_ice_credentials(ufrag.clone(), pwd)
            // Answering a client's offer, the server takes `setup:passive` (DTLS server). Offering,
            // it says `actpass`: Chromium answers `active`, while rtc-based clients answer
            // `passive` to an ICE-lite offerer, which makes the server the DTLS client there
            // (its ClientHello leaves at once: vendor/rtc/PATCHES.md #1).
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .with_srtp_replay_protection_window(1024)
            .with_srtcp_replay_protection_window(1024)
            .with_dtls_replay_protection_window(64)
            // A lite agent hears only the client's checks (browsers send one every ~2.5 s once
            // stable, RFC 7675 allows 5 s): 10 s without one is "disconnected", 20 s more
            // "failed".
            .with_ice_timeouts(
                Some(ICE_DISCONNECTED_TIMEOUT),
                Some(ICE_FAILED_TIMEOUT),
                None,
            )
            .build();
        let configuration = RTCConfigurationBuilder::new()
            .with_certificates(vec![self.config.certificate.clone()])
            .build();
        let pc = RTCPeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .build(now)?;
        let key = self.next_peer;
        self.next_peer += 1;
        self.demux.add_peer(&ufrag, key);
        self.peers.insert(
            key,
            Peer {
                pc,
                ufrag: ufrag.clone(),
                remote_set: false,
                candidates_added: false,
                early: Vec::new(),
                published: HashMap::new(),
                legs: HashMap::new(),
                deadline: None,
                last_fired: None,
                dirty: false,
                poisoned: false,
                errors_logged: 0,
                downlink,
            },
        );
        self.mark(key);
        self.drain(now);
        Ok(key)
    }

    /// Closes and forgets a peer: its published tracks end (their legs go with them), its legs on
    /// other peers' tracks are dropped. Its DTLS close_notify is still sent.
    pub fn remove_peer(&mut self, now: Instant, key: PeerKey) {
        let Some(mut peer) = self.peers.remove(&key) else {
            return;
        };
        let mut writes = Vec::new();
        if let Some(Err(e)) = guarded(&mut peer, |pc| {
            let closed = pc.close();
            while let Some(t) = pc.poll_write() {
                writes.push(t);
            }
            closed
        }) {
            debug!(peer = key, "close: {e}");
        }
        for t in writes {
            self.push_transmit(key, t);
        }
        if let Some(deadline) = peer.deadline {
            self.timers.remove(&(deadline, key));
        }
        self.demux.remove_peer(key);
        for fwd in peer.published.into_values() {
            self.fwds.remove(&fwd);
        }
        for (fwd, leg) in peer.legs.into_values() {
            if let Some(f) = self.fwds.get_mut(&fwd) {
                f.legs.remove(&leg);
            }
        }
        self.events.retain(|(k, _)| *k != key);
        let _ = now;
    }

    /// Runs `f` on a peer's PeerConnection (negotiation calls), then lets the core act on what
    /// changed.
    pub fn with_peer<R>(
        &mut self,
        now: Instant,
        key: PeerKey,
        f: impl FnOnce(&mut RTCPeerConnection) -> R,
    ) -> Result<R, CoreError> {
        let peer = self.peers.get_mut(&key).ok_or(CoreError::NoPeer)?;
        let out = guarded(peer, f);
        self.mark(key);
        self.drain(now);
        out.ok_or(CoreError::Panicked)
    }

    /// Applies a local description (our offer or answer, or a rollback). The first one also adds
    /// our host candidates, which the endpoint then signals after the description (a client
    /// takes candidates only once it has a remote description).
    pub fn set_local_description(
        &mut self,
        now: Instant,
        key: PeerKey,
        desc: RTCSessionDescription,
    ) -> Result<(), CoreError> {
        let config = &self.config;
        let peer = self.peers.get_mut(&key).ok_or(CoreError::NoPeer)?;
        let Some(applied) = guarded(peer, |pc| pc.set_local_description(now, desc)) else {
            self.mark(key);
            self.drain(now);
            return Err(CoreError::Panicked);
        };
        if applied.is_ok() && !peer.candidates_added {
            peer.candidates_added = true;
            for addr in &config.udp_candidates {
                peer.pc
                    .add_local_candidate(host_candidate("udp", *addr, false)?)?;
            }
            if let Some(addr) = config.tcp_candidate {
                peer.pc
                    .add_local_candidate(host_candidate("tcp", addr, true)?)?;
            }
        }
        self.mark(key);
        self.drain(now);
        Ok(applied?)
    }

    /// Applies a remote description; the first one also lets through the STUN checks that came
    /// before it.
    pub fn set_remote_description(
        &mut self,
        now: Instant,
        key: PeerKey,
        desc: RTCSessionDescription,
    ) -> Result<(), CoreError> {
        let config = &self.config;
        let peer = self.peers.get_mut(&key).ok_or(CoreError::NoPeer)?;
        let applied = guarded(peer, |pc| pc.set_remote_description(now, desc));
        let Some(applied) = applied else {
            self.mark(key);
            self.drain(now);
            return Err(CoreError::Panicked);
        };
        if applied.is_ok() && !peer.remote_set {
            peer.remote_set = true;
            let early = std::mem::take(&mut peer.early);
            for (proto, src, dst_ip, bytes) in early {
                let local = local_addr(config, proto, dst_ip);
                feed(peer, now, proto, local, src, bytes);
            }
        }
        self.mark(key);
        self.drain(now);
        Ok(applied?)
    }

    /// Adds a `sendonly` transceiver carrying another peer's track to `key`'s connection.
    pub fn add_sender(
        &mut self,
        now: Instant,
        key: PeerKey,
        stream_id: &str,
        track_id: &str,
        kind: videoroom_protocol::MediaKind,
        ssrc: u32,
    ) -> Result<RTCRtpSenderId, CoreError> {
        let (track, init) = videoroom_webrtc::rtp_track_parts(stream_id, track_id, kind, ssrc);
        self.with_peer(now, key, |pc| {
            let transceiver = pc.add_transceiver_from_track(track, Some(init))?;
            let sender = pc
                .rtp_transceiver(transceiver)
                .and_then(|t| t.sender())
                .ok_or(rtc::shared::error::Error::ErrRTPSenderNotExisted)?;
            Ok::<_, rtc::shared::error::Error>(sender)
        })?
        .map_err(CoreError::from)
    }

    /// Removes a transceiver added by [`add_sender`](Self::add_sender) (its m-line goes inactive).
    pub fn remove_sender(
        &mut self,
        now: Instant,
        key: PeerKey,
        sender: RTCRtpSenderId,
    ) -> Result<(), CoreError> {
        self.with_peer(now, key, |pc| pc.remove_track(sender))?
            .map_err(CoreError::from)
    }

    /// The payload type negotiated for a sender's codec, once negotiated.
    pub fn sender_payload_type(&mut self, key: PeerKey, sender: RTCRtpSenderId) -> Option<u8> {
        let peer = self.peers.get_mut(&key)?;
        let mut s = peer.pc.rtp_sender(sender)?;
        s.get_parameters()
            .rtp_parameters
            .codecs
            .first()
            .map(|c| c.payload_type)
    }

    /// A datagram arrived on the UDP socket or an ICE-TCP connection.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        proto: Proto,
        src: SocketAddr,
        dst_ip: Option<std::net::IpAddr>,
        bytes: BytesMut,
    ) {
        let key = match self.demux.route(now, proto, src, &bytes) {
            Route::Peer(key) => key,
            Route::Drop(_) => return,
        };
        let local = self.local_addr(proto, dst_ip);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.remote_set {
            // Only STUN can be routed before the answer (nothing else has an address yet).
            if peer.early.len() < EARLY_STUN_MAX {
                peer.early.push((proto, src, dst_ip, bytes));
            } else {
                self.stats.early_stun_dropped += 1;
            }
            return;
        }
        feed(peer, now, proto, local, src, bytes);
        self.mark(key);
    }

    /// Time passed: fires every peer timer and keyframe gate that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, key));
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.deadline = None;
                peer.last_fired = Some(now);
                if let Some(Err(e)) = guarded(peer, |pc| pc.handle_timeout(now)) {
                    log_rtc_error(key, &mut peer.errors_logged, &e);
                }
                self.mark(key);
            }
        }
        let due: Vec<(FwdKey, usize)> = self
            .fwds
            .iter_mut()
            .flat_map(|(k, f)| {
                f.layers
                    .iter_mut()
                    .enumerate()
                    .filter_map(move |(i, l)| l.gate.poll(now).then_some((*k, i)))
            })
            .collect();
        for (fwd, layer) in due {
            self.send_pli(now, fwd, layer);
        }
        if self.next_levels.is_some_and(|at| now >= at) {
            self.report_levels(now);
        }
    }

    /// Sums up every audio track's levels of the last interval and tells the publishers'
    /// endpoints what changed.
    fn report_levels(&mut self, now: Instant) {
        let mut any = false;
        for f in self.fwds.values_mut() {
            let Some(meter) = f.meter.as_mut() else {
                continue;
            };
            any = true;
            if let Some(level) = meter.tick() {
                self.events.push_back((
                    f.publisher,
                    CoreEvent::SpeakerLevel {
                        track_id: f.track_id.clone(),
                        level,
                    },
                ));
            }
        }
        self.next_levels = any.then_some(now + LEVEL_INTERVAL);
    }

    /// Processes everything that moved since the last call: call after a batch of
    /// [`handle_datagram`](Self::handle_datagram)s or a [`handle_timeout`](Self::handle_timeout).
    pub fn drain(&mut self, now: Instant) {
        while let Some(key) = self.dirty.pop() {
            self.drain_peer(now, key);
        }
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) wants to run at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let peers = self.timers.first().map(|(at, _)| *at);
        let gates = self
            .fwds
            .values()
            .flat_map(|f| f.layers.iter())
            .filter_map(|l| l.gate.deadline())
            .min()
            .into_iter()
            .chain(self.next_levels)
            .min();
        match (peers, gates) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next address a peer's core authenticated (it answered a check from it).
    pub fn poll_binding(&mut self) -> Option<(PeerKey, Proto, SocketAddr)> {
        self.bindings.pop_front()
    }

    /// Our ICE ufrag for a peer.
    pub fn peer_ufrag(&self, key: PeerKey) -> Option<&str> {
        self.peers.get(&key).map(|p| p.ufrag.as_str())
    }

    /// The next event for an endpoint.
    pub fn poll_event(&mut self) -> Option<(PeerKey, CoreEvent)> {
        self.events.pop_front()
    }

    fn local_addr(&self, proto: Proto, dst_ip: Option<std::net::IpAddr>) -> SocketAddr {
        local_addr(&self.config, proto, dst_ip)
    }

    pub(super) fn mark(&mut self, key: PeerKey) {
        if let Some(peer) = self.peers.get_mut(&key)
            && !peer.dirty
        {
            peer.dirty = true;
            self.dirty.push(key);
        }
    }

    fn push_transmit(&mut self, key: PeerKey, t: TaggedBytesMut) {
        let proto = match t.transport.transport_protocol {
            TransportProtocol::TCP => Proto::Tcp,
            _ => Proto::Udp,
        };
        let dst = t.transport.peer_addr;
        self.demux.note_sent(t.now, key, proto, dst, &t.message);
        if super::stun::is_binding_success(&t.message) && self.peers.contains_key(&key) {
            // Drained by the worker every turn; bounded for drivers that never read it.
            if self.bindings.len() >= MAX_PENDING_BINDINGS {
                self.bindings.pop_front();
            }
            self.bindings.push_back((key, proto, dst));
        }
        self.transmits.push_back(Transmit {
            proto,
            dst,
            bytes: t.message,
        });
    }

    fn drain_peer(&mut self, now: Instant, key: PeerKey) {
        let mut events = std::mem::take(&mut self.scratch_events);
        let mut reads = std::mem::take(&mut self.scratch_reads);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.dirty = false;
        let mut writes = Vec::new();
        let polled = guarded(peer, |pc| {
            // Each empty poll sweeps rtc's whole pipeline, so go round again only when events or
            // reads came out (handling them can queue writes); a final flush catches writes the
            // last sweeps queued without producing anything.
            loop {
                while let Some(t) = pc.poll_write() {
                    writes.push(t);
                }
                let mut again = false;
                while let Some(e) = pc.poll_event() {
                    again = true;
                    events.push(e);
                }
                while let Some(m) = pc.poll_read() {
                    again = true;
                    reads.push(m);
                }
                if !again {
                    break;
                }
            }
            while let Some(t) = pc.poll_write() {
                writes.push(t);
            }
            pc.poll_timeout()
        });
        if peer.poisoned {
            self.scratch_events = events;
            self.scratch_reads = reads;
            self.scratch_events.clear();
            self.scratch_reads.clear();
            self.fail_poisoned(now, key);
            return;
        }
        // The timer: an rtc deadline already past is clamped to one step after the last firing.
        let mut next = polled.flatten();
        if let (Some(at), Some(last)) = (next, peer.last_fired)
            && at < last + MIN_TIMER_STEP
        {
            next = Some(last + MIN_TIMER_STEP);
        }
        let old = std::mem::replace(&mut peer.deadline, next);
        if old != next {
            if let Some(at) = old {
                self.timers.remove(&(at, key));
            }
            if let Some(at) = next {
                self.timers.insert((at, key));
            }
        }
        for t in writes {
            self.push_transmit(key, t);
        }
        for e in events.drain(..) {
            self.on_event(now, key, e);
        }
        for m in reads.drain(..) {
            self.on_read(key, m);
        }
        self.scratch_events = events;
        self.scratch_reads = reads;
    }

    /// Removes a peer whose core panicked, telling its endpoint the connection failed.
    fn fail_poisoned(&mut self, now: Instant, key: PeerKey) {
        warn!(
            peer = key,
            "media connection failed inside the WebRTC stack; peer removed"
        );
        self.stats.core_panics += 1;
        self.remove_peer(now, key);
        self.events
            .push_back((key, CoreEvent::State(RTCPeerConnectionState::Failed)));
    }

    fn on_event(&mut self, now: Instant, key: PeerKey, event: RTCPeerConnectionEvent) {
        match event {
            RTCPeerConnectionEvent::OnIceCandidateEvent(e) => match e.candidate.to_json() {
                Ok(init) => self
                    .events
                    .push_back((key, CoreEvent::LocalCandidate(init))),
                Err(err) => warn!(peer = key, "local candidate not serializable: {err}"),
            },
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                self.events.push_back((key, CoreEvent::State(state)));
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                let Some(peer) = self.peers.get_mut(&key) else {
                    return;
                };
                if let Some(fwd) = peer.published.get(&init.track_id) {
                    // Another simulcast layer of a track already published.
                    if let Some(f) = self.fwds.get_mut(fwd)
                        && !f.add_layer(init.ssrc, init.rid.clone())
                    {
                        debug!(
                            peer = key,
                            "more than {} layers for one track; ignored",
                            super::layers::MAX_LAYERS
                        );
                    }
                    return;
                }
                let Some(kind) = peer
                    .pc
                    .rtp_receiver(init.receiver_id)
                    .map(|r| r.track().kind())
                else {
                    return;
                };
                let audio_level_id = if kind == RtpCodecKind::Audio {
                    peer.pc.rtp_receiver(init.receiver_id).and_then(|mut r| {
                        r.get_parameters()
                            .rtp_parameters
                            .header_extensions
                            .iter()
                            .find(|e| e.uri == videoroom_webrtc::AUDIO_LEVEL_URI)
                            .and_then(|e| u8::try_from(e.id).ok())
                    })
                } else {
                    None
                };
                if audio_level_id.is_some() && self.next_levels.is_none() {
                    self.next_levels = Some(now + LEVEL_INTERVAL);
                }
                let fwd = self.next_fwd;
                self.next_fwd += 1;
                let held = Arc::new(AtomicBool::new(false));
                peer.published.insert(init.track_id.clone(), fwd);
                self.fwds.insert(
                    fwd,
                    Fwd::new(
                        key,
                        init.track_id.clone(),
                        init.receiver_id,
                        init.ssrc,
                        init.rid.clone(),
                        kind,
                        Arc::clone(&held),
                    )
                    .with_audio_level(audio_level_id),
                );
                self.events.push_back((
                    key,
                    CoreEvent::TrackOpened {
                        fwd,
                        track_id: init.track_id,
                        kind,
                        ssrc: init.ssrc,
                        held,
                    },
                ));
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(track_id)) => {
                let Some(peer) = self.peers.get_mut(&key) else {
                    return;
                };
                if let Some(fwd) = peer.published.remove(&track_id) {
                    if let Some(f) = self.fwds.remove(&fwd) {
                        for leg in f.legs.into_values() {
                            if let Some(sub) = self.peers.get_mut(&leg.peer) {
                                sub.legs.remove(&leg.local_track_id);
                            }
                        }
                    }
                    self.events
                        .push_back((key, CoreEvent::TrackEnded { fwd, track_id }));
                }
            }
            _ => {}
        }
    }

    fn on_read(&mut self, key: PeerKey, message: TaggedRTCMessage) {
        let TaggedRTCMessage { now, message } = message;
        match message {
            RTCMessage::RtpPacket(track_id, packet) => self.forward(now, key, &track_id, packet),
            RTCMessage::RtcpPacket(track_id, packets) => {
                let Some(peer) = self.peers.get(&key) else {
                    return;
                };
                if let Some(&(fwd, leg)) = peer.legs.get(&track_id)
                    && packets
                        .iter()
                        .any(|p| videoroom_webrtc::is_keyframe_request(p.as_ref()))
                {
                    self.request_leg_keyframe(now, fwd, leg);
                }
            }
            _ => {}
        }
    }
}

/// The address a datagram arrived at, as the core knows it: the advertised candidate (the public
/// IP behind a 1:1 NAT), never the wildcard bind address.
fn local_addr(config: &CoreConfig, proto: Proto, dst_ip: Option<std::net::IpAddr>) -> SocketAddr {
    // Without any UDP candidate (a test that proves ICE-TCP alone works), a UDP datagram gets
    // an address no local candidate has, and the core drops it: never an index out of bounds.
    let first_udp = config.udp_candidates.first().copied();
    let fallback = first_udp
        .or(config.tcp_candidate)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    match proto {
        Proto::Tcp => config.tcp_candidate.unwrap_or(fallback),
        Proto::Udp => dst_ip
            .and_then(|ip| config.udp_candidates.iter().find(|c| c.ip() == ip).copied())
            .unwrap_or(fallback),
    }
}

/// Runs `f` on one peer's `rtc` core. A panic inside it (a parser bug reached by hostile
/// input) fails that peer only: it is caught here and the peer is marked poisoned, to be removed
/// by the core with a `Failed` state, instead of taking the media thread down.
pub(super) fn guarded<R>(
    peer: &mut Peer,
    f: impl FnOnce(&mut RTCPeerConnection) -> R,
) -> Option<R> {
    if peer.poisoned {
        return None;
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut peer.pc))) {
        Ok(r) => Some(r),
        Err(_) => {
            peer.poisoned = true;
            None
        }
    }
}

fn feed(
    peer: &mut Peer,
    now: Instant,
    proto: Proto,
    local: SocketAddr,
    src: SocketAddr,
    bytes: BytesMut,
) {
    let transport_protocol = match proto {
        Proto::Udp => TransportProtocol::UDP,
        Proto::Tcp => TransportProtocol::TCP,
    };
    // `handle_read` reports handler errors only through rtc's own logging.
    let _ = guarded(peer, |pc| {
        pc.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: local,
                peer_addr: src,
                ecn: None,
                transport_protocol,
            },
            message: bytes,
        })
    });
}

pub(super) fn log_rtc_error(key: PeerKey, logged: &mut u32, e: &rtc::shared::error::Error) {
    *logged = logged.saturating_add(1);
    if *logged <= LOGGED_ERRORS_MAX {
        debug!(peer = key, "media engine: {e}");
    }
}

fn host_candidate(
    network: &str,
    addr: SocketAddr,
    passive: bool,
) -> Result<RTCIceCandidateInit, rtc::shared::error::Error> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: network.to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        tcp_type: if passive {
            rtc::ice::tcp_type::TcpType::Passive
        } else {
            rtc::ice::tcp_type::TcpType::Unspecified
        },
    }
    .new_candidate_host()?;
    RTCIceCandidate::from(&candidate).to_json()
}

/// `n` random characters of the ICE alphabet (RFC 8445 §5.3: `ALPHA / DIGIT / "+" / "/"`; we
/// use letters and digits only).
fn random_token(n: usize) -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}
