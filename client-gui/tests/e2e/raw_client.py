#!/usr/bin/env python3
"""A raw TCP chat client for the GUI end-to-end test: what `nc` would do, scripted.

Usage: raw_client.py PORT NICK LOGFILE STEP...
  STEP is `expect:TEXT` (wait, at most 30 seconds, for a line containing TEXT),
  `send:LINE` (send LINE and a LF), `sleep:SECONDS` (reading meanwhile) or
  `sendfile:PATH` (wait, at most 120 seconds, reading meanwhile, until PATH exists,
  then send its lines: the test drives the client by writing files, each written
  elsewhere and renamed into place, so that it is read whole).
Every line received is appended to LOGFILE as it arrives. Exits 0 when every step
succeeded, 1 otherwise (printing which step failed)."""
import os
import socket
import sys
import time

TIMEOUT = 30.0


def main() -> int:
    port, nick, logfile, steps = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(0.2)
    log = open(logfile, "a", buffering=1, encoding="utf-8")
    pending = b""
    lines = []

    def read_some():
        nonlocal pending
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return True
        if not data:
            return False
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            text = line.decode("utf-8", errors="replace")
            lines.append(text)
            log.write(text + "\n")
        return True

    def wait_for(text):
        deadline = time.monotonic() + TIMEOUT
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(lines):
                if text in lines[seen]:
                    del lines[: seen + 1]
                    return True
                seen += 1
            if not read_some():
                return any(text in l for l in lines)
        return False

    if not wait_for("NICK"):
        print("raw_client: no NICK prompt", file=sys.stderr)
        return 1
    sock.sendall(nick.encode() + b"\n")
    if not wait_for("Connected to the server"):
        print("raw_client: handshake failed", file=sys.stderr)
        return 1
    for step in steps:
        kind, _, arg = step.partition(":")
        if kind == "send":
            sock.sendall(arg.encode() + b"\n")
        elif kind == "sleep":
            deadline = time.monotonic() + float(arg)
            while time.monotonic() < deadline and read_some():
                pass
        elif kind == "sendfile":
            deadline = time.monotonic() + 120
            while not os.path.exists(arg):
                if time.monotonic() > deadline or not read_some():
                    print(f"raw_client: {arg} never appeared", file=sys.stderr)
                    return 1
            with open(arg, encoding="utf-8") as f:
                for line in f.read().splitlines():
                    sock.sendall(line.encode() + b"\n")
        elif kind == "expect":
            if not wait_for(arg):
                print(f"raw_client: never saw {arg!r}", file=sys.stderr)
                return 1
        else:
            print(f"raw_client: bad step {step!r}", file=sys.stderr)
            return 2
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
