//! The commands the UI invokes (`docs/desktop.md`). Each is allowed by name in
//! `capabilities/main.json`.

use tauri::{AppHandle, State};

use crate::api::{
    AppInfo, Devices, ErrorKind, FrameEndpoint, Joined, LocalState, ModerationView,
    ScreenSourcesView, Settings, UiError, ViewSizeView,
};
use crate::session::{self, AppState};

#[tauri::command]
pub fn app_info(state: State<'_, AppState>) -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        fake_media: state.launch.fake_media,
        test_hooks: state.launch.test_hooks,
        bench: state.launch.bench_out.is_some(),
        autojoin: state.launch.autojoin.is_some(),
    }
}

#[tauri::command]
pub fn get_settings(app: AppHandle, state: State<'_, AppState>) -> Result<Settings, UiError> {
    let path = session::settings_path(&app, &state.launch)?;
    Ok(session::load_settings(&path, &state.launch))
}

#[tauri::command]
pub fn save_settings(
    app: AppHandle,
    state: State<'_, AppState>,
    settings: Settings,
) -> Result<(), UiError> {
    let path = session::settings_path(&app, &state.launch)?;
    session::save_settings(&path, &settings)
}

#[tauri::command]
pub async fn list_devices(state: State<'_, AppState>) -> Result<Devices, UiError> {
    // Listing probes ALSA and V4L2, which can take a moment: off the async workers.
    let fake = state.launch.fake_media;
    if fake {
        return Ok(state.devices());
    }
    let devices = tokio::task::spawn_blocking(crate::session::detect_devices)
        .await
        .map_err(|e| UiError::internal(format!("listing devices failed: {e}")))?;
    Ok(devices)
}

#[tauri::command]
pub async fn start_preview(
    state: State<'_, AppState>,
    camera: Option<String>,
) -> Result<(), UiError> {
    state.start_preview(camera)
}

#[tauri::command]
pub fn stop_preview(state: State<'_, AppState>) {
    state.stop_preview();
}

#[tauri::command]
pub async fn join(
    app: AppHandle,
    state: State<'_, AppState>,
    settings: Settings,
) -> Result<Joined, UiError> {
    if let Ok(path) = session::settings_path(&app, &state.launch)
        && let Err(e) = session::save_settings(&path, &settings)
    {
        tracing::warn!("{e}");
    }
    let trusted = session::trust_store(&app, &state.launch)
        .map(|store| store.trusted_for(&settings.server_url))
        .unwrap_or_default();
    state.join(&app, settings, trusted).await
}

#[tauri::command]
pub async fn leave(state: State<'_, AppState>) -> Result<(), UiError> {
    state.leave().await
}

#[tauri::command]
pub async fn set_microphone(state: State<'_, AppState>, on: bool) -> Result<LocalState, UiError> {
    state.set_microphone(on).await
}

#[tauri::command]
pub async fn set_camera(state: State<'_, AppState>, on: bool) -> Result<LocalState, UiError> {
    state.set_camera(on).await
}

#[tauri::command]
pub async fn select_devices(
    state: State<'_, AppState>,
    camera: Option<String>,
    microphone: Option<String>,
    speaker: Option<String>,
) -> Result<LocalState, UiError> {
    state.select_devices(camera, microphone, speaker).await
}

#[tauri::command]
pub fn frame_endpoint(state: State<'_, AppState>) -> FrameEndpoint {
    FrameEndpoint {
        url: state.frames.url.clone(),
        test_hooks: state.launch.test_hooks,
    }
}

#[tauri::command]
pub async fn send_chat(
    state: State<'_, AppState>,
    text: String,
    to: Option<String>,
) -> Result<(), UiError> {
    let to = to.map(videoroom_protocol::PeerId::new);
    state
        .room_call(|room| async move { room.send_chat(text, to).await })
        .await
}

#[tauri::command]
pub async fn raise_hand(state: State<'_, AppState>, raised: bool) -> Result<(), UiError> {
    state
        .room_call(|room| async move { room.set_hand_raised(raised).await })
        .await
}

#[tauri::command]
pub async fn moderate(
    state: State<'_, AppState>,
    peer_id: String,
    action: ModerationView,
) -> Result<(), UiError> {
    let peer = videoroom_protocol::PeerId::new(peer_id);
    state
        .room_call(|room| async move { room.moderate(peer, action.into()).await })
        .await
}

#[tauri::command]
pub async fn remove_peer(
    state: State<'_, AppState>,
    peer_id: String,
    reason: Option<String>,
) -> Result<(), UiError> {
    let peer = videoroom_protocol::PeerId::new(peer_id);
    state
        .room_call(|room| async move { room.remove_peer(peer, reason).await })
        .await
}

