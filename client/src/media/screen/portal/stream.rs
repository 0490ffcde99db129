//! The PipeWire side of a portal share: [`StreamThread`] runs a PipeWire main loop on its own
//! thread (PipeWire objects are `!Send`) with one input stream connected to the portal's node
//! through the remote the portal opened for us.
//!
//! We offer BGRx, RGBx, BGRA and RGBA **without DMA-BUF modifiers**, so the compositor sends
//! memory we can map (`MAP_BUFFERS`); the buffer types are narrowed to MemPtr/MemFd once the
//! format is fixed. Each buffer's picture is copied into the [`FrameSlot`] (converted to I420
//! later by whoever takes it). The stream going `Unconnected` or `Error`, or the PipeWire
//! connection failing, ends the share.

use super::convert::{PixelFormat, copy_rows};
use super::error::pipewire_error;
use super::slot::{End, FrameSlot};
use crate::media::screen::ScreenError;
use crate::media::unix_micros_now;
use pipewire as pw;
use pw::spa;
use spa::param::video::{VideoFormat, VideoInfoRaw};
use spa::pod::{ChoiceValue, Object, Pod, Property, PropertyFlags, Value};
use spa::utils::{Choice, ChoiceEnum, ChoiceFlags, Fraction, Id, Rectangle, SpaTypes};
use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long the stream may take to agree on a format with the compositor.
pub(crate) const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Our stream's node name in the PipeWire graph.
pub(crate) const NODE_NAME: &str = "videoroom-screen";

/// The largest picture side we accept from the compositor.
const MAX_SIDE: u32 = 8192;

/// The formats we offer, the preferred first.
const FORMATS: [(VideoFormat, PixelFormat); 4] = [
    (VideoFormat::BGRx, PixelFormat::Bgrx),
    (VideoFormat::RGBx, PixelFormat::Rgbx),
    (VideoFormat::BGRA, PixelFormat::Bgra),
    (VideoFormat::RGBA, PixelFormat::Rgba),
];

/// Where the stream connects.
pub(crate) struct Remote {
    /// The PipeWire connection (from the portal's `OpenPipeWireRemote`).
    pub fd: OwnedFd,
    /// The node to read (the portal stream's node id); `None` lets PipeWire pick.
    pub node_id: Option<u32>,
    /// The size the portal announced, as the format's default.
    pub size_hint: Option<(u32, u32)>,
}

/// What the loop reports once the stream is set up, or why it could not be.
type Startup = Result<(u32, u32), ScreenError>;

/// The running PipeWire thread. Dropping it stops the loop and waits for the thread.
pub(crate) struct StreamThread {
    quit: pw::channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for StreamThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamThread").finish_non_exhaustive()
    }
}

impl StreamThread {
    /// Starts the thread and waits (up to `negotiation`) until the stream has a format: the
    /// answer is the picture size. Every failure before that is a [`ScreenError::PipeWire`].
    pub(crate) async fn start(
        remote: Remote,
        slot: Arc<FrameSlot>,
        negotiation: Duration,
    ) -> Result<(Self, (u32, u32)), ScreenError> {
        let (quit, quit_rx) = pw::channel::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel::<Startup>();
        let thread = std::thread::Builder::new()
            .name("pipewire-screen".into())
            .spawn(move || run(remote, slot, quit_rx, ready_tx))
            .map_err(|e| ScreenError::PipeWire(format!("cannot start its thread: {e}")))?;
        let stream = Self {
            quit,
            thread: Some(thread),
        };
        // On every early return `stream` is dropped: the loop is told to quit and joined.
        match tokio::time::timeout(negotiation, ready_rx).await {
            Ok(Ok(Ok(size))) => Ok((stream, size)),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(ScreenError::PipeWire(
                "its thread stopped before the stream started".into(),
            )),
            Err(_) => Err(ScreenError::PipeWire(format!(
                "the compositor agreed on no video format within {} s",
                negotiation.as_secs()
            ))),
        }
    }
}

impl Drop for StreamThread {
    fn drop(&mut self) {
        // Fails only if the loop is gone already.
        let _ = self.quit.send(());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the PipeWire screen thread panicked");
        }
    }
}

/// Reports the startup once (from whichever callback knows first).
#[derive(Clone)]
struct Reporter(Rc<RefCell<Option<oneshot::Sender<Startup>>>>);

impl Reporter {
    fn report(&self, result: Startup) {
        if let Some(tx) = self.0.borrow_mut().take() {
            let _ = tx.send(result);
        }
    }

    fn pending(&self) -> bool {
        self.0.borrow().is_some()
    }
}

/// The stream's negotiated picture format.
#[derive(Debug, Default)]
struct Negotiated {
    format: Option<(PixelFormat, u32, u32)>,
}

