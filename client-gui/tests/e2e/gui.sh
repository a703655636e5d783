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
#   7. failover (issue 15): bob's window was started with two servers
#      (--server A,B; B is a second, independent chat-server): stop A and check that
#      bob's window moves to B by itself, as bobby, resumes there, and says that what
#      was missed could not be recovered (B does not share A's log); then restart A,
#      kill -9 B, and check that the window comes back to A (round-robin) the same way.
#
# The history view and the comforts (issue 16), between 4 and 5:
#   - Ctrl+V logs no `failed to borrow WinHandler`;
#   - Tab completes `bo` to `bob: ` in alice's input;
#   - a click on bob's name, End, typing: the whisper keeps its space (`/msg bob psst`);
#   - alice's window in the background: dave says her name, and the stub notification
#     service on the session bus receives the notification;
#   - bob (light theme) scrolls up, three lines arrive, the "3 new messages" button shows,
#     a click on it goes back to the newest line;
#   - a click on a link in bob's history reaches the opener (a stub xdg-open on PATH that
#     records its argument);
#   - a drag across part of two lines of bob's history, Ctrl+C: the clipboard holds
#     exactly those characters (the widget logs where it hit; the text comes from the
#     transcript).
# With --update-screenshots, docs/screenshot-gui-dark.png (alice) and
# docs/screenshot-gui-light.png (bob) are replaced by the ones this run took.
#
# Needs: xvfb-run (xvfb, xauth), xdotool, import (imagemagick), python3 with tkinter,
# dbus-daemon, python3-dbus and python3-gi (the stub notification service), cargo.
#   apt-get install xvfb xauth xdotool imagemagick python3 python3-tk dbus-daemon python3-dbus python3-gi
# Artifacts (screenshots, transcripts, logs) go to artifacts/e2e-gui/ (gitignored).
# Binaries: $CHAT_SERVER_BIN and $CHAT_GUI_BIN if set, else built here (release).
# Every wait is bounded; the whole run is capped at 5 minutes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

