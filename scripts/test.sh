#!/usr/bin/env bash
# Runs every check and test of the workspace on a fresh Debian/Ubuntu machine:
# formatting, clippy, unit and integration tests (real server, real WebRTC over loopback,
# headless Chromium interop). Installs what is missing first.
source "$(dirname "$0")/setup.sh"
cd "$ROOT"

need_rust
node_pkgs=()
command -v node >/dev/null || node_pkgs+=(nodejs)
command -v npm >/dev/null || node_pkgs+=(npm)
# The client links libvpx, libopus and ALSA (cpal, via pkg-config); the v4l camera bindings are
# generated with bindgen at build time, which needs libclang.
apt_install_missing chromium mold clang pkg-config libvpx-dev libopus-dev libasound2-dev libclang-dev \
  "${node_pkgs[@]}"
use_fast_linker
# A test run builds everything once: incremental caches would only cost time and disk (several
# GiB per workspace here).
export CARGO_INCREMENTAL=0

echo "==> npm ci (Chromium interop driver)"
(cd server/tests/chromium && npm ci --no-audit --no-fund --loglevel=error)

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked "$@"
