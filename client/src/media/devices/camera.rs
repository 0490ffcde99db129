//! [`CameraSource`]: a [`VideoSource`] over a Video4Linux2 capture device.
//!
//! Opening negotiates the device mode closest to the request: first one that reaches the frame
//! rate, then one at least as large as the requested size (the smallest such; otherwise the
//! largest there is), then the cheapest pixel format (I420, NV12, YUYV, then MJPEG, which needs a
//! JPEG decode). Each captured frame is converted to I420 (BT.601, limited range) and, if the
//! device size differs from the request, centre-cropped to the requested aspect ratio and scaled
//! to exactly the requested size, so the encoder always gets the size it was configured for.
//!
//! Frames are stamped with the wall clock when they are dequeued ([`unix_micros_now`]) and a frame
//! number that counts from 0. A device that goes away ends the source ([`SourceError::Ended`]);
//! one that stops delivering frames for [`FRAME_TIMEOUT`] fails it ([`SourceError::Failed`]).
//!
//! Why `v4l` rather than nokhwa: nokhwa's Linux backend is this same crate plus a cross-platform
//! layer, its own format conversions and many more dependencies; this crate targets Linux, and
//! converts with `yuv` and scales with `fast_image_resize` like the rest of `media`.

use super::{DeviceError, DeviceInfo, DeviceKind};
use crate::media::{I420Frame, SourceError, VideoSource, unix_micros_now};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use v4l::buffer::Type;
use v4l::capability::Flags;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::io::mmap::Stream as MmapStream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::video::capture::Parameters;
use v4l::{Device, Format, FourCC};
use yuv::{
    BufferStoreMut, YuvConversionMode, YuvPackedImage, YuvPlanarImageMut, YuvRange,
    YuvStandardMatrix,
};

/// How long `next_frame` waits for the device before reporting it failed.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(2);
/// Capture buffers shared with the driver.
const BUFFERS: u32 = 4;
/// Undecodable frames in a row tolerated before giving up (MJPEG cameras often send a few
/// broken frames right after starting).
const MAX_BAD_FRAMES: u32 = 10;
/// `errno` for "no such device": the camera was unplugged.
const ENODEV: i32 = 19;
/// `errno` for "device or resource busy": another program is capturing.
const EBUSY: i32 = 16;

/// The pixel formats this source can convert, in V4L2 terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PixelFormat {
    /// `YU12`: planar 4:2:0, Y then U then V (what the encoder wants).
    I420,
    /// `NV12`: a Y plane, then one plane of interleaved U/V at quarter resolution.
    Nv12,
    /// `YUYV`: packed 4:2:2, `Y0 U Y1 V` per two pixels.
    Yuyv,
    /// `MJPG`: one JPEG per frame.
    Mjpeg,
}

impl PixelFormat {
    const ALL: [PixelFormat; 4] = [Self::I420, Self::Nv12, Self::Yuyv, Self::Mjpeg];

    fn fourcc(self) -> FourCC {
        FourCC::new(match self {
            Self::I420 => b"YU12",
            Self::Nv12 => b"NV12",
            Self::Yuyv => b"YUYV",
            Self::Mjpeg => b"MJPG",
        })
    }

    fn from_fourcc(fourcc: FourCC) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.fourcc() == fourcc)
    }

    /// Lower is cheaper to turn into I420.
    fn cost(self) -> u8 {
        match self {
            Self::I420 => 0,
            Self::Nv12 => 1,
            Self::Yuyv => 2,
            Self::Mjpeg => 3,
        }
    }
}

/// One way the device can capture: a format, a size and the highest frame rate at that size
/// (`None` if the driver does not say).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Mode {
    pub(crate) format: PixelFormat,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) max_fps: Option<f64>,
}

/// The mode closest to `width`×`height` at `fps` (see the module docs for the order).
pub(crate) fn choose_mode(modes: &[Mode], width: u32, height: u32, fps: u32) -> Option<Mode> {
    modes.iter().copied().min_by_key(|m| {
        // Allow 10 % slack: 29.97 counts as 30.
        let too_slow = m.max_fps.is_some_and(|max| max < f64::from(fps) * 0.9);
        let too_small = m.width < width || m.height < height;
        let area = u64::from(m.width) * u64::from(m.height);
        // Big enough: the smallest (least to scale down). Too small: the largest.
        let size_rank = if too_small { u64::MAX - area } else { area };
        (too_slow, too_small, size_rank, m.format.cost())
    })
}

