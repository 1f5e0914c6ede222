#!/usr/bin/python3
"""airlock repl as a person uses it: through a pipe (cells split at %%
lines: state kept across cells, an error cell with its traceback and exit 1,
rich results as text and a figure saved with --save-images, a cell over its
wall limit interrupted and the next one working, --json answers of the HTTP
shape, SIGTERM ending the session) and through a pty (the prompt, the '...'
continuation of a block, Ctrl-C interrupting time.sleep(30) with the session
alive after, Ctrl-C at the prompt clearing the line, Ctrl-D ending the
session). Every session is in the audit log with its cells and its end, and
`audit verify` is clean after."""
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, diag, done  # noqa: E402
from airlock import BIN, STATE  # noqa: E402

tmp = tempfile.mkdtemp(prefix="al-e2e-repl-")


def repl(cells, *flags, timeout=180):
    """airlock repl --lang python FLAGS with CELLS (a list) on stdin."""
    text = "\n%%\n".join(cells) + "\n"
    return subprocess.run([BIN, "repl", "--lang", "python"] + list(flags),
                          input=text.encode(), capture_output=True,
                          timeout=timeout)


def audit(*args):
    return subprocess.run([BIN, "audit"] + list(args), capture_output=True,
                          text=True, timeout=60)


def session_record(sid):
    p = audit("show", sid, "--json")
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"raw": p.stdout + p.stderr}


def out(p):
    return p.stdout.decode("utf-8", "replace")


def err(p):
    return p.stderr.decode("utf-8", "replace")


# --- usage ---------------------------------------------------------------

p = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30)
ok(any(ln.split()[:1] == ["repl"] for ln in p.stdout.splitlines()), "airlock --help lists repl",
   p.stdout)
before = audit("verify").stdout
for args, why in ((["repl"], "--lang is required"),
                  (["repl", "--lang", "cobol"], "unknown language"),
                  (["repl", "--lang", "c"], "no session driver"),
                  (["repl", "--lang", "python", "-t", "abc"], "not a number of seconds"),
                  (["repl", "--lang", "python", "--memory", "999999999"], "out of range"),
                  (["repl", "--lang", "python", "cell.py"], "unexpected argument")):
    p = subprocess.run([BIN] + args, input=b"print(1)\n", capture_output=True, timeout=60)
    e = err(p)
    ok(p.returncode == 2 and why in e and "Traceback" not in e and not p.stdout,
       "usage: %s: exit 2, says %s" % (" ".join(args[1:]) or "no flags", why),
       "exit %d %r" % (p.returncode, e))
ok(audit("verify").stdout.split(" verified")[0] == before.split(" verified")[0],
   "usage errors start no session and record nothing", before)

# --- through a pipe -----------------------------------------------------

p = repl(["x = 20\nimport os\nopen('kept.txt', 'w').write('hi')\nprint('set')",
          "x * 2 + 2",
          "os.getcwd(), open('kept.txt').read()",
          "1/0",
          "print('after the error', x)"], "-t", "60")
o = out(p)
ok(o.startswith("set\n42\n"), "pipe: a variable set in one cell is there in the next",
   o + err(p))
ok("('/workspace', 'hi')" in o, "pipe: imports and a file written in one cell are there in the next",
   o + err(p))
ok("ZeroDivisionError: division by zero" in err(p) and "Traceback" in err(p),
   "pipe: an error cell shows its traceback on stderr", err(p))
ok("after the error 20" in o, "pipe: the cell after an error runs, state intact", o)
ok(p.returncode == 1, "pipe: exit 1 when a cell raised", "exit %d" % p.returncode)

p = repl(["print('one')", "print('two')"])
ok(p.returncode == 0 and out(p) == "one\ntwo\n", "pipe: exit 0 when every cell was ok",
   "exit %d: %r %r" % (p.returncode, out(p), err(p)))

imgs = os.path.join(tmp, "imgs")
p = repl(["import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
          "plt.plot([1, 2, 3]);",
          "import pandas as pd\npd.DataFrame({'a': [1, 2, 3]})",
          "print('no result');"], "-t", "120", "--save-images", imgs)
o = out(p)
ok("[image/png, " in o and "cell-1-1.png" in o,
   "pipe: an open figure is said as [image/png, N bytes] with where it went", o + err(p))
png = os.path.join(imgs, "cell-1-1.png")
data = open(png, "rb").read() if os.path.exists(png) else b""
ok(data.startswith(b"\x89PNG\r\n\x1a\n") and ("[image/png, %d bytes" % len(data)) in o,
   "pipe: --save-images wrote the figure, as many bytes as said", "%d bytes" % len(data))
ok("   a\n0  1\n1  2\n2  3\n" in o, "pipe: a DataFrame's result as its text/plain", o)
ok(p.returncode == 0, "pipe: rich results exit 0", "exit %d %s" % (p.returncode, err(p)))

# a cell over its wall limit: interrupted (KeyboardInterrupt), the session
# lives on and keeps its state
p = repl(["x = 7", "import time\nprint('sleeping', flush=True)\ntime.sleep(30)",
          "print('alive', x * 6)"], "-t", "3")
