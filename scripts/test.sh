#!/usr/bin/env bash
# Runs every check and test of the workspace on a fresh Debian/Ubuntu machine:
# formatting, clippy, the UI's typecheck and unit tests, the desktop .deb build, and every Rust
# test (real server, real WebRTC over loopback, headless Chromium interop, bots, the desktop app
# under Xvfb driven through tauri-driver). Installs what is missing first.
source "$(dirname "$0")/setup.sh"
cd "$ROOT"

need_rust
# The client links libvpx, libopus, ALSA (cpal, via pkg-config) and PipeWire (Wayland screen
# sharing); the v4l camera and PipeWire bindings are generated with bindgen at build time, which
# needs libclang. The desktop app needs WebKitGTK; its end-to-end test needs Xvfb and
# WebKitWebDriver.
apt_install_missing chromium mold clang pkg-config libvpx-dev libopus-dev libasound2-dev libclang-dev \
  libpipewire-0.3-dev systemd "${DESKTOP_PKGS[@]}"
# The Wayland screen-sharing tests (client/tests/screen_portal.rs, media::screen::portal): a
# private session bus (dbus-run-session) with the portal frontend on it, and PipeWire's client
# configuration and protocol modules (pipewire-bin, libpipewire-0.3-modules) for the stream
# thread. No daemon runs: nothing here needs one.
apt_install_missing_bare dbus-daemon xdg-desktop-portal pipewire-bin libpipewire-0.3-modules
# The reverse-proxy test runs the README's nginx and Caddy configurations.
apt_install_tools_only nginx caddy
# ICE over TCP for a participant whose UDP is dropped (bot/tests/ice_tcp_netns.rs): nft rules in
# a network namespace of the test's own. Installing loads no rules on the host.
apt_install_missing_bare nftables
need_node
use_fast_linker
link_cargo_tauri
# A test run builds everything once: incremental caches would only cost time and disk (several
# GiB per workspace here).
export CARGO_INCREMENTAL=0
# A cold run's target takes about this much; say so before a link fails with "Disk full?".
avail_gib=$(df -BG --output=avail . | tail -1 | tr -dc 0-9)
if [ "${avail_gib:-0}" -lt 25 ]; then
  echo "warning: only ${avail_gib} GiB free here; a cold test build needs about 20 GiB" >&2
fi

echo "==> npm ci (Chromium interop driver)"
(cd server/tests/chromium && npm ci --no-audit --no-fund --loglevel=error)
(cd desktop-tests/browser && npm ci --no-audit --no-fund --loglevel=error)
ui_npm_ci
echo "==> UI: typecheck, unit tests (Vitest), build"
(cd ui && npm run typecheck --silent && npm test --silent && npm run build --silent)
if ! cargo deb --version 2>/dev/null | grep -q '^cargo-deb 3\.'; then
  echo "==> cargo install cargo-deb (the server's .deb, tested by server/tests/packaging.rs)"
  cargo install cargo-deb --version "$(sed -n 's/^CARGO_DEB_VERSION=//p' scripts/package-server.sh)" --locked
fi
if ! command -v tauri-driver >/dev/null; then
  echo "==> cargo install tauri-driver (WebDriver for the desktop app)"
  cargo install tauri-driver --version 2.1.0 --locked
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> desktop app: cargo tauri build --debug --bundles deb"
"$ROOT/scripts/cargo-tauri" build --debug --bundles deb --ci
echo "==> cargo test"
cargo test --workspace --locked "$@"
# The vendored crates are outside the workspace; their own tests include the ones written for
# our patches (vendor/*/PATCHES.md). rtc is vendored without its integration tests.
echo "==> cargo test: vendor/rtc-interceptor, vendor/rtc (lib)"
cargo test --manifest-path vendor/rtc-interceptor/Cargo.toml --locked --target-dir target/vendor "$@"
cargo test --manifest-path vendor/rtc/Cargo.toml --lib --locked --target-dir target/vendor "$@"
echo "==> disk: target $(du -sh target 2>/dev/null | cut -f1), $(df -h --output=avail . | tail -1 | tr -d ' ') left"
