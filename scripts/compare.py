#!/usr/bin/env python3
"""Side-by-side fan-out comparison: our chat-server, the original Python server and ngIRCd.

Every scenario runs against every server in alternating order (ours, seed, ngircd, ours,
...), each run against a freshly started server (the seed server cannot survive a run:
DEFECTS.md item 5), with the same load tool (`chat-load`, in the matching dialect). The
table shows medians and the ratio of our median to each other server's.

Beside deliveries/s (which the load tool caps on 2 shared cores) it reports what the
server process spent per delivery over the send window (first send to last delivery):
CPU time (utime + stime from /proc/PID/stat, read by chat-load) and write system calls.
Write calls are counted with `perf stat` on the syscall tracepoints write, writev, sendto,
sendmsg and sendfile64 (the Python server writes with send(), which /proc/PID/io does not count),
summed over perf's 20 ms intervals that fall in the send window; without perf, from
/proc/PID/io `syscw` (write/writev only).

    scripts/compare.py                 # 5 runs per cell, writes docs/performance.md
    scripts/compare.py --runs 3 --quick --no-write
    BEFORE_BIN=/path/to/old/chat-server scripts/compare.py --servers ours,before --no-write
    BEFORE_ARGS="--max-per-address 0 --max-handshakes-per-address 0" BEFORE_BIN=... # a build with ADDR-1
    scripts/compare.py --servers ours --store --no-write   # the cost of --store (issue 13)
    scripts/compare.py --servers ours --tls --no-write     # the cost of TLS (issue 14)
    scripts/compare.py --cluster --runs 3                  # one node vs 3 nodes + Redis (issue 15)

The cluster scenario (issue 15, `--cluster`) starts one `redis-server` on a free loopback
port (no persistence) per run and stops it after; it compares one node (in memory), one
node with the Redis engine and three nodes of one cluster, with the same 600 receivers
(spread round-robin over the nodes by `chat-load --target a,b,c`) and one sender. It
reports total deliveries/s, p50/p99, each node's CPU per delivery of its own clients and
Redis's CPU per message, and writes its table between the `cluster` markers of
docs/performance.md.

Loopback only. Needs `ngircd` (apt-get install ngircd); without it that column is skipped.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The original Python server, beside the checkout (or SEED_SERVER=path, e.g. from a git
# worktree one level deeper).
SEED = Path(os.environ.get("SEED_SERVER", ROOT.parent / "shared" / "reference" / "seed_server.py"))
LOAD = ROOT / "target" / "release" / "chat-load"
SERVER = ROOT / "target" / "release" / "chat-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """True when something listens on `port`, judged from /proc/net/tcp{,6} rather than by
    connecting: a probe connection that closes at once wedges the seed server (DEFECTS.md
    items 5 and 8)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 3 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def wait_port(port, proc, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        if listening(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


NGIRCD_CONF = """[Global]
Name = load.test
Info = load test
Listen = 127.0.0.1
Ports = {port}
PidFile = {dir}/ngircd.pid
ServerGID = {gid}
ServerUID = {uid}
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 24
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
"""


def start(server, port, workdir):
    """Starts one server on `port`; returns (process, dialect)."""
    devnull = subprocess.DEVNULL
    if server in ("ours", "before", "ours+store", "ours+tls"):
        # The flood limit off, as a benchmark should (the other two have none). "before"
        # is another build of ours (BEFORE_BIN), for before/after comparisons.
        binary = SERVER if server != "before" else Path(os.environ["BEFORE_BIN"])
        cmd = [str(binary), "--listen", f"127.0.0.1:{port}", "--max-clients", "20000", "--flood-rate", "0"]
        if server == "ours+tls":
            # The same server, its clients on the TLS listener (spec §19): a certificate
            # made at start-up, the plain listener on a port of its own.
            cmd[2] = "127.0.0.1:0"
            cmd += ["--tls-listen", f"127.0.0.1:{port}", "--tls-self-signed"]
        if server != "before":
            # chat-load's clients all come from 127.0.0.1: no per-address limits (ADDR-1;
            # a "before" build may predate them).
            cmd += ["--max-per-address", "0", "--max-handshakes-per-address", "0"]
        extra = os.environ.get("OURS_ARGS", "").split()
        if server == "before":
            # Arguments only the "before" build takes, e.g. "--max-per-address 0
            # --max-handshakes-per-address 0" for a build that has the per-address limits.
            extra += os.environ.get("BEFORE_ARGS", "").split()
        if server == "ours+store":
            # History kept in a fresh SQLite file (issue 13): every event also goes to
            # the store thread.
            extra += ["--store", str(Path(workdir) / f"store-{port}.db")]
        proc = subprocess.Popen(cmd + extra, stdout=devnull, stderr=devnull, env={**os.environ, "RUST_LOG": "warn"})
        dialect = "spec"
    elif server == "seed":
        # The seed server logs every chunk; its output goes nowhere.
        proc = subprocess.Popen([sys.executable, str(SEED)], stdout=devnull, stderr=devnull,
                                env={**os.environ, "PORT": str(port), "HOST": "127.0.0.1"})
        dialect = "seed"
    elif server == "ngircd":
        conf = Path(workdir) / "ngircd.conf"
        conf.write_text(NGIRCD_CONF.format(port=port, dir=workdir, uid=os.getuid(), gid=os.getgid()))
        proc = subprocess.Popen(["ngircd", "--nodaemon", "--config", str(conf)], stdout=devnull, stderr=devnull)
        dialect = "irc"
    else:
        raise ValueError(server)
    wait_port(port, proc)
    return proc, dialect


def start_redis():
    """A private redis-server on a free loopback port, no persistence: (process, port)."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, port


def start_node(port, engine=None):
    """One of our servers (as `start("ours", ...)`), with `--engine URL` when given."""
    cmd = [str(SERVER), "--listen", f"127.0.0.1:{port}", "--max-clients", "20000", "--flood-rate", "0",
           "--max-per-address", "0", "--max-handshakes-per-address", "0"]
    if engine:
        cmd += ["--engine", engine]
    proc = subprocess.Popen(cmd + os.environ.get("OURS_ARGS", "").split(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    wait_port(port, proc)
    return proc


def run_cluster_once(nodes, redis, scenario):
    """One load run against `nodes` fresh servers (with a fresh Redis when `redis`)."""
    procs, redis_proc = [], None
    try:
        url = None
        if redis:
            redis_proc, rport = start_redis()
            url = f"redis://127.0.0.1:{rport}"
        ports = [free_port() for _ in range(nodes)]
        procs = [start_node(p, url) for p in ports]
        pids = [p.pid for p in procs] + ([redis_proc.pid] if redis_proc else [])
        timeout = scenario.get("timeout", 120)
        cmd = [str(LOAD), "--target", ",".join(f"127.0.0.1:{p}" for p in ports), "--json",
               "--server-pid", ",".join(str(p) for p in pids),
               "--clients", str(scenario["clients"]), "--senders", "1",
               "--messages", str(scenario["messages"]), "--size", "50",
               "--timeout", str(timeout), "--settle", "2"]
        if scenario.get("rate"):
            cmd += ["--rate", str(scenario["rate"])]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60)
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        if not line.startswith("{"):
            return {"error": (out.stderr.strip().splitlines() or ["no output"])[0][:120]}
        r = json.loads(line)
        other = r.get("other_cpu_s", {})
        cpu = [r.get("server_cpu_s")] + [other.get(str(p.pid)) for p in procs[1:]]
        if None not in cpu and r.get("delivered"):
            # Receivers are spread evenly: each node delivered its share.
            share = r["delivered"] / nodes
            r["node_cpu_ns_per_delivery"] = [c * 1e9 / share for c in cpu]
            r["nodes_cpu_ns_per_delivery"] = sum(cpu) * 1e9 / r["delivered"]
        if redis_proc and other.get(str(redis_proc.pid)) is not None:
            r["redis_cpu_s"] = other[str(redis_proc.pid)]
            r["redis_cpu_us_per_message"] = r["redis_cpu_s"] * 1e6 / scenario["messages"]
        return r
    finally:
        for p in procs:
            stop(p)
        if redis_proc:
            stop(redis_proc)


def cluster(args):
    """The cluster scenario (issue 15): prints its table and returns it."""
    if not shutil.which("redis-server"):
        sys.exit("the cluster scenario needs redis-server (apt-get install redis-server)")
    scale = 10 if args.quick else 1
    configs = [("1 node", 1, False), ("1 node + Redis", 1, True), ("3 nodes + Redis", 3, True)]
    scenarios = [
        {"name": "600 clients, 1 sender, 5,000 msgs", "clients": 600, "messages": 5000 // scale},
        {"name": "600 clients, paced 200 msg/s, 1,000 msgs", "clients": 600, "messages": 1000 // scale,
         "rate": 200, "paced": True},
        # Few receivers, so that latency is the path of one line (through Redis and back)
        # rather than the fan-out's queueing: what the Redis round trip adds.
        {"name": "30 clients, paced 100 msg/s, 1,000 msgs", "clients": 30, "messages": 1000 // scale,
         "rate": 100, "paced": True},
    ]
    results = {(sc["name"], c[0]): [] for sc in scenarios for c in configs}
    loads = []
    for sc in scenarios:
        for i in range(args.runs):
            for name, nodes, redis in configs:
                loads.append(os.getloadavg()[0])
                r = run_cluster_once(nodes, redis, sc)
                results[(sc["name"], name)].append(r)
                summary = r.get("error") or (
                    f"{fmt_rate(r['deliveries_per_s'])} p50 {r['p50_us']}us p99 {r['p99_us']}us lost {r['lost']}"
                    f" dup {r['duplicates']} reordered {r['reordered']}"
                    f" node cpu {[round(x, 1) for x in r.get('node_cpu_ns_per_delivery', [])]} ns/delivery"
                    f" redis {fmt_num(r.get('redis_cpu_us_per_message'), 1)} us/msg")
                print(f"[{sc['name']}] run {i + 1} {name}: {summary}", flush=True)

    def med(rs, key, f=lambda v: v):
        vals = [f(r[key]) for r in rs if "error" not in r and r.get(key) is not None]
        return statistics.median(vals) if vals else None

    lines = ["| scenario | setup | deliveries/s | p50 | p99 | CPU per delivery, each node | all nodes | Redis CPU per message | lost, dup, reordered |",
             "|---|---|---|---|---|---|---|---|---|"]
    for sc in scenarios:
        for name, nodes, redis in configs:
            rs = results[(sc["name"], name)]
            ok = [r for r in rs if "error" not in r]
            if not ok:
                lines.append(f"| {sc['name']} | {name} | failed | | | | | | |")
                continue
            per_node = [statistics.median([r["node_cpu_ns_per_delivery"][k] for r in ok
                                           if r.get("node_cpu_ns_per_delivery")] or [0]) for k in range(nodes)]
            bad = sum(r["lost"] + r["duplicates"] + r["reordered"] + r["corrupt"] for r in ok)
            errs = len(rs) - len(ok)
            lines.append(
                f"| {sc['name']} | {name} | {'paced' if sc.get('paced') else fmt_rate(med(ok, 'deliveries_per_s'))} "
                f"| {med(ok, 'p50_us') / 1000:.2f} ms | {med(ok, 'p99_us') / 1000:.1f} ms "
                f"| {', '.join(f'{v:.0f} ns' for v in per_node)} "
                f"| {fmt_num(med(ok, 'nodes_cpu_ns_per_delivery'), 0)} ns "
                f"| {fmt_num(med(ok, 'redis_cpu_us_per_message'), 1) + ' µs' if redis else '-'} "
                f"| {bad}{f' ({errs} runs failed)' if errs else ''} |")
    table = "\n".join(lines)
    print()
    print(table)
    load = statistics.median(loads) if loads else 0.0
    return table, load


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# sendfile64: our plain-TCP writers send log bytes from the log's memfd (issue 13).
SYSCALLS = ["write", "writev", "sendto", "sendmsg", "sendfile64"]


def perf_usable():
    """True when `perf stat` can count syscall tracepoints here."""
    if not shutil.which("perf"):
        return False
    try:
        out = subprocess.run(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_write", "true"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "not supported" not in out.stderr


def start_perf(pid, path):
    events = ",".join(f"syscalls:sys_enter_{c}" for c in SYSCALLS)
    started = time.time()
    proc = subprocess.Popen(["perf", "stat", "-I", "20", "-x,", "-e", events, "-p", str(pid), "-o", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.2)  # perf attaches
    return proc, started


def perf_writes(proc, started, path, window):
    """Write calls counted in the intervals that end inside the send window."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    lo, hi = window
    total = 0
    for row in Path(path).read_text().splitlines():
        f = row.split(",")
        if len(f) < 4 or row.startswith("#"):
            continue
        try:
            at, count = started + float(f[0]), int(f[1])
        except ValueError:
            continue
        # An interval is counted when it ends after the window starts and began before it
        # ended (the 20 ms at each edge, when the server is idle, are the error).
        if lo < at <= hi + 0.02:
            total += count
    return total


def run_once(server, scenario, workdir, use_perf):
    port = free_port()
    proc, dialect = start(server, port, workdir)
    perf = None
    try:
        if use_perf:
            perf = start_perf(proc.pid, Path(workdir) / "perf.txt")
        cmd = [str(LOAD), "--target", f"127.0.0.1:{port}", "--dialect", dialect, "--json",
               "--server-pid", str(proc.pid),
               "--clients", str(scenario["clients"]), "--senders", str(scenario["senders"]),
               "--messages", str(scenario["messages"]), "--size", "50",
               "--timeout", str(scenario.get("timeout", 120)), "--settle", "2",
               "--write-batch", os.environ.get("WRITE_BATCH", "0")]
        if server == "ours+tls":
            cmd.append("--tls")
        if scenario.get("rate"):
            cmd += ["--rate", str(scenario["rate"])]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=scenario.get("timeout", 120) + 60)
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        if not line.startswith("{"):
            return {"error": (out.stderr.strip().splitlines() or ["no output"])[0][:120]}
        r = json.loads(line)
        if perf and r.get("window_start_unix") and r.get("delivered"):
            writes = perf_writes(*perf, Path(workdir) / "perf.txt", (r["window_start_unix"], r["window_end_unix"]))
            perf = None
            r["server_write_calls"] = writes
            r["server_writes_per_delivery"] = writes / r["delivered"]
            r["writes_counted_by"] = "perf"
        return r
    finally:
        if perf:
            perf[0].kill()
            perf[0].wait()
        stop(proc)


def write_block(name, body):
    """Puts `body` between docs/performance.md's `<!-- NAME:start -->` and `<!-- NAME:end -->`
    markers, replacing what was there, or appends the marked block when the markers are missing."""
    doc = ROOT / "docs" / "performance.md"
    text = doc.read_text() if doc.exists() else "# Performance\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body}\n{end}"
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)
    print(f"\nwrote {doc}")


