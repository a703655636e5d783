#!/usr/bin/env bash
# The conformance suite, binary against binary: `chat-conformance run` spawns a fresh
# `chat-server` per session, with every limit a session needs passed on its command line.
# Every session's clients come from 127.0.0.1, so the per-address limits (ADDR-1) are off;
# server/tests/per_address.rs checks them from several loopback addresses.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${PROFILE_DIR:-debug}"
mkdir -p artifacts
exec timeout 600 "target/$profile/chat-conformance" run \
  --spawn "target/$profile/chat-server --listen 127.0.0.1:{port} --handshake-timeout {handshake_timeout} --handshake-attempts {handshake_attempts} --max-clients {max_clients} --sendq {sendq} --flood-burst {flood_burst} --flood-rate {flood_rate} --flood-excess {flood_excess} --max-per-address 0 --max-handshakes-per-address 0 --flood-per-address 0" \
  --server-arg 'compat=--compat {}' \
  --server-arg 'op-password=--op-password {}' \
  --server-arg 'ping-interval=--ping-interval {}' \
  --server-arg 'ping-timeout=--ping-timeout {}' \
  --report artifacts/conformance-report.md
