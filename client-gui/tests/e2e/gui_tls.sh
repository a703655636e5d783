#!/usr/bin/env bash
# End-to-end test of chat-gui over TLS (spec §19, TLS-7), as a user would see it, on a
# virtual X display:
#
#   1. start the real chat-server with a plain listener and a TLS one
#      (`--tls-self-signed`: a new certificate, whose fingerprint the banner prints) on
#      free loopback ports, and a raw TCP client (carol, what `nc` would do) on the
#      plain port;
#   2. start chat-gui on tls://127.0.0.1:PORT with a fresh HOME and XDG_CONFIG_HOME:
#      the first connection pins the banner's fingerprint (the known_servers file) and
#      says so in the history; a line typed in the window reaches carol;
#   3. restart the server on the same ports with a NEW self-signed certificate: the
#      window's automatic reconnection is refused with a warning naming the server and
#      both fingerprints, and it does not retry by itself (no second connection in the
#      server's log for 4 s, the pin unchanged); a screenshot of the warning is kept;
#   4. type `/trust`: the window says what it did, pins the new fingerprint, connects
#      again, and a line reaches the server again.
#
# Needs: xvfb-run (xvfb, xauth), xdotool, import (imagemagick), python3, cargo.
# Artifacts (screenshots, transcript, logs) go to artifacts/e2e-gui-tls/ (gitignored).
# Binaries: $CHAT_SERVER_BIN and $CHAT_GUI_BIN if set, else built here (release).
# Every wait is bounded; the whole run is capped at 2 minutes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

if [[ -z "${CHAT_E2E_INNER:-}" ]]; then
    need_x_tools
    if ((${#missing[@]})); then
        echo "gui tls e2e: missing ${missing[*]} (apt-get install xvfb xauth xdotool imagemagick python3)" >&2
        exit 1
    fi
    enter_xvfb 120 "$0" "$@"
fi

# ---- inside Xvfb ------------------------------------------------------------------------
e2e_start "gui tls e2e" e2e-gui-tls
mkdir -p "$art/home" "$art/config"
fail_shows=("$art/config/chat-gui/known_servers")

# start_server LOG: a server on $port (plain) and $tport (TLS, a new certificate);
# sets server_pid and fp (the fingerprint its banner printed).
start_server() {
    "$CHAT_SERVER_BIN" --listen "127.0.0.1:$port" --tls-listen "127.0.0.1:$tport" \
        --tls-self-signed >"$1" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    wait_for "$1" "certificate SHA256:" 20
    fp="$(grep -o 'certificate SHA256:[0-9A-F:]*' "$1" | head -n 1 | cut -d' ' -f2)"
    [[ ${#fp} -eq 102 ]] || fail "no fingerprint in the banner of $1: '$fp'"
}

# say_alice LINE EXPECTED: types LINE into alice's window until her transcript shows
# EXPECTED (lib.sh's say).
say_alice() {
    say "$wid" "$art/alice.txt" "$1" "$2"
}

port="$(free_port)"
tport="$(free_port)"
start_server "$art/server-1.log"
fp1="$fp"
msg="hello over TLS, e2e $$"
python3 "$here/raw_client.py" "$port" carol "$art/carol.txt" "expect:alice: $msg" \
    "send:/quit" 2>"$art/carol.log" &
pids+=($!)
wait_for "$art/carol.txt" "carol has joined the chat"

# A fresh user: nothing pinned yet.
HOME="$art/home" XDG_CONFIG_HOME="$art/config" NO_COLOR=1 "$CHAT_GUI_BIN" \
    --server "tls://127.0.0.1:$tport" --nick alice --transcript "$art/alice.txt" \
    >"$art/alice.log" 2>&1 &
alice=$!
pids+=("$alice")
pins="$art/config/chat-gui/known_servers"
wait_for "$art/alice.txt" "certificate $fp1 (first connection to this server: fingerprint pinned"
wait_for "$art/alice.txt" "as alice"
grep -qxF "127.0.0.1:$tport $fp1" "$pins" || fail "first use did not pin $fp1"
wid="$(window_of alice)"
xdotool windowsize "$wid" 760 520 windowmove "$wid" 0 0
say_alice "$msg" "alice: $msg"
wait_for "$art/carol.txt" "alice: $msg"
import -window "$wid" "$art/alice-pinned.png"

# The server comes back with another certificate on the same address.
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
start_server "$art/server-2.log"
fp2="$fp"
[[ "$fp1" != "$fp2" ]] || fail "the restarted server kept its certificate"
warning="WARNING: the certificate of 127.0.0.1:$tport has CHANGED"
wait_for "$art/alice.txt" "$warning" 30
wait_for "$art/alice.txt" "Pinned fingerprint: $fp1" 1
wait_for "$art/alice.txt" "Presented now: $fp2" 1
# No retry by itself: the server sees no other connection, the pin stays.
sleep 0.5
import -window "$wid" "$art/alice-refused.png"
sleep 3.5
[[ "$(grep -cF -- "$warning" "$art/alice.txt")" -eq 1 ]] ||
    fail "the refused certificate was tried again by itself"
[[ "$(grep -cF "listener: connected peer" "$art/server-2.log")" -eq 1 ]] ||
    fail "the server saw other connections than the one refused"
grep -qF "nick=alice" "$art/server-2.log" && fail "alice joined a server she refused"
grep -qxF "127.0.0.1:$tport $fp1" "$pins" || fail "the refusal changed the pin"

# The user accepts the new certificate deliberately.
say_alice "/trust" "You trusted the new certificate of 127.0.0.1:$tport: $fp2 replaces $fp1"
wait_for "$art/alice.txt" "certificate $fp2 (matches the pinned fingerprint)"
grep -qxF "127.0.0.1:$tport $fp2" "$pins" || fail "/trust did not pin $fp2"
again="back over TLS $$"
python3 "$here/raw_client.py" "$port" dave "$art/dave.txt" "expect:alice: $again" \
    "send:/quit" 2>"$art/dave.log" &
dave=$!
pids+=("$dave")
wait_for "$art/dave.txt" "dave has joined the chat"
say_alice "$again" "alice: $again"
wait_for "$art/dave.txt" "alice: $again"
import -window "$wid" "$art/alice-trusted.png"
echo "gui tls e2e: ok (pinned $fp1, refused $fp2 without retrying, trusted it with /trust)"

# A new start of the window against a server with yet another certificate: the refusal
# is on the connect screen, with the button that accepts it (widgets.rs presses it).
kill "$alice"
wait "$alice" 2>/dev/null || true
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
start_server "$art/server-3.log"
fp3="$fp"
HOME="$art/home" XDG_CONFIG_HOME="$art/config" NO_COLOR=1 "$CHAT_GUI_BIN" \
    --server "tls://127.0.0.1:$tport" --nick alice --transcript "$art/alice-3.txt" \
    >"$art/alice-3.log" 2>&1 &
pids+=($!)
wait_for "$art/alice-3.txt" "Presented now: $fp3"
wait_for "$art/alice-3.txt" "Pinned fingerprint: $fp2" 1
grep -qxF "127.0.0.1:$tport $fp2" "$pins" || fail "the refusal changed the pin"
sleep 0.5
wid3="$(xdotool search --onlyvisible --name "chat" 2>/dev/null | head -n 1 || true)"
[[ -n "$wid3" ]] || fail "no window after the restart"
xdotool windowsize "$wid3" 760 560
sleep 0.5
import -window "$wid3" "$art/connect-refused.png"
echo "gui tls e2e: ok (a new start is refused on the connect screen too)"
