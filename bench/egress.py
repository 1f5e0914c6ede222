#!/usr/bin/python3
"""Egress benchmark: what the per-run proxy (airlock run --allow-net) costs,
on this machine, in one run, loopback only.

    python3 bench/egress.py --airlock build/airlock --out build/bench
    make bench-egress                      # the same (also part of make bench)

  1. The cost of enabling the proxy on a run that makes no connection:
     `airlock run --allow-net 127.0.0.1:1 --lang python -c pass` against the
     same run without --allow-net, in pairs, interleaved (the order within a
     pair alternates), after warm-up rounds. The statistic is the median of
     the per-pair differences with a 95 % bootstrap interval (goal: <= 0.5 ms,
     issue 23).
  2. A 100 MB download on loopback from an origin this bench starts (a
     Python HTTP server in this process, the body from memory): curl inside
     a run through its proxy (`--lang bash --allow-net 127.0.0.1:PORT`)
     against the same curl run by a host process straight to the origin,
     interleaved. The rate is curl's own (size_download / time_total), so the
     sandbox's start is not in it (goal: through the proxy >= 50 % of
     direct, issue 23).

Both sides of each comparison run with --no-audit and a scratch --state, so
that the audit log's fsyncs do not add noise to a difference they do not
belong to. Reports, never asserts; exits 0 whatever the numbers are.
"""

import argparse
import http.server
import json
import os
import random
import shutil
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import spawn_ms, CLEAN_ENV, percentile  # noqa: E402

CURL = "/usr/bin/curl"
SIZE = 100 * 1000 * 1000  # "a 100 MB download"
CHUNK = 1 << 20


def median_ci95(v, resamples=2000):
    """95 % bootstrap interval of the median of v (seeded: the same report
    from the same samples)."""
    rng = random.Random(1)
    meds = [statistics.median(rng.choices(v, k=len(v))) for _ in range(resamples)]
    return [percentile(meds, 0.025), percentile(meds, 0.975)]


def cost(a, state, log):
    """Section 1: paired, interleaved runs with and without the proxy."""
    base = [a.airlock, "run", "--no-audit", "--state", state, "--lang", "python", "-c", "pass"]
    on = base[:2] + ["--allow-net", "127.0.0.1:1"] + base[2:]
    for argv in (base, on):
        p = subprocess.run(argv + ["--json"], capture_output=True, env=CLEAN_ENV, timeout=120)
        try:
            st = json.loads(p.stdout).get("status")
        except ValueError:
            st = None
        if p.returncode != 0 or st != "ok":
            return {"error": "%s: exit %s, %s" % (" ".join(argv[1:]), p.returncode,
                                                  (p.stderr or p.stdout)[-300:].decode("utf-8", "replace"))}
    diffs, off_ms, on_ms = [], [], []
    for i in range(a.warmup + a.pairs):
        pair = [(False, base), (True, on)]
        if i % 2:
            pair.reverse()
        t = {}
        for with_proxy, argv in pair:
            ms, rc = spawn_ms(argv)
            if rc != 0:
                return {"error": "%s: exit %s while timing" % (" ".join(argv[1:]), rc)}
            t[with_proxy] = ms
        if i < a.warmup:
            continue
        off_ms.append(t[False])
        on_ms.append(t[True])
        diffs.append(t[True] - t[False])
    log("  %d pairs timed" % len(diffs))
    med = statistics.median(diffs)
    ci = median_ci95(diffs)
    return {"pairs": len(diffs), "median_diff_ms": med, "ci95_ms": ci,
            "median_without_ms": statistics.median(off_ms), "median_with_ms": statistics.median(on_ms),
            "goal_ms": 0.5, "goal_met": med <= 0.5, "diffs_ms": diffs}


class Origin(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def origin_handler(body):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(SIZE))
            self.end_headers()
            left = SIZE
            try:
                while left:
                    n = min(left, len(body))
                    self.wfile.write(body[:n])
                    left -= n
            except OSError:
                pass

        def log_message(self, *args):
            pass

    return H


def curl_rate(p):
    """(MB/s, bytes) from curl -w '%{size_download} %{time_total}', or None."""
    try:
        size, t = p.strip().split()[-2:]
        size, t = int(float(size)), float(t)
    except ValueError:
        return None, 0
    return (size / t / 1e6 if t > 0 else None), size


