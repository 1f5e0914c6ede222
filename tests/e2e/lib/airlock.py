"""Run build/airlock the way a user would, and look at the host afterwards."""
import fcntl
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("AIRLOCK_BIN") or os.path.join(REPO, "build", "airlock")

if not os.access(BIN, os.X_OK):
    print("Bail out! %s is missing: run `make build/airlock` first" % BIN)
    sys.exit(255)

# Every run is audited: each test file gets a state directory of its own
# (removed at exit), so tests neither read nor fill the host's.
if not os.environ.get("AIRLOCK_STATE"):
    import atexit
    import shutil
    import tempfile
    _STATE = tempfile.mkdtemp(prefix="al-test-state-")
    os.environ["AIRLOCK_STATE"] = _STATE
    atexit.register(shutil.rmtree, _STATE, True)
STATE = os.environ["AIRLOCK_STATE"]

# host uids of the sandboxes when airlock runs as root: 1660000000 + slot
SLOT_UID_LO, SLOT_UID_HI = 1660000000, 1660000256
_HZ = os.sysconf("SC_CLK_TCK")


def run_raw(args, stdin=None, timeout=120, env=None):
    """airlock ARGS... -> CompletedProcess (bytes)."""
    return subprocess.run([BIN] + list(args), input=stdin, capture_output=True,
                          timeout=timeout, env=env)


def run(lang, code, *flags, stdin=None, timeout=120, env=None):
    """airlock run --json --lang LANG -c CODE FLAGS... -> (exit code, dict).

    When airlock prints no JSON the dict still has status ("<no json>") and
    the usual keys, so assertions fail instead of crashing."""
    p = run_raw(["run", "--json", "--lang", lang, "-c", code] + list(flags),
                stdin=stdin, timeout=timeout, env=env)
    try:
        r = json.loads(p.stdout)
        if not isinstance(r, dict):
            raise ValueError("not an object")
    except ValueError:
        r = {"status": "<no json>", "raw_stdout": p.stdout[-2000:].decode("utf-8", "replace"),
             "raw_stderr": p.stderr[-2000:].decode("utf-8", "replace")}
    for k, v in (("stdout", ""), ("stderr", ""), ("limits_hit", []), ("files", []),
                 ("reason", ""), ("protections", {})):
        r.setdefault(k, v)
    return p.returncode, r


def uptime():
    """Seconds since boot, the clock of /proc/PID/stat's start time."""
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def host_procs():
    """[(pid, uid, start seconds since boot, state, argv)] of every host process."""
    procs = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            uid = os.stat("/proc/" + pid).st_uid
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
        except (OSError, IndexError):
            continue
        procs.append((int(pid), uid, int(fields[19]) / _HZ, fields[0], argv))
    return procs


def procs_of_uid(uid, started_before=None):
    """Host processes running as UID (started no later than STARTED_BEFORE,
    an uptime() value: a later run may legitimately reuse the slot)."""
    return [p for p in host_procs()
            if p[1] == uid and (started_before is None or p[2] <= started_before + 0.02)]


def sandbox_uid_procs():
    return [p for p in host_procs() if SLOT_UID_LO <= p[1] < SLOT_UID_HI]


def procs_with_argv0(marker):
    return [p for p in host_procs() if p[4] and p[4][0] == marker]


STATE_DIR = "/run/airlock"   # slot locks of root-mode runs


def slot_busy(cgroup_name):
    """Whether a live run holds the slot of the cgroup named airlock-slotN:
    others may run airlock on this machine at the same time, and theirs
    are not leftovers of ours."""
    m = re.fullmatch(r"airlock-slot(\d+)", cgroup_name)
    if not m:
        return False
    try:
        fd = os.open(os.path.join(STATE_DIR, "slot-%s.lock" % m.group(1)), os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def procs_left_by(uid, t_start, t_end, wait=3.0):
    """Host processes of sandbox uid UID started while our run was on
    (t_start <= start <= t_end, uptime() values). The slot's lock is taken
    first, so that no later run of someone else holds that uid meanwhile.
    None when the slot stays busy for WAIT seconds (cannot tell)."""
    if not (SLOT_UID_LO <= uid < SLOT_UID_HI):
        return procs_of_uid(uid, t_end)
    try:
        fd = os.open(os.path.join(STATE_DIR, "slot-%d.lock" % (uid - SLOT_UID_LO)),
                     os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        deadline = time.time() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    return None
                time.sleep(0.02)
        return [p for p in procs_of_uid(uid, t_end) if p[2] >= t_start - 0.02]
    finally:
        os.close(fd)
