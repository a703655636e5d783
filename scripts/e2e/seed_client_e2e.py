#!/usr/bin/env python3
"""End to end: the original, unchanged Tk client against `chat-server --compat seed`.

Runs under Xvfb (see seed-client.sh). Starts our server in the seed profile, a raw TCP
client and a `chat-gui` window (with --transcript) speaking the spec, and two unchanged
`seed_client.py` windows. The test answers each Tk nickname dialog and clicks Send with
xdotool, then checks that the raw client received `<nick>: <text>` exactly once, that
the chat-gui user saw it too, and that the second Tk user, who asked for a nickname
already taken, got a free variant and can speak under it. Screenshots of every window
go to artifacts/e2e-seed/.

The original client drives Tk from two threads and opens two toplevels titled `tk`; its
windows are found by what they contain (the chat window is the toplevel whose frame
holds five widgets), and the dialog step is retried, so the test is not flaky.
"""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED_CLIENT = ROOT.parent / "shared" / "reference" / "seed_client.py"
SERVER = Path(os.environ.get("CHAT_SERVER", ROOT / "target" / "release" / "chat-server"))
GUI = Path(os.environ.get("CHAT_GUI", ROOT / "target" / "release" / "chat-gui"))
ART = ROOT / "artifacts" / "e2e-seed"
DEADLINE = time.time() + 120  # the whole test


def log(*a):
    print("[seed-e2e]", *a, flush=True)


def sh(*cmd, check=True):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if check and out.returncode != 0:
        raise RuntimeError(f"{cmd}: {out.stderr.strip()}")
    return out.stdout


def wait(what, fn, timeout=15.0, every=0.2):
    end = min(time.time() + timeout, DEADLINE)
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Raw:
    """A client speaking the spec over a plain socket, reading the prompt with or without LF."""

    def __init__(self, port, nick):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        greet = self._read_until(lambda b: b.startswith(b"NICK"))
        assert greet.startswith(b"NICK"), greet
        self.buf = self.buf[4:].lstrip(b"\n")
        self.sock.sendall(nick.encode() + b"\n")
        self.lines = []
        self.wait_line(lambda l: l == "Connected to the server")

    def _read_until(self, pred, timeout=10):
        end = time.time() + timeout
        while not pred(self.buf):
            if time.time() > end:
                raise TimeoutError(f"raw client: {self.buf!r}")
            self.sock.settimeout(max(0.05, end - time.time()))
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("server closed")
            self.buf += chunk
        return self.buf

    def pump(self, timeout=0.2):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
            if chunk:
                self.buf += chunk
        except socket.timeout:
            pass
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.lines.append(line.decode("utf-8", "replace"))

    def wait_line(self, pred, timeout=15):
        def found():
            self.pump()
            return any(pred(l) for l in self.lines)
        wait("a line at the raw client", found, timeout)


def windows():
    """Visible top-level windows: (id, name)."""
    ids = sh("xdotool", "search", "--onlyvisible", "--name", ".*", check=False).split()
    out = []
    for w in ids:
        name = sh("xdotool", "getwindowname", w, check=False).strip()
        out.append((w, name))
    return out


def children(wid):
    """Children of a window: list of (id, w, h, x, y)."""
    text = sh("xwininfo", "-children", "-id", wid, check=False)
    kids = []
    for m in re.finditer(r"^\s+(0x[0-9a-f]+) .*?\s(\d+)x(\d+)\+(-?\d+)\+(-?\d+)", text, re.M):
        kids.append((m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5))))
    return kids