/// A size in a stepwise range nearest to (and, where the range allows, not below) the request.
fn stepwise_size(want: u32, min: u32, max: u32, step: u32) -> u32 {
    let want = want.clamp(min, max);
    let step = step.max(1);
    let up = min + (want - min).div_ceil(step) * step;
    if up <= max { up } else { max }
}

/// The highest frame rate the device offers for `fourcc` at `width`×`height`.
fn max_fps(dev: &Device, fourcc: FourCC, width: u32, height: u32) -> Option<f64> {
    let fps = |numerator: u32, denominator: u32| {
        (numerator > 0).then(|| f64::from(denominator) / f64::from(numerator))
    };
    dev.enum_frameintervals(fourcc, width, height)
        .ok()?
        .into_iter()
        .filter_map(|i| match i.interval {
            FrameIntervalEnum::Discrete(f) => fps(f.numerator, f.denominator),
            FrameIntervalEnum::Stepwise(s) => fps(s.min.numerator, s.min.denominator),
        })
        .max_by(f64::total_cmp)
}

/// Every mode of `dev` in a format we can convert (stepwise sizes contribute the size nearest to
/// the request).
fn device_modes(dev: &Device, want_width: u32, want_height: u32) -> io::Result<Vec<Mode>> {
    let mut modes = Vec::new();
    for desc in dev.enum_formats()? {
        let Some(format) = PixelFormat::from_fourcc(desc.fourcc) else {
            continue;
        };
        let sizes = dev.enum_framesizes(desc.fourcc).unwrap_or_default();
        let mut push = |width: u32, height: u32| {
            let max_fps = max_fps(dev, desc.fourcc, width, height);
            modes.push(Mode {
                format,
                width,
                height,
                max_fps,
            });
        };
        if sizes.is_empty() {
            // The driver does not enumerate sizes: offer the request and let S_FMT adjust it.
            push(want_width, want_height);
        }
        for size in sizes {
            match size.size {
                FrameSizeEnum::Discrete(d) => push(d.width, d.height),
                FrameSizeEnum::Stepwise(s) => push(
                    stepwise_size(want_width, s.min_width, s.max_width, s.step_width),
                    stepwise_size(want_height, s.min_height, s.max_height, s.step_height),
                ),
            }
        }
    }
    Ok(modes)
}

/// `/dev/video<N>` nodes, by number.
fn video_nodes() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/dev") else {
        return Vec::new();
    };
    let mut nodes: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let number = name.to_str()?.strip_prefix("video")?.parse::<u32>().ok()?;
            Some((number, entry.path()))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, path)| path).collect()
}

/// The name of `dev` if it is a camera: it captures single-plane video and offers at least one
/// format we convert. (UVC cameras also have a metadata node, which is not a camera.)
fn camera_name(dev: &Device, path: &Path) -> Option<String> {
    // v4l's query_caps unwraps the driver's strings as UTF-8; never let that take us down.
    let caps = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dev.query_caps()))
        .ok()?
        .ok()?;
    if !caps.capabilities.contains(Flags::VIDEO_CAPTURE) {
        return None;
    }
    let usable = dev
        .enum_formats()
        .ok()?
        .iter()
        .any(|d| PixelFormat::from_fourcc(d.fourcc).is_some());
    usable.then(|| {
        if caps.card.is_empty() {
            path.display().to_string()
        } else {
            caps.card
        }
    })
}

/// The camera at `path`, opened, and its name (`None` if it cannot be opened or is no camera).
fn probe(path: &Path) -> Option<(Device, String)> {
    let dev = Device::with_path(path).ok()?;
    let name = camera_name(&dev, path)?;
    Some((dev, name))
}

