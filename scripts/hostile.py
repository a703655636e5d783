#!/usr/bin/env python3
"""The attacks of issue 14, re-run against a real `chat-server` process at its default
settings, with the figures docs/reliability.md quotes ("hostile users").

A hostile student on the same LAN is played from 127.0.0.1; the normal user connects
from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to loopback). Loopback only; every loop
is bounded in count and time.

    cargo build --release -p chat-server
    python3 scripts/hostile.py                 # all attacks, about a minute
    python3 scripts/hostile.py silent reopen   # some of them
    python3 scripts/hostile.py storm           # the join storm (not in "all"; minutes)
    python3 scripts/hostile.py probes --clients 10000 --seconds 20  # cost of PING probes

The same attacks run in CI, smaller and faster, as tests: server/tests/per_address.rs,
server/tests/flood_bytes.rs, server/tests/idle.rs, server/tests/liveness.rs.
"""

import argparse
import os
import resource
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = Path(os.environ.get("CHAT_SERVER", ROOT / "target" / "release" / "chat-server"))
ATTACKER = "127.0.0.1"
NORMAL = "127.0.0.2"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args):
        self.port = free_port()
        cmd = [str(SERVER), "--listen", f"127.0.0.1:{self.port}", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "RUST_LOG": "warn"})
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        sys.exit("server did not start")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def connect(port, source, timeout=5.0):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def first_line(s, timeout):
    """The first line the server sends, or None (closed or timed out)."""
    s.settimeout(timeout)
    buf = b""
    end = time.monotonic() + timeout
    while b"\n" not in buf and time.monotonic() < end:
        try:
            chunk = s.recv(4096)
        except (socket.timeout, OSError):
            return None
        if not chunk:
            return None
        buf += chunk
    return buf.split(b"\n", 1)[0].decode(errors="replace") if b"\n" in buf else None


def normal_user(port, nick, timeout=2.0):
    """Connects from the normal address, joins and quits. Returns seconds to NICK, or None."""
    start = time.monotonic()
    try:
        s = connect(port, NORMAL, timeout)
    except OSError:
        return None
    try:
        if first_line(s, timeout) != "NICK":
            return None
        took = time.monotonic() - start
        s.sendall(f"{nick}\n".encode())
        s.settimeout(timeout)
        got = b""
        while b"Connected to the server\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                return None
            got += chunk
        s.sendall(b"/quit\n")
        return took
    except OSError:
        return None
    finally:
        s.close()


def silent(args):
    """One address opens 200 silent connections at once against a 200-slot server."""
    srv = Server("--max-clients", "200")
    try:
        held, prompted, refused = [], 0, 0
        start = time.monotonic()
        for _ in range(200):
            held.append(connect(srv.port, ATTACKER))
        opened = time.monotonic() - start
        for s in held:
            line = first_line(s, 2.0)
            if line == "NICK":
                prompted += 1
            elif line and line.startswith("ERR too-many-connections"):
                refused += 1
        waits = [normal_user(srv.port, f"normal{i}") for i in range(10)]
        ok = [w for w in waits if w is not None]
        print(f"silent: 200 connections from one address opened in {opened:.3f} s: "
              f"{prompted} got NICK, {refused} got ERR too-many-connections; "
              f"normal user joined {len(ok)}/10, slowest NICK {max(ok) * 1000:.1f} ms")
        for s in held:
            s.close()
    finally:
        srv.stop()


def reopen(args):
    """One address reopens every handshake place as soon as it frees, for 40 s in the
    issue; here `--seconds` (default 10), against a 200-slot server, handshake limit
    2 s so that places free often. The normal user tries every 250 ms."""
    srv = Server("--max-clients", "200", "--handshake-timeout", "2")
    stop = threading.Event()
    stats = {"opened": 0, "refused": 0}

    def attack():
        live = []
        deadline = time.monotonic() + args.seconds + 5
        while not stop.is_set() and time.monotonic() < deadline:
            while len(live) < 200:
                try:
                    s = connect(srv.port, ATTACKER, 2.0)
                    s.setblocking(False)
                    live.append(s)
                except OSError:
                    break
            readable, _, _ = select.select(live, [], [], 0.01)
            for s in readable:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if data.startswith(b"NICK"):
                    stats["opened"] += 1
                    continue  # hold it silently until the server gives up on it
                if data.startswith(b"ERR too-many-connections"):
                    stats["refused"] += 1
                live.remove(s)
                s.close()
        for s in live:
            s.close()

    t = threading.Thread(target=attack)
    t.start()
    try:
        time.sleep(0.5)
        waits = []
        end = time.monotonic() + args.seconds
        i = 0
        while time.monotonic() < end:
            waits.append(normal_user(srv.port, f"normal{i}"))
            i += 1
            time.sleep(0.25)
        ok = [w for w in waits if w is not None]
        print(f"reopen: over {args.seconds} s the attacker got {stats['opened']} handshakes and "
              f"{stats['refused']} refusals; normal user joined {len(ok)}/{len(waits)}, "
              f"slowest NICK {max(ok) * 1000:.1f} ms" if ok else "reopen: normal user never got in")
    finally:
        stop.set()
        t.join()
        srv.stop()


