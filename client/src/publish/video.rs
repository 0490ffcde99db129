//! The video send loop: paced by the source's frame rate, it runs the [`EncodeStage`] on the
//! blocking pool, packetizes each layer's frame and writes it to the bound track; a watcher
//! turns PLI/FIR into keyframe wishes per layer.

use super::control::{LayerStats, VideoControl, lock};
use super::encode::{EncodeStage, LayerEncoder, ScreenPrep};
use super::ended::{EndReports, Ended, Failures, Outcome};
use super::layers::{LayerSpec, combined_pauses};
use super::rtp::{Labels, Vp8Packetizer};
use super::{TrackBinding, connected_track, on_blocking_pool, write_packets};
use crate::media::{VideoSource, Vp8Config, Vp8Encoder, Vp8Error};
use crate::peer::is_keyframe_request;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::Instrument;
use videoroom_protocol::MediaKind;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

/// Settings of a published video track.
#[derive(Debug, Clone, Copy)]
pub struct VideoSendSettings {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second the source is sampled at.
    pub fps: u32,
    /// Encoder target bitrate (of the full-size layer of a simulcast track).
    pub target_kbps: u32,
}

/// A layer counts as sent ([`SendStats::layers_sent`](super::SendStats::layers_sent)) while its
/// last frame went out less than this ago.
const LAYER_SENT_WITHIN: Duration = Duration::from_secs(1);

/// Creates a screen share's encoder: libvpx's screen-content settings
/// ([`Vp8Config::screen`]) at the settings' size and bitrate.
pub fn new_screen_encoder(settings: &VideoSendSettings) -> Result<Vp8Encoder, Vp8Error> {
    let mut config = Vp8Config::screen(settings.width, settings.height, settings.target_kbps);
    config.fps = settings.fps.max(1);
    Vp8Encoder::new(config)
}

/// Creates a camera's encoder ([`Vp8Config::camera`]; the other simulcast layers copy its
/// settings); fails early on a bad configuration.
pub fn new_encoder(settings: &VideoSendSettings) -> Result<Vp8Encoder, Vp8Error> {
    let mut config = Vp8Config::camera(settings.width, settings.height, settings.target_kbps);
    config.fps = settings.fps.max(1);
    Vp8Encoder::new(config)
}

/// Spawns the sending task and the keyframe-request watcher of one single-layer video track
/// (see [`spawn_layered_sender`]).
// Each argument is a different part of the track (its binding, source, encoder, settings,
// numbering, control, end reports, kind): bundling them would only move the list elsewhere.
#[allow(clippy::too_many_arguments)]
pub fn spawn_video_sender(
    binding: TrackBinding,
    source: Box<dyn VideoSource>,
    encoder: Vp8Encoder,
    settings: VideoSendSettings,
    ssrc: u32,
    control: Arc<VideoControl>,
    ended: EndReports,
    screen: bool,
) -> Vec<JoinHandle<()>> {
    spawn_layered_sender(
        binding,
        source,
        encoder,
        settings,
        vec![LayerSpec::single(ssrc)],
        control,
        ended,
        screen,
    )
}

