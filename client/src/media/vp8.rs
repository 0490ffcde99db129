//! VP8 encoder and decoder over libvpx (`env-libvpx-sys`, linking the system `libvpx`).
//!
//! This is the only module of the crate allowed to use `unsafe` (see `media/mod.rs`). The
//! public API is safe: every libvpx context is owned by exactly one Rust value, used through
//! `&mut self`, and destroyed once in `Drop`.

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_long, c_uint, c_ulong};
use std::ptr;

use vpx_sys as vpx;

use super::I420Frame;

/// Errors from the VP8 codecs.
#[derive(Debug, thiserror::Error)]
pub enum Vp8Error {
    /// The configuration cannot be used.
    #[error("invalid VP8 configuration: {0}")]
    InvalidConfig(String),
    /// A frame does not have the size the encoder was configured for.
    #[error("frame is {got_width}x{got_height}, encoder is configured for {width}x{height}")]
    SizeMismatch {
        /// Frame width.
        got_width: u32,
        /// Frame height.
        got_height: u32,
        /// Configured width.
        width: u32,
        /// Configured height.
        height: u32,
    },
    /// The payload handed to the decoder is empty or larger than libvpx accepts.
    #[error("VP8 payload of {0} bytes cannot be decoded")]
    BadPayload(usize),
    /// libvpx returned an error.
    #[error("libvpx {call} failed ({code}): {detail}")]
    Codec {
        /// The libvpx function that failed.
        call: &'static str,
        /// libvpx's error code, e.g. `VPX_CODEC_CORRUPT_FRAME`.
        code: String,
        /// libvpx's error text and detail.
        detail: String,
    },
    /// libvpx produced an image this crate does not handle (not 8-bit I420).
    #[error("decoder produced an unsupported image: {0}")]
    UnsupportedImage(String),
}

/// Encoder settings. [`Vp8Config::new`] gives real-time defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp8Config {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Target bitrate in kbit/s (CBR).
    pub target_kbps: u32,
    /// Nominal frame rate (used by rate control until real timestamps take over).
    pub fps: u32,
    /// libvpx speed, 0..=16 for real-time VP8; higher is faster and lower quality.
    pub cpu_used: i32,
    /// Encoder threads (1 keeps it on one core).
    pub threads: u32,
    /// Longest gap between automatic keyframes, in frames (PLI forces them sooner).
    pub keyframe_max_distance: u32,
    /// Whether rate control may drop frames to hold the bitrate (0 = never, else a buffer %).
    pub drop_frame_threshold: u32,
    /// libvpx screen-content mode (`VP8E_SET_SCREEN_CONTENT_MODE`): 0 off, 1 on, 2 on with
    /// more aggressive rate control (may drop a frame after a large overshoot).
    pub screen_content_mode: u32,
    /// Blocks whose change stays below this are coded as unchanged
    /// (`VP8E_SET_STATIC_THRESHOLD`; 1 for cameras, a few hundred for screens).
    pub static_threshold: u32,
    /// Lowest quantizer rate control may use, 0..=63.
    pub min_quantizer: u32,
    /// Highest quantizer rate control may use, `min_quantizer..=63`.
    pub max_quantizer: u32,
    /// Largest keyframe as a percentage of an average frame (`VP8E_SET_MAX_INTRA_BITRATE_PCT`;
    /// 0 = no cap), so a keyframe does not burst the link.
    pub max_intra_pct: u32,
}

impl Vp8Config {
    /// Real-time defaults: CBR at `target_kbps`, 30 fps, cpu-used 8, one thread, a keyframe at
    /// least every 10 s, no frame dropping.
    pub fn new(width: u32, height: u32, target_kbps: u32) -> Self {
        Self {
            width,
            height,
            target_kbps,
            fps: 30,
            cpu_used: 8,
            threads: 1,
            keyframe_max_distance: 300,
            drop_frame_threshold: 0,
            // The values WebRTC uses for VP8 camera video.
            screen_content_mode: 0,
            static_threshold: 1,
            min_quantizer: 2,
            max_quantizer: 56,
            max_intra_pct: 300,
        }
    }

