//! Forwarding in the media core: one published track's [`Fwd`] copies each packet its
//! publisher's core decrypted to every [`Leg`] that gets that packet's layer, rewriting SSRC,
//! payload type, sequence number, timestamp and VP8 picture id (`layers.rs` decides), and writes
//! it into the subscriber's core; keyframe requests from legs are coalesced into PLIs to the
//! publisher, per layer.

use super::core::{CoreEvent, FwdKey, LegKey, MediaCore, PeerKey, guarded, log_rtc_error};
use super::layers::{
    Demand, Layer, LegStream, MAX_LAYERS, UP_HOLD, UpBlock, Verdict, View, choose, ideal,
    split_budget_fixed, within_budget, within_budget_any,
};
use super::speakers::{LevelMeter, parse_audio_level};
use super::vp8;
use bytes::BytesMut;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::debug;

/// How often every leg's layer is chosen again (layers come and go, sizes change).
const RESELECT_EVERY: Duration = Duration::from_millis(500);

/// What an audio leg is assumed to take of a subscriber's downlink (Opus with overhead).
const AUDIO_ALLOWANCE_BPS: u64 = 50_000;

/// What the core knows of one layer of a published track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Its `rid`, with simulcast.
    pub rid: Option<String>,
    /// Its SSRC.
    pub ssrc: u32,
    /// Width and height of its last keyframe.
    pub size: Option<(u16, u16)>,
}

/// One subscriber's end of a forwarded track.
pub(super) struct Leg {
    pub(super) peer: PeerKey,
    pub(super) sender_id: RTCRtpSenderId,
    pub(super) ssrc: u32,
    pub(super) payload_type: u8,
    pub(super) local_track_id: String,
    /// Which layer it gets and the rewriting that keeps its stream continuous.
    pub(super) stream: LegStream,
}

/// One published track: its publisher's receiver, its layers (one without simulcast) and
/// every leg.
pub(super) struct Fwd {
    pub(super) publisher: PeerKey,
    /// The publisher's `msid` track id.
    pub(super) track_id: String,
    /// The audio-level header extension's id on the publisher's connection, if negotiated.
    audio_level_id: Option<u8>,
    /// The audio track's levels (with the audio-level extension).
    pub(super) meter: Option<LevelMeter>,
    pub(super) receiver_id: RTCRtpReceiverId,
    pub(super) kind: RtpCodecKind,
    pub(super) held: Arc<AtomicBool>,
    pub(super) layers: Vec<Layer>,
    pub(super) legs: HashMap<LegKey, Leg>,
    /// Which layers the publisher is asked to send.
    demand: Demand,
    /// When the legs' layers are chosen again.
    next_reselect: Option<Instant>,
}

