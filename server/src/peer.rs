//! One participant's server-side WebRTC endpoint: an actor that owns the participant's
//! connection in the media engine (a [`PeerHandle`]) and its negotiation.
//!
//! It receives the client's SDP and candidates (from the session), subscribe/unsubscribe orders
//! (from the room) and the connection's events from the engine, and it:
//! - answers client offers, rolling back its own offer first when they cross (the server is the
//!   polite side of the glare rule in docs/protocol.md);
//! - turns each track the client publishes (`CoreEvent::TrackOpened`) into a
//!   [`ForwarderHandle`] and announces it to the room, the tracks of one client offer together
//!   (see [`PUBLISH_BATCH_WINDOW`]);
//! - adds a `sendonly` sender per subscribed track, offers, and once the client answered and the
//!   connection is up, subscribes a [`Leg`] on the track's forwarder;
//! - reports a peer whose ICE failed, or never connected, to the room.
//!
//! **One offer per change.** Handlers never offer themselves: the run loop handles a command,
//! then every other command already queued (a late join's subscriptions, a leave's
//! unsubscriptions, a client answer followed by new orders), and only then calls
//! `maybe_offer`, once. So whatever arrived together goes out in one `sdp_offer`, and while an
//! offer is outstanding later changes accumulate into the next one.

use crate::engine::core::CoreEvent;
use crate::engine::{EngineHandle, ForwarderHandle, Leg, PeerHandle, View};
use crate::media;
use crate::metrics::Metrics;
use crate::room::{RoomCommand, RoomHandle};
use crate::rtc_config::RtcConfig;
use crate::sdp_check;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};
use videoroom_protocol::{
    ErrorCode, IceCandidate, MediaKind, PeerId, PublishedTrack, ServerMessage, TrackId, TrackInfo,
    TrackSource, ViewSize, validate_track_id,
};

/// How long a negotiated connection may take to reach "connected" before the peer is removed
/// (with the 1 s watchdog tick, a peer whose ICE never connects is gone within 30 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(28);
/// How long a connection may stay "disconnected" before the peer is removed.
pub const DISCONNECTED_TIMEOUT: Duration = Duration::from_secs(15);
/// Candidates taken before the client's first offer (as many as a browser gathers).
const MAX_CANDIDATES_BEFORE_OFFER: usize = 64;
/// Consecutive failed server offers after which the endpoint stops re-offering until the next change.
const MAX_OFFER_FAILURES: u32 = 3;

/// The most view sizes an endpoint keeps (tracks in a room are bounded by its members).
const MAX_VIEWS: usize = 1024;
/// A track is published on its first media packet. The tracks a client offer sends are
/// announced to the room together (one `tracks_added`, one offer to each subscriber) as soon as
/// each has sent its first packet, or this long after the first of them did, with those that
/// have by then (the others follow as they start).
pub const PUBLISH_BATCH_WINDOW: Duration = Duration::from_millis(500);
/// Commands handled in one turn of the run loop before negotiating (the queue's capacity).
const COMMAND_BATCH: usize = 256;

/// Orders for an endpoint.
#[derive(Debug)]
pub enum EndpointCommand {
    /// The client's `sdp_offer`.
    ClientOffer {
        /// SDP text.
        sdp: String,
        /// The tracks the client says it publishes.
        tracks: Vec<PublishedTrack>,
    },
    /// The client's `sdp_answer`.
    ClientAnswer {
        /// SDP text.
        sdp: String,
    },
    /// A client ICE candidate.
    ClientCandidate(IceCandidate),
    /// Start forwarding other peers' tracks to this peer (negotiated in one offer).
    Subscribe {
        /// The tracks and their forwarders.
        tracks: Vec<(TrackInfo, ForwarderHandle)>,
    },
    /// Stop forwarding tracks to this peer (negotiated in one offer).
    Unsubscribe {
        /// The tracks.
        track_ids: Vec<TrackId>,
    },
    /// The client muted or unmuted a track the room has not published yet: update its
    /// declaration (see `Room::update_track`).
    UpdateDeclared {
        /// The track.
        track_id: TrackId,
        /// New state.
        muted: bool,
    },
    /// The client's `set_view_sizes`: how it shows the tracks forwarded to it.
    SetViews(Vec<ViewSize>),
    /// Close the PeerConnection and end.
    Close,
}

/// Handle to an endpoint actor.
#[derive(Clone)]
pub struct EndpointHandle {
    tx: mpsc::Sender<EndpointCommand>,
}

