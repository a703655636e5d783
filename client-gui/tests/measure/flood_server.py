#!/usr/bin/env python3
"""A scripted chat server for measuring chat-gui: it does the handshake with one
client as a protocol 1.1 server (enabling tags when asked), answers its /who, then
waits until the file GO exists and sends LINES chat lines of about 80 bytes of text,
tagged with an id and a time when tags are on, as fast as the client reads them, then
`bob: DONE`.

  flood_server.py PORT_FILE GO LINES

The port it listens on (127.0.0.1, chosen by the system) is written to PORT_FILE."""
import os
import socket
import sys
import time

TEXT = "the slides for tomorrow are up on the course page, see you all in room B at 5"


def main() -> int:
    port_file, go, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(60)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)
    conn, _ = srv.accept()
    conn.settimeout(300)
    conn.sendall(b"NICK\n")
    pending = b""
    while pending.count(b"\n") < 1:
        pending += conn.recv(100)
    first, pending = pending.split(b"\n", 1)
    tags = first == b"/caps tags"
    if tags:
        conn.sendall(b"Capabilities enabled: tags\nNICK\n")
        while b"\n" not in pending:
            pending += conn.recv(100)
        nick, pending = pending.split(b"\n", 1)
    else:
        nick = first
    conn.sendall(nick + b" has joined the chat\nConnected to the server\n")
    conn.settimeout(0.5)
    deadline = time.time() + 300
    while not os.path.exists(go):
        try:
            data = conn.recv(4096)
            if b"/who" in data:
                conn.sendall(b"Users online: bob, " + nick + b"\n")
            if not data:
                return 1
        except socket.timeout:
            pass
        if time.time() > deadline:
            return 1
    conn.settimeout(300)
    batch = []
    for i in range(count):
        if tags:
            ms = int(time.time() * 1000)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
            batch.append(f"@id=1:{i + 1};t={stamp} bob: {i:06d} {TEXT}\n")
        else:
            batch.append(f"bob: {i:06d} {TEXT}\n")
        if len(batch) == 1000:
            conn.sendall("".join(batch).encode())
            batch = []
    batch.append("bob: DONE\n")
    conn.sendall("".join(batch).encode())
    # Stay connected while the client is measured.
    conn.settimeout(600)
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
