//! A simulated network and clock around one [`MediaCore`] and real `rtc` client cores, for the
//! `server/tests/media_sim_*.rs` tests: no sockets, no sleeps, deterministic (seeded) loss.
//!
//! The server sits at 10.0.0.1:7882; client `i` at 10.0.1.i:5000. Datagrams travel with a fixed
//! one-way latency; a test can drop any of them with a filter. Signaling is direct calls.

#![doc(hidden)]

use super::core::{CoreConfig, CoreEvent, FwdKey, MediaCore, PeerKey};
use super::demux::Proto;
use super::layers::View;
use bytes::BytesMut;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use videoroom_protocol::MediaKind;

/// The server's address in the simulation.
pub const SERVER: &str = "10.0.0.1:7882";

/// Decides which datagrams the simulated network loses.
pub type DropFilter = Box<dyn FnMut(&Wire) -> bool>;

/// A datagram on the simulated wire.
#[derive(Debug, Clone)]
pub struct Wire {
    /// From.
    pub src: SocketAddr,
    /// To.
    pub dst: SocketAddr,
    /// Bytes.
    pub bytes: BytesMut,
}

/// A simulated client: a full-ICE, controlling `rtc` core (the same codecs and interceptors as
/// our client engine).
pub struct SimClient {
    /// Its address.
    pub addr: SocketAddr,
    /// Its core.
    pub pc: RTCPeerConnection,
    /// Its peer on the server.
    pub key: PeerKey,
    /// RTP it received, per track id.
    pub received: HashMap<String, Vec<rtc::rtp::Packet>>,
    /// RTCP it received, per track id (e.g. PLIs about what it publishes).
    pub rtcp: Vec<(String, Vec<Box<dyn rtc::rtcp::Packet>>)>,
    /// Its connection state.
    pub state: RTCPeerConnectionState,
    /// When it reached `Connected`.
    pub connected_at: Option<Instant>,
    /// Keyframe requests in `rtcp` its simulated encoder already answered.
    pub keyframes_sent: usize,
}

impl SimClient {
    /// Whether a keyframe request reached it that its next frame has not answered yet.
    pub fn keyframe_wanted(&self) -> bool {
        self.keyframe_requests() > self.keyframes_sent
    }

    /// Its simulated encoder answered every keyframe request so far (a test that builds its
    /// own packets says so after sending keyframes).
    pub fn keyframes_answered(&mut self) {
        self.keyframes_sent = self.keyframe_requests();
    }

    fn keyframe_requests(&self) -> usize {
        self.rtcp
            .iter()
            .flat_map(|(_, p)| p.iter())
            .filter(|p| videoroom_webrtc::is_keyframe_request(p.as_ref()))
            .count()
    }
}

/// A simulcast track a client publishes ([`Sim::publish_simulcast`]).
pub struct SimulcastSender {
    /// Its sender.
    pub sender: RTCRtpSenderId,
    transceiver: rtc::rtp_transceiver::RTCRtpTransceiverId,
    layers: Vec<(String, u32)>,
}

/// Something the server's core told an endpoint.
#[derive(Debug)]
pub struct ServerEvent {
    /// When.
    pub at: Instant,
    /// Which peer.
    pub key: PeerKey,
    /// What.
    pub event: CoreEvent,
}

/// The simulation.
pub struct Sim {
    /// Simulated now.
    pub now: Instant,
    /// The engine under test.
    pub server: MediaCore,
    /// The clients, by index.
    pub clients: Vec<SimClient>,
    /// Everything the core emitted.
    pub events: Vec<ServerEvent>,
    /// One-way latency of every link.
    pub latency: Duration,
    /// Returns true for a datagram to drop (loss, filters).
    pub drop_filter: Option<DropFilter>,
    /// Datagrams delivered to the server so far.
    pub to_server: u64,
    /// Every datagram put on the wire: (when, from, to, first byte, length).
    pub trace: Vec<(Instant, SocketAddr, SocketAddr, u8, usize)>,
    /// Datagrams the server sent to an address no client has.
    pub to_nowhere: Vec<Wire>,
    /// Datagrams a rate-limited link's full queue dropped ([`Sim::set_link_rate`]).
    pub link_drops: u64,
    links: HashMap<SocketAddr, Link>,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    in_flight: HashMap<usize, Wire>,
    seq: u64,
    server_addr: SocketAddr,
}