/// The cameras on this machine (empty if there are none; never fails).
pub fn list_cameras() -> Vec<DeviceInfo> {
    video_nodes()
        .into_iter()
        .filter_map(|path| {
            let (_, name) = probe(&path)?;
            Some(DeviceInfo {
                id: path.display().to_string(),
                name,
            })
        })
        .collect()
}

/// A camera delivering I420 frames of a fixed size.
pub struct CameraSource {
    path: PathBuf,
    name: String,
    /// `None` only while dropping.
    stream: Option<MmapStream<'static>>,
    /// Kept open for as long as the stream runs.
    _device: Device,
    converter: Converter,
    next_number: u64,
}

impl std::fmt::Debug for CameraSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraSource")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("format", &self.converter.format)
            .field(
                "device_size",
                &(self.converter.width, self.converter.height),
            )
            .field(
                "size",
                &(self.converter.out_width, self.converter.out_height),
            )
            .field("next_number", &self.next_number)
            .finish_non_exhaustive()
    }
}

impl CameraSource {
    /// Opens the camera `id` (a path from [`list_cameras`], or its name), or the first camera if
    /// `None`, and starts capturing frames of `width`×`height` at about `fps` frames per second.
    pub fn open(
        id: Option<&str>,
        width: u32,
        height: u32,
        fps: u32,
    ) -> Result<CameraSource, DeviceError> {
        let requested = id.unwrap_or("first camera").to_owned();
        if width == 0
            || height == 0
            || width > I420Frame::MAX_DIMENSION
            || height > I420Frame::MAX_DIMENSION
            || fps == 0
        {
            return Err(DeviceError::Unsupported {
                kind: DeviceKind::Camera,
                name: requested,
                detail: format!("the request {width}x{height} at {fps} fps is not valid"),
            });
        }
        let not_found = || DeviceError::NotFound {
            kind: DeviceKind::Camera,
            id: id.map(str::to_owned),
        };
        let (path, dev, name) = match id {
            None => video_nodes()
                .into_iter()
                .find_map(|path| probe(&path).map(|(dev, name)| (path, dev, name)))
                .ok_or_else(not_found)?,
            Some(id) => {
                let by_path = Path::new(id);
                if by_path.exists() {
                    let dev = Device::with_path(by_path).map_err(|e| DeviceError::Open {
                        kind: DeviceKind::Camera,
                        name: id.to_owned(),
                        reason: e.to_string(),
                    })?;
                    let name =
                        camera_name(&dev, by_path).ok_or_else(|| DeviceError::Unsupported {
                            kind: DeviceKind::Camera,
                            name: id.to_owned(),
                            detail: "not a video capture device with YUYV, NV12, I420 or MJPEG"
                                .to_owned(),
                        })?;
                    (by_path.to_owned(), dev, name)
                } else {
                    video_nodes()
                        .into_iter()
                        .find_map(|path| {
                            probe(&path)
                                .filter(|(_, name)| name == id)
                                .map(|(dev, name)| (path, dev, name))
                        })
                        .ok_or_else(not_found)?
                }
            }
        };
        Self::start(path, dev, name, width, height, fps)
    }

