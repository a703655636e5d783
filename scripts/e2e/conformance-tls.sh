#!/usr/bin/env bash
# The conformance suite over TLS (spec §19, TLS-6), binary against binary: each spawned
# `chat-server` serves TLS on the port the runner picks ({port}), with a certificate made
# at its start (`--tls-self-signed`), so the runner accepts whatever certificate it is
# shown (`--insecure`); the pinned path is checked by conformance/tests/cli.rs. The plain
# listener takes a free port of its own. Otherwise as conformance.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${PROFILE_DIR:-debug}"
mkdir -p artifacts
exec timeout 600 "target/$profile/chat-conformance" run --tls --insecure \
  --spawn "target/$profile/chat-server --listen 127.0.0.1:0 --tls-listen 127.0.0.1:{port} --tls-self-signed --handshake-timeout {handshake_timeout} --handshake-attempts {handshake_attempts} --max-clients {max_clients} --sendq {sendq} --flood-burst {flood_burst} --flood-rate {flood_rate} --flood-excess {flood_excess} --max-per-address 0 --max-handshakes-per-address 0" \
  --server-arg 'compat=--compat {}' \
  --server-arg 'op-password=--op-password {}' \
  --server-arg 'ping-interval=--ping-interval {}' \
  --server-arg 'ping-timeout=--ping-timeout {}' \
  --report artifacts/conformance-tls-report.md
