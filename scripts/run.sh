#!/usr/bin/env bash
# Runs Videoroom on a fresh Debian/Ubuntu machine. Installs what is missing, builds in release.
#
#   scripts/run.sh                 a local server and the desktop app, ready to join a room
#   scripts/run.sh server [ARGS]   only the server (with the web app), for others to join from
#                                  the app or a browser; ARGS go to videoroom-server, e.g.
#                                  --listen 0.0.0.0:9000 --public-ip 203.0.113.7
#
# Without a camera (no /dev/video*) the app runs with synthetic media (VIDEOROOM_FAKE_MEDIA=1).
source "$(dirname "$0")/setup.sh"
cd "$ROOT"

need_rust
if [ "${1:-}" = "server" ]; then
  shift
  apt_install_missing mold clang pkg-config
  need_node
  use_fast_linker
  ui_npm_ci
  echo "==> building the web app and the server (release)"
  (cd ui && npm run build --silent)
  cargo build --release --locked -p videoroom-server
  echo "==> videoroom-server: the web app at / (https://<this host>:8080/ with a self-signed"
  echo "    certificate unless --tls-cert/--tls-key or a loopback --listen), signaling at /ws,"
  echo "    health at /healthz, metrics at /metrics"
  exec ./target/release/videoroom-server --web-root "$ROOT/ui/dist" --state-dir "$ROOT/target/server-state" "$@"
fi

apt_install_missing mold clang pkg-config libvpx-dev libopus-dev libasound2-dev libclang-dev \
  "${DESKTOP_PKGS[@]}"
need_node
use_fast_linker
ui_npm_ci
echo "==> building the UI, the server and the desktop app (release; the first build takes a while)"
(cd ui && npm run build --silent)
cargo build --release --locked -p videoroom-server -p videoroom-desktop

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "error: no display (DISPLAY/WAYLAND_DISPLAY unset): the desktop app needs a graphical session." >&2
  echo "       Run it from a desktop session, or only the server with: scripts/run.sh server" >&2
  exit 1
fi

PORT="${VIDEOROOM_PORT:-8080}"
./target/release/videoroom-server --listen "127.0.0.1:$PORT" --rtc-bind-ip 127.0.0.1 \
  --web-root "$ROOT/ui/dist" &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "error: the server did not start (port $PORT in use? set VIDEOROOM_PORT)" >&2; exit 1; }
  sleep 0.1
done

export VIDEOROOM_DEFAULT_SERVER="ws://127.0.0.1:$PORT/ws" VIDEOROOM_MEDIA_IP="${VIDEOROOM_MEDIA_IP:-127.0.0.1}"
if ! compgen -G "/dev/video*" >/dev/null; then
  echo "==> no camera found: using synthetic media (moving pattern, 440 Hz tone)"
  export VIDEOROOM_FAKE_MEDIA="${VIDEOROOM_FAKE_MEDIA:-1}"
fi
# Without a GPU, WebKitGTK draws nothing from workers in compositing mode.
if ! compgen -G "/dev/dri/renderD*" >/dev/null; then
  export WEBKIT_DISABLE_COMPOSITING_MODE=1
fi
echo "==> server at ws://127.0.0.1:$PORT/ws (browsers: http://127.0.0.1:$PORT/); starting the desktop app (close its window to stop both)"
./target/release/videoroom-desktop