def many(args):
    """One process opens 9,999 connections from one address as fast as it can, at the
    default --max-clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    srv = Server()
    try:
        rss0 = srv.rss_kib()
        held = []
        start = time.monotonic()
        for _ in range(min(9_999, hard - 100)):
            try:
                held.append(connect(srv.port, ATTACKER))
            except OSError:
                break
        opened = time.monotonic() - start
        during = normal_user(srv.port, "normal")
        prompted, refused = count_first_lines(held, 3.0)
        rss1 = srv.rss_kib()
        for s in held:
            s.close()
        print(f"many: {len(held)} connections from one address in {opened:.2f} s "
              f"({prompted} got NICK, {refused} ERR too-many-connections); "
              f"server RSS {rss0 // 1024} -> {rss1 // 1024} MiB; "
              f"normal user NICK in {during * 1000:.1f} ms" if during is not None else
              "many: normal user did not get in")
    finally:
        srv.stop()


def count_first_lines(socks, seconds):
    """Reads every socket's first bytes for up to `seconds`: how many got `NICK`, and how
    many `ERR too-many-connections`."""
    sel = select.epoll()
    by_fd = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = s
    prompted = refused = 0
    end = time.monotonic() + seconds
    while by_fd and time.monotonic() < end:
        for fd, _ in sel.poll(0.1):
            s = by_fd.pop(fd)
            sel.unregister(fd)
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            prompted += data.startswith(b"NICK")
            refused += data.startswith(b"ERR too-many-connections")
    sel.close()
    return prompted, refused


def join(port, source, nick):
    s = connect(port, source)
    assert first_line(s, 5) == "NICK"
    s.sendall(f"{nick}\n".encode())
    got = b""
    while b"Connected to the server\n" not in got:
        got += s.recv(4096)
    return s


def relayed_in(seconds, *server_args):
    """A joined user sends 200 lines of 1 KiB in one write; KiB that reach another user
    within `seconds`."""
    srv = Server(*server_args)
    try:
        a = join(srv.port, ATTACKER, "flooder")
        b = join(srv.port, NORMAL, "reader")
        a.sendall(("x" * 1023 + "\n").encode() * 200)
        got, start = 0, time.monotonic()
        b.settimeout(0.1)
        while time.monotonic() - start < seconds:
            try:
                got += len(b.recv(65536))
            except socket.timeout:
                pass
        a.close()
        b.close()
        return got // 1024
    finally:
        srv.stop()


def flood(args):
    """200 lines of 1 KiB in one write (205 kB), with the byte budget and without it (the
    line limit alone, as before FLOOD-1); and a 200-line paste of 160-byte lines, which
    the defaults must leave alone."""
    with_bytes = relayed_in(2.0)
    lines_only = relayed_in(2.0, "--flood-rate-bytes", "0")
    srv = Server()
    try:
        b = join(srv.port, NORMAL, "reader")
        p = join(srv.port, ATTACKER, "paster")
        start = time.monotonic()
        p.sendall(("p" * 159 + "\n").encode() * 200)
        seen = b""
        b.settimeout(0.1)
        while seen.count(b"paster: ") < 200 and time.monotonic() - start < 10:
            try:
                seen += b.recv(65536)
            except socket.timeout:
                pass
        took = time.monotonic() - start
        warned = b"ERR flood" in p.recv(65536) if select.select([p], [], [], 0.2)[0] else False
        print(f"flood: 200 x 1 KiB in one write reached another user within 2 s: {with_bytes} KiB "
              f"(lines only, --flood-rate-bytes 0: {lines_only} KiB); a 200-line paste of "
              f"160-byte lines was relayed whole in {took * 1000:.1f} ms, ERR flood: "
              f"{'yes' if warned else 'no'}")
        p.close()
        b.close()
    finally:
        srv.stop()


def idle(args):
    """A joined user stays silent under --idle-timeout 2s."""
    srv = Server("--idle-timeout", "2s")
    try:
        start = time.monotonic()
        s = join(srv.port, ATTACKER, "quiet")
        s.settimeout(10)
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        took = time.monotonic() - start
        last = got.decode(errors="replace").strip().splitlines()[-1]
        print(f"idle: silent user closed {took:.2f} s after joining with --idle-timeout 2s: {last!r}")
    finally:
        srv.stop()


def vanish(args):
    """A client that enabled `ping` stops answering (a hung program behind a live TCP
    connection: the kernel still ACKs, so keepalive sees nothing), under
    --ping-interval 2s --ping-timeout 2s; another user watches it leave. Then a
    `/pong` flood with bogus tokens from a third connection."""
    srv = Server("--ping-interval", "2s", "--ping-timeout", "2s")
    try:
        watcher = join(srv.port, NORMAL, "watcher")
        hung = connect(srv.port, ATTACKER)
        assert first_line(hung, 5) == "NICK"
        hung.sendall(b"/caps ping\nhung\n")
        start = time.monotonic()
        got = b""
        hung.settimeout(15)
        while True:
            chunk = hung.recv(4096)
            if not chunk:
                break
            got += chunk
        took = time.monotonic() - start
        lines = got.decode(errors="replace").splitlines()
        watcher.settimeout(5)
        seen = b""
        while b"hung has left the chat\n" not in seen:
            seen += watcher.recv(4096)
        left = time.monotonic() - start
        pings = [l for l in lines if l.startswith("PING ")]
        print(f"vanish: a client that stopped answering PING was closed {took:.2f} s after its "
              f"last line (interval 2 s + timeout 2 s), after {pings}, with {lines[-1]!r}; the "
              f"watcher saw it leave {left:.2f} s after")
        flood = join(srv.port, ATTACKER, "mallory")
        flood.sendall(b"/pong 12345\n" * 1000)
        flood.settimeout(5)
        errs, start = 0, time.monotonic()
        buf = b""
        while errs < 1000 and time.monotonic() - start < 30:
            try:
                chunk = flood.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
            errs = buf.count(b"ERR bad-arguments")
        t0 = time.monotonic()
        watcher.sendall(b"still fine\n")
        seen = b""
        while b"watcher: still fine\n" not in seen:
            seen += watcher.recv(4096)
        echo_ms = (time.monotonic() - t0) * 1000
        print(f"vanish: 1,000 bogus /pong lines in one write: {errs} ERR bad-arguments in "
              f"{time.monotonic() - start:.1f} s (flood limit), ERR flood: "
              f"{'yes' if b'ERR flood' in buf else 'no'}; the watcher's next line came back in "
              f"{echo_ms:.1f} ms")
    finally:
        srv.stop()


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probes(args):
    """The cost of probing: `--clients` joined users (each from its own loopback address)
    that enabled `ping` and answer every `PING`, under --ping-interval 1s, against the same
    users without `ping`. Server CPU (utime + stime) over `--seconds`, and the probes
    answered."""
    import selectors
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for enable in (False, True):
        srv = Server("--max-clients", str(args.clients + 100), "--ping-interval", "1s",
                     "--ping-timeout", "10s")
        sel = selectors.DefaultSelector()
        socks = []
        pongs = 0
        # Lines each user has read that the warm-up waits for.
        connected, saw_last = set(), set()
        last_join = b"zz-last has joined the chat"

        def pump(until, done_when=lambda: False):
            """Reads and answers `PING`s until `until` or `done_when()`."""
            nonlocal pongs
            while time.monotonic() < until and not done_when():
                for key, _ in sel.select(timeout=0.1):
                    try:
                        chunk = key.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    buf = key.data
                    buf += chunk
                    *lines, rest = bytes(buf).split(b"\n")
                    buf[:] = rest
                    if b"Connected to the server" in lines:
                        connected.add(key.fileobj)
                    if last_join in lines:
                        saw_last.add(key.fileobj)
                    answer = b"".join(b"/pong " + l[5:] + b"\n" for l in lines
                                      if l.startswith(b"PING "))
                    if answer:
                        key.fileobj.sendall(answer)
                        pongs += answer.count(b"\n")

        last = None
        try:
            for i in range(args.clients):
                s = socket.socket()
                s.bind((source(i), 0))
                s.connect(("127.0.0.1", srv.port))
                s.sendall((b"/caps ping\n" if enable else b"") + f"p{i}\n".encode())
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, bytearray())
                socks.append(s)
                if i % 100 == 99:
                    pump(time.monotonic() + 0.02)  # keep reading: a lagging reader is cut off
            # Joins race, so the last user to connect is not the last to join: first wait
            # for every welcome, then for the join notice of one more user who joins last.
            pump(time.monotonic() + 300, lambda: len(connected) == len(socks))
            last = join(srv.port, NORMAL, "zz-last")
            pump(time.monotonic() + 300, lambda: len(saw_last) == len(socks))
            print(f"probes: {len(connected)} joined, {len(saw_last)} read every join", flush=True)
            if enable:
                # The first probes all come one interval after the joins: let them settle.
                pump(time.monotonic() + 3)
            pongs = 0
            cpu0, t0 = cpu_seconds(srv.proc.pid), time.monotonic()
            pump(t0 + args.seconds)
            cpu = cpu_seconds(srv.proc.pid) - cpu0
            wall = time.monotonic() - t0
            left = len(sel.get_map())
            print(f"probes: {args.clients} users {'with' if enable else 'without'} ping, "
                  f"--ping-interval 1s: server CPU {cpu:.2f} s over {wall:.0f} s "
                  f"({100 * cpu / wall:.1f}% of one core), {pongs} PINGs answered "
                  f"({pongs / wall:.0f}/s), {left} still connected, RSS {srv.rss_kib() // 1024} MiB",
                  flush=True)
        finally:
            for s in socks:
                s.close()
            if last is not None:
                last.close()
            srv.stop()


def source(i):
    """A distinct loopback source address for client `i` (127.1.0.0 and up), so that a
    storm of many clients is not stopped by the per-address limits."""
    return f"127.{1 + (i >> 16)}.{(i >> 8) & 255}.{i & 255 or 1}"


def storm_user(port, source, nick):
    """A storm user: connects from `source`, sends its nickname at once without waiting for
    `NICK` (pipelining, SRV-6) and never reads; a 16 KiB receive buffer, so the notices it
    ignores do not pile up in the kernel by the megabyte."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(f"{nick}\n".encode())
    return s


