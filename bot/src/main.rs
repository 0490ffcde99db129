//! `videoroom-bot`: a headless participant. It joins a room, publishes a synthetic pattern (or
//! a file, or a camera) and a tone (or a file, or a microphone), receives everyone else, prints
//! one status line per second and, with `--stats-json`, writes what it measured.
//!
//! Exit codes: 0 done (duration over, or Ctrl-C); 1 other failure; 2 bad arguments or an
//! unusable media file; 3 server unreachable; 4 room full; 5 join refused for another reason;
//! 6 the session was lost and could not be re-established; 7 a moderator removed the bot or
//! ended the meeting.

mod chat;
mod replay;
mod screen;
mod stats;

use clap::Parser;
use stats::{LocalTrackReport, RemoteTrackReport, Report, VideoWatch};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use videoroom_client::media::wav::WavSource;
use videoroom_client::media::y4m::Y4mSource;
use videoroom_client::media::{Channels, PatternSource, ToneSource};
use videoroom_client::{
    AudioInput, AudioOutput, ConnectionState, JoinError, JoinOptions, RemoteVideo, Room, RoomError,
    RoomEvent, RoomHandle, ScreenShareEnd, VideoInput,
};
use videoroom_protocol::{ErrorCode, MediaKind, PeerId, TrackId, TrackInfo, TrackSource};

/// A headless Videoroom participant.
#[derive(Debug, Parser)]
#[command(name = "videoroom-bot", version, about)]
struct Args {
    /// Signaling URL of the server, e.g. ws://127.0.0.1:8080/ws.
    #[arg(
        long,
        env = "VIDEOROOM_SERVER",
        required_unless_present = "write_fixture"
    )]
    server: Option<String>,
    /// Room to join.
    #[arg(long, required_unless_present = "write_fixture")]
    room: Option<String>,
    /// Display name.
    #[arg(long, default_value = "bot")]
    name: String,
    /// Video to publish: `pattern` (moving test pattern with frame number and capture time
    /// burned in), `file:PATH` (a .y4m file, looped), `camera` or `camera:DEVICE`,
    /// `replay:DIR` (a fixture from `--write-fixture`, sent as recorded: no encoding), `none`.
    #[arg(long, default_value = "pattern", value_parser = parse_video)]
    video: VideoArg,
    /// Audio to publish: `tone` (sine), `file:PATH` (a 48 kHz .wav file, looped), `mic` or
    /// `mic:DEVICE`, `replay:DIR` (a fixture's Opus packets, looped), `none`.
    #[arg(long, default_value = "tone", value_parser = parse_audio)]
    audio: AudioArg,
    /// Write a replay fixture to this directory and exit (no server, no room): the pattern
    /// (`--width`, `--height`, `--fps`) encoded as the camera's simulcast layers at
    /// `--video-kbps`, a keyframe every second on every layer, each frame stamped with the
    /// time `--video replay:DIR` will send it (from `--fixture-start-in` on), and the tone
    /// (`--tone-hz`, `--tone-amplitude`) as Opus.
    #[arg(long, value_name = "DIR")]
    write_fixture: Option<PathBuf>,
    /// The fixture's length.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, requires = "write_fixture")]
    fixture_seconds: Duration,
    /// When the fixture's first frame is due, from now: a replay sends each frame at its
    /// stamped time (frames already due when it starts are skipped).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, requires = "write_fixture")]
    fixture_start_in: Duration,
    /// Stay this long, then leave (e.g. `30s`, `2m`). Default: until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Turn the camera off (muted, as the others see it) this long after joining.
    #[arg(long, value_parser = humantime::parse_duration)]
    camera_off_at: Option<Duration>,
    /// Turn the microphone off this long after joining.
    #[arg(long, value_parser = humantime::parse_duration)]
    mic_off_at: Option<Duration>,
    /// Append every room event to this file as a JSON line (joined, peer_joined/left,
    /// track_added/removed/ready/muted/unmuted with the publisher's name, kind and source,
    /// screen_share_started/ended, connection, error), for tests and scripts that watch the
    /// room through the bot.
    #[arg(long)]
    events: Option<PathBuf>,
    /// Receive other participants' video without decoding it (a load generator that only
    /// publishes; remote video statistics stay at zero).
    #[arg(long)]
    no_video_decode: bool,
    /// Receive other participants' audio without decoding or mixing it (with
    /// `--no-video-decode`, a load generator that costs little; remote audio statistics stay at
    /// zero).
    #[arg(long)]
    no_audio_decode: bool,
    /// Show every remote video at this size, WIDTHxHEIGHT in pixels (e.g. 320x180; 0x0: not
    /// shown, as a paused tile): the server is told (`set_view_sizes`) as each track arrives
    /// and may forward a smaller layer or none. Default: tell nothing (the server sends the
    /// largest). `--stats-json` reports each track's largest decoded size and size changes.
    #[arg(long, value_name = "WxH", value_parser = parse_view_size)]
    view_size: Option<(u32, u32)>,
    /// Write what was measured to this JSON file when leaving.
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// Pattern width.
    #[arg(long, default_value_t = 640)]
    width: u32,
    /// Pattern height.
    #[arg(long, default_value_t = 360)]
    height: u32,
    /// Frames per second.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=60))]
    fps: u32,
    /// VP8 target bitrate, kbit/s.
    #[arg(long, default_value_t = 800, value_parser = clap::value_parser!(u32).range(50..=20_000))]
    video_kbps: u32,
    /// Tone frequency, Hz.
    #[arg(long, default_value_t = 440.0)]
    tone_hz: f64,
    /// Amplitude of the tone, 0.0..=1.0 of full scale (0.3 ≈ −10 dBov).
    #[arg(long, default_value_t = 0.3, value_parser = parse_amplitude)]
    tone_amplitude: f64,
    /// Play received audio on the default speaker instead of discarding it.
    #[arg(long)]
    speaker: bool,
    /// Local IP address for media (`127.0.0.1` for a server on loopback; the default gathers
    /// every non-loopback interface).
    #[arg(long, default_value = "0.0.0.0")]
    media_ip: IpAddr,
    /// Do not rejoin after losing the connection; exit with code 6 instead.
    #[arg(long)]
    no_reconnect: bool,
    /// Do not print the status line.
    #[arg(long, short)]
    quiet: bool,
    /// Once joined, send this chat line: a message to everyone, or a command such as
    /// `/msg NAME text`, `/hand`, `/mute NAME`, `/stopscreen NAME`, `/remove NAME reason`,
    /// `/lock`, `/end` (`/help` lists them).
    #[arg(long)]
    say: Option<String>,
    /// Send `--say` again at this interval (e.g. `5s`).
    #[arg(long, value_parser = humantime::parse_duration, requires = "say")]
    say_every: Option<Duration>,
    /// Invitation token, for servers that admit token holders only (`videoroom-server token`
    /// makes one).
    #[arg(long, env = "VIDEOROOM_TOKEN")]
    token: Option<String>,
    /// SHA-256 fingerprint (`AA:BB:…`) of a `wss://` server's self-signed certificate to trust
    /// (the server logs it at start-up); repeatable. System authorities are always trusted.
    #[arg(long = "trust-certificate", value_name = "FINGERPRINT")]
    trust_certificates: Vec<String>,
    /// Raise the hand once joined.
    #[arg(long)]
    raise_hand: bool,
    /// Read chat lines and commands (as for `--say`) from standard input, one per line.
    #[arg(long)]
    commands_from_stdin: bool,
    /// Share a screen once joined: `x11` (the whole X screen of $DISPLAY), `x11:window=TITLE`
    /// (the first window of $DISPLAY with exactly that title, looked up when the share starts; none
    /// is an `error` event and the bot goes on), `portal` (Wayland: what the person picks in the
    /// xdg-desktop-portal's dialog when the share starts), `pattern` (moving test pattern with frame number
    /// and capture time burned in) or `file:PATH` (a .y4m file, looped).
    #[arg(long, value_parser = screen::parse_screen)]
    screen: Option<screen::ScreenArg>,
    /// Size of the `--screen pattern`, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720", value_parser = screen::parse_size, requires = "screen")]
    screen_size: (u32, u32),
    /// Frames per second of the screen share.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=30), requires = "screen")]
    screen_fps: u32,
    /// VP8 target bitrate of the screen share, kbit/s.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u32).range(50..=20_000), requires = "screen")]
    screen_kbps: u32,
    /// Start sharing this long after joining (e.g. `5s`).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, requires = "screen")]
    screen_after: Duration,
    /// Stop sharing this long after it started. Default: share until the bot ends.
    #[arg(long, value_parser = humantime::parse_duration, requires = "screen")]
    screen_for: Option<Duration>,
    /// Open a window titled `videoroom-pattern` on $DISPLAY that shows the moving test pattern
    /// (15 fps, frame number and draw time burned in) for as long as the bot runs, for this bot's
    /// `--screen x11:window=videoroom-pattern` or another app to share. Size WIDTHxHEIGHT
    /// (default 1280x720).
    #[arg(long, value_name = "WxH", num_args = 0..=1, default_missing_value = "1280x720", value_parser = screen::parse_size)]
    show_pattern_window: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
