#!/usr/bin/python3
"""The session drivers (languages/sessions/*) outside any sandbox: each is
started the way the supervisor starts it, with the request channel on fd 3
and the reply channel on fd 4, and spoken to in the framed protocol of
languages/sessions/README.md.  What a user of a session sees: state kept
between cells, the last value and its MIME types, figures, tracebacks of
the cell's own lines, Jupyter's corners (`;`, sys.exit, input, await,
threads, Ctrl-C), and a cell that tries to break or forge the channel."""
import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, skip, done, diag  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SESS = os.path.join(ROOT, "languages", "sessions")
FRAME_MAX = 16 << 20  # the supervisor's AL_SESSION_FRAME_MAX
WAIT_S = 30  # bound on any wait for the driver (a loaded host is slow, never this slow)
# matplotlib's config/cache dir, removed at the end
MPLDIR = tempfile.mkdtemp(prefix="session-driver-mpl.")

ARGV = {
    "python": ["/usr/bin/python3", "-B", "-u", "-c"],
    "node": ["/usr/bin/node", "-e"],
    "bash": ["/usr/bin/bash", "-c"],
}
SOURCE = {"python": "python.py", "node": "node.js", "bash": "bash.sh"}


class Driver:
    """One driver process: cell() sends a request and returns the reply;
    out()/err() what it wrote on fds 1/2 since the last call."""

    def __init__(self, lang):
        with open(os.path.join(SESS, SOURCE[lang])) as f:
            src = f.read()
        req_r, self.req_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()

        def child_fds():
            # fds 3 and 4 as the supervisor passes them (above 9 first, so no
            # dup2 clobbers another pipe)
            a, b = os.dup(req_r), os.dup(rep_w)
            a, b = fcntl.fcntl(a, fcntl.F_DUPFD, 10), fcntl.fcntl(b, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        env = dict(os.environ, MPLBACKEND="Agg", MPLCONFIGDIR=MPLDIR, LANG="C.UTF-8")
        self.p = subprocess.Popen(ARGV[lang] + [src], stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
                                  preexec_fn=child_fds, pass_fds=(3, 4), start_new_session=True,
                                  cwd="/tmp", env=env)
        for fd in (req_r, rep_w, out_w, err_w):
            os.close(fd)
        self.out_r, self.err_r = out_r, err_r
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
        self.seq = 0
        self.ready = self.reply()

    def read_exact(self, n):
        b = b""
        while len(b) < n:
            c = os.read(self.rep_r, n - len(b))
            if not c:
                raise EOFError("driver closed fd 4 after %r" % b[:200])
            b += c
        return b

    def reply(self):
        h = b""
        while not h.endswith(b"\n"):
            c = os.read(self.rep_r, 1)
            if not c:
                raise EOFError("driver closed fd 4 (exit %r, stderr %r)" % (self.p.poll(), self.err()))
            h += c
            if len(h) > 12:
                raise ValueError("header over 12 bytes: %r" % h)
        n = int(h)
        if n > FRAME_MAX:
            raise ValueError("frame of %d bytes" % n)
        self.last_raw = self.read_exact(n)
        return json.loads(self.last_raw)

    def send(self, code):
        self.seq += 1
        b = code.encode("utf-8")
        os.write(self.req_w, b"X %d %d\n" % (self.seq, len(b)) + b)

    def cell(self, code):
        self.send(code)
        return self.reply()

    def _drain(self, fd):
        b = b""
        while True:
            try:
                c = os.read(fd, 65536)
            except BlockingIOError:
                return b
            if not c:
                return b
            b += c

    def out(self):
        return self._drain(self.out_r).decode("utf-8", "replace")

    def err(self):
        return self._drain(self.err_r).decode("utf-8", "replace")

    def wait_out(self, text):
        got = ""
        end = time.monotonic() + WAIT_S
        while text not in got and time.monotonic() < end:
            got += self.out()
            time.sleep(0.01)
        return got

    def close(self):
        os.close(self.req_w)
        try:
            rc = self.p.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            rc = self.p.wait()
        for fd in (self.rep_r, self.out_r, self.err_r):
            os.close(fd)
        return rc


def plain(r):
    """The text/plain of the reply's execute_result, or None."""
    for x in r.get("results", []):
        if x.get("type") == "execute_result":
            return x["data"].get("text/plain")
    return None


def has_module(name):
    return subprocess.run(["/usr/bin/python3", "-c", "import " + name], capture_output=True).returncode == 0


def sigint_pending(pid):
    """Whether a SIGINT is still pending for PID (not yet taken by a handler)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            st = f.read()
    except OSError:
        return False
    for line in st.splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)):
            return True
    return False


# === python ===================================================================
d = Driver("python")
ok(d.ready.get("type") == "ready" and d.ready.get("protocol") == 1 and d.ready.get("language") == "python"
   and d.ready.get("version", "").count(".") == 2, "python: the driver says ready, protocol 1, its version", d.ready)
diag("python driver: %s" % d.ready)

r1 = d.cell("x = 41\nimport math")
r2 = d.cell("x + 1")
ok(r1["status"] == "ok" and r1["results"] == [] and r2["status"] == "ok" and plain(r2) == "42"
   and r2["seq"] == 2 and r2["execution_count"] == 2,
   "python: state is kept between cells, the last value is the result", [r1, r2])
r = d.cell("_ * 2, math.pi > 3")
ok(plain(r) == "(84, True)", "python: _ holds the last result, imports stay", r)
r = d.cell("def f(n):\n    return n * 3\nclass P:\n    pass\n__name__")
r = d.cell("import pickle\nq = pickle.loads(pickle.dumps(P()))\nf(2), type(q).__name__, __name__")
ok(r["status"] == "ok" and plain(r) == "(6, 'P', '__main__')",
   "python: functions and classes of a cell persist; __name__ is __main__, pickle finds user classes", r)

r = d.cell("x;")
r2 = d.cell("x  ;  # hidden")
r3 = d.cell("None")
r4 = d.cell("(x) ; # a comment")
ok(r["results"] == [] and r2["results"] == [] and r3["results"] == [] and r4["results"] == [],
   "python: a trailing ; hides the value, None shows nothing", [r, r2, r3, r4])
r = d.cell("x  # ; in a comment hides nothing")
ok(plain(r) == "41", "python: a ; inside a comment does not hide the value", r)

r = d.cell("list(range(40))")
ok(plain(r) and plain(r).count("\n") >= 5, "python: a long list is pretty-printed over lines", r)

RICH = r'''
class Rich:
    def _repr_html_(self): return "<b>rich</b>"
    def _repr_markdown_(self): return "**rich**"
    def _repr_svg_(self): return "<svg></svg>"
    def _repr_png_(self): return b"\x89PNG\r\n\x1a\nfake"
    def _repr_jpeg_(self): return None
    def _repr_json_(self): return {"a": [1, 2]}
    def _repr_latex_(self): return r"$x^2$"
    def __repr__(self): return "Rich()"
class Bundle:
    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": "bundle", "application/vnd.custom+json": {"k": 1}, "text/html": "<i>b</i>"}
class Broken:
    def _repr_html_(self): raise RuntimeError("bad html")
    def __repr__(self): return "Broken()"
display(1, "two")
display(Bundle())
Rich()
'''
r = d.cell(RICH)
res = r.get("results", [])
want_rich = {"text/plain": "Rich()", "text/html": "<b>rich</b>", "text/markdown": "**rich**", "image/svg+xml": "<svg></svg>",
             "image/png": base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode(), "application/json": {"a": [1, 2]},
             "text/latex": "$x^2$"}
ok(r["status"] == "ok" and [x["type"] for x in res] == ["display_data"] * 3 + ["execute_result"]
   and [x["data"].get("text/plain") for x in res] == ["1", "'two'", "bundle", "Rich()"],
   "python: display() adds display_data in order, before the execute_result", r)
ok(res and res[-1]["data"] == want_rich, "python: _repr_html_/markdown/svg/png(base64)/json/latex fill their MIME types; None leaves jpeg out",
   res[-1] if res else r)
ok(len(res) > 2 and res[2]["data"] == {"text/plain": "bundle", "application/vnd.custom+json": {"k": 1}, "text/html": "<i>b</i>"},
   "python: _repr_mimebundle_ gives the bundle", res)
d.err()
r = d.cell("Broken()")
e = d.err()
ok(r["status"] == "ok" and r["results"][0]["data"] == {"text/plain": "Broken()"} and "bad html" in e,
   "python: a failing _repr_html_ is left out and reported on stderr, the repr stays", [r, e])
r = d.cell("Rich")
ok(plain(r) == "<class '__main__.Rich'>" and list(r["results"][0]["data"]) == ["text/plain"],
   "python: a class is shown by its repr, not by its instances' _repr_*_", r)

if has_module("pandas"):
    r = d.cell("import pandas as pd\ndf = pd.DataFrame({'a': [1, 2, 3]})\ndf")
    data = r["results"][-1]["data"] if r.get("results") else {}
    ok(r["status"] == "ok" and "<table" in data.get("text/html", "") and " a" in data.get("text/plain", ""),
       "python: a pandas DataFrame has text/html (a table) and text/plain", r)
    r = d.cell("df.a.sum()")
    ok(plain(r) == "6", "python: the DataFrame lives on in the next cell", r)
else:
    skip("python: a pandas DataFrame has text/html", "pandas is not installed for /usr/bin/python3")
    skip("python: the DataFrame lives on in the next cell", "pandas is not installed for /usr/bin/python3")

r = d.cell("import sys\n'matplotlib' in sys.modules")
ok(plain(r) == "False", "python: the driver imports no matplotlib of its own", r)
if has_module("matplotlib"):
    d.err()
    r = d.cell("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\nplt.plot([3, 2, 1]);")
    pngs = [x for x in r.get("results", []) if "image/png" in x["data"]]
    okpng = pngs and all(base64.b64decode(x["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n" for x in pngs)
    e = d.err()
    # (without $DISPLAY, Agg's show() does nothing in the cell that imports
    # pyplot: the driver patches show() from the next cell on)
    ok(r["status"] == "ok" and len(pngs) >= 1 and okpng and all(x["type"] == "display_data" for x in pngs),
       "python: the figure open at the end of the cell is a PNG display_data, without savefig", r)
    ok("non-GUI" not in e and "cannot be shown" not in e, "python: no 'cannot show' warning from show()", e)
    r = d.cell("plt.get_fignums()")
    ok(plain(r) == "[]", "python: the figures are closed after the cell", r)
    r = d.cell("fig, ax = plt.subplots()\nax.plot([1, 2])\nplt.show()")
    pngs = [x for x in r.get("results", []) if "image/png" in x["data"]]
    ok(len(pngs) == 1, "python: in a later cell show() shows the figure once", r)
else:
    for n in ("python: figures are PNG display_data", "python: no 'cannot show' warning", "python: figures are closed",
              "python: show() in a later cell"):
        skip(n, "matplotlib is not installed for /usr/bin/python3")

r = d.cell("def g():\n    return 1 / 0\n")
r = d.cell("y = 1\ng()")
err = r.get("error", {})
tb = "\n".join(err.get("traceback", []))
ok(r["status"] == "error" and err.get("name") == "ZeroDivisionError" and err.get("value") == "division by zero",
   "python: an exception is status error with its name and value", r)
ok('File "<cell %d>", line 2' % r["execution_count"] in tb and "    g()" in tb
   and 'File "<cell %d>", line 2, in g' % (r["execution_count"] - 1) in tb and "return 1 / 0" in tb,
   "python: the traceback shows the cell's frames and source lines, an earlier cell's too", tb)
ok("<string>" not in tb and "_run_cell" not in tb and "python.py" not in tb, "python: no driver frame in the traceback", tb)
r = d.cell("for i in range(3):\n    print(i\n")
err = r.get("error", {})
ok(r["status"] == "error" and err.get("name") == "SyntaxError" and any("print(i" in x for x in err.get("traceback", [])),
   "python: a SyntaxError is an error with the offending line", r)
r = d.cell("import sys\nsys.exit(3)")
r2 = d.cell("raise SystemExit")
r3 = d.cell("x")
ok(r.get("error", {}).get("name") == "SystemExit" and r.get("error", {}).get("value") == "3"
   and r2.get("error", {}).get("name") == "SystemExit" and plain(r3) == "41",
   "python: sys.exit() and raise SystemExit are errors, the session lives on", [r, r2, r3])
r = d.cell("input('name? ')")
err = r.get("error", {})
ok(err.get("name") == "StdinNotImplementedError"
   and err.get("value") == "raw_input was called, but this frontend does not support input requests.",
   "python: input() fails at once with StdinNotImplementedError", r)

d.out()
r = d.cell("import os, subprocess\nprint('from print')\nsubprocess.run(['echo', 'from child'])\n"
           "os.system('echo from system; echo to stderr >&2')\n"
           "os.system('readlink /proc/$$/fd/3 /proc/$$/fd/4 2>/dev/null; echo end')")
o, e = d.out(), d.err()
ok(r["status"] == "ok" and o == "from print\nfrom child\nfrom system\nend\n" and "to stderr" in e,
   "python: print, subprocess and os.system output lands on fds 1/2, before the reply, nothing else there", [r, o, e])
ok("pipe:" not in o, "python: the cell's children do not inherit fds 3 and 4", o)

r = d.cell("import asyncio\nawait asyncio.sleep(0)\nloop1 = asyncio.get_running_loop()\nawait asyncio.sleep(0, result=5)")
r2 = d.cell("async def h():\n    return 9\n(await h(), asyncio.get_running_loop() is loop1)")
ok(plain(r) == "5" and plain(r2) == "(9, True)", "python: top-level await works, on a loop kept between cells", [r, r2])

r = d.cell("import threading, time, subprocess\nbox = [0]\nstop = threading.Event()\n"
           "def spin():\n    while not stop.is_set():\n        box[0] += 1\n        time.sleep(0.001)\n"
           "t = threading.Thread(target=spin, daemon=True)\nt.start()\np = subprocess.Popen(['sleep', '60'])\nn0 = box[0]")
r2 = d.cell("t.is_alive(), p.poll() is None")
r3 = d.cell("end = time.monotonic() + 30\nwhile box[0] <= n0 + 5 and time.monotonic() < end:\n    time.sleep(0.01)\n"
            "stop.set(); p.kill(); box[0] > n0 + 5")
ok(plain(r2) == "(True, True)" and plain(r3) == "True", "python: a thread and a process started in a cell keep running", [r, r2, r3])

# Ctrl-C: to the process group, as the supervisor sends it
d.out()
d.send("import time\nprint('sleeping', flush=True)\ntime.sleep(30)\n'not reached'")
o = d.wait_out("sleeping")
os.killpg(d.p.pid, signal.SIGINT)
r = d.reply()
r2 = d.cell("40 + 2")
ok(r.get("error", {}).get("name") == "KeyboardInterrupt" and plain(r2) == "42",
   "python: SIGINT during time.sleep(30) ends the cell with KeyboardInterrupt, the next cell works", [o, r, r2])
os.killpg(d.p.pid, signal.SIGINT)
end = time.monotonic() + WAIT_S
while sigint_pending(d.p.pid) and time.monotonic() < end:
    time.sleep(0.01)
r = d.cell("'still here'")
ok(d.p.poll() is None and plain(r) == "'still here'", "python: SIGINT between cells does not kill the driver", r)
d.send("import asyncio\nprint('awaiting', flush=True)\nawait asyncio.sleep(30)")
d.wait_out("awaiting")
os.killpg(d.p.pid, signal.SIGINT)
r = d.reply()
r2 = d.cell("await asyncio.sleep(0, result='again')")
ok(r.get("error", {}).get("name") == "KeyboardInterrupt" and plain(r2) == "'again'",
   "python: SIGINT during an await cell is KeyboardInterrupt, the loop works after", [r, r2])

r = d.cell("from __future__ import annotations\ndef ann(a: NoSuchName) -> AlsoMissing:\n    return a")
r2 = d.cell("def ann2(a: NoSuchName):\n    return a\nann2.__annotations__")
ok(r["status"] == "ok" and plain(r2) == "{'a': 'NoSuchName'}", "python: a __future__ import holds for later cells", [r, r2])

r = d.cell("import os\npid = os.fork()\nchild = pid == 0")
r2 = d.cell("os.waitpid(pid, 0)[1], child")
ok(r["status"] == "ok" and r["seq"] == d.seq - 1 and plain(r2) == "(0, False)",
   "python: a forked child that runs to the end of the cell exits, it never answers for the session", [r, r2])

# the channel: a cell that writes on fd 4 itself
FORGED = b'5\nhello' + b'{"type":"result","seq":999}' + b"99999999999999999999\n"
d.send("import os\nos.write(4, %r)\n'after'" % FORGED)
raw = d.read_exact(len(FORGED))
r = d.reply()
r2 = d.cell("1 + 1")
# what the supervisor sees: the forged bytes first, in place of a reply
# (a 5-byte frame that is no JSON; then an over-long header), which it
# refuses as a protocol error and kills the session
ok(raw == FORGED and r["seq"] == d.seq - 1 and plain(r) == "'after'" and plain(r2) == "2",
   "python: a cell writing a forged frame and garbage on fd 4 does not crash the driver; its real reply follows", [raw, r, r2])

r = d.cell("import os, sys, io\nos.close(1)\nprint('lost')")
o = d.out()
r2 = d.cell("print('back')")
o2 = d.out()
ok(r2["status"] == "ok" and o2 == "back\n", "python: a cell that closes fd 1 does not silence the next one", [r, o, r2, o2])
r = d.cell("sys.stdout = io.StringIO()\nprint('captured')\n1")
r2 = d.cell("sys.stdout.close()\n2")
r3 = d.cell("sys.stdout = sys.__stdout__\nprint('real')\n3")
ok([plain(r), plain(r2), plain(r3)] == ["1", "2", "3"] and d.out() == "real\n",
   "python: replacing or closing sys.stdout does not break the replies", [r, r2, r3])

r = d.cell("class Huge:\n    def _repr_html_(self):\n        return 'h' * (20 << 20)\n    def __repr__(self):\n        return 'Huge()'\nHuge()")
data = r["results"][0]["data"] if r.get("results") else {}
ok(len(d.last_raw) < FRAME_MAX and "text/html" not in data and data.get("text/plain", "").startswith("Huge()")
   and "dropped" in data.get("text/plain", ""),
   "python: a rich value over the 16 MiB frame is dropped with a text/plain note", [len(d.last_raw), str(data)[:300]])
r = d.cell("'y' * (20 << 20)")
r2 = d.cell("raise ValueError('\\x01' * (20 << 20))")
ok(len(d.last_raw) < FRAME_MAX and r2["status"] == "error" and r2["error"]["name"] == "ValueError"
   and "cut" in r2["error"]["value"] and "cut" in (plain(r) or "") and len(plain(r)) < FRAME_MAX,
   "python: a huge text result and a huge exception message are cut to fit the frame", [len(d.last_raw), str(r)[:200]])
r = d.cell("class Odd:\n    def _repr_html_(self):\n        return 'a\\x00b\\udc80c'\n    def __repr__(self):\n        return 'odd\\x00\\ud800'\nOdd()")
raw = d.last_raw
try:
    raw.decode("utf-8")
    utf8 = True
except UnicodeDecodeError:
    utf8 = False
ok(utf8 and b"\\u0000" not in raw and r["results"][0]["data"]["text/html"] == "a\ufffdb\ufffdc",
   "python: NUL and lone surrogates in a result become U+FFFD (the supervisor's JSON parser refuses them)", raw[:300])

rc = d.close()
ok(rc == 0, "python: end of input on fd 3 ends the driver cleanly", rc)

# a cell that rebinds builtins cannot break the driver
d = Driver("python")
r = d.cell("import builtins\nfor n in ('len', 'repr', 'str', 'isinstance', 'print', 'type', 'dict', 'getattr'):\n"
           "    setattr(builtins, n, None)\n")
r2 = d.cell("40 + 2")
r3 = d.cell("1 / 0")
ok(r["status"] == "ok" and plain(r2) == "42" and r3.get("error", {}).get("name") == "ZeroDivisionError",
   "python: a cell that rebinds builtins does not break the driver's replies", [r, r2, r3])
d.close()

# the supervisor's side of the protocol: a bad header ends the driver with a message
d = Driver("python")
os.write(d.req_w, b"Q 1 2\nhi")
try:
    rc = d.p.wait(WAIT_S)
except subprocess.TimeoutExpired:
    rc = None
e = d.err()
ok(rc == 2 and "protocol" in e, "python: a malformed request header ends the driver, saying why", [rc, e])
d.close()

# === node =====================================================================
if not os.path.exists("/usr/bin/node"):
    for n in ("ready", "let/const/function between cells", "completion value", "errors", "console.log", "SIGINT",
              "the driver's names free for cells"):
        skip("node: " + n, "/usr/bin/node is absent on this host")
else:
    d = Driver("node")
    ok(d.ready.get("type") == "ready" and d.ready.get("language") == "node", "node: the driver says ready", d.ready)
    r = d.cell("let a = 20\nconst o = {k: [1, 2]}\nfunction dbl(v) { return v * 2 }")
    r2 = d.cell("dbl(a) + 2")
    r3 = d.cell("o")
    ok(r["results"] == [] and plain(r2) == "42" and plain(r3) == "{ k: [ 1, 2 ] }",
       "node: let/const/function are kept between cells, the completion value is the result", [r, r2, r3])
    r = d.cell("Promise.resolve(5)")
    ok(plain(r) == "5", "node: a Promise value is awaited", r)
    r = d.cell("function bad() { return null.x }")
    r = d.cell("bad()")
    err = r.get("error", {})
    tb = "\n".join(err.get("traceback", []))
    ok(r["status"] == "error" and err.get("name") == "TypeError" and "<cell %d>" % r["execution_count"] in tb
       and "bad (<cell" in tb and "node:vm" not in tb, "node: an error has name, message and the cell's stack lines", r)
    d.out()
    r = d.cell("console.log('hello'); require('child_process').execSync('echo child', {stdio: 'inherit'}); undefined")
    o = d.out()
    ok(r["status"] == "ok" and r["results"] == [] and o == "hello\nchild\n", "node: console.log and child output land on fd 1", [r, o])
    d.send("console.log('looping'); for (;;) {}")
    d.wait_out("looping")
    os.killpg(d.p.pid, signal.SIGINT)
    r = d.reply()
    r2 = d.cell("a")
    ok(r.get("error", {}).get("name") == "KeyboardInterrupt" and plain(r2) == "20",
       "node: SIGINT interrupts a looping cell, the session lives on", [r, r2])
    # the driver's own names are not the cells' (node -e runs it as a
    # script: its top-level consts shared the global scope with the cells)
    r = d.cell("const fs = require('fs'), vm = 1, util = 2; let count = 40, buf = 'x', busy = true, queue = null")
    r2 = d.cell("count + 2")
    r3 = d.cell("fs.existsSync('/')")
    ok(r["status"] == "ok" and plain(r2) == "42" and r2.get("execution_count") == r["execution_count"] + 1
       and plain(r3) == "true" and r3.get("seq") == r2.get("seq", 0) + 1,
       "node: a cell declares fs, vm, util, count, buf, busy, queue (the driver's names) and the session goes on",
       [r, r2, r3])
    ok(d.close() == 0, "node: end of input ends the driver cleanly")

# === bash =====================================================================
d = Driver("bash")
ok(d.ready.get("type") == "ready" and d.ready.get("language") == "bash", "bash: the driver says ready", d.ready)
d.out()
r = d.cell("x=5; f() { echo \"f:$1\"; }; cd /usr")
r2 = d.cell("echo $((x * 2)); f é; pwd")
o = d.out()
ok(r["status"] == "ok" and r.get("exit_code") == 0 and r2["status"] == "ok" and o == "10\nf:é\n/usr\n",
   "bash: variables, functions and cwd are kept between cells (a UTF-8 cell counted in bytes)", [r, r2, o])
r = d.cell("echo out; false")
ok(r["status"] == "error" and r.get("exit_code") == 1 and d.out() == "out\n", "bash: a failing cell is status error with its exit_code", r)
r = d.cell("(exit 7)")
ok(r.get("exit_code") == 7, "bash: exit_code is the cell's $?", r)
r = d.cell("sh -c 'readlink /proc/$$/fd/3 /proc/$$/fd/4 2>/dev/null; echo end'")
o = d.out()
ok(o == "end\n", "bash: the cell's commands do not get fds 3 and 4", [r, o])
ok(d.close() == 0, "bash: end of input ends the driver cleanly")

shutil.rmtree(MPLDIR, ignore_errors=True)
done()
