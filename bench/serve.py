#!/usr/bin/python3
"""airlock serve benchmark: the HTTP service next to the CLI and the bare
runtime, on this machine, in one run.

    python3 bench/serve.py --airlock build/airlock --out build/bench
    make bench-serve                      # the same (also part of make bench)

  1. latency of a python hello-world: bare `python3 -c`, a cold
     `airlock run` (posix_spawn to waitpid), and POST /v1/execute to a
     running `airlock serve` on loopback, over a kept-alive connection and
     over a new connection per request; interleaved round by round;
     medians, and HTTP minus CLI against the goal (<= CLI + 1 ms).
  2. throughput: the CLI with 2 workers (2 threads each starting
     `airlock run` in a loop) against serve with 32 concurrent clients
     (serve's default worker pool: one per core); runs per second and the
     ratio against the goal (>= 90 %).
  3. memory: serve's resident set (VmRSS) idle after start, and idle again
     after the load, against the goal (<= 20 MiB).

Everything uses a fresh state directory under --out (audit log and keys
included: both paths write the same audit records). Reports, never
asserts; exits 0 whatever the numbers are.
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
sys.path.insert(0, os.path.join(REPO, "tests", "e2e", "lib"))
from bench import spawn_ms, CLEAN_ENV  # noqa: E402
from httpload import load  # noqa: E402

CODE = 'print("hello")'
PY = "/usr/bin/python3"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def start_serve(al, state, workers):
    args = [al, "serve", "--listen", "127.0.0.1:0", "--state", state]
    if workers:
        args += ["--workers", str(workers)]
    p = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=CLEAN_ENV)
    line = p.stderr.readline().decode()
    port = json.loads(line).get("port") if line.startswith("{") else None
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    if not port:
        p.kill()
        sys.exit("bench/serve.py: airlock serve did not start: %s" % line)
    return p, port


class Client:
    """POST /v1/execute, timed from the request to the whole answer."""

    def __init__(self, port, key, keep_alive):
        self.port, self.keep = port, keep_alive
        self.body = json.dumps({"language": "python", "code": CODE}).encode()
        self.headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port) if keep_alive else None

    def once(self):
        conn = self.conn or http.client.HTTPConnection("127.0.0.1", self.port)
        t0 = time.perf_counter()
        conn.request("POST", "/v1/execute", self.body, self.headers)
        r = conn.getresponse()
        raw = r.read()
        ms = (time.perf_counter() - t0) * 1000.0
        if not self.keep:
            conn.close()
        ok = r.status == 200 and json.loads(raw).get("stdout") == "hello\n"
        return ms, ok


def cli_throughput(argv, workers, duration):
    done, fails = [0], [0]
    lock = threading.Lock()
    stop = time.perf_counter() + duration

    def loop():
        while time.perf_counter() < stop:
            ms, rc = spawn_ms(argv)
            with lock:
                done[0] += 1
                fails[0] += rc != 0
    t0 = time.perf_counter()
    th = [threading.Thread(target=loop) for _ in range(workers)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    return done[0] / (time.perf_counter() - t0), fails[0]


def med(v):
    return statistics.median(v) if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--airlock", default=os.path.join(REPO, "build", "airlock"))
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench"))
    ap.add_argument("--rounds", type=int, default=40, help="latency rounds (default 40)")
    ap.add_argument("--duration", type=float, default=10.0, help="throughput seconds per side (default 10)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="10 rounds, 3 s")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.duration = 10, 3.0
    al = os.path.abspath(a.airlock)
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="serve-bench-", dir=a.out)
    state = os.path.join(work, "state")
    os.mkdir(state, 0o700)
    try:
        key = json.loads(subprocess.run([al, "keys", "create", "--state", state, "--name", "bench", "--json"],
                                        capture_output=True, check=True).stdout.decode().splitlines()[-1])["key"]
        srv, port = start_serve(al, state, None)
        time.sleep(0.5)
        rss_idle = rss_kib(srv.pid)
        cli = [al, "run", "--state", state, "--lang", "python", "-c", CODE]
        bare = [PY, "-c", CODE]
        keep, fresh = Client(port, key, True), Client(port, key, False)
        lat = {"bare": [], "cli": [], "http": [], "http_new_conn": []}
        bad = {k: 0 for k in lat}
        for i in range(3):  # warm-up: page cache, the first slots
            spawn_ms(cli)
            keep.once()
        for i in range(a.rounds):
            ms, rc = spawn_ms(bare)
            lat["bare"].append(ms)
            bad["bare"] += rc != 0
            ms, rc = spawn_ms(cli)
            lat["cli"].append(ms)
            bad["cli"] += rc != 0
            ms, good = keep.once()
            lat["http"].append(ms)
            bad["http"] += not good
            ms, good = fresh.once()
            lat["http_new_conn"].append(ms)
            bad["http_new_conn"] += not good

        cli_rate, cli_fail = cli_throughput(cli, 2, a.duration)
        per_client = max(3, int(cli_rate * a.duration / a.clients))
        r = load(port, key, {"language": "python", "code": CODE}, clients=a.clients, per_client=per_client)
        n = a.clients * per_client
        http_rate = n / r["elapsed"]
        time.sleep(1.0)
        rss_after = rss_kib(srv.pid)
        workers = os.cpu_count()
        srv.terminate()
        srv.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    m = {k: med(v) for k, v in lat.items()}
    res = {
        "rounds": a.rounds, "medians_ms": m, "failures": bad,
        "http_minus_cli_ms": m["http"] - m["cli"],
        "throughput": {"cli_2_workers_per_s": cli_rate, "cli_failures": cli_fail,
                       "serve_per_s": http_rate, "serve_clients": a.clients, "serve_workers": workers,
                       "serve_requests": n, "serve_statuses": dict((str(k), v) for k, v in r["statuses"].items()),
                       "serve_outcomes": dict(r["bodies"]), "ratio": http_rate / cli_rate if cli_rate else None},
        "rss_kib": {"idle": rss_idle, "after_load": rss_after},
    }
    goal_lat = "met" if res["http_minus_cli_ms"] <= 1.0 else "missed"
    goal_tp = "met" if (res["throughput"]["ratio"] or 0) >= 0.9 else "missed"
    goal_rss = "met" if max(rss_idle, rss_after) <= 20 * 1024 else "missed"
    lines = [
        "# airlock serve benchmark",
        "",
        "python hello-world, %d interleaved rounds, medians:" % a.rounds,
        "",
        "| path | median ms | failures |",
        "|---|---:|---:|",
        "| bare `python3 -c` | %.1f | %d |" % (m["bare"], bad["bare"]),
        "| `airlock run` (cold, CLI) | %.1f | %d |" % (m["cli"], bad["cli"]),
        "| POST /v1/execute, kept-alive connection | %.1f | %d |" % (m["http"], bad["http"]),
        "| POST /v1/execute, new connection each | %.1f | %d |" % (m["http_new_conn"], bad["http_new_conn"]),
        "",
        "- HTTP - CLI: **%+.1f ms** (goal <= +1 ms: %s); HTTP / bare: %.2fx" % (
            res["http_minus_cli_ms"], goal_lat, m["http"] / m["bare"]),
        "- throughput: CLI 2 workers %.1f runs/s; serve (%d clients, %d workers) %.1f runs/s, "
        "%d requests %s: **%.0f %%** of the CLI (goal >= 90 %%: %s)" % (
            cli_rate, a.clients, workers, http_rate, n, dict(r["statuses"]),
            100 * (res["throughput"]["ratio"] or 0), goal_tp),
        "- serve RSS: idle %.1f MiB, idle after the load %.1f MiB (goal <= 20 MiB: %s)" % (
            rss_idle / 1024, rss_after / 1024, goal_rss),
    ]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(a.out, "serve.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, "serve.json"), "w") as f:
        json.dump(res, f, indent=2)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