enum VideoArg {
    Pattern,
    File(PathBuf),
    Camera(Option<String>),
    Replay(PathBuf),
    None,
}

#[derive(Debug, Clone)]
enum AudioArg {
    Tone,
    File(PathBuf),
    Mic(Option<String>),
    Replay(PathBuf),
    None,
}

fn parse_video(s: &str) -> Result<VideoArg, String> {
    match s {
        "pattern" => Ok(VideoArg::Pattern),
        "camera" => Ok(VideoArg::Camera(None)),
        "none" => Ok(VideoArg::None),
        _ => {
            if let Some(path) = s.strip_prefix("file:").filter(|p| !p.is_empty()) {
                Ok(VideoArg::File(path.into()))
            } else if let Some(dir) = s.strip_prefix("replay:").filter(|p| !p.is_empty()) {
                Ok(VideoArg::Replay(dir.into()))
            } else if let Some(device) = s.strip_prefix("camera:").filter(|d| !d.is_empty()) {
                Ok(VideoArg::Camera(Some(device.to_owned())))
            } else {
                Err("expected pattern, file:PATH, camera, camera:DEVICE, replay:DIR or none".into())
            }
        }
    }
}

fn parse_amplitude(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(a) if (0.0..=1.0).contains(&a) => Ok(a),
        _ => Err("expected a number from 0.0 to 1.0 (of full scale)".into()),
    }
}

fn parse_audio(s: &str) -> Result<AudioArg, String> {
    match s {
        "tone" => Ok(AudioArg::Tone),
        "mic" => Ok(AudioArg::Mic(None)),
        "none" => Ok(AudioArg::None),
        _ => {
            if let Some(path) = s.strip_prefix("file:").filter(|p| !p.is_empty()) {
                Ok(AudioArg::File(path.into()))
            } else if let Some(dir) = s.strip_prefix("replay:").filter(|p| !p.is_empty()) {
                Ok(AudioArg::Replay(dir.into()))
            } else if let Some(device) = s.strip_prefix("mic:").filter(|d| !d.is_empty()) {
                Ok(AudioArg::Mic(Some(device.to_owned())))
            } else {
                Err("expected tone, file:PATH, mic, mic:DEVICE, replay:DIR or none".into())
            }
        }
    }
}

/// The largest side `--view-size` takes.
const MAX_VIEW_SIDE: u32 = 7680;