if [[ -z "${CHAT_E2E_INNER:-}" ]]; then
    need_x_tools
    python3 -c 'import tkinter' 2>/dev/null || missing+=("python3-tk")
    command -v dbus-daemon >/dev/null 2>&1 || missing+=("dbus-daemon")
    # Debian's python3-dbus is for the system's python3 (a pyenv one may come first).
    dbus_python=python3
    python3 -c 'import dbus, gi' 2>/dev/null || dbus_python=/usr/bin/python3
    "$dbus_python" -c 'import dbus, gi' 2>/dev/null || missing+=("python3-dbus python3-gi")
    export CHAT_E2E_DBUS_PYTHON="$dbus_python"
    if ((${#missing[@]})); then
        echo "gui e2e: missing ${missing[*]} (apt-get install xvfb xauth xdotool imagemagick python3 python3-tk dbus-daemon python3-dbus python3-gi)" >&2
        exit 1
    fi
    enter_xvfb 300 "$0" "$@"
fi

# ---- inside Xvfb ------------------------------------------------------------------------
e2e_start "gui e2e" e2e-gui
update_screenshots=0
[[ "${1:-}" == "--update-screenshots" ]] && update_screenshots=1

# A stub opener first on PATH: records what the window asks to open.
mkdir -p "$art/bin"
cat >"$art/bin/xdg-open" <<STUB
#!/bin/sh
echo "\$1" >>"$art/opened.txt"
STUB
chmod +x "$art/bin/xdg-open"
export PATH="$art/bin:$PATH"
# A private session bus with a stub notification service on it.
dbus-daemon --session --fork --nopidfile --print-address=3 3>"$art/bus-address" \
    --print-pid=4 4>"$art/bus-pid"
export DBUS_SESSION_BUS_ADDRESS="$(head -n 1 "$art/bus-address")"
pids+=("$(cat "$art/bus-pid")")
"$CHAT_E2E_DBUS_PYTHON" "$here/notify_stub.py" "$art/notifications.txt" >"$art/notify-stub.log" 2>&1 &
pids+=($!)

# title_is WINDOW PATTERN WHAT: waits (5 s at most) until the window's title matches the
# glob PATTERN; else fails with WHAT and the title it has.
title_is() {
    local i title
    for ((i = 0; i < 50; i++)); do
        title="$(xdotool getwindowname "$1")"
        # shellcheck disable=SC2053
        [[ "$title" == $2 ]] && return 0
        sleep 0.1
    done
    fail "$3: '$title'"
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

port="$(free_port)"
"$CHAT_SERVER_BIN" --listen "127.0.0.1:$port" >"$art/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_for "$art/server.log" "listening" 20
# The second server of bob's list (failover, step 7).
port_b="$(free_port)"
"$CHAT_SERVER_BIN" --listen "127.0.0.1:$port_b" >"$art/server-b.log" 2>&1 &
server_b_pid=$!
pids+=("$server_b_pid")
wait_for "$art/server-b.log" "listening" 20

msg="hello from alice, e2e $$"
whisper="whisper from carol $$"
python3 "$here/raw_client.py" "$port" carol "$art/carol.txt" \
    "expect:alice: $msg" "send:/msg bob $whisper" "expect:alice has left the chat" "send:/quit" \
    2>"$art/carol.log" &
carol=$!
pids+=("$carol")
wait_for "$art/carol.txt" "carol has joined the chat"
# dave says what the test writes into files, when it writes them.
# for_dave FILE: stdin into FILE, which appears whole (written beside it, then renamed):
# dave reads a file as soon as it exists, and a file written in place can be caught empty
# or half-written (a CI run once lost all 40 filler lines that way).
for_dave() {
    cat >"$1.part" && mv "$1.part" "$1"
}
python3 "$here/raw_client.py" "$port" dave "$art/dave.txt" \
    "sendfile:$art/dave-mention" "sendfile:$art/dave-fill" "sendfile:$art/dave-more" \
    "sendfile:$art/dave-link" "sendfile:$art/dave-bye" 2>"$art/dave.log" &
pids+=($!)
wait_for "$art/dave.txt" "dave has joined the chat"

start_gui() {
    local nick="$1" theme="$2" servers="${3:-127.0.0.1:$port}"
    # The history view logs where its rows, links and button are (to click them).
    RUST_LOG="warn,chat_client_gui::ui::history=debug" NO_COLOR=1 \
        XDG_CONFIG_HOME="$art/config-$nick" "$CHAT_GUI_BIN" --server "$servers" --nick "$nick" \
        --theme "$theme" --transcript "$art/$nick.txt" >"$art/$nick.log" 2>&1 &
}
wait_for "$art/notify-stub.log" "ready" 15
# One after the other, so that alice sees bob join.
start_gui alice dark
alice=$!
pids+=("$alice")
wait_for "$art/alice.txt" "Connected to 127.0.0.1:$port as alice"
start_gui bob light "127.0.0.1:$port,127.0.0.1:$port_b"
bob=$!
pids+=("$bob")
wait_for "$art/bob.txt" "Connected to 127.0.0.1:$port as bob"
wait_for "$art/alice.txt" "bob has joined the chat"

wid_alice="$(window_of alice)"
wid_bob="$(window_of bob)"
xdotool windowsize "$wid_alice" 690 520 windowmove "$wid_alice" 0 0
xdotool windowsize "$wid_bob" 690 520 windowmove "$wid_bob" 705 0

# Type into alice's window: the input line has the focus when the chat screen opens.
say "$wid_alice" "$art/alice.txt" "$msg" "alice: $msg"
wait_for "$art/bob.txt" "alice: $msg"
wait_for "$art/carol.txt" "alice: $msg"
# bob's window is not the focused one: its title counts the unread line.
title_is "$wid_bob" "([1-9]*) bob @ 127.0.0.1:$port*" \
    "bob's title shows no unread count while unfocused"
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


# ---- issue 16: the history view and the comforts ------------------------------------
# Ctrl+V read the clipboard without druid's nested main loop: no borrow errors.
grep -qF "failed to borrow WinHandler" "$art/alice.log" &&
    fail "Ctrl+V still logs 'failed to borrow WinHandler'"

# Tab completes a nickname at the start of a line, with ": ".
tabbed="tab works $$"
for attempt in 1 2 3; do
    xdotool windowfocus --sync "$wid_alice"
    sleep 0.3
    xdotool key --clearmodifiers ctrl+a BackSpace
    xdotool type --delay 25 -- "bo"
    xdotool key Tab
    xdotool type --delay 25 -- "$tabbed"
    xdotool key Return
    seen_within "$art/bob.txt" "alice: bob: $tabbed" 10 && break
    echo "gui e2e: tab completion not seen after attempt $attempt" >&2
done
wait_for "$art/bob.txt" "alice: bob: $tabbed" 1

# A click on bob's name in the panel gives `/msg bob `; End then keeps the space.
psst="psst $$"
for attempt in 1 2 3; do
    xdotool windowfocus --sync "$wid_alice"
    sleep 0.3
    xdotool key --clearmodifiers ctrl+a BackSpace
    # The panel's second row (alice, bob, carol, dave).
    xdotool mousemove --window "$wid_alice" 580 63 click 1
    sleep 0.3
    xdotool key --clearmodifiers End
    xdotool type --delay 25 -- "$psst"
    xdotool key Return
    seen_within "$art/bob.txt" "alice -> bob: $psst" 10 && break
    echo "gui e2e: the whisper after End not seen after attempt $attempt" >&2
done
wait_for "$art/bob.txt" "alice -> bob: $psst" 1
grep -qF "bobpsst" "$art/bob.txt" "$art/alice.txt" && fail "End put the caret before the space"

# alice's window in the background (bob's has the focus): dave names her, and the
# notification service gets it. (The window looks at its focus twice a second.)
xdotool windowfocus --sync "$wid_bob"
sleep 1.2
mention="hey Alice, are you coming $$"
echo "$mention" | for_dave "$art/dave-mention"
wait_for "$art/alice.txt" "dave: $mention"
wait_for "$art/notifications.txt" "dave mentioned you	$mention" 10
sleep 0.3
import -window "$wid_alice" "$art/alice-dark.png"

# last_history_log WINDOW_NICK: the newest position report of that window's history.
last_history_log() {
    grep -F "history: row" "$art/$1.log" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g'
}

# history_report NICK TEXT: the newest position report of that window's history once it
# contains TEXT (5 s at most; else the last one, for the caller's check to fail on).
history_report() {
    local i report
    for ((i = 0; i < 50; i++)); do
        report="$(last_history_log "$1")"
        [[ "$report" == *"$2"* ]] && break
        sleep 0.1
    done
    echo "$report"
}

# bob scrolls up; three lines arrive below; the button says so and takes him back.
for i in $(seq 1 40); do echo "filler line $i"; done | for_dave "$art/dave-fill"
wait_for "$art/bob.txt" "dave: filler line 40"
xdotool windowfocus --sync "$wid_bob"
sleep 0.3
xdotool mousemove --window "$wid_bob" 250 200
for i in $(seq 1 8); do xdotool click 4; sleep 0.05; done
sleep 0.5
printf 'more 1\nmore 2\nmore 3\n' | for_dave "$art/dave-more"
wait_for "$art/bob.txt" "dave: more 3"
report="$(history_report bob "new-messages button (3)")"
[[ "$report" == *"new-messages button (3) at "* ]] ||
    fail "no '3 new messages' button after scrolling up: $report"
import -window "$wid_bob" "$art/bob-new-messages.png"
xy="$(sed -E 's/.*new-messages button \(3\) at ([0-9]+),([0-9]+).*/\1 \2/' <<<"$report")"
# shellcheck disable=SC2086
xdotool mousemove --window "$wid_bob" $xy click 1
newest="$(grep -c '' "$art/bob.txt")"
for ((i = 0; i < 50; i++)); do
    report="$(last_history_log bob)"
    [[ "$report" != *"new-messages button"* && "$report" == *"row $newest "* ]] && break
    sleep 0.1
done
[[ "$report" != *"new-messages button"* && "$report" == *"row $newest "* ]] ||
    fail "the button did not take bob back to the newest line: $report"

# A click on a link opens it with the desktop's opener.
link="https://example.invalid/e2e-$$/page?x=1"
echo "the notes are at $link, have a look" | for_dave "$art/dave-link"
wait_for "$art/bob.txt" "dave: the notes are at $link"
report="$(history_report bob "link $link at ")"
[[ "$report" == *"link $link at "* ]] || fail "bob's history shows no link: $report"
xy="$(sed -E "s/.*link [^ ]+e2e-$$[^ ]* at ([0-9]+),([0-9]+).*/\1 \2/" <<<"$report")"
# shellcheck disable=SC2086
xdotool mousemove --window "$wid_bob" $xy click 1
wait_for "$art/opened.txt" "$link" 10
[[ "$(cat "$art/opened.txt")" == "$link" ]] || fail "the opener got: $(cat "$art/opened.txt")"

# A drag from inside one line to inside the next, then Ctrl+C: exactly those characters.
report="$(last_history_log bob)"
rows="$(grep -oE 'row [0-9]+ x [0-9]+ y [0-9]+-[0-9]+' <<<"$report")"
# The two lines of "more 2" and "more 3" (ids by transcript line number).
id_a="$(grep -nF "dave: more 2" "$art/bob.txt" | cut -d: -f1)"
id_b=$((id_a + 1))
row_a="$(grep "^row $id_a " <<<"$rows")" || fail "line $id_a not on screen: $report"
row_b="$(grep "^row $id_b " <<<"$rows")" || fail "line $id_b not on screen: $report"
read -r _ _ _ xa _ ya _ <<<"${row_a//-/ }"
read -r _ _ _ xb _ yb _ <<<"${row_b//-/ }"
xdotool mousemove --window "$wid_bob" $((xa + 22)) $((ya + 8)) mousedown 1
for step in 1 2 3 4; do
    xdotool mousemove --window "$wid_bob" $((xa + 22 + step * 4)) $((ya + 8 + (yb - ya) * step / 4))
    sleep 0.05
done
xdotool mousemove --window "$wid_bob" $((xb + 30)) $((yb + 8)) mouseup 1
sleep 0.3
xdotool key --clearmodifiers ctrl+c
sleep 0.5
python3 "$here/clipboard.py" get >"$art/bob-drag-clipboard.txt" 2>/dev/null || true
sel="$(grep -F "history: selected" "$art/bob.log" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g')"
python3 - "$art/bob.txt" "$art/bob-drag-clipboard.txt" "$id_a" "$id_b" "$sel" <<'PY' ||
import re, sys
transcript, clip, a, b, sel = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
lines = [l.rstrip("\n").split("] ", 1)[1] for l in open(transcript, encoding="utf-8")]
m = re.search(r"selected (\d+):(\d+) to (\d+):(\d+)", sel)
assert m, f"no selection logged: {sel!r}"
la, oa, lb, ob = map(int, m.groups())
assert (la, lb) == (a, b), f"selection on lines {la}..{lb}, wanted {a}..{b}"
ta, tb = lines[a - 1].encode(), lines[b - 1].encode()
assert 0 < oa < len(ta) and 0 < ob < len(tb), f"not part of each line: {oa} of {len(ta)}, {ob} of {len(tb)}"
want = (ta[oa:] + b"\n" + tb[:ob]).decode()
got = open(clip, encoding="utf-8").read()
assert got == want, f"clipboard {got!r}, selection {want!r}"
print(f"gui e2e: copied exactly {want!r}")
PY
    fail "the drag selection was not copied exactly"
import -window "$wid_bob" "$art/bob-light.png"

sleep 0.5
import -window "$wid_alice" "$art/alice.png"
import -window "$wid_bob" "$art/bob.png"
import -window root "$art/screen.png"

# The history is selectable and copyable: a click in bob's history gives it the focus,
# Ctrl+A selects all of it, Ctrl+C copies the text (without the time column).
for attempt in 1 2 3; do
    xdotool windowfocus --sync "$wid_bob"
    sleep 0.3
    xdotool mousemove --window "$wid_bob" 250 330 click 1
    sleep 0.2
    xdotool key --clearmodifiers ctrl+a ctrl+c
    sleep 0.5
    python3 "$here/clipboard.py" get >"$art/bob-clipboard.txt" 2>/dev/null || true
    grep -qxF "alice: $msg" "$art/bob-clipboard.txt" && break
    echo "gui e2e: copy from bob's history not on the clipboard after attempt $attempt" >&2
done
grep -qxF "alice: $msg" "$art/bob-clipboard.txt" ||
    fail "copying bob's history did not put alice's line on the clipboard"
grep -qF "carol -> bob: $whisper" "$art/bob-clipboard.txt" ||
    fail "the copied history lacks carol's whisper"
import -window "$wid_bob" "$art/bob-selected.png"
# Focused again, the count is gone.
title_is "$wid_bob" "bob @ 127.0.0.1:$port*" \
    "bob's title still counts unread lines while focused"

# bob renames himself: everyone sees it, and his title follows. His window has had the
# focus already and his history has it now: typing must reach the input, first time.
say "$wid_bob" "$art/bob.txt" "/nick bobby" "bob is now known as bobby" 1
wait_for "$art/alice.txt" "bob is now known as bobby"
wait_for "$art/carol.txt" "bob is now known as bobby"
title_is "$wid_bob" "bobby @ 127.0.0.1:$port*" \
    "bob's title did not follow the rename"

# Closing alice's window says /quit and exits cleanly; the others see her leave.
python3 "$here/x11_close.py" "$wid_alice" || fail "could not send WM_DELETE_WINDOW"
exits_within "$alice" 15
wait_for "$art/bob.txt" "alice has left the chat"
exits_within "$carol" 30
# The server's log says why a user left; colour codes removed before looking.
sed 's/\x1b\[[0-9;]*m//g' "$art/server.log" | grep 'left' | grep 'nick=alice' | grep -q 'quit' ||
    fail "the server did not see alice's /quit"

# Failover (issue 15): the first server of bob's list stops; bob's window says why it
# lost the connection, moves to the second by itself (back-off) and keeps its history,
# as bobby (the name he had when the connection was lost). It resumed after the last
# line it saw (RESUME-1); the second server is not a node of the same chat, so what
# was missed cannot be had, and the window says so (RESUME-3).
kill -INT "$server_pid"
exits_within "$server_pid" 15
wait_for "$art/bob.txt" "Disconnected: "
wait_for "$art/bob.txt" "Connected to 127.0.0.1:$port_b as bobby" 30
wait_for "$art/bob.txt" "Some messages while you were away could not be recovered" 10
title_is "$wid_bob" "bobby @ 127.0.0.1:$port_b*" \
    "bob's title does not name the server he moved to"
sleep 0.5
import -window "$wid_bob" "$art/bob-after-failover.png"
# The first server comes back, the second dies without a word (kill -9): round-robin
# brings the window back to the first.
"$CHAT_SERVER_BIN" --listen "127.0.0.1:$port" >"$art/server2.log" 2>&1 &
pids+=($!)
wait_for "$art/server2.log" "listening" 20
{ kill -KILL "$server_b_pid" && wait "$server_b_pid"; } 2>/dev/null || true
wait_for "$art/bob.txt" "Connected to 127.0.0.1:$port as bobby" 30
for ((i = 0; i < 100; i++)); do
    (($(grep -cF "Some messages while you were away could not be recovered" "$art/bob.txt") >= 2)) && break
    sleep 0.1
done
(($(grep -cF "Some messages while you were away could not be recovered" "$art/bob.txt") >= 2)) ||
    fail "bob's window did not say the second gap"
sleep 0.5
import -window "$wid_bob" "$art/bob-after-restart.png"

python3 "$here/x11_close.py" "$wid_bob" || fail "could not send WM_DELETE_WINDOW"
exits_within "$bob" 15
echo "/quit" | for_dave "$art/dave-bye"

if ((update_screenshots)); then
    mkdir -p "$root/docs"
    convert "$art/alice-dark.png" -strip -define png:compression-level=9 "$root/docs/screenshot-gui-dark.png"
    convert "$art/bob-light.png" -strip -define png:compression-level=9 "$root/docs/screenshot-gui-light.png"
    echo "gui e2e: updated docs/screenshot-gui-dark.png and docs/screenshot-gui-light.png"
fi

echo "gui e2e: PASS (screenshots and transcripts in $art)"
