//! The room task: one per room; it owns the local tracks and the current session. It serves a
//! session until it ends, replaces a lost one (rejoin with backoff) and acts on commands, server
//! messages and PeerConnection events.

use super::handle::{Command, ConnectionStats, EventSink, Shared, lock};
use super::local::{LocalControl, LocalIds, LocalTrack, add_local_rtp, new_track_id};
use super::remote::ViewSizes;
use super::session::{Joined, Link, Session};
use super::{ConnectionState, JoinError, RoomError, RoomEvent, ScreenShareEnd, social};
use crate::audio::Playout;
use crate::media::devices::DeviceError;
use crate::peer::{PcEvent, PeerError};
use crate::publish::{EndReports, Ended};
use crate::receive::ReceiveEvent;
use crate::signaling::SignalingError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use videoroom_protocol::{ClientMessage, ErrorCode, PeerId, ServerMessage, TrackId, TrackSource};
use webrtc::peer_connection::{RTCIceConnectionState, RTCPeerConnectionState, StatsSelector};

/// Interval of `ping` keep-alives on the signaling socket.
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// First wait between reconnection attempts; doubles up to [`RECONNECT_MAX_BACKOFF`].
const RECONNECT_FIRST_BACKOFF: Duration = Duration::from_millis(250);
const RECONNECT_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The room task: owns the local tracks, the current session and the negotiation state.
pub(super) struct RoomTask {
    pub(super) link: Link,
    pub(super) reconnect_for: Option<Duration>,
    pub(super) decode_video: bool,
    pub(super) decode_audio: bool,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) events: EventSink,
    pub(super) shared: Arc<Shared>,
    pub(super) ready_tx: mpsc::Sender<ReceiveEvent>,
    pub(super) ready_rx: mpsc::Receiver<ReceiveEvent>,
    pub(super) audio_ready: mpsc::Receiver<TrackId>,
    /// Send loops that stopped for good report here.
    pub(super) ended_tx: EndReports,
    pub(super) ended_rx: mpsc::UnboundedReceiver<Ended>,
    pub(super) local: Vec<LocalTrack>,
    pub(super) session: Option<Session>,
    pub(super) playout: Option<Playout>,
    /// Our ids in earlier sessions: the server may still list that ghost of ours for a while
    /// after a reconnection (until it notices the old socket or ICE is gone); it is not a peer.
    pub(super) old_peer_ids: std::collections::HashSet<PeerId>,
    /// `create_invite`s sent on the current session, oldest first, waiting for their answer
    /// (dropped with the session: the caller hears the connection was lost).
    pub(super) invites:
        std::collections::VecDeque<oneshot::Sender<Result<social::Invite, RoomError>>>,
    /// The sizes remote video is shown at (viewer hints), sent at the end of each turn.
    pub(super) views: ViewSizes,
}

/// How a session ended.
enum SessionEnd {
    Left(Option<oneshot::Sender<()>>),
    Lost(String),
    /// A moderator removed us or ended the meeting: no rejoin.
    Ended(String),
}

/// What a reconnection attempt came to.
enum Rejoin {
    Done,
    Left(Option<oneshot::Sender<()>>),
    GaveUp(String),
}

/// What the current session produced.
enum SessionInput {
    Message(Result<Option<ServerMessage>, SignalingError>),
    Pc(PcEvent),
}

/// The next message or PeerConnection event of the session; pends forever without one.
async fn next_session_input(session: &mut Option<Session>) -> SessionInput {
    let Some(s) = session else {
        return std::future::pending().await;
    };
    tokio::select! {
        message = s.signaling.recv() => SessionInput::Message(message),
        Some(event) = s.pc_events.recv() => SessionInput::Pc(event),
    }
}

