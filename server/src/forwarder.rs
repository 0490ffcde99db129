//! Forwarding of one published track to its subscribers.
//!
//! A [`Forwarder`] task reads RTP from the publisher's remote track and offers each packet to every
//! subscriber's bounded queue with `try_send`: a full queue drops the packet for that subscriber
//! only, so one slow or dead subscriber never stalls the publisher or the others. A [`Subscription`]
//! task per subscriber drains its queue into the subscriber's own PeerConnection, rewriting SSRC
//! and payload type for that leg; NACKs on that leg are answered there by its NACK responder.
//!
//! Keyframe requests (a new subscriber, or PLI/FIR from one) pass through a [`KeyframeGate`], so
//! many subscribers asking at once cost the publisher one PLI per [`KEYFRAME_INTERVAL`].

use crate::metrics::Metrics;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use videoroom_protocol::{MediaKind, TrackId};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// Fewest time between two keyframe requests sent to one publisher track.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);
/// Packets a subscriber may have queued before the forwarder drops for it (~1 s of 1.5 Mbit/s video).
pub const SUBSCRIBER_QUEUE: usize = 256;

/// Coalesces keyframe requests: the first goes out at once, later ones within the interval are
/// merged into one sent when the interval ends. Pure logic over an explicit `now`.
#[derive(Debug, Clone)]
pub struct KeyframeGate {
    interval: Duration,
    last_sent: Option<Instant>,
    pending: bool,
}

impl KeyframeGate {
    /// A gate that lets one request through per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_sent: None,
            pending: false,
        }
    }

    /// A keyframe was asked for at `now`; returns whether to send a request now.
    pub fn request(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(last) if now < last + self.interval => {
                self.pending = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.pending = false;
                true
            }
        }
    }

    /// When a merged request is due, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.pending, self.last_sent) {
            (true, Some(last)) => Some(last + self.interval),
            _ => None,
        }
    }

    /// Time passed; returns whether the merged request is to be sent now.
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.deadline() {
            Some(due) if now >= due => {
                self.pending = false;
                self.last_sent = Some(now);
                true
            }
            _ => false,
        }
    }
}

/// Identifies one subscriber of one forwarder.
pub type SubscriberKey = u64;

enum Command {
    Subscribe {
        key: SubscriberKey,
        tx: mpsc::Sender<rtp::Packet>,
    },
    Unsubscribe {
        key: SubscriberKey,
    },
    RequestKeyframe,
}

/// Handle to a running forwarder; cloning it is cheap. The forwarder stops when its publisher's
/// track ends or when every handle is dropped.
#[derive(Clone)]
pub struct ForwarderHandle {
    commands: mpsc::Sender<Command>,
    held: Arc<AtomicBool>,
    /// The forwarded track's id.
    pub track_id: TrackId,
    /// Audio or video.
    pub kind: MediaKind,
}

impl ForwarderHandle {
    /// Starts sending packets to `tx`, and asks the publisher for a keyframe.
    pub fn subscribe(&self, key: SubscriberKey, tx: mpsc::Sender<rtp::Packet>) {
        self.send(Command::Subscribe { key, tx });
    }

    /// Stops sending to `key`.
    pub fn unsubscribe(&self, key: SubscriberKey) {
        self.send(Command::Unsubscribe { key });
    }

    /// A subscriber asked for a keyframe (PLI or FIR).
    pub fn request_keyframe(&self) {
        self.send(Command::RequestKeyframe);
    }

    /// Holds the track back (a moderator muted it: nothing is forwarded, whatever the publisher
    /// sends) or lets it through again (its publisher unmuted it). Video resumes with a keyframe.
    pub fn set_held(&self, held: bool) {
        let was = self.held.swap(held, Ordering::Relaxed);
        if was && !held && self.kind == MediaKind::Video {
            self.request_keyframe();
        }
    }

    fn send(&self, command: Command) {
        // Control messages are rare; a full queue (1024) means the forwarder is wedged, and a
        // closed one that it has ended. Either way there is no one to deliver to.
        if let Err(e) = self.commands.try_send(command) {
            debug!(track = %self.track_id, "forwarder command not delivered: {e}");
        }
    }
}

/// The forwarding task of one published track.
pub struct Forwarder {
    track: Arc<dyn TrackRemote>,
    media_ssrc: u32,
    commands: mpsc::Receiver<Command>,
    subscribers: HashMap<SubscriberKey, mpsc::Sender<rtp::Packet>>,
    gate: KeyframeGate,
    metrics: Arc<Metrics>,
    kind: MediaKind,
    held: Arc<AtomicBool>,
}