impl Sim {
    /// A simulation with an empty server core.
    pub fn new() -> Self {
        let server_addr: SocketAddr = SERVER.parse().expect("address");
        let config = CoreConfig::new(vec![server_addr], None).expect("certificate");
        let now = Instant::now();
        Self {
            now,
            server: MediaCore::new(config),
            clients: Vec::new(),
            events: Vec::new(),
            latency: Duration::from_millis(1),
            drop_filter: None,
            to_server: 0,
            to_nowhere: Vec::new(),
            trace: Vec::new(),
            link_drops: 0,
            links: HashMap::new(),
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            seq: 0,
            server_addr,
        }
    }

    /// The server's address.
    pub fn server_addr(&self) -> SocketAddr {
        self.server_addr
    }

    /// A new client with a peer on the server; returns its index.
    pub fn add_client(&mut self) -> usize {
        let (engine, registry) = videoroom_webrtc::engine_and_interceptors().expect("engine");
        self.add_client_with(engine, registry)
    }

    /// A new client built from `engine` and `registry`, with a host candidate at 10.0.1.i:5000
    /// and a peer on the server; returns its index.
    fn add_client_with(
        &mut self,
        engine: rtc::peer_connection::configuration::media_engine::MediaEngine,
        registry: rtc::interceptor::Registry,
    ) -> usize {
        let i = self.clients.len();
        let addr: SocketAddr = format!("10.0.1.{}:5000", i + 1).parse().expect("address");
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(videoroom_webrtc::settings())
            .build(self.now)
            .expect("client core");
        let host = rtc::peer_connection::transport::CandidateHostConfig {
            base_config: rtc::peer_connection::transport::CandidateConfig {
                network: "udp".to_owned(),
                address: addr.ip().to_string(),
                port: addr.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .expect("candidate");
        pc.add_local_candidate(
            rtc::peer_connection::transport::RTCIceCandidate::from(&host)
                .to_json()
                .expect("candidate json"),
        )
        .expect("local candidate");
        let key = self.server.add_peer(self.now).expect("server peer");
        self.clients.push(SimClient {
            addr,
            pc,
            key,
            received: HashMap::new(),
            rtcp: Vec::new(),
            state: RTCPeerConnectionState::New,
            connected_at: None,
            keyframes_sent: 0,
        });
        self.pump();
        i
    }

    /// Adds a `sendonly` track to client `i` (before its offer); returns its sender.
    pub fn publish(
        &mut self,
        i: usize,
        track_id: &str,
        kind: MediaKind,
        ssrc: u32,
    ) -> RTCRtpSenderId {
        let (track, init) =
            videoroom_webrtc::rtp_track_parts(&format!("client{i}"), track_id, kind, ssrc);
        let pc = &mut self.clients[i].pc;
        let transceiver = pc
            .add_transceiver_from_track(track, Some(init))
            .expect("transceiver");
        pc.rtp_transceiver(transceiver)
            .and_then(|t| t.sender())
            .expect("sender")
    }

    /// Client `i` adds a simulcast video track `track_id` with one SSRC per `(rid, ssrc)`
    /// layer (not negotiated yet). Send on it with [`Sim::send_layer`].
    pub fn publish_simulcast(
        &mut self,
        i: usize,
        track_id: &str,
        layers: &[(&str, u32)],
    ) -> SimulcastSender {
        let (track, init) =
            videoroom_webrtc::rtp_track_simulcast_parts(&format!("client{i}"), track_id, layers);
        let pc = &mut self.clients[i].pc;
        let transceiver = pc
            .add_transceiver_from_track(track, Some(init))
            .expect("transceiver");
        let sender = pc
            .rtp_transceiver(transceiver)
            .and_then(|t| t.sender())
            .expect("sender");
        SimulcastSender {
            sender,
            transceiver,
            layers: layers.iter().map(|&(r, s)| (r.to_owned(), s)).collect(),
        }
    }

    /// Runs until client `i`'s `track_id` is one forwarder with `layers` layers (its simulcast
    /// layers opened); panics after 1 s of simulated time. Returns the forwarder.
    pub fn wait_layers(&mut self, i: usize, track_id: &str, layers: usize) -> FwdKey {
        assert!(
            self.run_until(Duration::from_secs(1), |s| s
                .forwarder_of(i, track_id)
                .is_some_and(|f| s.server.layers(f).len() == layers)),
            "client {i}'s {track_id} did not open {layers} layers as one track"
        );
        self.forwarder_of(i, track_id).expect("forwarder")
    }

    /// Client `i` sends `packet` on layer `rid` of a simulcast track: its SSRC, and the MID and
    /// RID header extensions with the ids the offer negotiated, as a browser does.
    pub fn send_layer(
        &mut self,
        i: usize,
        track: &SimulcastSender,
        rid: &str,
        mut packet: rtc::rtp::Packet,
    ) {
        let Some(&(_, ssrc)) = track.layers.iter().find(|(r, _)| r == rid) else {
            return;
        };
        packet.header.ssrc = ssrc;
        let pc = &mut self.clients[i].pc;
        let mid = pc
            .rtp_transceiver(track.transceiver)
            .and_then(|t| t.mid().clone())
            .unwrap_or_default();
        let ids: Vec<(String, u16)> = pc
            .rtp_sender(track.sender)
            .map(|mut s| {
                s.get_parameters()
                    .rtp_parameters
                    .header_extensions
                    .iter()
                    .map(|e| (e.uri.clone(), e.id))
                    .collect()
            })
            .unwrap_or_default();
        for (uri, id) in ids {
            let value = if uri == videoroom_webrtc::MID_URI {
                mid.clone()
            } else if uri == videoroom_webrtc::RID_URI {
                rid.to_owned()
            } else {
                continue;
            };
            let _ = packet
                .header
                .set_extension(id as u8, bytes::Bytes::from(value));
        }
        self.send_rtp(i, track.sender, packet);
    }

    /// Client `i` offers, the server answers (the client-offers path of docs/protocol.md).
    pub fn client_offers(&mut self, i: usize) -> Result<(), String> {
        let now = self.now;
        let key = self.clients[i].key;
        let pc = &mut self.clients[i].pc;
        let offer = pc.create_offer(None).map_err(|e| e.to_string())?;
        pc.set_local_description(now, offer.clone())
            .map_err(|e| e.to_string())?;
        let offer = pc.local_description().ok_or("no local offer")?;
        self.server
            .set_remote_description(now, key, offer)
            .map_err(|e| e.to_string())?;
        let answer = self
            .server
            .with_peer(now, key, |pc| pc.create_answer(None))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        self.server
            .set_local_description(now, key, answer)
            .map_err(|e| e.to_string())?;
        let answer = self
            .server
            .with_peer(now, key, |pc| pc.local_description())
            .map_err(|e| e.to_string())?
            .ok_or("no server answer")?;
        self.clients[i]
            .pc
            .set_remote_description(now, answer)
            .map_err(|e| e.to_string())?;
        self.pump();
        Ok(())
    }

    /// The server offers to client `i` (after `add_sender`s), the client answers.
    pub fn server_offers(&mut self, i: usize) -> Result<(), String> {
        let now = self.now;
        let key = self.clients[i].key;
        let offer = self
            .server
            .with_peer(now, key, |pc| pc.create_offer(None))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        self.server
            .set_local_description(now, key, offer)
            .map_err(|e| e.to_string())?;
        let offer = self
            .server
            .with_peer(now, key, |pc| pc.local_description())
            .map_err(|e| e.to_string())?
            .ok_or("no server offer")?;
        let pc = &mut self.clients[i].pc;
        pc.set_remote_description(now, offer)
            .map_err(|e| e.to_string())?;
        let answer = pc.create_answer(None).map_err(|e| e.to_string())?;
        pc.set_local_description(now, answer)
            .map_err(|e| e.to_string())?;
        let answer: RTCSessionDescription = pc.local_description().ok_or("no local answer")?;
        self.server
            .set_remote_description(now, key, answer)
            .map_err(|e| e.to_string())?;
        self.pump();
        Ok(())
    }

    /// Hands a server-side candidate to the client, as the endpoint would signal it.
    pub fn signal_candidate(&mut self, i: usize, candidate: RTCIceCandidateInit) {
        let _ = self.clients[i].pc.add_remote_candidate(candidate);
    }

    /// Client `i` sends one RTP packet on `sender`. Like a real encoder, it answers a keyframe
    /// request (PLI/FIR) it received since its last keyframe: a VP8 packet that starts a frame
    /// goes out as a keyframe.
    pub fn send_rtp(&mut self, i: usize, sender: RTCRtpSenderId, mut packet: rtc::rtp::Packet) {
        let now = self.now;
        let c = &mut self.clients[i];
        let asked = c.keyframe_requests();
        if packet.header.payload_type == videoroom_webrtc::VP8_PT
            && packet.payload.len() >= 2
            && packet.payload[0] & 0x97 == 0x10
        {
            if packet.payload[1] & 0x01 == 0 {
                c.keyframes_sent = asked;
            } else if asked > c.keyframes_sent {
                let mut p = BytesMut::from(&packet.payload[..]);
                p[1] &= !0x01;
                packet.payload = p.freeze();
                c.keyframes_sent = asked;
            }
        }
        if let Some(mut s) = self.clients[i].pc.rtp_sender(sender) {
            let _ = s.write_rtp(now, packet);
        }
        self.pump();
    }

    /// Injects a raw datagram to the server from any address (spoofing, fuzzing).
    pub fn inject(&mut self, src: SocketAddr, bytes: &[u8]) {
        let now = self.now;
        self.server
            .handle_datagram(now, Proto::Udp, src, None, BytesMut::from(bytes));
        self.server.drain(now);
        self.pump();
    }

    /// The forwarder of the first track client `i` published, once the server saw it.
    pub fn forwarder_of(&self, i: usize, track_id: &str) -> Option<FwdKey> {
        let key = self.clients[i].key;
        self.events.iter().find_map(|e| match &e.event {
            CoreEvent::TrackOpened {
                fwd, track_id: t, ..
            } if e.key == key && t == track_id => Some(*fwd),
            _ => None,
        })
    }

    /// Runs the simulation until `done` holds or `max` of simulated time passed; returns whether
    /// `done` held.
    pub fn run_until(&mut self, max: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + max;
        loop {
            self.pump();
            if done(self) {
                return true;
            }
            let next = self.next_wakeup();
            match next {
                Some(at) if at <= end => {
                    self.now = at.max(self.now + Duration::from_micros(1));
                    self.step();
                }
                _ => {
                    self.now = end;
                    self.step();
                    self.pump();
                    return done(self);
                }
            }
        }
    }

    /// Advances simulated time by `d`, running everything due on the way.
    pub fn advance(&mut self, d: Duration) {
        let _ = self.run_until(d, |_| false);
    }

    fn next_wakeup(&mut self) -> Option<Instant> {
        let mut next = self.queue.peek().map(|Reverse((at, _, _))| *at);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        consider(self.server.poll_timeout());
        for c in &mut self.clients {
            consider(c.pc.poll_timeout());
        }
        next
    }

    fn step(&mut self) {
        let now = self.now;
        // Deliver what arrived.
        while let Some(Reverse((at, _, id))) = self.queue.peek().copied() {
            if at > now {
                break;
            }
            self.queue.pop();
            let Some(w) = self.in_flight.remove(&id) else {
                continue;
            };
            if w.dst == self.server_addr {
                self.to_server += 1;
                self.server
                    .handle_datagram(now, Proto::Udp, w.src, None, w.bytes);
            } else if let Some(c) = self.clients.iter_mut().find(|c| c.addr == w.dst) {
                let _ = c.pc.handle_read(TaggedBytesMut {
                    now,
                    transport: TransportContext {
                        local_addr: c.addr,
                        peer_addr: w.src,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: w.bytes,
                });
            }
        }
        // Timers.
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
        }
        for c in &mut self.clients {
            if c.pc.poll_timeout().is_some_and(|t| t <= now) {
                let _ = c.pc.handle_timeout(now);
            }
        }
        self.server.drain(now);
        self.pump();
    }

    /// Moves everything the nodes want sent onto the wire, and collects their events and reads.
    pub fn pump(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            while let Some(t) = self.server.poll_transmit() {
                moved = true;
                let w = Wire {
                    src: self.server_addr,
                    dst: t.dst,
                    bytes: t.bytes,
                };
                if self.clients.iter().any(|c| c.addr == w.dst) {
                    self.send(w);
                } else {
                    self.to_nowhere.push(w);
                }
            }
            while let Some((key, event)) = self.server.poll_event() {
                moved = true;
                if let CoreEvent::LocalCandidate(c) = &event
                    && let Some(i) = self.clients.iter().position(|c| c.key == key)
                {
                    // As the endpoint signals it (videoroom_webrtc::from_rtc_candidate).
                    let mut c = c.clone();
                    c.sdp_mid = None;
                    c.sdp_mline_index = Some(0);
                    let client = &mut self.clients[i];
                    if let Err(e) = client.pc.add_remote_candidate(c) {
                        panic!("client refused the server's candidate: {e}");
                    }
                }
                self.events.push(ServerEvent {
                    at: now,
                    key,
                    event,
                });
            }
            let mut wires = Vec::new();
            for c in &mut self.clients {
                while let Some(t) = c.pc.poll_write() {
                    moved = true;
                    wires.push(Wire {
                        src: c.addr,
                        dst: t.transport.peer_addr,
                        bytes: t.message,
                    });
                }
                while let Some(e) = c.pc.poll_event() {
                    moved = true;
                    if let rtc::peer_connection::event::RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = e {
                        c.state = s;
                        if s == RTCPeerConnectionState::Connected {
                            c.connected_at.get_or_insert(now);
                        }
                    }
                }
                while let Some(TaggedRTCMessage { message, .. }) = c.pc.poll_read() {
                    moved = true;
                    match message {
                        RTCMessage::RtpPacket(track, p) => {
                            c.received.entry(track).or_default().push(p)
                        }
                        RTCMessage::RtcpPacket(track, p) => c.rtcp.push((track, p)),
                        _ => {}
                    }
                }
            }
            for w in wires {
                self.send(w);
            }
            if !moved {
                break;
            }
        }
    }

    fn send(&mut self, w: Wire) {
        self.trace.push((
            self.now,
            w.src,
            w.dst,
            w.bytes.first().copied().unwrap_or(0),
            w.bytes.len(),
        ));
        if let Some(filter) = &mut self.drop_filter
            && filter(&w)
        {
            return;
        }
        let mut at = self.now + self.latency;
        if let Some(link) = self.links.get_mut(&w.dst) {
            // A bottleneck in front of `dst`: FIFO at `bps`, dropping what finds more than
            // `queue` of backlog (drop-tail). 28 bytes of IPv4 and UDP header per datagram.
            let start = link.free_at.max(self.now);
            if start - self.now > link.queue {
                self.link_drops += 1;
                return;
            }
            let bits = (w.bytes.len() as u64 + 28) * 8;
            link.free_at =
                start + Duration::from_nanos(bits.saturating_mul(1_000_000_000) / link.bps.max(1));
            at = link.free_at + self.latency;
        }
        self.seq += 1;
        let id = self.seq as usize;
        self.in_flight.insert(id, w);
        self.queue.push(Reverse((at, self.seq, id)));
    }

    /// Puts a bottleneck of `bits_per_second` in front of `to` (every datagram sent to it), with
    /// a drop-tail queue that holds at most `queue` of backlog; `None` lifts the limit (what is
    /// queued still arrives first, in order).
    pub fn set_link_rate(&mut self, to: SocketAddr, bits_per_second: Option<u64>, queue: Duration) {
        let free_at = self.links.get(&to).map_or(self.now, |l| l.free_at);
        let (bps, queue) = match bits_per_second {
            Some(bps) => (bps, queue),
            None => (u64::MAX, Duration::MAX),
        };
        self.links.insert(
            to,
            Link {
                bps,
                queue,
                free_at,
            },
        );
    }
}

/// A rate-limited link ([`Sim::set_link_rate`]).
struct Link {
    bps: u64,
    queue: Duration,
    /// When the last queued datagram has left the bottleneck.
    free_at: Instant,
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

// Helpers of the security, rooms and repair tests (`server/tests/media_sim_{security,rooms,
// repair}.rs`), kept apart from the core of the simulation above.

/// Every RTCP packet a client received, as it came off the wire (before its NACK responder,
/// report interceptors and keyframe tap acted on it), with when.
pub type RtcpLog = std::sync::Arc<std::sync::Mutex<Vec<(Instant, Box<dyn rtc::rtcp::Packet>)>>>;

/// An interceptor nearest the wire that copies every inbound RTCP packet into an [`RtcpLog`] and
/// passes everything on unchanged.
struct RtcpWireTap {
    log: RtcpLog,
    reads: std::collections::VecDeque<rtc::interceptor::TaggedPacket>,
    writes: std::collections::VecDeque<rtc::interceptor::TaggedPacket>,
}

impl Protocol<rtc::interceptor::TaggedPacket, rtc::interceptor::TaggedPacket, ()> for RtcpWireTap {
    type Rout = rtc::interceptor::TaggedPacket;
    type Wout = rtc::interceptor::TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: rtc::interceptor::TaggedPacket) -> Result<(), Self::Error> {
        if let rtc::interceptor::Packet::Rtcp(packets) = &msg.message.packet
            && let Ok(mut log) = self.log.lock()
        {
            log.extend(packets.iter().map(|p| (msg.now, p.clone())));
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: rtc::interceptor::TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl rtc::interceptor::Interceptor for RtcpWireTap {
    fn bind_local_stream(&mut self, _info: &rtc::interceptor::StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &rtc::interceptor::StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &rtc::interceptor::StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &rtc::interceptor::StreamInfo) {}
}

/// A VP8 RTP packet on `ssrc`: a payload descriptor (S=1, PID 0), a frame header byte whose P bit
/// says key/delta, then `len` bytes of `fill` (a test's marker of who sent it).
pub fn vp8_packet(
    seq: u16,
    ts: u32,
    ssrc: u32,
    keyframe: bool,
    fill: u8,
    len: usize,
) -> rtc::rtp::Packet {
    let mut payload = vec![0x10, if keyframe { 0x00 } else { 0x01 }];
    payload.extend(std::iter::repeat_n(fill, len));
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            marker: true,
            payload_type: videoroom_webrtc::VP8_PT,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            ..Default::default()
        },
        payload: payload.into(),
    }
}

/// The longest time without a frame in `from..=to`, from the (sorted) times frames arrived
/// (up to `to` itself: a stream that stopped counts as a freeze until `to`).
pub fn longest_gap(
    arrivals: impl IntoIterator<Item = Duration>,
    from: Duration,
    to: Duration,
) -> Duration {
    let mut last = from;
    let mut worst = Duration::ZERO;
    for t in arrivals.into_iter().filter(|t| *t >= from && *t <= to) {
        worst = worst.max(t - last);
        last = t;
    }
    worst.max(to.saturating_sub(last))
}

/// A VP8 RTP packet with a full payload descriptor (15-bit picture id) as browsers and our
/// client send it: a keyframe's first packet carries its `size`.
pub fn vp8_layer_packet(
    seq: u16,
    ts: u32,
    picture_id: u16,
    keyframe: Option<(u16, u16)>,
    len: usize,
) -> rtc::rtp::Packet {
    let mut payload = vec![0x90, 0x80, 0x80 | (picture_id >> 8) as u8, picture_id as u8];
    match keyframe {
        Some((w, h)) => {
            payload.extend_from_slice(&[0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a]);
            payload.extend_from_slice(&w.to_le_bytes());
            payload.extend_from_slice(&h.to_le_bytes());
        }
        None => payload.extend_from_slice(&[0x51, 0x2a, 0x01]),
    }
    payload.resize(payload.len() + len, 0xCD);
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            marker: true,
            payload_type: videoroom_webrtc::VP8_PT,
            sequence_number: seq,
            timestamp: ts,
            ..Default::default()
        },
        payload: payload.into(),
    }
}