/// The thread: everything PipeWire lives and dies here.
fn run(
    remote: Remote,
    slot: Arc<FrameSlot>,
    quit: pw::channel::Receiver<()>,
    ready: oneshot::Sender<Startup>,
) {
    let reporter = Reporter(Rc::new(RefCell::new(Some(ready))));
    if let Err(e) = run_loop(remote, &slot, quit, &reporter) {
        reporter.report(Err(e));
    }
    // Whatever stopped the loop, no more pictures come from here.
    slot.end(End::Stopped("the PipeWire stream stopped".into()));
}

fn run_loop(
    remote: Remote,
    slot: &Arc<FrameSlot>,
    quit: pw::channel::Receiver<()>,
    reporter: &Reporter,
) -> Result<(), ScreenError> {
    pw::init();
    let main_loop = pw::main_loop::MainLoopRc::new(None)
        .map_err(|e| pipewire_error("creating its main loop", e))?;
    let context = pw::context::ContextRc::new(&main_loop, None)
        .map_err(|e| pipewire_error("creating its context", e))?;
    let core = context
        .connect_fd_rc(remote.fd, None)
        .map_err(|e| pipewire_error("connecting to the portal's PipeWire remote", e))?;

    let _quit = quit.attach(main_loop.loop_(), {
        let main_loop = main_loop.clone();
        move |()| main_loop.quit()
    });

    // The connection itself failing (the remote closed, the daemon died) ends everything.
    let _core_listener = core
        .add_listener_local()
        .error({
            let main_loop = main_loop.clone();
            let slot = slot.clone();
            let reporter = reporter.clone();
            move |id, _seq, res, message| {
                if id != pw::core::PW_ID_CORE {
                    tracing::debug!(id, res, "PipeWire object error: {message}");
                    return;
                }
                let why = format!("the PipeWire connection failed: {message} ({res})");
                reporter.report(Err(ScreenError::PipeWire(why.clone())));
                slot.end(End::Stopped(why));
                main_loop.quit();
            }
        })
        .register();

    let stream = pw::stream::StreamRc::new(
        core,
        "videoroom-screen",
        pw::properties::properties! {
            *pw::keys::MEDIA_TYPE => "Video",
            *pw::keys::MEDIA_CATEGORY => "Capture",
            *pw::keys::MEDIA_ROLE => "Screen",
            *pw::keys::NODE_NAME => NODE_NAME,
            *pw::keys::NODE_DESCRIPTION => "Videoroom screen share",
        },
    )
    .map_err(|e| pipewire_error("creating the stream", e))?;

    let _listener = stream
        .add_local_listener_with_user_data(Negotiated::default())
        .state_changed({
            let slot = slot.clone();
            let reporter = reporter.clone();
            move |_, _, old, new| {
                tracing::debug!("PipeWire screen stream: {old:?} -> {new:?}");
                let why = match new {
                    pw::stream::StreamState::Error(message) => {
                        format!("the PipeWire stream failed: {message}")
                    }
                    pw::stream::StreamState::Unconnected => {
                        "the PipeWire stream was disconnected".to_owned()
                    }
                    _ => return,
                };
                reporter.report(Err(ScreenError::PipeWire(why.clone())));
                slot.end(End::Stopped(why));
            }
        })
        .param_changed({
            let slot = slot.clone();
            let reporter = reporter.clone();
            move |stream, negotiated, id, param| {
                let Some(param) = param else { return };
                if id != spa::param::ParamType::Format.as_raw() {
                    return;
                }
                match read_format(param) {
                    Ok((format, width, height)) => {
                        tracing::info!(?format, width, height, "PipeWire screen format");
                        negotiated.format = Some((format, width, height));
                        reporter.report(Ok((width, height)));
                        if let Err(e) = narrow_buffers(stream) {
                            tracing::warn!("cannot narrow PipeWire buffer types: {e}");
                        }
                    }
                    Err(why) => {
                        reporter.report(Err(ScreenError::PipeWire(why.clone())));
                        slot.end(End::Broken(why));
                    }
                }
            }
        })
        .process({
            let slot = slot.clone();
            move |stream, negotiated| {
                if let Some(format) = negotiated.format {
                    take_buffer(stream, format, &slot);
                }
            }
        })
        .register()
        .map_err(|e| pipewire_error("listening to the stream", e))?;

    let (width, height) = remote.size_hint.unwrap_or((1920, 1080));
    let format =
        serialize(&Value::Object(format_object(width, height))).map_err(ScreenError::PipeWire)?;
    let format = Pod::from_bytes(&format)
        .ok_or_else(|| ScreenError::PipeWire("our format offer is not a valid pod".into()))?;
    stream
        .connect(
            spa::utils::Direction::Input,
            remote.node_id,
            pw::stream::StreamFlags::AUTOCONNECT | pw::stream::StreamFlags::MAP_BUFFERS,
            &mut [format],
        )
        .map_err(|e| pipewire_error("connecting the stream to the shared screen", e))?;

    main_loop.run();

    if reporter.pending() {
        reporter.report(Err(ScreenError::PipeWire(
            "the stream stopped before it had a format".into(),
        )));
    }
    let _ = stream.disconnect();
    Ok(())
}