impl Forwarder {
    /// Spawns the forwarder for `track`; `on_end` runs when the publisher's track ends.
    pub fn spawn(
        track: Arc<dyn TrackRemote>,
        media_ssrc: u32,
        track_id: TrackId,
        kind: MediaKind,
        metrics: Arc<Metrics>,
        on_end: impl FnOnce() + Send + 'static,
    ) -> ForwarderHandle {
        let (tx, rx) = mpsc::channel(1024);
        let held = Arc::new(AtomicBool::new(false));
        let forwarder = Forwarder {
            held: Arc::clone(&held),
            track,
            media_ssrc,
            commands: rx,
            subscribers: HashMap::new(),
            gate: KeyframeGate::new(KEYFRAME_INTERVAL),
            metrics,
            kind,
        };
        let span = tracing::info_span!(parent: None, "forwarder", track = %track_id, ?kind);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                forwarder.run().await;
                on_end();
            },
            span,
        ));
        ForwarderHandle {
            commands: tx,
            held,
            track_id,
            kind,
        }
    }

    async fn run(mut self) {
        self.metrics.tracks.inc();
        loop {
            let deadline = self.gate.deadline();
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                _ = sleep_until_opt(deadline) => {
                    if self.gate.poll(Instant::now()) {
                        self.send_pli().await;
                    }
                }
                event = self.track.poll() => match event {
                    Some(TrackRemoteEvent::OnRtpPacket(packet)) => self.forward(packet),
                    Some(TrackRemoteEvent::OnEnded) | None => break,
                    Some(_) => {}
                },
            }
        }
        self.metrics.tracks.dec();
        info!(subscribers = self.subscribers.len(), "forwarding ended");
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Subscribe { key, tx } => {
                self.subscribers.insert(key, tx);
                if self.kind == MediaKind::Video {
                    self.keyframe_wanted().await;
                }
            }
            Command::Unsubscribe { key } => {
                self.subscribers.remove(&key);
            }
            Command::RequestKeyframe => self.keyframe_wanted().await,
        }
    }

    async fn keyframe_wanted(&mut self) {
        if self.gate.request(Instant::now()) {
            self.send_pli().await;
        }
    }

    async fn send_pli(&self) {
        self.metrics.keyframe_requests.inc();
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: self.media_ssrc,
        };
        if let Err(e) = self.track.write_rtcp(vec![Box::new(pli)]).await {
            debug!("keyframe request not sent: {e}");
        }
    }

    /// The per-packet path: strip what is negotiated per leg, then offer to every subscriber.
    fn forward(&mut self, mut packet: rtp::Packet) {
        let size = (packet.header.marshal_size_hint() + packet.payload.len()) as u64;
        self.metrics.rtp_packets_in.inc();
        self.metrics.rtp_bytes_in.inc_by(size);
        if self.held.load(Ordering::Relaxed) {
            self.metrics.held_packets.inc();
            return;
        }
        // Header extension ids are negotiated per connection; forwarding the publisher's ids
        // would mislabel them on another leg, so none are forwarded.
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        packet.header.extensions_padding = 0;
        let mut closed = Vec::new();
        for (key, tx) in &self.subscribers {
            match tx.try_send(packet.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.metrics.dropped_packets.inc();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => closed.push(*key),
            };
        }
        for key in closed {
            self.subscribers.remove(&key);
        }
    }
}

trait HeaderSize {
    fn marshal_size_hint(&self) -> usize;
}

impl HeaderSize for rtp::header::Header {
    fn marshal_size_hint(&self) -> usize {
        12 + 4 * self.csrc.len()
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// One subscriber's end of one forwarded track: the queue the forwarder fills, drained into the
/// subscriber's PeerConnection with the SSRC and payload type of that leg.
pub struct Subscription;

impl Subscription {
    /// Spawns the writer (queue → subscriber's connection) and the feedback reader (subscriber's
    /// PLI/FIR → publisher) for a negotiated forwarded track. Both end when the subscriber's
    /// connection unbinds the track or the forwarder drops the queue.
    pub fn spawn(
        track: Arc<TrackLocalStaticRTP>,
        ssrc: u32,
        payload_type: u8,
        mut rx: mpsc::Receiver<rtp::Packet>,
        forwarder: ForwarderHandle,
        metrics: Arc<Metrics>,
    ) {
        let writer_track = Arc::clone(&track);
        let writer_metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut failures = 0u32;
            while let Some(mut packet) = rx.recv().await {
                packet.header.ssrc = ssrc;
                packet.header.payload_type = payload_type;
                let size = (packet.header.marshal_size_hint() + packet.payload.len()) as u64;
                match writer_track.write_rtp(packet).await {
                    Ok(()) => {
                        writer_metrics.rtp_packets_out.inc();
                        writer_metrics.rtp_bytes_out.inc_by(size);
                        failures = 0;
                    }
                    Err(e) => {
                        writer_metrics.dropped_packets.inc();
                        failures += 1;
                        if failures == 1 {
                            warn!("cannot write to subscriber: {e}");
                        }
                    }
                }
            }
        });
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackLocalEvent::OnRtcpPacket(packets) = event
                    && packets
                        .iter()
                        .any(|p| crate::media::is_keyframe_request(p.as_ref()))
                {
                    forwarder.request_keyframe();
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_goes_out_at_once_and_later_ones_merge() {
        let t0 = Instant::now();
        let mut gate = KeyframeGate::new(Duration::from_millis(500));
        assert!(gate.request(t0));
        assert_eq!(gate.deadline(), None);
        // Ten subscribers ask within the interval: nothing goes out yet, one is pending.
        for i in 1..=10 {
            assert!(!gate.request(t0 + Duration::from_millis(10 * i)));
        }
        assert_eq!(gate.deadline(), Some(t0 + Duration::from_millis(500)));
        assert!(!gate.poll(t0 + Duration::from_millis(499)));
        assert!(gate.poll(t0 + Duration::from_millis(500)));
        // The merged one went out; nothing more is pending.
        assert_eq!(gate.deadline(), None);
        assert!(!gate.poll(t0 + Duration::from_millis(2000)));
    }

    #[test]
    fn requests_after_the_interval_go_out_at_once() {
        let t0 = Instant::now();
        let mut gate = KeyframeGate::new(Duration::from_millis(500));
        assert!(gate.request(t0));
        assert!(gate.request(t0 + Duration::from_millis(500)));
        assert!(gate.request(t0 + Duration::from_millis(1200)));
        assert_eq!(gate.deadline(), None);
    }
}
