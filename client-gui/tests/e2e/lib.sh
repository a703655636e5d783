# Sourced by the GUI end-to-end scripts (gui.sh, gui_tls.sh): how they enter a virtual X
# display and, inside it, the artifacts folder, the cleanup of what they started, and the
# bounded waits and typing they share. Needs $here (this folder) and $root (the
# workspace).

# need_x_tools: sets the array missing to what every GUI script drives the display with
# and is not installed (a script adds its own needs to it).
need_x_tools() {
    local tool
    missing=()
    for tool in xvfb-run xauth xdotool import python3; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
}

# enter_xvfb SECONDS SCRIPT [ARGS...]: builds the binaries not given in $CHAT_SERVER_BIN
# and $CHAT_GUI_BIN (release), then runs SCRIPT again inside Xvfb, the whole run capped
# at SECONDS. Does not return.
enter_xvfb() {
    local secs="$1"
    shift
    # shellcheck source=release_bin.sh
    source "$here/release_bin.sh"
    release_bin CHAT_SERVER_BIN chat-server chat-server
    release_bin CHAT_GUI_BIN chat-client-gui chat-gui
    export CHAT_E2E_INNER=1
    exec timeout --kill-after=10 "$secs" xvfb-run -a -s "-screen 0 1400x900x24" bash "$@"
}

# e2e_start LABEL FOLDER: inside Xvfb. LABEL starts every message ("gui e2e");
# artifacts/FOLDER is emptied for this run and named $art. Whatever the script adds to
# the array pids is killed when it exits.
e2e_start() {
    e2e_label="$1"
    art="$root/artifacts/$2"
    rm -rf "$art"
    mkdir -p "$art"
    pids=()
    trap cleanup EXIT
}

cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}

# Files that fail shows besides the run's transcripts and logs.
fail_shows=()

# fail WHAT: says what failed, shows the end of every transcript and log, keeps a
# screenshot of the whole display, and exits 1.
fail() {
    echo "$e2e_label: FAIL: $*" >&2
    echo "$e2e_label: artifacts in $art" >&2
    for f in "$art"/*.txt "$art"/*.log "${fail_shows[@]}"; do
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

# seen_within FILE TEXT SECONDS: like wait_for, but returns 1 instead of failing.
seen_within() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
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

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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
        echo "$e2e_label: '$line' not echoed after attempt $attempt; typing it again" >&2
    done
    fail "$file never got: $expected"
}