impl Fwd {
    /// A forwarder for the track `receiver_id` of `publisher`, first seen on `ssrc` (layer
    /// `rid`), no legs yet.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        publisher: PeerKey,
        track_id: String,
        receiver_id: RTCRtpReceiverId,
        ssrc: u32,
        rid: Option<String>,
        kind: RtpCodecKind,
        held: Arc<AtomicBool>,
    ) -> Self {
        Self {
            publisher,
            track_id,
            audio_level_id: None,
            meter: None,
            receiver_id,
            kind,
            held,
            layers: vec![Layer::new(rid, ssrc)],
            legs: HashMap::new(),
            demand: Demand::default(),
            next_reselect: None,
        }
    }

    /// Reads the audio-level extension of id `id` (an audio track whose publisher sends it).
    pub(super) fn with_audio_level(mut self, id: Option<u8>) -> Self {
        self.audio_level_id = id;
        self.meter = id.map(|_| LevelMeter::default());
        self
    }

    /// Another layer of the track opened (simulcast). Returns false past [`MAX_LAYERS`].
    pub(super) fn add_layer(&mut self, ssrc: u32, rid: Option<String>) -> bool {
        if self.layers.iter().any(|l| l.ssrc == ssrc) {
            return true;
        }
        if self.layers.len() >= MAX_LAYERS {
            return false;
        }
        self.layers.push(Layer::new(rid, ssrc));
        self.next_reselect = None;
        true
    }

    /// Chooses every leg's layer again; returns the layers whose keyframe is wanted.
    /// Returns the layers whose keyframe is wanted, and the layers the publisher should send
    /// when that changed (dynacast: a bit per layer index).
    fn reselect(
        &mut self,
        now: Instant,
        budgets: &HashMap<PeerKey, u64>,
    ) -> (Vec<usize>, Option<u8>) {
        let mut keyframes = Vec::new();
        if self.kind != RtpCodecKind::Video {
            return (keyframes, None);
        }
        for layer in &mut self.layers {
            layer.measure(now);
        }
        let area = |layers: &[Layer], i: Option<usize>| {
            i.and_then(|i| layers.get(i))
                .and_then(|l| l.size)
                .map_or(0, |(w, h)| u32::from(w) * u32::from(h))
        };
        let mut demand = 0u8;
        for leg in self.legs.values_mut() {
            let for_view = choose(leg.stream.view, &self.layers, now);
            let current = leg.stream.current;
            let mut target = within_budget(
                for_view,
                &self.layers,
                now,
                budgets.get(&leg.peer).copied(),
                current,
            );
            let (target_area, current_area) =
                (area(&self.layers, target), area(&self.layers, current));
            if target != for_view && target_area < current_area {
                leg.stream.down_at = Some(now);
                leg.stream.up_block =
                    Some(UpBlock::after_down(leg.stream.up_block, current_area, now));
            } else if target_area > current_area
                && current.is_some_and(|c| self.layers[c].live(now))
                && (leg
                    .stream
                    .down_at
                    .is_some_and(|at| now.saturating_duration_since(at) < UP_HOLD)
                    || leg
                        .stream
                        .up_block
                        .is_some_and(|b| !b.allows(target_area, now))
                    || target.is_some_and(|t| !self.layers[t].settled(now)))
            {
                target = current;
            }
            if target != leg.stream.target {
                debug!(
                    subscriber = leg.peer,
                    from = ?leg.stream.target,
                    to = ?target,
                    for_view = ?for_view,
                    budget = ?budgets.get(&leg.peer),
                    "layer target"
                );
            }
            if leg.stream.set_target(target, now)
                && let Some(t) = target
                && !keyframes.contains(&t)
            {
                keyframes.push(t);
            }
            // What to ask the publisher for: the view's layer if the budget would carry it
            // (by what it cost when it last flowed), and what the leg gets or waits for.
            let budget = budgets.get(&leg.peer).copied();
            let ask = within_budget_any(
                ideal(leg.stream.view, &self.layers),
                &self.layers,
                budget,
                leg.stream.current,
            );
            for layer in [ask, target, leg.stream.current].into_iter().flatten() {
                demand |= 1 << layer;
            }
        }
        (keyframes, self.demand.update(now, demand))
    }

    /// The rids of the layers in `mask`, and whether any layer of the track is in it.
    fn wanted(&self, mask: u8) -> (Vec<String>, bool) {
        let rids = self
            .layers
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .filter_map(|(_, l)| l.rid.clone())
            .collect();
        let all = (1u16 << self.layers.len()) - 1;
        (rids, u16::from(mask) & all != 0)
    }

    /// The layer index of `ssrc`.
    fn layer_of(&self, ssrc: u32) -> Option<usize> {
        self.layers.iter().position(|l| l.ssrc == ssrc)
    }
}

impl MediaCore {
    /// Starts forwarding `fwd` to `peer` on its sender `sender` (negotiated, connected), shown
    /// as `view`. A video leg starts at a keyframe of its layer, which is asked for.
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
        view: View,
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
        let stream = if f.kind == RtpCodecKind::Video {
            LegStream::video(view)
        } else {
            LegStream::audio()
        };
        f.legs.insert(
            leg,
            Leg {
                peer,
                sender_id,
                ssrc,
                payload_type,
                local_track_id,
                stream,
            },
        );
        self.reselect(now, fwd);
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

    /// The subscriber of `leg` shows the track as `view`: its layer is chosen again (and
    /// nothing is forwarded while it is hidden).
    pub fn set_view(&mut self, now: Instant, fwd: FwdKey, leg: LegKey, view: View) {
        let Some(l) = self.fwds.get_mut(&fwd).and_then(|f| f.legs.get_mut(&leg)) else {
            return;
        };
        if l.stream.view == view {
            return;
        }
        l.stream.view = view;
        self.reselect(now, fwd);
        self.drain(now);
    }

    /// Video legs whose subscriber hides the track (nothing is forwarded to them).
    pub fn paused_legs(&self) -> usize {
        self.fwds
            .values()
            .flat_map(|f| f.legs.values())
            .filter(|l| l.stream.view == View::Hidden)
            .count()
    }

    /// The layers of `fwd`, in the order they opened.
    pub fn layers(&self, fwd: FwdKey) -> Vec<LayerInfo> {
        self.fwds.get(&fwd).map_or_else(Vec::new, |f| {
            f.layers
                .iter()
                .map(|l| LayerInfo {
                    rid: l.rid.clone(),
                    ssrc: l.ssrc,
                    size: l.size,
                })
                .collect()
        })
    }

