//! The Videoroom desktop app's backend: a thin Tauri shell over `videoroom-client`.
//!
//! - [`api`]: the types the UI sees (generated into `ui/src/bindings/`).
//! - [`commands`]: what the UI invokes; [`session`]: the preview, the room, events to the UI.
//! - [`frames`]: the loopback WebSocket that carries video tiles to the UI's render worker.
//! - [`screen`]: the screen picker's live thumbnails.
//!
//! Contract with the UI: `docs/desktop.md`.

pub mod api;
mod commands;
pub mod frames;
pub mod invite;
pub mod screen;
pub mod session;
pub mod trust;

use std::sync::Arc;

use session::{AppState, Launch};

/// Runs the app until its window closes.
pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,videoroom_desktop=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // One runtime for the engine and Tauri's async commands.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("videoroom")
        .build()?;
    tauri::async_runtime::set(runtime.handle().clone());
    let launch = Launch::from_env();
    let hub = Arc::new(frames::FrameHub::default());
    let frames = runtime.block_on(frames::start(Arc::clone(&hub), launch.bench_out.clone()))?;
    tracing::info!(fake_media = launch.fake_media, media_ip = %launch.media_ip, "starting");
    let state = AppState::new(launch, hub, frames);
    tauri::Builder::default()
        .plugin(navigation_guard())
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::get_settings,
            commands::save_settings,
            commands::list_devices,
            commands::start_preview,
            commands::stop_preview,
            commands::join,
            commands::leave,
            commands::set_microphone,
            commands::set_camera,
            commands::select_devices,
            commands::frame_endpoint,
            commands::send_chat,
            commands::raise_hand,
            commands::moderate,
            commands::remove_peer,
            commands::lock_room,
            commands::end_meeting,
            commands::set_view_sizes,
            commands::create_invite,
            commands::list_screen_sources,
            commands::start_screen_share,
            commands::stop_screen_share,
            commands::close_screen_picker,
            commands::trust_certificate,
            commands::open_link,
        ])
        .run(tauri::generate_context!())?;
    drop(runtime);
    Ok(())
}

/// The window shows our UI and nothing else: a navigation anywhere else (a link in a chat
/// message that slipped past the UI's own handling, a script) is cancelled. Links open in the
/// system browser through the `open_link` command instead.
fn navigation_guard<R: tauri::Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri::plugin::Builder::new("navigation-guard")
        .on_navigation(|_, url| {
            let allowed = is_app_url(url);
            if !allowed {
                tracing::warn!(%url, "navigation away from the app cancelled");
            }
            allowed
        })
        .build()
}

/// The app's own pages: the embedded UI, or the Vite dev server of `cargo tauri dev`.
fn is_app_url(url: &url::Url) -> bool {
    match (url.scheme(), url.host_str()) {
        ("tauri", Some("localhost")) => true,
        ("http" | "https", Some("tauri.localhost")) => true,
        ("http", Some("127.0.0.1" | "localhost")) => {
            cfg!(not(feature = "custom-protocol")) && url.port() == Some(5173)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_app_itself_is_navigable() {
        let ok = |u: &str| super::is_app_url(&url::Url::parse(u).expect("url"));
        assert!(ok("tauri://localhost/"));
        assert!(ok("http://tauri.localhost/index.html"));
        assert!(!ok("https://example.org/"));
        assert!(!ok("file:///etc/passwd"));
        assert!(!ok("http://127.0.0.1:8080/"));
        // The dev server only in dev builds (without the embedded UI).
        assert_eq!(
            ok("http://127.0.0.1:5173/"),
            cfg!(not(feature = "custom-protocol"))
        );
    }
}
