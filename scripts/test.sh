#!/usr/bin/env bash
# Installs whatever this machine lacks, then runs every check and test of the project:
# formatting, clippy, the whole workspace's tests (unit, property, integration, insta
# snapshots, conformance replay) and the end-to-end GUI tests under Xvfb.
#
#   scripts/test.sh            # everything
#   SKIP_INSTALL=1 scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- system packages (Debian/Ubuntu) ---------------------------------------------------
# GTK headers for druid, Xvfb + xdotool + ImageMagick for the GUI end-to-end tests,
# Python's tkinter for the original seed client, a session bus and python3-dbus for the
# GUI test's stub notification service, redis-server for the cluster tests (each starts its
# own on a free loopback port), iproute2's `ip` for server/tests/vanish.rs (blackhole rules
# in a network namespace of its own).
packages=(pkg-config libgtk-3-dev xvfb xauth xdotool imagemagick x11-utils python3-tk
  dbus-daemon python3-dbus python3-gi redis-server iproute2)
if [[ -z "${SKIP_INSTALL:-}" ]] && command -v dpkg >/dev/null 2>&1; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "==> installing: ${missing[*]}"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# insta never writes snapshots here: a missing or changed snapshot fails the run.
export INSTA_UPDATE=no
export CI="${CI:-true}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> no second async runtime (issue 15)"
# The redis crate's smol support uses tokio's sync primitives and tokio-util's codec as
# plain libraries; a tokio runtime, reactor or timer (rt, net, time) must never come in.
if cargo tree -p chat-server -e features -i tokio --locked 2>/dev/null |
  grep -E 'tokio feature "(rt|rt-multi-thread|net|time|io-util|macros)"'; then
  echo "tokio runtime features in chat-server's dependency tree" >&2
  exit 1
fi

echo "==> cargo build (release binaries used by end-to-end tests)"
cargo build --workspace --release --locked --bins

echo "==> cargo test"
# The join storm test (server/tests/join_storm.rs) times a newcomer's NICK against
# 10,000 users: it runs the release server built above, as a deployment would.
CHAT_SERVER_BIN="$PWD/target/release/chat-server" cargo test --workspace --locked

if [[ -d scripts/e2e ]]; then
  # The end-to-end scripts drive the release binaries built above. Named here, they are
  # not rebuilt with `-p` (whose feature set differs from the workspace's, so cargo would
  # compile druid and gtk a second time: minutes on a 2-core runner).
  export CHAT_SERVER_BIN="$PWD/target/release/chat-server"
  export CHAT_GUI_BIN="$PWD/target/release/chat-gui"
  for t in scripts/e2e/*.sh; do
    [[ -e "$t" ]] || continue
    echo "==> $t"
    bash "$t"
  done
fi
echo "==> all checks passed"
