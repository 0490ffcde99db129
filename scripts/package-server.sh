#!/usr/bin/env bash
# Builds the videoroom-server .deb: the binary (/usr/bin/videoroom-server), the systemd unit,
# the default config (/etc/videoroom/server.toml) and the web app (/usr/share/videoroom/web).
# What goes in is `[package.metadata.deb]` in server/Cargo.toml and packaging/server/.
#
#   scripts/package-server.sh [CARGO-DEB OPTIONS]     e.g. -o DIR, --fast
#
# Builds the UI first when ui/dist is missing or older than ui/'s sources (with
# PACKAGE_SERVER_UI=if-missing: only when missing), installs cargo-deb from crates.io when it is
# missing, then runs `cargo deb -p videoroom-server` (a release build of the server: several
# minutes from cold). The last line printed is the .deb's path.
# server/tests/packaging.rs runs it with `--profile dev --no-build` to package the debug binary
# the tests already built, instead of building the server again in release, and with
# PACKAGE_SERVER_UI=if-missing so that a test never rebuilds a UI someone is working on.
source "$(dirname "$0")/setup.sh"
cd "$ROOT"

# The cargo-deb this is tested with. Any 3.x works; a missing or older one is replaced by this.
CARGO_DEB_VERSION=3.8.0

need_rust
apt_install_missing mold clang pkg-config dpkg-dev
use_fast_linker
export CARGO_INCREMENTAL=0

ui_stale() {
  [ ! -f ui/dist/index.html ] && return 0
  [ "${PACKAGE_SERVER_UI:-}" = if-missing ] && return 1
  [ -n "$(find ui/src ui/index.html ui/package.json ui/package-lock.json ui/vite.config.ts \
    -newer ui/dist/index.html -print -quit 2>/dev/null)" ]
}
if ui_stale; then
  echo "==> UI: npm run build (ui/dist)" >&2
  need_node
  ui_npm_ci >&2
  (cd ui && npm run build --silent) >&2
fi

if ! cargo deb --version 2>/dev/null | grep -q '^cargo-deb 3\.'; then
  echo "==> cargo install cargo-deb $CARGO_DEB_VERSION" >&2
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked >&2
fi

# The release profile keeps line tables (readable backtraces), 60 MB of the binary's 70: by
# default they go to a separate videoroom-server-dbgsym .ddeb, and the .deb holds the stripped
# binary (12 MB). Any debug-symbol option given here replaces that.
args=("$@")
case " $* " in
  *" --dbgsym "* | *" --no-dbgsym "* | *" --strip "* | *" --no-strip "* | *"-debug-symbols"*) ;;
  *) args+=(--dbgsym) ;;
esac

echo "==> cargo deb -p videoroom-server ${args[*]}" >&2
out=$(cargo deb -p videoroom-server --locked "${args[@]}")
ddeb=$(printf '%s\n' "$out" | grep '\.ddeb$' | tail -n 1 || true)
deb=$(printf '%s\n' "$out" | grep '\.deb$' | tail -n 1 || true)
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
  printf '%s\n' "$out" >&2
  echo "error: cargo deb did not name a .deb it wrote" >&2
  exit 1
fi
[ -n "$ddeb" ] && echo "debug symbols: $ddeb" >&2
echo "$deb"
