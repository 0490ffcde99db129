//! End-to-end tests and the benchmark of the Videoroom desktop app (`src-tauri/` + `ui/`).
//!
//! Everything here runs the real thing: the built app binary (UI embedded) under Xvfb, a real
//! server (in the test process), real `videoroom-bot` processes, and for the end-to-end tests
//! WebKitWebDriver behind `tauri-driver`, driven with fantoccini. Unit tests of the app's parts
//! live in `src-tauri/` (Rust) and `ui/` (Vitest), not here.
//!
//! - [`xvfb`]: a virtual X server on a free display, and its framebuffer as an image.
//! - [`driver`]: `tauri-driver`, a WebDriver session on the app, and UI helpers (test ids,
//!   `window.__vrTest`).
//! - [`bot`]: `videoroom-bot` processes and their `--events` files.
//! - [`browser`]: `videoroom-server` serving the web app (`ui/dist`), and headless Chromium
//!   driven through it (`browser/driver.mjs`, playwright-core).
//! - [`cpu`]: CPU time of a process and its descendants from `/proc`.
//! - [`procs`]: children in their own process group, killed (with their children) on drop.
//! - [`image`]: RGB images, XWD → PNG.
//! - [`pointer`]: double clicks, and pinning a tile to the stage with one.
//!
//! What has to be there first (the tests never build anything themselves):
//!
//! | what | how | used by |
//! | --- | --- | --- |
//! | app, debug, UI embedded | `cargo tauri build --debug --bundles deb`; or `npm run build` in `ui/`, then `cargo build -p videoroom-desktop` (`cargo test --workspace` builds it too); or `VIDEOROOM_APP_BIN` | tests |
//! | app, release | `cargo tauri build --no-bundle` (or `VIDEOROOM_APP_BIN`) | bench |
//! | bot | `cargo build -p videoroom-bot [--release]` (`cargo test --workspace` builds it) | both |
//! | server, web app | `cargo build -p videoroom-server`; `npm run build` in `ui/` | `e2e_browser*` |
//! | Chromium, playwright-core | `apt-get install chromium`; `npm ci` in `desktop-tests/browser` | `e2e_browser*` |
//! | Xvfb, WebKitWebDriver | `apt-get install xvfb webkit2gtk-driver` | both / tests |
//! | tauri-driver | `cargo install tauri-driver --version 2.1.0 --locked` (or `TAURI_DRIVER`) | tests |
//!
//! The app crate's default feature `custom-protocol` embeds `ui/dist`; a build with
//! `--no-default-features` (as `cargo tauri dev` makes) loads the UI from the Vite dev server on
//! `http://127.0.0.1:5173` instead, and the tests say so when that is what they find. Logs,
//! settings and screenshots of a run stay in `<target>/e2e/<test>/`.

pub mod bot;
pub mod browser;
pub mod cpu;
pub mod driver;
pub mod image;
pub mod pointer;
pub mod procs;
pub mod xvfb;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `target/debug` or `target/release`: the profile directory this test or bench binary was
/// built into (`<profile>/deps/<name>-<hash>`). The app and the bots are looked up there.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not in <target>/<profile>/deps", exe.display()))
        .to_path_buf()
}

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    let profile = profile_dir();
    profile.parent().unwrap_or(&profile).to_path_buf()
}

/// A fresh (emptied) directory `<target>/e2e/<name>` for one test's logs, settings and
/// screenshots. It is kept after the run so a failure can be looked at.
///
/// Also kills what a killed earlier run of `name` left running (see [`procs::ledger`]).
pub fn work_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("e2e").join(name);
    procs::ledger(&target_dir().join("e2e").join(format!("{name}.pids")));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// The app binary: `VIDEOROOM_APP_BIN`, else `<profile>/videoroom-desktop`.
