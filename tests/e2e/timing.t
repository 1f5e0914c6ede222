#!/usr/bin/python3
"""The per-phase timing breakdown (--timing) and the teardown that happens
after the result: what a user reads to see where a run's time went, and
the promise that leaving the teardown for later leaves nothing behind.
No test here asserts a duration: only presence, consistency and order."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, diag  # noqa: E402
from airlock import BIN, run, slot_busy  # noqa: E402

PHASES = ["prepare_ms", "cgroup_ms", "clone_ms", "namespaces_ms", "idmap_ms", "attach_ms", "gate_ms",
          "mounts_ms", "net_wait_ms", "inputs_ms", "lockdown_ms", "seccomp_ms", "run_ms",
          "exit_ms", "collect_ms", "teardown_ms", "setup_ms", "total_ms"]
# the process around the run (the CLI's): before al_run, after it, and the
# CLOCK_MONOTONIC readings at main's entry and at the result
PROCESS = ["startup_ms", "loader_cpu_ms", "main_ms", "args_ms", "check_ms", "audit_open_ms",
           "audit_started_ms", "audit_finish_ms", "output_ms", "main_total_ms", "process_ms",
           "at_main_ms", "at_result_ms"]
EPS = 0.01  # each field is rounded to the microsecond

# --- the breakdown --------------------------------------------------------
rc, r = run("sh", "echo hi", "--timing")
t = r.get("timing", {})
ok(r["status"] == "ok" and sorted(t) == sorted(PHASES + PROCESS), "--timing reports every phase", r)
ok(all(isinstance(t.get(k), (int, float)) and t[k] >= 0 for k in PHASES + PROCESS),
   "every phase is a number >= 0 (ms)", t)
# What must hold whatever the machine: the code ran, the filter was loaded,
# the sandbox's own steps took time, and the parts fit into the whole.
ok(t.get("run_ms", 0) > 0 and t.get("seccomp_ms", 0) > 0 and t.get("mounts_ms", 0) > 0
   and t.get("clone_ms", 0) > 0 and t.get("lockdown_ms", 0) >= t.get("seccomp_ms", 0),
   "the steps that always happen are measured (clone, mounts, filter, run)", t)
ok(t.get("prepare_ms", 0) + t.get("clone_ms", 0) <= t.get("setup_ms", 0) <= t.get("total_ms", 0)
   and t.get("run_ms", 0) <= t.get("total_ms", 0),
   "setup (start to the code's execve) lies within total; run within total", t)


# The process's phases: the start before main was measured, and from main's
# entry on the parts follow one another inside the whole.
ok(t.get("startup_ms", 0) > 0 and t.get("loader_cpu_ms", 0) > 0,
   "the time before the run is measured: startup (from /proc starttime) and the loader's CPU", t)
ok(t.get("args_ms", 0) + t.get("check_ms", 0) <= t.get("main_ms", 0) + EPS,
   "argument parsing and the static check lie within main_ms", t)
parts = sum(t.get(k, 0) for k in ("main_ms", "total_ms", "audit_finish_ms", "output_ms"))
ok(t.get("audit_finish_ms", 0) > 0 and parts <= t.get("main_total_ms", 0) + 4 * EPS,
   "main -> run -> finished record -> output add up to at most main_total_ms (%.3f <= %.3f)"
   % (parts, t.get("main_total_ms", -1)), t)
ok(abs(t.get("at_result_ms", 0) - t.get("at_main_ms", 0) - t.get("main_total_ms", -1)) <= 2 * EPS
   and t.get("process_ms", 0) >= t.get("main_total_ms", 1e9) - EPS
   and t.get("startup_ms", 1e9) <= t.get("process_ms", 0) + EPS,
   "main_total_ms is the span of the two clock readings; process_ms contains it and startup_ms", t)

# The clock readings are CLOCK_MONOTONIC, the caller's clock: they fall
# between the caller's spawn and its wait (what the bench uses to measure
# exec -> main and result -> exit from outside).
t_spawn = time.monotonic() * 1000
p = subprocess.run([BIN, "run", "--json", "--timing", "--lang", "sh", "-c", "true"],
                   capture_output=True, timeout=60)
t_wait = time.monotonic() * 1000
try:
    t = json.loads(p.stdout).get("timing", {})
except ValueError:
    t = {}
ok(t_spawn <= t.get("at_main_ms", 0) <= t.get("at_result_ms", 0) <= t_wait,
   "spawn <= at_main_ms <= at_result_ms <= wait, on the caller's CLOCK_MONOTONIC", (t_spawn, t, t_wait))

rc, r = run("sh", "echo hi")
ok(r["status"] == "ok" and "timing" not in r, "without --timing there is no timing object", r)

# A program that sleeps: its time is in run_ms, not in airlock's setup.
rc, r = run("sh", "sleep 0.3", "--timing")
t = r.get("timing", {})
ok(r["status"] == "ok" and t.get("run_ms", 0) >= 300 and t.get("setup_ms", 1e9) < t.get("run_ms", 0),
   "a 0.3 s sleep is counted in run_ms (%.1f ms), not in setup_ms (%.1f ms)"
   % (t.get("run_ms", -1), t.get("setup_ms", -1)), t)

# C: the compile sandbox is part of the preparation of the run.
rc, r = run("c", "int main(void){return 0;}", "--timing")
t = r.get("timing", {})
ok(r["status"] == "ok" and t.get("prepare_ms", 0) >= r.get("compile", {}).get("wall_ms", 1e9),
   "for C, prepare_ms includes the compile sandbox (%s ms >= compile wall %s ms)"
   % (t.get("prepare_ms"), r.get("compile", {}).get("wall_ms")), t)


# --- teardown after the result ---------------------------------------------
def airlock_cgroups():
    found = []
    for dp, dn, fn in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(dp, d) for d in dn if d.startswith("airlock-") and not slot_busy(d)]
    return found


rc, r = run("sh", "exit 0")
if os.geteuid() == 0 and r["protections"].get("cgroup", {}).get("version") in ("v1", "v2"):
    # The run's cgroup and namespaces are freed by a child after airlock
    # has printed the result and exited; within a moment they are gone.
    p = subprocess.run([BIN, "run", "--json", "--lang", "sh", "-c", "echo done"],
                       capture_output=True, timeout=60)
    t_exit = time.time()
    res = json.loads(p.stdout)
    uid = res["protections"].get("host_uid", 0)
    slot = uid - 1660000000
    deadline = t_exit + 5
    left = [c for c in airlock_cgroups() if re.search(r"airlock-slot%d$" % slot, c)]
    while left and time.time() < deadline:
        time.sleep(0.01)
        left = [c for c in airlock_cgroups() if re.search(r"airlock-slot%d$" % slot, c)]
    ok(p.returncode == 0 and res["status"] == "ok" and not left,
       "the run's cgroup (slot %d) is removed after airlock exits (%.0f ms later)"
       % (slot, (time.time() - t_exit) * 1000), left)

    # Many runs back to back: each finds its slot clean, and the teardown
    # children never pile up into a leftover.
    codes = []
    for i in range(20):
        q = subprocess.run([BIN, "run", "--lang", "sh", "-c", "exit 0"], capture_output=True, timeout=60)
        codes.append(q.returncode)
    deadline = time.time() + 5
    while airlock_cgroups() and time.time() < deadline:
        time.sleep(0.02)
    ok(codes == [0] * 20 and not airlock_cgroups(),
       "20 runs back to back: all ok, and no airlock-* cgroup is left a moment later", (codes, airlock_cgroups()))
else:
    ok(True, "# SKIP cgroup teardown checks need root and a cgroup hierarchy")
    ok(True, "# SKIP cgroup teardown checks need root and a cgroup hierarchy")

done()