impl EndpointHandle {
    /// Sends an order, waiting while the endpoint's queue is full (used by the peer's own session).
    pub async fn send(&self, command: EndpointCommand) -> bool {
        self.tx.send(command).await.is_ok()
    }

    /// Sends an order without waiting; returns false if the endpoint is gone or wedged.
    pub fn try_send(&self, command: EndpointCommand) -> bool {
        self.tx.try_send(command).is_ok()
    }
}

/// A track forwarded to this peer.
struct Sub {
    info: TrackInfo,
    forwarder: ForwarderHandle,
    sender: RTCRtpSenderId,
    ssrc: u32,
    key: u64,
    /// Included in the offer now awaiting an answer.
    offered: bool,
    /// The client answered an offer that carried it.
    negotiated: bool,
    /// Its leg is subscribed on the forwarder (negotiated, and the connection is up).
    active: bool,
}

/// The endpoint actor.
pub struct Endpoint {
    peer_id: PeerId,
    pc: PeerHandle,
    engine: EngineHandle,
    rtc: Arc<RtcConfig>,
    out: mpsc::Sender<ServerMessage>,
    room: RoomHandle,
    metrics: Arc<Metrics>,
    commands: mpsc::Receiver<EndpointCommand>,
    events: mpsc::Receiver<CoreEvent>,
    declared: HashMap<TrackId, PublishedTrack>,
    /// Tracks the client publishes (announced to the room or about to be).
    published: HashMap<TrackId, ForwarderHandle>,
    /// Published tracks not announced to the room yet, in arrival order.
    unannounced: Vec<TrackInfo>,
    /// When the unannounced tracks are announced at the latest.
    announce_at: Option<Instant>,
    /// The tracks the client's last offer sends and declares unmuted: the batch to wait for.
    expected: HashSet<TrackId>,
    subs: HashMap<TrackId, Sub>,
    /// How the client shows each track (also tracks not subscribed yet: a `set_view_sizes`
    /// may overtake the subscription); at most [`MAX_VIEWS`].
    views: HashMap<TrackId, View>,
    have_local_offer: bool,
    negotiation_needed: bool,
    offer_failures: u32,
    remote_set: bool,
    /// Candidates the client sent before its first offer (counted, not kept).
    candidates_before_offer: usize,
    /// Candidates the client sent (bounded: `sdp_check::MAX_CANDIDATES`).
    candidates_seen: usize,
    negotiating_since: Option<Instant>,
    connected: bool,
    disconnected_since: Option<Instant>,
    failed: bool,
    stalled: bool,
    /// Its token lets it publish (open rooms: always).
    may_publish: bool,
}