impl RoomTask {
    pub(super) async fn run(mut self) {
        loop {
            let reason = match self.run_session().await {
                SessionEnd::Left(done) => return self.finish_left(done).await,
                SessionEnd::Ended(reason) => return self.finish_ended(reason).await,
                SessionEnd::Lost(reason) => reason,
            };
            tracing::warn!(reason, "session lost");
            self.invites.clear();
            if let Some(session) = self.session.take() {
                session.close(false).await;
            }
            self.unbind_local();
            let Some(reconnect_for) = self.reconnect_for else {
                return self.finish_failed(reason).await;
            };
            self.events
                .emit(RoomEvent::ConnectionState(ConnectionState::Reconnecting));
            match self.rejoin(reconnect_for).await {
                Rejoin::Done => continue,
                Rejoin::Left(done) => return self.finish_left(done).await,
                Rejoin::GaveUp(why) => {
                    return self
                        .finish_failed(format!("{reason}; reconnecting failed: {why}"))
                        .await;
                }
            }
        }
    }

    async fn finish_left(mut self, done: Option<oneshot::Sender<()>>) {
        tracing::info!("leaving");
        if let Some(session) = self.session.take() {
            session.close(true).await;
        }
        self.shutdown();
        self.events.emit(RoomEvent::Closed {
            reason: "left the room".into(),
        });
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    async fn finish_failed(mut self, reason: String) {
        tracing::warn!(reason, "room session ended");
        if let Some(session) = self.session.take() {
            session.close(false).await;
        }
        self.shutdown();
        self.events
            .emit(RoomEvent::ConnectionState(ConnectionState::Failed));
        self.events.emit(RoomEvent::Closed { reason });
    }

    async fn finish_ended(mut self, reason: String) {
        tracing::info!(reason, "removed from the room");
        if let Some(session) = self.session.take() {
            session.close(false).await;
        }
        self.shutdown();
        self.events.emit(RoomEvent::Closed { reason });
    }

    fn shutdown(&mut self) {
        self.unbind_local();
        self.local.clear();
        self.playout = None;
        lock(&self.shared.videos).clear();
        self.shared.mixer.clear();
    }

    fn unbind_local(&self) {
        for track in &self.local {
            track.binding.send_replace(None);
        }
    }

    /// Serves the current session until it ends.
    async fn run_session(&mut self) -> SessionEnd {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut next_ping = 0u64;
        loop {
            // What the last turn changed (or, first, what the new session has not been told).
            self.flush_view_sizes().await;
            let tcp_release_at = self.session.as_ref().and_then(|s| s.tcp_release_at);
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Leave(done)) => return SessionEnd::Left(Some(done)),
                    // The handle was dropped: leave.
                    None => return SessionEnd::Left(None),
                    Some(command) => self.on_command(command).await,
                },
                input = next_session_input(&mut self.session) => match input {
                    SessionInput::Message(Ok(Some(message))) => {
                        if let Some(session) = self.session.as_mut() {
                            session.last_inbound = Instant::now();
                        }
                        if let Some(end) = self.on_server_message(message).await {
                            return end;
                        }
                    }
                    SessionInput::Message(Ok(None)) => {
                        return SessionEnd::Lost("the server closed the connection".into());
                    }
                    SessionInput::Message(Err(SignalingError::InvalidMessage(e))) => {
                        tracing::warn!("invalid server message: {e}");
                        self.events.emit(RoomEvent::Error(RoomError::Signaling(e)));
                    }
                    SessionInput::Message(Err(e)) => return SessionEnd::Lost(e.to_string()),
                    SessionInput::Pc(event) => {
                        if let Some(end) = self.on_pc_event(event).await {
                            return end;
                        }
                    }
                },
                Some(ReceiveEvent::FirstFrame(track_id)) = self.ready_rx.recv() => {
                    tracing::info!(track = %track_id, "first frame decoded");
                    self.events.emit(RoomEvent::TrackReady { track_id });
                }
                Some(track_id) = self.audio_ready.recv() => {
                    tracing::info!(track = %track_id, "first audio played");
                    self.events.emit(RoomEvent::TrackReady { track_id });
                }
                Some(ended) = self.ended_rx.recv() => {
                    tracing::warn!(?ended, "local track stopped");
                    let screen = self
                        .local
                        .iter()
                        .any(|t| t.ssrc == ended.ssrc && t.source == TrackSource::Screen);
                    if screen {
                        // A shared window closed or the capture failed: the share ends.
                        let why = ScreenShareEnd::SourceEnded(ended.reason);
                        if let Err(e) = self.stop_screen(why).await {
                            tracing::warn!("ending the screen share failed: {e}");
                        }
                    } else {
                        self.events.emit(RoomEvent::Error(RoomError::Device(DeviceError::Failed(
                            format!("{}; switch to another input to resume", ended.reason),
                        ))));
                    }
                }
                _ = sleep_until(tcp_release_at) => self.release_tcp_candidates().await,
                _ = ping.tick() => {
                    next_ping += 1;
                    let Some(session) = self.session.as_mut() else {
                        continue;
                    };
                    // The server answers every ping; silence for two intervals means a dead
                    // (half-open) socket.
                    if session.last_inbound.elapsed() > 2 * PING_INTERVAL {
                        return SessionEnd::Lost(format!(
                            "no answer from the server for {:?}",
                            session.last_inbound.elapsed()
                        ));
                    }
                    if let Err(e) = session.signaling.send(&ClientMessage::Ping { id: next_ping }).await {
                        return SessionEnd::Lost(e.to_string());
                    }
                }
            }
        }
    }

    /// Tries to join again until `reconnect_for` has passed, serving commands meanwhile.
    async fn rejoin(&mut self, reconnect_for: Duration) -> Rejoin {
        let ghost = lock(&self.shared.peer_id).clone();
        self.old_peer_ids.insert(ghost);
        let deadline = Instant::now() + reconnect_for;
        let mut backoff = RECONNECT_FIRST_BACKOFF;
        let link = self.link.clone();
        let mut last_error;
        loop {
            let attempt = Session::connect(&link);
            tokio::pin!(attempt);
            let result = loop {
                tokio::select! {
                    result = &mut attempt => break result,
                    command = self.commands.recv() => match command {
                        Some(Command::Leave(done)) => return Rejoin::Left(Some(done)),
                        None => return Rejoin::Left(None),
                        Some(command) => self.on_command(command).await,
                    },
                }
            };
            match result {
                Ok((session, joined)) => {
                    let joined = self.without_ghosts(joined);
                    tracing::info!(peer = %joined.peer_id, "rejoined");
                    self.events.emit(RoomEvent::Joined {
                        peer_id: joined.peer_id.clone(),
                        peers: joined.peers.clone(),
                        room: joined.room.clone(),
                    });
                    return match self.install(session, joined).await {
                        Ok(()) => Rejoin::Done,
                        Err(e) => Rejoin::GaveUp(e.to_string()),
                    };
                }
                // Full (perhaps because our own ghost still holds a seat), restarting, too many
                // joins from our address at once, or a passing server failure: keep trying.
                Err(
                    e @ JoinError::Refused {
                        code:
                            ErrorCode::RoomFull
                            | ErrorCode::ShuttingDown
                            | ErrorCode::RateLimited
                            | ErrorCode::Internal,
                        ..
                    },
                ) => last_error = e.to_string(),
                // Any other refusal (name, version) would be the same next time.
                Err(e @ JoinError::Refused { .. }) => return Rejoin::GaveUp(e.to_string()),
                Err(e) => {
                    tracing::debug!("rejoin attempt failed: {e}");
                    last_error = e.to_string();
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Rejoin::GaveUp(last_error);
            }
            // The last attempt is made at the deadline.
            let sleep = tokio::time::sleep(backoff.min(deadline - now));
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    command = self.commands.recv() => match command {
                        Some(Command::Leave(done)) => return Rejoin::Left(Some(done)),
                        None => return Rejoin::Left(None),
                        Some(command) => self.on_command(command).await,
                    },
                }
            }
            backoff = (backoff * 2).min(RECONNECT_MAX_BACKOFF);
        }
    }

    /// `joined` without our own earlier sessions (see `old_peer_ids`).
    fn without_ghosts(&self, mut joined: Joined) -> Joined {
        joined
            .peers
            .retain(|p| !self.old_peer_ids.contains(&p.peer_id));
        joined
            .tracks
            .retain(|t| !self.old_peer_ids.contains(&t.peer_id));
        joined
    }

    /// Makes `session` current: reconciles the remote tracks with what it announces, adds our
    /// tracks to its PeerConnection (new ids) and offers them.
    pub(super) async fn install(
        &mut self,
        mut session: Session,
        joined: Joined,
    ) -> Result<(), PeerError> {
        *lock(&self.shared.peer_id) = joined.peer_id.clone();
        *lock(&self.shared.room) = joined.room.clone();
        self.link.resume_token = Some(joined.resume_token.clone()).filter(|t| !t.is_empty());
        let mut ids = LocalIds::default();
        for local in &mut self.local {
            local.track_id = new_track_id(local.source);
            // A new session: the server wants every layer until it says otherwise.
            if let LocalControl::Video(control) = &local.control {
                control.want_all_layers();
            }
            let sent = add_local_rtp(&session, joined.peer_id.as_str(), local)
                .await
                .map_err(PeerError::webrtc("add a local transceiver"))?;
            session.local_tracks.push(sent);
            ids.record(local);
        }
        *lock(&self.shared.local_ids) = ids;

        // Remote tracks: slots of tracks that are gone are dropped, the others kept (their
        // consumers see frames resume); every present track is announced.
        let present: std::collections::HashSet<TrackId> =
            joined.tracks.iter().map(|t| t.track_id.clone()).collect();
        let gone: Vec<TrackId> = lock(&self.shared.videos)
            .keys()
            .chain(
                self.shared
                    .mixer
                    .remote_audios()
                    .iter()
                    .map(|a| a.track_id())
                    .collect::<Vec<_>>(),
            )
            .filter(|id| !present.contains(*id))
            .cloned()
            .collect();
        let present_videos = joined
            .tracks
            .iter()
            .filter(|t| t.kind == videoroom_protocol::MediaKind::Video)
            .map(|t| (t.peer_id.clone(), t.track_id.clone()))
            .collect();
        self.views.new_session(&present_videos);
        for track_id in gone {
            lock(&self.shared.videos).remove(&track_id);
            self.shared.mixer.remove_track(&track_id);
            self.events.emit(RoomEvent::TrackRemoved { track_id });
        }
        self.session = Some(session);
        for info in joined.tracks {
            self.add_track(info);
        }
        if !self.local.is_empty() {
            self.offer().await?;
        }
        self.events
            .emit(RoomEvent::ConnectionState(ConnectionState::Connecting));
        Ok(())
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            // Handled by the loops.
            Command::Leave(_) => {}
            Command::Send(message, reply) => {
                let _ = reply.send(self.send_now(message).await);
            }
            Command::CreateInvite(ttl_secs, moderator, reply) => {
                let message = ClientMessage::CreateInvite {
                    ttl_secs,
                    moderator,
                };
                match self.send_now(message).await {
                    Ok(()) => self.invites.push_back(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::SetEnabled(kind, enabled, reply) => {
                let _ = reply.send(self.set_enabled(kind, enabled).await);
            }
            Command::SwitchVideo(input, reply) => {
                let _ = reply.send(self.switch_video(input).await);
            }
            Command::StartScreen(source, settings, reply) => {
                let _ = reply.send(self.start_screen(source, settings).await);
            }
            Command::StopScreen(reply) => {
                let _ = reply.send(self.stop_screen(ScreenShareEnd::Stopped).await);
            }
            Command::SwitchAudio(input, reply) => {
                let _ = reply.send(self.switch_audio(input).await);
            }
            Command::SetOutput(output, reply) => {
                let _ = reply.send(self.set_output(output).await);
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.connection_stats().await);
            }
            // Sent at the end of this turn (see `flush_view_sizes`).
            Command::SetViewSizes(views) => {
                for view in views {
                    self.views.set(view);
                }
            }
        }
    }

    async fn connection_stats(&self) -> Option<ConnectionStats> {
        let session = self.session.as_ref()?;
        let report = session
            .pc
            .get_stats(std::time::Instant::now(), StatsSelector::None)
            .await;
        let mut stats = ConnectionStats::default();
        for inbound in report.inbound_rtp_streams() {
            stats.packets_received += inbound.received_rtp_stream_stats.packets_received;
            stats.packets_lost += inbound.received_rtp_stream_stats.packets_lost;
        }
        if let Some(pair) = report
            .candidate_pairs()
            .find(|p| p.nominated)
            .or_else(|| report.candidate_pairs().max_by_key(|p| p.bytes_received))
        {
            stats.bytes_received = pair.bytes_received;
            stats.bytes_sent = pair.bytes_sent;
            if pair.current_round_trip_time > 0.0 {
                stats.rtt_ms = Some(pair.current_round_trip_time * 1000.0);
            }
        }
        Some(stats)
    }

    async fn on_server_message(&mut self, message: ServerMessage) -> Option<SessionEnd> {
        match message {
            ServerMessage::SdpAnswer { sdp } => self.on_answer(sdp).await,
            ServerMessage::SdpOffer { sdp } => self.on_offer(sdp).await,
            ServerMessage::IceCandidate { candidate } => self.on_candidate(candidate).await,
            ServerMessage::PeerJoined { peer } if self.old_peer_ids.contains(&peer.peer_id) => {}
            ServerMessage::PeerLeft { peer_id } if self.old_peer_ids.contains(&peer_id) => {
                tracing::debug!(peer = %peer_id, "our previous session is gone");
            }
            ServerMessage::PeerUpdated { peer } if self.old_peer_ids.contains(&peer.peer_id) => {}
            ServerMessage::PeerJoined { peer } => {
                if let Some(session) = self.session.as_mut() {
                    session.peers.insert(peer.peer_id.clone(), peer.clone());
                }
                self.events.emit(RoomEvent::PeerJoined(peer))
            }
            ServerMessage::PeerLeft { peer_id } => {
                if let Some(session) = self.session.as_mut() {
                    session.peers.remove(&peer_id);
                }
                self.events.emit(RoomEvent::PeerLeft { peer_id })
            }
            ServerMessage::PeerUpdated { peer } => {
                if peer.peer_id == *lock(&self.shared.peer_id) {
                    lock(&self.shared.room).moderator = peer.moderator;
                }
                if let Some(session) = self.session.as_mut()
                    && let Some(known) = session.peers.get_mut(&peer.peer_id)
                {
                    *known = peer.clone();
                }
                self.events.emit(RoomEvent::PeerUpdated(peer))
            }
            ServerMessage::Chat { message } => self.events.emit(RoomEvent::Chat(message)),
            ServerMessage::LayersWanted {
                track_id,
                active,
                rids,
            } => {
                if let Some(LocalControl::Video(control)) = self
                    .local
                    .iter()
                    .find(|t| t.track_id == track_id)
                    .map(|t| &t.control)
                {
                    tracing::debug!(track = %track_id, active, ?rids, "layers wanted");
                    control.set_wanted_layers(active, &rids);
                }
            }
            ServerMessage::ActiveSpeakers { peer_ids } => {
                self.events.emit(RoomEvent::ActiveSpeakers(peer_ids))
            }
            ServerMessage::RoomUpdated { locked, by } => {
                lock(&self.shared.room).locked = locked;
                self.events.emit(RoomEvent::RoomLocked { locked, by })
            }
            ServerMessage::Moderated { action, by } => self.on_moderated(action, by).await,
            ServerMessage::Removed { by, reason } => {
                let why = self.removal_reason(&by, reason.as_deref());
                self.events.emit(RoomEvent::Removed { by, reason });
                return Some(SessionEnd::Ended(why));
            }
            ServerMessage::MeetingEnded { by } => {
                let why = format!("{} ended the meeting", self.name_of(&by));
                self.events.emit(RoomEvent::MeetingEnded { by });
                return Some(SessionEnd::Ended(why));
            }
            ServerMessage::TracksAdded { tracks } => {
                for info in tracks {
                    if !self.old_peer_ids.contains(&info.peer_id) {
                        self.add_track(info);
                    }
                }
            }
            ServerMessage::TracksRemoved { track_ids } => {
                for track_id in track_ids {
                    self.views.track_removed(&track_id);
                    if let Some(session) = self.session.as_mut() {
                        if session.remote.remove(&track_id).is_none() {
                            // Not announced to us (a ghost's track): nothing to remove.
                            continue;
                        }
                        if let Some(task) = session.receivers.remove(&track_id) {
                            task.abort();
                        }
                    }
                    lock(&self.shared.videos).remove(&track_id);
                    self.shared.mixer.remove_track(&track_id);
                    self.events.emit(RoomEvent::TrackRemoved { track_id });
                }
            }
            ServerMessage::TrackUpdated { track } => {
                let session = self.session.as_mut()?;
                if !session.remote.contains_key(&track.track_id) {
                    // One of ours (the server echoes our own updates) or unknown.
                    return None;
                }
                let was_muted = session.remote.get(&track.track_id).map(|t| t.muted);
                let track_id = track.track_id.clone();
                let muted = track.muted;
                session.remote.insert(track_id.clone(), track);
                if was_muted != Some(muted) {
                    self.events.emit(if muted {
                        RoomEvent::TrackMuted { track_id }
                    } else {
                        RoomEvent::TrackUnmuted { track_id }
                    });
                }
            }
            ServerMessage::InviteCreated {
                token,
                url,
                expires_at,
            } => {
                if let Some(reply) = self.invites.pop_front() {
                    let _ = reply.send(Ok(social::Invite {
                        token,
                        url,
                        expires_at,
                    }));
                }
            }
            // A refusal of a `create_invite` in flight answers it (the server handles a
            // session's messages in order, so it is the oldest one's).
            ServerMessage::Error { code, message }
                if !self.invites.is_empty()
                    && matches!(
                        code,
                        ErrorCode::NotModerator
                            | ErrorCode::InvalidMessage
                            | ErrorCode::RateLimited
                            | ErrorCode::Internal
                    ) =>
            {
                if let Some(reply) = self.invites.pop_front() {
                    let _ = reply.send(Err(RoomError::Server { code, message }));
                }
            }
            ServerMessage::Error { code, message } => {
                tracing::warn!(?code, message, "server error");
                // An offer of ours the server could not take gets this instead of an answer.
                if matches!(code, ErrorCode::InvalidSdp | ErrorCode::Internal)
                    && self.session.as_ref().is_some_and(|s| s.making_offer)
                {
                    self.abandon_offer().await;
                }
                self.events
                    .emit(RoomEvent::Error(RoomError::Server { code, message }));
            }
            // The server is shutting down or restarting: a session loss like any other; the
            // room rejoins if it may.
            ServerMessage::Closing { reason } => {
                return Some(SessionEnd::Lost(format!("server closing: {reason}")));
            }
            ServerMessage::Pong { .. } => {}
            other => tracing::debug!(?other, "unexpected message ignored"),
        }
        None
    }

    async fn on_pc_event(&mut self, event: PcEvent) -> Option<SessionEnd> {
        match event {
            PcEvent::LocalCandidate(init) => {
                let candidate = videoroom_webrtc::from_rtc_candidate(init);
                if let Some(session) = self.session.as_mut() {
                    session
                        .send(ClientMessage::IceCandidate { candidate })
                        .await;
                }
            }
            PcEvent::State(state) => {
                tracing::info!(%state, "media connection state");
                let mapped = match state {
                    RTCPeerConnectionState::Connected => ConnectionState::Connected,
                    RTCPeerConnectionState::Disconnected => ConnectionState::Reconnecting,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        return Some(SessionEnd::Lost(format!("media connection {state}")));
                    }
                    _ => ConnectionState::Connecting,
                };
                let connected = mapped == ConnectionState::Connected;
                if let Some(session) = self.session.as_mut() {
                    session.connected = connected;
                    for local in &self.local {
                        if let Some(sent) =
                            session.local_tracks.iter().find(|r| r.ssrc == local.ssrc)
                        {
                            local
                                .binding
                                .send_replace(connected.then(|| Arc::clone(&sent.rtp)));
                        }
                    }
                }
                self.events.emit(RoomEvent::ConnectionState(mapped));
            }
            PcEvent::IceState(state) => {
                tracing::debug!(%state, "ICE connection state");
                let connected = matches!(
                    state,
                    RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
                );
                if let Some(session) = self.session.as_mut() {
                    session.ice_connected = connected;
                }
                // The path ICE had is gone: a held TCP candidate is the way back.
                if matches!(
                    state,
                    RTCIceConnectionState::Disconnected | RTCIceConnectionState::Failed
                ) {
                    self.release_tcp_candidates().await;
                }
            }
            PcEvent::Track(track) => self.on_remote_track(track).await,
        }
        None
    }
}

/// Waits until `at`; never returns without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