o, e = out(p), err(p)
ok("sleeping\n" in o and "KeyboardInterrupt" in e and "wall limit" in e,
   "pipe: a cell over its wall limit is interrupted and says so", o + e)
ok("alive 42" in o, "pipe: the cell after a timeout runs in the same session", o + e)
ok(p.returncode == 1, "pipe: exit 1 after a timeout", "exit %d" % p.returncode)

# --json: one answer per cell, the shape of POST /v1/sessions/{id}/execute
p = repl(["import sys\nprint('o'); print('e', file=sys.stderr)", "3 * 3", "1/0",
          "import time\ntime.sleep(30)", "'still here'"], "-t", "3", "--json")
lines = [ln for ln in out(p).splitlines() if ln.strip()]
try:
    js = [json.loads(ln) for ln in lines]
except ValueError:
    js = []
ok(len(js) == 5, "json: one object per cell", out(p) + err(p))
js += [{}] * (5 - len(js))
keys = {"id", "session_id", "seq", "status", "execution_count", "stdout", "stderr",
        "stdout_truncated", "stderr_truncated", "results", "limits_hit", "wall_ms", "cpu_ms"}
ok(all(keys <= set(j) for j in js), "json: every answer has the HTTP cell fields",
   json.dumps(js)[:2000])
sid = js[0].get("session_id", "")
ok(len(sid) == 32 and [j.get("id") for j in js] == ["%s.%d" % (sid, i) for i in range(1, 6)],
   "json: ids are SESSION.SEQ", json.dumps([j.get("id") for j in js]))
ok(js[0].get("stdout") == "o\n" and js[0].get("stderr") == "e\n" and js[0].get("status") == "ok",
   "json: stdout and stderr apart", json.dumps(js[0]))
ok(js[1].get("results") == [{"text/plain": "9"}], "json: the last expression as a MIME bundle",
   json.dumps(js[1]))
ok(js[2].get("status") == "error" and js[2].get("error", {}).get("name") == "ZeroDivisionError"
   and js[2]["error"].get("traceback"), "json: an error with name and traceback",
   json.dumps(js[2]))
ok(js[3].get("status") == "timeout" and js[3].get("limits_hit") == ["wall"],
   "json: a timeout with limits_hit [wall]", json.dumps(js[3]))
ok(js[4].get("status") == "ok" and js[4].get("results") == [{"text/plain": "'still here'"}],
   "json: the next cell after a timeout is ok", json.dumps(js[4]))

# the audit log: the session, its five cells with their statuses, its end
rec = session_record(sid)
ok(rec.get("kind") == "session" and rec.get("status") == "closed"
   and rec.get("source") == "cli" and str(rec.get("actor", "")).startswith(("user:", "uid:")),
   "audit: the session is recorded, ended closed, by the local user",
   json.dumps(rec)[:1500])
cells = [(c.get("id"), c.get("status")) for c in rec.get("cells", [])]
ok(cells == [(sid + ".1", "ok"), (sid + ".2", "ok"), (sid + ".3", "error"),
             (sid + ".4", "timeout"), (sid + ".5", "ok")],
   "audit: each cell with its status", json.dumps(cells))
p = audit("show", sid + ".4", "--json")
ok("time.sleep(30)" in p.stdout, "audit: a cell's record keeps its code", p.stdout[:1500])

