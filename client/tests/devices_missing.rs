//! Capture and playout devices where there may be none: opening the default device either works
//! (a machine with a camera, microphone or speaker) or fails quickly with an error that names the
//! kind of device; a device id that does not exist always fails that way; listing never panics
//! or hangs.

use std::time::{Duration, Instant};
use videoroom_client::media::devices::{
    CameraSource, DeviceError, MicrophoneSource, SpeakerSink, list_cameras, list_microphones,
    list_speakers,
};
use videoroom_client::media::{
    AudioFrame, AudioSink, AudioSource, Channels, VideoSource, unix_micros_now,
};

/// How long opening or listing may take when the device is missing.
const QUICK: Duration = Duration::from_secs(5);
const NO_SUCH_ID: &str = "videoroom-test-no-such-device";
/// ALSA's `null` device: in every ALSA configuration, captures silence and discards playback,
/// as fast as it is asked to (no clock). Not listed, but it can be opened by id.
const ALSA_NULL: &str = "alsa:null";

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let value = f();
    let took = start.elapsed();
    assert!(took < QUICK, "{what} took {took:?}");
    value
}

/// An error about a missing or unusable default device must say which kind it is about.
fn assert_names_kind(e: &DeviceError, kind: &str) {
    let message = e.to_string();
    assert!(
        message.contains(kind),
        "message does not name the {kind}: {message}"
    );
}

#[test]
fn listing_devices_returns_promptly() {
    for (what, list) in [
        ("list_cameras", list_cameras as fn() -> _),
        ("list_microphones", list_microphones),
        ("list_speakers", list_speakers),
    ] {
        let devices = timed(what, list);
        for d in &devices {
            assert!(!d.id.is_empty(), "{what}: {d:?} has no id");
            assert_ne!(d.id, ALSA_NULL, "{what} lists ALSA's placeholder device");
        }
    }
}

#[test]
fn default_camera_opens_or_fails_quickly() {
    let cameras = list_cameras();
    match timed("CameraSource::open", || {
        CameraSource::open(None, 640, 360, 30)
    }) {
        Ok(mut camera) => {
            assert!(
                !cameras.is_empty(),
                "opened a camera that list_cameras does not show"
            );
            let before = unix_micros_now();
            let frame = camera.next_frame().expect("a frame from the camera");
            assert_eq!((frame.width(), frame.height()), (640, 360));
            assert_eq!(frame.frame_number, 0);
            assert!(
                frame.capture_micros >= before,
                "capture time before the request"
            );
            assert_eq!(camera.next_frame().expect("second frame").frame_number, 1);
        }
        Err(e) => {
            assert_names_kind(&e, "camera");
            if matches!(e, DeviceError::NotFound { .. }) {
                assert!(cameras.is_empty(), "NotFound although listed: {cameras:?}");
            }
        }
    }
}

#[test]
fn default_microphone_opens_or_fails_quickly() {
    match timed("MicrophoneSource::open", || MicrophoneSource::open(None)) {
        Ok(mut mic) => {
            let frame = mic.next_frame().expect("20 ms from the microphone");
            assert_eq!(frame.channels, Channels::Mono);
            assert_eq!(frame.samples.len(), 960);
        }
        Err(e) => assert_names_kind(&e, "microphone"),
    }
}

#[test]
fn default_speaker_opens_or_fails_quickly() {
    match timed("SpeakerSink::open", || SpeakerSink::open(None)) {
        Ok(mut speaker) => {
            let silence = AudioFrame {
                samples: vec![0; 960],
                channels: Channels::Mono,
                capture_micros: 0,
            };
            // 200 ms of silence: more than the queue holds, so the device clock paces this.
            for _ in 0..10 {
                speaker.write(&silence).expect("speaker takes audio");
            }
        }
        Err(e) => assert_names_kind(&e, "speaker"),
    }
}

#[test]
fn unknown_ids_are_not_found_and_named() {
    let camera = timed("CameraSource::open(bogus)", || {
        CameraSource::open(Some(NO_SUCH_ID), 640, 360, 30)
    });
    let mic = timed("MicrophoneSource::open(bogus)", || {
        MicrophoneSource::open(Some(NO_SUCH_ID))
    });
    let speaker = timed("SpeakerSink::open(bogus)", || {
        SpeakerSink::open(Some(NO_SUCH_ID))
    });
    for (kind, result) in [
        ("camera", camera.map(|_| ())),
        ("microphone", mic.map(|_| ())),
        ("speaker", speaker.map(|_| ())),
    ] {
        let e = result.expect_err("a device that does not exist opened");
        assert!(
            matches!(&e, DeviceError::NotFound { id: Some(id), .. } if id == NO_SUCH_ID),
            "{kind}: {e:?}"
        );
        let message = e.to_string();
        assert!(
            message.contains(kind) && message.contains(NO_SUCH_ID),
            "{message}"
        );
    }

    // A device node path that does not exist is just as missing.
    let e = CameraSource::open(Some("/dev/video-videoroom-test"), 640, 360, 30)
        .expect_err("opened a missing device node");
    assert!(matches!(e, DeviceError::NotFound { .. }), "{e:?}");
}

#[test]
fn an_impossible_camera_request_is_refused_before_touching_devices() {
    for (w, h, fps) in [(0, 360, 30), (640, 0, 30), (640, 360, 0), (20_000, 360, 30)] {
        let e = CameraSource::open(None, w, h, fps).expect_err("invalid request accepted");
        assert!(matches!(e, DeviceError::Unsupported { .. }), "{e:?}");
        assert_names_kind(&e, "camera");
    }
}

/// The whole cpal path (configuration, stream, callback queues, frame assembly, timestamps)
/// runs against ALSA's `null` device wherever ALSA is there, sound card or not. It has no clock,
/// so this checks shapes and order, not pacing.
#[test]
fn the_alsa_null_device_streams_through_microphone_and_speaker() {
    let mut mic = match MicrophoneSource::open(Some(ALSA_NULL)) {
        Ok(mic) => mic,
        Err(DeviceError::NotFound { .. }) => return, // no ALSA here
        Err(e) => panic!("ALSA null capture: {e}"),
    };
    let start = unix_micros_now();
    let mut last = None;
    for _ in 0..25 {
        let frame = mic.next_frame().expect("a frame from the null device");
        assert_eq!((frame.channels, frame.samples.len()), (Channels::Mono, 960));
        assert!(
            frame.samples.iter().all(|&s| s == 0),
            "null captures silence"
        );
        assert!(
            frame.capture_micros.abs_diff(start) < 2_000_000,
            "capture time {} far from now {start}",
            frame.capture_micros
        );
        if let Some(last) = last {
            assert!(
                frame.capture_micros >= last + 20_000,
                "timestamps must advance by at least 20 ms: {last} then {}",
                frame.capture_micros
            );
        }
        last = Some(frame.capture_micros);
    }
    timed("closing the microphone", || drop(mic));

    let mut speaker = SpeakerSink::open(Some(ALSA_NULL)).expect("ALSA null playback");
    for i in 0..25 {
        let channels = if i % 2 == 0 {
            Channels::Mono
        } else {
            Channels::Stereo
        };
        let frame = AudioFrame {
            samples: vec![1000; 960 * channels.count()],
            channels,
            capture_micros: 0,
        };
        speaker.write(&frame).expect("null playback takes audio");
    }
    timed("closing the speaker", || drop(speaker));
}
