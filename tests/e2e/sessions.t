#!/usr/bin/python3
# Sessions over HTTP, through the real binary and a real HTTP client
# (http.client): state kept across cells, rich results, errors, limits per
# cell and per session, the end of a session (idle, lifetime, max cells,
# memory, an interrupt it ignores, a forged driver frame, DELETE, SIGTERM),
# two keys that cannot see each other, the caps, the files API under
# attack, one-shot attack probes run as cells, and the audit of each step.
# Every response is checked against docs/openapi.json.
import base64
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, diag, skip  # noqa: E402
from airlock import start_serve, BIN, run, host_procs  # noqa: E402
from openapi import SEEN_OPS, conforms, documented_ops  # noqa: E402
from probes import probes  # noqa: E402
from host import descendants  # noqa: E402

state = tempfile.mkdtemp(prefix="al-e2e-sessions-")
os.chmod(state, 0o700)
TOKEN = secrets.token_hex(8)
MISMATCHES = []
SERVERS = []


def keys(*args):
    p = subprocess.run([BIN, "keys", *args, "--state", state, "--json"], capture_output=True, timeout=30)
    return json.loads(p.stdout.decode().splitlines()[-1])["key"]


KA = keys("create", "--name", "alice", "--scopes", "execute")
KB = keys("create", "--name", "bob", "--scopes", "execute")
KC = keys("create", "--name", "carol", "--scopes", "execute")


def start(*extra):
    p, port, lines = start_serve(state, *extra)
    SERVERS.append(p)
    return p, port, lines


