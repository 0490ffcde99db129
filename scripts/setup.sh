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