def download(a, state, log):
    """Section 2: 100 MB through a run's proxy against the host directly."""
    if not os.access(CURL, os.X_OK):
        return {"error": "no %s on this host" % CURL}
    body = memoryview(os.urandom(CHUNK))
    srv = Origin(("127.0.0.1", 0), origin_handler(body))
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/big" % port
    fmt = "%{size_download} %{time_total}"
    direct = [CURL, "-sS", "--noproxy", "*", "-o", "/dev/null", "-w", fmt, url]
    inside = [a.airlock, "run", "--no-audit", "--state", state, "--lang", "bash", "--allow-net",
              "127.0.0.1:%d" % port, "--limit", "net_bytes_in=%d" % (2 * SIZE), "--timeout", "120",
              "--json", "-c", "curl -sS -o /dev/null -w '%s' %s" % (fmt, url)]
    res = {"size_bytes": SIZE, "direct_mb_s": [], "proxy_mb_s": []}
    try:
        for i in range(a.downloads):
            order = [("direct", direct), ("proxy", inside)]
            if i % 2:
                order.reverse()
            for name, argv in order:
                p = subprocess.run(argv, capture_output=True, env=CLEAN_ENV, timeout=300)
                out = p.stdout.decode("utf-8", "replace")
                if name == "proxy":
                    try:
                        r = json.loads(out)
                    except ValueError:
                        r = {}
                    if r.get("status") != "ok":
                        return dict(res, error="the run: %s %s %s" % (r.get("status"), r.get("limits_hit"),
                                                                      (r.get("stderr") or out)[-300:]))
                    out = r.get("stdout", "")
                rate, size = curl_rate(out)
                if p.returncode != 0 or rate is None or size != SIZE:
                    return dict(res, error="%s: exit %s, got %d bytes: %s" % (name, p.returncode, size,
                                                                              (out + p.stderr.decode())[-300:]))
                res[name + "_mb_s"].append(rate)
            log("  download %d: direct %.0f MB/s, through the proxy %.0f MB/s"
                % (i + 1, res["direct_mb_s"][-1], res["proxy_mb_s"][-1]))
    finally:
        srv.shutdown()
        srv.server_close()
    d, px = statistics.median(res["direct_mb_s"]), statistics.median(res["proxy_mb_s"])
    res.update({"direct_median_mb_s": d, "proxy_median_mb_s": px, "ratio": px / d if d else None,
                "goal_ratio": 0.5, "goal_met": bool(d) and px / d >= 0.5})
    return res


def report(res):
    lines = ["# Egress proxy benchmark", ""]
    c = res["cost"]
    lines.append("## Enabling the proxy on a run that makes no connection")
    if "error" in c:
        lines.append("not measured: " + c["error"])
    else:
        lines += ["python -c pass: %.2f ms without --allow-net, %.2f ms with (medians, %d pairs)"
                  % (c["median_without_ms"], c["median_with_ms"], c["pairs"]),
                  "cost: median of the paired differences %+.3f ms, 95 %% CI [%+.3f, %+.3f] ms"
                  % (c["median_diff_ms"], c["ci95_ms"][0], c["ci95_ms"][1]),
                  "goal <= 0.5 ms: %s" % ("met" if c["goal_met"] else "NOT met")]
    lines += ["", "## A 100 MB download on loopback"]
    d = res["download"]
    if "error" in d:
        lines.append("not measured: " + d["error"])
    else:
        lines += ["direct (host curl): %.0f MB/s; through a run's proxy (curl in the run): %.0f MB/s "
                  "(medians of %d each)" % (d["direct_median_mb_s"], d["proxy_median_mb_s"],
                                            len(d["proxy_mb_s"])),
                  "through the proxy / direct: %.0f %%" % (100 * d["ratio"]),
                  "goal >= 50 %%: %s" % ("met" if d["goal_met"] else "NOT met")]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--airlock", default=os.path.join(os.path.dirname(HERE), "build", "airlock"))
    ap.add_argument("--out", help="write egress.json and egress.md here")
    ap.add_argument("--pairs", type=int, default=200, help="timed pairs for the cost (default 200)")
    ap.add_argument("--warmup", type=int, default=10, help="pairs thrown away first (default 10)")
    ap.add_argument("--downloads", type=int, default=5, help="downloads each way (default 5)")
    ap.add_argument("--quick", action="store_true", help="40 pairs, 2 downloads each way")
    a = ap.parse_args()
    if a.quick:
        a.pairs, a.warmup, a.downloads = 40, 4, 2
    a.airlock = os.path.abspath(a.airlock)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    state = tempfile.mkdtemp(prefix="al-bench-egress-")
    os.chmod(state, 0o700)
    try:
        log("egress: the cost of --allow-net on python -c pass")
        res = {"cost": cost(a, state, log)}
        log("egress: a 100 MB download, direct and through the proxy")
        res["download"] = download(a, state, log)
    except KeyboardInterrupt:
        shutil.rmtree(state, ignore_errors=True)
        return 130
    shutil.rmtree(state, ignore_errors=True)
    text = report(res)
    print(text, end="")
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "egress.json"), "w") as f:
            json.dump(res, f, indent=1)
        with open(os.path.join(a.out, "egress.md"), "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
