#!/usr/bin/env bash
# End-to-end test of chat-gui, as a user would use it, on a virtual X display:
#
#   1. start the real chat-server on a free loopback port;
#   2. start a raw TCP client (carol, what `nc` would do) and two chat-gui windows
#      (alice and bob), each with --transcript FILE;
#   3. type a line into alice's window with xdotool and press Enter;
#   4. check that bob's transcript and carol both got `alice: <line>`, that bob's title
#      counts it as unread, that carol's whisper reached bob only, that a two-line paste
#      goes out as two lines after Enter, that bob's history can be selected and copied,
#      and keep screenshots of both windows;
#   5. rename bob with /nick and check that everyone sees it;
#   6. close alice's window the way a window manager does (WM_DELETE_WINDOW) and check
#      that it exits with status 0, that the server saw /quit, and that bob and carol see
#      `alice has left the chat`;
#   7. restart the server and check that bob's window reconnects by itself, as bobby.
#
# Needs: xvfb-run (xvfb, xauth), xdotool, import (imagemagick), python3 with tkinter, cargo.
#   apt-get install xvfb xauth xdotool imagemagick python3 python3-tk
# Artifacts (screenshots, transcripts, logs) go to artifacts/e2e-gui/ (gitignored).
# Binaries: $CHAT_SERVER_BIN and $CHAT_GUI_BIN if set, else built here (release).
# Every wait is bounded; the whole run is capped at 5 minutes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

