#!/usr/bin/env python3
"""Server memory per idle client: start chat-server, note its RSS, join N silent clients
with `chat-load --idle-hold`, wait until every join notice has been read (READY), note the
RSS again. Prints the growth in total and per client.

    scripts/idle_memory.py [--clients 10000] [--tls]

With --tls the clients connect to the server's TLS listener (spec §19; a certificate made
at start-up): the figure then includes each connection's rustls state.
"""

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--server", default=str(ROOT / "target" / "release" / "chat-server"))
    ap.add_argument("--load", default=str(ROOT / "target" / "release" / "chat-load"))
    ap.add_argument("--tls", action="store_true", help="clients connect over TLS")
    args = ap.parse_args()
    port = free_port()
    listen = ["--listen", f"127.0.0.1:{port}"]
    if args.tls:
        listen = ["--listen", "127.0.0.1:0", "--tls-listen", f"127.0.0.1:{port}", "--tls-self-signed"]
    # Every client comes from 127.0.0.1: no per-address limits (ADDR-1).
    server = subprocess.Popen([args.server, *listen, "--max-clients", str(args.clients + 100),
                               "--max-per-address", "0", "--max-handshakes-per-address", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.5)
        before = rss_kib(server.pid)
        load = subprocess.Popen([args.load, "--target", f"127.0.0.1:{port}", "--clients", str(args.clients),
                                 "--idle-hold", "5", "--timeout", "180", *(["--tls"] if args.tls else [])],
                                stdout=subprocess.PIPE, text=True)
        ready = load.stdout.readline().strip()
        if not ready.startswith("READY"):
            load.wait(timeout=30)
            sys.exit(f"load tool did not get ready: {ready!r}")
        time.sleep(1.0)
        after = rss_kib(server.pid)
        load.wait(timeout=60)
        grow = after - before
        per = grow * 1024 / args.clients
        print(f"idle clients: {args.clients}{' over TLS' if args.tls else ''}")
        print(f"server RSS before: {before / 1024:.1f} MiB, after: {after / 1024:.1f} MiB")
        print(f"growth: {grow / 1024:.1f} MiB, {per:.0f} bytes per client")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
