#!/usr/bin/python3
"""Runs last (prove sorts it after the others): after every other test,
nothing of any sandbox is left on the host - no process of a sandbox uid,
no mount, no cgroup, no temp dir.

Other people may run airlock on this machine at the same moment: a slot
whose lock (/run/airlock/slot-N.lock) is held belongs to a live run, and
its uid and cgroup are not counted; every slot whose lock this test can
take must be completely clean."""
import fcntl
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, diag  # noqa: E402
from airlock import run, sandbox_uid_procs, SLOT_UID_LO, SLOT_UID_HI  # noqa: E402

ROOT = os.geteuid() == 0
STATE = "/run/airlock" if ROOT else (os.environ.get("XDG_RUNTIME_DIR", "/tmp") + "/airlock"
                                     if os.environ.get("XDG_RUNTIME_DIR", "").startswith("/") else "/tmp/airlock")

# one more run whose sandbox tries to leave things behind
rc, r = run("bash", "(setsid sleep 1000 &); (trap '' HUP TERM; nohup sleep 1000 &) ; "
            "mkdir -p /tmp/x /workspace/y; echo x > /dev/shm/z; echo done")
ok(r["status"] == "ok" and r["stdout"] == "done\n", "a last run that tries to leave things behind", r)


class Slots:
    """Take every free slot lock; what stays locked is a live run."""

    def __init__(self):
        self.fds, self.busy = {}, set()

    def __enter__(self):
        if os.path.isdir(STATE):
            for name in os.listdir(STATE):
                m = re.fullmatch(r"slot-(\d+)\.lock", name)
                if not m:
                    continue
                try:
                    fd = os.open(os.path.join(STATE, name), os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
                except OSError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self.fds[int(m.group(1))] = fd
                except OSError:
                    os.close(fd)
                    self.busy.add(int(m.group(1)))
        return self

    def __exit__(self, *a):
        for fd in self.fds.values():
            os.close(fd)


def cgroup_dirs():
    found = []
    for dp, dn, fn in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(dp, d) for d in dn if d.startswith("airlock-")]
    return found


def live_owner(path, busy):
    """A cgroup of a live run: airlock-slotN with N busy, or (ordinary user)
    airlock-PID-SEQ with PID an airlock process that is still running."""
    name = os.path.basename(path)
    m = re.fullmatch(r"airlock-slot(\d+)", name)
    if m:
        return int(m.group(1)) in busy
    m = re.fullmatch(r"airlock-(\d+)-\d+", name)
    if m:
        try:
            with open("/proc/%s/cmdline" % m.group(1), "rb") as f:
                return b"airlock" in f.read().split(b"\0")[0]
        except OSError:
            return False
    return False


def leftovers():
    with Slots() as slots:
        procs = [p for p in sandbox_uid_procs() if p[1] - SLOT_UID_LO not in slots.busy]
        cgs = [c for c in cgroup_dirs() if not live_owner(c, slots.busy)]
        return slots.busy, procs, cgs


# A sandbox whose supervisor was SIGKILLed (cli.t does that) is killed at
# once but reaped by the host's init, which may take a moment: give it up
# to 5 s, then nothing may remain.
deadline = time.time() + 5
busy, procs, cgs = leftovers()
while (procs or cgs) and time.time() < deadline:
    time.sleep(0.2)
    busy, procs, cgs = leftovers()
if busy:
    diag("slots in use by live runs (not counted): %s" % sorted(busy))
ok(not procs, "no process with a sandbox uid (%d..%d) is left" % (SLOT_UID_LO, SLOT_UID_HI - 1),
   "\n".join("pid %d uid %d state %s argv %s" % (p[0], p[1], p[3], p[4]) for p in procs))

with open("/proc/self/mountinfo") as f:
    mounts = [l for l in f if "airlock" in l]
ok(not mounts, "no mount mentioning airlock in the host's mount table", "".join(mounts))

ok(not cgs, "no airlock-* cgroup directory left under /sys/fs/cgroup", "\n".join(cgs))

# cli.t keeps its own inputs in /tmp/airlock-e2e-*; airlock's own would be /tmp/airlock*
tmps = [d for d in os.listdir("/tmp") if d.startswith("airlock") and not d.startswith("airlock-e2e")]
# as an ordinary user without XDG_RUNTIME_DIR the slot locks live in /tmp/airlock: that is state, not a leftover
if STATE == "/tmp/airlock" and "airlock" in tmps and all(re.fullmatch(r"slot-\d+\.lock", n) for n in os.listdir(STATE)):
    tmps.remove("airlock")
ok(not tmps, "no /tmp/airlock* directory", tmps)
done()