    fn start(
        path: PathBuf,
        dev: Device,
        name: String,
        width: u32,
        height: u32,
        fps: u32,
    ) -> Result<Self, DeviceError> {
        let open_err = |what: &str, e: io::Error| DeviceError::Open {
            kind: DeviceKind::Camera,
            name: name.clone(),
            reason: if e.raw_os_error() == Some(EBUSY) {
                "it is in use by another program; close that program and try again".to_owned()
            } else {
                format!("{what}: {e}")
            },
        };
        let modes =
            device_modes(&dev, width, height).map_err(|e| open_err("listing formats", e))?;
        let mode =
            choose_mode(&modes, width, height, fps).ok_or_else(|| DeviceError::Unsupported {
                kind: DeviceKind::Camera,
                name: name.clone(),
                detail: "it offers none of YUYV, NV12, I420 or MJPEG".to_owned(),
            })?;
        let wanted = Format::new(mode.width, mode.height, mode.format.fourcc());
        let actual = dev
            .set_format(&wanted)
            .map_err(|e| open_err("setting the format", e))?;
        let format =
            PixelFormat::from_fourcc(actual.fourcc).ok_or_else(|| DeviceError::Unsupported {
                kind: DeviceKind::Camera,
                name: name.clone(),
                detail: format!(
                    "asked for {}, the driver chose {}",
                    wanted.fourcc, actual.fourcc
                ),
            })?;
        if actual.width == 0
            || actual.height == 0
            || actual.width > I420Frame::MAX_DIMENSION
            || actual.height > I420Frame::MAX_DIMENSION
        {
            return Err(DeviceError::Unsupported {
                kind: DeviceKind::Camera,
                name,
                detail: format!("the driver chose {}x{}", actual.width, actual.height),
            });
        }
        // Not every driver lets the rate be set; the mode choice already preferred one that
        // reaches it, and frames are stamped as they arrive anyway.
        if let Err(e) = dev.set_params(&Parameters::with_fps(fps)) {
            tracing::debug!(camera = %name, error = %e, "camera does not accept a frame rate");
        }
        let mut stream = MmapStream::with_buffers(&dev, Type::VideoCapture, BUFFERS)
            .map_err(|e| open_err("allocating capture buffers", e))?;
        stream.set_timeout(FRAME_TIMEOUT);
        tracing::info!(
            camera = %name,
            path = %path.display(),
            format = %actual.fourcc,
            device_size = %format_args!("{}x{}", actual.width, actual.height),
            size = %format_args!("{width}x{height}"),
            "camera opened"
        );
        Ok(Self {
            path,
            name,
            stream: Some(stream),
            _device: dev,
            converter: Converter {
                format,
                width: actual.width,
                height: actual.height,
                stride: actual.stride,
                out_width: width,
                out_height: height,
                resizer: Resizer::new(),
            },
            next_number: 0,
        })
    }

    /// The device node.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The camera's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The size the device captures at (frames are scaled from this to the requested size).
    pub fn device_size(&self) -> (u32, u32) {
        (self.converter.width, self.converter.height)
    }
}

impl VideoSource for CameraSource {
    fn next_frame(&mut self) -> Result<I420Frame, SourceError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(SourceError::Ended);
        };
        let mut bad_frames = 0;
        loop {
            let (buf, meta) = match stream.next() {
                Ok(next) => next,
                Err(e) if e.raw_os_error() == Some(ENODEV) => {
                    tracing::warn!(camera = %self.name, "camera was unplugged");
                    return Err(SourceError::Ended);
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(SourceError::Failed(format!(
                        "camera \"{}\" delivered no frame for {} s",
                        self.name,
                        FRAME_TIMEOUT.as_secs()
                    )));
                }
                Err(e) => {
                    return Err(SourceError::Failed(format!(
                        "camera \"{}\": {e}",
                        self.name
                    )));
                }
            };
            let capture_micros = unix_micros_now();
            let used = match meta.bytesused as usize {
                0 => buf.len(),
                n => n.min(buf.len()),
            };
            match self.converter.convert(&buf[..used]) {
                Ok(mut frame) => {
                    frame.capture_micros = capture_micros;
                    frame.frame_number = self.next_number;
                    self.next_number += 1;
                    return Ok(frame);
                }
                Err(e) => {
                    bad_frames += 1;
                    tracing::debug!(camera = %self.name, error = %e, "dropped a bad frame");
                    if bad_frames >= MAX_BAD_FRAMES {
                        return Err(SourceError::Failed(format!(
                            "camera \"{}\" sent {bad_frames} unusable frames in a row: {e}",
                            self.name
                        )));
                    }
                }
            }
        }
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        if let Some(stream) = self.stream.take() {
            // v4l's stream panics if stopping fails for any reason but an unplugged device;
            // a camera going away must not take the client down.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(stream)));
        }
    }
}

/// Turns device buffers into I420 frames of the requested size.
struct Converter {
    format: PixelFormat,
    width: u32,
    height: u32,
    /// Bytes per row of the first plane as the driver reports it (0: tightly packed).
    stride: u32,
    out_width: u32,
    out_height: u32,
    resizer: Resizer,
}