def storm(args):
    """A join storm (issue 14): `--clients` users join, each from its own loopback
    address, and never read again; then for `--seconds` the oldest leave and new ones
    join at `--churn` per second each way, while a newcomer measures how long `NICK`
    takes. Afterwards everyone leaves and the server's RSS is compared with its idle
    RSS before the storm."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    srv = Server("--max-clients", str(args.clients + 1000))
    try:
        time.sleep(0.5)
        rss0 = srv.rss_kib()
        live = []
        start = time.monotonic()
        n = 0
        for n in range(args.clients):
            try:
                live.append(storm_user(srv.port, source(n), f"s{n}"))
            except OSError as e:
                print(f"storm: join {n} failed: {e!r}")
                break
            if (n + 1) % 1000 == 0:
                probe = normal_user(srv.port, f"progress{n}", timeout=5.0)
                shown = f"{probe * 1000:.0f} ms" if probe is not None else "none"
                print(f"storm: {n + 1} joined after {time.monotonic() - start:.0f} s, "
                      f"RSS {srv.rss_kib() // 1024} MiB, a newcomer's NICK {shown}", flush=True)
        joined = time.monotonic() - start
        rss_peak = srv.rss_kib()
        probes = []
        next_id = n + 1
        end = time.monotonic() + args.seconds
        next_probe = time.monotonic()
        step = 1.0 / args.churn
        while time.monotonic() < end:
            tick = time.monotonic()
            if live:
                live.pop(0).close()
            try:
                live.append(storm_user(srv.port, source(next_id), f"s{next_id}"))
            except OSError:
                pass
            next_id += 1
            if tick >= next_probe:
                probes.append(normal_user(srv.port, f"probe{len(probes)}", timeout=5.0))
                next_probe = tick + 0.5
            time.sleep(max(0.0, step - (time.monotonic() - tick)))
        for s in live:
            s.close()
        time.sleep(5)
        rss1 = srv.rss_kib()
        got = [p for p in probes if p is not None]
        worst = f"{max(got) * 1000:.0f} ms" if got else "never"
        print(f"storm: {args.clients} connected and sent their nickname in {joined:.1f} s "
              f"(RSS {rss0 / 1024:.1f} -> {rss_peak / 1024:.1f} MiB); "
              f"{args.seconds} s of churn at {args.churn}/s: newcomer got NICK {len(got)}/{len(probes)} times, "
              f"slowest {worst}; 5 s after all left RSS {rss1 / 1024:.1f} MiB "
              f"({100 * rss1 / max(rss0, 1):.0f}% of idle)")
    finally:
        srv.stop()


ATTACKS = {"silent": silent, "reopen": reopen, "many": many, "flood": flood, "idle": idle,
           "vanish": vanish, "storm": storm, "probes": probes}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("attacks", nargs="*", choices=[*ATTACKS, []], help="default: all")
    ap.add_argument("--seconds", type=int, default=10, help="length of the reopen and storm attacks")
    ap.add_argument("--clients", type=int, default=10_000, help="joined users in the storm")
    ap.add_argument("--churn", type=int, default=100, help="storm: leaves and joins per second")
    args = ap.parse_args()
    if not SERVER.exists():
        sys.exit(f"missing {SERVER}: cargo build --release -p chat-server")
    for name in args.attacks or [a for a in ATTACKS if a not in ("storm", "probes")]:
        ATTACKS[name](args)


if __name__ == "__main__":
    main()
