#!/bin/bash
# The Redis engine's cost (docs/performance.md, issue 15): one run with a fresh
# redis-server and a fresh chat-server, in memory or with --engine redis.
#   cargo build --release -p chat-server -p chat-load
#   scripts/redis_measure.sh memory|redis [MESSAGES] [RATE]
# Prints chat-load's JSON line, then the Redis process's CPU ticks over the run.
set -u
R="$(cd "$(dirname "$0")/.." && pwd)/target/release"
mode=$1; msgs=${2:-20000}; rate=${3:-0}
port=$((19200 + RANDOM % 500))
rport=$((16400 + RANDOM % 500))
redis-server --port $rport --bind 127.0.0.1 --save '' --appendonly no > /dev/null 2>&1 &
rpid=$!
sleep 0.3
args=(--listen 127.0.0.1:$port --max-clients 20000 --flood-rate 0 --threads 2)
[ "$mode" = redis ] && args+=(--engine redis://127.0.0.1:$rport)
RUST_LOG=error $R/chat-server "${args[@]}" > /dev/null 2>&1 &
spid=$!
sleep 0.5
r0=$(awk '{print $14+$15}' /proc/$rpid/stat)
$R/chat-load --target 127.0.0.1:$port --clients 200 --senders 1 --messages $msgs --rate $rate --server-pid $spid --json
r1=$(awk '{print $14+$15}' /proc/$rpid/stat)
echo "redis_cpu_ticks=$((r1 - r0)) (USER_HZ=$(getconf CLK_TCK))"
kill $spid; wait $spid 2>/dev/null
kill $rpid; wait $rpid 2>/dev/null
