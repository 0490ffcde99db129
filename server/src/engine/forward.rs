//! Forwarding in the media core: one published track's [`Fwd`] copies each packet its
//! publisher's core decrypted to every [`Leg`], rewriting SSRC, payload type and (around held
//! packets) sequence number, and writes it into the subscriber's core; keyframe requests from
//! legs are coalesced into PLIs to the publisher.

use super::core::{FwdKey, LegKey, MediaCore, PeerKey, guarded, log_rtc_error};
use super::keyframe::{KEYFRAME_INTERVAL, KeyframeGate};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// One subscriber's end of a forwarded track.
pub(super) struct Leg {
    pub(super) peer: PeerKey,
    pub(super) sender_id: RTCRtpSenderId,
    pub(super) ssrc: u32,
    pub(super) payload_type: u8,
    pub(super) local_track_id: String,
    /// Packets taken out of this leg's sequence on purpose (held): subtracted from the
    /// publisher's sequence numbers, so the subscriber sees no gap it would NACK in vain.
    pub(super) seq_offset: u16,
}

/// One published track: its publisher's receiver and every leg.
pub(super) struct Fwd {
    pub(super) publisher: PeerKey,
    pub(super) receiver_id: RTCRtpReceiverId,
    pub(super) media_ssrc: u32,
    pub(super) kind: RtpCodecKind,
    pub(super) held: Arc<AtomicBool>,
    pub(super) gate: KeyframeGate,
    pub(super) legs: HashMap<LegKey, Leg>,
}

impl Fwd {
    /// A forwarder for the track `receiver_id` of `publisher` (SSRC `media_ssrc`), no legs yet.
    pub(super) fn new(
        publisher: PeerKey,
        receiver_id: RTCRtpReceiverId,
        media_ssrc: u32,
        kind: RtpCodecKind,
        held: Arc<AtomicBool>,
    ) -> Self {
        Self {
            publisher,
            receiver_id,
            media_ssrc,
            kind,
            held,
            gate: KeyframeGate::new(KEYFRAME_INTERVAL),
            legs: HashMap::new(),
        }
    }
}

impl MediaCore {
    /// Starts forwarding `fwd` to `peer` on its sender `sender` (negotiated, connected).
    /// Video subscribers get a keyframe request.
    #[allow(clippy::too_many_arguments)]
    pub fn subscribe(
        &mut self,
        now: Instant,
        fwd: FwdKey,
        leg: LegKey,
        peer: PeerKey,
        sender_id: RTCRtpSenderId,
        ssrc: u32,
        payload_type: u8,
    ) {
        let Some(sub) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some(local_track_id) = sub
            .pc
            .rtp_sender(sender_id)
            .map(|s| s.track().track_id().to_owned())
        else {
            return;
        };
        let Some(f) = self.fwds.get_mut(&fwd) else {
            return;
        };
        sub.legs.insert(local_track_id.clone(), (fwd, leg));
        f.legs.insert(
            leg,
            Leg {
                peer,
                sender_id,
                ssrc,
                payload_type,
                local_track_id,
                seq_offset: 0,
            },
        );
        if f.kind == RtpCodecKind::Video {
            self.request_keyframe(now, fwd);
        }
        self.drain(now);
    }

    /// Stops forwarding `fwd` on `leg`.
    pub fn unsubscribe(&mut self, fwd: FwdKey, leg: LegKey) {
        let Some(f) = self.fwds.get_mut(&fwd) else {
            return;
        };
        if let Some(l) = f.legs.remove(&leg)
            && let Some(sub) = self.peers.get_mut(&l.peer)
        {
            sub.legs.remove(&l.local_track_id);
        }
    }

    /// A subscriber (or the room) wants a keyframe of `fwd`: coalesced by its gate.
    pub fn request_keyframe(&mut self, now: Instant, fwd: FwdKey) {
        let Some(f) = self.fwds.get_mut(&fwd) else {
            return;
        };
        if f.kind == RtpCodecKind::Video && f.gate.request(now) {
            self.send_pli(now, fwd);
        }
        self.drain(now);
    }

    pub(super) fn request_keyframe_inner(&mut self, now: Instant, fwd: FwdKey) {
        if let Some(f) = self.fwds.get_mut(&fwd)
            && f.kind == RtpCodecKind::Video
            && f.gate.request(now)
        {
            self.send_pli(now, fwd);
        }
    }

    pub(super) fn send_pli(&mut self, now: Instant, fwd: FwdKey) {
        let Some(f) = self.fwds.get(&fwd) else {
            return;
        };
        let (publisher, receiver_id, media_ssrc) = (f.publisher, f.receiver_id, f.media_ssrc);
        let Some(peer) = self.peers.get_mut(&publisher) else {
            return;
        };
        self.stats.keyframe_requests += 1;
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        if let Some(mut receiver) = peer.pc.rtp_receiver(receiver_id)
            && let Err(e) = receiver.write_rtcp(now, vec![Box::new(pli)])
        {
            log_rtc_error(publisher, &mut peer.errors_logged, &e);
        }
        self.mark(publisher);
    }

    /// The per-packet path: one decrypted packet of a publisher to every leg.
    pub(super) fn forward(
        &mut self,
        now: Instant,
        key: PeerKey,
        track_id: &str,
        mut packet: rtc::rtp::Packet,
    ) {
        let size = (12 + 4 * packet.header.csrc.len() + packet.payload.len()) as u64;
        self.stats.rtp_in += 1;
        self.stats.rtp_bytes_in += size;
        let Some(fwd) = self.peers.get(&key).and_then(|p| p.published.get(track_id)) else {
            return;
        };
        let Some(f) = self.fwds.get_mut(fwd) else {
            return;
        };
        if f.held.load(Ordering::Relaxed) {
            self.stats.held += 1;
            for leg in f.legs.values_mut() {
                leg.seq_offset = leg.seq_offset.wrapping_add(1);
            }
            return;
        }
        // Header extension ids are negotiated per connection; the publisher's would mislabel
        // them on another leg, so none are forwarded.
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        packet.header.extensions_padding = 0;
        for leg in f.legs.values() {
            let Some(sub) = self.peers.get_mut(&leg.peer) else {
                continue;
            };
            let mut p = packet.clone();
            p.header.ssrc = leg.ssrc;
            p.header.payload_type = leg.payload_type;
            p.header.sequence_number = p.header.sequence_number.wrapping_sub(leg.seq_offset);
            let sender_id = leg.sender_id;
            let written = guarded(sub, |pc| match pc.rtp_sender(sender_id) {
                Some(mut sender) => sender.write_rtp(now, p),
                None => Err(rtc::shared::error::Error::ErrRTPSenderNotExisted),
            })
            .unwrap_or(Err(rtc::shared::error::Error::ErrRTPSenderNotExisted));
            match written {
                Ok(()) => {
                    self.stats.rtp_out += 1;
                    self.stats.rtp_bytes_out += size;
                }
                Err(e) => {
                    self.stats.rtp_dropped += 1;
                    log_rtc_error(leg.peer, &mut sub.errors_logged, &e);
                }
            }
            if !sub.dirty {
                sub.dirty = true;
                self.dirty.push(leg.peer);
            }
        }
    }
}