/// `--view-size`: `WIDTHxHEIGHT` with both sides in 1..=7680, or `0x0` (not shown).
fn parse_view_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || {
        format!(
            "expected WIDTHxHEIGHT such as 320x180 (each side 1..={MAX_VIEW_SIDE}), or 0x0 for \
             hidden; got {s:?}"
        )
    };
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    match (w, h) {
        (0, 0) => Ok((0, 0)),
        (1..=MAX_VIEW_SIDE, 1..=MAX_VIEW_SIDE) => Ok((w, h)),
        _ => Err(bad()),
    }
}

mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const BAD_ARGUMENTS: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const ROOM_FULL: u8 = 4;
    pub const REFUSED: u8 = 5;
    pub const LOST: u8 = 6;
    pub const SENT_AWAY: u8 = 7;
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("videoroom-bot: cannot start the runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let code = runtime.block_on(run(args));
    // Reading standard input (`--commands-from-stdin`) blocks a thread that cannot be
    // cancelled: waiting for it would keep the bot until the next line of input.
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// Builds the join options from the arguments; a media file that cannot be used is a bad
/// argument.
fn join_options(args: &Args) -> Result<JoinOptions, String> {
    let mut options = JoinOptions::default()
        .with_udp_addrs(vec![SocketAddr::new(args.media_ip, 0)])
        .with_audio_output(if args.speaker {
            AudioOutput::Speaker { device: None }
        } else {
            AudioOutput::Null
        })
        .with_reconnect((!args.no_reconnect).then_some(Duration::from_secs(60)))
        .with_video_decoding(!args.no_video_decode)
        .with_audio_decoding(!args.no_audio_decode)
        .with_default_view_size(args.view_size)
        .with_token(args.token.clone())
        .with_trusted_certificates(args.trust_certificates.clone());
    let (w, h, fps, kbps) = (args.width, args.height, args.fps, args.video_kbps);
    options = match &args.video {
        VideoArg::Pattern => {
            let pattern = PatternSource::new(w, h, fps).map_err(|e| format!("--video: {e}"))?;
            options.with_video(Box::new(pattern), w, h, fps, kbps)
        }
        VideoArg::File(path) => {
            let file = Y4mSource::open(path)
                .map_err(|e| format!("--video: {e}"))?
                .with_burn_in(true);
            let (fw, fh) = (file.width(), file.height());
            options.with_video(Box::new(file), fw, fh, fps, kbps)
        }
        VideoArg::Camera(device) => options.with_video_input(
            VideoInput::Camera {
                device: device.clone(),
            },
            w,
            h,
            fps,
            kbps,
        ),
        VideoArg::Replay(dir) => {
            let replay = replay::ReplayVideo::open(dir).map_err(|e| format!("--video: {e}"))?;
            let meta = replay.meta();
            let (fw, fh, ffps, fkbps) = (meta.width, meta.height, meta.fps, meta.target_kbps);
            options.with_video(Box::new(replay), fw, fh, ffps, fkbps)
        }
        VideoArg::None => options,
    };
    options = match &args.audio {
        AudioArg::Tone => options.with_audio(Box::new(ToneSource::new(
            args.tone_hz,
            args.tone_amplitude,
            Channels::Mono,
        ))),
        AudioArg::File(path) => {
            let file = WavSource::open(path).map_err(|e| format!("--audio: {e}"))?;
            options.with_audio(Box::new(file))
        }
        AudioArg::Mic(device) => options.with_audio_input(AudioInput::Microphone {
            device: device.clone(),
        }),
        AudioArg::Replay(dir) => {
            let replay = replay::ReplayAudio::open(dir).map_err(|e| format!("--audio: {e}"))?;
            options.with_audio(Box::new(replay))
        }
        AudioArg::None => options,
    };
    Ok(options)
}

/// `--write-fixture`: writes the fixture; the exit code.
fn write_fixture(args: &Args, dir: &std::path::Path) -> u8 {
    let start = videoroom_client::media::unix_micros_now()
        + u64::try_from(args.fixture_start_in.as_micros()).unwrap_or(u64::MAX / 2);
    let spec = replay::FixtureSpec {
        width: args.width,
        height: args.height,
        fps: args.fps,
        seconds: args.fixture_seconds.as_secs().clamp(1, 3600) as u32,
        start_unix_micros: start,
        target_kbps: args.video_kbps,
        keyframe_interval: args.fps,
        tone_hz: args.tone_hz,
        amplitude: args.tone_amplitude,
    };
    let began = Instant::now();
    match replay::generate(dir, &spec) {
        Ok(meta) => {
            if !args.quiet {
                println!(
                    "fixture {}: {} frames of {:?} at {} fps, first due at {} µs, written in {:.1} s",
                    dir.display(),
                    meta.frames,
                    meta.layers,
                    meta.fps,
                    meta.start_unix_micros,
                    began.elapsed().as_secs_f64()
                );
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("videoroom-bot: --write-fixture: {e}");
            exit::FAILURE
        }
    }
}

async fn run(args: Args) -> u8 {
    if let Some(dir) = &args.write_fixture {
        return write_fixture(&args, dir);
    }
    let (server, room_name) = (
        args.server.clone().unwrap_or_default(),
        args.room.clone().unwrap_or_default(),
    );
    let options = match join_options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("videoroom-bot: {e}");
            return exit::BAD_ARGUMENTS;
        }
    };
    // Before the share is planned: `--screen x11:window=videoroom-pattern` may name it.
    let _pattern_window = match args.show_pattern_window {
        Some(size) => match screen::show_pattern_window(size) {
            Ok(window) => {
                if !args.quiet {
                    println!(
                        "showing the pattern in window {} titled {:?}",
                        window.source_id(),
                        screen::PATTERN_WINDOW_TITLE
                    );
                }
                Some(window)
            }
            Err(e) => {
                eprintln!("videoroom-bot: {e}");
                return exit::BAD_ARGUMENTS;
            }
        },
        None => None,
    };
    let mut screen_source = match &args.screen {
        Some(arg) => match screen::plan(arg, args.screen_size, args.screen_fps, args.screen_kbps) {
            Ok(planned) => Some(planned),
            Err(e) => {
                eprintln!("videoroom-bot: {e}");
                return exit::BAD_ARGUMENTS;
            }
        },
        None => None,
    };
    let started = Instant::now();
    let (room, mut events) = match Room::join(&server, &room_name, &args.name, options).await {
        Ok(joined) => joined,
        Err(e) => {
            eprintln!(
                "videoroom-bot: cannot join room {:?} on {}: {e}",
                room_name, server
            );
            return match &e {
                JoinError::Unreachable(_) | JoinError::Timeout(_) => exit::UNREACHABLE,
                JoinError::Refused {
                    code: ErrorCode::RoomFull,
                    ..
                } => exit::ROOM_FULL,
                JoinError::Refused { .. } => exit::REFUSED,
                _ => exit::FAILURE,
            };
        }
    };
    let join_ms = started.elapsed().as_secs_f64() * 1000.0;
    if !args.quiet {
        println!(
            "joined room {:?} as {:?} ({}) in {join_ms:.0} ms",
            room_name,
            args.name,
            room.peer_id()
        );
    }

    let mut bot = Bot::new(started, join_ms);
    bot.people.own_name = args.name.clone();
    if let Some(path) = &args.events {
        match std::fs::File::create(path) {
            Ok(file) => bot.event_log = Some(std::io::BufWriter::new(file)),
            Err(e) => {
                eprintln!("videoroom-bot: cannot write {}: {e}", path.display());
                room.leave().await;
                return exit::BAD_ARGUMENTS;
            }
        }
    }
    let joined_at = tokio::time::Instant::now();
    let deadline = args.duration.map(|d| joined_at + d);
    let mut camera_off = args.camera_off_at.map(|d| joined_at + d);
    let mut mic_off = args.mic_off_at.map(|d| joined_at + d);
    let mut screen_at = screen_source
        .as_ref()
        .map(|_| joined_at + args.screen_after);
    let mut screen_stop = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut say_at = args.say.as_ref().map(|_| joined_at);
    if args.raise_hand
        && let Err(e) = room.set_hand_raised(true).await
    {
        eprintln!("videoroom-bot: cannot raise the hand: {e}");
    }
    let mut stdin = args.commands_from_stdin.then(|| {
        use tokio::io::AsyncBufReadExt;
        tokio::io::BufReader::new(tokio::io::stdin()).lines()
    });
    let mut status = StatusLine::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let lost = loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(RoomEvent::Closed { reason }) => {
                    bot.log_event(&RoomEvent::Closed { reason: reason.clone() });
                    break Some(reason);
                }
                Some(event) => bot.on_event(&room, event),
                None => break Some("the room task ended".into()),
            },
            _ = sleep_until(say_at) => {
                say_at = args.say_every.map(|every| tokio::time::Instant::now() + every);
                if let Some(line) = &args.say {
                    bot.chat_line(&room, line).await;
                }
            }
            line = next_line(&mut stdin) => match line {
                Some(line) => bot.chat_line(&room, &line).await,
                None => stdin = None,
            },
            _ = tick.tick() => {
                bot.snapshot(&room);
                let line = status.next(&room, &bot).await;
                if !args.quiet {
                    println!("{line}");
                }
            }
            _ = sleep_until(camera_off) => {
                camera_off = None;
                match room.set_camera_enabled(false).await {
                    Ok(()) => println!("camera off"),
                    Err(e) => eprintln!("videoroom-bot: cannot turn the camera off: {e}"),
                }
            }
            _ = sleep_until(mic_off) => {
                mic_off = None;
                match room.set_microphone_enabled(false).await {
                    Ok(()) => println!("microphone off"),
                    Err(e) => eprintln!("videoroom-bot: cannot turn the microphone off: {e}"),
                }
            }
            _ = sleep_until(screen_at) => {
                screen_at = None;
                if let Some(planned) = screen_source.take() {
                    let started = match screen::resolve(planned).await {
                        Ok(prepared) => bot.start_screen(&room, prepared).await,
                        Err(message) => {
                            bot.screen_failed(message);
                            false
                        }
                    };
                    if started {
                        screen_stop = args.screen_for.map(|d| tokio::time::Instant::now() + d);
                    }
                }
            }
            _ = sleep_until(screen_stop) => {
                screen_stop = None;
                match room.stop_screen_share().await {
                    // Ended meanwhile (its source, a moderator): its event told of it.
                    Ok(()) | Err(RoomError::NoScreenShare) => {}
                    Err(e) => {
                        eprintln!("videoroom-bot: cannot stop the screen share: {e}");
                        bot.errors.push(format!("stopping the screen share: {e}"));
                    }
                }
            }
            _ = sleep_until(deadline) => break None,
            _ = &mut ctrl_c => break None,
        }
    };

    let report = bot.report(&args, &room);
    let code = match &lost {
        Some(reason) if bot.people.sent_away => {
            eprintln!("videoroom-bot: {reason}");
            exit::SENT_AWAY
        }
        Some(reason) => {
            eprintln!("videoroom-bot: session lost: {reason}");
            exit::LOST
        }
        None => 0,
    };
    room.leave().await;
    if let Some(path) = &args.stats_json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("videoroom-bot: cannot write {}: {e}", path.display());
            return exit::FAILURE;
        }
    }
    code
}

