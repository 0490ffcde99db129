//! The PipeWire half of a portal share, end to end without a compositor: a private PipeWire
//! daemon (its own runtime directory), a producer stream standing in for the compositor's
//! screen-cast node (BGRx with padded rows, one solid colour), linked to our stream with
//! `pw-link` (a session manager's job on a desktop). Our [`PortalSource`] must deliver the
//! colour as I420 at the producer's size, repeat it when nothing new comes, end when the daemon
//! dies, and stop its thread when dropped.

use super::PortalSource;
use super::session::SessionGuard;
use super::slot::FrameSlot;
use super::stream::{Remote, StreamThread};
use crate::media::{SourceError, VideoSource};
use pipewire as pw;
use pw::spa;
use spa::pod::{Object, Pod, Property, Value};
use spa::utils::{Fraction, Id, Rectangle, SpaTypes};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WIDTH: u32 = 64;
const HEIGHT: u32 = 48;
/// Row pitch of the producer's buffers: 64 bytes of padding after each row.
const STRIDE: u32 = WIDTH * 4 + 64;
/// Pure red, BGRx.
const RED_BGRX: [u8; 4] = [0, 0, 255, 0xff];
const PRODUCER: &str = "videoroom-test-producer";
/// How long each step may take.
const STEP: Duration = Duration::from_secs(10);

