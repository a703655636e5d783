#!/usr/bin/env bash
# The desktop client's end-to-end test (two chat-gui windows, a raw TCP client and the
# real server under Xvfb); the script and its notes live with the client.
exec bash "$(dirname "$0")/../../client-gui/tests/e2e/gui.sh" "$@"
