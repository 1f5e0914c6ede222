#!/usr/bin/python3
"""Audit-log benchmark: what recording every run costs, on this machine.

    python3 bench/audit.py --airlock build/airlock --append build/bench/audit-append
    make bench-audit                    # the same (also part of make bench)

  1. overhead per run: `airlock run` with the audit log (the default) and
     with --no-audit, interleaved round by round on the same workloads;
     median of each, median of the paired differences with a bootstrap 95%
     interval. The started record is written while the sandbox builds its
     root (the sandbox waits for it before any code goes in); the finished
     record after the run.
  2. append rate: one writer appending durable records (SQLite WAL,
     synchronous=FULL: each commit is on disk when it returns), as runs
     write them (a started and a finished record per execution).
  3. verify rate: `airlock audit verify` over the store made in 2.

Everything happens in a fresh state directory under --out; the host's is
never touched. Reports, never asserts.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BENCH_LANGUAGES = os.path.join(HERE, "languages.json")

WORKLOADS = {
    "true": ["--languages", BENCH_LANGUAGES, "--lang", "true", "-c", ""],
    "python": ["--lang", "python", "-c", "pass"],
}


def timed(argv, env):
    t = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    dt = (time.perf_counter() - t) * 1000
    if p.returncode != 0:
        raise RuntimeError("%s exited %d" % (" ".join(argv), p.returncode))
    return dt


def bootstrap_ci(diffs, n=2000):
    meds = sorted(statistics.median(random.choices(diffs, k=len(diffs))) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--airlock", default=os.path.join(REPO, "build", "airlock"))
    ap.add_argument("--append", default=os.path.join(REPO, "build", "bench", "audit-append"),
                    help="the audit-append helper (make build/bench/audit-append)")
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench"))
    ap.add_argument("--rounds", type=int, default=150, help="interleaved rounds per workload")
    ap.add_argument("--records", type=int, default=20000, help="records appended for the rates")
    ap.add_argument("--quick", action="store_true", help="40 rounds, 4000 records")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.records = 40, 4000
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="audit-bench-", dir=a.out)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "AIRLOCK_STATE": os.path.join(work, "state")}
    res = {"rounds": a.rounds, "records": a.records, "overhead": {}}
    try:
        # 1. overhead per run
        for name, args in WORKLOADS.items():
            base = [a.airlock, "run", "-q"] + args
            for _ in range(3):  # warm-up: caches, the store's creation
                timed(base, env)
                timed(base + ["--no-audit"], env)
            audited, plain, diffs = [], [], []
            for _ in range(a.rounds):
                order = [True, False]
                random.shuffle(order)
                t = {}
                for audit in order:
                    t[audit] = timed(base if audit else base + ["--no-audit"], env)
                audited.append(t[True])
                plain.append(t[False])
                diffs.append(t[True] - t[False])
            lo, hi = bootstrap_ci(diffs)
            res["overhead"][name] = {
                "no_audit_ms": statistics.median(plain), "audit_ms": statistics.median(audited),
                "diff_ms": statistics.median(diffs), "diff_ci95": [lo, hi]}
        # the gate's share, from --timing (how long the supervisor waited)
        gates = []
        for _ in range(20):
            p = subprocess.run([a.airlock, "run", "--json", "--timing"] + WORKLOADS["python"],
                               capture_output=True, env=env)
            gates.append(json.loads(p.stdout)["timing"]["gate_ms"])
        res["gate_ms_median"] = statistics.median(gates)
        # 2. append rate, in a store of its own
        store = os.path.join(work, "append")
        out = subprocess.run([a.append, store, str(a.records)], capture_output=True, text=True, check=True)
        ap_res = json.loads(out.stdout)
        res["append_per_s"] = ap_res["records"] / ap_res["seconds"]
        # 3. verify rate over that store (best of 3: a read-only walk)
        best = None
        for _ in range(3):
            p = subprocess.run([a.airlock, "audit", "verify", "--json", "--state", store],
                               capture_output=True, text=True, env=env)
            v = json.loads(p.stdout)
            if not v["ok"]:
                raise RuntimeError("verify failed: %s" % v)
            best = v["ms"] if best is None else min(best, v["ms"])
        res["verify_records"] = v["records"]
        res["verify_per_s"] = v["records"] / (best / 1000)
    finally:
        shutil.rmtree(work, True)

    lines = ["## Audit log", "",
             "airlock run with the audit log (default) vs --no-audit, %d interleaved rounds each:" % a.rounds, "",
             "| workload | --no-audit median | audited median | added (median of pairs) | 95% CI |",
             "|---|---:|---:|---:|---|"]
    for name, o in res["overhead"].items():
        lines.append("| %s | %.2f ms | %.2f ms | %+.2f ms | %+.2f .. %+.2f ms |" % (
            name, o["no_audit_ms"], o["audit_ms"], o["diff_ms"], o["diff_ci95"][0], o["diff_ci95"][1]))
    lines += ["",
              "The supervisor waited %.2f ms (median) at the gate for the started record, "
              "which it writes while the sandbox builds its root." % res["gate_ms_median"], "",
              "| store | rate |", "|---|---:|",
              "| append, durable, one writer (%d records) | %.0f records/s |" % (a.records, res["append_per_s"]),
              "| verify (%d records) | %.0f records/s |" % (res["verify_records"], res["verify_per_s"]), ""]
    md = "\n".join(lines)
    with open(os.path.join(a.out, "audit.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "audit.json"), "w") as f:
        json.dump(res, f, indent=2)
    print(md)


if __name__ == "__main__":
    sys.exit(main())
