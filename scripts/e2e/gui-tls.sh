#!/usr/bin/env bash
# The desktop client over TLS, end to end under Xvfb (spec §19, TLS-7): first use pins,
# a restarted server's new certificate is refused without retrying, /trust accepts it;
# the script and its notes live with the client.
exec bash "$(dirname "$0")/../../client-gui/tests/e2e/gui_tls.sh" "$@"