/// The next line of standard input, if it is read; pends forever otherwise. `None` at its end.
async fn next_line(
    stdin: &mut Option<tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>>,
) -> Option<String> {
    match stdin {
        Some(lines) => lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
    }
}

/// A track's source as the protocol spells it (`"camera"`, `"screen"`…).
fn source_name(source: TrackSource) -> &'static str {
    match source {
        TrackSource::Camera => "camera",
        TrackSource::Microphone => "microphone",
        TrackSource::Screen => "screen",
        TrackSource::ScreenAudio => "screen_audio",
        _ => "other",
    }
}

/// What the bot keeps about one remote track.
struct Remote {
    info: TrackInfo,
    present: bool,
    /// From when its first frame is timed: our join for tracks already in the room when we
    /// joined, its announcement for tracks published later.
    since: Instant,
    /// The track's frames and counters; the counters stay readable after the track is removed.
    handle: Option<RemoteVideo>,
    video: Option<Arc<Mutex<VideoWatch>>>,
    watcher: Option<JoinHandle<()>>,
    last: Option<RemoteTrackReport>,
}

struct Bot {
    event_log: Option<std::io::BufWriter<std::fs::File>>,
    started: Instant,
    join_ms: f64,
    names: HashMap<PeerId, String>,
    peers: usize,
    remotes: HashMap<TrackId, Remote>,
    errors: Vec<String>,
    joins: u64,
    connection: Option<ConnectionState>,
    people: chat::People,
    /// Our screen share, once started.
    screen: Option<screen::Share>,
    /// Our camera's uplink budget, sampled every second (see `LocalTrackReport`).
    budget_timeline: Vec<[u64; 4]>,
}

