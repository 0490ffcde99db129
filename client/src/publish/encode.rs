//! The blocking part of the video publish path ([`EncodeStage`]): pull a frame, downscale it
//! to each simulcast layer, encode the layers that are wanted; an encoded source (a replay)
//! hands out its recorded layers instead.

use super::PublishError;
use super::control::VideoControl;
use super::layers::LayerSpec;
use crate::media::downscale::downscale;
use crate::media::{EncodedFrame, I420Frame, VideoSource, Vp8Encoder};
use std::sync::Arc;

/// What a shared screen's frames go through before the encoder: scaled to fit 1920×1080, and
/// only encoded when something changed (or a keyframe is wanted, or 200 ms passed).
#[derive(Debug, Default)]
pub(super) struct ScreenPrep {
    scaler: crate::media::ScreenScaler,
    gate: crate::media::MotionGate,
}

/// One layer's encoder inside the [`EncodeStage`].
pub(super) struct LayerEncoder {
    pub(super) spec: LayerSpec,
    /// `None` until the layer is first sent, and while the source is too small for it.
    pub(super) encoder: Option<Vp8Encoder>,
}

/// The part of the video publish path that blocks: pulling a frame, scaling it to each layer
/// and encoding it.
pub(super) struct EncodeStage {
    pub(super) source: Box<dyn VideoSource>,
    /// Highest resolution first (the order frames are encoded and written in).
    pub(super) layers: Vec<LayerEncoder>,
    /// The full-size layer's settings; the others derive theirs from it.
    pub(super) top_config: crate::media::Vp8Config,
    pub(super) control: Arc<VideoControl>,
    /// A screen share's scaling and motion gate (`None` for a camera).
    pub(super) screen: Option<ScreenPrep>,
    /// An encoded source ([`VideoSource::encoded`]): the layers (bits in the control's layer
    /// order) that wait for their next recorded keyframe (asked for, or resumed).
    pub(super) replay_waiting: u32,
}

impl EncodeStage {
    /// The step of an encoded source: its next capture's layers as recorded, less the paused
    /// ones; a layer asked for a keyframe (or resumed) skips its frames until its next
    /// recorded keyframe. No encoder runs; a budget's bitrates are not followed.
    fn replay_step(
        &mut self,
        keyframes: u32,
        paused: u32,
        order: &[u32],
    ) -> Result<Vec<(usize, EncodedFrame)>, PublishError> {
        self.replay_waiting |= keyframes;
        let Some(source) = self.source.encoded() else {
            return Ok(Vec::new());
        };
        let frames = source.next_frames()?;
        let mut out = Vec::with_capacity(frames.len());
        for (index, frame) in frames {
            let Some(layer) = self.layers.get(index) else {
                continue;
            };
            let Some(position) = order.iter().position(|&s| s == layer.spec.ssrc) else {
                continue;
            };
            let bit = 1u32.checked_shl(position as u32).unwrap_or(0);
            if paused & bit != 0 {
                continue;
            }
            if self.replay_waiting & bit != 0 {
                if !frame.keyframe {
                    continue;
                }
                self.replay_waiting &= !bit;
            }
            out.push((index, frame));
        }
        Ok(out)
    }

    /// Each layer's current size (0×0: not encoding), in [`layers`](Self::layers) order.
    pub(super) fn sizes(&mut self) -> Vec<(u32, u32)> {
        if let Some(source) = self.source.encoded() {
            let mut sizes = source.layer_sizes();
            sizes.resize(self.layers.len(), (0, 0));
            return sizes;
        }
        self.layers
            .iter()
            .map(|l| {
                l.encoder
                    .as_ref()
                    .map_or((0, 0), |e| (e.config().width, e.config().height))
            })
            .collect()
    }

    /// One captured frame, encoded on every layer it is big enough for: `(layer, frame)` pairs
    /// with `layer` an index into [`layers`](Self::layers). `keyframes` has the bit of each
    /// layer (by its index in the control's layer order) that must start with a keyframe.
    pub(super) fn step(
        &mut self,
        keyframes: u32,
        paused: u32,
        rates: &[Option<u32>],
        swap: Option<Box<dyn VideoSource>>,
        order: &[u32],
    ) -> Result<Vec<(usize, EncodedFrame)>, PublishError> {
        if let Some(source) = swap {
            self.source = source;
        }
        if self.source.encoded().is_some() {
            return self.replay_step(keyframes, paused, order);
        }
        let mut frame = self.source.next_frame()?;
        if let Some(prep) = self.screen.as_mut() {
            if let std::borrow::Cow::Owned(scaled) = prep.scaler.fit(&frame)? {
                frame = scaled;
            }
            let decision = prep
                .gate
                .observe(&frame, std::time::Instant::now(), keyframes != 0);
            if !decision.should_encode() {
                return Ok(Vec::new());
            }
        }
        let mut out = Vec::with_capacity(self.layers.len());
        // Each layer is scaled from the previous (larger) one: quarter from half, not from full.
        let mut scaled: Option<I420Frame> = None;
        for (index, layer) in self.layers.iter_mut().enumerate() {
            let Some((width, height)) = layer.spec.size(frame.width(), frame.height()) else {
                layer.encoder = None;
                continue;
            };
            let input = if (width, height) == (frame.width(), frame.height()) {
                None
            } else {
                let from = scaled.as_ref().unwrap_or(&frame);
                Some(
                    downscale(from, width, height)
                        .map_err(|e| PublishError::Task(e.to_string()))?,
                )
            };
            let picture = input.as_ref().unwrap_or(&frame);
            let stale = layer
                .encoder
                .as_ref()
                .is_none_or(|e| e.config().width != width || e.config().height != height);
            if stale {
                // First frame of the layer, or a new source (device switch, a file) with another
                // size: a new encoder at that size, same rate settings. Its first frame is a
                // keyframe.
                let mut config = self.top_config.clone();
                config.width = width;
                config.height = height;
                config.target_kbps = layer.spec.target_kbps(self.top_config.target_kbps);
                if layer.encoder.is_some() {
                    tracing::info!(width, height, rid = ?layer.spec.rid, "video size changed; new encoder");
                }
                layer.encoder = Some(Vp8Encoder::new(config)?);
            }
            let Some(encoder) = layer.encoder.as_mut() else {
                continue;
            };
            let position = order.iter().position(|&s| s == layer.spec.ssrc);
            let bit = position.map_or(u32::MAX, |i| 1u32.checked_shl(i as u32).unwrap_or(0));
            if paused & bit != 0 && bit != u32::MAX {
                // Nobody receives it (dynacast): not encoded; smaller layers still scale from it.
                if input.is_some() {
                    scaled = input;
                }
                continue;
            }
            // The budget's bitrate, else the layer's nominal one.
            let rate = position
                .and_then(|i| rates.get(i).copied().flatten())
                .unwrap_or_else(|| layer.spec.target_kbps(self.top_config.target_kbps));
            if rate != encoder.config().target_kbps
                && let Err(e) = encoder.set_target_kbps(rate)
            {
                tracing::warn!(rid = ?layer.spec.rid, rate, "encoder bitrate not changed: {e}");
            }
            if keyframes & bit != 0 {
                encoder.force_keyframe();
            }
            if let Some(encoded) = encoder.encode(picture)? {
                out.push((index, encoded));
            }
            if input.is_some() {
                scaled = input;
            }
        }
        self.control.preview.send_replace(Some(Arc::new(frame)));
        Ok(out)
    }
}