    /// A leg's layer and its switches so far (tests, stats).
    pub fn leg_layer(&self, fwd: FwdKey, leg: LegKey) -> Option<(Option<usize>, u64)> {
        let l = self.fwds.get(&fwd)?.legs.get(&leg)?;
        Some((l.stream.current, l.stream.switches))
    }

    /// The room wants a keyframe of `fwd` (a moderator let it through again): every layer a
    /// leg gets or waits for is asked, coalesced by its gate.
    pub fn request_keyframe(&mut self, now: Instant, fwd: FwdKey) {
        let Some(f) = self.fwds.get(&fwd) else {
            return;
        };
        let mut layers: Vec<usize> = f
            .legs
            .values()
            .filter_map(|l| l.stream.current.or(l.stream.target))
            .collect();
        layers.sort_unstable();
        layers.dedup();
        for layer in layers {
            self.request_layer_keyframe(now, fwd, layer);
        }
        self.drain(now);
    }

    /// A subscriber asked for a keyframe on its leg `leg` of `fwd`: the layer it gets (or
    /// waits for) is asked, coalesced.
    pub(super) fn request_leg_keyframe(&mut self, now: Instant, fwd: FwdKey, leg: LegKey) {
        let layer = self
            .fwds
            .get(&fwd)
            .and_then(|f| f.legs.get(&leg))
            .and_then(|l| l.stream.current.or(l.stream.target));
        if let Some(layer) = layer {
            self.request_layer_keyframe(now, fwd, layer);
        }
    }

    fn request_layer_keyframe(&mut self, now: Instant, fwd: FwdKey, layer: usize) {
        if let Some(f) = self.fwds.get_mut(&fwd)
            && f.kind == RtpCodecKind::Video
            && let Some(l) = f.layers.get_mut(layer)
            && l.gate.request(now)
        {
            self.send_pli(now, fwd, layer);
        }
    }

    /// Chooses the layer of every leg of `fwd` again and asks for the keyframes that needs.
    fn reselect(&mut self, now: Instant, fwd: FwdKey) {
        let Some(f) = self.fwds.get_mut(&fwd) else {
            return;
        };
        f.next_reselect = Some(now + RESELECT_EVERY);
        let subscribers: Vec<PeerKey> = f.legs.values().map(|l| l.peer).collect();
        let budgets: HashMap<PeerKey, u64> = subscribers
            .into_iter()
            .filter_map(|p| self.video_share(p, fwd).map(|b| (p, b)))
            .collect();
        let Some(f) = self.fwds.get_mut(&fwd) else {
            return;
        };
        let (keyframes, demand) = f.reselect(now, &budgets);
        if let Some(mask) = demand {
            let (rids, active) = f.wanted(mask);
            self.stats.layer_demand_changes += 1;
            self.events.push_back((
                f.publisher,
                CoreEvent::LayersWanted {
                    track_id: f.track_id.clone(),
                    rids,
                    active,
                },
            ));
        }
        for layer in keyframes {
            self.request_layer_keyframe(now, fwd, layer);
        }
    }

    /// The share of `peer`'s downlink estimate for its leg of `of`: the estimate less an
    /// allowance per audio leg, shared between its shown video legs by what each view calls for,
    /// a leg of one layer (a screen share) taking its rate first ([`split_budget_fixed`]). `None`
    /// without an estimate (no TWCC feedback yet).
    fn video_share(&self, peer: PeerKey, of: FwdKey) -> Option<u64> {
        let p = self.peers.get(&peer)?;
        let estimate = p.downlink.bps()?;
        let mut audio = 0u64;
        let mut wants: Vec<(FwdKey, (u64, bool))> = Vec::new();
        for (fwd, leg) in p.legs.values() {
            let Some(f) = self.fwds.get(fwd) else {
                continue;
            };
            if f.kind == RtpCodecKind::Audio {
                audio += 1;
                continue;
            }
            let Some(l) = f.legs.get(leg).filter(|l| l.stream.view != View::Hidden) else {
                continue;
            };
            let want = ideal(l.stream.view, &f.layers)
                .and_then(|i| f.layers.get(i))
                .map_or(0, |layer| layer.rate_bps as u64);
            // Simulcast (a rid, or several layers open) can come down; one plain layer cannot.
            let adaptable = f.layers.len() > 1 || f.layers.iter().any(|l| l.rid.is_some());
            wants.push((*fwd, (want, adaptable)));
        }
        let budget = estimate.saturating_sub(audio * AUDIO_ALLOWANCE_BPS);
        let rates: Vec<(u64, bool)> = wants.iter().map(|&(_, w)| w).collect();
        let shares = split_budget_fixed(budget, &rates);
        Some(
            wants
                .iter()
                .zip(shares)
                .find(|((fwd, _), _)| *fwd == of)
                .map_or(budget, |(_, share)| share),
        )
    }

