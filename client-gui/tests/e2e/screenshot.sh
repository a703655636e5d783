#!/usr/bin/env bash
# Makes docs/screenshot-gui.png for the README: a chat-gui window (alice) in a short
# conversation with two raw TCP clients, on a virtual X display. Not a test; run by
# hand after a visible change:  bash client-gui/tests/e2e/screenshot.sh
# Needs what gui.sh needs (xvfb, xdotool, imagemagick, python3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if [[ -z "${CHAT_SHOT_INNER:-}" ]]; then
    # Build what was not given.
    # shellcheck source=release_bin.sh
    source "$here/release_bin.sh"
    release_bin CHAT_SERVER_BIN chat-server chat-server
    release_bin CHAT_GUI_BIN chat-client-gui chat-gui
    export CHAT_SHOT_INNER=1
    exec timeout --kill-after=10 120 xvfb-run -a -s "-screen 0 1200x800x24" bash "$0"
fi

work="$(mktemp -d)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
wait_for() {
    local i
    for ((i = 0; i < 200; i++)); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "screenshot: $1 never got $2" >&2
    tail -n 20 "$work"/*.txt "$work"/*.log >&2
    exit 1
}
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$CHAT_SERVER_BIN" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
pids+=($!)
wait_for "$work/server.log" listening
python3 "$here/raw_client.py" "$port" bob "$work/bob.txt" \
    "expect:alice has joined" "sleep:0.4" "send:hi alice, welcome! the slides are up" \
    "expect:alice: thanks" "send:/nick bobby" "sleep:0.3" "send:see you at 5 in room B" \
    "sleep:30" &
pids+=($!)
python3 "$here/raw_client.py" "$port" carol "$work/carol.txt" \
    "expect:alice: thanks" "sleep:0.8" "send:/msg alice are you coming to the meetup?" \
    "sleep:30" &
pids+=($!)
wait_for "$work/carol.txt" "carol has joined"
XDG_CONFIG_HOME="$work/config" "$CHAT_GUI_BIN" --server "127.0.0.1:$port" --nick alice \
    --theme dark --transcript "$work/alice.txt" >"$work/alice.log" 2>&1 &
pids+=($!)
wait_for "$work/alice.txt" "Connected to"
wid="$(xdotool search --sync --onlyvisible --name "alice @" | head -n 1)"
xdotool windowsize "$wid" 820 500
xdotool windowfocus --sync "$wid"
sleep 0.5
wait_for "$work/alice.txt" "bob: hi alice"
xdotool type --delay 15 "thanks bob, looks great"
xdotool key Return
wait_for "$work/alice.txt" "carol -> alice"
wait_for "$work/alice.txt" "bobby: see you"
xdotool type --delay 15 "/msg carol yes, on my way"
xdotool key Return
wait_for "$work/alice.txt" "alice -> carol"
xdotool type --delay 15 "/msg dave are you there?"
xdotool key Return
wait_for "$work/alice.txt" "no-such-nick"
xdotool type --delay 15 "anyone up for lunch"
sleep 0.6
mkdir -p "$root/docs"
import -window "$wid" -strip -define png:compression-level=9 "$root/docs/screenshot-gui.png"
echo "wrote $root/docs/screenshot-gui.png ($(stat -c %s "$root/docs/screenshot-gui.png") bytes)"
