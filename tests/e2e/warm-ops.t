#!/usr/bin/python3
# Warm starts in operations (airlock serve --warm): the pools in /metrics
# (ready, size, warm runs, cold runs by reason, built, failures), a preload
# that fails logged once per change (airlock.serve.warm_failed) with its
# runs cold, never an error; SIGHUP rebuilds the pools. Every wait is
# bounded by count and time; nothing asserts a duration.
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done  # noqa: E402
from airlock import start_serve, BIN  # noqa: E402

state = tempfile.mkdtemp(prefix="al-e2e-warmops-")
os.chmod(state, 0o700)
p = subprocess.run([BIN, "keys", "create", "--name", "w", "--scopes", "execute", "--state", state, "--json"],
                   capture_output=True, timeout=30)
KEY = json.loads(p.stdout.decode().splitlines()[-1])["key"]
SERVERS = []


def start(*extra):
    p, port, lines = start_serve(state, *extra)
    SERVERS.append(p)
    return p, port, lines


def req(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    h = {"Authorization": "Bearer " + KEY}
    if body is not None:
        h["Content-Type"] = "application/json"
    try:
        c.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException) as e:
        return 0, repr(e).encode()
    finally:
        c.close()


def metrics(port):
    """-> {'name{labels}': value} of GET /metrics."""
    st, raw = req(port, "GET", "/metrics")
    out = {}
    for line in raw.decode().splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def wait_for(pred, timeout=90):
    """Poll pred until true, at most timeout seconds (the pool builds in
    its own time); -> its last value."""
    end = time.time() + timeout
    v = pred()
    while not v and time.time() < end:
        time.sleep(0.2)
        v = pred()
    return v


def events(lines, name):
    out = []
    for x in list(lines):
        try:
            o = json.loads(x)
        except ValueError:
            continue
        if o.get("event") == name:
            out.append(o)
    return out


PY = 'language="python"'
CODE = {"language": "python", "code": "import sys\nprint('colorsys' in sys.modules)"}

# --- a working pool: /metrics shows it; SIGHUP rebuilds it ----------------------------------------
srv, port, log = start("--warm", "python=colorsys", "--warm-pool", "1")
ok(port, "airlock serve --warm python=colorsys --warm-pool 1 starts", "".join(log)[-500:])
m = wait_for(lambda: (lambda x: x if x.get("airlock_warm_ready{%s}" % PY) == 1 else None)(metrics(port)))
ok(m and m.get("airlock_warm_pool_size{%s}" % PY) == 1 and m.get("airlock_warm_built_total{%s}" % PY, 0) >= 1
   and m.get("airlock_warm_failing{%s}" % PY) == 0,
   "/metrics: the python pool, 1 ready of size 1, built >= 1, not failing", m and {k: v for k, v in m.items()
                                                                                  if "warm" in k})
st, raw = req(port, "POST", "/v1/execute", CODE)
r = json.loads(raw or b"{}") if st == 200 else {}
ok(st == 200 and r.get("start") == "warm" and r.get("stdout") == "True\n", "a run takes the ready sandbox (warm)",
   raw[:400])
st, raw = req(port, "POST", "/v1/execute", dict(CODE, start="cold"))
st2, raw2 = req(port, "POST", "/v1/execute", dict(CODE, limits={"memory_mb": 200}))
m = metrics(port)
ok(m.get("airlock_warm_runs_total{%s}" % PY) == 1
   and m.get('airlock_warm_cold_starts_total{%s,reason="asked"}' % PY) == 1
   and m.get('airlock_warm_cold_starts_total{%s,reason="limits"}' % PY) == 1,
   "/metrics: 1 warm run; cold starts by reason: asked 1 (start cold), limits 1 (memory_mb)",
   {k: v for k, v in m.items() if "warm" in k})

built = wait_for(lambda: (lambda x: x if x.get("airlock_warm_ready{%s}" % PY) == 1 else None)(metrics(port)))
built = (built or {}).get("airlock_warm_built_total{%s}" % PY, 0)
srv.send_signal(signal.SIGHUP)
m = wait_for(lambda: (lambda x: x if x.get("airlock_warm_built_total{%s}" % PY, 0) > built
                      and x.get("airlock_warm_ready{%s}" % PY) == 1 else None)(metrics(port)))
ok(m and m.get("airlock_warm_runs_total{%s}" % PY) == 1,
   "SIGHUP rebuilds the pool: the ready sandbox is replaced by a new one (built %d -> %d), the counters kept"
   % (built, (m or {}).get("airlock_warm_built_total{%s}" % PY, 0)),
   {k: v for k, v in metrics(port).items() if "warm" in k})
ok(any("warm" in e.get("what", []) for e in events(log, "airlock.serve.reloaded")),
   "SIGHUP: logged airlock.serve.reloaded with what warm", "".join(log)[-800:])
st, raw = req(port, "POST", "/v1/execute", CODE)
ok(st == 200 and json.loads(raw).get("start") == "warm", "after SIGHUP a run is warm again", raw[:300])
srv.send_signal(signal.SIGTERM)
ok(srv.wait(60) == 0, "serve exits 0", "".join(log)[-500:])

# --- a preload that does not import: cold runs, logged once per change, in /metrics ------------------------
srv, port, log = start("--warm", "python=no_such_module_airlock", "--warm-pool", "1")
m = wait_for(lambda: (lambda x: x if x.get("airlock_warm_failing{%s}" % PY) == 1 else None)(metrics(port)))
ok(m and m.get("airlock_warm_build_failures_total{%s}" % PY, 0) >= 1 and m.get("airlock_warm_ready{%s}" % PY) == 0,
   "/metrics: a preload that fails to import: failing 1, build failures >= 1, none ready",
   m and {k: v for k, v in m.items() if "warm" in k})
fails = wait_for(lambda: events(log, "airlock.serve.warm_failed"), 10)
ok(len(fails) == 1 and fails[0].get("language") == "python" and "no_such_module_airlock" in fails[0].get("error", "")
   and "ModuleNotFoundError" in fails[0].get("error", ""),
   "logged: one airlock.serve.warm_failed naming the language and the import error", "".join(log)[-800:])
st, raw = req(port, "POST", "/v1/execute", CODE)
r = json.loads(raw or b"{}") if st == 200 else {}
ok(st == 200 and r.get("status") == "ok" and r.get("start") == "cold" and r.get("start_reason") == "pool_broken"
   and r.get("stdout") == "False\n",
   "a run meanwhile is cold (start_reason pool_broken), never an error for the caller", raw[:400])
n = m.get("airlock_warm_build_failures_total{%s}" % PY, 0) if m else 0
srv.send_signal(signal.SIGHUP)  # a rebuild tries at once, and fails the same way
m = wait_for(lambda: (lambda x: x if x.get("airlock_warm_build_failures_total{%s}" % PY, 0) > n
                      else None)(metrics(port)))
ok(m and len(events(log, "airlock.serve.warm_failed")) == 1,
   "SIGHUP retries at once (failures %d -> %d); the same failure is not logged again" % (
       n, (m or {}).get("airlock_warm_build_failures_total{%s}" % PY, 0)),
   [e.get("error") for e in events(log, "airlock.serve.warm_failed")])
ok(metrics(port).get('airlock_warm_cold_starts_total{%s,reason="pool_broken"}' % PY) == 1,
   "/metrics: cold starts by reason: pool_broken 1", "")
srv.send_signal(signal.SIGTERM)
ok(srv.wait(60) == 0, "serve exits 0", "".join(log)[-500:])

for s in SERVERS:
    if s.poll() is None:
        s.kill()
subprocess.run(["rm", "-rf", state])
done()
