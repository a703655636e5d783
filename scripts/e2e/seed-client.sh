#!/usr/bin/env bash
# The original Tk client (../shared/reference/seed_client.py) against
# `chat-server --compat seed`, under a virtual X display. Needs release binaries
# (cargo build --release --bins), xvfb, xdotool, imagemagick and python3-tk.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec timeout 300 xvfb-run -a -s "-screen 0 1600x1024x24 -nolisten tcp" python3 scripts/e2e/seed_client_e2e.py
