//! Screen sharing on Wayland (feature `wayland`) where it cannot work, as on this CI machine:
//! the person must get the error that says what is missing.
//!
//! 1. No D-Bus session bus at all → `ScreenError::NoSessionBus`.
//! 2. A real session bus (`dbus-run-session`) on which the portal frontend (xdg-desktop-portal)
//!    starts but finds no backend, so no ScreenCast → `ScreenError::NoPortal`.
//!
//! The bus comes from the environment, which belongs to the whole process: each case runs in a
//! child process (this test binary again, `--exact <test>`, with [`CASE`] naming the case) with
//! its own environment, bounded by [`CHILD_TIMEOUT`].

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use videoroom_client::media::screen::{ScreenBackend, ScreenError, open_source};

/// Selects the case a child runs (unset in the parent).
const CASE: &str = "VIDEOROOM_PORTAL_TEST_CASE";
/// What a child prints when its case held.
const PASSED: &str = "portal case passed:";
/// How long a child may take (the portal's own calls give up after 10 s).
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `open_source` may take inside a child.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// In a child: opens the portal backend and returns its error.
fn open_portal_error() -> ScreenError {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        match tokio::time::timeout(OPEN_TIMEOUT, open_source(&ScreenBackend::Portal, None)).await {
            Err(_) => panic!("open_source did not answer within {OPEN_TIMEOUT:?}"),
            Ok(Ok(opened)) => panic!("a screen was shared where none can be: {opened:?}"),
            Ok(Err(e)) => e,
        }
    })
}

/// Runs `command` (a child of this binary, or a wrapper around one) to the end, within
/// [`CHILD_TIMEOUT`]; panics unless it exits 0 and printed `PASSED <case>`.
fn run_child(mut command: Command, case: &str) {
    command
        .env(CASE, case)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    // Read both pipes on threads so a chatty child never blocks on a full pipe.
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > CHILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "case {case} did not finish within {CHILD_TIMEOUT:?}\nstderr:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    assert!(
        status.success() && stdout.contains(&format!("{PASSED} {case}")),
        "case {case} failed ({status}) after {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        started.elapsed()
    );
    println!("case {case} passed in {:?}", started.elapsed());
}

/// This test binary, asked to run `test` alone, with a clean bus environment.
fn this_test(test: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY");
    command
}

#[test]
fn without_a_session_bus_the_person_is_told_to_start_from_their_desktop() {
    if let Ok(case) = std::env::var(CASE) {
        let e = open_portal_error();
        assert!(matches!(e, ScreenError::NoSessionBus), "{case}: {e:?}");
        let text = e.to_string();
        assert!(
            text.contains("goes through the desktop portal, which needs a D-Bus session"),
            "{text}"
        );
        assert!(
            text.contains("Start the app from your desktop session"),
            "{text}"
        );
        println!("{PASSED} {case}");
        return;
    }
    let test = "without_a_session_bus_the_person_is_told_to_start_from_their_desktop";
    // An address where nothing listens.
    let mut command = this_test(test);
    command.env(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/videoroom-bus",
    );
    run_child(command, "address-without-a-bus");
    // No address: zbus falls back to $XDG_RUNTIME_DIR/bus, which does not exist.
    let empty = std::env::temp_dir().join(format!("videoroom-no-bus-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("an empty runtime dir");
    let mut command = this_test(test);
    command.env("XDG_RUNTIME_DIR", &empty);
    run_child(command, "runtime-dir-without-a-bus");
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn with_a_bus_but_no_screencast_portal_the_person_is_told_what_to_install() {
    if let Ok(case) = std::env::var(CASE) {
        assert!(
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
            "dbus-run-session set no bus address"
        );
        let e = open_portal_error();
        assert!(matches!(e, ScreenError::NoPortal), "{case}: {e:?}");
        let text = e.to_string();
        assert!(text.contains("no screen-sharing portal"), "{text}");
        assert!(
            text.contains("xdg-desktop-portal-gnome, -kde or -wlr"),
            "{text}"
        );
        println!("{PASSED} {case}");
        return;
    }
    let test = "with_a_bus_but_no_screencast_portal_the_person_is_told_what_to_install";
    for tool in [
        "/usr/bin/dbus-run-session",
        "/usr/libexec/xdg-desktop-portal",
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: install dbus-daemon and xdg-desktop-portal (scripts/test.sh does)"
        );
    }
    // The frontend is activated by the private bus with this environment: an empty portal
    // directory leaves it without any backend (so no ScreenCast) even on a desktop that has
    // one, and it never starts a GTK backend, which would need a display.
    let portals = std::env::temp_dir().join(format!("videoroom-no-portals-{}", std::process::id()));
    std::fs::create_dir_all(&portals).expect("an empty portal dir");
    let this = this_test(test);
    let mut command = Command::new("dbus-run-session");
    command
        .arg("--")
        .arg(this.get_program())
        .args(this.get_args())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_DESKTOP_PORTAL_DIR", &portals);
    run_child(command, "session-bus-without-screencast");
    let _ = std::fs::remove_dir_all(&portals);
}
