//! The commands the UI invokes (`docs/desktop.md`). Each is allowed by name in
//! `capabilities/main.json`.

use tauri::{AppHandle, State};

use crate::api::{AppInfo, Devices, FrameEndpoint, Joined, LocalState, Settings, UiError};
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
    if let Ok(path) = session::settings_path(&app, &state.launch) {
        if let Err(e) = session::save_settings(&path, &settings) {
            tracing::warn!("{e}");
        }
    }
    state.join(&app, settings).await
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