impl Bot {
    fn new(started: Instant, join_ms: f64) -> Self {
        Self {
            event_log: None,
            started,
            join_ms,
            names: HashMap::new(),
            peers: 0,
            remotes: HashMap::new(),
            errors: Vec::new(),
            joins: 0,
            connection: None,
            people: chat::People::default(),
            screen: None,
            budget_timeline: Vec::new(),
        }
    }

    /// Starts sharing `prepared`; says so on stdout and in the event log. A failure is an
    /// `error` event and the bot goes on without a share, as without a camera. Returns whether
    /// the share started.
    async fn start_screen(&mut self, room: &RoomHandle, prepared: screen::Prepared) -> bool {
        let screen::Prepared {
            source,
            settings,
            frames,
        } = prepared;
        match room.start_screen_share(source, settings).await {
            Ok(track_id) => {
                println!(
                    "sharing the screen ({}x{} at {} fps) as {track_id}",
                    settings.width, settings.height, settings.fps
                );
                self.write_line(serde_json::json!({
                    "event": "screen_share_started",
                    "track_id": track_id.as_str(),
                    "width": settings.width,
                    "height": settings.height,
                    "fps": settings.fps,
                }));
                self.screen = Some(screen::Share {
                    track_id,
                    frames,
                    started: Instant::now(),
                    ended: None,
                });
                true
            }
            Err(e) => {
                self.screen_failed(format!("cannot share the screen: {e}"));
                false
            }
        }
    }

    /// A share that could not start: an `error` event, stderr, and the report's errors.
    fn screen_failed(&mut self, message: String) {
        self.write_line(serde_json::json!({"event": "error", "message": message}));
        eprintln!("videoroom-bot: {message}");
        self.errors.push(message);
    }

    /// Runs a chat line or command (`--say`, standard input) and prints what came of it.
    async fn chat_line(&mut self, room: &RoomHandle, line: &str) {
        match self.people.run_line(room, line).await {
            Ok(done) if done.is_empty() => {}
            Ok(done) => println!("{done}"),
            Err(e) => eprintln!("videoroom-bot: {line:?}: {e}"),
        }
    }

    /// Appends `event` to the `--events` file as one JSON line.
    fn log_event(&mut self, event: &RoomEvent) {
        use serde_json::{Value, json};
        if self.event_log.is_none() {
            return;
        }
        let name = |names: &HashMap<PeerId, String>, id: &PeerId| {
            names.get(id).cloned().unwrap_or_default()
        };
        let track = |bot: &Bot, id: &TrackId, event: &str| -> Value {
            match bot.remotes.get(id) {
                Some(r) => json!({
                    "event": event,
                    "track_id": id.as_str(),
                    "peer_id": r.info.peer_id.as_str(),
                    "name": name(&bot.names, &r.info.peer_id),
                    "kind": kind_name(r.info.kind),
                    "source": source_name(r.info.source),
                }),
                None => json!({"event": event, "track_id": id.as_str()}),
            }
        };
        let line = match event {
            RoomEvent::Joined {
                peer_id,
                peers,
                room,
            } => json!({
                "event": "joined",
                "peer_id": peer_id.as_str(),
                "peers": peers
                    .iter()
                    .map(|p| json!({"peer_id": p.peer_id.as_str(), "name": p.display_name}))
                    .collect::<Vec<_>>(),
                "moderator": room.moderator,
                "locked": room.locked,
                "chat_history": room.chat_history.len(),
            }),
            RoomEvent::PeerJoined(p) => json!({
                "event": "peer_joined", "peer_id": p.peer_id.as_str(), "name": p.display_name,
            }),
            RoomEvent::PeerUpdated(p) => json!({
                "event": "peer_updated", "peer_id": p.peer_id.as_str(), "name": p.display_name,
                "hand_raised": p.hand_raised_at.is_some(), "moderator": p.moderator,
            }),
            RoomEvent::PeerLeft { peer_id } => json!({
                "event": "peer_left", "peer_id": peer_id.as_str(), "name": name(&self.names, peer_id),
            }),
            RoomEvent::TrackAdded(info) => json!({
                "event": "track_added",
                "track_id": info.track_id.as_str(),
                "peer_id": info.peer_id.as_str(),
                "name": name(&self.names, &info.peer_id),
                "kind": kind_name(info.kind),
                "source": source_name(info.source),
                "muted": info.muted,
            }),
            RoomEvent::TrackReady { track_id } => track(self, track_id, "track_ready"),
            RoomEvent::TrackRemoved { track_id } => track(self, track_id, "track_removed"),
            RoomEvent::TrackMuted { track_id } => track(self, track_id, "track_muted"),
            RoomEvent::TrackUnmuted { track_id } => track(self, track_id, "track_unmuted"),
            RoomEvent::ConnectionState(state) => {
                json!({"event": "connection", "state": format!("{state:?}").to_lowercase()})
            }
            RoomEvent::Error(e) => json!({"event": "error", "message": e.to_string()}),
            RoomEvent::Closed { reason } => json!({"event": "closed", "reason": reason}),
            RoomEvent::ScreenShareEnded { reason } => {
                let mut line = json!({
                    "event": "screen_share_ended",
                    "reason": screen::end_name(reason),
                    "track_id": self.screen.as_ref().map(|s| s.track_id.as_str()),
                });
                match reason {
                    ScreenShareEnd::SourceEnded(detail) => line["detail"] = json!(detail),
                    ScreenShareEnd::Moderator(by) => {
                        line["by"] = json!(name(&self.names, by));
                        line["by_id"] = json!(by.as_str());
                    }
                    _ => {}
                }
                line
            }
            other => match self.people.event_line(other) {
                Some(line) => line,
                None => json!({"event": format!("{other:?}")}),
            },
        };
        self.write_line(line);
    }