/// Spawns the sending task and the keyframe-request watcher of one video track sent as
/// `layers` (one for a plain track, [`camera_layers`] for simulcast). `encoder` is the
/// full-size layer's; the others are made from its settings when first needed. Frames are
/// only produced while there is a connected track to write to (`binding`) and the track is
/// enabled. The track's identity (in [`Ended`] reports) is its full-size layer's SSRC.
#[allow(clippy::too_many_arguments)]
pub fn spawn_layered_sender(
    binding: TrackBinding,
    source: Box<dyn VideoSource>,
    encoder: Vp8Encoder,
    settings: VideoSendSettings,
    layers: Vec<LayerSpec>,
    control: Arc<VideoControl>,
    ended: EndReports,
    screen: bool,
) -> Vec<JoinHandle<()>> {
    let mut layers = layers;
    if layers.is_empty() {
        layers.push(LayerSpec::single(rand::random::<u32>() | 1));
    }
    *lock(&control.layer_ssrcs) = layers.iter().map(|l| l.ssrc).collect();
    {
        let mut stats = lock(&control.layer_stats);
        if stats.len() != layers.len() {
            *stats = layers
                .iter()
                .map(|l| LayerStats {
                    rid: l.rid,
                    ssrc: l.ssrc,
                    ..Default::default()
                })
                .collect();
        }
    }
    // Encode and write the largest layer first.
    let mut order = layers.clone();
    order.sort_by_key(|l| l.divisor);
    let ssrc = order[0].ssrc;
    let top_config = encoder.config().clone();
    *lock(&control.nominal_kbps) = layers
        .iter()
        .map(|l| l.target_kbps(top_config.target_kbps))
        .collect();
    for (stats, layer) in lock(&control.layer_stats).iter_mut().zip(&layers) {
        if stats.target_kbps == 0 && !stats.paused_by_budget {
            stats.target_kbps = layer.target_kbps(top_config.target_kbps);
        }
    }
    let mut encoders: Vec<LayerEncoder> = order
        .iter()
        .map(|&spec| LayerEncoder {
            spec,
            encoder: None,
        })
        .collect();
    encoders[0].encoder = Some(encoder);
    let span = tracing::debug_span!("video_send", ssrc, screen, layers = order.len());
    let watcher = watch_keyframe_requests(binding.clone(), Arc::clone(&control));
    let sender = video_send_loop(
        binding,
        EncodeStage {
            source,
            layers: encoders,
            top_config,
            control: Arc::clone(&control),
            screen: screen.then(ScreenPrep::default),
            replay_waiting: 0,
        },
        settings,
        ssrc,
        control,
        ended,
    );
    vec![
        tokio::spawn(sender.instrument(span.clone())),
        tokio::spawn(watcher.instrument(span)),
    ]
}

