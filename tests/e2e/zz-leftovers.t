#!/usr/bin/python3
"""Runs last: after every other test, nothing of any sandbox is left on the
host - no process of a sandbox uid, no mount, no cgroup, no temp dir."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done  # noqa: E402
from airlock import run  # noqa: E402

# one more run whose sandbox tries to leave things behind
rc, r = run("bash", "(setsid sleep 1000 &) ; mkdir -p /tmp/x /workspace/y; echo x > /dev/shm/z")
ok(r["status"] == "ok", "a last run that tries to leave things behind", r)

def sandbox_procs():
    procs = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                uid = os.stat("/proc/" + pid).st_uid
                with open("/proc/%s/stat" % pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if 1660000000 <= uid < 1660000256:
                procs.append((pid, state))
    return procs


# A sandbox whose supervisor was SIGKILLed (cli.t does that) is killed at
# once but reaped by the host's init, which may take a moment: give the
# zombies up to 5 s, then nothing may remain.
deadline = time.time() + 5
while sandbox_procs() and time.time() < deadline:
    time.sleep(0.1)
ok(not sandbox_procs(), "no process with a sandbox uid (1660000000+slot) is left", sandbox_procs())

with open("/proc/self/mountinfo") as f:
    mounts = [l for l in f if "airlock" in l]
ok(not mounts, "no mount mentioning airlock in the host's mount table", mounts)

cgs = []
for dp, dn, fn in os.walk("/sys/fs/cgroup"):
    cgs += [os.path.join(dp, d) for d in dn if d.startswith("airlock-")]
ok(not cgs, "no airlock-* cgroup directory under /sys/fs/cgroup", cgs)

tmps = [d for d in os.listdir("/tmp") if d.startswith("airlock") and not d.startswith("airlock-e2e")]
ok(not tmps, "no /tmp/airlock* directory", tmps)
done()
