#!/usr/bin/env bash
# The server's instructions per forwarded packet (server/benches/forwarding_instructions.rs under
# callgrind): one publisher, N subscribers, in the simulated network, counted only inside the
# server core's entry points. Repeatable to ~0.1 % on a busy machine, unlike CPU time.
#
#   scripts/forwarding-instructions.sh [--subscribers N] [OLD_REV]
#
# With OLD_REV (a commit, e.g. the engine issue's 456d293) the same bench is built from that
# revision too (a worktree under target/, its own build directory) and both figures are printed
# with their ratio. The bench file is copied into the old tree if it has none.
source "$(dirname "$0")/setup.sh"
cd "$ROOT"

subscribers=50
old_rev=""
while [ $# -gt 0 ]; do
  case "$1" in
    --subscribers) subscribers="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) old_rev="$1"; shift ;;
  esac
done

need_rust
apt_install_missing valgrind
use_fast_linker
export CARGO_INCREMENTAL=0

# Builds the bench in the tree $1 with build directory $2 and prints the binary's path.
build() {
  (cd "$1" && cargo bench -p videoroom-server --bench forwarding_instructions --no-run \
    --target-dir "$2" --message-format=json 2>/dev/null) |
    sed -n 's/.*"executable":"\([^"]*forwarding_instructions[^"]*\)".*/\1/p' | tail -1
}

# Instructions counted and packets received for $2 frames of bench binary $1.
count() {
  local out
  out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    --toggle-collect='videoroom_server::engine::core::MediaCore::handle_datagram' \
    --toggle-collect='videoroom_server::engine::core::MediaCore::drain_peer' \
    --toggle-collect='videoroom_server::engine::core::MediaCore::handle_timeout' \
    "$1" --subscribers "$subscribers" --frames "$2" 2>&1)
  echo "$(echo "$out" | sed -n 's/.*Collected : \([0-9]*\).*/\1/p') \
$(echo "$out" | sed -n 's/.*packets_received \([0-9]*\).*/\1/p')"
}

# Instructions per forwarded packet of bench binary $1: the difference of a 90- and a 30-frame
# run, so setup (ICE, DTLS, the first keyframe) cancels out.
per_packet() {
  read -r ir_short pk_short <<<"$(count "$1" 30)"
  read -r ir_long pk_long <<<"$(count "$1" 90)"
  if [ -z "$ir_short" ] || [ -z "$ir_long" ] || [ "$pk_long" -le "$pk_short" ]; then
    echo "forwarding-instructions: the bench run failed ($1)" >&2
    exit 1
  fi
  echo $(( (ir_long - ir_short) / (pk_long - pk_short) ))
}

echo "==> building the bench ($(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'))"
new_bin=$(build "$ROOT" "$ROOT/target")
[ -x "$new_bin" ] || { echo "forwarding-instructions: build failed" >&2; exit 1; }
new=$(per_packet "$new_bin")

if [ -n "$old_rev" ]; then
  tree="$ROOT/target/forwarding-instructions/$old_rev"
  if [ ! -d "$tree" ]; then
    # A worktree whose directory went with `cargo clean` is still registered: forget it first.
    git worktree prune
    git worktree add --detach "$tree" "$old_rev" >/dev/null
    if [ ! -f "$tree/server/benches/forwarding_instructions.rs" ]; then
      cp server/benches/forwarding_instructions.rs "$tree/server/benches/"
      printf '\n[[bench]]\nname = "forwarding_instructions"\npath = "benches/forwarding_instructions.rs"\nharness = false\n' \
        >>"$tree/server/Cargo.toml"
    fi
  fi
  echo "==> building the bench at $old_rev"
  old_bin=$(build "$tree" "$ROOT/target/forwarding-instructions/target")
  [ -x "$old_bin" ] || { echo "forwarding-instructions: build at $old_rev failed" >&2; exit 1; }
  old=$(per_packet "$old_bin")
fi

echo "instructions per forwarded packet, N = $subscribers (server core only, steady state):"
echo "  this tree: $new"
if [ -n "$old_rev" ]; then
  echo "  $old_rev: $old"
  awk -v n="$new" -v o="$old" 'BEGIN { printf "  this tree / %s: %.3f (%+.1f %%)\n", "old", n / o, (n / o - 1) * 100 }'
fi