def chat_windows():
    """The seed client's chat windows: toplevel `tk...` whose frame holds five widgets.
    Returns {toplevel: (frame, input_xy, send_xy)}."""
    found = {}
    for wid, name in windows():
        if not name.startswith("tk"):
            continue
        for frame, *_ in children(wid):
            kids = children(frame)
            if len(kids) != 5:
                continue
            by_y = sorted(kids, key=lambda k: k[4])
            _, iw, ih, ix, iy = by_y[3]  # input_area: second from the bottom
            _, bw, bh, bx, by = by_y[4]  # send_button: the bottom one
            found[wid] = (frame, (ix + iw // 2, iy + ih // 2), (bx + bw // 2, by + bh // 2))
    return found


def answer_dialog(nick, known, x):
    """Types `nick` into the seed client's `Nickname` dialog until its chat window opens,
    then moves that window to `x` (there is no window manager: every window opens at the
    top left, on top of the others, and would take the clicks meant for them)."""
    for attempt in range(5):
        dialog = wait("the Nickname dialog", lambda: [w for w, n in windows() if n == "Nickname"], 20)[0]
        sh("xdotool", "windowactivate", "--sync", dialog, check=False)
        sh("xdotool", "windowfocus", "--sync", dialog, check=False)
        time.sleep(0.3)
        sh("xdotool", "key", "--window", dialog, "ctrl+a", "BackSpace", check=False)
        sh("xdotool", "type", "--delay", "20", nick)
        sh("xdotool", "key", "Return")
        try:
            win = wait("a new chat window", lambda: [w for w in chat_windows() if w not in known], 8)[0]
            sh("xdotool", "windowmove", "--sync", win, str(x), "0", check=False)
            time.sleep(0.3)
            return win
        except TimeoutError:
            log(f"dialog attempt {attempt + 1} for {nick} did not open a chat window; retrying")
    raise TimeoutError(f"could not answer the nickname dialog for {nick}")


def say(window, text):
    frame, (ix, iy), (bx, by) = chat_windows()[window]
    sh("xdotool", "mousemove", "--window", frame, str(ix), str(iy), "click", "1")
    time.sleep(0.2)
    sh("xdotool", "type", "--delay", "15", text)
    time.sleep(0.2)
    sh("xdotool", "mousemove", "--window", frame, str(bx), str(by), "click", "1")


def screenshot(name, wid="root"):
    ART.mkdir(parents=True, exist_ok=True)
    args = ["import", "-window", wid, str(ART / f"{name}.png")]
    subprocess.run(args, capture_output=True, timeout=20)


def main():
    if "DISPLAY" not in os.environ:
        sys.exit("needs an X display: run scripts/e2e/seed-client.sh")
    for exe in (SERVER, GUI):
        if not exe.exists():
            sys.exit(f"missing {exe}: cargo build --release --bins")
    port = free_port()
    procs = []
    transcript = ART / "gui-transcript.txt"
    ART.mkdir(parents=True, exist_ok=True)
    transcript.unlink(missing_ok=True)
    try:
        server = subprocess.Popen([str(SERVER), "--listen", f"127.0.0.1:{port}", "--compat", "seed"],
                                  stdout=subprocess.DEVNULL, stderr=open(ART / "server.log", "w"))
        procs.append(server)
        raw = wait("the server", lambda: _try(lambda: Raw(port, "watcher")), 15)
        log("raw client joined")

        gui = subprocess.Popen([str(GUI), "--server", f"127.0.0.1:{port}", "--nick", "guiuser",
                                "--transcript", str(transcript)],
                               stdout=subprocess.DEVNULL, stderr=open(ART / "gui.log", "w"))
        procs.append(gui)
        raw.wait_line(lambda l: l == "guiuser has joined the chat")
        log("chat-gui joined")

        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
        tk1 = subprocess.Popen([sys.executable, str(SEED_CLIENT)], env=env,
                               stdout=open(ART / "tk1.log", "w"), stderr=subprocess.STDOUT)
        procs.append(tk1)
        w1 = answer_dialog("tkuser", set(), 0)
        raw.wait_line(lambda l: l == "tkuser has joined the chat")
        log("seed client 1 joined as tkuser")

        # Said before the second Tk client joins: it gets this in its backlog (spec
        # HIST-6), readable with its time, between `Earlier events:` and `End of earlier
        # events` (see tk2.png).
        say(w1, "hello from tk")
        raw.wait_line(lambda l: l == "tkuser: hello from tk")

        tk2 = subprocess.Popen([sys.executable, str(SEED_CLIENT)], env=env,
                               stdout=open(ART / "tk2.log", "w"), stderr=subprocess.STDOUT)
        procs.append(tk2)
        w2 = answer_dialog("tkuser", {w1}, 760)
        raw.wait_line(lambda l: l == "tkuser2 has joined the chat")
        log("seed client 2 asked for tkuser and joined as tkuser2")

        say(w2, "hi back from the other tk")
        raw.wait_line(lambda l: l == "tkuser2: hi back from the other tk")
        # Anything still in flight arrives within this pause.
        time.sleep(1.0)
        raw.pump()
        n1 = raw.lines.count("tkuser: hello from tk")
        n2 = raw.lines.count("tkuser2: hi back from the other tk")
        assert n1 == 1 and n2 == 1, f"expected each line once, got {n1} and {n2}: {raw.lines}"
        assert not any(l.startswith("tkuser: tkuser:") for l in raw.lines), raw.lines
        log("raw client got each Tk line exactly once")

        def gui_saw():
            t = transcript.read_text(errors="replace") if transcript.exists() else ""
            return "tkuser: hello from tk" in t and "tkuser2: hi back from the other tk" in t
        wait("the chat-gui transcript", gui_saw, 15)
        log("chat-gui user saw both lines")

        raw.sock.sendall(b"hello tk users\n")
        time.sleep(1.0)
        screenshot("screen")
        for i, w in enumerate((w1, w2), 1):
            screenshot(f"tk{i}", w)
        log("PASS")
        print("1 passed, 0 failed")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def _try(fn):
    try:
        return fn()
    except OSError:
        return None


if __name__ == "__main__":
    main()
