"""Host-side observation for the attack tests: what is running on the host,
what a run cost the host, bounded waits. Standard library only."""
import concurrent.futures
import json
import os
import subprocess
import threading
import time

from airlock import BIN, VIA, session_argv, session_result

SLOT_UID_LO, SLOT_UID_HI = 1660000000, 1660000256


def _read(path, mode="rb"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def _sandbox_pids(below=None):
    """(pid, host uid) of every host process with a sandbox uid (only
    processes descending from pid BELOW, when given)."""
    mine = descendants(below) if below else None
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or (mine is not None and int(pid) not in mine):
            continue
        try:
            uid = os.stat("/proc/" + pid).st_uid
        except OSError:
            continue
        if SLOT_UID_LO <= uid < SLOT_UID_HI:
            yield int(pid), uid


def sandbox_tasks(below=None):
    """{host uid: number of tasks (threads included)} for the sandbox uids
    (only processes descending from pid BELOW, when given)."""
    count = {}
    for pid, uid in _sandbox_pids(below):
        try:
            count[uid] = count.get(uid, 0) + len(os.listdir("/proc/%d/task" % pid))
        except OSError:
            continue
    return count


def become_subreaper():
    """Make this process the reaper of its orphaned descendants, so that
    anything one of our airlock runs leaves behind stays below us (and other
    people's concurrent airlock runs on the same host can be told apart)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


def parents():
    """{pid: ppid} of every host process."""
    pp = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            stat = _read("/proc/%s/stat" % pid, "r")
            if stat and ")" in stat:
                pp[int(pid)] = int(stat.rsplit(")", 1)[1].split()[1])
    return pp


def descendants(root):
    """Host pids below ROOT (not ROOT itself)."""
    pp = parents()
    out = set()
    for pid in pp:
        p, seen = pid, 0
        while p in pp and p > 1 and seen < 4096:
            p = pp[p]
            seen += 1
            if p == root:
                out.add(pid)
                break
    return out


def sandbox_procs(below=None):
    """[(pid, uid, state, argv0)] of every host process with a sandbox uid
    (only those descending from pid BELOW, when given)."""
    found = []
    for pid, uid in _sandbox_pids(below):
        stat = _read("/proc/%d/stat" % pid, "r") or ""
        state = stat.rsplit(")", 1)[1].split()[0] if ")" in stat else "?"
        argv0 = (_read("/proc/%d/cmdline" % pid) or b"").split(b"\0")[0]
        found.append((pid, uid, state, argv0.decode(errors="replace")))
    return found


def procs_with(marker):
    """Host pids whose command line contains MARKER anywhere (not this one)."""
    m = marker.encode()
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            cmd = _read("/proc/%s/cmdline" % pid)
            if cmd and m in cmd:
                found.append((int(pid), cmd.replace(b"\0", b" ")[:200].decode(errors="replace")))
    return found


def reap_orphans():
    """Collect exit statuses of orphans reparented to us (call only when no
    subprocess of ours is running: it would steal their statuses)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def leftovers():
    """Processes still below this test once all its airlock runs are over
    (as a subreaper, whatever a run left behind would be here), after a
    bounded wait: [(pid, uid, state, argv0)]."""
    def left():
        reap_orphans()
        found = []
        for pid in descendants(os.getpid()):
            stat = _read("/proc/%d/stat" % pid, "r") or ""
            argv0 = (_read("/proc/%d/cmdline" % pid) or b"").split(b"\0")[0]
            try:
                uid = os.stat("/proc/%d" % pid).st_uid
            except OSError:
                continue
            state = stat.rsplit(")", 1)[1].split()[0] if ")" in stat else "?"
            found.append((pid, uid, state, argv0.decode(errors="replace")))
        return found
    wait_until(lambda: not left(), 5)
    return left()


def wait_until(pred, timeout, interval=0.05):
    """Poll PRED until it returns a true value or TIMEOUT seconds pass;
    returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def run_measured(lang, code, *flags, stdin=None, timeout=120, env=None, pass_fds=(), started=None):
    """Run airlock --json, watched from the host. Returns (exit code, result
    dict, wall seconds); run_full() also returns the rusage of airlock and of
    everything it reaped, i.e. the whole sandbox. STARTED(pid) is called
    with airlock's pid once it runs. PASS_FDS are inherited by airlock."""
    rc, r, dt, ru = run_full(lang, code, *flags, stdin=stdin, timeout=timeout, env=env,
                             pass_fds=pass_fds, started=started)
    return rc, r, dt


def run_full(lang, code, *flags, stdin=None, timeout=120, env=None, pass_fds=(), started=None):
    args = [BIN, "run", "--json", "--lang", lang, "-c", code] + list(flags)
    if VIA == "session":
        # the code as the one cell of a session (airlock.session_argv);
        # airlock repl is then the process watched and waited for
        args, stdin = session_argv(lang, code, flags, stdin)
    # (VIA warm: these probes watch the airlock process itself, so they
    # run one-shot from the CLI; a warm run is served over HTTP)
    t0 = time.monotonic()
    p = subprocess.Popen(args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, pass_fds=pass_fds)
    if started:
        started(p.pid)
    bufs = {}

    def drain(name, f):
        bufs[name] = f.read()
        f.close()
    ts = [threading.Thread(target=drain, args=("out", p.stdout)),
          threading.Thread(target=drain, args=("err", p.stderr))]
    for t in ts:
        t.start()
    if stdin is not None:
        try:
            p.stdin.write(stdin)
        except BrokenPipeError:
            pass
        p.stdin.close()
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    _, status, ru = os.wait4(p.pid, 0)
    killer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    out, err = bufs.get("out", b""), bufs.get("err", b"")
    if VIA == "session":
        rc, r = session_result(p.returncode, out, err)
        return rc, r, dt, ru
    try:
        r = json.loads(out)
    except ValueError:
        r = {"status": "<no json>", "raw_stdout": out[-2000:], "raw_stderr": err[-2000:]}
    return p.returncode, r, dt, ru


def parallel(fn, items, workers=3):
    """[fn(item) for item in items], run on WORKERS threads."""
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(fn, items))


def short(r, keys=("status", "reason", "exit_code", "signal", "limits_hit", "stdout", "stderr")):
    """The interesting part of a result, for diagnostics."""
    if not isinstance(r, dict):
        return r
    d = {k: r.get(k) for k in keys if k in r}
    for k in ("stdout", "stderr"):
        if isinstance(d.get(k), str) and len(d[k]) > 1500:
            d[k] = d[k][:700] + " ... " + d[k][-700:]
    for k in ("raw_stdout", "raw_stderr", "raw", "err"):
        if k in r:
            d[k] = r[k]
    return d
