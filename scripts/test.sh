#!/usr/bin/env bash
# Runs every check and test of the workspace on a fresh Debian/Ubuntu machine:
# formatting, clippy, the UI's typecheck and unit tests, the desktop .deb build, and every Rust
# test (real server, real WebRTC over loopback, headless Chromium interop, bots, the desktop app
# under Xvfb driven through tauri-driver). Installs what is missing first.
source "$(dirname "$0")/setup.sh"
cd "$ROOT"

need_rust
# The client links libvpx, libopus and ALSA (cpal, via pkg-config); the v4l camera bindings are
# generated with bindgen at build time, which needs libclang. The desktop app needs WebKitGTK;
# its end-to-end test needs Xvfb and WebKitWebDriver.
apt_install_missing chromium mold clang pkg-config libvpx-dev libopus-dev libasound2-dev libclang-dev \
  "${DESKTOP_PKGS[@]}"
need_node
use_fast_linker
link_cargo_tauri
# A test run builds everything once: incremental caches would only cost time and disk (several
# GiB per workspace here).
export CARGO_INCREMENTAL=0

echo "==> npm ci (Chromium interop driver)"
(cd server/tests/chromium && npm ci --no-audit --no-fund --loglevel=error)
ui_npm_ci
echo "==> UI: typecheck, unit tests (Vitest), build"
(cd ui && npm run typecheck --silent && npm test --silent && npm run build --silent)
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
