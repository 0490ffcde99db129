//! Negotiation on the current session (`docs/protocol.md`): our offer with the declared tracks,
//! the server's answer (or its refusal: rollback), the server's offers (ignored while ours is
//! out: the glare rule) and ICE candidates (kept until the server's description is applied).
//!
//! The server's TCP candidates (ICE over TCP, for networks that block UDP) are held back for
//! `peer::TCP_HOLD_BACK` after they could first be added, and added only if ICE has not
//! connected by then (or later loses its path): the PeerConnection, the controlling agent,
//! nominates the first pair that works, so TCP would otherwise race a working UDP path.

use super::local::LocalTrack;
use super::task::RoomTask;
use super::{RoomError, RoomEvent};
use crate::peer::{self, PeerError};
use videoroom_protocol::{ClientMessage, IceCandidate, PublishedTrack};
use webrtc::peer_connection::{RTCIceCandidateInit, RTCSessionDescription};

/// Candidates from the server kept until its description is applied; more are dropped.
const MAX_PENDING_CANDIDATES: usize = 64;

impl RoomTask {
    pub(super) fn media_error(&self, what: &str, e: impl std::fmt::Display) {
        tracing::warn!("{what}: {e}");
        self.events
            .emit(RoomEvent::Error(RoomError::Media(format!("{what}: {e}"))));
    }

    /// Sends our offer with the declared tracks (or, if one is out, offers again after its
    /// answer).
    pub(super) async fn offer(&mut self) -> Result<(), PeerError> {
        let tracks: Vec<PublishedTrack> = self.local.iter().map(LocalTrack::declared).collect();
        let Some(session) = self.session.as_mut() else {
            return Ok(());
        };
        if session.making_offer {
            session.offer_again = true;
            return Ok(());
        }
        let offer = session
            .pc
            .create_offer(None)
            .await
            .map_err(PeerError::webrtc("create offer"))?;
        session
            .pc
            .set_local_description(offer)
            .await
            .map_err(PeerError::webrtc("apply own offer"))?;
        let Some(local) = session.pc.local_description().await else {
            return Err(PeerError::WebRtc {
                what: "read own offer",
                source: webrtc::error::Error::Other("no local description".into()),
            });
        };
        session.making_offer = true;
        session
            .send(ClientMessage::SdpOffer {
                sdp: local.sdp,
                tracks,
            })
            .await;
        Ok(())
    }

    pub(super) async fn on_answer(&mut self, sdp: String) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if !session.making_offer {
            tracing::warn!("`sdp_answer` without an offer of ours; ignored");
            return;
        }
        session.making_offer = false;
        let applied = match RTCSessionDescription::answer(sdp) {
            Ok(answer) => session.pc.set_remote_description(answer).await,
            Err(e) => Err(e),
        };
        match applied {
            Ok(()) => self.remote_applied().await,
            Err(e) => {
                self.media_error("server answer could not be applied", e);
                self.abandon_offer().await;
            }
        }
        if let Some(session) = self.session.as_mut()
            && std::mem::take(&mut session.offer_again)
            && let Err(e) = self.offer().await
        {
            self.media_error("renegotiation", e);
        }
    }

    /// Drops our unanswered offer (rolls the PeerConnection back to stable), so that the
    /// server's offers are taken again. Not re-offered: the same offer would fail the same way;
    /// the next change offers afresh.
    pub(super) async fn abandon_offer(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        session.making_offer = false;
        session.offer_again = false;
        match RTCSessionDescription::rollback(None) {
            Ok(rollback) => {
                if let Err(e) = session.pc.set_local_description(rollback).await {
                    tracing::debug!("rollback of our offer: {e}");
                }
            }
            Err(e) => tracing::debug!("rollback description: {e}"),
        }
    }

    pub(super) async fn on_offer(&mut self, sdp: String) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if session.making_offer {
            // Glare: we win; the server rolls back and offers again after our answer.
            tracing::debug!("server offer crossed ours; ignored");
            return;
        }
        let offer = match RTCSessionDescription::offer(sdp) {
            Ok(offer) => offer,
            Err(e) => return self.media_error("server offer is not valid SDP", e),
        };
        if let Err(e) = session.pc.set_remote_description(offer).await {
            return self.media_error("server offer could not be applied", e);
        }
        self.remote_applied().await;
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let answer = match session.pc.create_answer(None).await {
            Ok(answer) => answer,
            Err(e) => return self.media_error("cannot answer the server offer", e),
        };
        if let Err(e) = session.pc.set_local_description(answer).await {
            return self.media_error("cannot apply own answer", e);
        }
        match session.pc.local_description().await {
            Some(local) => {
                session
                    .send(ClientMessage::SdpAnswer { sdp: local.sdp })
                    .await
            }
            None => self.media_error("own answer", "missing after negotiation"),
        }
    }

    async fn remote_applied(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        session.remote_set = true;
        for candidate in std::mem::take(&mut session.pending_candidates) {
            self.add_candidate(candidate).await;
        }
    }

    /// Adds a server candidate to the PeerConnection, or holds a TCP one back.
    async fn add_candidate(&mut self, candidate: RTCIceCandidateInit) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if peer::is_tcp_candidate(&candidate.candidate) && !session.tcp_released {
            session.held_tcp.push(candidate);
            session
                .tcp_release_at
                .get_or_insert_with(|| tokio::time::Instant::now() + peer::TCP_HOLD_BACK);
            return;
        }
        if let Err(e) = session.pc.add_ice_candidate(candidate).await {
            tracing::debug!("server candidate refused: {e}");
        }
    }

    /// The hold-back is over, or ICE lost its path: adds the held TCP candidates unless ICE is
    /// connected (then they stay held for a later loss).
    pub(super) async fn release_tcp_candidates(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        session.tcp_release_at = None;
        if session.ice_connected || session.held_tcp.is_empty() {
            return;
        }
        session.tcp_released = true;
        let held = std::mem::take(&mut session.held_tcp);
        tracing::info!(
            candidates = held.len(),
            "ICE has not connected over UDP: trying the server's TCP candidate"
        );
        for candidate in held {
            if let Err(e) = session.pc.add_ice_candidate(candidate).await {
                tracing::debug!("server TCP candidate refused: {e}");
            }
        }
    }

    pub(super) async fn on_candidate(&mut self, c: IceCandidate) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if c.candidate.trim().is_empty() {
            return;
        }
        let init = videoroom_webrtc::to_rtc_candidate(c);
        if !session.remote_set {
            if session.pending_candidates.len() < MAX_PENDING_CANDIDATES {
                session.pending_candidates.push(init);
            } else {
                tracing::warn!("too many candidates before the server's description; dropped");
            }
            return;
        }
        self.add_candidate(init).await;
    }
}