    /// A live camera's settings: [`new`](Self::new) plus frame dropping (a 30 % buffer
    /// threshold, as libwebrtc's VP8 camera): rate control drops a frame rather than overshoot
    /// its target, so the bitrate the uplink allocator gives a layer is the bitrate it sends.
    /// Measured on the synthetic pattern (release, cpu-used 8): 320×180 at 150 kbit/s sent
    /// 249 kbit/s at 30 fps without dropping, 151 kbit/s at 20 fps with it (90 kbit/s: 89 at
    /// 14 fps); 1280×720 at 1 500 and 800 kbit/s and 640×360 at 500 and 300 kbit/s dropped no
    /// frame. Without it, a 400 kbit/s uplink carrying the quarter layer and audio was full,
    /// and the packets a probe or a retransmission added were lost.
    pub fn camera(width: u32, height: u32, target_kbps: u32) -> Self {
        Self {
            drop_frame_threshold: 30,
            ..Self::new(width, height, target_kbps)
        }
    }

    /// Settings for a shared screen (text, UI, slides) at `target_kbps` (CBR, so congestion
    /// control can still steer it with [`Vp8Encoder::set_target_kbps`]).
    ///
    /// Chosen by measurement on 1920×1080 text at 1200 kbit/s (`tests/vp8_screen.rs`,
    /// `benches/codec.rs`, libvpx 1.12, 2 cores):
    /// - screen-content mode 2: the page refines to 37.5 dB 1.2 s after the keyframe (mode 1:
    ///   37.0 dB only at 1.7 s) and scrolling text stays at ~41 dB; the drop threshold (30, as
    ///   libwebrtc) pays for the keyframe's burst by dropping the next ~8 frames.
    /// - `cpu_used` -4 (fixed speed): positive values let libvpx pick its speed from how long
    ///   frames take, and on a loaded machine it then codes scrolling text as 125 kB intra
    ///   frames at 29 dB and drops the rest; -8, -12 and -16 do that always. Costs ~15 ms per
    ///   static and ~19 ms per moving frame, 22-28 % of a core at 15 fps.
    /// - max quantizer 52: the keyframe is 131 kB at 29.3 dB (0.9 s of budget); 40 gave
    ///   35.7 dB but 181 kB. The intra cap (100/300/600 %) did not change the first keyframe.
    pub fn screen(width: u32, height: u32, target_kbps: u32) -> Self {
        Self {
            width,
            height,
            target_kbps,
            // The motion gate encodes at 5..=15 fps; rate control works from the real
            // timestamps, this only sizes the first frames' budget.
            fps: 15,
            cpu_used: -4,
            threads: 1,
            // Viewers that join or lose packets ask for a keyframe (PLI); a periodic one would
            // only cost a burst on content that does not change.
            keyframe_max_distance: 3000,
            drop_frame_threshold: 30,
            screen_content_mode: 2,
            static_threshold: 300,
            min_quantizer: 2,
            max_quantizer: 52,
            max_intra_pct: 300,
        }
    }
}

/// One compressed VP8 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The VP8 bitstream of one frame (what an RTP VP8 payloader splits).
    pub data: Vec<u8>,
    /// Whether this is a keyframe (decodable on its own).
    pub keyframe: bool,
    /// The source frame's capture time (µs since the UNIX epoch).
    pub capture_micros: u64,
    /// The source frame's number.
    pub frame_number: u64,
}

/// RTP's 90 kHz clock, also used as the encoder's timebase.
const TIMEBASE_HZ: u64 = 90_000;

fn error_text(ctx: *mut vpx::vpx_codec_ctx_t) -> String {
    // SAFETY: `ctx` points to a live, initialised codec context owned by the caller.
    // `vpx_codec_error` always returns a valid NUL-terminated static or context-owned string;
    // `vpx_codec_error_detail` returns NULL or such a string. Both are copied before returning.
    unsafe {
        let mut text = CStr::from_ptr(vpx::vpx_codec_error(ctx))
            .to_string_lossy()
            .into_owned();
        let detail = vpx::vpx_codec_error_detail(ctx);
        if !detail.is_null() {
            text.push_str(": ");
            text.push_str(&CStr::from_ptr(detail).to_string_lossy());
        }
        text
    }
}

