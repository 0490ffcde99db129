//! The camera's simulcast on the wire: the client's publish path (`spawn_layered_sender` with
//! `camera_layers`) sends a 1280×720 pattern through a real PeerConnection to a second one in
//! this process, which reads every packet as it arrived: three SSRCs, each packet with the
//! MID and RID header extensions, 15-bit VP8 picture ids, and keyframes of 1280×720, 640×360
//! and 320×180. Then the same through a real server with `Room::join`: the three layers flow
//! (per-layer send stats) and a second client still decodes the camera.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use videoroom_client::media::{Channels, OpusConfig, OpusEncoder, PatternSource, ToneSource};
use videoroom_client::peer::{PcEvent, build_peer_connection};
use videoroom_client::publish::{self, AudioControl, VideoControl, VideoSendSettings};
use videoroom_client::{Room, RoomEvent};
use videoroom_testkit::{start_server, test_config, ws_url};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};

const BOUND: Duration = Duration::from_secs(20);

/// What the receiving side saw on one SSRC.
#[derive(Debug, Default, Clone)]
struct Seen {
    packets: usize,
    /// Every (MID, RID) pair the packets carried (`None`: the extension was missing).
    labels: Vec<(Option<String>, Option<String>)>,
    /// Every packet's picture id had the M bit (15-bit form).
    short_picture_ids: usize,
    /// The size in the first keyframe's VP8 header.
    keyframe_size: Option<(u32, u32)>,
    /// Audio: every packet's RFC 6464 level byte (`None`: missing).
    audio_levels: Vec<Option<u8>>,
}