/// Copies the newest queued buffer's picture into the slot (older ones are returned unread).
fn take_buffer(
    stream: &pw::stream::Stream,
    (format, width, height): (PixelFormat, u32, u32),
    slot: &FrameSlot,
) {
    // Drain the queue: only the newest picture matters.
    let mut newest = None;
    while let Some(buffer) = stream.dequeue_buffer() {
        newest = Some(buffer);
    }
    let Some(mut buffer) = newest else { return };
    let Some(data) = buffer.datas_mut().first_mut() else {
        return;
    };
    let chunk = data.chunk();
    if chunk.size() == 0 || chunk.flags().contains(spa::buffer::ChunkFlags::CORRUPTED) {
        // A buffer with no new picture (a cursor-only update), or a damaged one.
        return;
    }
    let (offset, stride) = (chunk.offset() as usize, chunk.stride());
    let is_dma_buf = data.type_() == spa::buffer::DataType::DmaBuf;
    let Some(bytes) = data.data() else {
        let why = if is_dma_buf {
            "the compositor sends the screen as DMA-BUF only, which this build cannot read"
        } else {
            "the compositor sent a buffer we cannot map"
        };
        slot.end(End::Broken(why.into()));
        return;
    };
    let copied = slot.put(format, width, height, unix_micros_now(), |dst| {
        copy_rows(bytes, offset, stride, width, height, dst)
    });
    if let Err(e) = copied {
        tracing::debug!("PipeWire screen buffer skipped: {e}");
    }
}

/// The picture format of a negotiated `Format` param.
fn read_format(param: &Pod) -> Result<(PixelFormat, u32, u32), String> {
    let mut info = VideoInfoRaw::new();
    info.parse(param)
        .map_err(|e| format!("cannot read the stream's video format: {e}"))?;
    let size = info.size();
    let format = FORMATS
        .iter()
        .find(|(spa, _)| *spa == info.format())
        .map(|(_, ours)| *ours)
        .ok_or_else(|| {
            format!(
                "the compositor chose pixel format {:?}, which we did not offer",
                info.format()
            )
        })?;
    if size.width == 0 || size.height == 0 || size.width > MAX_SIDE || size.height > MAX_SIDE {
        return Err(format!(
            "the compositor chose a {}x{} picture",
            size.width, size.height
        ));
    }
    Ok((format, size.width, size.height))
}

/// Once the format is fixed: buffers of plain memory only (no DMA-BUF).
fn narrow_buffers(stream: &pw::stream::Stream) -> Result<(), String> {
    let types = (1 << spa::sys::SPA_DATA_MemPtr) | (1 << spa::sys::SPA_DATA_MemFd);
    let object = Object {
        type_: SpaTypes::ObjectParamBuffers.as_raw(),
        id: spa::param::ParamType::Buffers.as_raw(),
        properties: vec![Property::new(
            spa::sys::SPA_PARAM_BUFFERS_dataType,
            data_types(types),
        )],
    };
    let bytes = serialize(&Value::Object(object))?;
    let pod = Pod::from_bytes(&bytes).ok_or("not a valid pod")?;
    stream.update_params(&mut [pod]).map_err(|e| e.to_string())
}

/// A `dataType` value: these bits, as flags (a plain int would only match the same int).
pub(crate) fn data_types(bits: i32) -> Value {
    Value::Choice(ChoiceValue::Int(Choice(
        ChoiceFlags::empty(),
        ChoiceEnum::Flags {
            default: bits,
            flags: Vec::new(),
        },
    )))
}