/// Describes `frame`'s planes to libvpx without copying them (the image borrows the frame's
/// buffers: use it only while `frame` lives).
pub(crate) fn wrap_i420(frame: &I420Frame) -> Result<vpx::vpx_image_t, Vp8Error> {
    let mut image = MaybeUninit::<vpx::vpx_image_t>::uninit();
    // SAFETY: `vpx_img_wrap` fully initialises `*image` (returning it) for a valid format and
    // non-zero size; it only stores the data pointer, which is replaced below. Returns NULL
    // on bad arguments, which is checked.
    let wrapped = unsafe {
        vpx::vpx_img_wrap(
            image.as_mut_ptr(),
            vpx::vpx_img_fmt::VPX_IMG_FMT_I420,
            frame.width(),
            frame.height(),
            1,
            frame.y().as_ptr().cast_mut(),
        )
    };
    if wrapped.is_null() {
        return Err(Vp8Error::InvalidConfig(
            "vpx_img_wrap rejected the frame".into(),
        ));
    }
    // SAFETY: initialised by the successful `vpx_img_wrap` above.
    let mut image = unsafe { image.assume_init() };
    image.planes[0] = frame.y().as_ptr().cast_mut();
    image.planes[1] = frame.u().as_ptr().cast_mut();
    image.planes[2] = frame.v().as_ptr().cast_mut();
    image.planes[3] = ptr::null_mut();
    image.stride[0] = frame.width() as c_int;
    image.stride[1] = frame.chroma_width() as c_int;
    image.stride[2] = frame.chroma_width() as c_int;
    image.stride[3] = 0;
    Ok(image)
}

/// The frame packets `ctx` produced on its last encode call, concatenated (empty when rate
/// control dropped the frame), and whether any was a keyframe.
///
/// # Safety
/// `ctx` is an initialised encoder context.
pub(crate) unsafe fn drain_frames(ctx: &mut vpx::vpx_codec_ctx_t) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    let mut keyframe = false;
    let mut iter: vpx::vpx_codec_iter_t = ptr::null();
    loop {
        // SAFETY: the context is initialised (the caller's contract); `iter` starts NULL and is
        // only advanced by libvpx.
        let packet = unsafe { vpx::vpx_codec_get_cx_data(ctx, &mut iter) };
        if packet.is_null() {
            break;
        }
        // SAFETY: a non-NULL packet is valid until the next encode call; `kind` tells which
        // union member is live, and for frame packets `buf`/`sz` describe a readable buffer.
        unsafe {
            if (*packet).kind == vpx::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                let f = (*packet).data.frame;
                if !f.buf.is_null() && f.sz > 0 {
                    data.extend_from_slice(std::slice::from_raw_parts(
                        f.buf.cast::<u8>(),
                        f.sz as usize,
                    ));
                }
                keyframe |= f.flags & vpx::VPX_FRAME_IS_KEY != 0;
            }
        }
    }
    (data, keyframe)
}