/// A PipeWire daemon of our own, killed on drop.
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "videoroom-pw-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("pipewire")
            .env("XDG_RUNTIME_DIR", &dir)
            .env("PIPEWIRE_RUNTIME_DIR", &dir)
            // Its portal module must not find a real desktop's bus.
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .env_remove("PIPEWIRE_REMOTE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start `pipewire` (Debian: pipewire-bin; scripts/test.sh installs it)");
        let daemon = Self { child, dir };
        wait_until("the daemon's socket", || daemon.socket().exists());
        daemon
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("pipewire-0")
    }

    fn connect(&self) -> OwnedFd {
        UnixStream::connect(self.socket()).unwrap().into()
    }

    /// `pw-link ARGS` against this daemon; its standard output.
    fn pw_link(&self, args: &[&str]) -> String {
        let out = Command::new("pw-link")
            .args(args)
            .env("PIPEWIRE_RUNTIME_DIR", &self.dir)
            .env("XDG_RUNTIME_DIR", &self.dir)
            .env_remove("PIPEWIRE_REMOTE")
            .output()
            .expect("pw-link (Debian: pipewire-bin)");
        assert!(out.status.success(), "pw-link {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The first port of node `node` listed by `pw-link flag` (`-o` outputs, `-i` inputs).
    fn port(&self, flag: &str, node: &str) -> Option<String> {
        self.pw_link(&[flag])
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&format!("{node}:")))
            .map(str::to_owned)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP;
    while !done() {
        assert!(Instant::now() < deadline, "no {what} within {STEP:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The stand-in for the compositor: a driving output stream of red BGRx pictures, ~50 a second.
struct Producer {
    quit: pw::channel::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Producer {
    fn start(fd: OwnedFd) -> Self {
        let (quit, quit_rx) = pw::channel::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || produce(fd, quit_rx, ready_tx));
        ready_rx
            .recv_timeout(STEP)
            .expect("the producer stream did not connect");
        Self {
            quit,
            thread: Some(thread),
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let _ = self.quit.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn pod_bytes(object: Object) -> Vec<u8> {
    spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &Value::Object(object),
    )
    .unwrap()
    .0
    .into_inner()
}

fn produce(fd: OwnedFd, quit: pw::channel::Receiver<()>, ready: std::sync::mpsc::Sender<()>) {
    use spa::param::format::{FormatProperties as F, MediaSubtype, MediaType};
    pw::init();
    let main_loop = pw::main_loop::MainLoopRc::new(None).unwrap();
    let context = pw::context::ContextRc::new(&main_loop, None).unwrap();
    let core = context.connect_fd_rc(fd, None).unwrap();
    let _quit = quit.attach(main_loop.loop_(), {
        let main_loop = main_loop.clone();
        move |()| main_loop.quit()
    });
    let stream = pw::stream::StreamRc::new(
        core,
        PRODUCER,
        pw::properties::properties! {
            *pw::keys::MEDIA_TYPE => "Video",
            *pw::keys::MEDIA_CLASS => "Video/Source",
            *pw::keys::NODE_NAME => PRODUCER,
        },
    )
    .unwrap();
    let ready = std::cell::RefCell::new(Some(ready));
    let _listener = stream
        .add_local_listener::<()>()
        .state_changed(move |_, _, _, new| {
            if matches!(new, pw::stream::StreamState::Paused)
                && let Some(ready) = ready.borrow_mut().take()
            {
                let _ = ready.send(());
            }
        })
        .param_changed(|stream, _, id, param| {
            if param.is_none() || id != spa::param::ParamType::Format.as_raw() {
                return;
            }
            let int = |key: u32, v: i32| Property::new(key, Value::Int(v));
            let buffers = pod_bytes(Object {
                type_: SpaTypes::ObjectParamBuffers.as_raw(),
                id: spa::param::ParamType::Buffers.as_raw(),
                properties: vec![
                    int(spa::sys::SPA_PARAM_BUFFERS_buffers, 4),
                    int(spa::sys::SPA_PARAM_BUFFERS_blocks, 1),
                    int(spa::sys::SPA_PARAM_BUFFERS_size, (STRIDE * HEIGHT) as i32),
                    int(spa::sys::SPA_PARAM_BUFFERS_stride, STRIDE as i32),
                    Property::new(
                        spa::sys::SPA_PARAM_BUFFERS_dataType,
                        super::stream::data_types(1 << spa::sys::SPA_DATA_MemFd),
                    ),
                ],
            });
            stream
                .update_params(&mut [Pod::from_bytes(&buffers).unwrap()])
                .unwrap();
        })
        .process(|stream, _| {
            let Some(mut buffer) = stream.dequeue_buffer() else {
                return;
            };
            let Some(data) = buffer.datas_mut().first_mut() else {
                return;
            };
            if let Some(memory) = data.data() {
                for row in memory[..(STRIDE * HEIGHT) as usize].chunks_mut(STRIDE as usize) {
                    for (i, byte) in row.iter_mut().enumerate() {
                        // Padding is junk that must not show.
                        *byte = if i < (WIDTH * 4) as usize {
                            RED_BGRX[i % 4]
                        } else {
                            0x77
                        };
                    }
                }
            }
            let chunk = data.chunk_mut();
            *chunk.offset_mut() = 0;
            *chunk.size_mut() = STRIDE * HEIGHT;
            *chunk.stride_mut() = STRIDE as i32;
        })
        .register()
        .unwrap();
    let format = pod_bytes(Object {
        type_: SpaTypes::ObjectParamFormat.as_raw(),
        id: spa::param::ParamType::EnumFormat.as_raw(),
        properties: vec![
            Property::new(
                F::MediaType.as_raw(),
                Value::Id(Id(MediaType::Video.as_raw())),
            ),
            Property::new(
                F::MediaSubtype.as_raw(),
                Value::Id(Id(MediaSubtype::Raw.as_raw())),
            ),
            Property::new(
                F::VideoFormat.as_raw(),
                Value::Id(Id(spa::param::video::VideoFormat::BGRx.as_raw())),
            ),
            Property::new(
                F::VideoSize.as_raw(),
                Value::Rectangle(Rectangle {
                    width: WIDTH,
                    height: HEIGHT,
                }),
            ),
            Property::new(
                F::VideoFramerate.as_raw(),
                Value::Fraction(Fraction { num: 50, denom: 1 }),
            ),
        ],
    });
    stream
        .connect(
            spa::utils::Direction::Output,
            None,
            pw::stream::StreamFlags::DRIVER | pw::stream::StreamFlags::MAP_BUFFERS,
            &mut [Pod::from_bytes(&format).unwrap()],
        )
        .unwrap();
    // A driver runs the graph itself: one cycle every 20 ms.
    let timer = main_loop.loop_().add_timer({
        let stream = stream.clone();
        move |_| {
            let _ = stream.trigger_process();
        }
    });
    let _ = timer.update_timer(
        Some(Duration::from_millis(20)),
        Some(Duration::from_millis(20)),
    );
    main_loop.run();
    let _ = stream.disconnect();
}

/// Mean of a plane.
fn mean(plane: &[u8]) -> u8 {
    (plane.iter().map(|&v| u64::from(v)).sum::<u64>() / plane.len() as u64) as u8
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_stream_delivers_pictures_and_ends_with_the_daemon() {
    for tool in ["pipewire", "pw-link"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "{tool} is missing (Debian: pipewire-bin; scripts/test.sh installs it)"
        );
    }
    let mut daemon = Daemon::start();
    let producer = Producer::start(daemon.connect());

    // Our side, as after the portal's dialog: the remote and the node.
    let slot = Arc::new(FrameSlot::default());
    let starting = tokio::spawn(StreamThread::start(
        Remote {
            fd: daemon.connect(),
            node_id: None,
            size_hint: Some((1280, 720)),
        },
        slot.clone(),
        STEP,
    ));
    // No session manager here: link the two ports ourselves once both exist.
    let (mut output, mut input) = (None, None);
    wait_until("ports to link", || {
        output = output.take().or_else(|| daemon.port("-o", PRODUCER));
        input = input
            .take()
            .or_else(|| daemon.port("-i", super::stream::NODE_NAME));
        output.is_some() && input.is_some()
    });
    let (output, input) = (output.unwrap(), input.unwrap());
    daemon.pw_link(&[&output, &input]);

    let (thread, size) = tokio::time::timeout(STEP + Duration::from_secs(1), starting)
        .await
        .expect("the stream did not start")
        .unwrap()
        .unwrap();
    assert_eq!(size, (WIDTH, HEIGHT));
    let source = PortalSource {
        slot,
        last: None,
        next_number: 0,
        _stream: thread,
        _session: SessionGuard::detached(),
    };

    let (source, frames) = tokio::task::spawn_blocking(move || {
        let mut source = source;
        let mut frames = Vec::new();
        let deadline = Instant::now() + STEP;
        while frames.len() < 3 {
            assert!(Instant::now() < deadline, "3 frames took over {STEP:?}");
            match source.next_frame() {
                Ok(frame) => frames.push(frame),
                Err(SourceError::Failed(why)) => println!("no frame yet: {why}"),
                Err(SourceError::Ended) => panic!("ended while the producer runs"),
            }
        }
        (source, frames)
    })
    .await
    .unwrap();
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!((frame.width(), frame.height()), (WIDTH, HEIGHT));
        assert_eq!(frame.frame_number, i as u64);
        // BT.601 limited red: Y 81, U 90, V 240 (the padding, 0x77, would pull them off).
        let (y, u, v) = (mean(frame.y()), mean(frame.u()), mean(frame.v()));
        assert!(
            y.abs_diff(81) <= 2 && u.abs_diff(90) <= 2 && v.abs_diff(240) <= 2,
            "frame {i}: Y {y} U {u} V {v}"
        );
    }

    // The producer goes (its node and our link with it): our stream is merely idle, so the
    // last picture repeats, numbered on, until something ends the share.
    drop(producer);
    let mut source = tokio::task::spawn_blocking(move || {
        let mut source = source;
        for n in 3..6 {
            let again = source.next_frame().expect("a repeat");
            assert_eq!(again.frame_number, n);
            assert_eq!(again.y(), frames[2].y());
        }
        source
    })
    .await
    .unwrap();
    // The daemon dies: the connection fails, the share ends.
    daemon.kill();
    let source = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + STEP;
        loop {
            assert!(
                Instant::now() < deadline,
                "no end within {STEP:?} of the daemon's death"
            );
            match source.next_frame() {
                Err(SourceError::Ended) => break source,
                Ok(_) | Err(SourceError::Failed(_)) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
            }
        }
    })
    .await
    .unwrap();
    let dropped = Instant::now();
    drop(source);
    assert!(
        dropped.elapsed() < Duration::from_secs(2),
        "dropping the source took {:?}",
        dropped.elapsed()
    );
}
