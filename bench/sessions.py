#!/usr/bin/python3
"""Sessions benchmark: a live session next to one-shot runs, on this
machine, in one run.

    python3 bench/sessions.py --airlock build/airlock --out build/bench
    make bench-sessions                    # the same (also part of make bench)

  1. a cell `1+1` in a live python session over HTTP on loopback (a
     kept-alive connection): p50 and p95 of the whole round trip, against
     the goal (p50 <= 1 ms); next to it POST /v1/execute of the same code
     (a sandbox per request).
  2. creating a session (POST /v1/sessions until the driver is ready)
     against a cold one-shot `airlock run --lang python -c pass` from the
     CLI, interleaved round by round: medians, and the difference against
     the goal (<= one-shot + 5 ms).
  3. memory of an idle python session after `import numpy, pandas`: the
     session's cgroup/processes (the driver's resident set, from
     /proc/PID/status of the sandbox's python) next to a bare
     `python3 -c 'import numpy, pandas'` interpreter's peak.

A fresh state directory under --out. Reports, never asserts; exits 0
whatever the numbers are.
"""

import argparse
import http.client
import json
import os
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


def start_serve(al, state):
    p = subprocess.Popen([al, "serve", "--listen", "127.0.0.1:0", "--state", state,
                          "--max-sessions-per-key", "64", "--max-sessions", "64"],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=CLEAN_ENV)
    line = p.stderr.readline().decode()
    port = json.loads(line).get("port") if line.startswith("{") else None
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    if not port:
        p.kill()
        sys.exit("bench/sessions.py: airlock serve did not start: %s" % line)
    return p, port


class Api:
    def __init__(self, port, key):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.h = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        b = json.dumps(body).encode() if body is not None else None
        t0 = time.perf_counter()
        self.conn.request(method, path, b, self.h)
        r = self.conn.getresponse()
        raw = r.read()
        ms = (time.perf_counter() - t0) * 1000.0
        try:
            return ms, r.status, json.loads(raw)
        except ValueError:
            return ms, r.status, {}


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def vm_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def sandbox_pythons(before):
    """pids of python3 processes that appeared since `before` (a set)."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) not in before:
            try:
                with open("/proc/%s/comm" % d) as f:
                    if f.read().strip().startswith("python3"):
                        out.add(int(d))
            except OSError:
                pass
    return out


def all_pids():
    return {int(d) for d in os.listdir("/proc") if d.isdigit()}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--airlock", default=os.path.join(REPO, "build", "airlock"))
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench"))
    ap.add_argument("--cells", type=int, default=300, help="cells timed (default 300)")
    ap.add_argument("--rounds", type=int, default=20, help="create/one-shot rounds (default 20)")
    ap.add_argument("--quick", action="store_true", help="100 cells, 8 rounds")
    a = ap.parse_args()
    if a.quick:
        a.cells, a.rounds = 100, 8
    al = os.path.abspath(a.airlock)
    os.makedirs(a.out, exist_ok=True)
    state = tempfile.mkdtemp(prefix="sessions-", dir=a.out)
    os.chmod(state, 0o700)
    key = json.loads(subprocess.run([al, "keys", "create", "--name", "bench", "--state", state,
                                     "--json"], capture_output=True, check=True).stdout)["key"]
    srv, port = start_serve(al, state)
    api = Api(port, key)
    try:
        print("sessions benchmark (%s, %d cores)" % (time.strftime("%Y-%m-%d"), os.cpu_count()))
        # 1. cells
        _, st, s = api.call("POST", "/v1/sessions", {"language": "python"})
        sid = s.get("id")
        path = "/v1/sessions/%s/execute" % sid
        for _ in range(10):
            api.call("POST", path, {"code": "1+1"})
        cell, bad = [], 0
        for _ in range(a.cells):
            ms, st, r = api.call("POST", path, {"code": "1+1"})
            cell.append(ms)
            bad += st != 200 or r.get("results") != [{"text/plain": "2"}]
        one = []
        for _ in range(max(10, a.rounds)):
            ms, st, r = api.call("POST", "/v1/execute", {"language": "python", "code": "1+1"})
            one.append(ms)
        api.call("DELETE", "/v1/sessions/" + sid)
        p50 = statistics.median(cell)
        print("\n1. a cell `1+1` over HTTP (kept-alive connection, %d cells, %d wrong)" % (a.cells, bad))
        print("   session cell   p50 %7.2f ms  p95 %7.2f ms   goal p50 <= 1 ms: %s"
              % (p50, pct(cell, 95), "met" if p50 <= 1.0 else "NOT met"))
        print("   (each cell: its durable cell_started record (one fsync), the policy's")
        print("    static check, the framed round trip to the driver, the cell record)")
        print("   /v1/execute    p50 %7.2f ms  p95 %7.2f ms   (a sandbox per request)"
              % (statistics.median(one), pct(one, 95)))

        # 2. create vs one-shot, interleaved
        create, cold = [], []
        argv = [al, "run", "--state", state, "--lang", "python", "-c", "pass"]
        for _ in range(a.rounds):
            ms, st, s = api.call("POST", "/v1/sessions", {"language": "python"})
            if st == 201:
                create.append(ms)
                api.call("DELETE", "/v1/sessions/" + s["id"])
            ms, rc = spawn_ms(argv)
            if rc == 0:
                cold.append(ms)
        mc, mo = statistics.median(create), statistics.median(cold)
        print("\n2. creating a session vs a cold one-shot run (%d rounds, interleaved)" % a.rounds)
        print("   POST /v1/sessions (driver ready)   median %7.2f ms" % mc)
        print("   airlock run --lang python -c pass  median %7.2f ms" % mo)
        print("   difference %+.2f ms   goal <= +5 ms: %s" % (mc - mo, "met" if mc - mo <= 5 else "NOT met"))

        # 3. memory of an idle session with numpy and pandas
        before = all_pids()
        _, st, s = api.call("POST", "/v1/sessions", {"language": "python",
                                                      "limits": {"memory_mb": 1024}})
        sid = s.get("id")
        _, st, r = api.call("POST", "/v1/sessions/%s/execute" % sid,
                            {"code": "import numpy, pandas", "limits": {"wall_ms": 60000}})
        time.sleep(0.5)
        pys = sandbox_pythons(before)
        rss = [vm_kib(p, "VmRSS") or 0 for p in pys]
        api.call("DELETE", "/v1/sessions/" + sid)
        bare = subprocess.run([PY, "-c", "import numpy, pandas, resource; "
                               "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
                              capture_output=True, text=True, env=CLEAN_ENV)
        try:
            bare_kib = int(bare.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            bare_kib = None
        print("\n3. memory, idle after `import numpy, pandas`")
        if rss:
            print("   session's python (VmRSS)      %7.1f MiB" % (max(rss) / 1024.0))
        else:
            print("   session's python: not found in /proc (%s)" % r.get("status"))
        if bare_kib:
            print("   bare python3 (peak RSS)       %7.1f MiB" % (bare_kib / 1024.0))
    finally:
        srv.terminate()
        srv.wait(30)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
