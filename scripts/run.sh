#!/usr/bin/env bash
# Builds and runs videoroom-server (the SFU) on a fresh Debian/Ubuntu machine.
# Extra arguments go to the server, e.g. `scripts/run.sh --listen 0.0.0.0:9000 --public-ip 203.0.113.7`
# (see `--help` and README's configuration table). Stop it with Ctrl-C.
source "$(dirname "$0")/setup.sh"
cd "$ROOT"

need_rust
apt_install_missing mold clang
use_fast_linker
cargo build --release --locked -p videoroom-server
echo "==> videoroom-server: WebSocket signaling at ws://<this host>:8080/ws, health at /healthz, metrics at /metrics"
exec ./target/release/videoroom-server "$@"
