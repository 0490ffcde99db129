//! Real capture and playout devices behind the media traits: a camera ([`CameraSource`], a
//! [`VideoSource`](super::VideoSource) over Video4Linux2), a microphone ([`MicrophoneSource`], an
//! [`AudioSource`](super::AudioSource)) and a speaker ([`SpeakerSink`], an
//! [`AudioSink`](super::AudioSink)), both through cpal (ALSA on Linux).
//!
//! Each `open` takes an optional device id (from [`list_cameras`], [`list_microphones`] or
//! [`list_speakers`]); `None` means the first camera or the system's default audio device. A
//! machine without the device gets [`DeviceError::NotFound`] quickly, never a panic or a hang, so
//! the caller can fall back to a synthetic source or [`NullSink`](super::NullSink).
//!
//! Not for: screen capture, device hot-plug notifications, or platforms other than Linux (cpal
//! would work elsewhere, V4L2 does not).

pub mod audio;
pub mod camera;

pub use audio::{MicrophoneSource, SpeakerSink, list_microphones, list_speakers};
pub use camera::{CameraSource, list_cameras};

/// Which kind of device an error or a listing is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceKind {
    /// A video capture device.
    Camera,
    /// An audio capture device.
    Microphone,
    /// An audio playout device.
    Speaker,
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceKind::Camera => "camera",
            DeviceKind::Microphone => "microphone",
            DeviceKind::Speaker => "speaker",
        })
    }
}

/// What to tell a person when no device of `kind` was found.
fn not_found_message(kind: DeviceKind, id: Option<&str>) -> String {
    match (kind, id) {
        (DeviceKind::Camera, None) => "no camera found: connect one, and check that this user \
                                       may open /dev/video* (usually: member of the video group)"
            .to_owned(),
        (_, None) => format!(
            "no {kind} found: connect one, or check the system's sound settings \
             (ALSA, PulseAudio or PipeWire)"
        ),
        (_, Some(id)) => format!(
            "no {kind} \"{id}\" found: it may have been unplugged; list the {kind}s to pick \
             another"
        ),
    }
}

/// Why a device could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// There is no such device (none at all if `id` is `None`).
    #[error("{}", not_found_message(*kind, id.as_deref()))]
    NotFound {
        /// The kind of device wanted.
        kind: DeviceKind,
        /// The id asked for, if any.
        id: Option<String>,
    },
    /// The device exists but could not be opened or started.
    #[error("cannot open {kind} \"{name}\": {reason}")]
    Open {
        /// The kind of device.
        kind: DeviceKind,
        /// Its name or id.
        name: String,
        /// What the system reported.
        reason: String,
    },
    /// The device offers no format this crate can use (or the request itself is not usable).
    #[error("{kind} \"{name}\" has no usable format: {detail}")]
    Unsupported {
        /// The kind of device.
        kind: DeviceKind,
        /// Its name or id.
        name: String,
        /// What was offered or asked for.
        detail: String,
    },
    /// Anything else that kept the device from opening (for example, the task opening it
    /// panicked).
    #[error("device failed: {0}")]
    Failed(String),
}

/// One device, as listed by [`list_cameras`], [`list_microphones`] or [`list_speakers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// What to pass to `open` (a `/dev/video*` path for cameras, a cpal device id for audio).
    pub id: String,
    /// A name for people.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_device_kind() {
        let e = DeviceError::NotFound {
            kind: DeviceKind::Camera,
            id: None,
        };
        assert!(e.to_string().starts_with("no camera found"), "{e}");
        let e = DeviceError::NotFound {
            kind: DeviceKind::Speaker,
            id: Some("hw:7".into()),
        };
        assert!(e.to_string().contains("speaker \"hw:7\""), "{e}");
        let e = DeviceError::Open {
            kind: DeviceKind::Microphone,
            name: "USB".into(),
            reason: "busy".into(),
        };
        assert_eq!(e.to_string(), "cannot open microphone \"USB\": busy");
    }
}