static NEXT_SUBSCRIBER_KEY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Endpoint {
    /// Builds the PeerConnection and spawns the actor.
    pub async fn spawn(
        peer_id: PeerId,
        room: RoomHandle,
        out: mpsc::Sender<ServerMessage>,
        rtc: &Arc<RtcConfig>,
        engine: &EngineHandle,
        metrics: Arc<Metrics>,
        may_publish: bool,
    ) -> Result<EndpointHandle, crate::engine::core::CoreError> {
        let (pc, events) = engine.add_peer().await?;
        let (tx, commands) = mpsc::channel(256);
        let span = info_span!(parent: None, "peer", room = %room.name, peer = %peer_id);
        let endpoint = Endpoint {
            peer_id,
            pc,
            engine: engine.clone(),
            rtc: Arc::clone(rtc),
            out,
            room,
            metrics,
            commands,
            events,
            declared: HashMap::new(),
            published: HashMap::new(),
            unannounced: Vec::new(),
            announce_at: None,
            expected: HashSet::new(),
            subs: HashMap::new(),
            views: HashMap::new(),
            have_local_offer: false,
            negotiation_needed: false,
            offer_failures: 0,
            remote_set: false,
            candidates_before_offer: 0,
            candidates_seen: 0,
            negotiating_since: None,
            connected: false,
            disconnected_since: None,
            failed: false,
            stalled: false,
            may_publish,
        };
        tokio::spawn(endpoint.run().instrument(span));
        Ok(EndpointHandle { tx })
    }

    async fn run(mut self) {
        let mut watchdog = tokio::time::interval(Duration::from_secs(1));
        watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(EndpointCommand::Close) | None => break,
                    Some(command) => {
                        self.handle_command(command).await;
                        // Whatever else is queued joins the same negotiation (see the module
                        // doc); bounded, so the PeerConnection's events are not starved.
                        let mut closed = false;
                        for _ in 1..COMMAND_BATCH {
                            match self.commands.try_recv() {
                                Ok(EndpointCommand::Close) => {
                                    closed = true;
                                    break;
                                }
                                Ok(command) => self.handle_command(command).await,
                                Err(mpsc::error::TryRecvError::Empty) => break,
                                Err(mpsc::error::TryRecvError::Disconnected) => {
                                    closed = true;
                                    break;
                                }
                            }
                        }
                        if closed {
                            break;
                        }
                    }
                },
                Some(event) = self.events.recv() => self.handle_event(event).await,
                _ = sleep_until_opt(self.announce_at) => self.announce().await,
                _ = watchdog.tick() => self.check_liveness(Instant::now()).await,
            }
            // The one place that negotiates: everything handled above goes into one offer.
            self.maybe_offer().await;
            if self.stalled {
                self.stalled = false;
                self.fail("client stopped reading signaling messages").await;
            }
        }
        for sub in self.subs.values() {
            sub.forwarder.unsubscribe(sub.key);
        }
        self.pc.close();
        info!("endpoint closed");
    }

    fn reply(&mut self, message: ServerMessage) {
        // The session's outbound queue is bounded (256); a full one means the client stopped
        // reading, and the peer is removed (see `run`) rather than left missing an SDP.
        if let Err(mpsc::error::TrySendError::Full(_)) = self.out.try_send(message) {
            self.stalled = true;
        }
    }

    fn error(&mut self, code: ErrorCode, message: impl Into<String>) {
        self.metrics.signaling_errors.inc();
        self.reply(ServerMessage::Error {
            code,
            message: message.into(),
        });
    }

    async fn update_declared(&mut self, track_id: TrackId, muted: bool) {
        if let Some(info) = self.unannounced.iter_mut().find(|i| i.track_id == track_id) {
            // Published, but the room has not been told yet: it will be, in this state.
            debug!(track = %track_id, muted, "state updated before announcement");
            info.muted = muted;
        } else if self.published.contains_key(&track_id) {
            // Published while the update was on its way: the room knows it now.
            self.room
                .send(RoomCommand::UpdateTrack {
                    peer_id: self.peer_id.clone(),
                    track_id,
                    muted,
                    relayed: true,
                })
                .await;
        } else if let Some(declared) = self.declared.get_mut(&track_id) {
            debug!(track = %track_id, muted, "declaration updated before publication");
            declared.muted = muted;
        } else {
            self.error(
                ErrorCode::InvalidTrack,
                format!(
                    "you publish no track `{}`",
                    videoroom_protocol::excerpt(track_id.as_str())
                ),
            );
        }
    }

    async fn handle_command(&mut self, command: EndpointCommand) {
        match command {
            EndpointCommand::ClientOffer { sdp, tracks } => self.on_client_offer(sdp, tracks).await,
            EndpointCommand::ClientAnswer { sdp } => self.on_client_answer(sdp).await,
            EndpointCommand::ClientCandidate(c) => self.on_client_candidate(c).await,
            EndpointCommand::Subscribe { tracks } => {
                for (info, forwarder) in tracks {
                    self.subscribe(forwarder, info).await;
                }
            }
            EndpointCommand::Unsubscribe { track_ids } => {
                for track_id in &track_ids {
                    self.unsubscribe(track_id).await;
                }
            }
            EndpointCommand::UpdateDeclared { track_id, muted } => {
                self.update_declared(track_id, muted).await
            }
            EndpointCommand::SetViews(views) => self.set_views(views),
            EndpointCommand::Close => {}
        }
    }

    async fn on_client_offer(&mut self, sdp: String, tracks: Vec<PublishedTrack>) {
        if let Err(why) = sdp_check::check_sdp(&sdp) {
            return self.error(ErrorCode::InvalidSdp, format!("offer refused: {why}"));
        }
        let mut declared = HashMap::new();
        for t in tracks {
            if let Err(e) = validate_track_id(t.track_id.as_str()) {
                return self.error(e.code, e.message);
            }
            declared.insert(t.track_id.clone(), t);
        }
        let offer = match RTCSessionDescription::offer(sdp) {
            Ok(offer) => offer,
            Err(e) => {
                return self.error(
                    ErrorCode::InvalidSdp,
                    format!("offer is not valid SDP: {}", clip(&e)),
                );
            }
        };
        let sending = match sending_track_ids(&offer) {
            Ok(ids) => ids,
            Err(e) => {
                return self.error(
                    ErrorCode::InvalidSdp,
                    format!("offer is not valid SDP: {}", clip(&e)),
                );
            }
        };
        if !self.may_publish && !sending.is_empty() {
            // The session refuses offers that declare tracks; this one sends undeclared ones.
            return self.error(
                ErrorCode::PublishNotAllowed,
                "your invitation lets you watch and listen, not publish; offer no sending tracks",
            );
        }
        if self.have_local_offer {
            // Glare: the server is polite. Roll our offer back and offer again after answering.
            debug!("client offer crossed ours; rolling back");
            match RTCSessionDescription::rollback(None) {
                Ok(rb) => {
                    if let Err(e) = self.pc.set_local_description(rb).await {
                        warn!("rollback failed: {e}");
                    }
                }
                Err(e) => warn!("rollback description: {e}"),
            }
            self.have_local_offer = false;
            self.negotiation_needed = true;
            for sub in self.subs.values_mut() {
                sub.offered = false;
            }
        }
        if let Err(e) = self.pc.set_remote_description(offer).await {
            // Negotiation resumes with the run loop's next offer.
            return self.error(
                ErrorCode::InvalidSdp,
                format!("offer could not be applied: {}", clip(&e)),
            );
        }
        self.remote_applied().await;
        let answer = match self.pc.create_answer().await {
            Ok(answer) => answer,
            Err(e) => {
                return self.error(
                    ErrorCode::InvalidSdp,
                    format!("cannot answer this offer: {}", clip(&e)),
                );
            }
        };
        if let Err(e) = self.pc.set_local_description(answer).await {
            return self.error(ErrorCode::Internal, format!("cannot apply own answer: {e}"));
        }
        match self.pc.local_description().await {
            Some(desc) => {
                let sdp = self.rtc.advertise_sdp(desc.sdp);
                self.reply(ServerMessage::SdpAnswer { sdp })
            }
            None => self.error(ErrorCode::Internal, "answer missing after negotiation"),
        }
        // The batch of tracks this offer publishes: those it sends, but not those declared
        // muted (a muted track sends nothing, and is published when it starts).
        self.expected = sending
            .iter()
            .map(|id| TrackId::new(id.as_str()))
            .filter(|id| !declared.get(id).is_some_and(|d| d.muted))
            .collect();
        self.declared = declared;
        // Tracks the client no longer sends are unpublished, together.
        let gone: Vec<TrackId> = self
            .published
            .keys()
            .filter(|id| !sending.contains(id.as_str()))
            .cloned()
            .collect();
        self.unpublish(gone).await;
        self.maybe_announce(Instant::now()).await;
    }

    /// Forgets published tracks; the room is told of those it knew, in one command.
    async fn unpublish(&mut self, track_ids: Vec<TrackId>) {
        let mut known = Vec::new();
        for track_id in track_ids {
            if self.published.remove(&track_id).is_none() {
                continue;
            }
            let before = self.unannounced.len();
            self.unannounced.retain(|i| i.track_id != track_id);
            if self.unannounced.len() == before {
                known.push(track_id);
            }
        }
        if self.unannounced.is_empty() {
            self.announce_at = None;
        }
        if !known.is_empty() {
            self.room
                .tracks_unpublished(self.peer_id.clone(), known)
                .await;
        }
    }

    /// Announces the unannounced tracks now if every track of the batch has started.
    async fn maybe_announce(&mut self, now: Instant) {
        if self.unannounced.is_empty() {
            return;
        }
        if self
            .expected
            .iter()
            .all(|id| self.published.contains_key(id))
        {
            self.announce().await;
        } else {
            self.announce_at.get_or_insert(now + PUBLISH_BATCH_WINDOW);
        }
    }

    /// Tells the room of every track published since the last announcement, in one command.
    async fn announce(&mut self) {
        self.announce_at = None;
        let tracks: Vec<(TrackInfo, ForwarderHandle)> = std::mem::take(&mut self.unannounced)
            .into_iter()
            .filter_map(|info| {
                let forwarder = self.published.get(&info.track_id)?.clone();
                Some((info, forwarder))
            })
            .collect();
        if tracks.is_empty() {
            return;
        }
        info!(tracks = tracks.len(), "announcing published tracks");
        self.room
            .tracks_published(self.peer_id.clone(), tracks)
            .await;
    }

    async fn on_client_answer(&mut self, sdp: String) {
        if !self.have_local_offer {
            return self.error(
                ErrorCode::InvalidState,
                "`sdp_answer` without a server offer to answer",
            );
        }
        if let Err(why) = sdp_check::check_sdp(&sdp) {
            return self.error(ErrorCode::InvalidSdp, format!("answer refused: {why}"));
        }
        let applied = match RTCSessionDescription::answer(sdp) {
            Ok(answer) => self.pc.set_remote_description(answer).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = applied {
            self.error(
                ErrorCode::InvalidSdp,
                format!("answer could not be applied: {}", clip(&e)),
            );
            // Return to stable and try again with a fresh offer (a bounded number of times).
            if let Ok(rb) = RTCSessionDescription::rollback(None)
                && let Err(e) = self.pc.set_local_description(rb).await
            {
                warn!("rollback after bad answer failed: {e}");
            }
            self.have_local_offer = false;
            self.negotiation_needed = true;
            self.offer_failures += 1;
            for sub in self.subs.values_mut() {
                sub.offered = false;
            }
            return;
        }
        self.have_local_offer = false;
        self.offer_failures = 0;
        self.remote_applied().await;
        self.activate_offered().await;
    }

    async fn remote_applied(&mut self) {
        self.remote_set = true;
        self.negotiating_since.get_or_insert_with(Instant::now);
    }

    async fn on_client_candidate(&mut self, c: IceCandidate) {
        if c.candidate.trim().is_empty() {
            return; // end-of-candidates
        }
        if let Err(why) = sdp_check::check_candidate(&c) {
            return self.error(ErrorCode::InvalidCandidate, why);
        }
        self.candidates_seen += 1;
        if self.candidates_seen > sdp_check::MAX_CANDIDATES {
            return self.error(
                ErrorCode::InvalidCandidate,
                format!(
                    "too many candidates: at most {} per connection are taken",
                    sdp_check::MAX_CANDIDATES
                ),
            );
        }
        // The engine is ICE-lite: it answers the client's checks and never sends checks to the
        // addresses a client names, so a candidate is only counted and, once there is a remote
        // description to check it against (as before the engine), parsed; nothing is stored.
        if !self.remote_set {
            self.candidates_before_offer += 1;
            if self.candidates_before_offer > MAX_CANDIDATES_BEFORE_OFFER {
                self.error(
                    ErrorCode::InvalidCandidate,
                    "too many candidates before an offer",
                );
            }
            return;
        }
        let body = c.candidate.trim();
        let body = body.strip_prefix("candidate:").unwrap_or(body);
        if let Err(e) = rtc::ice::candidate::unmarshal_candidate(body) {
            self.error(
                ErrorCode::InvalidCandidate,
                format!("candidate refused: {}", clip(&e)),
            );
        }
    }

    async fn subscribe(&mut self, forwarder: ForwarderHandle, info: TrackInfo) {
        if self.subs.contains_key(&info.track_id) {
            return;
        }
        let ssrc: u32 = rand::random::<u32>().max(1);
        let sender = match self
            .pc
            .add_sender(
                info.peer_id.as_str().to_owned(),
                info.track_id.as_str().to_owned(),
                info.kind,
                ssrc,
            )
            .await
        {
            Ok(sender) => sender,
            Err(e) => {
                warn!(track = %info.track_id, "cannot add forwarded track: {e}");
                return;
            }
        };
        debug!(track = %info.track_id, ssrc, "subscribed");
        self.subs.insert(
            info.track_id.clone(),
            Sub {
                info,
                forwarder,
                sender,
                ssrc,
                key: NEXT_SUBSCRIBER_KEY.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                offered: false,
                negotiated: false,
                active: false,
            },
        );
        self.negotiation_needed = true;
    }

    /// How the client shows tracks: kept for each, and passed to the forwarder of a track
    /// already flowing. Entries name the publisher too; one that names another publisher than
    /// the track's is ignored.
    fn set_views(&mut self, views: Vec<ViewSize>) {
        for v in views {
            let view = View::from_size(v.width, v.height);
            if let Some(sub) = self.subs.get(&v.track_id) {
                if sub.info.peer_id != v.peer_id || sub.info.kind != MediaKind::Video {
                    continue;
                }
                if sub.active {
                    sub.forwarder.set_view(sub.key, view);
                }
            } else if self.views.len() >= MAX_VIEWS && !self.views.contains_key(&v.track_id) {
                let subs = &self.subs;
                self.views.retain(|t, _| subs.contains_key(t));
                if self.views.len() >= MAX_VIEWS {
                    continue;
                }
            }
            self.views.insert(v.track_id, view);
        }
    }

    async fn unsubscribe(&mut self, track_id: &TrackId) {
        self.views.remove(track_id);
        let Some(sub) = self.subs.remove(track_id) else {
            return;
        };
        sub.forwarder.unsubscribe(sub.key);
        if let Err(e) = self.pc.remove_sender(sub.sender).await {
            debug!(track = %track_id, "remove_track: {e}");
        }
        self.negotiation_needed = true;
    }

    /// Sends a server offer if something changed and no offer is outstanding. Called by the
    /// run loop only, once per turn, so the offer carries every change handled in that turn.
    async fn maybe_offer(&mut self) {
        if self.have_local_offer || !self.negotiation_needed || self.failed {
            return;
        }
        if self.offer_failures >= MAX_OFFER_FAILURES {
            warn!(
                "client rejected {MAX_OFFER_FAILURES} offers in a row; waiting for the next change"
            );
            self.offer_failures = 0;
            self.negotiation_needed = false;
            return;
        }
        self.negotiation_needed = false;
        let offer = match self.pc.create_offer().await {
            Ok(offer) => offer,
            Err(e) => return warn!("cannot create offer: {e}"),
        };
        if let Err(e) = self.pc.set_local_description(offer).await {
            return warn!("cannot apply own offer: {e}");
        }
        let Some(desc) = self.pc.local_description().await else {
            return warn!("offer missing after set_local_description");
        };
        self.have_local_offer = true;
        for sub in self.subs.values_mut() {
            sub.offered = true;
        }
        let sdp = self.rtc.advertise_sdp(desc.sdp);
        self.reply(ServerMessage::SdpOffer { sdp });
    }

    /// The client answered our offer: every offered track is now negotiated.
    async fn activate_offered(&mut self) {
        for sub in self.subs.values_mut().filter(|s| s.offered) {
            sub.negotiated = true;
        }
        self.activate_ready().await;
    }

    /// Starts feeding every negotiated track once DTLS is up (earlier packets could not be
    /// encrypted and would only be dropped).
    async fn activate_ready(&mut self) {
        if !self.connected {
            return;
        }
        for sub in self.subs.values_mut().filter(|s| s.negotiated && !s.active) {
            let payload_type =
                self.pc
                    .payload_type(sub.sender)
                    .await
                    .unwrap_or(match sub.info.kind {
                        MediaKind::Audio => media::OPUS_PT,
                        MediaKind::Video => media::VP8_PT,
                    });
            sub.forwarder.subscribe(Leg {
                key: sub.key,
                peer: self.pc.key(),
                sender: sub.sender,
                ssrc: sub.ssrc,
                payload_type,
                view: self
                    .views
                    .get(&sub.info.track_id)
                    .copied()
                    .unwrap_or_default(),
            });
            sub.active = true;
            debug!(track = %sub.info.track_id, payload_type, "forwarding to this peer");
        }
    }

    async fn handle_event(&mut self, event: CoreEvent) {
        match event {
            CoreEvent::LocalCandidate(init) => {
                let mut candidate = media::from_rtc_candidate(init);
                candidate.candidate = self.rtc.advertise(&candidate.candidate);
                self.reply(ServerMessage::IceCandidate { candidate })
            }
            CoreEvent::State(state) => self.on_state(state).await,
            CoreEvent::TrackOpened {
                fwd,
                track_id,
                kind,
                ssrc: _,
                held,
            } => self.on_remote_track(fwd, track_id, kind, held).await,
            CoreEvent::SpeakerLevel { track_id, level } => {
                if let Ok(track_id) = validate_track_id(&track_id) {
                    // A full room queue drops a report; the next one (250 ms) replaces it.
                    self.room.try_send(RoomCommand::SpeakerLevel {
                        peer_id: self.peer_id.clone(),
                        track_id,
                        level: level.level,
                        speaking: level.speaking,
                    });
                }
            }
            CoreEvent::LayersWanted {
                track_id,
                rids,
                active,
            } => {
                if let Ok(track_id) = validate_track_id(&track_id) {
                    debug!(track = %track_id, ?rids, active, "layers wanted");
                    self.reply(ServerMessage::LayersWanted {
                        track_id,
                        active,
                        rids,
                    });
                }
            }
            CoreEvent::TrackEnded { track_id, .. } => {
                if let Ok(track_id) = validate_track_id(&track_id) {
                    self.unpublish(vec![track_id]).await;
                }
            }
        }
    }

    async fn on_state(&mut self, state: RTCPeerConnectionState) {
        info!(%state, "connection state");
        match state {
            RTCPeerConnectionState::Connected => {
                self.connected = true;
                self.disconnected_since = None;
                self.activate_ready().await;
            }
            RTCPeerConnectionState::Disconnected => {
                self.disconnected_since.get_or_insert_with(Instant::now);
            }
            RTCPeerConnectionState::Failed => self.fail("ICE connection failed").await,
            // We close only on our way out of `run`, so a close seen here came from the client.
            RTCPeerConnectionState::Closed => self.fail("media connection closed").await,
            _ => {}
        }
    }

    async fn check_liveness(&mut self, now: Instant) {
        if self.failed {
            return;
        }
        if !self.connected
            && let Some(since) = self.negotiating_since
            && now.duration_since(since) > CONNECT_TIMEOUT
        {
            return self.fail("ICE did not connect within 28 s").await;
        }
        if let Some(since) = self.disconnected_since
            && now.duration_since(since) > DISCONNECTED_TIMEOUT
        {
            self.fail("ICE connection lost for 15 s").await;
        }
    }

    async fn fail(&mut self, reason: &str) {
        if self.failed {
            return;
        }
        self.failed = true;
        warn!(reason, "removing peer: its media connection failed");
        self.room
            .peer_failed(self.peer_id.clone(), reason.to_owned())
            .await;
    }

    async fn on_remote_track(
        &mut self,
        fwd: crate::engine::core::FwdKey,
        raw_id: String,
        kind: RtpCodecKind,
        held: Arc<std::sync::atomic::AtomicBool>,
    ) {
        if !self.may_publish {
            // Its `sdp_offer`s with tracks are refused by the session; media from an offer that
            // declared none is not forwarded either.
            return warn!("media from a participant who may not publish; not forwarded");
        }
        let track_id = match validate_track_id(&raw_id) {
            Ok(id) => id,
            Err(e) => return self.error(e.code, e.message),
        };
        if self.published.contains_key(&track_id) {
            return;
        }
        let kind = match kind {
            RtpCodecKind::Audio => MediaKind::Audio,
            RtpCodecKind::Video => MediaKind::Video,
            _ => {
                return self.error(
                    ErrorCode::InvalidTrack,
                    format!("track `{track_id}` is neither audio nor video"),
                );
            }
        };
        let declared = self.declared.get(&track_id);
        let info = TrackInfo {
            track_id: track_id.clone(),
            peer_id: self.peer_id.clone(),
            kind,
            source: declared
                .map(|d| d.source)
                .unwrap_or_else(|| TrackSource::default_for(kind)),
            muted: declared.is_some_and(|d| d.muted),
        };
        let forwarder =
            ForwarderHandle::new(self.engine.clone(), fwd, held, track_id.clone(), kind);
        info!(track = %track_id, ?kind, "publishing");
        self.published.insert(track_id, forwarder);
        self.unannounced.push(info);
        self.maybe_announce(Instant::now()).await;
    }
}

/// The `msid` track ids of the media sections an offer sends on (sendonly or sendrecv, not rejected).
fn sending_track_ids(
    desc: &RTCSessionDescription,
) -> Result<HashSet<String>, rtc::shared::error::Error> {
    let parsed = desc.unmarshal()?;
    let mut ids = HashSet::new();
    for m in &parsed.media_descriptions {
        if m.media_name.port.value == 0 {
            continue;
        }
        // No direction attribute means sendrecv.
        let receives_only = m.attribute("recvonly").is_some() || m.attribute("inactive").is_some();
        if receives_only {
            continue;
        }
        if let Some(Some(msid)) = m.attribute("msid")
            && let Some(track) = msid.split_whitespace().nth(1)
        {
            ids.insert(track.to_owned());
        }
    }
    Ok(ids)
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A WebRTC error's text, which may quote the client's SDP or candidate, cut to a short excerpt.
fn clip(error: &impl std::fmt::Display) -> String {
    videoroom_protocol::clip_quoted(&error.to_string())
}