    /// Appends `line`, stamped with the time since the start, to the `--events` file.
    fn write_line(&mut self, mut line: serde_json::Value) {
        line["t_ms"] = serde_json::json!(self.started.elapsed().as_millis() as u64);
        if let Some(log) = self.event_log.as_mut() {
            use std::io::Write;
            let written = serde_json::to_writer(&mut *log, &line)
                .map_err(std::io::Error::other)
                .and_then(|()| log.write_all(b"\n"))
                .and_then(|()| log.flush());
            if let Err(e) = written {
                eprintln!("videoroom-bot: writing the event log failed: {e}; it stops here");
                self.event_log = None;
            }
        }
    }

    fn on_event(&mut self, room: &RoomHandle, event: RoomEvent) {
        self.log_event(&event);
        self.people.on_event(&event);
        match event {
            RoomEvent::Joined { peers, .. } => {
                self.joins += 1;
                self.peers = peers.len();
                for p in peers {
                    self.names.insert(p.peer_id, p.display_name);
                }
            }
            RoomEvent::PeerJoined(p) => {
                self.peers += 1;
                self.names.insert(p.peer_id, p.display_name);
            }
            RoomEvent::PeerUpdated(p) => {
                self.names.insert(p.peer_id, p.display_name);
            }
            RoomEvent::PeerLeft { .. } => self.peers = self.peers.saturating_sub(1),
            RoomEvent::TrackAdded(info) => self.on_track_added(room, info),
            RoomEvent::TrackRemoved { track_id } => {
                self.snapshot(room);
                if let Some(remote) = self.remotes.get_mut(&track_id) {
                    remote.present = false;
                    if let Some(w) = remote.watcher.take() {
                        w.abort();
                    }
                }
            }
            RoomEvent::TrackMuted { ref track_id } | RoomEvent::TrackUnmuted { ref track_id } => {
                let muted = matches!(event, RoomEvent::TrackMuted { .. });
                if let Some(remote) = self.remotes.get_mut(track_id) {
                    remote.info.muted = muted;
                    if let Some(video) = &remote.video {
                        video
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .set_muted(muted);
                    }
                }
            }
            RoomEvent::ConnectionState(state) => {
                if state == ConnectionState::Reconnecting {
                    eprintln!("videoroom-bot: connection lost; reconnecting");
                }
                self.connection = Some(state);
            }
            RoomEvent::Error(e) => {
                eprintln!("videoroom-bot: error: {e}");
                self.errors.push(e.to_string());
            }
            RoomEvent::TrackReady { .. } | RoomEvent::Closed { .. } => {}
            RoomEvent::ScreenShareEnded { reason } => {
                match &reason {
                    ScreenShareEnd::Stopped => println!("screen share stopped"),
                    ScreenShareEnd::SourceEnded(why) => {
                        eprintln!("videoroom-bot: the screen share ended: {why}")
                    }
                    ScreenShareEnd::Moderator(by) => println!(
                        "screen share stopped by the moderator {}",
                        self.names.get(by).map_or(by.as_str(), String::as_str)
                    ),
                    other => println!("screen share ended ({other:?})"),
                }
                if let Some(share) = self.screen.as_mut() {
                    share.ended = Some((Instant::now(), reason));
                }
            }
            RoomEvent::Chat(m) => {
                let private = if m.to.is_some() { " (private)" } else { "" };
                println!("{}{private}: {}", m.from_name, m.text);
            }
            // Several a second while people talk: in `--events` only.
            RoomEvent::ActiveSpeakers(_) => {}
            other => {
                if let Some(line) = self.people.event_line(&other) {
                    println!("{line}");
                }
            }
        }
    }

    fn on_track_added(&mut self, room: &RoomHandle, info: TrackInfo) {
        // The room announces the tracks present right after `Joined`, before any connection
        // state: those were there when we joined.
        let initial = self.joins == 1 && self.connection.is_none();
        let started = self.started;
        let remote = self
            .remotes
            .entry(info.track_id.clone())
            .or_insert_with(|| Remote {
                info: info.clone(),
                present: true,
                since: if initial { started } else { Instant::now() },
                handle: None,
                video: None,
                watcher: None,
                last: None,
            });
        remote.present = true;
        remote.info.muted = info.muted;
        if info.kind == MediaKind::Video
            && remote.watcher.as_ref().is_none_or(|w| w.is_finished())
            && let Some(video) = room.remote_video(&info.track_id)
        {
            remote.handle = Some(video.clone());
            let record = Arc::clone(remote.video.get_or_insert_with(Default::default));
            record
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set_muted(info.muted);
            remote.watcher = Some(tokio::spawn(stats::watch_video(video, record)));
        }
    }