def fmt_rate(v):
    return f"{v / 1e6:.2f}M/s" if v else "-"


def fmt_num(v, digits):
    return "-" if v is None else f"{v:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller scenarios, for a smoke test")
    ap.add_argument("--no-write", action="store_true", help="do not write docs/performance.md")
    ap.add_argument("--servers", default="ours,seed,ngircd")
    ap.add_argument("--only", help="run only the scenarios whose name contains this")
    ap.add_argument("--no-perf", action="store_true", help="count write calls from /proc only")
    ap.add_argument("--store", action="store_true",
                    help="also run ours with --store (history in SQLite), as the server `ours+store`")
    ap.add_argument("--tls", action="store_true",
                    help="also run ours with its clients over TLS, as the server `ours+tls`")
    ap.add_argument("--cluster", action="store_true",
                    help="run the cluster scenario (issue 15) instead: 1 node vs 3 nodes + Redis")
    args = ap.parse_args()
    use_perf = not args.no_perf and perf_usable()

    if args.cluster:
        if not args.quick:
            subprocess.run(["cargo", "build", "--release", "-p", "chat-server", "-p", "chat-load"], cwd=ROOT,
                           check=True)
        table, load = cluster(args)
        if not args.no_write and not args.quick:
            write_block("cluster", f"Latest `scripts/compare.py --cluster --runs {args.runs}` "
                        f"({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average "
                        f"{load:.1f} at the runs' starts (median); medians of {args.runs} alternating runs, "
                        f"fresh servers and Redis per run):\n\n{table}")
        return

    if not args.quick:
        subprocess.run(["cargo", "build", "--release", "-p", "chat-server", "-p", "chat-load"], cwd=ROOT, check=True)
    servers = [s for s in args.servers.split(",") if s != "ngircd" or shutil.which("ngircd")]
    if args.store and "ours+store" not in servers:
        servers.insert(servers.index("ours") + 1 if "ours" in servers else 0, "ours+store")
    if args.tls and "ours+tls" not in servers:
        servers.insert(servers.index("ours") + 1 if "ours" in servers else 0, "ours+tls")
    scale = 10 if args.quick else 1
    scenarios = [
        {"name": "200 clients, 1 sender, 2,000 msgs", "clients": 200, "senders": 1, "messages": 2000 // scale},
        {"name": "200 clients, 1 sender, 50,000 msgs", "clients": 200, "senders": 1, "messages": 50000 // scale},
        {"name": "200 clients, 5 senders, 10,000 msgs each", "clients": 200, "senders": 5, "messages": 10000 // scale},
        {"name": "200 clients, paced 1000 msg/s, 5,000 msgs", "clients": 200, "senders": 1,
         "messages": 5000 // scale, "rate": 1000, "paced": True},
    ]
    if args.only:
        scenarios = [s for s in scenarios if args.only in s["name"]]
    results = {(s["name"], srv): [] for s in scenarios for srv in servers}
    with tempfile.TemporaryDirectory() as workdir:
        for sc in scenarios:
            for i in range(args.runs):
                for srv in servers:
                    r = run_once(srv, sc, workdir, use_perf)
                    results[(sc["name"], srv)].append(r)
                    summary = r.get("error") or (
                        f"{fmt_rate(r['deliveries_per_s'])} p99 {r['p99_us']}us lost {r['lost']} corrupt {r['corrupt']}"
                        f" cpu {fmt_num(r.get('server_cpu_ns_per_delivery'), 1)} ns/delivery"
                        f" writes {fmt_num(r.get('server_writes_per_delivery'), 4)}/delivery")
                    print(f"[{sc['name']}] run {i + 1} {srv}: {summary}", flush=True)

    def med(rs, key):
        vals = [r[key] for r in rs if "error" not in r]
        return statistics.median(vals) if vals else None

    lines = []
    header = "| scenario | " + " | ".join(servers) + " | " + " | ".join(f"ours / {s}" for s in servers if s != "ours") + " |"
    lines.append(header)
    lines.append("|" + "---|" * (1 + len(servers) + sum(1 for s in servers if s != "ours")))
    for sc in scenarios:
        paced = sc.get("paced")
        key = "p99_us" if paced else "deliveries_per_s"
        cells, meds = [], {}
        for srv in servers:
            rs = results[(sc["name"], srv)]
            m = med(rs, key)
            meds[srv] = m
            bad = sum(r.get("lost", 0) + r.get("corrupt", 0) + r.get("duplicates", 0) + r.get("reordered", 0)
                      for r in rs if "error" not in r)
            errs = sum(1 for r in rs if "error" in r)
            if m is None:
                cell = "failed"
            elif paced:
                cell = f"p99 {m / 1000:.1f} ms"
            else:
                cell = fmt_rate(m)
            if bad:
                cell += f" ({bad} lost/corrupt)"
            if errs:
                cell += f" ({errs} runs failed)"
            cells.append(cell)
        ratios = []
        for srv in servers:
            if srv == "ours":
                continue
            a, b = meds.get("ours"), meds.get(srv)
            if not a or not b:
                ratios.append("-")
            elif paced:
                ratios.append(f"{b / a:.2f}x lower p99" if a <= b else f"{a / b:.2f}x higher p99")
            else:
                ratios.append(f"{a / b:.2f}x")
        lines.append(f"| {sc['name']} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    # What the server spent per delivery, unpaced scenarios.
    lines.append("")
    lines.append("Server CPU time per delivery (utime + stime over the send window) and write calls per delivery:")
    lines.append("")
    # CPU ratios against ours, and against ours+store when it ran (issue 13: the fan-out
    # figures must hold with the store on).
    pairs = [(srv, "ours") for srv in servers if srv != "ours"]
    if "ours+store" in servers:
        pairs += [(srv, "ours+store") for srv in servers if srv not in ("ours", "ours+store")]
    lines.append("| scenario | " + " | ".join(f"{s} CPU" for s in servers) + " | "
                 + " | ".join(f"{s} writes" for s in servers) + " | "
                 + " | ".join(f"{s} CPU / {base}" for s, base in pairs) + " |")
    lines.append("|" + "---|" * (1 + 2 * len(servers) + len(pairs)))
    for sc in scenarios:
        if sc.get("paced"):
            continue
        cpu = {srv: med(results[(sc["name"], srv)], "server_cpu_ns_per_delivery") for srv in servers}
        wr = {srv: med(results[(sc["name"], srv)], "server_writes_per_delivery") for srv in servers}
        ratio = []
        for srv, base in pairs:
            a, b = cpu.get(base), cpu.get(srv)
            ratio.append(f"{b / a:.1f}x" if a and b else "-")
        lines.append(f"| {sc['name']} | " + " | ".join(f"{fmt_num(cpu[s], 1)} ns" for s in servers) + " | "
                     + " | ".join(fmt_num(wr[s], 4) for s in servers) + " | " + " | ".join(ratio) + " |")
    table = "\n".join(lines)
    print()
    print(table)

    if not args.no_write and not args.quick:
        cpu = ""
        try:
            for l in Path("/proc/cpuinfo").read_text().splitlines():
                if l.startswith("model name"):
                    cpu = l.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        machine = f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, loopback"
        batch = os.environ.get("WRITE_BATCH", "0")
        writes = "one write per message" if batch == "0" else f"senders writing {batch} bytes at a time"
        writes += "; write calls counted with perf" if use_perf else "; write calls from /proc/PID/io (write/writev only)"
        write_block("compare", f"Latest `scripts/compare.py` run ({time.strftime('%Y-%m-%d')}, {machine}; "
                    f"median of {args.runs} alternating runs, a fresh server per run, lines of 50 bytes, "
                    f"{writes}):\n\n{table}")


if __name__ == "__main__":
    main()
