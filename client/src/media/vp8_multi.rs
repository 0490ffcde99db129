//! VP8 simulcast through libvpx's multi-resolution encoder (`vpx_codec_enc_init_multi`): one
//! libvpx call encodes every layer of a captured frame, lowest resolution first, and each
//! higher layer reuses the motion search of the layer below it (`--enable-multi-res-encoding`,
//! which Debian's libvpx 1.12 is built with).
//!
//! What libvpx's multi-res mode does (libvpx 1.12, checked by the tests below):
//! - **Keyframes per layer**: a keyframe can be forced on one layer alone
//!   (`VP8E_SET_FRAME_FLAGS` on its context); the other layers go on with delta frames.
//! - **A layer is paused by a target bitrate of 0**: libvpx then skips it (no output, no
//!   reference update); the layers above it stop reusing its motion vectors. A resumed layer
//!   has stale references, so it restarts with a keyframe.
//! - libvpx does not scale: the caller hands it one picture per layer. This wrapper box-scales
//!   each layer from the one above ([`downscale`]), as the separate-encoder path does.
//!
//! Like [`super::vp8`], this module is libvpx FFI: every unsafe block carries a SAFETY
//! comment, and its public API is safe (the contexts are owned by one value, used through
//! `&mut self`, destroyed once in `Drop`).
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_long, c_ulong};

use vpx_sys as vpx;

use super::downscale::downscale;
use super::vp8::{drain_frames, wrap_i420};
use super::{EncodedFrame, I420Frame, Vp8Config, Vp8Error};

/// RTP's 90 kHz clock, also used as the encoder's timebase (as in [`super::vp8`]).
const TIMEBASE_HZ: u64 = 90_000;

/// The most layers one encoder takes (libvpx's limit is 16; simulcast uses 2 or 3).
pub const MAX_LAYERS: usize = 4;

/// One spatial layer of a [`Vp8MultiEncoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerTarget {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Target bitrate in kbit/s (CBR); must be positive (pause with
    /// [`Vp8MultiEncoder::set_paused`]).
    pub target_kbps: u32,
}

/// One layer's state.
#[derive(Debug, Clone, Copy)]
struct LayerState {
    target: LayerTarget,
    paused: bool,
}

/// A VP8 simulcast encoder: several resolutions of one source through libvpx's
/// multi-resolution mode. Layers are ordered highest resolution first.
pub struct Vp8MultiEncoder {
    // One contiguous array each, highest resolution first, as `vpx_codec_enc_init_multi` and
    // `vpx_codec_encode` index them. Boxed slices: libvpx keeps pointers to the contexts'
    // configurations (`ctx.config.enc` = `&cfgs[i]`), and neither array may move or change
    // length while the encoder lives.
    ctxs: Box<[vpx::vpx_codec_ctx_t]>,
    cfgs: Box<[vpx::vpx_codec_enc_cfg_t]>,
    layers: Vec<LayerState>,
    /// The rate-control settings every layer shares (its size and bitrate are the top layer's).
    base: Vp8Config,
    /// A black picture per layer, handed to libvpx for a paused layer that no encoded layer
    /// below needs scaled (libvpx does not read a paused layer's picture; this keeps the
    /// pointer valid all the same).
    /// Built on first use.
    blanks: Vec<Option<I420Frame>>,
    /// Layers whose next frame must be a keyframe, one bit per layer.
    keyframes: u32,
    first_capture_micros: Option<u64>,
    last_pts: Option<i64>,
}

// SAFETY: libvpx encoder contexts have no thread affinity; they only must not be used from two
// threads at once, which `&mut self` on every method guarantees. The shared multi-res memory is
// only touched from inside calls on these contexts.
unsafe impl Send for Vp8MultiEncoder {}

impl std::fmt::Debug for Vp8MultiEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8MultiEncoder")
            .field("layers", &self.layers)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// libvpx's text for the last error on `ctx`.