    /// Refreshes the saved report of every present track (kept after a track is removed).
    fn snapshot(&mut self, room: &RoomHandle) {
        if let Some(s) = room.camera_stats()
            && self.budget_timeline.len() < stats::MAX_BUDGET_SAMPLES
        {
            self.budget_timeline.push([
                stats::wall_ms(),
                u64::from(s.budget_kbps.unwrap_or(0)),
                u64::from(s.layers_paused_by_budget),
                u64::from(s.layers_sent),
            ]);
        }
        for (track_id, remote) in &mut self.remotes {
            if !remote.present {
                continue;
            }
            let peer_name = self
                .names
                .get(&remote.info.peer_id)
                .cloned()
                .unwrap_or_default();
            let mut report = RemoteTrackReport {
                track_id: track_id.to_string(),
                peer_id: remote.info.peer_id.to_string(),
                peer_name,
                kind: kind_name(remote.info.kind),
                source: source_name(remote.info.source),
                frames_decoded: 0,
                packets_received: None,
                frames_dropped: None,
                frames_concealed: None,
                join_to_first_frame_ms: None,
                capture_to_decode: None,
                freezes: None,
                longest_gap_ms: None,
                frame_numbers_increasing: None,
                last_frame_number: None,
                max_width: None,
                max_height: None,
                size_changes: None,
                size_timeline: None,
                freeze_timeline: None,
                dominant_hz: None,
                muted: remote.info.muted,
                present: true,
            };
            let since = |first: Option<Instant>| {
                first.map(|f| f.saturating_duration_since(remote.since).as_secs_f64() * 1000.0)
            };
            match remote.info.kind {
                MediaKind::Video => {
                    let Some(video) = room
                        .remote_video(track_id)
                        .or_else(|| remote.handle.clone())
                    else {
                        continue;
                    };
                    let s = video.stats();
                    report.frames_decoded = s.frames_decoded;
                    report.frames_dropped = Some(s.frames_dropped);
                    report.join_to_first_frame_ms = since(s.first_frame_at);
                    report.max_width = Some(s.max_width);
                    report.max_height = Some(s.max_height);
                    report.size_changes = Some(s.size_changes);
                    if let Some(watch) = &remote.video {
                        let w = watch.lock().unwrap_or_else(|p| p.into_inner());
                        report.capture_to_decode = stats::latency(&w.latencies_us);
                        // A freeze still going on (no frame for > 500 ms up to now) counts too.
                        let ongoing = w.ongoing_gap(Instant::now());
                        report.freezes = Some(w.freezes + u64::from(ongoing > stats::FREEZE));
                        report.longest_gap_ms =
                            Some(w.longest_gap_ms.max(ongoing.as_millis() as u64));
                        report.frame_numbers_increasing =
                            Some(w.stamped_frames > 0 && w.number_regressions == 0);
                        report.last_frame_number = w.last_number;
                        report.size_timeline = Some(w.sizes.clone());
                        report.freeze_timeline = Some(w.freeze_list.clone());
                    }
                }
                MediaKind::Audio => {
                    // Gone already (removed while we were looking): keep the last snapshot,
                    // at most a second old. Never decoded (`--no-audio-decode`): the track with
                    // nothing decoded.
                    let Some(audio) = room.remote_audio(track_id) else {
                        if remote.last.is_none() {
                            remote.last = Some(report);
                        }
                        continue;
                    };
                    let s = audio.stats();
                    report.frames_decoded = s.frames_decoded;
                    report.packets_received = Some(s.packets_received);
                    report.frames_concealed = Some(s.frames_concealed);
                    report.join_to_first_frame_ms = since(s.first_frame_at);
                    report.dominant_hz = audio.dominant_frequency();
                }
            }
            remote.last = Some(report);
        }
    }