fn check(
    ctx: *mut vpx::vpx_codec_ctx_t,
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

/// A control value as the `int` libvpx's controls take.
fn as_int(value: u32) -> Result<c_int, Vp8Error> {
    c_int::try_from(value).map_err(|_| Vp8Error::InvalidConfig(format!("control value {value}")))
}

/// A VP8 encoder with real-time settings.
pub struct Vp8Encoder {
    // Boxed: libvpx keeps a pointer to the configuration (`ctx.config.enc`), and the context
    // itself must not move between calls either.
    ctx: Box<vpx::vpx_codec_ctx_t>,
    cfg: Box<vpx::vpx_codec_enc_cfg_t>,
    config: Vp8Config,
    force_keyframe: bool,
    first_capture_micros: Option<u64>,
    last_pts: Option<i64>,
}

// SAFETY: a libvpx encoder context has no thread affinity; it only must not be used from two
// threads at once, which `&mut self` on every method guarantees.
unsafe impl Send for Vp8Encoder {}

impl std::fmt::Debug for Vp8Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Encoder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Vp8Encoder {
    /// Creates an encoder.
    pub fn new(config: Vp8Config) -> Result<Self, Vp8Error> {
        if config.width == 0
            || config.height == 0
            || config.width > I420Frame::MAX_DIMENSION
            || config.height > I420Frame::MAX_DIMENSION
        {
            return Err(Vp8Error::InvalidConfig(format!(
                "size {}x{}",
                config.width, config.height
            )));
        }
        if config.target_kbps == 0 || config.fps == 0 || config.threads == 0 {
            return Err(Vp8Error::InvalidConfig(
                "bitrate, fps and threads must be positive".into(),
            ));
        }
        if config.screen_content_mode > 2
            || config.min_quantizer > config.max_quantizer
            || config.max_quantizer > 63
        {
            return Err(Vp8Error::InvalidConfig(format!(
                "screen content mode {}, quantizer {}..={}",
                config.screen_content_mode, config.min_quantizer, config.max_quantizer
            )));
        }
        if !(-16..=16).contains(&config.cpu_used) {
            return Err(Vp8Error::InvalidConfig(format!(
                "cpu_used {}",
                config.cpu_used
            )));
        }

        let mut cfg = Box::new(MaybeUninit::<vpx::vpx_codec_enc_cfg_t>::uninit());
        // SAFETY: `vpx_codec_vp8_cx` returns a pointer to libvpx's static VP8 interface.
        // `vpx_codec_enc_config_default` fully initialises `*cfg` when it returns OK (and is
        // checked before `assume_init`).
        let code = unsafe {
            vpx::vpx_codec_enc_config_default(vpx::vpx_codec_vp8_cx(), cfg.as_mut_ptr(), 0)
        };
        if code != vpx::vpx_codec_err_t::VPX_CODEC_OK {
            return Err(Vp8Error::Codec {
                call: "vpx_codec_enc_config_default",
                code: format!("{code:?}"),
                detail: String::new(),
            });
        }
        // SAFETY: initialised by `vpx_codec_enc_config_default` above (checked OK).
        let mut cfg: Box<vpx::vpx_codec_enc_cfg_t> = unsafe { cfg.assume_init() };

        cfg.g_w = config.width;
        cfg.g_h = config.height;
        cfg.g_threads = config.threads;
        cfg.g_timebase = vpx::vpx_rational {
            num: 1,
            den: TIMEBASE_HZ as c_int,
        };
        cfg.g_error_resilient = vpx::VPX_ERROR_RESILIENT_DEFAULT;
        cfg.g_pass = vpx::vpx_enc_pass::VPX_RC_ONE_PASS;
        cfg.g_lag_in_frames = 0;
        cfg.rc_end_usage = vpx::vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = config.target_kbps;
        cfg.rc_dropframe_thresh = config.drop_frame_threshold;
        cfg.rc_resize_allowed = 0;
        cfg.rc_min_quantizer = config.min_quantizer;
        cfg.rc_max_quantizer = config.max_quantizer;
        // The values WebRTC uses for VP8 real-time.
        cfg.rc_undershoot_pct = 100;
        cfg.rc_overshoot_pct = 15;
        cfg.rc_buf_initial_sz = 500;
        cfg.rc_buf_optimal_sz = 600;
        cfg.rc_buf_sz = 1000;
        cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_AUTO;
        cfg.kf_min_dist = 0;
        cfg.kf_max_dist = config.keyframe_max_distance.max(1);

        // SAFETY: the all-zero bit pattern is a valid `vpx_codec_ctx_t` (null pointers,
        // `VPX_CODEC_OK` = 0, zero flags); libvpx requires nothing more before init.
        let mut ctx: Box<vpx::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `ctx` and `cfg` are valid, heap-allocated (so their addresses stay fixed for
        // the encoder's life, as libvpx keeps `cfg`'s address), and the ABI version is the one
        // the bindings were generated for.
        let code = unsafe {
            vpx::vpx_codec_enc_init_ver(
                &mut *ctx,
                vpx::vpx_codec_vp8_cx(),
                &*cfg,
                0,
                vpx::VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        if code != vpx::vpx_codec_err_t::VPX_CODEC_OK {
            // On failure libvpx leaves nothing to destroy (init cleans up after itself).
            return Err(Vp8Error::Codec {
                call: "vpx_codec_enc_init_ver",
                code: format!("{code:?}"),
                detail: error_text(&mut *ctx),
            });
        }
        let mut encoder = Self {
            ctx,
            cfg,
            config,
            force_keyframe: false,
            first_capture_micros: None,
            last_pts: None,
        };
        // From here on `Drop` destroys the context, also if a control below fails.
        encoder.control(
            vpx::vp8e_enc_control_id::VP8E_SET_CPUUSED,
            encoder.config.cpu_used,
        )?;
        encoder.control(vpx::vp8e_enc_control_id::VP8E_SET_NOISE_SENSITIVITY, 0)?;
        encoder.control(
            vpx::vp8e_enc_control_id::VP8E_SET_STATIC_THRESHOLD,
            as_int(encoder.config.static_threshold)?,
        )?;
        // Caps keyframe size (300 = 3× an average frame) so a PLI does not burst the link.
        encoder.control(
            vpx::vp8e_enc_control_id::VP8E_SET_MAX_INTRA_BITRATE_PCT,
            as_int(encoder.config.max_intra_pct)?,
        )?;
        if encoder.config.screen_content_mode != 0 {
            encoder.control(
                vpx::vp8e_enc_control_id::VP8E_SET_SCREEN_CONTENT_MODE,
                as_int(encoder.config.screen_content_mode)?,
            )?;
        }
        Ok(encoder)
    }

    fn control(&mut self, id: vpx::vp8e_enc_control_id, value: c_int) -> Result<(), Vp8Error> {
        // SAFETY: the context is initialised; all controls used here take one `int` (or
        // `unsigned int`, same size and passing convention for the non-negative values used)
        // as their variadic argument.
        let code = unsafe { vpx::vpx_codec_control_(&mut *self.ctx, id as c_int, value) };
        check(&mut *self.ctx, "vpx_codec_control_", code)
    }

    /// The current configuration.
    pub fn config(&self) -> &Vp8Config {
        &self.config
    }

    /// Makes the next encoded frame a keyframe (answer to a PLI or FIR).
    pub fn force_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// Changes the target bitrate (for congestion control); takes effect on the next frame.
    pub fn set_target_kbps(&mut self, kbps: u32) -> Result<(), Vp8Error> {
        if kbps == 0 {
            return Err(Vp8Error::InvalidConfig("bitrate must be positive".into()));
        }
        self.cfg.rc_target_bitrate = kbps;
        // SAFETY: context initialised; `cfg` is the same boxed configuration libvpx already
        // points at, fully initialised.
        let code = unsafe { vpx::vpx_codec_enc_config_set(&mut *self.ctx, &*self.cfg) };
        check(&mut *self.ctx, "vpx_codec_enc_config_set", code)?;
        self.config.target_kbps = kbps;
        Ok(())
    }

    /// Encodes one frame. Returns `None` if rate control dropped it (only possible with a
    /// non-zero `drop_frame_threshold` or with `screen_content_mode` 2); a dropped frame is not
    /// an error, the next one is encoded as usual.
    pub fn encode(&mut self, frame: &I420Frame) -> Result<Option<EncodedFrame>, Vp8Error> {
        if frame.width() != self.config.width || frame.height() != self.config.height {
            return Err(Vp8Error::SizeMismatch {
                got_width: frame.width(),
                got_height: frame.height(),
                width: self.config.width,
                height: self.config.height,
            });
        }
        // Presentation time in the 90 kHz timebase, from the capture clock; forced strictly
        // increasing so libvpx's rate control never sees time stand still or go back.
        let first = *self
            .first_capture_micros
            .get_or_insert(frame.capture_micros);
        let elapsed = frame.capture_micros.saturating_sub(first);
        let mut pts =
            i64::try_from(elapsed.saturating_mul(TIMEBASE_HZ) / 1_000_000).unwrap_or(i64::MAX / 2);
        if let Some(last) = self.last_pts {
            pts = pts.max(last + 1);
        }
        let duration = (TIMEBASE_HZ / u64::from(self.config.fps)).max(1) as c_ulong;
        let flags: c_long = if self.force_keyframe {
            vpx::VPX_EFLAG_FORCE_KF as c_long
        } else {
            0
        };

        // Describe the frame's planes to libvpx without copying them.
        let image = wrap_i420(frame)?;

        // SAFETY: the context is initialised; `image` describes planes of exactly the sizes
        // libvpx reads for a `width`×`height` I420 image (checked by `I420Frame` and the size
        // check above). libvpx only reads the planes (the `*mut` is an API artefact) and, with
        // `g_lag_in_frames = 0`, copies what it needs before returning, so `frame` only has to
        // outlive this call.
        let code = unsafe {
            vpx::vpx_codec_encode(
                &mut *self.ctx,
                &image,
                pts,
                duration,
                flags,
                vpx::VPX_DL_REALTIME as c_ulong,
            )
        };
        check(&mut *self.ctx, "vpx_codec_encode", code)?;
        self.last_pts = Some(pts);

        // SAFETY: the context is initialised (by `new`).
        let (data, keyframe) = unsafe { drain_frames(&mut self.ctx) };
        if data.is_empty() {
            // Dropped by rate control: a wanted keyframe stays wanted for the next frame.
            return Ok(None);
        }
        self.force_keyframe = false;
        Ok(Some(EncodedFrame {
            data,
            keyframe,
            capture_micros: frame.capture_micros,
            frame_number: frame.frame_number,
        }))
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` (a `Vp8Encoder` exists only then) and is
        // destroyed exactly once, here. The result is ignored: nothing can be done about it.
        unsafe {
            vpx::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// A VP8 decoder.
pub struct Vp8Decoder {
    ctx: Box<vpx::vpx_codec_ctx_t>,
}

// SAFETY: as for `Vp8Encoder`: no thread affinity, exclusive access through `&mut self`.
unsafe impl Send for Vp8Decoder {}

impl std::fmt::Debug for Vp8Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Decoder").finish_non_exhaustive()
    }
}

impl Vp8Decoder {
    /// Creates a single-threaded decoder.
    pub fn new() -> Result<Self, Vp8Error> {
        let cfg = vpx::vpx_codec_dec_cfg_t {
            threads: 1,
            w: 0,
            h: 0,
        };
        // SAFETY: the all-zero bit pattern is a valid, uninitialised `vpx_codec_ctx_t`.
        let mut ctx: Box<vpx::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: valid context and configuration (libvpx copies the decoder configuration),
        // static VP8 interface, matching ABI version.
        let code = unsafe {
            vpx::vpx_codec_dec_init_ver(
                &mut *ctx,
                vpx::vpx_codec_vp8_dx(),
                &cfg,
                0,
                vpx::VPX_DECODER_ABI_VERSION as c_int,
            )
        };
        if code != vpx::vpx_codec_err_t::VPX_CODEC_OK {
            return Err(Vp8Error::Codec {
                call: "vpx_codec_dec_init_ver",
                code: format!("{code:?}"),
                detail: error_text(&mut *ctx),
            });
        }
        Ok(Self { ctx })
    }

    /// Decodes one complete VP8 frame. Returns `None` if libvpx produced no picture for it
    /// (e.g. a frame that is not shown).
    ///
    /// The returned frame's `frame_number` and `capture_micros` are 0: the bitstream does not
    /// carry them (take them from RTP, or from [`read_burned_in`](super::read_burned_in)).
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<I420Frame>, Vp8Error> {
        // An empty buffer would mean "flush" to libvpx; a too large one cannot be passed.
        let len = c_uint::try_from(data.len()).map_err(|_| Vp8Error::BadPayload(data.len()))?;
        if len == 0 {
            return Err(Vp8Error::BadPayload(0));
        }
        // SAFETY: context initialised; `data` is readable for `len` bytes during the call and
        // libvpx does not keep the pointer afterwards (no frame-based threading).
        let code = unsafe {
            vpx::vpx_codec_decode(&mut *self.ctx, data.as_ptr(), len, ptr::null_mut(), 0)
        };
        check(&mut *self.ctx, "vpx_codec_decode", code)?;

        let mut out = None;
        let mut iter: vpx::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: context initialised; `iter` starts NULL and is only advanced by libvpx.
            let image = unsafe { vpx::vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
            if image.is_null() {
                break;
            }
            // SAFETY: a non-NULL image stays valid until the next decode call.
            out = Some(copy_image(unsafe { &*image })?);
        }
        Ok(out)
    }
}

/// Copies a decoded libvpx image into a tightly packed [`I420Frame`].
fn copy_image(image: &vpx::vpx_image_t) -> Result<I420Frame, Vp8Error> {
    if image.fmt != vpx::vpx_img_fmt::VPX_IMG_FMT_I420
        || image.bit_depth != 8
        || image.x_chroma_shift != 1
        || image.y_chroma_shift != 1
    {
        return Err(Vp8Error::UnsupportedImage(format!(
            "format {:?}, {} bits",
            image.fmt, image.bit_depth
        )));
    }
    let (width, height) = (image.d_w, image.d_h);
    let (cw, ch) = (width.div_ceil(2) as usize, height.div_ceil(2) as usize);
    let (w, h) = (width as usize, height as usize);
    let mut planes = [Vec::new(), Vec::new(), Vec::new()];
    for (i, plane) in planes.iter_mut().enumerate() {
        let (pw, ph) = if i == 0 { (w, h) } else { (cw, ch) };
        let stride = usize::try_from(image.stride[i])
            .map_err(|_| Vp8Error::UnsupportedImage("negative stride".into()))?;
        if image.planes[i].is_null() || stride < pw {
            return Err(Vp8Error::UnsupportedImage("bad plane".into()));
        }
        plane.reserve_exact(pw * ph);
        for row in 0..ph {
            // SAFETY: libvpx guarantees each plane holds `ph` rows of `stride` bytes with at
            // least `pw` visible pixels per row (checked `stride >= pw` above).
            let src = unsafe { std::slice::from_raw_parts(image.planes[i].add(row * stride), pw) };
            plane.extend_from_slice(src);
        }
    }
    let [y, u, v] = planes;
    I420Frame::from_planes(width, height, y, u, v)
        .map_err(|e| Vp8Error::UnsupportedImage(e.to_string()))
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed exactly once here.
        unsafe {
            vpx::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}