async fn video_send_loop(
    mut binding: TrackBinding,
    stage: EncodeStage,
    settings: VideoSendSettings,
    ssrc: u32,
    control: Arc<VideoControl>,
    ended: EndReports,
) {
    let mut failures = Failures::default();
    let device = if stage.screen.is_some() {
        "shared screen"
    } else {
        "camera"
    };
    let period = Duration::from_micros(1_000_000 / u64::from(settings.fps.max(1)));
    let mut stage = stage;
    // A recording paces itself (it sleeps until each frame is due): the ticker only bounds the
    // loop, four times faster, so that a replay that fell behind (starved of CPU) catches up
    // instead of staying behind for good.
    let period = if stage.source.encoded().is_some() {
        period / 4
    } else {
        period
    };
    let mut ticker = tokio::time::interval(period);
    // An encoder that falls behind skips ticks instead of bursting to catch up.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // One packetizer per layer, in the stage's order.
    let mut packetizers: Vec<(LayerSpec, Vp8Packetizer)> = stage
        .layers
        .iter()
        .map(|l| {
            let state = control.rtp_state(l.spec.ssrc, ssrc);
            (l.spec, Vp8Packetizer::new(l.spec.ssrc, state))
        })
        .collect();
    let order = lock(&control.layer_ssrcs).clone();
    let simulcast = packetizers.len() > 1;
    // When each layer last went out (for `SendStats::layers_sent`).
    let mut last_sent: Vec<Option<std::time::Instant>> = vec![None; packetizers.len()];
    let mut stage = Some(stage);
    let mut bound: Option<Arc<TrackLocalStaticRTP>> = None;
    let mut labels = Labels::default();
    let mut last_paused = 0u32;
    loop {
        ticker.tick().await;
        let current = binding.borrow_and_update().clone();
        let track = match current {
            Some(track) => track,
            None => {
                bound = None;
                // Nothing to send to: wait for a connection instead of ticking idly.
                if connected_track(&mut binding).await.is_none() {
                    return;
                }
                continue;
            }
        };
        if bound.as_ref().is_none_or(|b| !Arc::ptr_eq(b, &track)) {
            // (Re)connected: receivers need a keyframe to start from.
            control.request_keyframe();
            bound = Some(Arc::clone(&track));
            labels = Labels::default();
        }
        if !labels.resolved {
            labels = Labels::of(&control, &track).await;
        }
        if !control.enabled() {
            continue;
        }
        let Some(current) = stage.take() else {
            return;
        };
        let keyframes = control.keyframe_wanted.swap(0, Ordering::SeqCst);
        let paused = combined_pauses(
            control.paused_layers.load(Ordering::SeqCst),
            control.budget_paused.load(Ordering::SeqCst),
            order.len(),
        );
        // A layer that starts again (whichever said so) starts with a keyframe.
        let keyframes = keyframes | (last_paused & !paused);
        last_paused = paused;
        let rates = lock(&control.budget_rates).clone();
        let swap = control.swap.take();
        let step_order = order.clone();
        let Some((current, result)) = on_blocking_pool(current, move |stage| {
            stage.step(keyframes, paused, &rates, swap, &step_order)
        })
        .await
        else {
            let _ = ended.send(Ended::new(
                ssrc,
                MediaKind::Video,
                "the video encoder task failed",
            ));
            return;
        };
        let mut current = current;
        let sizes = current.sizes();
        stage = Some(current);
        let frames = match failures.judge(MediaKind::Video, device, ssrc, result, &ended) {
            Outcome::Frame(frames) => frames,
            Outcome::Skip => continue,
            Outcome::Stop => return,
        };
        let mut any_sent = false;
        for (index, frame) in frames {
            let Some((spec, packetizer)) = packetizers.get_mut(index) else {
                continue;
            };
            let mut packets = packetizer.packetize(&frame);
            control.save_rtp_state(spec.ssrc, packetizer.state);
            let rid = if simulcast { spec.rid } else { None };
            for packet in &mut packets {
                labels.apply(packet, rid);
            }
            let total = packets.len() as u64;
            let written = write_packets(&track, packets).await;
            control.packets_sent.fetch_add(written, Ordering::Relaxed);
            let mut stats = lock(&control.layer_stats);
            let layer = stats.iter_mut().find(|s| s.ssrc == spec.ssrc);
            if let Some(layer) = layer {
                layer.packets_sent += written;
            }
            if written < total {
                // A receiver got a partial frame: what follows cannot be decoded without a
                // keyframe.
                drop(stats);
                control.request_keyframe_for(spec.ssrc);
                continue;
            }
            if let Some(layer) = stats.iter_mut().find(|s| s.ssrc == spec.ssrc) {
                layer.frames_sent += 1;
                layer.bytes_sent += frame.data.len() as u64;
                layer.keyframes_sent += u64::from(frame.keyframe);
                (layer.width, layer.height) = sizes.get(index).copied().unwrap_or_default();
            }
            drop(stats);
            any_sent = true;
            if let Some(at) = last_sent.get_mut(index) {
                *at = Some(std::time::Instant::now());
            }
            control
                .bytes_sent
                .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
            if frame.keyframe {
                control.keyframes_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        if any_sent {
            control.frames_sent.fetch_add(1, Ordering::Relaxed);
            // Layers that went out lately, not the last capture's: a layer whose rate control
            // dropped this frame (`Vp8Config::camera`) is still being sent.
            let now = std::time::Instant::now();
            let recent = last_sent
                .iter()
                .filter(|at| at.is_some_and(|at| now.duration_since(at) < LAYER_SENT_WITHIN))
                .count();
            control
                .layers_sent
                .store(u32::try_from(recent).unwrap_or(u32::MAX), Ordering::Relaxed);
        }
    }
}

/// The SSRCs a keyframe request names (PLI's media SSRC, FIR's entries); empty for anything
/// else.
fn requested_ssrcs(packet: &dyn rtc::rtcp::Packet) -> Vec<u32> {
    let any = packet.as_any();
    if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
        return vec![pli.media_ssrc];
    }
    if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
        return fir.fir.iter().map(|e| e.ssrc).collect();
    }
    Vec::new()
}

/// Turns PLI/FIR on the bound track into "next frame of that layer is a keyframe", following
/// the binding across reconnections.
async fn watch_keyframe_requests(mut binding: TrackBinding, control: Arc<VideoControl>) {
    loop {
        let Some(track) = connected_track(&mut binding).await else {
            return;
        };
        loop {
            tokio::select! {
                changed = binding.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                event = track.poll() => match event {
                    Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                        let mut requests = 0u64;
                        for packet in packets.iter().filter(|p| is_keyframe_request(p.as_ref())) {
                            requests += 1;
                            let ssrcs = requested_ssrcs(packet.as_ref());
                            if ssrcs.is_empty() {
                                control.request_keyframe();
                            }
                            for ssrc in ssrcs {
                                control.request_keyframe_for(ssrc);
                            }
                        }
                        if requests > 0 {
                            tracing::debug!(requests, "keyframe requested");
                            control
                                .keyframe_requests
                                .fetch_add(requests, Ordering::Relaxed);
                        }
                    }
                    Some(_) => {}
                    // Not bound to a negotiated sender yet (or unbound): look again shortly.
                    None => tokio::time::sleep(Duration::from_millis(50)).await,
                },
            }
        }
    }
}