impl Converter {
    fn convert(&mut self, data: &[u8]) -> Result<I420Frame, String> {
        let (w, h) = (self.width, self.height);
        let native = match self.format {
            PixelFormat::I420 => i420_to_i420(data, w, h, self.stride)?,
            PixelFormat::Nv12 => nv12_to_i420(data, w, h, self.stride)?,
            PixelFormat::Yuyv => yuyv_to_i420(data, w, h, self.stride)?,
            PixelFormat::Mjpeg => mjpeg_to_i420(data)?,
        };
        scale_i420(&native, self.out_width, self.out_height, &mut self.resizer)
    }
}

fn frame_error(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Checks that `data` holds at least `needed` bytes.
fn check_len(what: &str, data: &[u8], needed: usize) -> Result<(), String> {
    if data.len() < needed {
        return Err(format!(
            "{what} buffer has {} bytes, expected {needed}",
            data.len()
        ));
    }
    Ok(())
}

/// Copies `rows` rows of `row_len` bytes, `stride` apart in `src`, into a packed plane.
fn copy_plane(src: &[u8], stride: usize, row_len: usize, rows: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(row_len * rows);
    for row in src.chunks(stride).take(rows) {
        out.extend_from_slice(&row[..row_len.min(row.len())]);
    }
    out.resize(row_len * rows, 0);
    out
}

/// Planar `YU12` (I420) with a luma stride of `stride` bytes (chroma stride half of it).
pub(crate) fn i420_to_i420(
    data: &[u8],
    width: u32,
    height: u32,
    stride: u32,
) -> Result<I420Frame, String> {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let y_stride = if stride == 0 { w } else { stride as usize };
    let c_stride = y_stride.div_ceil(2);
    let (y_size, c_size) = (y_stride * h, c_stride * ch);
    check_len("I420", data, y_size + 2 * c_size)?;
    let y = copy_plane(&data[..y_size], y_stride, w, h);
    let u = copy_plane(&data[y_size..y_size + c_size], c_stride, cw, ch);
    let v = copy_plane(
        &data[y_size + c_size..y_size + 2 * c_size],
        c_stride,
        cw,
        ch,
    );
    I420Frame::from_planes(width, height, y, u, v).map_err(frame_error)
}

/// `NV12`: a Y plane, then interleaved U/V rows (both with a stride of `stride` bytes).
/// The `yuv` crate has no NV12 → I420 (planar) conversion; this is a plain de-interleave.
pub(crate) fn nv12_to_i420(
    data: &[u8],
    width: u32,
    height: u32,
    stride: u32,
) -> Result<I420Frame, String> {
    if width == 0 || height == 0 {
        return Err(format!("invalid NV12 size {width}x{height}"));
    }
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let stride = if stride == 0 {
        w.div_ceil(2) * 2
    } else {
        stride as usize
    };
    let y_size = stride * h;
    check_len("NV12", data, y_size + stride * (ch - 1) + cw * 2)?;
    let y = copy_plane(&data[..y_size], stride, w, h);
    let mut u = Vec::with_capacity(cw * ch);
    let mut v = Vec::with_capacity(cw * ch);
    for row in data[y_size..].chunks(stride).take(ch) {
        for uv in row.chunks_exact(2).take(cw) {
            u.push(uv[0]);
            v.push(uv[1]);
        }
    }
    I420Frame::from_planes(width, height, y, u, v).map_err(frame_error)
}

/// Packed `YUYV` 4:2:2 with rows `stride` bytes apart, via the `yuv` crate. 4:2:2 → 4:2:0 keeps
/// the chroma of the even rows.
pub(crate) fn yuyv_to_i420(
    data: &[u8],
    width: u32,
    height: u32,
    stride: u32,
) -> Result<I420Frame, String> {
    let mut frame = I420Frame::black(width, height).map_err(frame_error)?;
    let stride = if stride == 0 {
        width.div_ceil(2) * 4
    } else {
        stride
    };
    check_len(
        "YUYV",
        data,
        stride as usize * (height as usize - 1) + width.div_ceil(2) as usize * 4,
    )?;
    let packed = YuvPackedImage {
        yuy: data,
        yuy_stride: stride,
        width,
        height,
    };
    let mut planar = planar_mut(&mut frame);
    yuv::yuyv422_to_yuv420(&mut planar, &packed).map_err(frame_error)?;
    Ok(frame)
}

/// `frame`'s planes as the `yuv` crate's writable 4:2:0 image.
pub(crate) fn planar_mut(frame: &mut I420Frame) -> YuvPlanarImageMut<'_, u8> {
    let (width, height, cw) = (frame.width(), frame.height(), frame.chroma_width());
    let (y, u, v) = frame.planes_mut();
    YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: cw,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: cw,
        width,
        height,
    }
}