/// The VP8 payload after a descriptor (RFC 7741) and whether it starts a partition.
fn vp8_payload(d: &[u8]) -> Option<(bool, Option<u16>, &[u8])> {
    let mut i = 1;
    let start = d.first()? & 0x10 != 0;
    let mut picture_id = None;
    if d[0] & 0x80 != 0 {
        let x = *d.get(1)?;
        i = 2;
        if x & 0x80 != 0 {
            let b = *d.get(2)?;
            if b & 0x80 != 0 {
                picture_id = Some(u16::from_be_bytes([b, *d.get(3)?]));
                i += 2;
            } else {
                picture_id = Some(u16::from(b));
                i += 1;
            }
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    Some((start, picture_id, d.get(i..)?))
}

/// Width and height of a VP8 keyframe (RFC 6386 §9.1), from the start of its first partition.
fn keyframe_size(vp8: &[u8]) -> Option<(u32, u32)> {
    if vp8.len() < 10 || vp8[0] & 0x01 != 0 || vp8[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([vp8[6], vp8[7]]) & 0x3FFF;
    let h = u16::from_le_bytes([vp8[8], vp8[9]]) & 0x3FFF;
    Some((u32::from(w), u32::from(h)))
}

/// Reads every packet of `track` into `seen` (by SSRC), with the extension ids given.
async fn record(
    track: Arc<dyn TrackRemote>,
    ids: (u8, u8, u8),
    seen: Arc<Mutex<HashMap<u32, Seen>>>,
) {
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        let text = |id: u8| {
            packet
                .header
                .get_extension(id)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let mut all = seen.lock().expect("seen");
        let entry = all.entry(packet.header.ssrc).or_default();
        entry.packets += 1;
        let labels = (text(ids.0), text(ids.1));
        if packet.header.payload_type == videoroom_webrtc::OPUS_PT {
            let level = packet
                .header
                .get_extension(ids.2)
                .and_then(|b| b.first().copied());
            entry.audio_levels.push(level);
            if !entry.labels.contains(&labels) {
                entry.labels.push(labels);
            }
            continue;
        }
        if !entry.labels.contains(&labels) {
            entry.labels.push(labels);
        }
        if let Some((start, picture_id, vp8)) = vp8_payload(&packet.payload) {
            if picture_id.is_some_and(|p| p & 0x8000 == 0) || picture_id.is_none() {
                entry.short_picture_ids += 1;
            }
            if start && entry.keyframe_size.is_none() {
                entry.keyframe_size = keyframe_size(vp8);
            }
        }
    }
}

/// Forwards `from`'s candidates to `to` and reports `from`'s connection state.
fn pump(
    mut events: mpsc::Receiver<PcEvent>,
    to: Arc<dyn PeerConnection>,
    tracks: Option<mpsc::UnboundedSender<Arc<dyn TrackRemote>>>,
) -> watch::Receiver<RTCPeerConnectionState> {
    let (state_tx, state_rx) = watch::channel(RTCPeerConnectionState::New);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                PcEvent::LocalCandidate(c) => {
                    let _ = to.add_ice_candidate(c).await;
                }
                PcEvent::State(s) => {
                    let _ = state_tx.send(s);
                }
                PcEvent::Track(t) => {
                    if let Some(tx) = &tracks {
                        let _ = tx.send(t);
                    }
                }
                _ => {}
            }
        }
    });
    state_rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_layers_with_mid_and_rid_on_the_wire() {
    let loopback = ["127.0.0.1:0".parse().expect("address")];
    let (a_tx, a_events) = mpsc::channel(256);
    let (b_tx, b_events) = mpsc::channel(256);
    let a = build_peer_connection(&[], &loopback, a_tx)
        .await
        .expect("sender pc");
    let b = build_peer_connection(&[], &loopback, b_tx)
        .await
        .expect("receiver pc");

    let ssrc = rand::random::<u32>() | 1;
    let layers = publish::camera_layers(ssrc);
    let pairs: Vec<(&str, u32)> = layers
        .iter()
        .map(|l| (l.rid.expect("rid"), l.ssrc))
        .collect();
    let (rtp, init) = videoroom_webrtc::rtp_track_simulcast("peer", "cam", &pairs);
    let rtp = Arc::new(rtp);
    let transceiver = a
        .add_transceiver_from_track(Arc::clone(&rtp) as Arc<dyn TrackLocal>, Some(init))
        .await
        .expect("transceiver");
    let control = Arc::new(VideoControl::new(true));
    control.set_transceiver(&rtp, Arc::clone(&transceiver));
    let audio_ssrc = rand::random::<u32>() | 1;
    let (mic, init) = videoroom_webrtc::rtp_track(
        "peer",
        "mic",
        videoroom_protocol::MediaKind::Audio,
        audio_ssrc,
    );
    let mic = Arc::new(mic);
    let mic_transceiver = a
        .add_transceiver_from_track(Arc::clone(&mic) as Arc<dyn TrackLocal>, Some(init))
        .await
        .expect("audio transceiver");
    let audio_control = Arc::new(AudioControl::new(true));
    audio_control.set_transceiver(&mic, Arc::clone(&mic_transceiver));

    let (tracks_tx, mut tracks_rx) = mpsc::unbounded_channel();
    let mut a_state = pump(a_events, Arc::clone(&b), None);
    let _b_state = pump(b_events, Arc::clone(&a), Some(tracks_tx));

    let offer = a.create_offer(None).await.expect("offer");
    assert!(
        offer.sdp.contains("a=simulcast:send q;h;f"),
        "{}",
        offer.sdp
    );
    a.set_local_description(offer.clone())
        .await
        .expect("local offer");
    b.set_remote_description(offer).await.expect("remote offer");
    let answer = b.create_answer(None).await.expect("answer");
    b.set_local_description(answer.clone())
        .await
        .expect("local answer");
    a.set_remote_description(answer)
        .await
        .expect("remote answer");

    let sender = transceiver
        .sender()
        .await
        .expect("sender")
        .expect("a sender");
    let extensions = sender
        .get_parameters()
        .await
        .expect("parameters")
        .rtp_parameters
        .header_extensions;
    let id = |uri: &str| {
        extensions
            .iter()
            .find(|e| e.uri == uri)
            .map(|e| e.id as u8)
            .unwrap_or_else(|| panic!("{uri} negotiated: {extensions:?}"))
    };
    let mid = transceiver.mid().await.expect("mid").expect("a mid");
    let audio_mid = mic_transceiver.mid().await.expect("mid").expect("a mid");
    let audio_extensions = mic_transceiver
        .sender()
        .await
        .expect("sender")
        .expect("a sender")
        .get_parameters()
        .await
        .expect("parameters")
        .rtp_parameters
        .header_extensions;
    let level_id = audio_extensions
        .iter()
        .find(|e| e.uri == videoroom_webrtc::AUDIO_LEVEL_URI)
        .map(|e| e.id as u8)
        .expect("audio level negotiated");
    let ids = (
        id(videoroom_webrtc::MID_URI),
        id(videoroom_webrtc::RID_URI),
        level_id,
    );

    tokio::time::timeout(
        BOUND,
        a_state.wait_for(|s| *s == RTCPeerConnectionState::Connected),
    )
    .await
    .expect("connected in time")
    .expect("state");

    let (binding_tx, binding) = watch::channel(None);
    let (ended_tx, _ended_rx) = mpsc::unbounded_channel();
    let settings = VideoSendSettings {
        width: 1280,
        height: 720,
        fps: 30,
        target_kbps: 1500,
    };
    let tasks = publish::spawn_layered_sender(
        binding,
        Box::new(PatternSource::new(1280, 720, 30).expect("pattern")),
        publish::new_encoder(&settings).expect("encoder"),
        settings,
        layers.clone(),
        Arc::clone(&control),
        ended_tx,
        false,
    );
    binding_tx.send_replace(Some(Arc::clone(&rtp)));
    let (mic_binding_tx, mic_binding) = watch::channel(None);
    let (audio_ended_tx, _audio_ended_rx) = mpsc::unbounded_channel();
    // A 440 Hz tone at 0.1 of full scale: RMS −23 dBov, so RFC 6464 level 23.
    let audio_task = publish::spawn_audio_sender(
        mic_binding,
        Box::new(ToneSource::new(440.0, 0.1, Channels::Mono)),
        OpusEncoder::new(OpusConfig::voice()).expect("opus"),
        audio_ssrc,
        Arc::clone(&audio_control),
        audio_ended_tx,
    );
    mic_binding_tx.send_replace(Some(Arc::clone(&mic)));

    let seen = Arc::new(Mutex::new(HashMap::<u32, Seen>::new()));
    let recorder_seen = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(track) = tracks_rx.recv().await {
            tokio::spawn(record(track, ids, Arc::clone(&recorder_seen)));
        }
    });

    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let done = {
            let all = seen.lock().expect("seen");
            all.get(&audio_ssrc).is_some_and(|s| s.packets >= 25)
                && layers.iter().all(|l| {
                    all.get(&l.ssrc)
                        .is_some_and(|s| s.packets >= 60 && s.keyframe_size.is_some())
                })
        };
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all layers arrived: {:?}; sent {:?}",
            seen.lock().expect("seen"),
            control.layer_stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for task in tasks {
        task.abort();
    }
    audio_task.abort();
    let all = seen.lock().expect("seen").clone();
    let audio = &all[&audio_ssrc];
    assert_eq!(audio.labels, [(Some(audio_mid), None)], "audio labels");
    assert!(
        audio
            .audio_levels
            .iter()
            .all(|l| l.is_some_and(|b| (21..=25).contains(&(b & 0x7F)))),
        "audio levels {:?}",
        audio.audio_levels
    );
    let expected = [("q", (320, 180)), ("h", (640, 360)), ("f", (1280, 720))];
    for (layer, (rid, size)) in layers.iter().zip(expected) {
        let s = &all[&layer.ssrc];
        assert_eq!(
            s.labels,
            [(Some(mid.clone()), Some(rid.to_owned()))],
            "{rid}"
        );
        assert_eq!(
            s.short_picture_ids, 0,
            "{rid}: 7-bit or missing picture ids"
        );
        assert_eq!(s.keyframe_size, Some(size), "{rid}");
    }
    let stats = control.layer_stats();
    assert_eq!(stats.len(), 3);
    for (s, (rid, (w, h))) in stats.iter().zip(expected) {
        assert_eq!(s.rid, Some(rid));
        assert_eq!((s.width, s.height), (w, h));
        assert!(s.frames_sent > 0 && s.keyframes_sent > 0, "{s:?}");
    }
    // The full layer costs the most, the quarter the least.
    assert!(stats[2].bytes_sent > stats[1].bytes_sent && stats[1].bytes_sent > stats[0].bytes_sent);
    let _ = a.close().await;
    let _ = b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_camera_is_sent_as_three_layers_and_still_decodes() {
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let publisher_options = common::loopback().with_video(
        Box::new(PatternSource::new(1280, 720, 30).expect("pattern")),
        1280,
        720,
        30,
        1500,
    );
    let (publisher, mut publisher_events) = Room::join(&url, "simulcast", "cam", publisher_options)
        .await
        .expect("publisher joins");
    let (viewer, mut viewer_events) = Room::join(&url, "simulcast", "viewer", common::loopback())
        .await
        .expect("viewer joins");
    tokio::spawn(async move { while publisher_events.recv().await.is_some() {} });

    let deadline = tokio::time::Instant::now() + BOUND;
    let track = loop {
        let event = tokio::time::timeout_at(deadline, viewer_events.recv())
            .await
            .expect("TrackAdded in time")
            .expect("events");
        if let RoomEvent::TrackAdded(info) = event
            && info.kind == videoroom_protocol::MediaKind::Video
        {
            break info.track_id;
        }
    };
    tokio::spawn(async move { while viewer_events.recv().await.is_some() {} });
    let video = viewer.remote_video(&track).expect("video slot");
    loop {
        let sent = publisher.camera_stats().expect("camera stats");
        if sent.layers_sent == 3 && sent.frames_sent >= 30 && video.stats().frames_decoded >= 30 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sent {sent:?}, viewer {:?}",
            video.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publisher.leave().await;
    viewer.leave().await;
    server.shutdown(Duration::from_secs(5)).await;
}

/// CPU time this thread has used (`/proc/thread-self/schedstat`, nanoseconds on CPU).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns: u64 = stat
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("run time");
    Duration::from_nanos(ns)
}