    fn report(&mut self, args: &Args, room: &RoomHandle) -> Report {
        self.snapshot(room);
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut remote_tracks: Vec<RemoteTrackReport> = self
            .remotes
            .values()
            .filter_map(|r| {
                r.last.clone().map(|mut last| {
                    last.present = r.present;
                    last
                })
            })
            .collect();
        remote_tracks.sort_by(|a, b| {
            (&a.peer_name, a.kind, a.source).cmp(&(&b.peer_name, b.kind, b.source))
        });
        let mut local_tracks = Vec::new();
        let local = [
            (
                MediaKind::Video,
                TrackSource::Camera,
                room.camera_track_id(),
                room.camera_stats(),
            ),
            (
                MediaKind::Audio,
                TrackSource::Microphone,
                room.microphone_track_id(),
                room.microphone_stats(),
            ),
        ];
        for (kind, source, id, stats) in local {
            if let (Some(id), Some(s)) = (id, stats) {
                local_tracks.push(LocalTrackReport {
                    track_id: id.to_string(),
                    kind: kind_name(kind),
                    source: source_name(source),
                    frames_sent: Some(s.frames_sent),
                    packets_sent: Some(s.packets_sent),
                    keyframes_sent: Some(s.keyframes_sent),
                    bitrate_kbps: Some(s.bytes_sent as f64 * 8.0 / 1000.0 / elapsed.max(0.001)),
                    layers_sent: (kind == MediaKind::Video).then_some(s.layers_sent),
                    layers_paused: (kind == MediaKind::Video).then_some(s.layers_paused),
                    budget_kbps: s.budget_kbps,
                    layers_paused_by_budget: (kind == MediaKind::Video)
                        .then_some(s.layers_paused_by_budget),
                    budget_timeline: (kind == MediaKind::Video)
                        .then(|| self.budget_timeline.clone()),
                    frames_captured: None,
                    shared_s: None,
                    active: None,
                });
            }
        }
        if let Some(share) = &self.screen {
            let end = share
                .ended
                .as_ref()
                .map_or_else(Instant::now, |(at, _)| *at);
            // While the share lasts the engine counts what it sent (not after it ended).
            let sent = room.screen_stats();
            local_tracks.push(LocalTrackReport {
                // The current id (a rejoin republishes the share), else the one it had.
                track_id: room
                    .screen_track_id()
                    .unwrap_or_else(|| share.track_id.clone())
                    .to_string(),
                kind: kind_name(MediaKind::Video),
                source: source_name(TrackSource::Screen),
                frames_sent: sent.as_ref().map(|s| s.frames_sent),
                packets_sent: sent.as_ref().map(|s| s.packets_sent),
                keyframes_sent: sent.as_ref().map(|s| s.keyframes_sent),
                bitrate_kbps: sent.as_ref().map(|s| {
                    s.bytes_sent as f64 * 8.0
                        / 1000.0
                        / end
                            .saturating_duration_since(share.started)
                            .as_secs_f64()
                            .max(0.001)
                }),
                layers_sent: sent.as_ref().map(|s| s.layers_sent),
                layers_paused: sent.as_ref().map(|s| s.layers_paused),
                budget_kbps: sent.as_ref().and_then(|s| s.budget_kbps),
                layers_paused_by_budget: sent.as_ref().map(|s| s.layers_paused_by_budget),
                budget_timeline: None,
                frames_captured: Some(share.frames_captured()),
                shared_s: Some(end.saturating_duration_since(share.started).as_secs_f64()),
                active: Some(share.ended.is_none()),
            });
        }
        Report {
            room: args.room.clone().unwrap_or_default(),
            name: args.name.clone(),
            peer_id: room.peer_id().to_string(),
            duration_s: elapsed,
            join_ms: self.join_ms,
            reconnections: self.joins.saturating_sub(1),
            remote_tracks,
            local_tracks,
            errors: self.errors.clone(),
        }
    }
}

/// The once-per-second status line: rates over the last second.
struct StatusLine {
    at: Instant,
    started: Instant,
    frames_in: u64,
    audio_in: u64,
    frames_out: u64,
    audio_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    received: u64,
    lost: i64,
}

impl StatusLine {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            at: now,
            started: now,
            frames_in: 0,
            audio_in: 0,
            frames_out: 0,
            audio_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            received: 0,
            lost: 0,
        }
    }

    async fn next(&mut self, room: &RoomHandle, bot: &Bot) -> String {
        let now = Instant::now();
        let dt = now.duration_since(self.at).as_secs_f64().max(0.001);
        self.at = now;
        let frames_in: u64 = room
            .remote_videos()
            .iter()
            .map(|v| v.stats().frames_decoded)
            .sum();
        let audio_in: u64 = room
            .remote_audios()
            .iter()
            .map(|a| a.stats().frames_decoded)
            .sum();
        let frames_out = room.camera_stats().map_or(0, |s| s.frames_sent);
        let audio_out = room.microphone_stats().map_or(0, |s| s.frames_sent);
        // Bounded: the status line must not hold up events, the deadline or Ctrl-C.
        let conn = tokio::time::timeout(Duration::from_millis(500), room.connection_stats())
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten();
        let rate = |new: u64, old: &mut u64| {
            let r = new.saturating_sub(*old) as f64 / dt;
            *old = new;
            r
        };
        let fps_in = rate(frames_in, &mut self.frames_in);
        let aps_in = rate(audio_in, &mut self.audio_in);
        let fps_out = rate(frames_out, &mut self.frames_out);
        let aps_out = rate(audio_out, &mut self.audio_out);
        let (kbps_in, kbps_out, loss, rtt) = match conn {
            Some(c) => {
                let kin = rate(c.bytes_received, &mut self.bytes_in) * 8.0 / 1000.0;
                let kout = rate(c.bytes_sent, &mut self.bytes_out) * 8.0 / 1000.0;
                let received = c.packets_received.saturating_sub(self.received);
                let lost = (c.packets_lost - self.lost).max(0) as u64;
                self.received = c.packets_received;
                self.lost = c.packets_lost;
                let loss = if received + lost > 0 {
                    lost as f64 * 100.0 / (received + lost) as f64
                } else {
                    0.0
                };
                let rtt = c
                    .rtt_ms
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.1} ms"));
                (kin, kout, loss, rtt)
            }
            None => (0.0, 0.0, 0.0, "-".to_owned()),
        };
        let state = match bot.connection {
            Some(ConnectionState::Connected) => "connected",
            Some(ConnectionState::Reconnecting) => "reconnecting",
            Some(ConnectionState::Failed) => "failed",
            _ => "connecting",
        };
        format!(
            "[{:>4.0}s] peers {} | in {fps_in:.1} fps, {aps_in:.0} audio/s, {kbps_in:.0} kbit/s | \
             out {fps_out:.1} fps, {aps_out:.0} audio/s, {kbps_out:.0} kbit/s | loss {loss:.1}% | \
             rtt {rtt} | {state}",
            now.duration_since(self.started).as_secs_f64(),
            bot.peers,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_sizes() {
        assert_eq!(parse_view_size("320x180"), Ok((320, 180)));
        assert_eq!(parse_view_size("1920X1080"), Ok((1920, 1080)));
        assert_eq!(parse_view_size("0x0"), Ok((0, 0)));
        for bad in [
            "", "320", "320x", "x180", "0x180", "320x0", "-1x5", "7681x10", "axb",
        ] {
            let e = parse_view_size(bad).expect_err(bad);
            assert!(
                e.contains("WIDTHxHEIGHT") && e.contains("0x0"),
                "{bad}: {e}"
            );
        }
    }
}
