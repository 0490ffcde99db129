//! Generates the app's context (config, capabilities, ACL). The config is the repository root's
//! `tauri.conf.json`, reached through the `src-tauri/tauri.conf.json` symlink.

const COMMANDS: &[&str] = &[
    "app_info",
    "get_settings",
    "save_settings",
    "list_devices",
    "start_preview",
    "stop_preview",
    "join",
    "leave",
    "set_microphone",
    "set_camera",
    "select_devices",
    "frame_endpoint",
    "send_chat",
    "raise_hand",
    "moderate",
    "remove_peer",
    "lock_room",
    "end_meeting",
    "set_view_sizes",
    "create_invite",
    "list_screen_sources",
    "start_screen_share",
    "stop_screen_share",
    "close_screen_picker",
    "trust_certificate",
    "open_link",
];

fn main() {
    println!("cargo:rerun-if-changed=../tauri.conf.json");
    println!("cargo:rerun-if-changed=../ui/dist/index.html");
    // The UI is embedded into the binary unless `cargo tauri dev` serves it.
    if std::env::var_os("CARGO_FEATURE_CUSTOM_PROTOCOL").is_some()
        && !std::path::Path::new("../ui/dist/index.html").exists()
    {
        panic!(
            "ui/dist is missing: build the UI first with `npm --prefix ui ci && npm --prefix ui run build` \
             (scripts/test.sh and `cargo tauri build` do this for you)"
        );
    }
    // With an app manifest, each command needs an explicit permission in a capability
    // (`capabilities/main.json`); without one every command would be open to every window.
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri-build failed");
}
