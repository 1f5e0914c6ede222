#!/usr/bin/python3
"""Warm-start benchmark: warm and cold airlock runs next to bare python3,
over HTTP on loopback, on this machine, in one run.

    python3 bench/warm.py --airlock build/airlock --out build/bench
    make bench-warm                        # the same (also part of make bench)

One airlock serve --warm python=numpy,pandas,matplotlib --warm-pool P;
cold runs are the same requests with "start": "cold" on the same server.
Before each timed latency request the bench waits (bounded) until the
pool is full again, so that a refill does not share the CPU with the run
being timed; a request that started cold anyway is counted, not timed.

  1. print(1): p50/p95 warm and cold, bare `python3 -c pass` (goal: warm
     <= bare + 1 ms)
  2. import numpy, pandas; print(1) (goal: warm p50 <= 10 ms)
  3. import matplotlib.pyplot + savefig of a small plot (goal: p50 <= 30 ms)
  4. throughput of numpy+pandas cells with 32 clients for --seconds, warm
     (the pool of P) and cold: runs/s, the share that found a ready
     sandbox, and the pool's refill rate (sandboxes built per second, from
     /metrics): a pool refills at the speed of building one sandbox (the
     preload's import costs CPU each time), so warm throughput is bounded
     by it (goal: >= 20x cold).

Ratios against cold airlock, bare python and the vendors' published
start times (bench/README.md cites them). Reports, never asserts; exits 0
whatever the numbers are.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import spawn_ms, CLEAN_ENV  # noqa: E402

PY = "/usr/bin/python3"
# The vendors' published start times (bench/README.md, "Warm starts").
VENDORS = [("E2B (to a sandbox)", 150.0), ("Daytona", 90.0)]
PRELOAD = "numpy,pandas,matplotlib"
WORKLOADS = [
    ("print(1)", "print(1)", None),
    ("import numpy, pandas; print(1)", "import numpy, pandas; print(1)", ("numpy", "pandas")),
    ("matplotlib savefig", "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
     "plt.plot([1, 2, 3], [1, 4, 9])\nplt.savefig('p.png')\nprint(1)", ("matplotlib",)),
]
GOALS = {"print(1)": "<= bare python3 -c pass + 1 ms", "import numpy, pandas; print(1)": "p50 <= 10 ms",
         "matplotlib savefig": "p50 <= 30 ms"}


def have(mods):
    return subprocess.run([PY, "-c", "import " + ", ".join(mods)], env=CLEAN_ENV,
                          capture_output=True).returncode == 0


class Api:
    def __init__(self, port, key):
        self.port, self.h = port, {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def call(self, method, path, body=None):
        b = json.dumps(body).encode() if body is not None else None
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, b, self.h)
            r = self.conn.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            return (time.perf_counter() - t0) * 1000.0, 0, {}
        ms = (time.perf_counter() - t0) * 1000.0
        try:
            return ms, r.status, json.loads(raw) if method == "POST" else raw.decode()
        except ValueError:
            return ms, r.status, {}

    def metric(self, name):
        _, _, text = self.call("GET", "/metrics")
        m = re.search(r'^%s\{language="python"\} (\S+)$' % name, text or "", re.M)
        return float(m.group(1)) if m else 0.0

    def wait_full(self, size, timeout=60.0):
        end = time.time() + timeout
        while self.metric("airlock_warm_ready") < size and time.time() < end:
            time.sleep(0.05)


def pct(v, p):
    if not v:
        return float("nan")
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def latency(api, code, start, n, pool):
    """-> (timed ms of runs that started as asked, how many did not)."""
    out, missed = [], 0
    for _ in range(n):
        api.wait_full(pool)
        body = {"language": "python", "code": code}
        if start == "cold":
            body["start"] = "cold"
        ms, st, r = api.call("POST", "/v1/execute", body)
        if st == 200 and r.get("status") == "ok" and r.get("start") == start:
            out.append(ms)
        else:
            missed += 1
    return out, missed


def throughput(port, key, code, start, clients, seconds):
    """-> (runs ok, warm ones, seconds)."""
    done, warm, lock = [0], [0], threading.Lock()
    end = time.time() + seconds

    def client():
        api = Api(port, key)
        while time.time() < end:
            body = {"language": "python", "code": code}
            if start == "cold":
                body["start"] = "cold"
            _, st, r = api.call("POST", "/v1/execute", body)
            if st == 200 and r.get("status") == "ok":
                with lock:
                    done[0] += 1
                    warm[0] += r.get("start") == "warm"
    t0 = time.time()
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return done[0], warm[0], time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--airlock", default=os.path.join(REPO, "build", "airlock"))
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench"))
    ap.add_argument("--runs", type=int, default=30, help="timed runs per latency row (default 30)")
    ap.add_argument("--pool", type=int, default=4, help="--warm-pool of the server (default 4)")
    ap.add_argument("--clients", type=int, default=32, help="throughput clients (default 32)")
    ap.add_argument("--seconds", type=float, default=20.0, help="each throughput window (default 20)")
    ap.add_argument("--quick", action="store_true", help="8 runs per row, 5 s windows")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.seconds = 8, 5.0
    os.makedirs(a.out, exist_ok=True)
    state = tempfile.mkdtemp(prefix="warm-", dir=a.out)
    os.chmod(state, 0o700)
    p = subprocess.run([a.airlock, "keys", "create", "--name", "bench", "--scopes", "execute", "--state", state,
                        "--json"], capture_output=True, env=CLEAN_ENV)
    key = json.loads(p.stdout.decode().splitlines()[-1])["key"]
    mods = [m for m in PRELOAD.split(",") if have([m])]
    preload = ",".join(mods)
    srv = subprocess.Popen([a.airlock, "serve", "--listen", "127.0.0.1:0", "--state", state,
                            "--warm", "python" + ("=" + preload if preload else ""), "--warm-pool", str(a.pool)],
                           stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=CLEAN_ENV)
    line = srv.stderr.readline().decode()
    port = json.loads(line).get("port") if line.startswith("{") else None
    threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
    if not port:
        srv.kill()
        sys.exit("bench/warm.py: airlock serve did not start: %s" % line)
    try:
        api = Api(port, key)
        api.wait_full(a.pool, 120)
        print("warm starts: airlock serve --warm python=%s --warm-pool %d, over HTTP on loopback; %d runs per row"
              % (preload or "(none)", a.pool, a.runs))
        if len(mods) < 3:
            print("  (not installed on this host: %s; their rows are skipped -- make bench installs them)"
                  % ", ".join(sorted(set(PRELOAD.split(",")) - set(mods))))
        bare = [spawn_ms([PY, "-c", "pass"])[0] for _ in range(a.runs)]
        bare50 = statistics.median(bare)
        print("  bare python3 -c pass: p50 %.1f ms" % bare50)
        hdr = "  %-32s %9s %9s %9s %9s  %-8s %-8s %s" % ("workload", "warm p50", "warm p95", "cold p50",
                                                         "bare p50", "cold/warm", "warm-bare", "goal")
        print(hdr)
        warm_np = None
        for name, code, need in WORKLOADS:
            if need and not all(m in mods for m in need):
                print("  %-32s skipped: %s not installed" % (name, ", ".join(need)))
                continue
            w, wm = latency(api, code, "warm", a.runs, a.pool)
            c, _ = latency(api, code, "cold", a.runs, a.pool)
            b = [spawn_ms([PY, "-c", code.replace("plt.savefig('p.png')", "plt.savefig('/dev/null', format='png')")])[0]
                 for _ in range(a.runs)] if name != "print(1)" else bare
            w50, c50, b50 = pct(w, 50), pct(c, 50), statistics.median(b)
            if name.startswith("import numpy"):
                warm_np = w50
            print("  %-32s %7.1fms %7.1fms %7.1fms %7.1fms  %7.1fx %+7.1fms  %s%s" % (
                name, w50, pct(w, 95), c50, b50, c50 / w50 if w else float("nan"), w50 - b50,
                GOALS[name], " (%d runs started cold: pool empty)" % wm if wm else ""))
        if warm_np is not None:
            for vendor, ms in VENDORS:
                print("  vs %s, published %.0f ms to a sandbox: warm numpy+pandas p50 is %.1fx faster"
                      % (vendor, ms, ms / warm_np))
        tcode = "import numpy, pandas; print(1)" if all(m in mods for m in ("numpy", "pandas")) else "print(1)"
        b0 = api.metric("airlock_warm_built_total")
        nw, warm, secs = throughput(port, key, tcode, "warm", a.clients, a.seconds)
        built = api.metric("airlock_warm_built_total") - b0
        api.wait_full(a.pool, 120)
        nc, _, csecs = throughput(port, key, tcode, "cold", a.clients, a.seconds)
        print("  throughput, %s, %d clients, %.0f s each, pool %d:" % (tcode, a.clients, a.seconds, a.pool))
        print("    warm (auto): %.1f runs/s (%d of %d found a ready sandbox; the rest ran cold, pool_empty)"
              % (nw / secs, warm, nw))
        print("    the pool's refill rate: %.1f sandboxes/s (%d built in the window): warm runs/s cannot exceed it"
              % (built / secs, built))
        print("    cold: %.1f runs/s; warm/cold %.1fx (goal >= 20x)" % (nc / csecs, (nw / secs) / (nc / csecs)
                                                                       if nc else float("nan")))
    finally:
        srv.terminate()
        try:
            srv.wait(60)
        except subprocess.TimeoutExpired:
            srv.kill()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
