//! What can be shared and how to open it, whatever the backend: [`list_sources`] (our picker's
//! screens and windows on X11; on Wayland the portal's dialog picks instead), [`open_source`] and
//! [`thumbnail`] (a small live picture of a source for the picker).

use super::backend::ScreenBackend;
use super::error::ScreenError;
use super::x11;
use crate::media::{I420Frame, VideoSource};

/// What a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenSourceKind {
    /// A monitor, or the whole screen.
    Screen,
    /// One application window.
    Window,
}

/// One thing that can be shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenSourceInfo {
    /// Opaque id for [`open_source`] and [`thumbnail`] (`screen`, `monitor:0`, `window:0x1a00003`…).
    pub id: String,
    /// Screen or window.
    pub kind: ScreenSourceKind,
    /// What the person sees in the picker ("HDMI-1", a window's title).
    pub title: String,
    /// Width in pixels now.
    pub width: u32,
    /// Height in pixels now.
    pub height: u32,
}

/// Who shows the choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picker {
    /// Our picker, with [`ScreenSources::sources`] (X11).
    Ours,
    /// The system's dialog (the Wayland portal): open with no id.
    System,
}

/// The answer of [`list_sources`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenSources {
    /// Who picks.
    pub picker: Picker,
    /// What our picker offers (empty for [`Picker::System`]).
    pub sources: Vec<ScreenSourceInfo>,
}

/// A source opened for sharing.
pub struct OpenedScreen {
    /// The frames.
    pub source: Box<dyn VideoSource>,
    /// Its size now (the engine's scaler fits it within 1920×1080).
    pub width: u32,
    /// Its height now.
    pub height: u32,
    /// What is shared, for the person ("HDMI-1", a window's title, "Screen").
    pub title: String,
}

impl std::fmt::Debug for OpenedScreen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedScreen")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("title", &self.title)
            .finish_non_exhaustive()
    }
}

/// What `backend` can share. Blocking (X requests): call from a blocking thread.
pub fn list_sources(backend: &ScreenBackend) -> Result<ScreenSources, ScreenError> {
    match backend {
        ScreenBackend::X11 { display } => Ok(ScreenSources {
            picker: Picker::Ours,
            sources: x11::list_sources(Some(display))?,
        }),
        ScreenBackend::Portal => Ok(ScreenSources {
            picker: Picker::System,
            sources: Vec::new(),
        }),
        ScreenBackend::Unavailable => Err(ScreenError::NoDisplay),
    }
}

/// Opens `id` (one of [`list_sources`]) on `backend`; with no id, the whole screen on X11 and the
/// portal's dialog on Wayland (which may take as long as the person takes to choose).
pub async fn open_source(
    backend: &ScreenBackend,
    id: Option<&str>,
) -> Result<OpenedScreen, ScreenError> {
    match backend {
        ScreenBackend::X11 { display } => {
            let display = display.clone();
            let id = id.unwrap_or(x11::WHOLE_SCREEN_ID).to_owned();
            tokio::task::spawn_blocking(move || x11::open_source(Some(&display), &id))
                .await
                .map_err(|e| ScreenError::Portal(format!("capture thread: {e}")))?
        }
        ScreenBackend::Portal => open_portal().await,
        ScreenBackend::Unavailable => Err(ScreenError::NoDisplay),
    }
}

#[cfg(feature = "wayland")]
async fn open_portal() -> Result<OpenedScreen, ScreenError> {
    super::portal::open().await
}

#[cfg(not(feature = "wayland"))]
async fn open_portal() -> Result<OpenedScreen, ScreenError> {
    Err(ScreenError::NotBuilt)
}

/// One picture of source `id`, fitted within `max_width`×`max_height` (aspect kept, even sides),
/// for the picker. Blocking: call from a blocking thread. Only our picker (X11) has thumbnails.
pub fn thumbnail(
    backend: &ScreenBackend,
    id: &str,
    max_width: u32,
    max_height: u32,
) -> Result<I420Frame, ScreenError> {
    match backend {
        ScreenBackend::X11 { display } => x11::thumbnail(Some(display), id, max_width, max_height),
        ScreenBackend::Portal | ScreenBackend::Unavailable => {
            Err(ScreenError::NoSuchSource { id: id.to_owned() })
        }
    }
}