#[tauri::command]
pub async fn lock_room(state: State<'_, AppState>, locked: bool) -> Result<(), UiError> {
    state
        .room_call(|room| async move { room.lock_room(locked).await })
        .await
}

#[tauri::command]
pub async fn end_meeting(state: State<'_, AppState>) -> Result<(), UiError> {
    state
        .room_call(|room| async move { room.end_meeting().await })
        .await
}

/// Viewer hints: the device-pixel size each remote video track is shown at (0×0: not shown),
/// only those that changed.
#[tauri::command]
pub async fn set_view_sizes(
    state: State<'_, AppState>,
    views: Vec<ViewSizeView>,
) -> Result<(), UiError> {
    state.set_view_sizes(views).await
}

/// What can be shared; with our own picker, thumbnails follow on frame tracks `source:<id>`.
#[tauri::command]
pub async fn list_screen_sources(state: State<'_, AppState>) -> Result<ScreenSourcesView, UiError> {
    state.list_screen_sources().await
}

/// Shares `source_id` (null: the system's dialog picks) next to the camera.
#[tauri::command]
pub async fn start_screen_share(
    state: State<'_, AppState>,
    source_id: Option<String>,
) -> Result<LocalState, UiError> {
    state.start_screen_share(source_id).await
}

/// Stops our screen share.
#[tauri::command]
pub async fn stop_screen_share(state: State<'_, AppState>) -> Result<LocalState, UiError> {
    state.stop_screen_share().await
}

/// The picker closed without sharing: its thumbnails stop.
#[tauri::command]
pub fn close_screen_picker(state: State<'_, AppState>) {
    state.close_screen_picker();
}

/// Moderators: an invite link to the room, valid for `ttl_secs` (60 s to 30 days), for a
/// moderator too if `moderator`.
#[tauri::command]
pub async fn create_invite(
    state: State<'_, AppState>,
    ttl_secs: u64,
    moderator: bool,
) -> Result<crate::api::InviteView, UiError> {
    state.create_invite(ttl_secs, moderator).await
}

/// Trusts the certificate with SHA-256 `fingerprint` for the server at `server_url` (after the
/// person compared it with the one the server's operator gave them); the next join uses it.
#[tauri::command]
pub fn trust_certificate(
    app: AppHandle,
    state: State<'_, AppState>,
    server_url: String,
    fingerprint: String,
) -> Result<(), UiError> {
    session::trust_store(&app, &state.launch)?.trust(&server_url, &fingerprint)
}

/// Opens a link from the chat in the system browser (or mail program). Only `http`, `https`
/// and `mailto` links: anything else could start a local program.
#[tauri::command]
pub fn open_link(url: String) -> Result<(), UiError> {
    let parsed = openable(&url)?;
    open::that_detached(parsed.as_str()).map_err(|e| {
        UiError::new(
            ErrorKind::Internal,
            format!("Could not open {url}: {e}."),
            Some("Copy the link into a browser."),
        )
    })
}

/// `url` if it is an absolute `http`, `https` or `mailto` URL.
pub fn openable(url: &str) -> Result<url::Url, UiError> {
    let refused = || {
        UiError::new(
            ErrorKind::Rejected,
            format!("Not a web or mail link: {url}"),
            Some("Only http, https and mailto links open from the chat."),
        )
    };
    let parsed = url::Url::parse(url.trim()).map_err(|_| refused())?;
    match parsed.scheme() {
        "http" | "https" if parsed.host().is_some() => Ok(parsed),
        // Only an address with a subject and a body: some mail programs honour `attach=`.
        "mailto"
            if parsed.query_pairs().all(|(k, _)| {
                matches!(k.to_ascii_lowercase().as_str(), "subject" | "body" | "cc")
            }) =>
        {
            Ok(parsed)
        }
        _ => Err(refused()),
    }
}

#[cfg(test)]
mod tests {
    use super::openable;

    #[test]
    fn only_web_and_mail_links_open() {
        for ok in [
            "https://example.org/deck.pdf",
            "http://10.0.0.2:8080/x?y=1",
            "mailto:ada@example.org",
            "mailto:ada@example.org?subject=Slides&body=Here",
        ] {
            assert!(openable(ok).is_ok(), "{ok}");
        }
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "ssh://host",
            "smb://share/x",
            "mailto:ada@example.org?attach=/home/ada/.ssh/id_ed25519",
            "https://",
            "/relative",
            "",
        ] {
            assert!(openable(bad).is_err(), "{bad}");
        }
    }
}