/// The value of the first `a=<name>:` line of an SDP.
fn sdp_attribute(sdp: &str, name: &str) -> Option<String> {
    let prefix = format!("a={name}:");
    sdp.lines().find_map(|l| {
        l.trim_end()
            .strip_prefix(prefix.as_str())
            .map(str::to_owned)
    })
}

impl Sim {
    /// Like [`add_client`](Self::add_client), with a tap nearest the wire that logs every RTCP
    /// packet the client receives (NACKs and reports included, which its chain otherwise keeps
    /// from the application).
    pub fn add_client_logging_rtcp(&mut self) -> (usize, RtcpLog) {
        let log = RtcpLog::default();
        let (engine, registry) = videoroom_webrtc::engine_and_interceptors().expect("engine");
        let registry = registry.with(
            rtc::interceptor::Slot::from(500),
            RtcpWireTap {
                log: log.clone(),
                reads: Default::default(),
                writes: Default::default(),
            },
        );
        let i = self.add_client_with(engine, registry);
        (i, log)
    }

    /// Whether the server's core reported `Connected` for `key` (the endpoint subscribes then).
    pub fn server_connected(&self, key: PeerKey) -> bool {
        self.events.iter().any(|e| {
            e.key == key && matches!(e.event, CoreEvent::State(RTCPeerConnectionState::Connected))
        })
    }