/// The `EnumFormat` we offer: raw video in one of [`FORMATS`], any size up to [`MAX_SIDE`]
/// (`width`×`height` preferred), any frame rate. No `VideoModifier`: no DMA-BUF.
pub(crate) fn format_object(width: u32, height: u32) -> Object {
    let choice_id = |default: VideoFormat, all: &[VideoFormat]| {
        Value::Choice(ChoiceValue::Id(Choice(
            ChoiceFlags::empty(),
            ChoiceEnum::Enum {
                default: Id(default.as_raw()),
                alternatives: all.iter().map(|f| Id(f.as_raw())).collect(),
            },
        )))
    };
    let formats: Vec<VideoFormat> = FORMATS.iter().map(|(f, _)| *f).collect();
    let prop = |key: spa::param::format::FormatProperties, value: Value| Property {
        key: key.as_raw(),
        flags: PropertyFlags::empty(),
        value,
    };
    use spa::param::format::{FormatProperties as P, MediaSubtype, MediaType};
    Object {
        type_: SpaTypes::ObjectParamFormat.as_raw(),
        id: spa::param::ParamType::EnumFormat.as_raw(),
        properties: vec![
            prop(P::MediaType, Value::Id(Id(MediaType::Video.as_raw()))),
            prop(P::MediaSubtype, Value::Id(Id(MediaSubtype::Raw.as_raw()))),
            prop(P::VideoFormat, choice_id(formats[0], &formats)),
            prop(
                P::VideoSize,
                Value::Choice(ChoiceValue::Rectangle(Choice(
                    ChoiceFlags::empty(),
                    ChoiceEnum::Range {
                        default: Rectangle {
                            width: width.clamp(1, MAX_SIDE),
                            height: height.clamp(1, MAX_SIDE),
                        },
                        min: Rectangle {
                            width: 1,
                            height: 1,
                        },
                        max: Rectangle {
                            width: MAX_SIDE,
                            height: MAX_SIDE,
                        },
                    },
                ))),
            ),
            prop(
                P::VideoFramerate,
                Value::Choice(ChoiceValue::Fraction(Choice(
                    ChoiceFlags::empty(),
                    ChoiceEnum::Range {
                        default: Fraction { num: 30, denom: 1 },
                        min: Fraction { num: 0, denom: 1 },
                        max: Fraction {
                            num: 1000,
                            denom: 1,
                        },
                    },
                ))),
            ),
        ],
    }
}

/// A pod's bytes.
fn serialize(value: &Value) -> Result<Vec<u8>, String> {
    spa::pod::serialize::PodSerializer::serialize(std::io::Cursor::new(Vec::new()), value)
        .map(|(cursor, _)| cursor.into_inner())
        .map_err(|e| format!("cannot build a PipeWire parameter: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spa::pod::deserialize::PodDeserializer;

    #[test]
    fn the_format_offer_has_no_modifiers_and_round_trips() {
        let bytes = serialize(&Value::Object(format_object(2560, 1440))).unwrap();
        let (_, value) = PodDeserializer::deserialize_any_from(&bytes).unwrap();
        let Value::Object(object) = value else {
            panic!("{value:?}")
        };
        assert_eq!(object, format_object(2560, 1440));
        let keys: Vec<u32> = object.properties.iter().map(|p| p.key).collect();
        assert!(!keys.contains(&spa::param::format::FormatProperties::VideoModifier.as_raw()));
        let formats = object
            .properties
            .iter()
            .find(|p| p.key == spa::param::format::FormatProperties::VideoFormat.as_raw())
            .map(|p| p.value.clone());
        let Some(Value::Choice(ChoiceValue::Id(Choice(_, ChoiceEnum::Enum { alternatives, .. })))) =
            formats
        else {
            panic!("{formats:?}")
        };
        assert_eq!(
            alternatives,
            [
                VideoFormat::BGRx,
                VideoFormat::RGBx,
                VideoFormat::BGRA,
                VideoFormat::RGBA
            ]
            .map(|f| Id(f.as_raw()))
        );
    }

    /// A remote whose other end is closed: the PipeWire thread starts, fails to talk to it and
    /// says so, within the negotiation timeout (no compositor or daemon needed).
    #[tokio::test]
    async fn a_dead_remote_is_a_pipewire_error_and_the_thread_stops() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(theirs);
        let slot = Arc::new(FrameSlot::default());
        let started = std::time::Instant::now();
        let result = StreamThread::start(
            Remote {
                fd: ours.into(),
                node_id: Some(42),
                size_hint: Some((640, 480)),
            },
            slot.clone(),
            Duration::from_secs(10),
        )
        .await;
        let e = result.map(|_| ()).unwrap_err();
        assert!(matches!(e, ScreenError::PipeWire(_)), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "took {:?}: {e}",
            started.elapsed()
        );
        // The thread is gone (joined on drop) and said the share is over.
        assert!(
            matches!(slot.ended(), Some(End::Stopped(_))),
            "{:?}",
            slot.ended()
        );
    }

    /// A remote that never answers: the start gives up at its timeout, and dropping the thread
    /// stops the loop promptly.
    #[tokio::test]
    async fn a_silent_remote_times_out_and_the_thread_stops() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let slot = Arc::new(FrameSlot::default());
        let started = std::time::Instant::now();
        let e = StreamThread::start(
            Remote {
                fd: ours.into(),
                node_id: None,
                size_hint: None,
            },
            slot.clone(),
            Duration::from_millis(500),
        )
        .await
        .map(|_| ())
        .unwrap_err();
        assert!(
            matches!(e, ScreenError::PipeWire(ref m) if m.contains("no video format")),
            "{e:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(slot.ended().is_some());
        drop(theirs);
    }
}