    pub(super) fn send_pli(&mut self, now: Instant, fwd: FwdKey, layer: usize) {
        let Some(f) = self.fwds.get(&fwd) else {
            return;
        };
        let Some(media_ssrc) = f.layers.get(layer).map(|l| l.ssrc) else {
            return;
        };
        let (publisher, receiver_id) = (f.publisher, f.receiver_id);
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

    /// The per-packet path: one decrypted packet of a publisher to every leg of its layer.
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
        let Some(&fwd) = self.peers.get(&key).and_then(|p| p.published.get(track_id)) else {
            return;
        };
        let Some(f) = self.fwds.get_mut(&fwd) else {
            return;
        };
        let Some(layer) = f.layer_of(packet.header.ssrc) else {
            self.stats.rtp_unknown_layer += 1;
            return;
        };
        if packet.payload.is_empty() {
            // Padding only: a browser's bandwidth probe (on the media SSRC, as no RTX is
            // negotiated). Not forwarded, nor counted as the layer's media; each leg's sequence
            // skips it, so its subscriber sees no gap it would take for a lost packet.
            for leg in f.legs.values_mut() {
                leg.stream.skip(layer);
            }
            return;
        }
        let video = f.kind == RtpCodecKind::Video;
        let info = if video {
            vp8::parse(&packet.payload)
        } else {
            None
        };
        let mut reselect = f.next_reselect.is_none_or(|at| now >= at);
        {
            let l = &mut f.layers[layer];
            reselect |= video && !l.live(now);
            l.on_packet(now, size as usize);
            if let Some(size) = info.and_then(|i| i.size)
                && l.size != Some(size)
            {
                l.size = Some(size);
                reselect = true;
            }
        }
        let rank = rank_of(&f.layers, layer);
        self.stats.layer_packets[rank.min(MAX_LAYERS - 1)] += 1;
        if reselect && video {
            self.reselect(now, fwd);
        }
        let Some(f) = self.fwds.get_mut(&fwd) else {
            return;
        };
        if f.held.load(Ordering::Relaxed) {
            self.stats.held += 1;
            for leg in f.legs.values_mut() {
                leg.stream.skip(layer);
            }
            return;
        }
        if let (Some(id), Some(meter)) = (f.audio_level_id, f.meter.as_mut())
            && let Some((dbov, voice)) = packet
                .header
                .get_extension(id)
                .and_then(|v| parse_audio_level(&v))
        {
            meter.on_packet(dbov, voice);
        }
        // Header extension ids are negotiated per connection; the publisher's would mislabel
        // them on another leg, so none are forwarded.
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        packet.header.extensions_padding = 0;
        let need_keyframe = f.layers.len() > 1;
        for leg in f.legs.values_mut() {
            let (mut seq, mut ts) = (packet.header.sequence_number, packet.header.timestamp);
            let before = leg.stream.switches;
            let verdict =
                leg.stream
                    .on_packet(now, layer, &mut seq, &mut ts, info.as_ref(), need_keyframe);
            self.stats.layer_switches += leg.stream.switches - before;
            let Verdict::Forward { ids } = verdict else {
                continue;
            };
            let Some(sub) = self.peers.get_mut(&leg.peer) else {
                continue;
            };
            let mut p = packet.clone();
            p.header.ssrc = leg.ssrc;
            p.header.payload_type = leg.payload_type;
            p.header.sequence_number = seq;
            p.header.timestamp = ts;
            if let (Some((pic, tl0)), Some(info)) = (ids, info.as_ref()) {
                let mut payload = BytesMut::from(&p.payload[..]);
                vp8::rewrite(&mut payload, info, pic, tl0);
                p.payload = payload.freeze();
            }
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

/// Where `layer` ranks by picture area among the track's layers of known size (0 = smallest).
fn rank_of(layers: &[Layer], layer: usize) -> usize {
    let Some((w, h)) = layers[layer].size else {
        return 0;
    };
    let area = u32::from(w) * u32::from(h);
    layers
        .iter()
        .filter_map(|l| l.size)
        .filter(|&(w, h)| u32::from(w) * u32::from(h) < area)
        .count()
}
