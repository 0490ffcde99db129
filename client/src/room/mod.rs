//! The room engine: [`Room::join`] connects, joins, publishes and then runs one task per room
//! that owns the media session (signaling socket, PeerConnection, negotiation) and reports what
//! happens as [`RoomEvent`]s. The application acts through the [`RoomHandle`].
//!
//! Negotiation follows `docs/protocol.md`: the client publishes with its own `sdp_offer`, answers
//! the server's offers, and ignores a server offer while its own is unanswered (the glare rule;
//! the server rolls back and re-offers).
//!
//! Local media outlives a session: sources, encoders and their sending tasks keep running while
//! the room task replaces a lost session (socket closed, media connection failed) with a new one
//! ([`ConnectionState::Reconnecting`]), then binds the senders to the new session's tracks.
//! Remote media goes to per-track slots (video: latest decoded frame; audio: the [`Mixer`]
//! played by the playout thread) that also survive a reconnection when the track is still there.
//!
//! Where things are:
//! - `api.rs`: the public types: inputs and outputs, [`JoinOptions`], [`JoinError`],
//!   [`RoomError`], [`ConnectionState`] and [`RoomEvent`].
//! - `handle.rs`: [`RoomHandle`] and the commands it sends the room task, the state both share,
//!   the event sink and [`ConnectionStats`].
//! - `task.rs`: the room task: its loop, a session's end and the rejoin, installing a session,
//!   and what it does with commands, server messages and PeerConnection events.
//! - `session.rs`: one media session (signaling socket + PeerConnection) and joining with it.
//! - `negotiation.rs`: our offers, the server's answers and offers, rollback, ICE candidates.
//! - `local.rs`: our tracks (send loops that outlive sessions), mute, switching inputs and the
//!   audio output, publishing a new track.
//! - `remote.rs`: remote tracks: their slots, receivers and statistics.
//! - `social.rs`: chat, raised hands and moderation (what a person does besides media).
//! - this file: [`Room::join`] and opening devices.

mod api;
mod handle;
mod local;
mod negotiation;
mod remote;
mod session;
mod social;
mod task;

pub use api::{
    AudioInput, AudioOutput, AudioPublish, ConnectionState, JoinError, JoinOptions, RoomError,
    RoomEvent, ScreenShareEnd, VideoInput, VideoPublish,
};
pub use handle::{ConnectionStats, RoomHandle};
pub use social::{Invite, RoomInfo};

use handle::{EventSink, Shared};
use local::{LocalIds, LocalTrack};
use session::{Link, Session};
use task::RoomTask;

use crate::audio::{Mixer, Playout};
use crate::media::devices::{CameraSource, DeviceError, MicrophoneSource, SpeakerSink};
use crate::media::{AudioSink, AudioSource, NullSink, OpusConfig, OpusEncoder, VideoSource};
use crate::publish::{self, VideoSendSettings};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tracing::Instrument;

/// Entry point.
#[derive(Debug)]
pub struct Room;