fn error_text(ctx: &mut vpx::vpx_codec_ctx_t) -> String {
    // SAFETY: `ctx` is a live context (initialised, or zeroed/failed-init: `vpx_codec_error`
    // handles a context whose `priv` is NULL). Both functions return NULL or NUL-terminated
    // strings that stay valid until the next call on the context; they are copied at once.
    unsafe {
        let text = vpx::vpx_codec_error(ctx);
        let mut out = if text.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(text)
                .to_string_lossy()
                .into_owned()
        };
        let detail = vpx::vpx_codec_error_detail(ctx);
        if !detail.is_null() {
            out.push_str(": ");
            out.push_str(&std::ffi::CStr::from_ptr(detail).to_string_lossy());
        }
        out
    }
}

fn check(
    ctx: &mut vpx::vpx_codec_ctx_t,
    call: &'static str,
    code: vpx::vpx_codec_err_t,
) -> Result<(), Vp8Error> {
    if code == vpx::vpx_codec_err_t::VPX_CODEC_OK {
        Ok(())
    } else {
        Err(Vp8Error::Codec {
            call,
            code: format!("{code:?}"),
            detail: error_text(ctx),
        })
    }
}

fn as_int(value: u32) -> Result<c_int, Vp8Error> {
    c_int::try_from(value).map_err(|_| Vp8Error::InvalidConfig(format!("control value {value}")))
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// libvpx's default VP8 encoder configuration with `base`'s real-time settings (the same as
/// [`super::Vp8Encoder`] uses) at `layer`'s size and bitrate.
fn layer_config(
    base: &Vp8Config,
    layer: &LayerTarget,
) -> Result<vpx::vpx_codec_enc_cfg_t, Vp8Error> {
    let mut cfg = MaybeUninit::<vpx::vpx_codec_enc_cfg_t>::uninit();
    // SAFETY: `vpx_codec_vp8_cx` returns libvpx's static VP8 interface;
    // `vpx_codec_enc_config_default` fully initialises `*cfg` when it returns OK (checked before
    // `assume_init`).
    let code =
        unsafe { vpx::vpx_codec_enc_config_default(vpx::vpx_codec_vp8_cx(), cfg.as_mut_ptr(), 0) };
    if code != vpx::vpx_codec_err_t::VPX_CODEC_OK {
        return Err(Vp8Error::Codec {
            call: "vpx_codec_enc_config_default",
            code: format!("{code:?}"),
            detail: String::new(),
        });
    }
    // SAFETY: initialised by the successful call above.
    let mut cfg = unsafe { cfg.assume_init() };
    cfg.g_w = layer.width;
    cfg.g_h = layer.height;
    cfg.g_threads = base.threads;
    cfg.g_timebase = vpx::vpx_rational {
        num: 1,
        den: TIMEBASE_HZ as c_int,
    };
    cfg.g_error_resilient = vpx::VPX_ERROR_RESILIENT_DEFAULT;
    cfg.g_pass = vpx::vpx_enc_pass::VPX_RC_ONE_PASS;
    cfg.g_lag_in_frames = 0;
    cfg.rc_end_usage = vpx::vpx_rc_mode::VPX_CBR;
    cfg.rc_target_bitrate = layer.target_kbps;
    cfg.rc_dropframe_thresh = base.drop_frame_threshold;
    cfg.rc_resize_allowed = 0;
    cfg.rc_min_quantizer = base.min_quantizer;
    cfg.rc_max_quantizer = base.max_quantizer;
    cfg.rc_undershoot_pct = 100;
    cfg.rc_overshoot_pct = 15;
    cfg.rc_buf_initial_sz = 500;
    cfg.rc_buf_optimal_sz = 600;
    cfg.rc_buf_sz = 1000;
    cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_AUTO;
    cfg.kf_min_dist = 0;
    cfg.kf_max_dist = base.keyframe_max_distance.max(1);
    Ok(cfg)
}

impl Vp8MultiEncoder {
    /// Creates an encoder for `layers` (highest resolution first, each no larger than the one
    /// before, 1..=[`MAX_LAYERS`] of them) sharing `base`'s rate-control settings (fps, speed,
    /// quantizers, keyframe distance, threads; `base`'s own size and bitrate are not used).
    /// The frames given to [`encode`](Self::encode) have the first layer's size.
    pub fn new(base: &Vp8Config, layers: &[LayerTarget]) -> Result<Self, Vp8Error> {
        if layers.is_empty() || layers.len() > MAX_LAYERS {
            return Err(Vp8Error::InvalidConfig(format!(
                "{} layers (1..={MAX_LAYERS})",
                layers.len()
            )));
        }
        for (i, l) in layers.iter().enumerate() {
            if l.width < 2
                || l.height < 2
                || l.width > I420Frame::MAX_DIMENSION
                || l.height > I420Frame::MAX_DIMENSION
                || l.target_kbps == 0
            {
                return Err(Vp8Error::InvalidConfig(format!(
                    "layer {i}: {}x{} at {} kbit/s",
                    l.width, l.height, l.target_kbps
                )));
            }
            if i > 0 && (l.width > layers[i - 1].width || l.height > layers[i - 1].height) {
                return Err(Vp8Error::InvalidConfig(format!(
                    "layer {i} ({}x{}) is larger than the layer before it",
                    l.width, l.height
                )));
            }
        }
        if base.fps == 0
            || base.threads == 0
            || base.min_quantizer > base.max_quantizer
            || base.max_quantizer > 63
            || base.screen_content_mode > 2
            || !(-16..=16).contains(&base.cpu_used)
        {
            return Err(Vp8Error::InvalidConfig(format!("{base:?}")));
        }
        // Down-sampling factor from each layer to the next (by width, reduced); the last
        // layer's is 1/1. libvpx wants num >= den, num <= 4096.
        let mut dsf: Vec<vpx::vpx_rational> = Vec::with_capacity(layers.len());
        for i in 0..layers.len() {
            let (num, den) = match layers.get(i + 1) {
                Some(next) => {
                    let g = gcd(layers[i].width, next.width).max(1);
                    (layers[i].width / g, next.width / g)
                }
                None => (1, 1),
            };
            if num > 4096 {
                return Err(Vp8Error::InvalidConfig(format!(
                    "layer {i} to {} ratio {num}/{den}",
                    i + 1
                )));
            }
            dsf.push(vpx::vpx_rational {
                num: num as c_int,
                den: den as c_int,
            });
        }
        let cfgs = layers
            .iter()
            .map(|l| layer_config(base, l))
            .collect::<Result<Vec<_>, _>>()?
            .into_boxed_slice();
        // SAFETY: the all-zero bit pattern is a valid, uninitialised `vpx_codec_ctx_t` (null
        // pointers, `VPX_CODEC_OK` = 0, zero flags); libvpx requires nothing more before init.
        let ctxs: Box<[vpx::vpx_codec_ctx_t]> = (0..layers.len())
            .map(|_| unsafe { std::mem::zeroed() })
            .collect();
        let mut encoder = Self {
            ctxs,
            cfgs,
            layers: layers
                .iter()
                .map(|&target| LayerState {
                    target,
                    paused: false,
                })
                .collect(),
            base: base.clone(),
            blanks: vec![None; layers.len()],
            keyframes: 0,
            first_capture_micros: None,
            last_pts: None,
        };
        let count = encoder.ctxs.len() as c_int;
        // SAFETY: `ctxs`, `cfgs` and `dsf` are arrays of `count` valid elements, as libvpx reads
        // them (it writes every context, and keeps `&cfgs[i]` in context `i`: both boxed slices
        // live, unmoved, as long as the contexts). The ABI version is the bindings'. On failure
        // libvpx destroys whatever contexts it had initialised, leaving nothing to clean up.
        let code = unsafe {
            vpx::vpx_codec_enc_init_multi_ver(
                encoder.ctxs.as_mut_ptr(),
                vpx::vpx_codec_vp8_cx(),
                encoder.cfgs.as_mut_ptr(),
                count,
                0,
                dsf.as_mut_ptr(),
                vpx::VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        if code != vpx::vpx_codec_err_t::VPX_CODEC_OK {
            let detail = error_text(&mut encoder.ctxs[0]);
            // Nothing is left initialised (see above): zeroed contexts make `Drop` a no-op
            // (`vpx_codec_destroy` returns an error for a context without `priv`).
            for ctx in encoder.ctxs.iter_mut() {
                // SAFETY: as above, all-zero is a valid uninitialised context.
                *ctx = unsafe { std::mem::zeroed() };
            }
            return Err(Vp8Error::Codec {
                call: "vpx_codec_enc_init_multi_ver",
                code: format!("{code:?}"),
                detail,
            });
        }
        // From here on `Drop` destroys the contexts, also if a control below fails.
        for i in 0..encoder.ctxs.len() {
            encoder.control(i, vpx::vp8e_enc_control_id::VP8E_SET_CPUUSED, base.cpu_used)?;
            encoder.control(i, vpx::vp8e_enc_control_id::VP8E_SET_NOISE_SENSITIVITY, 0)?;
            encoder.control(
                i,
                vpx::vp8e_enc_control_id::VP8E_SET_STATIC_THRESHOLD,
                as_int(base.static_threshold)?,
            )?;
            encoder.control(
                i,
                vpx::vp8e_enc_control_id::VP8E_SET_MAX_INTRA_BITRATE_PCT,
                as_int(base.max_intra_pct)?,
            )?;
            if base.screen_content_mode != 0 {
                encoder.control(
                    i,
                    vpx::vp8e_enc_control_id::VP8E_SET_SCREEN_CONTENT_MODE,
                    as_int(base.screen_content_mode)?,
                )?;
            }
        }
        Ok(encoder)
    }

    fn control(
        &mut self,
        layer: usize,
        id: vpx::vp8e_enc_control_id,
        value: c_int,
    ) -> Result<(), Vp8Error> {
        let ctx = &mut self.ctxs[layer];
        // SAFETY: the context is initialised; every control used here takes one `int` as its
        // variadic argument.
        let code = unsafe { vpx::vpx_codec_control_(ctx, id as c_int, value) };
        check(ctx, "vpx_codec_control_", code)
    }

    /// Applies `cfgs[layer]` (changed in place) to its context.
    fn apply_config(&mut self, layer: usize) -> Result<(), Vp8Error> {
        let cfg: *const vpx::vpx_codec_enc_cfg_t = &self.cfgs[layer];
        let ctx = &mut self.ctxs[layer];
        // SAFETY: the context is initialised; `cfg` points to the fully initialised
        // configuration libvpx already keeps a pointer to (libvpx copies what it needs).
        let code = unsafe { vpx::vpx_codec_enc_config_set(ctx, cfg) };
        check(ctx, "vpx_codec_enc_config_set", code)
    }

    /// The layers, highest resolution first, with their current bitrates.
    pub fn layers(&self) -> Vec<LayerTarget> {
        self.layers.iter().map(|l| l.target).collect()
    }

    /// How many layers the encoder has.
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// Makes the next frame of every layer a keyframe.
    pub fn force_keyframe(&mut self) {
        self.keyframes = (1u32 << self.layers.len()) - 1;
    }

    /// Makes `layer`'s next frame a keyframe (a PLI on its SSRC); the other layers are not
    /// affected. A paused layer's request waits for its resume (which starts with one anyway).
    pub fn force_keyframe_layer(&mut self, layer: usize) -> Result<(), Vp8Error> {
        let layer = self.layer_index(layer)?;
        self.keyframes |= 1 << layer;
        Ok(())
    }

    fn layer_index(&self, layer: usize) -> Result<usize, Vp8Error> {
        if layer < self.layers.len() {
            Ok(layer)
        } else {
            Err(Vp8Error::InvalidConfig(format!(
                "layer {layer} of {}",
                self.layers.len()
            )))
        }
    }

    /// Changes `layer`'s target bitrate (positive); takes effect on the next frame (on resume
    /// for a paused layer).
    pub fn set_target_kbps(&mut self, layer: usize, kbps: u32) -> Result<(), Vp8Error> {
        let layer = self.layer_index(layer)?;
        if kbps == 0 {
            return Err(Vp8Error::InvalidConfig(
                "bitrate must be positive (pause the layer instead)".into(),
            ));
        }
        if !self.layers[layer].paused {
            self.cfgs[layer].rc_target_bitrate = kbps;
            self.apply_config(layer)?;
        }
        self.layers[layer].target.target_kbps = kbps;
        Ok(())
    }

    /// Whether `layer` is paused (`false` for a layer that does not exist).
    pub fn is_paused(&self, layer: usize) -> bool {
        self.layers.get(layer).is_some_and(|l| l.paused)
    }

    /// Stops (`true`) or resumes encoding `layer` (dynacast: nobody receives it). A paused
    /// layer costs nothing and produces `None`; a resumed layer's next frame is a keyframe (its
    /// references are stale).
    pub fn set_paused(&mut self, layer: usize, paused: bool) -> Result<(), Vp8Error> {
        let layer = self.layer_index(layer)?;
        if self.layers[layer].paused == paused {
            return Ok(());
        }
        self.cfgs[layer].rc_target_bitrate = if paused {
            0
        } else {
            self.layers[layer].target.target_kbps
        };
        self.apply_config(layer)?;
        self.layers[layer].paused = paused;
        if !paused {
            self.keyframes |= 1 << layer;
        }
        Ok(())
    }

    /// Encodes `frame` (the first layer's size) on every layer that is not paused: one entry
    /// per layer, highest resolution first, `None` for a paused layer or a frame rate control
    /// dropped. The lower layers are box-scaled, each from the layer above.
    pub fn encode(&mut self, frame: &I420Frame) -> Result<Vec<Option<EncodedFrame>>, Vp8Error> {
        let top = self.layers[0].target;
        if frame.width() != top.width || frame.height() != top.height {
            return Err(Vp8Error::SizeMismatch {
                got_width: frame.width(),
                got_height: frame.height(),
                width: top.width,
                height: top.height,
            });
        }
        let count = self.layers.len();
        if self.layers.iter().all(|l| l.paused) {
            return Ok(vec![None; count]);
        }
        // The lowest layer that is encoded: layers down to it are scaled from the capture;
        // below it a paused layer gets a black placeholder that libvpx does not read.
        let lowest_active = self.layers.iter().rposition(|l| !l.paused).unwrap_or(0);
        let mut scaled: Vec<I420Frame> = Vec::with_capacity(count - 1);
        for i in 1..count {
            let LayerTarget { width, height, .. } = self.layers[i].target;
            if i <= lowest_active {
                let from = scaled.last().unwrap_or(frame);
                let picture = if (width, height) == (from.width(), from.height()) {
                    from.clone()
                } else {
                    downscale(from, width, height)
                        .map_err(|e| Vp8Error::InvalidConfig(e.to_string()))?
                };
                scaled.push(picture);
            } else {
                let blank = match self.blanks[i].take() {
                    Some(b) => b,
                    None => I420Frame::black(width, height)
                        .map_err(|e| Vp8Error::InvalidConfig(e.to_string()))?,
                };
                scaled.push(blank);
            }
        }
        let pictures: Vec<&I420Frame> = std::iter::once(frame).chain(scaled.iter()).collect();
        let result = self.encode_pictures(frame, &pictures);
        // Keep the placeholders for the next frame.
        for (i, picture) in scaled.into_iter().enumerate() {
            if i + 1 > lowest_active {
                self.blanks[i + 1] = Some(picture);
            }
        }
        result
    }

    /// Encodes one picture per layer (`pictures[i]` has layer `i`'s size).
    fn encode_pictures(
        &mut self,
        frame: &I420Frame,
        pictures: &[&I420Frame],
    ) -> Result<Vec<Option<EncodedFrame>>, Vp8Error> {
        let count = self.layers.len();
        let mut images: Vec<vpx::vpx_image_t> = Vec::with_capacity(count);
        for (picture, layer) in pictures.iter().zip(&self.layers) {
            if picture.width() != layer.target.width || picture.height() != layer.target.height {
                return Err(Vp8Error::InvalidConfig("layer picture size".into()));
            }
            images.push(wrap_i420(picture)?);
        }
        // Presentation time in the 90 kHz timebase from the capture clock, strictly increasing.
        let first = *self
            .first_capture_micros
            .get_or_insert(frame.capture_micros);
        let elapsed = frame.capture_micros.saturating_sub(first);
        let mut pts =
            i64::try_from(elapsed.saturating_mul(TIMEBASE_HZ) / 1_000_000).unwrap_or(i64::MAX / 2);
        if let Some(last) = self.last_pts {
            pts = pts.max(last + 1);
        }
        let duration = (TIMEBASE_HZ / u64::from(self.base.fps)).max(1) as c_ulong;
        // Per-layer flags through the contexts (libvpx uses a context's control flags when the
        // encode call passes none), consumed by this encode call.
        for i in 0..count {
            if self.keyframes & (1 << i) != 0 && !self.layers[i].paused {
                self.control(
                    i,
                    vpx::vp8e_enc_control_id::VP8E_SET_FRAME_FLAGS,
                    vpx::VPX_EFLAG_FORCE_KF as c_int,
                )?;
            }
        }
        let flags: c_long = 0;
        // SAFETY: `ctxs[0]` is the first of `count` contiguous contexts initialised together by
        // `vpx_codec_enc_init_multi_ver`; in multi-res mode `vpx_codec_encode` reads `count`
        // images from `images` (one per context, each the size its context was configured for,
        // checked above) and encodes them lowest resolution first. libvpx only reads the planes
        // (the `*mut` in `vpx_image_t` is an API artefact) and, with `g_lag_in_frames = 0`,
        // copies what it needs before returning, so `pictures` only has to outlive this call.
        let code = unsafe {
            vpx::vpx_codec_encode(
                self.ctxs.as_mut_ptr(),
                images.as_ptr(),
                pts,
                duration,
                flags,
                vpx::VPX_DL_REALTIME as c_ulong,
            )
        };
        check(&mut self.ctxs[0], "vpx_codec_encode", code)?;
        self.last_pts = Some(pts);

        let mut out = Vec::with_capacity(count);
        for (i, (ctx, layer)) in self.ctxs.iter_mut().zip(&self.layers).enumerate() {
            // SAFETY: every context was initialised by `vpx_codec_enc_init_multi_ver` (`new`).
            let (data, keyframe) = unsafe { drain_frames(ctx) };
            if layer.paused || data.is_empty() {
                // Dropped by rate control: a wanted keyframe stays wanted.
                out.push(None);
                continue;
            }
            if keyframe {
                self.keyframes &= !(1 << i);
            }
            out.push(Some(EncodedFrame {
                data,
                keyframe,
                capture_micros: frame.capture_micros,
                frame_number: frame.frame_number,
            }));
        }
        Ok(out)
    }
}

impl Drop for Vp8MultiEncoder {
    fn drop(&mut self) {
        // Lowest resolution first: the highest layer's context owns the memory the layers share
        // and frees it when destroyed, so it goes last.
        for ctx in self.ctxs.iter_mut().rev() {
            // SAFETY: each context was initialised by `vpx_codec_enc_init_multi_ver` (or is
            // all-zero after a failed init, which `vpx_codec_destroy` rejects without touching
            // anything) and is destroyed exactly once, here.
            unsafe {
                vpx::vpx_codec_destroy(ctx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{PatternClock, PatternSource, VideoSource, Vp8Decoder};

    fn camera_layers() -> Vec<LayerTarget> {
        vec![
            LayerTarget {
                width: 320,
                height: 180,
                target_kbps: 300,
            },
            LayerTarget {
                width: 160,
                height: 90,
                target_kbps: 100,
            },
            LayerTarget {
                width: 80,
                height: 46,
                target_kbps: 40,
            },
        ]
    }

    fn source() -> PatternSource {
        PatternSource::new(320, 180, 30)
            .expect("size")
            .with_clock(PatternClock::Simulated {
                start_micros: 1_000_000,
            })
    }

    /// Which layers produced output and which of those were keyframes.
    fn shape(out: &[Option<EncodedFrame>]) -> Vec<Option<bool>> {
        out.iter().map(|f| f.as_ref().map(|f| f.keyframe)).collect()
    }

    #[test]
    fn encodes_every_layer_and_decodes() {
        let base = Vp8Config::new(320, 180, 300);
        let mut encoder = Vp8MultiEncoder::new(&base, &camera_layers()).expect("encoder");
        let mut decoders: Vec<Vp8Decoder> = (0..3)
            .map(|_| Vp8Decoder::new().expect("decoder"))
            .collect();
        let mut src = source();
        for n in 0..10 {
            let frame = src.next_frame().expect("frame");
            let out = encoder.encode(&frame).expect("encode");
            assert_eq!(out.len(), 3);
            for (i, (layer, decoder)) in out.iter().zip(&mut decoders).enumerate() {
                let layer = layer.as_ref().expect("every layer encoded");
                assert_eq!(layer.keyframe, n == 0, "frame {n} layer {i}");
                assert_eq!(layer.frame_number, frame.frame_number);
                let picture = decoder
                    .decode(&layer.data)
                    .expect("decode")
                    .expect("picture");
                let want = camera_layers()[i];
                assert_eq!(
                    (picture.width(), picture.height()),
                    (want.width, want.height)
                );
            }
        }
    }

    #[test]
    fn keyframe_requests_reach_every_layer() {
        let base = Vp8Config::new(320, 180, 300);
        let mut encoder = Vp8MultiEncoder::new(&base, &camera_layers()).expect("encoder");
        let mut src = source();
        for _ in 0..3 {
            encoder
                .encode(&src.next_frame().expect("frame"))
                .expect("encode");
        }
        for layer in 0..3 {
            encoder.force_keyframe_layer(layer).expect("layer");
            let out = encoder
                .encode(&src.next_frame().expect("frame"))
                .expect("encode");
            let want: Vec<_> = (0..3).map(|i| Some(i == layer)).collect();
            assert_eq!(shape(&out), want, "keyframe asked for on layer {layer}");
        }
        encoder.force_keyframe();
        let out = encoder
            .encode(&src.next_frame().expect("frame"))
            .expect("encode");
        assert_eq!(shape(&out), vec![Some(true); 3]);
        let out = encoder
            .encode(&src.next_frame().expect("frame"))
            .expect("encode");
        assert_eq!(shape(&out), vec![Some(false); 3]);
        assert!(encoder.force_keyframe_layer(3).is_err());
    }

    #[test]
    fn paused_layers_are_skipped_and_resume_with_a_keyframe() {
        let base = Vp8Config::new(320, 180, 300);
        let mut encoder = Vp8MultiEncoder::new(&base, &camera_layers()).expect("encoder");
        let mut decoders: Vec<Vp8Decoder> = (0..3)
            .map(|_| Vp8Decoder::new().expect("decoder"))
            .collect();
        let mut src = source();
        let mut step = |encoder: &mut Vp8MultiEncoder| {
            let out = encoder
                .encode(&src.next_frame().expect("frame"))
                .expect("encode");
            for (layer, decoder) in out.iter().zip(&mut decoders) {
                if let Some(layer) = layer {
                    decoder.decode(&layer.data).expect("decodable");
                }
            }
            shape(&out)
        };
        step(&mut encoder);
        // The lowest layer paused: the others go on as delta frames.
        encoder.set_paused(2, true).expect("pause");
        assert!(encoder.is_paused(2));
        for _ in 0..3 {
            assert_eq!(step(&mut encoder), vec![Some(false), Some(false), None]);
        }
        // The middle one too.
        encoder.set_paused(1, true).expect("pause");
        assert_eq!(step(&mut encoder), vec![Some(false), None, None]);
        // The lowest back: it restarts with a keyframe, the top goes on.
        encoder.set_paused(2, false).expect("resume");
        assert_eq!(step(&mut encoder), vec![Some(false), None, Some(true)]);
        assert_eq!(step(&mut encoder), vec![Some(false), None, Some(false)]);
        // The top paused, a keyframe asked for: the others give one.
        encoder.set_paused(0, true).expect("pause");
        encoder.force_keyframe();
        assert_eq!(step(&mut encoder), vec![None, None, Some(true)]);
        assert_eq!(step(&mut encoder), vec![None, None, Some(false)]);
        encoder.set_paused(1, false).expect("resume");
        assert_eq!(step(&mut encoder), vec![None, Some(true), Some(false)]);
        encoder.set_paused(2, true).expect("pause");
        encoder.set_paused(1, true).expect("pause");
        assert_eq!(step(&mut encoder), vec![None, None, None]);
        encoder.set_paused(0, false).expect("resume");
        assert_eq!(step(&mut encoder), vec![Some(true), None, None]);
    }

    #[test]
    fn bitrates_change_per_layer() {
        let base = Vp8Config::new(320, 180, 300);
        let mut encoder = Vp8MultiEncoder::new(&base, &camera_layers()).expect("encoder");
        encoder.set_target_kbps(1, 60).expect("set");
        assert_eq!(encoder.layers()[1].target_kbps, 60);
        assert!(encoder.set_target_kbps(1, 0).is_err());
        encoder.set_paused(1, true).expect("pause");
        encoder.set_target_kbps(1, 80).expect("set while paused");
        encoder.set_paused(1, false).expect("resume");
        assert_eq!(encoder.layers()[1].target_kbps, 80);
        let mut src = source();
        let out = encoder
            .encode(&src.next_frame().expect("frame"))
            .expect("encode");
        assert!(out.iter().all(Option::is_some));
    }

    #[test]
    fn rejects_bad_layouts() {
        let base = Vp8Config::new(320, 180, 300);
        assert!(Vp8MultiEncoder::new(&base, &[]).is_err());
        let mut grow = camera_layers();
        grow.swap(0, 1);
        assert!(Vp8MultiEncoder::new(&base, &grow).is_err());
        let mut zero = camera_layers();
        zero[2].target_kbps = 0;
        assert!(Vp8MultiEncoder::new(&base, &zero).is_err());
        let mut encoder = Vp8MultiEncoder::new(&base, &camera_layers()).expect("encoder");
        let small = I420Frame::black(160, 90).expect("frame");
        assert!(matches!(
            encoder.encode(&small),
            Err(Vp8Error::SizeMismatch { .. })
        ));
        // One layer works too.
        let mut one = Vp8MultiEncoder::new(&base, &camera_layers()[..1]).expect("one layer");
        let out = one
            .encode(&source().next_frame().expect("frame"))
            .expect("encode");
        assert_eq!(shape(&out), vec![Some(true)]);
    }
}