class Api:
    def __init__(self, port, key):
        self.port, self.key = port, key

    def req(self, method, path, body=None, raw=None, timeout=60, headers=None):
        """-> (status, JSON body or None, raw bytes, headers); the response
        is checked against the OpenAPI document."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Authorization": "Bearer " + self.key}
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if body is not None:
            h["Content-Type"] = "application/json"
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            got = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            st = r.status
        except (OSError, http.client.HTTPException) as e:
            return 0, {"error": {"code": "client", "message": repr(e)}}, b"", {}
        finally:
            c.close()
        try:
            js = json.loads(got) if hdrs.get("content-type") == "application/json" else None
        except ValueError:
            js = None
        why = conforms(method, path, st, hdrs, got)
        if why:
            MISMATCHES.append("%s %s -> %d: %s" % (method, path, st, why))
        return st, js, got, hdrs

    def create(self, **kw):
        kw.setdefault("language", "python")
        return self.req("POST", "/v1/sessions", kw)

    def cell(self, sid, code, **kw):
        kw["code"] = code
        st, js, _, _ = self.req("POST", "/v1/sessions/%s/execute" % sid, kw)
        return st, js or {}


def code_of(js):
    return ((js or {}).get("error") or {}).get("code")


def brief(js):
    return json.dumps(js)[:1500]


def new_session(api, **kw):
    st, js, _, _ = api.create(**kw)
    if st != 201:
        diag("create failed: %d %s" % (st, brief(js)))
        return None
    return js["id"]


def wait_until(f, limit, step=0.1):
    deadline = time.time() + limit
    while time.time() < deadline:
        v = f()
        if v:
            return v
        time.sleep(step)
    return f()


def audit(*args):
    p = subprocess.run([BIN, "audit", *args, "--state", state], capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def audit_show(sid):
    rc, out, err = audit("show", sid, "--json")
    try:
        return json.loads(out)
    except ValueError:
        return {"rc": rc, "err": err}


srv, port, log = start()
ok(port, "airlock serve starts", log)
A, B = Api(port, KA), Api(port, KB)

# --- 1. state kept across cells: variables, imports, files ----------------------
S1 = new_session(A, metadata={"task": "e2e"})
ok(S1, "POST /v1/sessions creates a python session (201)")
st, r = A.cell(S1, "x = 41\nimport json\nwith open('kept.txt', 'w') as f:\n    f.write('kept-%s')\nprint('first')" % TOKEN)
ok(st == 200 and r.get("status") == "ok" and r.get("stdout") == "first\n" and r.get("results") == [],
   "a first cell sets a variable, imports a module, writes a file; stdout apart, no result", brief(r))
st, r = A.cell(S1, "x + 1")
ok(st == 200 and r.get("results") == [{"text/plain": "42"}] and r.get("execution_count") == 2,
   "the next cell sees the variable: x + 1 -> results [{text/plain: 42}], execution_count 2", brief(r))
st, r = A.cell(S1, "print(json.dumps({'x': x}))\nopen('kept.txt').read()")
ok(st == 200 and r.get("stdout") == '{"x": 41}\n' and r.get("results") == [{"text/plain": repr("kept-" + TOKEN)}],
   "the import and the file are still there in the third cell", brief(r))
st, r = A.cell(S1, "x + 1;")
ok(st == 200 and r.get("status") == "ok" and r.get("results") == [], "a trailing ; hides the value", brief(r))
st, js, raw, hdrs = A.req("GET", "/v1/sessions/%s/files/kept.txt" % S1)
ok(st == 200 and raw == ("kept-" + TOKEN).encode(), "GET .../files/kept.txt reads what the code wrote", (st, raw[:200]))

# --- 2. rich results: MIME types -------------------------------------------------
st, r = A.cell(S1, "class Rich:\n    def _repr_html_(self):\n        return '<b>rich</b>'\n"
               "    def _repr_png_(self):\n        return b'\\x89PNG\\r\\n\\x1a\\n' + b'0' * 8\n"
               "    def __repr__(self):\n        return 'Rich()'\nRich()")
res = (r.get("results") or [{}])[0]
ok(st == 200 and res.get("text/plain") == "Rich()" and res.get("text/html") == "<b>rich</b>"
   and base64.b64decode(res.get("image/png", "")).startswith(b"\x89PNG"),
   "the last expression's display methods give text/plain, text/html and image/png (base64)", brief(r))
st, r = A.cell(S1, "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2, 3]})\ndf")
if r.get("status") == "error" and (r.get("error") or {}).get("name") == "ModuleNotFoundError":
    skip("a pandas DataFrame answers text/html and text/plain", "pandas is not installed on this host")
else:
    res = (r.get("results") or [{}])[0]
    ok(st == 200 and "<table" in res.get("text/html", "") and "a" in res.get("text/plain", ""),
       "a pandas DataFrame answers text/html (a table) and text/plain", brief(r))
    st, r = A.cell(S1, "df.a.sum()")
    ok(r.get("results") == [{"text/plain": "6"}], "df.a.sum() -> 6 (the DataFrame kept)", brief(r))
st, r = A.cell(S1, "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nNone")
if r.get("status") == "error" and (r.get("error") or {}).get("name") == "ModuleNotFoundError":
    skip("an open matplotlib figure is shown as image/png without savefig", "matplotlib is not installed on this host")
else:
    pngs = [x.get("image/png") for x in r.get("results") or [] if x.get("image/png")]
    ok(st == 200 and pngs and base64.b64decode(pngs[0]).startswith(b"\x89PNG\r\n\x1a\n"),
       "an open matplotlib figure is shown as image/png (PNG magic) without savefig", brief(r)[:600])

# --- 3. exceptions ------------------------------------------------------------------
st, r = A.cell(S1, "def inner():\n    return 1 / 0\ninner()")
e = r.get("error") or {}
tb = "\n".join(e.get("traceback") or [])
ok(st == 200 and r.get("status") == "error" and e.get("name") == "ZeroDivisionError"
   and e.get("value") == "division by zero" and "inner" in tb and "1 / 0" in tb,
   "an exception: status error, name, value, traceback lines through the cell's function", brief(r))
st, r = A.cell(S1, "import sys\nsys.exit(3)")
ok(st == 200 and r.get("status") == "error" and (r.get("error") or {}).get("name") == "SystemExit",
   "sys.exit() is an error of the cell ...", brief(r))
st, r = A.cell(S1, "x")
ok(r.get("results") == [{"text/plain": "41"}], "... and the session lives on", brief(r))

# --- 4. a cell over its time limit; one that ignores SIGINT ------------------------------
st, r = A.cell(S1, "import time\ntime.sleep(60)", limits={"wall_ms": 1000})
ok(st == 200 and r.get("status") == "timeout" and "wall" in r.get("limits_hit", [])
   and (r.get("error") or {}).get("name") == "KeyboardInterrupt",
   "a cell over limits.wall_ms is interrupted: status timeout, limits_hit wall, KeyboardInterrupt", brief(r))
st, r = A.cell(S1, "x * 2")
ok(r.get("results") == [{"text/plain": "82"}], "the session survives its interrupted cell (x still 41)", brief(r))
S_IGN = new_session(A)
st, r = A.cell(S_IGN, "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)",
               limits={"wall_ms": 500})
ok(st == 200 and r.get("status") == "session_dead" and "wall" in r.get("limits_hit", []),
   "a cell that ignores SIGINT past its wall time and the grace kills the session (status session_dead)", brief(r))
st, r = A.cell(S_IGN, "1")
ok(st == 410 and code_of(r) == "session_dead" and r["error"].get("reason") == "interrupt_ignored",
   "the next call: 410 session_dead, reason interrupt_ignored", brief(r))

# --- 5. the memory limit ends the session and says so ----------------------------------
S_MEM = new_session(A, limits={"memory_mb": 64})
st, r = A.cell(S_MEM, "b = b'x' * (512 << 20)\nlen(b)")
ok(st == 200 and r.get("status") == "session_dead", "a cell over the session's memory_mb: session_dead", brief(r))
st, r = A.cell(S_MEM, "1")
ok(st == 410 and code_of(r) == "session_dead" and r["error"].get("reason") == "memory",
   "the next call: 410 session_dead, reason memory", brief(r))

S_KID = new_session(A, limits={"memory_mb": 96})
st, r = A.cell(S_KID, "import subprocess, sys\n"
                      "p = subprocess.run([sys.executable, '-c', 'b = bytearray(400 << 20)'])\n"
                      "p.returncode")
ok(st == 200 and r.get("status") == "ok" and "memory" in r.get("limits_hit", [])
   and r.get("results") == [{"text/plain": "-9"}],
   "a child of the cell killed at the session's memory limit: the cell says memory in limits_hit, "
   "the driver lives on", brief(r))
st, r = A.cell(S_KID, "2 + 2")
ok(r.get("results") == [{"text/plain": "4"}] and r.get("limits_hit") == [],
   "... the next cell runs and is not charged with it", brief(r))
A.req("DELETE", "/v1/sessions/%s" % S_KID)

S_BIN = new_session(A)
st, r = A.cell(S_BIN, "import sys\nsys.stdout.buffer.write(b'ok\\xff\\x00end')\nsys.stdout.flush()")
ok(st == 200 and base64.b64decode(r.get("stdout_base64", "")) == b"ok\xff\x00end"
   and r.get("stdout") == "ok\ufffd\x00end",
   "bytes that are not UTF-8: stdout with U+FFFD, stdout_base64 exactly, as a run's", brief(r))
A.req("DELETE", "/v1/sessions/%s" % S_BIN)

# --- 6. idle timeout, max lifetime, max cells ----------------------------------------
S_IDLE = new_session(A, idle_timeout_s=2)
S_LIFE = new_session(A, idle_timeout_s=600, max_lifetime_s=3)
S_CELLS = new_session(A, max_cells=2)
c1 = A.cell(S_CELLS, "1")[1].get("status")
c2 = A.cell(S_CELLS, "2")[1].get("status")
st, r = A.cell(S_CELLS, "3")
ok(c1 == c2 == "ok" and st == 410 and code_of(r) == "session_dead" and r["error"].get("reason") == "max_cells",
   "max_cells 2: two cells run, the third gets 410 session_dead reason max_cells", (c1, c2, st, brief(r)))
life_answers = []


def life_dead():
    st, r = A.cell(S_LIFE, "1")          # keeps it from idling
    life_answers.append(st)
    return (st, r) if st == 410 else None


st, r = wait_until(life_dead, 20, 0.5) or (0, {})
ok(st == 410 and r["error"].get("reason") == "lifetime" and life_answers.count(200) >= 1,
   "max_lifetime_s 3 ends a session in use: 410 session_dead reason lifetime", (life_answers, brief(r)))
st, js, _, _ = A.req("GET", "/v1/sessions/%s" % S_IDLE)
ok(st == 200 and js.get("status") == "ended" and js.get("ended", {}).get("reason") == "idle",
   "idle_timeout_s 2: GET /v1/sessions/{id} says ended, reason idle", brief(js))
st, r = A.cell(S_IDLE, "1")
ok(st == 410 and r["error"].get("reason") == "idle", "... and a cell gets 410 session_dead reason idle", brief(r))

# --- 7. two keys: nothing of one visible to the other ---------------------------------
SA = new_session(A)
SB = new_session(B)
marker = "al-marker-" + TOKEN
st, r = A.cell(SA, "import subprocess, os\nopen('secret-%s.txt', 'w').write('x')\n"
               "p = subprocess.Popen(['python3', '-c', 'import time; time.sleep(120)', %r])\n"
               "any(%r.encode() in open('/proc/%%s/cmdline' %% q, 'rb').read() for q in os.listdir('/proc') if q.isdigit())"
               % (TOKEN, marker, marker))
ok(st == 200 and r.get("results") == [{"text/plain": "True"}],
   "session A writes a file and leaves a process running, which it sees in its /proc", brief(r))
routes = [("GET", "/v1/sessions/%s" % SA, None, None), ("POST", "/v1/sessions/%s/execute" % SA, {"code": "1"}, None),
          ("POST", "/v1/sessions/%s/interrupt" % SA, {}, None), ("GET", "/v1/sessions/%s/files?dir=" % SA, None, None),
          ("GET", "/v1/sessions/%s/files/secret-%s.txt" % (SA, TOKEN), None, None),
          ("PUT", "/v1/sessions/%s/files/planted.txt" % SA, None, b"x"),
          ("DELETE", "/v1/sessions/%s/files/secret-%s.txt" % (SA, TOKEN), None, None),
          ("DELETE", "/v1/sessions/%s" % SA, None, None)]
bad = []
for m, path, body, raw in routes:
    st, js, _, _ = B.req(m, path, body=body, raw=raw)
    if st != 404 or code_of(js) != "session_not_found":
        bad.append((m, path, st, js))
ok(not bad, "another key gets 404 session_not_found on every route of the session (%d routes)" % len(routes), bad)
st, js, _, _ = B.req("GET", "/v1/sessions")
ok(st == 200 and [x["id"] for x in js.get("sessions", [])] == [SB], "GET /v1/sessions lists only the key's own", brief(js))
st, r = B.cell(SB, "import os\nfound = []\nfor dp, dn, fn in os.walk('/'):\n"
               "    if dp.startswith(('/proc', '/sys')): dn[:] = []\n"
               "    found += [n for n in fn if %r in n]\n"
               "procs = [q for q in os.listdir('/proc') if q.isdigit() and %r.encode() in open('/proc/%%s/cmdline' %% q, 'rb').read()]\n"
               "(found, procs, os.listdir('/workspace'))" % (TOKEN, marker))
ok(st == 200 and r.get("results") == [{"text/plain": "([], [], [])"}],
   "inside session B: A's file is nowhere in the tree, its process not in /proc, /workspace empty", brief(r))
st, r = A.cell(SA, "p.poll() is None")
ok(r.get("results") == [{"text/plain": "True"}], "and A's process is still running after B looked", brief(r))

# --- 8. the files API --------------------------------------------------------------
data = os.urandom(100000)
st, js, _, _ = A.req("PUT", "/v1/sessions/%s/files/data/in.bin" % SA, raw=data)
ok(st == 201 and js.get("size") == len(data), "PUT .../files/data/in.bin -> 201 with its size", brief(js))
st, _, raw, _ = A.req("GET", "/v1/sessions/%s/files/data/in.bin" % SA)
ok(st == 200 and raw == data, "GET gives the same bytes back", (st, len(raw)))
st, r = A.cell(SA, "import hashlib\nhashlib.sha256(open('data/in.bin', 'rb').read()).hexdigest()")
import hashlib  # noqa: E402
ok(r.get("results") == [{"text/plain": repr(hashlib.sha256(data).hexdigest())}], "the code reads the file put", brief(r))
st, js, _, _ = A.req("GET", "/v1/sessions/%s/files?dir=data" % SA)
ok(st == 200 and [e["name"] for e in js.get("entries", [])] == ["in.bin"], "GET .../files?dir=data lists it", brief(js))
st, js, _, _ = A.req("DELETE", "/v1/sessions/%s/files/data/in.bin" % SA)
st2, js2, _, _ = A.req("GET", "/v1/sessions/%s/files/data/in.bin" % SA)
ok(st == 200 and st2 == 404, "DELETE removes it (then GET 404)", (st, st2, brief(js2)))
bad = []
for p in ("../etc/passwd", "a/../../x", "%2e%2e/x", "%2E%2E/%2e%2e/etc/passwd", "/etc/passwd", "%2fetc%2fpasswd",
          "a/%2e%2e/%2e%2e/x", "./x"):
    for m in ("GET", "PUT"):
        st, js, _, _ = A.req(m, "/v1/sessions/%s/files/%s" % (SA, p), raw=b"x" if m == "PUT" else None)
        if st != 400 or code_of(js) != "bad_path":
            bad.append((m, p, st, js))
ok(not bad, "'..', absolute, %2e%2e, %2f and ./ paths -> 400 bad_path on GET and PUT", bad)
st, js, _, _ = A.req("PUT", "/v1/sessions/%s/files/nul%%00.txt" % SA, raw=b"x")
st2, r = A.cell(SA, "import os\n[n for n in os.listdir('.') if n.startswith('nul')]")
ok(st == 400 and r.get("results") == [{"text/plain": "[]"}],
   "a path with %00 (a NUL) is refused with 400, not cut at the NUL and written elsewhere", (st, brief(js), brief(r)))
st, js, _, _ = A.req("GET", "/v1/sessions/%s/files?dir=.." % SA)
ok(st == 400 and code_of(js) == "bad_path", "a listing of .. -> 400 bad_path", brief(js))
# symlinks the code plants: to /etc/shadow, to the other session's workspace
st, r = B.cell(SB, "open('b-secret.txt', 'w').write('b-%s')" % TOKEN)
# session B's driver on the host: below our server, its workspace holds B's file
b_host = [p for p in host_procs() if p[0] in descendants(srv.pid) and p[4][:3] == ["/usr/bin/python3", "-B", "-u"]
          and os.path.exists("/proc/%d/root/workspace/b-secret.txt" % p[0])]
shadow = open("/etc/shadow", "rb").read() if os.path.exists("/etc/shadow") else b""
plant = "import os\nos.symlink('/etc/shadow', 'shadow')\nos.symlink('/etc', 'etc')\nos.mkfifo('fifo')\n"
for i, (pid, *_rest) in enumerate(b_host):
    plant += "os.symlink('/proc/%d/root/workspace', 'other%d')\nos.symlink('/proc/%d/root/workspace/b-secret.txt', 'otherf%d')\n" % (pid, i, pid, i)
st, r = A.cell(SA, plant + "sorted(os.listdir('.'))")
ok(st == 200 and r.get("status") == "ok" and len(b_host) >= 1,
   "the code plants links to /etc/shadow, /etc and the workspaces of %d host driver processes, and a fifo" % len(b_host), brief(r))
bad = []
paths = ["shadow", "etc/shadow", "etc/passwd"] + ["other%d/b-secret.txt" % i for i in range(len(b_host))] + \
        ["otherf%d" % i for i in range(len(b_host))]
for p in paths:
    st, js, raw, _ = A.req("GET", "/v1/sessions/%s/files/%s" % (SA, p))
    if st == 200 or b"root:" in raw or TOKEN.encode() in raw:
        bad.append(("GET", p, st, raw[:100]))
    st, js, raw, _ = A.req("PUT", "/v1/sessions/%s/files/%s" % (SA, p), raw=b"owned-" + TOKEN.encode())
    if st < 400:
        bad.append(("PUT", p, st, js))
ok(not bad, "GET and PUT through every planted link are refused (%d paths)" % len(paths), bad)
ok((open("/etc/shadow", "rb").read() if shadow else b"") == shadow, "/etc/shadow on the host is unchanged")
st, r = B.cell(SB, "open('b-secret.txt').read()")
ok(r.get("results") == [{"text/plain": repr("b-" + TOKEN)}], "session B's file is unchanged", brief(r))
st, js, _, _ = A.req("GET", "/v1/sessions/%s/files/fifo" % SA, timeout=20)
ok(st == 409 and code_of(js) == "not_a_regular_file", "GET of a fifo -> 409 not_a_regular_file (no hang)", (st, brief(js)))
st, js, _, _ = A.req("PUT", "/v1/sessions/%s/files/huge.bin" % SA, raw=b"\0" * (65 << 20), timeout=60)
ok(st == 413 and code_of(js) in ("file_too_large", "body_too_large"), "a 65 MiB file -> 413 %s" % code_of(js), (st, brief(js)))
st, r = A.cell(SA, "import os\nos.path.exists('huge.bin')")
ok(r.get("results") == [{"text/plain": "False"}], "... and nothing of it lands in the workspace", brief(r))

# --- 9. garbage and forged frames on the driver's channel ----------------------------------
frames = {
    "garbage": "os.write(4, b'garbage\\n')",
    "a frame for another cell": "j = b'{\"type\":\"result\",\"seq\":99,\"status\":\"ok\",\"execution_count\":99,\"results\":[]}'\n"
                                "os.write(4, b'%d\\n' % len(j) + j)",
    "a header over 16 MiB": "os.write(4, b'99999999\\n')",
    "a header of 11 digits": "os.write(4, b'12345678901')",
    "a second ready": "j = b'{\"type\":\"ready\",\"protocol\":1}'\nos.write(4, b'%d\\n' % len(j) + j)",
}
for name, code in frames.items():
    sid = new_session(A)
    st, r = A.cell(sid, "import os, time\n" + code + "\ntime.sleep(5)\n'not ended'")
    st2, r2 = A.cell(sid, "1")
    ok(st == 200 and r.get("status") == "session_dead" and st2 == 410 and r2["error"].get("reason") == "protocol",
       "the code writes %s on fd 4: the session ends, reason protocol" % name, (brief(r), brief(r2)))
st, r = A.cell(SA, "'alive'")
st2, js, _, _ = A.req("GET", "/healthz")
ok(r.get("results") == [{"text/plain": "'alive'"}] and st2 == 200, "the server and the other sessions live on", brief(r))
# a forged result for the running cell itself: only that cell can be fooled, the next one is checked
sid = new_session(A)
st, r = A.cell(sid, "import os\nj = b'{\"type\":\"result\",\"seq\":1,\"status\":\"ok\",\"execution_count\":1,"
                    "\"results\":[{\"type\":\"execute_result\",\"data\":{\"text/plain\":\"forged\"}}]}'\n"
                    "os.write(4, b'%d\\n' % len(j) + j)\nimport time\ntime.sleep(1)")
st2, r2 = A.cell(sid, "2")
ok(r2.get("results") != [{"text/plain": "forged"}]
   and (r2.get("results") == [{"text/plain": "2"}] or r2.get("session_end_reason") == "protocol"
        or (st2 == 410 and r2["error"].get("reason") == "protocol")),
   "a result forged for its own cell cannot answer the next cell (it is that cell's, or the session ends)",
   (brief(r), st2, brief(r2)))

# --- 10. DELETE while a cell runs; interrupt during a sleep -----------------------------
def background_cell(api, sid, code, **kw):
    box = {}
    t = threading.Thread(target=lambda: box.update(r=api.cell(sid, code, **kw)), daemon=True)
    t.start()
    return t, box


def busy(api, sid):
    st, js, _, _ = api.req("GET", "/v1/sessions/%s" % sid)
    return st == 200 and js.get("status") == "busy"


sid = new_session(A)
t, box = background_cell(A, sid, "import time\ntime.sleep(60)", limits={"wall_ms": 120000})
was_busy = wait_until(lambda: busy(A, sid), 20)
st, js, _, _ = A.req("DELETE", "/v1/sessions/%s" % sid)
t.join(30)
st2, r2 = A.cell(sid, "1")
ok(was_busy and st == 200 and js.get("status") == "ended" and not t.is_alive()
   and box.get("r", (0, {}))[1].get("status") == "session_dead"
   and st2 == 410 and r2["error"].get("reason") == "closed",
   "DELETE while a cell sleeps: 200 ended, the cell answers session_dead, the next call 410 reason closed",
   (was_busy, st, brief(js), box.get("r"), st2, brief(r2)))
sid_int = new_session(A)
t, box = background_cell(A, sid_int, "import time\ntime.sleep(60)", limits={"wall_ms": 120000})
was_busy = wait_until(lambda: busy(A, sid_int), 20)
st, js, _, _ = A.req("POST", "/v1/sessions/%s/interrupt" % sid_int, {})
t.join(30)
r = box.get("r", (0, {}))[1]
st2, r2 = A.cell(sid_int, "'after'")
ok(was_busy and st == 200 and js.get("interrupted") is True and r.get("status") == "error"
   and (r.get("error") or {}).get("name") == "KeyboardInterrupt" and r2.get("results") == [{"text/plain": "'after'"}],
   "POST .../interrupt during a sleep: the cell ends with KeyboardInterrupt, the session lives",
   (was_busy, st, js, brief(r), brief(r2)))
st, js, _, _ = A.req("POST", "/v1/sessions/%s/interrupt" % sid_int, {})
ok(st == 200 and js.get("interrupted") is False, "an interrupt between cells says interrupted false", brief(js))

# --- 11. the attack probes of the one-shot suites, as cells -----------------------------
lis_tcp = socket.socket()
lis_tcp.bind(("127.0.0.1", 0))
lis_tcp.listen(4)
lis_tcp.settimeout(0.1)
lis_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
lis_udp.bind(("127.0.0.1", 0))
lis_udp.settimeout(0.1)
canary_path = "/root/airlock-session-canary-%s.txt" % TOKEN
try:
    with open(canary_path, "w") as f:
        f.write("canary-" + TOKEN)
except OSError:
    canary_path = "/nonexistent-" + TOKEN
host_sleeper = subprocess.Popen(["python3", "-c", "import time; time.sleep(120)", "host-" + marker])
ctx = {"tcp_port": lis_tcp.getsockname()[1], "udp_port": lis_udp.getsockname()[1], "marker": "host-" + marker,
       "host_pid": host_sleeper.pid, "canary_path": canary_path}
sid_p = new_session(A)
for name, code, check in probes(ctx):
    rc, one = run("python", code)
    st, cell = A.cell(sid_p, code)
    g1, w1 = check(one.get("stdout", ""))
    g2, w2 = check(cell.get("stdout", ""))
    ok(g1 and g2 and w1 == w2 and cell.get("status") == "ok",
       "as a cell as one-shot: " + name, {"one-shot": w1, "cell": w2, "cell status": cell.get("status")})
hits = []
for s in (lis_tcp, lis_udp):
    try:
        hits.append(s.accept() if s is lis_tcp else s.recvfrom(100))
    except OSError:
        pass
ok(not hits and host_sleeper.poll() is None and SEEN_OPS is not None,
   "the host listeners saw nothing and the host process lives", hits)
host_sleeper.kill()
host_sleeper.wait()
if canary_path.startswith("/root/"):
    os.unlink(canary_path)

# --- 12. the audit of each step -------------------------------------------------------
rec = audit_show(S1)
cells = rec.get("cells") or []
ok(rec.get("kind") == "session" and rec.get("id") == S1 and len(cells) >= 8
   and [c.get("seq") for c in cells] == list(range(1, len(cells) + 1))
   and {"ok", "error", "timeout"} <= {c.get("status") for c in cells}
   and any("wall" in (c.get("result") or {}).get("limits_hit", []) for c in cells),
   "audit show SID: the session with its cells in order, ok, error and timeout (limits_hit wall)",
   json.dumps(rec)[:1500])
ok(any(f.get("kind") == "file_get" and f.get("path") == "kept.txt" for f in rec.get("files") or []),
   "... and the file get", rec.get("files"))
rec = audit_show(SA)
kinds = {(f.get("kind"), f.get("path")) for f in rec.get("files") or []}
ok({("file_put", "data/in.bin"), ("file_get", "data/in.bin"), ("file_delete", "data/in.bin")} <= kinds,
   "audit: put, get and delete of data/in.bin in session A's record", sorted(kinds))
for sid, why in ((S_IGN, "interrupt_ignored"), (S_MEM, "memory"), (S_IDLE, "idle"), (S_LIFE, "lifetime"),
                 (S_CELLS, "max_cells")):
    rec = audit_show(sid)
    ok((rec.get("result") or {}).get("reason") == why, "audit: session ended with reason %s" % why,
       json.dumps(rec.get("result")))
st, js, _, _ = A.req("GET", "/v1/executions/%s" % S1)
ok(st == 200 and js.get("kind") == "session", "GET /v1/executions/{session id} gives the session record", brief(js))

# --- 12b. refusals before anything runs ------------------------------------------------
C = Api(port, KC)  # a key with no live session yet
st, js, _, _ = C.create(language="sh")
ok(st == 400 and code_of(js) == "no_session_driver",
   "a language without a session driver: 400 no_session_driver, nothing started", brief(js))
S9 = new_session(C)
st, r = C.cell(S9, "import ctypes\nctypes.CDLL(None)", policy_mode="enforce")
rid = r.get("id") or ""
ok(st == 422 and code_of(r) == "policy_violation" and r.get("findings"),
   "a cell the policy refuses (enforce): 422 policy_violation with its findings", brief(r))
rc, out, err = audit("show", rid, "--json") if rid else (1, "", "no id")
try:
    rec = json.loads(out)
except ValueError:
    rec = {}
ok(rc == 0 and rec.get("status") == "rejected" and "ctypes" in json.dumps(rec),
   "... and the refusal is in the audit log with its code", (rc, out[-600:], err[-300:]))
st, r = C.cell(S9, "1 + 1")
ok(r.get("results") == [{"text/plain": "2"}], "the session runs the next cell", brief(r))
C.req("DELETE", "/v1/sessions/%s" % S9)

# --- 13. caps; SIGTERM with live sessions -----------------------------------------------
srv.send_signal(signal.SIGTERM)
srv.wait(60)
srv2, port2, log2 = start("--max-sessions", "2", "--max-sessions-per-key", "1")
A2, B2, C2 = Api(port2, KA), Api(port2, KB), Api(port2, KC)
a1 = new_session(A2)
st, js, _, hdrs = A2.create()
ok(a1 and st == 429 and code_of(js) == "too_many_sessions" and "retry-after" in hdrs,
   "--max-sessions-per-key 1: a second session of the key -> 429 too_many_sessions with Retry-After", brief(js))
b1 = new_session(B2)
st, js, _, hdrs = C2.create()
ok(b1 and st == 503 and code_of(js) == "sessions_full" and "retry-after" in hdrs,
   "--max-sessions 2: a third key's session -> 503 sessions_full with Retry-After", brief(js))
A2.cell(a1, "x = 1")
srv2.send_signal(signal.SIGTERM)
rc = srv2.wait(60)
ok(rc == 0, "SIGTERM with two live sessions: serve exits 0", (rc, "".join(log2)[-1500:]))
bad = {}
for sid in (a1, b1):
    rec = audit_show(sid)
    if (rec.get("result") or {}).get("reason") != "shutdown":
        bad[sid] = rec.get("result")
ok(not bad, "each live session has its session_ended record with reason shutdown", bad)
left = [p for p in host_procs() if marker in " ".join(p[4])]
ok(not left, "no process of the sessions is left on the host", left)

rc, out, err = audit("verify")
ok(rc == 0, "airlock audit verify is clean after all of it", out[-800:] + err[-800:])

# --- 14. the OpenAPI document -------------------------------------------------------
ok(not MISMATCHES, "every response matches docs/openapi.json (%d mismatches)" % len(MISMATCHES), "\n".join(MISMATCHES[:10]))
ops = {o for o in documented_ops(("get", "post", "put", "delete")) if o[1].startswith("/v1/sessions")}
ok(ops and ops <= SEEN_OPS, "every documented session operation was called (%d)" % len(ops), sorted(ops - SEEN_OPS))

for p in SERVERS:
    if p.poll() is None:
        p.kill()
        p.wait()
subprocess.run(["rm", "-rf", state])
done()