pub fn app_bin() -> PathBuf {
    let release = profile_dir().ends_with("release");
    let path = std::env::var_os("VIDEOROOM_APP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| profile_dir().join("videoroom-desktop"));
    if !path.is_file() {
        let build = if release {
            "cargo tauri build --no-bundle"
        } else {
            "cargo tauri build --debug --bundles deb"
        };
        panic!(
            "no app binary at {}. Build it with the UI embedded first: `{build}` from the \
             repository root (or `npm run build` in ui/, then `cargo build -p videoroom-desktop{}`), \
             or point VIDEOROOM_APP_BIN at one.",
            path.display(),
            if release { " --release" } else { "" }
        );
    }
    if let Some(newer) = newer_source(&path) {
        eprintln!(
            "warning: {} is newer than the app binary {}: the test runs the app as it was \
             built, not as it is now",
            newer.display(),
            path.display()
        );
    }
    path
}

/// A source file of the app (`ui/src`, `ui/index.html`, `src-tauri/src`) changed after `bin`
/// was built, if any.
fn newer_source(bin: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    ["ui/src", "ui/index.html", "src-tauri/src"]
        .iter()
        .find_map(|p| newer_than(&root.join(p), built))
}

/// A file under `dir` (or `dir` itself) modified after `than`, if any.
pub fn newer_than(dir: &Path, than: std::time::SystemTime) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
            }
        } else if meta.modified().is_ok_and(|m| m > than) {
            return Some(path);
        }
    }
    None
}

/// What the app needs to run headless on this machine, plus the settings directory.
///
/// `WEBKIT_DISABLE_COMPOSITING_MODE=1`: without it WebKitGTK draws nothing into Xvfb.
/// `GDK_BACKEND=x11`: never try Wayland. `NO_AT_BRIDGE=1`: no accessibility bus to wait for.
/// Media is synthetic and on loopback (this machine has no camera, sound card or other
/// interface). Variables that would change the app's behaviour are cleared by the callers
/// (see [`APP_ENV_CLEARED`]).
pub fn app_env(display: &str, work: &Path) -> Vec<(&'static str, OsString)> {
    let xdg = work.join("xdg");
    vec![
        ("DISPLAY", display.into()),
        ("GDK_BACKEND", "x11".into()),
        ("WEBKIT_DISABLE_COMPOSITING_MODE", "1".into()),
        ("NO_AT_BRIDGE", "1".into()),
        ("VIDEOROOM_FAKE_MEDIA", "1".into()),
        ("VIDEOROOM_MEDIA_IP", "127.0.0.1".into()),
        ("VIDEOROOM_CONFIG_DIR", work.join("config").into()),
        ("XDG_CONFIG_HOME", xdg.join("config").into()),
        ("XDG_DATA_HOME", xdg.join("data").into()),
        ("XDG_CACHE_HOME", xdg.join("cache").into()),
    ]
}

/// Inherited variables that would change what the app does; cleared before launching it.
/// (`XDG_SESSION_TYPE=wayland` or `VIDEOROOM_SCREEN_BACKEND` would send screen sharing to the
/// Wayland portal instead of the Xvfb display.)
pub const APP_ENV_CLEARED: &[&str] = &[
    "VIDEOROOM_AUTOJOIN",
    "VIDEOROOM_BENCH_OUT",
    "VIDEOROOM_DEFAULT_SERVER",
    "VIDEOROOM_SCREEN_BACKEND",
    "VIDEOROOM_TEST_HOOKS",
    "WAYLAND_DISPLAY",
    "XDG_SESSION_TYPE",
];

/// Retries `attempt` every 100 ms until it returns `Ok`, for at most `bound`. On timeout the
/// error says what was awaited and why the last attempt failed.
pub async fn wait_for<T>(
    bound: Duration,
    what: &str,
    mut attempt: impl AsyncFnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(why) if tokio::time::Instant::now() >= deadline => {
                return Err(format!(
                    "timed out after {bound:?} waiting until {what}; last: {why}"
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for programs that want a port number).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// The last `n` lines of a text file (or why it could not be read).
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

/// `scenario`, or an error saying it took longer than `bound`.
pub async fn within<T>(
    bound: Duration,
    scenario: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(bound, scenario)
        .await
        .unwrap_or_else(|_| Err(format!("the scenario took longer than {bound:?}")))
}