impl Room {
    /// Connects to `server_url` (`ws://host:port/ws`), joins `room` as `display_name`, opens
    /// the requested devices, starts publishing what `options` says, and returns the handle
    /// and the event stream. The first event is [`RoomEvent::Joined`], followed by a
    /// [`RoomEvent::TrackAdded`] per track already in the room. A camera or microphone that
    /// cannot be opened is not fatal: a [`RoomError::Device`] event says so and the room goes on
    /// without that track.
    pub async fn join(
        server_url: &str,
        room: &str,
        display_name: &str,
        options: JoinOptions,
    ) -> Result<(RoomHandle, mpsc::Receiver<RoomEvent>), JoinError> {
        let link = Link {
            url: server_url.to_owned(),
            room: room.to_owned(),
            display_name: display_name.to_owned(),
            connect_timeout: options.connect_timeout,
            join_timeout: options.join_timeout,
            udp_addrs: options.udp_addrs.clone(),
            resume_token: None,
            token: options.token.clone(),
            trusted_certificates: options.trusted_certificates.clone(),
            budget: crate::budget::SendBudget::start(),
        };
        // Encoder settings are checked before connecting (a bad setting is a join error); devices
        // are opened once joined (a missing device is not: the room goes on without it).
        let video = match options.video {
            Some(video) => {
                let settings = VideoSendSettings {
                    width: video.width,
                    height: video.height,
                    fps: video.fps,
                    target_kbps: video.target_kbps,
                };
                Some((video.input, publish::new_encoder(&settings)?, settings))
            }
            None => None,
        };
        let audio = match options.audio {
            Some(audio) => {
                let mut config = OpusConfig::voice();
                config.bitrate_bps = audio.bitrate_bps;
                Some((audio.input, OpusEncoder::new(config)?))
            }
            None => None,
        };
        let (session, joined) = Session::connect(&link).await?;
        let mut device_errors = Vec::new();
        let video = match video {
            Some((input, encoder, settings)) => match open_video(input, &settings).await {
                Ok(source) => Some((source, encoder, settings)),
                Err(e) => {
                    device_errors.push(e);
                    None
                }
            },
            None => None,
        };
        let audio = match audio {
            Some((input, encoder)) => match open_audio(input).await {
                Ok(source) => Some((source, encoder)),
                Err(e) => {
                    device_errors.push(e);
                    None
                }
            },
            None => None,
        };
        let sink: Box<dyn AudioSink> = match options.audio_output {
            AudioOutput::Null => Box::new(NullSink::new()),
            AudioOutput::Sink(sink) => sink,
            AudioOutput::Speaker { device } => match open_speaker(device).await {
                Ok(sink) => sink,
                Err(e) => {
                    device_errors.push(e);
                    Box::new(NullSink::new())
                }
            },
        };
        let span = tracing::info_span!("room", room, peer = %joined.peer_id);
        async move {
            tracing::info!(
                peers = joined.peers.len(),
                tracks = joined.tracks.len(),
                "joined"
            );
            let (events_tx, events_rx) = mpsc::channel(options.event_capacity.max(1));
            let (audio_ready_tx, audio_ready) = mpsc::channel(64);
            let mixer = Mixer::new(Some(audio_ready_tx));
            let shared = Arc::new(Shared {
                peer_id: Mutex::new(joined.peer_id.clone()),
                room: Mutex::new(joined.room.clone()),
                local_ids: Mutex::new(LocalIds::default()),
                videos: Mutex::new(HashMap::new()),
                mixer: mixer.clone(),
                dropped_events: AtomicU64::new(0),
            });
            let events = EventSink {
                tx: events_tx,
                shared: Arc::clone(&shared),
            };
            let playout_errors = events.clone_sender();
            let playout = match Playout::start(mixer.clone(), sink, move |e| {
                playout_errors.emit(RoomEvent::Error(RoomError::AudioOutput(e.to_string())));
            }) {
                Ok(p) => Some(p),
                Err(e) => {
                    events.emit(RoomEvent::Error(RoomError::AudioOutput(format!(
                        "cannot start the playout thread: {e}"
                    ))));
                    None
                }
            };

            let (ended_tx, ended_rx) = mpsc::unbounded_channel();
            let mut local = Vec::new();
            if let Some((source, encoder, settings)) = video {
                local.push(LocalTrack::video(
                    source,
                    encoder,
                    settings,
                    ended_tx.clone(),
                    videoroom_protocol::TrackSource::Camera,
                ));
            }
            if let Some((source, encoder)) = audio {
                local.push(LocalTrack::audio(source, encoder, ended_tx.clone()));
            }
            let (ready_tx, ready_rx) = mpsc::channel(64);
            let (commands_tx, commands) = mpsc::channel(16);
            let mut task = RoomTask {
                link,
                reconnect_for: options.reconnect_for,
                decode_video: options.decode_video,
                decode_audio: options.decode_audio,
                commands,
                events,
                shared: Arc::clone(&shared),
                ready_tx,
                ready_rx,
                audio_ready,
                ended_tx,
                ended_rx,
                local,
                session: None,
                playout,
                old_peer_ids: std::collections::HashSet::new(),
                invites: std::collections::VecDeque::new(),
                views: remote::ViewSizes::new(options.default_view_size),
            };
            task.events.emit(RoomEvent::Joined {
                peer_id: joined.peer_id.clone(),
                peers: joined.peers.clone(),
                room: joined.room.clone(),
            });
            for error in device_errors {
                tracing::warn!("{error}");
                task.events.emit(RoomEvent::Error(RoomError::Device(error)));
            }
            task.install(session, joined).await?;
            let handle = tokio::spawn(task.run().in_current_span());
            Ok((
                RoomHandle {
                    commands: commands_tx,
                    shared,
                    task: Some(handle),
                },
                events_rx,
            ))
        }
        .instrument(span)
        .await
    }
}

async fn open_video(
    input: VideoInput,
    settings: &VideoSendSettings,
) -> Result<Box<dyn VideoSource>, DeviceError> {
    match input {
        VideoInput::Source(source) => Ok(source),
        VideoInput::Camera { device } => {
            let VideoSendSettings {
                width, height, fps, ..
            } = *settings;
            // Opening a V4L2 device blocks (ioctl, buffer allocation).
            tokio::task::spawn_blocking(move || {
                CameraSource::open(device.as_deref(), width, height, fps)
                    .map(|c| Box::new(c) as Box<dyn VideoSource>)
            })
            .await
            .unwrap_or_else(|e| Err(DeviceError::Failed(format!("camera open task: {e}"))))
        }
    }
}

async fn open_audio(input: AudioInput) -> Result<Box<dyn AudioSource>, DeviceError> {
    match input {
        AudioInput::Source(source) => Ok(source),
        AudioInput::Microphone { device } => tokio::task::spawn_blocking(move || {
            MicrophoneSource::open(device.as_deref()).map(|m| Box::new(m) as Box<dyn AudioSource>)
        })
        .await
        .unwrap_or_else(|e| Err(DeviceError::Failed(format!("microphone open task: {e}")))),
    }
}

async fn open_speaker(device: Option<String>) -> Result<Box<dyn AudioSink>, DeviceError> {
    tokio::task::spawn_blocking(move || {
        SpeakerSink::open(device.as_deref()).map(|s| Box::new(s) as Box<dyn AudioSink>)
    })
    .await
    .unwrap_or_else(|e| Err(DeviceError::Failed(format!("speaker open task: {e}"))))
}