# SIGTERM while a cell runs: the session is ended ("cancelled"), exit 130
pr = subprocess.Popen([BIN, "repl", "--lang", "python", "--json", "-t", "120"],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
pr.stdin.write(b"print('up', flush=True)\n%%\nimport time\ntime.sleep(100)\n")
pr.stdin.close()
pr.stdin = None  # (communicate() below only reads)
first = pr.stdout.readline()  # the first cell's answer: the session is up
pr.send_signal(signal.SIGTERM)
try:
    rest, e = pr.communicate(timeout=60)
except subprocess.TimeoutExpired:
    pr.kill()
    rest, e = pr.communicate()
try:
    tsid = json.loads(first).get("session_id", "")
except ValueError:
    tsid = ""
ok(pr.returncode == 130, "pipe: SIGTERM ends the session, exit 130",
   "exit %s %r %r" % (pr.returncode, first, e))
rec = session_record(tsid) if tsid else {}
ok(rec.get("status") == "cancelled", "audit: the session ended by SIGTERM says cancelled",
   json.dumps(rec)[:800])

# --json-session: after the cells, the session's end and its sandbox's own
# result (what airlock run --json prints), so a program reading the cells
# can tell how the session ended; --open-files sets the session's RLIMIT_NOFILE
p = repl(["import resource\nprint(resource.getrlimit(resource.RLIMIT_NOFILE)[0])",
          "import os\nos._exit(3)", "print('never')"],
         "--json", "--json-session", "--open-files", "40", "-m", "96")
lines = [ln for ln in out(p).splitlines() if ln.strip()]
try:
    js = [json.loads(ln) for ln in lines]
except ValueError:
    js = []
ok(len(js) == 3 and js[0].get("stdout") == "40\n",
   "json-session: --open-files 40 is the cells' RLIMIT_NOFILE", out(p) + err(p))
js += [{}] * (3 - len(js))
ok(js[1].get("status") == "session_dead" and js[1].get("session_end_reason") == "exited",
   "json-session: os._exit in a cell ends the session (exited)", json.dumps(js[1])[:1500])
end, sb = js[2], js[2].get("sandbox") or {}
ok(end.get("session_id") == js[0].get("session_id") and end.get("session_end_reason") == "exited"
   and end.get("cells") == 2 and "session_end_message" in end,
   "json-session: one last object says why the session ended and after how many cells",
   json.dumps(end)[:1500])
prot = sb.get("protections") or {}
ok(sb.get("status") == "error" and sb.get("exit_code") == 3 and sb.get("signal") == 0
   and sb.get("limits", {}).get("memory_mb") == 96 and sb.get("memory_peak_bytes", 0) > 0
   and prot.get("seccomp") is True and isinstance(prot.get("host_uid"), int),
   "json-session: the sandbox's result: the driver's exit code 3, limits, memory peak, protections",
   json.dumps(sb)[:1500])
p = repl(["print(1)"], "--json")
ok(len([ln for ln in out(p).splitlines() if ln.strip()]) == 1,
   "json: without --json-session, only the cells' objects", out(p) + err(p))

# --- through a pty ------------------------------------------------------


class Pty:
    def __init__(self, *flags):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(BIN, [BIN, "repl", "--lang", "python"] + list(flags))
        self.buf = b""

    def expect(self, what, timeout=120):
        """Read until WHAT (bytes) appears after the last match; the bound
        only keeps a broken build from hanging the test."""
        end = time.monotonic() + timeout
        while what not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return False
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            self.buf += chunk
        self.buf = self.buf[self.buf.index(what) + len(what):]
        return True

    def send(self, data):
        os.write(self.fd, data)

    def wait(self, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(st)
            try:
                r, _, _ = select.select([self.fd], [], [], 0.2)
                if r:
                    self.buf += os.read(self.fd, 4096)
            except OSError:
                pass
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        return None


t = Pty("-t", "120")
ok(t.expect(b">>> "), "pty: a prompt", repr(t.buf))
t.send(b"x = 5\n")
ok(t.expect(b">>> "), "pty: a statement, then the prompt again", repr(t.buf))
t.send(b"for i in range(2):\n")
ok(t.expect(b"... "), "pty: a line ending with ':' asks for more with '...'", repr(t.buf))
t.send(b"    print(i * x)\n")
ok(t.expect(b"... "), "pty: the block goes on until a blank line", repr(t.buf))
t.send(b"\n")
ok(t.expect(b"0\r\n5\r\n") and t.expect(b">>> "), "pty: the block ran as one cell",
   repr(t.buf))
t.send(b"import time; print('sl' + 'eeping', flush=True); time.sleep(30)\n")
# (the terminal echoes the typed line: wait for the cell's own output)
ok(t.expect(b"sleeping\r\n"), "pty: a long cell started", repr(t.buf))
t.send(b"\x03")  # Ctrl-C: the terminal sends SIGINT to airlock
ok(t.expect(b"KeyboardInterrupt") and t.expect(b">>> "),
   "pty: Ctrl-C interrupts the cell (KeyboardInterrupt), the prompt comes back",
   repr(t.buf))
t.send(b"x + 1\n")
ok(t.expect(b"6\r\n") and t.expect(b">>> "), "pty: the session lives on after Ctrl-C",
   repr(t.buf))
t.send(b"garbage(")
time.sleep(0.2)  # (not an assertion: lets the terminal take the typing first)
t.send(b"\x03")
ok(t.expect(b"KeyboardInterrupt") and t.expect(b">>> "), "pty: Ctrl-C at the prompt",
   repr(t.buf))
t.send(b"x * 3\n")
ok(t.expect(b"15\r\n") and t.expect(b">>> "),
   "pty: Ctrl-C at the prompt cleared the line typed so far", repr(t.buf))
t.send(b"\x04")  # Ctrl-D
rc = t.wait()
ok(rc == 0, "pty: Ctrl-D ends the session, exit 0", "exit %s %r" % (rc, t.buf))

p = audit("list", "--json", "--limit", "0")
recent = []
for ln in p.stdout.splitlines():
    try:
        v = json.loads(ln)
    except ValueError:
        continue
    recent += v if isinstance(v, list) else [v]
sessions = [r for r in recent if r.get("kind") == "session"]
last = sessions[0] if sessions else {}
rec = session_record(last.get("id", "")) if last else {}
cells = [c.get("status") for c in rec.get("cells", [])]
ok(rec.get("status") == "closed" and cells == ["ok", "ok", "error", "ok", "ok"],
   "audit: the terminal session, its cells (the interrupted one an error), ended closed",
   json.dumps({"status": rec.get("status"), "cells": cells}))

p = audit("verify")
ok(p.returncode == 0 and "OK" in p.stdout, "audit verify is clean after every session",
   p.stdout + p.stderr)
diag("state %s" % STATE)
shutil.rmtree(tmp, True)
done()