/// CPU time per captured 720p30 frame, one layer against three (capture, downscale, encode),
/// median of 5 runs of 150 frames. `cargo test --release -p videoroom-client --test
/// simulcast_publish -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn cpu_per_frame_single_vs_simulcast() {
    use videoroom_client::media::downscale::downscale;
    use videoroom_client::media::{VideoSource, Vp8Config, Vp8Encoder};

    let mut source = PatternSource::new(1280, 720, 30).expect("pattern");
    let frames: Vec<_> = (0..150)
        .map(|_| source.next_frame().expect("frame"))
        .collect();
    let layers = publish::camera_layers(1);
    let run = |simulcast: bool| -> Duration {
        let mut encoders: Vec<(Vp8Encoder, (u32, u32))> = layers
            .iter()
            .rev()
            .filter(|l| simulcast || l.divisor == 1)
            .map(|l| {
                let (w, h) = l.size(1280, 720).expect("size");
                let encoder =
                    Vp8Encoder::new(Vp8Config::new(w, h, l.target_kbps(1500))).expect("encoder");
                (encoder, (w, h))
            })
            .collect();
        let start = thread_cpu();
        for frame in &frames {
            let mut previous: Option<videoroom_client::media::I420Frame> = None;
            for (encoder, (w, h)) in &mut encoders {
                let scaled = if (*w, *h) == (1280, 720) {
                    None
                } else {
                    Some(downscale(previous.as_ref().unwrap_or(frame), *w, *h).expect("scale"))
                };
                encoder
                    .encode(scaled.as_ref().unwrap_or(frame))
                    .expect("encode");
                if scaled.is_some() {
                    previous = scaled;
                }
            }
        }
        (thread_cpu() - start) / frames.len() as u32
    };
    let median = |simulcast: bool| {
        let mut runs: Vec<Duration> = (0..5).map(|_| run(simulcast)).collect();
        runs.sort();
        runs[2]
    };
    let single = median(false);
    let three = median(true);
    println!(
        "720p30 CPU per captured frame (median of 5 × 150): single layer {:.2} ms, three layers {:.2} ms ({:.0} % more)",
        single.as_secs_f64() * 1e3,
        three.as_secs_f64() * 1e3,
        (three.as_secs_f64() / single.as_secs_f64() - 1.0) * 100.0
    );
}