/// Whether the JPEG in `data` defines Huffman tables (a DHT segment) before its scan starts.
/// Malformed input counts as having them: the decoder then reports the real problem.
fn has_huffman_tables(data: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while let (Some(&0xFF), Some(&marker)) = (data.get(i), data.get(i + 1)) {
        match marker {
            0xC4 => return true,
            0xDA => return false,
            // Fill bytes before a marker.
            0xFF => i += 1,
            _ => {
                let Some(len) = data.get(i + 2..i + 4) else {
                    return true;
                };
                i += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
            }
        }
    }
    true
}

/// `data`, made decodable if it is an MJPEG frame without Huffman tables (most UVC cameras leave
/// them out and rely on the standard tables of JPEG Annex K.3). zune-jpeg supplies those tables
/// only for frames tagged as AVI MJPEG, so untagged frames get the tag (an `APP0 "AVI1"`
/// segment) inserted after SOI.
fn with_standard_tables(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const AVI1_APP0: [u8; 9] = [0xFF, 0xE0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0];
    if data.len() < 4 || data[..2] != [0xFF, 0xD8] || has_huffman_tables(data) {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut tagged = Vec::with_capacity(data.len() + AVI1_APP0.len());
    tagged.extend_from_slice(&data[..2]);
    tagged.extend_from_slice(&AVI1_APP0);
    tagged.extend_from_slice(&data[2..]);
    std::borrow::Cow::Owned(tagged)
}

/// One MJPEG frame (a JPEG, full-range YCbCr) → RGB → I420 (BT.601, limited range).
pub(crate) fn mjpeg_to_i420(data: &[u8]) -> Result<I420Frame, String> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    let data = with_standard_tables(data);
    let mut decoder = zune_jpeg::JpegDecoder::new(ZCursor::new(&data[..]));
    let rgb = decoder.decode().map_err(|e| format!("bad JPEG: {e:?}"))?;
    let info = decoder.info().ok_or("JPEG without a header")?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_len("decoded JPEG", &rgb, width as usize * height as usize * 3)?;
    let mut frame = I420Frame::black(width, height).map_err(frame_error)?;
    let mut planar = planar_mut(&mut frame);
    yuv::rgb_to_yuv420(
        &mut planar,
        &rgb,
        width * 3,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .map_err(frame_error)?;
    Ok(frame)
}

/// `frame` centre-cropped to the aspect ratio of `width`×`height` and scaled to exactly that
/// size (bilinear, each plane on its own). Returns the frame itself if it already has that size.
pub(crate) fn scale_i420(
    frame: &I420Frame,
    width: u32,
    height: u32,
    resizer: &mut Resizer,
) -> Result<I420Frame, String> {
    if (frame.width(), frame.height()) == (width, height) {
        return Ok(frame.clone());
    }
    let mut out = I420Frame::black(width, height).map_err(frame_error)?;
    let (cw, ch) = (out.chroma_width(), out.chroma_height());
    let (y, u, v) = out.planes_mut();
    let (sw, sh) = (frame.width(), frame.height());
    let (scw, sch) = (frame.chroma_width(), frame.chroma_height());
    resize_plane(resizer, frame.y(), (sw, sh), y, (width, height))?;
    resize_plane(resizer, frame.u(), (scw, sch), u, (cw, ch))?;
    resize_plane(resizer, frame.v(), (scw, sch), v, (cw, ch))?;
    Ok(out)
}

/// Scales one 8-bit plane, centre-cropping it to the destination's aspect ratio.
pub(crate) fn resize_plane(
    resizer: &mut Resizer,
    src: &[u8],
    (src_width, src_height): (u32, u32),
    dst: &mut [u8],
    (dst_width, dst_height): (u32, u32),
) -> Result<(), String> {
    let src = ImageRef::new(src_width, src_height, src, PixelType::U8).map_err(frame_error)?;
    let mut dst =
        Image::from_slice_u8(dst_width, dst_height, dst, PixelType::U8).map_err(frame_error)?;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .fit_into_destination(None);
    resizer
        .resize(&src, &mut dst, &options)
        .map_err(frame_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_to_i420_unpacks_luma_and_chroma() {
        // 4×2 pixels: per row two macropixels `Y0 U Y1 V`; both rows carry the same chroma.
        let row0 = [10, 100, 20, 200, 30, 110, 40, 210];
        let row1 = [50, 100, 60, 200, 70, 110, 80, 210];
        let data: Vec<u8> = row0.iter().chain(&row1).copied().collect();
        let f = yuyv_to_i420(&data, 4, 2, 8).unwrap();
        assert_eq!(f.y(), &[10, 20, 30, 40, 50, 60, 70, 80]);
        assert_eq!(f.u(), &[100, 110]);
        assert_eq!(f.v(), &[200, 210]);
    }

    #[test]
    fn yuyv_to_i420_honours_the_stride() {
        // 2×2 pixels with 4 bytes of padding after each row.
        let data = [1, 128, 2, 129, 0, 0, 0, 0, 3, 128, 4, 129, 0, 0, 0, 0];
        let f = yuyv_to_i420(&data, 2, 2, 8).unwrap();
        assert_eq!(f.y(), &[1, 2, 3, 4]);
        assert_eq!((f.u(), f.v()), (&[128][..], &[129][..]));
        assert!(yuyv_to_i420(&data[..10], 2, 2, 8).is_err(), "short buffer");
    }

    #[test]
    fn nv12_to_i420_deinterleaves_chroma() {
        // 4×4: 16 luma bytes, then two rows of U V U V.
        let mut data: Vec<u8> = (0..16).collect();
        data.extend_from_slice(&[100, 200, 101, 201, 102, 202, 103, 203]);
        let f = nv12_to_i420(&data, 4, 4, 4).unwrap();
        assert_eq!(f.y(), (0..16).collect::<Vec<u8>>().as_slice());
        assert_eq!(f.u(), &[100, 101, 102, 103]);
        assert_eq!(f.v(), &[200, 201, 202, 203]);
        assert!(nv12_to_i420(&data[..20], 4, 4, 4).is_err(), "short buffer");
    }

    #[test]
    fn nv12_with_padded_rows() {
        // 2×2 with a stride of 4: luma rows `1 2 . .`, `3 4 . .`, one chroma row `U V . .`.
        let data = [1, 2, 9, 9, 3, 4, 9, 9, 50, 60, 9, 9];
        let f = nv12_to_i420(&data, 2, 2, 4).unwrap();
        assert_eq!(
            (f.y(), f.u(), f.v()),
            (&[1, 2, 3, 4][..], &[50][..], &[60][..])
        );
    }

    #[test]
    fn i420_copies_planes() {
        let data = [1, 2, 3, 4, 5, 6];
        let f = i420_to_i420(&data, 2, 2, 0).unwrap();
        assert_eq!(
            (f.y(), f.u(), f.v()),
            (&[1, 2, 3, 4][..], &[5][..], &[6][..])
        );
    }

    #[test]
    fn scaling_gives_exactly_the_requested_size_and_keeps_flat_colour() {
        let mut planes = I420Frame::black(640, 480).unwrap();
        let (y, u, v) = planes.planes_mut();
        y.fill(120);
        u.fill(90);
        v.fill(160);
        let out = scale_i420(&planes, 320, 180, &mut Resizer::new()).unwrap();
        assert_eq!((out.width(), out.height()), (320, 180));
        assert!(out.y().iter().all(|&p| p == 120));
        assert!(out.u().iter().all(|&p| p == 90));
        assert!(out.v().iter().all(|&p| p == 160));
    }

    /// A 16×16 MJPEG frame as cameras send them: no Huffman tables (the decoder must supply the
    /// standard ones), left half white, right half black. Made with
    /// `ffmpeg -i halves.ppm -huffman default -pix_fmt yuvj420p -f mjpeg`, DHT segment removed.
    const MJPEG_HALVES: [u8; 117] = [
        0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x08, 0x04, 0x04, 0x04, 0x04, 0x04, 0x05, 0x05,
        0x05, 0x05, 0x05, 0x05, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06,
        0x06, 0x06, 0x07, 0x07, 0x07, 0x08, 0x08, 0x08, 0x07, 0x07, 0x07, 0x06, 0x06, 0x07, 0x07,
        0x08, 0x08, 0x08, 0x08, 0x09, 0x09, 0x09, 0x08, 0x08, 0x08, 0x08, 0x09, 0x09, 0x0a, 0x0a,
        0x0a, 0x0c, 0x0c, 0x0b, 0x0b, 0x0e, 0x0e, 0x0e, 0x11, 0x11, 0x14, 0xff, 0xc0, 0x00, 0x11,
        0x08, 0x00, 0x10, 0x00, 0x10, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x00, 0x03, 0x11, 0x00,
        0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0xf7,
        0xfa, 0xf8, 0x02, 0xbe, 0xff, 0x00, 0xaf, 0x80, 0x28, 0x03, 0xff, 0xd9,
    ];

    #[test]
    fn mjpeg_without_huffman_tables_decodes_to_limited_range_i420() {
        let f = mjpeg_to_i420(&MJPEG_HALVES).unwrap();
        assert_eq!((f.width(), f.height()), (16, 16));
        for (i, &y) in f.y().iter().enumerate() {
            let want = if i % 16 < 8 { 235 } else { 16 };
            assert!(
                y.abs_diff(want) <= 3,
                "pixel {i}: Y {y}, expected about {want}"
            );
        }
        for &c in f.u().iter().chain(f.v()) {
            assert!(c.abs_diff(128) <= 3, "grey has neutral chroma, got {c}");
        }
    }

    #[test]
    fn mjpeg_garbage_is_an_error_not_a_panic() {
        assert!(mjpeg_to_i420(b"not a jpeg at all").is_err());
        assert!(mjpeg_to_i420(&[]).is_err());
        assert!(mjpeg_to_i420(&MJPEG_HALVES[..60]).is_err(), "truncated");
    }

    fn mode(format: PixelFormat, width: u32, height: u32, fps: f64) -> Mode {
        Mode {
            format,
            width,
            height,
            max_fps: Some(fps),
        }
    }

    #[test]
    fn mode_choice_prefers_rate_then_size_then_cheap_format() {
        let modes = [
            mode(PixelFormat::Yuyv, 1280, 720, 10.0),
            mode(PixelFormat::Mjpeg, 1280, 720, 30.0),
            mode(PixelFormat::Yuyv, 640, 480, 30.0),
            mode(PixelFormat::Mjpeg, 640, 480, 30.0),
            mode(PixelFormat::Yuyv, 320, 240, 30.0),
        ];
        let pick = |w, h, fps| choose_mode(&modes, w, h, fps).unwrap();
        // Smallest mode covering 640×360 at 30 fps, raw over MJPEG.
        assert_eq!(pick(640, 360, 30), modes[2]);
        // 720p at 30 fps is only MJPEG.
        assert_eq!(pick(1280, 720, 30), modes[1]);
        // At 10 fps the raw 720p mode qualifies.
        assert_eq!(pick(1280, 720, 10), modes[0]);
        // Larger than anything: the largest at the rate.
        assert_eq!(pick(1920, 1080, 30), modes[1]);
        assert_eq!(choose_mode(&[], 640, 360, 30), None);
    }

    #[test]
    fn stepwise_sizes_round_up_to_the_step() {
        assert_eq!(stepwise_size(641, 16, 1920, 16), 656);
        assert_eq!(stepwise_size(640, 16, 1920, 16), 640);
        assert_eq!(stepwise_size(5000, 16, 1920, 16), 1920);
        assert_eq!(stepwise_size(1, 16, 1920, 16), 16);
        assert_eq!(stepwise_size(100, 1, 100, 0), 100);
    }
}