    /// Runs until client `i` and the server's side of it are both connected (at most `max`).
    pub fn run_until_connected(&mut self, i: usize, max: Duration) -> bool {
        let key = self.clients[i].key;
        self.run_until(max, |s| {
            s.clients[i].connected_at.is_some() && s.server_connected(key)
        })
    }

    /// A new client that publishes one video track on `ssrc`, offers and connects; panics if it
    /// does not connect within 5 s of simulated time. Returns its index and sender.
    pub fn connect_publisher(&mut self, track_id: &str, ssrc: u32) -> (usize, RTCRtpSenderId) {
        let i = self.add_client();
        let sender = self.publish(i, track_id, MediaKind::Video, ssrc);
        self.client_offers(i).expect("offer/answer");
        assert!(
            self.run_until_connected(i, Duration::from_secs(5)),
            "publisher {i} did not connect: client {:?}, drops {:?}",
            self.clients[i].state,
            self.server.dropped()
        );
        (i, sender)
    }

    /// Client `i` sends a keyframe on `sender` until the server opened a forwarder for
    /// `track_id`; panics after 1 s of simulated time. Returns the forwarder and the next
    /// sequence number to use.
    pub fn open_track(
        &mut self,
        i: usize,
        sender: RTCRtpSenderId,
        track_id: &str,
        ssrc: u32,
        seq: u16,
    ) -> (FwdKey, u16) {
        self.send_rtp(i, sender, vp8_packet(seq, 0, ssrc, true, 0, 100));
        assert!(
            self.run_until(Duration::from_secs(1), |s| s
                .forwarder_of(i, track_id)
                .is_some()),
            "no TrackOpened for client {i}'s {track_id}"
        );
        (
            self.forwarder_of(i, track_id).expect("forwarder"),
            seq.wrapping_add(1),
        )
    }

