#!/usr/bin/env bash
# Measures chat-gui's history view in a real window under Xvfb (not a test; figures for
# client-gui/README.md):
#
#   - RSS per retained line: VmRSS after 100,000 chat lines of about 80 bytes of text
#     (the default --history-cap) minus VmRSS once connected, divided by 100,000;
#   - paint time per frame while scrolling through them: the history widget times its
#     own `paint` (CHAT_GUI_PAINT_LOG=1) while xdotool pages up 150 times, drags
#     nothing, jumps Home, pages down, scrolls the wheel, and jumps End.
#
#   bash client-gui/tests/measure/history.sh [LINES]
#
# Needs: xvfb-run, xdotool, python3. Builds the release binary unless $CHAT_GUI_BIN is set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
lines="${1:-100000}"
if [[ -z "${CHAT_MEASURE_INNER:-}" ]]; then
    # shellcheck source=../e2e/release_bin.sh
    source "$here/../e2e/release_bin.sh"
    release_bin CHAT_GUI_BIN chat-client-gui chat-gui
    export CHAT_MEASURE_INNER=1
    exec timeout --kill-after=10 600 xvfb-run -a -s "-screen 0 1400x900x24" bash "$0" "$@"
fi

work="$(mktemp -d)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
wait_for() {
    local i
    for ((i = 0; i < ${3:-600}; i++)); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "measure: $1 never got $2" >&2
    exit 1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

python3 "$here/flood_server.py" "$work/port" "$work/go" "$lines" &
pids+=($!)
for ((i = 0; i < 100; i++)); do [[ -s "$work/port" ]] && break; sleep 0.1; done
port="$(cat "$work/port")"
CHAT_GUI_PAINT_LOG=1 XDG_CONFIG_HOME="$work/config" "$CHAT_GUI_BIN" --server "127.0.0.1:$port" \
    --nick alice --theme dark --transcript "$work/alice.txt" 2>"$work/paint.log" &
gui=$!
pids+=("$gui")
wait_for "$work/alice.txt" "Connected to"
wid="$(xdotool search --sync --onlyvisible --name "alice @" | head -n 1)"
xdotool windowsize "$wid" 920 620
sleep 2
before="$(rss_kb "$gui")"
start="$(date +%s.%N)"
cpu0="$(awk '{print $14 + $15}' "/proc/$gui/stat")"
touch "$work/go"
wait_for "$work/alice.txt" "bob: DONE" 3000
end="$(date +%s.%N)"
cpu1="$(awk '{print $14 + $15}' "/proc/$gui/stat")"
sleep 2
after="$(rss_kb "$gui")"
held="$(grep -c '' "$work/alice.txt")"
echo "lines delivered: $lines (+1), in $(echo "$end - $start" | bc) s wall, $(( (cpu1 - cpu0) * 10 )) ms CPU of chat-gui"
echo "RSS: $before KB connected, $after KB with $lines lines: $(( (after - before) * 1024 / lines )) bytes per line"

# Scrolling: start counting paints from here.
: >"$work/paint.log"
xdotool windowfocus --sync "$wid"
sleep 0.3
for ((i = 0; i < 150; i++)); do xdotool key --clearmodifiers Page_Up; done
xdotool key --clearmodifiers ctrl+Home
sleep 0.3
for ((i = 0; i < 100; i++)); do xdotool key --clearmodifiers Page_Down; done
xdotool mousemove --window "$wid" 300 200
for ((i = 0; i < 100; i++)); do xdotool click 5; done
for ((i = 0; i < 100; i++)); do xdotool click 4; done
xdotool key --clearmodifiers ctrl+End
sleep 1
mkdir -p "$root/artifacts"
cp "$work/paint.log" "$root/artifacts/measure-history-paint.log"
python3 - "$work/paint.log" <<'PY' || exit 1
import re, sys
paint, event, paint_cpu, event_cpu = [], [], [], []
slow = []
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.search(r"history (paint|event): ([0-9.]+) ms \(([-0-9.]+) ms CPU\)", line)
    if m:
        wall, cpu = float(m.group(2)), float(m.group(3))
        (paint if m.group(1) == "paint" else event).append(wall)
        (paint_cpu if m.group(1) == "paint" else event_cpu).append(cpu)
        slow.append((wall, line.strip()))
if not paint:
    sys.exit("measure: no paint times logged")
def stats(name, xs):
    xs = sorted(xs)
    n = len(xs)
    print(f"{name}: {n} frames, mean {sum(xs) / n:.2f} ms, median {xs[n // 2]:.2f} ms, "
          f"p95 {xs[max(0, n * 95 // 100 - 1)]:.2f} ms, p99 {xs[max(0, n * 99 // 100 - 1)]:.2f} ms, "
          f"max {xs[-1]:.2f} ms, over 16 ms: {sum(x > 16 for x in xs)}")
stats("paint while scrolling (wall)", paint)
stats("paint while scrolling (thread CPU)", paint_cpu)
if event:
    stats("scroll events that laid out lines (wall)", event)
    stats("scroll events that laid out lines (thread CPU)", event_cpu)
print("slowest:")
for _, l in sorted(slow)[-5:]:
    print("  " + l)
PY
echo "RSS after scrolling: $(rss_kb "$gui") KB"