if [[ -z "${CHAT_E2E_INNER:-}" ]]; then
    missing=()
    for tool in xvfb-run xauth xdotool import python3; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    python3 -c 'import tkinter' 2>/dev/null || missing+=("python3-tk")
    if ((${#missing[@]})); then
        echo "gui e2e: missing ${missing[*]} (apt-get install xvfb xauth xdotool imagemagick python3 python3-tk)" >&2
        exit 1
    fi
    # Build what was not given (a no-op after scripts/test.sh's release build).
    target="${CARGO_TARGET_DIR:-$root/target}"
    if [[ -z "${CHAT_SERVER_BIN:-}" ]]; then
        (cd "$root" && cargo build --release --quiet -p chat-server)
        export CHAT_SERVER_BIN="$target/release/chat-server"
    fi
    if [[ -z "${CHAT_GUI_BIN:-}" ]]; then
        (cd "$root" && cargo build --release --quiet -p chat-client-gui)
        export CHAT_GUI_BIN="$target/release/chat-gui"
    fi
    export CHAT_E2E_INNER=1
    exec timeout --kill-after=10 300 xvfb-run -a -s "-screen 0 1400x900x24" bash "$0" "$@"
fi

# ---- inside Xvfb ------------------------------------------------------------------------
art="$root/artifacts/e2e-gui"
rm -rf "$art"
mkdir -p "$art"
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

fail() {
    echo "gui e2e: FAIL: $*" >&2
    echo "gui e2e: artifacts in $art" >&2
    for f in "$art"/*.txt "$art"/*.log; do
        [[ -e "$f" ]] && { echo "---- $f" >&2; tail -n 30 "$f" >&2; }
    done
    import -window root "$art/failure-screen.png" 2>/dev/null || true
    exit 1
}

# wait_for FILE TEXT [SECONDS]: until FILE has a line containing TEXT.
wait_for() {
    local file="$1" text="$2" secs="${3:-20}" i
    for ((i = 0; i < secs * 10; i++)); do
        [[ -f "$file" ]] && grep -qF -- "$text" "$file" && return 0
        sleep 0.1
    done
    fail "$file never got: $text"
}

# window_of NAME: the X window whose title contains "NAME @".
window_of() {
    local i wid
    for ((i = 0; i < 100; i++)); do
        wid="$(xdotool search --onlyvisible --name "$1 @" 2>/dev/null | head -n 1 || true)"
        [[ -n "$wid" ]] && { echo "$wid"; return 0; }
        sleep 0.1
    done
    fail "no window titled '$1 @'"
}

# exits_within PID SECONDS: waits for PID to end; fails if it does not, or not with 0.
exits_within() {
    local pid="$1" secs="$2" i status
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && fail "process $pid still running after ${secs}s"
    status=0
    wait "$pid" || status=$?
    [[ $status -eq 0 ]] || fail "process $pid exited with status $status"
}

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$CHAT_SERVER_BIN" --listen "127.0.0.1:$port" >"$art/server.log" 2>&1 &
pids+=($!)
wait_for "$art/server.log" "listening" 20

msg="hello from alice, e2e $$"
whisper="whisper from carol $$"
python3 "$here/raw_client.py" "$port" carol "$art/carol.txt" \
    "expect:alice: $msg" "send:/msg bob $whisper" "expect:alice has left the chat" "send:/quit" \
    2>"$art/carol.log" &
carol=$!
pids+=("$carol")
wait_for "$art/carol.txt" "carol has joined the chat"

start_gui() {
    local nick="$1"
    XDG_CONFIG_HOME="$art/config-$nick" "$CHAT_GUI_BIN" --server "127.0.0.1:$port" --nick "$nick" \
        --theme dark --transcript "$art/$nick.txt" >"$art/$nick.log" 2>&1 &
}
# One after the other, so that alice sees bob join.
start_gui alice
alice=$!
pids+=("$alice")
wait_for "$art/alice.txt" "Connected to 127.0.0.1:$port as alice"
start_gui bob
bob=$!
pids+=("$bob")
wait_for "$art/bob.txt" "Connected to 127.0.0.1:$port as bob"
wait_for "$art/alice.txt" "bob has joined the chat"

wid_alice="$(window_of alice)"
wid_bob="$(window_of bob)"
xdotool windowsize "$wid_alice" 690 520 windowmove "$wid_alice" 0 0
xdotool windowsize "$wid_bob" 690 520 windowmove "$wid_bob" 705 0

# seen_within FILE TEXT SECONDS: like wait_for, but returns 1 instead of failing.
seen_within() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# say WINDOW TRANSCRIPT LINE EXPECTED [ATTEMPTS]: types LINE and Enter into WINDOW until
# TRANSCRIPT shows EXPECTED. X input focus on a bare Xvfb (no window manager) can take a
# moment to settle when a window is focused the first time, and keys typed before it are
# lost; so there the input is cleared and the line typed again, at most ATTEMPTS times
# (default 3). (A slow echo would show the line twice; the checks allow that.)
say() {
    local wid="$1" file="$2" line="$3" expected="$4" attempts="${5:-3}" attempt
    for ((attempt = 1; attempt <= attempts; attempt++)); do
        xdotool windowfocus --sync "$wid"
        sleep 0.3
        xdotool key --clearmodifiers ctrl+a BackSpace
        xdotool type --delay 25 -- "$line"
        xdotool key Return
        seen_within "$file" "$expected" 10 && return 0
        echo "gui e2e: '$line' not echoed after attempt $attempt; typing it again" >&2
    done
    fail "$file never got: $expected"
}

# Type into alice's window: the input line has the focus when the chat screen opens.
say "$wid_alice" "$art/alice.txt" "$msg" "alice: $msg"
wait_for "$art/bob.txt" "alice: $msg"
wait_for "$art/carol.txt" "alice: $msg"
# bob's window is not the focused one: its title counts the unread line.
for ((i = 0; i < 50; i++)); do
    title_bob="$(xdotool getwindowname "$wid_bob")"
    [[ "$title_bob" == "("[1-9]*") bob @ 127.0.0.1:$port"* ]] && break
    sleep 0.1
done
[[ "$title_bob" == "("[1-9]*") bob @ 127.0.0.1:$port"* ]] ||
    fail "bob's title shows no unread count while unfocused: '$title_bob'"
# carol's whisper reaches bob, and not alice.
wait_for "$art/bob.txt" "carol -> bob: $whisper"
grep -qF -- "$whisper" "$art/alice.txt" && fail "alice saw a whisper meant for bob"

# A two-line paste is held with a notice, and Enter sends it as two messages.
paste1="first pasted line $$"
paste2="second pasted line $$"
python3 "$here/clipboard.py" 60 "$paste1
$paste2" >"$art/clipboard.log" 2>&1 &
pids+=($!)
wait_for "$art/clipboard.log" "ready" 15
for attempt in 1 2 3; do
    xdotool windowfocus --sync "$wid_alice"
    sleep 0.3
    xdotool key --clearmodifiers ctrl+v
    sleep 0.7
    [[ $attempt -eq 1 ]] && import -window "$wid_alice" "$art/alice-paste.png"
    xdotool key Return
    seen_within "$art/bob.txt" "alice: $paste2" 10 && break
    echo "gui e2e: paste not delivered after attempt $attempt; again" >&2
done
wait_for "$art/bob.txt" "alice: $paste1" 1
wait_for "$art/bob.txt" "alice: $paste2" 1
grep -A1 -F "alice: $paste1" "$art/bob.txt" | grep -qF "alice: $paste2" ||
    fail "the pasted lines did not arrive in order"

sleep 0.5
import -window "$wid_alice" "$art/alice.png"
import -window "$wid_bob" "$art/bob.png"
import -window root "$art/screen.png"

# The history is selectable and copyable: a click in bob's history gives it the focus,
# Ctrl+A selects every line, Ctrl+C copies them with their times.
for attempt in 1 2 3; do
    xdotool windowfocus --sync "$wid_bob"
    sleep 0.3
    xdotool mousemove --window "$wid_bob" 250 330 click 1
    sleep 0.2
    xdotool key --clearmodifiers ctrl+a ctrl+c
    sleep 0.5
    python3 "$here/clipboard.py" get >"$art/bob-clipboard.txt" 2>/dev/null || true
    grep -qE "^\[[0-9]{2}:[0-9]{2}\] alice: $msg\$" "$art/bob-clipboard.txt" && break
    echo "gui e2e: copy from bob's history not on the clipboard after attempt $attempt" >&2
done
grep -qE "^\[[0-9]{2}:[0-9]{2}\] alice: $msg\$" "$art/bob-clipboard.txt" ||
    fail "copying bob's history did not put alice's line on the clipboard"
grep -qF "carol -> bob: $whisper" "$art/bob-clipboard.txt" ||
    fail "the copied history lacks carol's whisper"
import -window "$wid_bob" "$art/bob-selected.png"
# Focused again, the count is gone.
for ((i = 0; i < 50; i++)); do
    title_bob="$(xdotool getwindowname "$wid_bob")"
    [[ "$title_bob" == "bob @ 127.0.0.1:$port"* ]] && break
    sleep 0.1
done
[[ "$title_bob" == "bob @ 127.0.0.1:$port"* ]] ||
    fail "bob's title still counts unread lines while focused: '$title_bob'"

# bob renames himself: everyone sees it, and his title follows. His window has had the
# focus already and his history has it now: typing must reach the input, first time.
say "$wid_bob" "$art/bob.txt" "/nick bobby" "bob is now known as bobby" 1
wait_for "$art/alice.txt" "bob is now known as bobby"
wait_for "$art/carol.txt" "bob is now known as bobby"
for ((i = 0; i < 50; i++)); do
    title_bob="$(xdotool getwindowname "$wid_bob")"
    [[ "$title_bob" == "bobby @ 127.0.0.1:$port"* ]] && break
    sleep 0.1
done
[[ "$title_bob" == "bobby @ 127.0.0.1:$port"* ]] || fail "bob's title did not follow the rename: '$title_bob'"

# Closing alice's window says /quit and exits cleanly; the others see her leave.
python3 "$here/x11_close.py" "$wid_alice" || fail "could not send WM_DELETE_WINDOW"
exits_within "$alice" 15
wait_for "$art/bob.txt" "alice has left the chat"
exits_within "$carol" 30
# The server's log says why a user left; colour codes removed before looking.
sed 's/\x1b\[[0-9;]*m//g' "$art/server.log" | grep 'left' | grep 'nick=alice' | grep -q 'quit' ||
    fail "the server did not see alice's /quit"

# The server restarts: bob's window says why it lost the connection, reconnects by
# itself (back-off) and keeps its history.
server_pid="${pids[0]}"
kill -INT "$server_pid"
exits_within "$server_pid" 15
wait_for "$art/bob.txt" "Disconnected: "
"$CHAT_SERVER_BIN" --listen "127.0.0.1:$port" >"$art/server2.log" 2>&1 &
pids+=($!)
# (as bobby: the name he had when the connection was lost)
wait_for "$art/bob.txt" "Connected to 127.0.0.1:$port as bobby" 30
sleep 0.5
import -window "$wid_bob" "$art/bob-after-restart.png"

python3 "$here/x11_close.py" "$wid_bob" || fail "could not send WM_DELETE_WINDOW"
exits_within "$bob" 15

echo "gui e2e: PASS (screenshots and transcripts in $art)"