    /// A new client subscribed to `fwd` (video) on leg `leg`, as `track_id` on `ssrc`: the server
    /// adds a sender and offers, the client answers, both connect, the core subscribes it. Panics
    /// on failure (5 s of simulated time). Returns its index.
    pub fn connect_subscriber(
        &mut self,
        fwd: FwdKey,
        leg: u64,
        track_id: &str,
        ssrc: u32,
    ) -> usize {
        let b = self.add_client();
        let key = self.clients[b].key;
        let now = self.now;
        let sender = self
            .server
            .add_sender(now, key, "publisher", track_id, MediaKind::Video, ssrc)
            .expect("add_sender");
        self.server_offers(b).expect("server offer");
        assert!(
            self.run_until_connected(b, Duration::from_secs(5)),
            "subscriber {b} did not connect: client {:?}",
            self.clients[b].state
        );
        let pt = self
            .server
            .sender_payload_type(key, sender)
            .expect("negotiated payload type");
        let now = self.now;
        self.server
            .subscribe(now, fwd, leg, key, sender, ssrc, pt, View::Default);
        self.pump();
        // The leg starts at a keyframe: let the PLI reach the publisher, whose next frame
        // answers it.
        self.run_until(Duration::from_millis(200), |s| {
            s.clients.iter().any(SimClient::keyframe_wanted)
        });
        b
    }

    /// RTP packets client `i` received on `track_id` so far.
    pub fn received_count(&self, i: usize, track_id: &str) -> usize {
        self.clients[i].received.get(track_id).map_or(0, Vec::len)
    }

    /// Client `i`'s receiver of the remote track `track_id`.
    pub fn client_receiver(
        &mut self,
        i: usize,
        track_id: &str,
    ) -> Option<rtc::rtp_transceiver::RTCRtpReceiverId> {
        let pc = &mut self.clients[i].pc;
        let ids: Vec<_> = pc.get_receivers().collect();
        ids.into_iter().find(|id| {
            pc.rtp_receiver(*id)
                .is_some_and(|r| r.track().track_id() == track_id)
        })
    }

    /// Client `i` sends RTCP (a PLI, a NACK) on one of its receivers.
    pub fn send_receiver_rtcp(
        &mut self,
        i: usize,
        receiver: rtc::rtp_transceiver::RTCRtpReceiverId,
        packets: Vec<Box<dyn rtc::rtcp::Packet>>,
    ) {
        let now = self.now;
        if let Some(mut r) = self.clients[i].pc.rtp_receiver(receiver) {
            let _ = r.write_rtcp(now, packets);
        }
        self.pump();
    }

    /// The server's ICE ufrag and password of client `i`'s peer (from its local description).
    pub fn server_ice_credentials(&mut self, i: usize) -> Option<(String, String)> {
        let now = self.now;
        let key = self.clients[i].key;
        let desc = self
            .server
            .with_peer(now, key, |pc| pc.local_description())
            .ok()??;
        Some((
            sdp_attribute(&desc.sdp, "ice-ufrag")?,
            sdp_attribute(&desc.sdp, "ice-pwd")?,
        ))
    }

    /// Client `i`'s own ICE ufrag (from its local description).
    pub fn client_ice_ufrag(&self, i: usize) -> Option<String> {
        let desc = self.clients[i].pc.local_description()?;
        sdp_attribute(&desc.sdp, "ice-ufrag")
    }

    /// Datagrams put on the wire from `src` to `dst` so far.
    pub fn wire_count(&self, src: SocketAddr, dst: SocketAddr) -> usize {
        self.trace
            .iter()
            .filter(|(_, s, d, _, _)| *s == src && *d == dst)
            .count()
    }
}
