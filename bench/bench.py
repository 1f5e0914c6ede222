#!/usr/bin/python3
"""Cold-start benchmark: airlock next to the bare runtime and the sandboxing
peers found on this machine, on the same workloads, in one run.

    python3 bench/bench.py --airlock build/airlock --out build/bench
    make bench                            # the same, after installing the peers

What it does (bench/README.md has the details and every peer's profile):

  1. host facts: CPU, cores, kernel, Debian, cgroup version, favordynmods,
     the measured cost of one cgroup v1 migration (as root);
  2. checks every runner on every workload once (exit 0; airlock's JSON
     status "ok"); a runner that cannot run here is listed with the reason
     and never timed;
  3. latency: interleaved rounds (bare airlock unshare bwrap ... again and
     again), timed from posix_spawn to waitpid; median, p90, overhead over
     bare and ratio;
  4. throughput: N workers (one per core) looping one workload for a fixed
     time, one runner at a time;
  5. airlock's active protection layers (one --json run) and its per-phase
     breakdown (median of --timing runs).

Writes results.md, results.json and latency.png under --out and prints
results.md. Never fails because something is slow: it reports, it does not
assert. Python 3 stdlib only; matplotlib (Debian's python3-matplotlib) for
the plot, skipped with a message when it is missing.
"""

import argparse
import hashlib
import json
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BENCH_LANGUAGES = os.path.join(HERE, "languages.json")

# The one environment every runner (and so every workload) gets: nothing
# from the caller's environment leaks in (no NODE_EXTRA_CA_CERTS, no
# PYTHON* variables, no pyenv shims on PATH).
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}

PY = "/usr/bin/python3"  # Debian's interpreters, never whatever is on PATH
NODE = "/usr/bin/node"

RUN_TIMEOUT_S = 120.0  # a single run taking longer is killed (a hung runner)
FAIL_LIMIT_SHARE = 0.1  # a runner failing more than this share of rounds is dropped


# --- workloads ---------------------------------------------------------------

class Workload:
    """One thing to run: the argv every runner but airlock executes, and the
    airlock language + code that runs the same program inside airlock."""

    def __init__(self, name, argv, lang, code, round_share):
        self.name = name
        self.argv = argv
        self.lang = lang  # airlock --lang
        self.code = code  # airlock -c
        self.round_share = round_share  # share of --rounds this workload runs

    @property
    def label(self):
        # how the workload is shown in tables: the command line, shell-quoted
        return " ".join(a if a.replace("/", "").replace("-", "").isalnum() else "'%s'" % a
                        for a in self.argv)


WORKLOADS = {
    w.name: w for w in (
        Workload("true", ["/bin/true"], "true", "", 1.0),
        Workload("python", [PY, "-c", "pass"], "python", "pass", 1.0),
        Workload("node", [NODE, "-e", "0"], "node", "0", 1.0),
        # ~0.35 s per run: fewer rounds keep the default run near 3 minutes
        Workload("pandas", [PY, "-c", "import numpy, pandas"], "python", "import numpy, pandas", 0.4),
    )
}


# --- runners -----------------------------------------------------------------
# A runner turns a workload into the argv that is timed. Every runner's argv
# starts with an absolute path, resolved once, so the timed spawn does no
# PATH search.

class Runner:
    name = ""
    tool = None  # the executable that must be on PATH (None: always there)
    layers = ""  # what it puts around the workload, for the report

    def __init__(self):
        self.path = shutil.which(self.tool) if self.tool else None

    def installed(self):
        """None when the runner can be tried here, else why not."""
        if self.tool and not self.path:
            return "not installed (%s not on PATH)" % self.tool
        return None

    def prefix(self):
        """The argv before the workload's own argv."""
        return []

    def argv(self, w):
        return self.prefix() + w.argv

    def setup(self):
        """Once before the first run (isolate needs a box)."""

    def teardown(self):
        """Once at the end, also after an interruption."""


class Bare(Runner):
    name = "bare"
    layers = "none: the workload itself (the reference)"


class Airlock(Runner):
    name = "airlock"
    layers = ("everything airlock does by default: user/pid/mount/net/ipc/uts/cgroup/time namespaces, "
              "a fresh read-only root (pivot_root) with only the profile's paths, new /proc, minimal /dev, "
              "size-capped tmpfs workspace and /tmp, seccomp, no_new_privs, all capabilities dropped, "
              "setsid, rlimits, cgroup memory+pids+cpu limits, per-run uid (as root), the supervisor "
              "(wall clock, output caps); the code is written to a file in the workspace")

    def __init__(self, binary):
        super().__init__()
        self.path = binary  # a private copy of --airlock (see snapshot_airlock)

    def argv(self, w):
        extra = ["--languages", BENCH_LANGUAGES] if w.lang == "true" else []
        return [self.path, "run"] + extra + ["--lang", w.lang, "-c", w.code]


class Unshare(Runner):
    name = "unshare"
    tool = "unshare"
    layers = ("namespaces only (user with root mapped, pid, mount, net, ipc, uts) and a new /proc: "
              "a floor, not a sandbox (host filesystem writable, no filter, no limits)")

    def prefix(self):
        return [self.path, "--user", "--map-root-user", "--pid", "--fork", "--mount", "--net",
                "--ipc", "--uts", "--mount-proc", "--"]


class Bwrap(Runner):
    name = "bwrap"
    tool = "bwrap"
    layers = ("all namespaces (user, pid, mount, net, ipc, uts, cgroup), a fresh root with read-only "
              "/usr, the merged-/usr links and the /etc files airlock's profiles bind, new /proc, "
              "minimal /dev, tmpfs /tmp and workspace, all capabilities dropped, no_new_privs, new "
              "session, dies with its parent; no seccomp filter, no cgroups, no limits (none by default)")

    # The same /etc files airlock binds (languages/default.json: the base
    # paths plus the python profile's), so both sandboxes show the runtimes
    # the same filesystem. --ro-bind-try: missing ones are skipped, as in airlock.
    ETC = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
           "/etc/localtime", "/etc/mime.types", "/etc/python3", "/etc/python3.11",
           "/etc/matplotlibrc", "/etc/fonts"]

    def prefix(self):
        argv = [self.path, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--ro-bind", "/usr", "/usr"]
        # merged /usr: /bin -> usr/bin etc. become the same symlinks
        for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(d):
                argv += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                argv += ["--ro-bind", d, d]
        for f in self.ETC:
            argv += ["--ro-bind-try", f, f]
        argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                 "--tmpfs", "/workspace", "--chdir", "/workspace", "--clearenv"]
        for k, v in CLEAN_ENV.items():
            argv += ["--setenv", k, v]
        return argv + ["--"]


class Firejail(Runner):
    name = "firejail"
    tool = "firejail"
    layers = ("no profile, but its own layers on: pid, mount, net (none), ipc, uts namespaces (no user "
              "namespace as root: --noroot is not available to root), private tmpfs home and /tmp, "
              "private /dev, all capabilities dropped, no_new_privs, its default seccomp filter, no "
              "supplementary groups; host filesystem otherwise visible and not read-only, no cgroups")

    def prefix(self):
        return [self.path, "--quiet", "--noprofile", "--net=none", "--private", "--private-tmp",
                "--private-dev", "--caps.drop=all", "--nonewprivs", "--seccomp", "--nogroups", "--"]


class Nsjail(Runner):
    # Not in Debian 12; used only when someone installed it (untested here).
    name = "nsjail"
    tool = "nsjail"
    layers = ("one-shot mode, all namespaces, the host root read-only (--chroot /), new /proc, tmpfs "
              "/tmp, clean environment; no seccomp policy, no cgroups")

    def prefix(self):
        argv = [self.path, "--mode", "o", "--really_quiet", "--chroot", "/", "--tmpfsmount", "/tmp",
                "--cwd", "/tmp", "--time_limit", "0", "--rlimit_as", "inf", "--rlimit_fsize", "inf",
                "--rlimit_nofile", "256"]
        for k, v in CLEAN_ENV.items():
            argv += ["--env", "%s=%s" % (k, v)]
        return argv + ["--"]


class Isolate(Runner):
    # Not in Debian 12; used only when someone installed it (untested here).
    # A box is initialised once and reused for every run, as graders do.
    name = "isolate"
    tool = "isolate"
    layers = ("its box: pid, mount, net, ipc, uts namespaces, a chroot with read-only system "
              "directories, a box uid, rlimits; no seccomp filter, no cgroups (no --cg)")
    BOX = "97"

    def prefix(self):
        argv = [self.path, "--box-id=" + self.BOX, "--silent", "--processes=64", "--open-files=256"]
        for k, v in CLEAN_ENV.items():
            argv += ["--env=%s=%s" % (k, v)]
        return argv + ["--run", "--"]

    def setup(self):
        subprocess.run([self.path, "--box-id=" + self.BOX, "--init"], capture_output=True, timeout=60)

    def teardown(self):
        subprocess.run([self.path, "--box-id=" + self.BOX, "--cleanup"], capture_output=True, timeout=60)


PEERS = (Unshare, Bwrap, Firejail, Nsjail, Isolate)


# --- running processes -------------------------------------------------------

_STDIO_NULL = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]

# Children that are running right now: pid -> start time. The watchdog kills
# any that hangs; an interruption kills the rest.
_inflight = {}
_inflight_lock = threading.Lock()
_timed_out = set()


def spawn_ms(argv):
    """Run argv once (stdio on /dev/null, the clean environment) and return
    (wall ms from posix_spawn to waitpid, exit status or None if it could
    not be started). The same code path, hence the same overhead, for every
    runner."""
    try:
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, CLEAN_ENV, file_actions=_STDIO_NULL)
    except OSError:
        return None, None  # e.g. the binary is being rebuilt right now
    with _inflight_lock:
        _inflight[pid] = t0
    # (on an interruption here the pid stays in _inflight, to be killed)
    _, status = os.waitpid(pid, 0)
    ms = (time.perf_counter() - t0) * 1000.0
    with _inflight_lock:
        _inflight.pop(pid, None)
    if pid in _timed_out:  # killed by the watchdog
        _timed_out.discard(pid)
        return ms, "timeout"
    return ms, os.waitstatus_to_exitcode(status)


def _watchdog():
    """Kill any run that takes longer than RUN_TIMEOUT_S (daemon thread)."""
    while True:
        time.sleep(1.0)
        now = time.perf_counter()
        with _inflight_lock:
            late = [pid for pid, t0 in _inflight.items() if now - t0 > RUN_TIMEOUT_S]
        for pid in late:
            _timed_out.add(pid)
            _kill(pid, signal.SIGKILL)


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def kill_inflight():
    """After an interruption: SIGTERM the children still running (airlock
    then kills and removes its sandbox), SIGKILL what is left after 3 s,
    and reap them all."""
    with _inflight_lock:
        pids = list(_inflight)
    for pid in pids:
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3.0
    for pid in pids:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            if time.monotonic() > deadline:
                _kill(pid, signal.SIGKILL)
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                break
            time.sleep(0.05)
        with _inflight_lock:
            _inflight.pop(pid, None)


def excerpt(text, limit=300):
    """The last non-empty lines of a process's output, on one line."""
    lines = [l.strip() for l in text.decode("utf-8", "replace").splitlines() if l.strip()]
    s = " / ".join(lines[-3:])
    return s if len(s) <= limit else "..." + s[-limit:]


def run_capture(argv, timeout=RUN_TIMEOUT_S):
    """Run argv with the clean environment, capturing stdout and stderr."""
    return subprocess.run(argv, env=CLEAN_ENV, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout)


def check(runner, w):
    """Run runner on workload once, outside the timing. None if it works,
    else the reason (exit status and a stderr excerpt). airlock must also
    report status "ok" with --json."""
    argv = runner.argv(w)
    try:
        p = run_capture(argv)
    except subprocess.TimeoutExpired:
        return "no exit within %.0f s" % RUN_TIMEOUT_S
    except OSError as e:
        return "cannot start %s: %s" % (argv[0], e.strerror)
    if p.returncode != 0:
        return "exit %d: %s" % (p.returncode, excerpt(p.stderr or p.stdout) or "(no output)")
    if isinstance(runner, Airlock):
        try:
            p = run_capture(argv + ["--json"])
            res = json.loads(p.stdout)
        except (OSError, subprocess.TimeoutExpired, ValueError) as e:
            return "airlock --json: no result (%s)" % e
        if res.get("status") != "ok":
            return "airlock --json: status %s: %s %s" % (res.get("status"), res.get("reason", ""),
                                                         excerpt(res.get("stderr", "").encode()))
    return None


# --- host facts --------------------------------------------------------------

def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def cgroup_mounts():
    """[(mountpoint, fstype, options)] of the cgroup and cgroup2 mounts."""
    out = []
    for line in read("/proc/mounts").splitlines():
        f = line.split()
        if len(f) >= 4 and f[2] in ("cgroup", "cgroup2"):
            out.append((f[1], f[2], f[3].split(",")))
    return out


def cgroup_v1_migration_ms(samples):
    """Median ms of moving a sleeping process into a scratch cgroup v1 pids
    group (writing its pid to cgroup.procs), or (None, why not). Without
    favordynmods each such move waits for an RCU grace period. The scratch
    group and the sleepers are removed, also on an interruption."""
    if os.geteuid() != 0:
        return None, "not root"
    base = next((m for m, t, o in cgroup_mounts() if t == "cgroup" and "pids" in o), None)
    if not base:
        return None, "no cgroup v1 pids hierarchy"
    scratch = os.path.join(base, "airlock-bench-%d" % os.getpid())
    times = []
    try:
        os.mkdir(scratch)
        for _ in range(samples):
            sleeper = subprocess.Popen(["/bin/sleep", "60"], env=CLEAN_ENV)
            try:
                time.sleep(0.02)  # let it exec and settle
                t0 = time.perf_counter()
                with open(os.path.join(scratch, "cgroup.procs"), "w") as f:
                    f.write(str(sleeper.pid))
                times.append((time.perf_counter() - t0) * 1000.0)
            finally:
                sleeper.kill()
                sleeper.wait()
    except OSError as e:
        return None, "cannot use %s: %s" % (scratch, e.strerror)
    finally:
        # the group empties as soon as its last member is reaped; retry briefly
        for _ in range(100):
            try:
                os.rmdir(scratch)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)
    return statistics.median(times), None


def tool_version(argv):
    try:
        p = subprocess.run(argv, capture_output=True, timeout=10, env=CLEAN_ENV)
        lines = (p.stdout or p.stderr).decode("utf-8", "replace").strip().splitlines()
        return lines[0].strip()[:80] if lines else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def host_facts(migration_samples):
    h = {"cores": os.cpu_count(), "kernel": platform.release(), "machine": platform.machine()}
    cpu = [l.split(":", 1)[1].strip() for l in read("/proc/cpuinfo").splitlines()
           if l.startswith("model name")]
    h["cpu"] = cpu[0] if cpu else platform.processor() or "unknown"
    osr = dict(l.split("=", 1) for l in read("/etc/os-release").splitlines() if "=" in l)
    h["os"] = osr.get("PRETTY_NAME", "unknown").strip('"')
    h["debian_version"] = read("/etc/debian_version").strip() or None
    h["loadavg_at_start"] = read("/proc/loadavg").split()[:3]

    # cgroup version: v2 when /sys/fs/cgroup itself is cgroup2; v1 when
    # controllers sit on v1 hierarchies (a controller-less cgroup2 next to
    # them, as systemd's hybrid layout has, does not change that)
    mounts = cgroup_mounts()
    v1 = [m for m, t, o in mounts if t == "cgroup"]
    v2 = [m for m, t, o in mounts if t == "cgroup2"]
    if "/sys/fs/cgroup" in v2:
        h["cgroup_version"] = "v2"
    elif v1:
        h["cgroup_version"] = "v1" + (" (plus cgroup2 at %s)" % ", ".join(v2) if v2 else "")
    else:
        h["cgroup_version"] = "none"
    h["cgroup_mounts"] = [{"mountpoint": m, "type": t, "options": ",".join(o)} for m, t, o in mounts]

    # favordynmods: a mount option (cgroup2, and cgroup v1 on recent
    # kernels) or the kernel parameter cgroup_favordynmods=
    h["favordynmods_mounts"] = [m for m, t, o in mounts if "favordynmods" in o]
    cmd = [a for a in read("/proc/cmdline").split() if a.startswith("cgroup_favordynmods=")]
    h["favordynmods_cmdline"] = cmd[-1].split("=", 1)[1] if cmd else None
    h["favordynmods"] = bool(h["favordynmods_mounts"]) or (
        h["favordynmods_cmdline"] in ("1", "y", "Y", "yes", "true", "on"))
    h["cgroup_v1_migration_ms"], h["cgroup_v1_migration_note"] = cgroup_v1_migration_ms(migration_samples)

    h["versions"] = {k: tool_version(a) for k, a in (
        ("python3", [PY, "--version"]), ("node", [NODE, "--version"]),
        ("unshare", ["unshare", "--version"]), ("bwrap", ["bwrap", "--version"]),
        ("firejail", ["firejail", "--version"]))}
    return h


# --- airlock: the binary, its layers, its per-phase breakdown ------------------

def snapshot_airlock(src, workdir, wait_s=120):
    """Copy the airlock binary into workdir and return (copy, sha256). The
    whole benchmark runs this copy: a rebuild of build/airlock during the
    run then neither breaks it nor mixes two builds. Waits up to wait_s for
    a binary that is missing (being rebuilt)."""
    deadline = time.monotonic() + wait_s
    while not os.access(src, os.X_OK):
        if time.monotonic() > deadline:
            raise SystemExit("bench: %s is not there (build it: make)" % src)
        print("bench: waiting for %s ..." % src, file=sys.stderr, flush=True)
        time.sleep(2)
    dst = os.path.join(workdir, "airlock")
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dst)
    with open(dst, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return dst, digest


def git_state():
    """The repository's commit (and whether the tree has local changes)."""
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (rev + (" (with local changes)" if dirty else "")) or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def airlock_protections(al):
    """The protections object of one default run with --json."""
    try:
        p = run_capture(al.argv(WORKLOADS["python"]) + ["--json"])
        return json.loads(p.stdout).get("protections", {})
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}  # reported as "unknown"


# --timing's absolute CLOCK_MONOTONIC readings: used for with_wall, not a phase
CLOCK_READINGS = ("at_main_ms", "at_result_ms")
# more than this much of the wall not in airlock's own phases is flagged
UNACCOUNTED_FLAG_MS = 1.0


def with_wall(t, t0, t1):
    """One --timing object with the bench's view of the same run added: the
    wall (spawn to reaped, t0/t1 in CLOCK_MONOTONIC ms, which is the clock of
    airlock's at_main_ms and at_result_ms), what airlock's own phases account
    for (the loader's CPU before main, exact but a lower bound, plus main's
    entry to the result), the rest (unaccounted), and that rest split by the
    clock readings: spawn -> main and result -> exit (the exit path and the
    bench's reading of the output)."""
    t = dict(t)
    t["wall_ms"] = t1 - t0
    if isinstance(t.get("main_total_ms"), (int, float)):
        t["accounted_ms"] = t.get("loader_cpu_ms", 0) + t["main_total_ms"]
        t["unaccounted_ms"] = t["wall_ms"] - t["accounted_ms"]
    if isinstance(t.get("at_main_ms"), (int, float)) and isinstance(t.get("at_result_ms"), (int, float)):
        t["spawn_to_main_ms"] = t["at_main_ms"] - t0
        t["result_to_exit_ms"] = t1 - t["at_result_ms"]
    return t


def airlock_timing(al, workloads, runs, log):
    """{workload: {"runs": n, "failed": n, "samples": [timing...], "median_ms": {phase: ms}}}
    from RUNS runs with --json --timing each, each next to the wall time the
    bench measures around it (with_wall)."""
    out = {}
    for w in workloads:
        log("timing: airlock --timing x %d on %s" % (runs, w.label))
        samples, failed = [], 0
        for _ in range(runs):
            try:
                t0 = time.monotonic()
                p = run_capture(al.argv(w) + ["--json", "--timing"])
                t1 = time.monotonic()
                res = json.loads(p.stdout)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                res = {}
            if res.get("status") == "ok" and isinstance(res.get("timing"), dict):
                samples.append(with_wall(res["timing"], t0 * 1000.0, t1 * 1000.0))
            else:
                failed += 1
        phases = []  # in the order airlock prints them
        for s in samples:
            phases += [k for k in s if k not in phases and k not in CLOCK_READINGS]
        vals = {k: [s[k] for s in samples if isinstance(s.get(k), (int, float))] for k in phases}
        out[w.name] = {"runs": runs, "failed": failed, "samples": samples,
                       "median_ms": {k: statistics.median(v) for k, v in vals.items() if v},
                       "p90_ms": {k: percentile(v, 0.9) for k, v in vals.items() if v}}
    return out


# --- measuring ------------------------------------------------------------------

def latency(runners, w, rounds, warmup, log):
    """Interleaved rounds of every runner on workload w: in each round every
    runner runs once, in the same order (A B C A B C ...); the first WARMUP
    rounds are thrown away. Returns ({runner: [ms...]}, {runner: [failure...]},
    {runner: reason} for runners dropped because they kept failing)."""
    samples = {r.name: [] for r in runners}
    failures = {r.name: [] for r in runners}
    dropped = {}
    argvs = {r.name: r.argv(w) for r in runners}
    limit = max(3, int(FAIL_LIMIT_SHARE * rounds))
    log("latency: %s: %d rounds (+%d warm-up) x %s" % (w.label, rounds, warmup,
                                                      " ".join(r.name for r in runners)))
    for i in range(warmup + rounds):
        for r in runners:
            if r.name in dropped:
                continue
            ms, status = spawn_ms(argvs[r.name])
            if status != 0:
                failures[r.name].append("could not start" if status is None else
                                        "timeout" if status == "timeout" else "exit %d" % status)
                if len(failures[r.name]) >= limit:
                    why = check(r, w) or "it works (intermittent failures)"
                    dropped[r.name] = "dropped after %d failed runs (%s); a check run now says: %s" % (
                        len(failures[r.name]), ", ".join(sorted(set(failures[r.name]))), why)
                    log("latency: %s dropped on %s: %s" % (r.name, w.name, dropped[r.name]))
            elif i >= warmup:
                samples[r.name].append(ms)
    return samples, failures, dropped


def throughput(runner, w, workers, duration):
    """WORKERS threads, each running the workload in a loop for DURATION
    seconds (the runs in flight at the end are finished and counted).
    Returns runs, failed runs, elapsed seconds."""
    argv = runner.argv(w)
    stop = threading.Event()
    deadline = time.perf_counter() + duration
    counts = [[0, 0] for _ in range(workers)]  # per worker: ok, failed

    def loop(k):
        while not stop.is_set() and time.perf_counter() < deadline:
            _, status = spawn_ms(argv)
            counts[k][0 if status == 0 else 1] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(workers)]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.2)  # short joins: Ctrl-C stays responsive
    except BaseException:
        stop.set()
        while any(t.is_alive() for t in threads):
            kill_inflight()
            for t in threads:
                t.join(0.2)
        raise
    elapsed = time.perf_counter() - t0
    return sum(c[0] for c in counts), sum(c[1] for c in counts), elapsed


# --- statistics -------------------------------------------------------------------

def percentile(values, q):
    """The q-quantile (0..1) by linear interpolation between the closest
    ranks (numpy's default method)."""
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def overhead_ci95(v, bare, resamples=1000):
    """95 % bootstrap interval of median(v) - median(bare): how far the
    overhead could move with other samples of the same noise. Seeded, so a
    report rebuilt from results.json shows the same interval."""
    rng = random.Random(1)
    diffs = [statistics.median(rng.choices(v, k=len(v))) - statistics.median(rng.choices(bare, k=len(bare)))
             for _ in range(resamples)]
    return [percentile(diffs, 0.025), percentile(diffs, 0.975)]


def latency_stats(samples):
    """{runner: stats} for one workload; overhead and ratio against bare."""
    bare_v = samples.get("bare")
    bare = statistics.median(bare_v) if bare_v else None
    out = {}
    for name, v in samples.items():
        if not v:
            continue
        med = statistics.median(v)
        out[name] = {"n": len(v), "median_ms": med, "p90_ms": percentile(v, 0.9),
                     "min_ms": min(v), "max_ms": max(v), "mean_ms": statistics.fmean(v),
                     "overhead_ms": med - bare if bare is not None else None,
                     "overhead_ci95_ms": overhead_ci95(v, bare_v) if bare_v and name != "bare" else None,
                     "ratio": med / bare if bare else None}
    return out


# --- the report ----------------------------------------------------------------

# what each --timing phase covers (docs/airlock-run.1)
PHASE_NOTES = {
    "prepare": "checks, argv, slot, pipes",
    "cgroup": "create the run's cgroup, set its limits",
    "clone": "clone into new user + pid namespaces",
    "namespaces": "mount, ipc, uts namespaces",
    "idmap": "uid/gid maps",
    "attach": "join the cgroup (0 when born in it, v2)",
    "mounts": "build the new read-only root",
    "net_wait": "wait for the net namespace made in parallel",
    "inputs": "write the code and files",
    "lockdown": "rlimits, capabilities, no_new_privs, seccomp, start the payload",
    "seccomp": "of which: loading the filter",
    "run": "the code: execve to exit",
    "exit": "exit to sandbox gone",
    "collect": "output files",
    "teardown": "what is left before the result",
    "setup": "start to the code's execve: airlock's own cost",
    "total": "start to result",
    # the process around the run
    "startup": "process start (/proc starttime, 10 ms ticks) to the run's start: coarse",
    "loader_cpu": "CPU used before main: exec, loader, constructors (exact, a lower bound)",
    "main": "main's entry to the run's start (exact)",
    "args": "of which: the flags parsed",
    "check": "of which: static validation",
    "audit_open": "writer thread, beside the run: state dir, key, store opened",
    "audit_started": "writer thread, beside the run: the started record durable",
    "audit_finish": "the finished record, after the run",
    "output": "collected files saved, up to the result's encoding",
    "main_total": "main's entry to the result (exact)",
    "process": "process start to the result (coarse start)",
    "wall": "bench: spawn to reaped, measured outside",
    "accounted": "loader_cpu + main_total",
    "unaccounted": "wall - accounted",
    "spawn_to_main": "bench: spawn to main's entry (bench's clock vs at_main_ms)",
    "result_to_exit": "bench: the result to reaped: exit path, output read",
}


def fmt_ms(v):
    """Milliseconds with 3 significant-ish digits."""
    if v is None:
        return "-"
    return "%.0f" % v if abs(v) >= 100 else "%.1f" % v if abs(v) >= 10 else "%.2f" % v


def layers_summary(prot):
    """airlock's protections object as one readable line."""
    if not prot:
        return "unknown (no --json result)"
    ns = [k for k, v in prot.get("namespaces", {}).items() if v]
    off = [k for k, v in prot.get("namespaces", {}).items() if not v]
    parts = ["namespaces: " + (", ".join(ns) or "none") + (" (off: %s)" % ", ".join(off) if off else "")]
    for key, label in (("pivot_root", "pivot_root"), ("readonly_root", "read-only root"),
                       ("seccomp", "seccomp filter"), ("no_new_privs", "no_new_privs"),
                       ("capabilities_dropped", "all capabilities dropped"), ("setsid", "setsid"),
                       ("rlimits", "rlimits")):
        if key in prot:
            parts.append(label + ("" if prot[key] else ": OFF"))
    cg = prot.get("cgroup", {})
    ctl = [k for k in ("memory", "pids", "cpu") if cg.get(k)]
    parts.append("cgroup %s (%s)" % (cg.get("version", "none"), ", ".join(ctl) or "no controllers"))
    parts.append("identity: %s" % prot.get("identity", "?"))
    return "; ".join(parts)


def markdown(res):
    """results.md from the results object (also used by --report)."""
    h = res["host"]
    L = ["# airlock cold-start benchmark", ""]
    L.append("%s, `%s`; airlock `%s` (sha256 %s, repository at %s)." % (
        res["date"], " ".join(res["command"]), res["airlock"]["path"], res["airlock"]["sha256"][:12],
        res["airlock"]["git"] or "?"))
    L += ["", "## Host", "", "| | |", "|---|---|"]
    L.append("| CPU | %s, %s cores (%s) |" % (h["cpu"], h["cores"], h["machine"]))
    L.append("| OS, kernel | %s (Debian %s), Linux %s |" % (h["os"], h["debian_version"], h["kernel"]))
    L.append("| load average at start | %s |" % " ".join(h["loadavg_at_start"]))
    L.append("| cgroup | %s |" % h["cgroup_version"])
    fdm = "**on**" if h["favordynmods"] else "off"
    fdm += " (mount option on: %s; kernel parameter cgroup_favordynmods: %s)" % (
        ", ".join(h["favordynmods_mounts"]) or "none", h["favordynmods_cmdline"] or "not given")
    L.append("| cgroup favordynmods | %s |" % fdm)
    mig = h["cgroup_v1_migration_ms"]
    if mig is None:
        L.append("| cgroup v1 migration | not measured: %s |" % h["cgroup_v1_migration_note"])
    else:
        verdict = ("slow: it waits for an RCU grace period, paid by every run that moves a process "
                   "into a cgroup" if mig > 2.0 else "fast: no RCU grace period wait" if mig < 1.0 else "")
        L.append("| cgroup v1 migration | %.2f ms (median, writing a pid to a scratch pids group's "
                 "cgroup.procs)%s |" % (mig, "; " + verdict if verdict else ""))
    v = {k: x for k, x in h["versions"].items() if x}
    L.append("| versions | %s |" % "; ".join("%s: %s" % kv for kv in v.items()))

    L += ["", "## airlock's active layers", "",
          "From one default run with `--json` (`protections`): " + layers_summary(res["airlock"]["protections"]) + "."]

    # latency: first a compact matrix, then every statistic
    lat = res["latency"]
    names = [n for n in res["runner_order"] if any(n in lat[w]["stats"] for w in lat)]
    if lat:
        L += ["", "## Latency", "",
              "Wall time of one run, from `posix_spawn` to `waitpid` of the runner's process, in ms; "
              "rounds interleaved (every runner once per round), warm-up rounds dropped. "
              "Overhead = median − bare median; ratio = median / bare median; the 95 % interval "
              "of the overhead is a bootstrap over the samples (where it spans 0, the runner is not "
              "distinguishable from bare on that workload).", "",
              "Median (overhead over bare):", "",
              "| workload | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for w, d in lat.items():
            cells = []
            for n in names:
                s = d["stats"].get(n)
                if not s:
                    cells.append("n/a")
                elif n == "bare":
                    cells.append(fmt_ms(s["median_ms"]))
                else:
                    cells.append("%s (%+.*f)" % (fmt_ms(s["median_ms"]), 1 if abs(s["overhead_ms"]) >= 10 else 2,
                                                 s["overhead_ms"]))
            L.append("| `%s` | %s |" % (d["label"], " | ".join(cells)))
        L += ["", "All statistics:", "",
              "| workload | runner | median ms | p90 ms | overhead ms | overhead 95% CI | ratio | runs | failed |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for w, d in lat.items():
            for n in names:
                s = d["stats"].get(n)
                if not s:
                    continue
                ci = s.get("overhead_ci95_ms")
                L.append("| `%s` | %s | %.2f | %.2f | %s | %s | %s | %d | %d |" % (
                    d["label"], n, s["median_ms"], s["p90_ms"],
                    "%+.2f" % s["overhead_ms"] if s["overhead_ms"] is not None else "-",
                    "%+.1f … %+.1f" % tuple(ci) if ci else "-",
                    "%.2f" % s["ratio"] if s["ratio"] is not None else "-",
                    s["n"], len(d["failures"].get(n, []))))

    tp = res.get("throughput")
    if tp and tp["runners"]:
        L += ["", "## Throughput", "",
              "`%s`, %d workers in parallel (threads, each looping spawn + wait), %g s per runner, "
              "one runner at a time:" % (tp["label"], tp["workers"], tp["duration_s"]), "",
              "| runner | runs/s | vs bare | runs | failed |", "|---|---:|---:|---:|---:|"]
        for n, t in tp["runners"].items():
            L.append("| %s | %.1f | %s | %d | %d |" % (
                n, t["runs_per_s"], "%.0f%%" % (100 * t["ratio"]) if t["ratio"] is not None else "-",
                t["runs"], t["failed"]))

    tm = res.get("airlock_timing")
    if tm:
        ws = [w for w in tm if tm[w]["samples"]]
        phases = []
        for w in ws:
            phases += [k for k in tm[w]["median_ms"] if k not in phases]
        L += ["", "## Where airlock's time goes", "",
              "Median (and p90) of each field of the `timing` object over %s runs of "
              "`airlock run --json --timing`, in ms. The sandbox side and the supervisor work in "
              "parallel, so the phases overlap and do not add up to total; setup is airlock's own cost "
              "before the code starts. The process's phases around the run (startup to main_total) "
              "are next to the wall the bench measures around the same runs; what the process's own "
              "phases leave of the wall is `unaccounted`, split by airlock's CLOCK_MONOTONIC "
              "readings into spawn to main and result to exit." %
              " / ".join("%d" % tm[w]["runs"] for w in ws), "",
              "| phase | " + " | ".join("`%s`" % WORKLOADS[w].label if w in WORKLOADS else w for w in ws)
              + " | covers |", "|---|" + "---:|" * len(ws) + "---|"]
        for k in phases:
            name = k[:-3] if k.endswith("_ms") else k
            bold = name in ("setup", "total", "wall", "unaccounted")
            cells = []
            for w in ws:
                med, p90 = tm[w]["median_ms"].get(k), tm[w].get("p90_ms", {}).get(k)
                cells.append("-" if med is None else "%.3f" % med if p90 is None else "%.3f (%.2f)" % (med, p90))
            if bold:
                cells = ["**%s**" % c for c in cells]
            L.append("| %s | %s | %s |" % ("**%s**" % name if bold else name, " | ".join(cells),
                                            PHASE_NOTES.get(name, "")))
        gaps = ["`%s`: %.1f ms (spawn to main %s, result to exit %s)" % (
                    WORKLOADS[w].label if w in WORKLOADS else w, tm[w]["median_ms"]["unaccounted_ms"],
                    fmt_ms(tm[w]["median_ms"].get("spawn_to_main_ms")),
                    fmt_ms(tm[w]["median_ms"].get("result_to_exit_ms")))
                for w in ws if tm[w]["median_ms"].get("unaccounted_ms", 0) > UNACCOUNTED_FLAG_MS]
        if gaps:
            L.append("\n**unaccounted** (wall minus airlock's own phases, median, over %.0f ms): %s." % (
                UNACCOUNTED_FLAG_MS, "; ".join(gaps)))
        bad = ["%s: %d" % (w, tm[w]["failed"]) for w in tm if tm[w]["failed"]]
        if bad:
            L.append("\nRuns without an ok result (left out): " + ", ".join(bad) + ".")

    L += ["", "## Runners", "", "| runner | layers |", "|---|---|"]
    for n in res["runner_order"]:
        if n in res["runners"]:
            L.append("| %s | %s |" % (n, res["runners"][n]["layers"]))
    L += ["", "Exact command lines (for `%s`):" % res["runner_example_workload"], ""]
    for n in res["runner_order"]:
        argv = res["runners"].get(n, {}).get("example_argv")
        if argv:
            L.append("- %s: `%s`" % (n, " ".join(argv)))

    if res["unavailable"]:
        L += ["", "## Not measured", ""]
        for u in res["unavailable"]:
            where = " on `%s`" % u["workload"] if u.get("workload") else ""
            L.append("- **%s**%s: %s" % (u["runner"], where, u["reason"]))
    return "\n".join(L) + "\n"


RUNNER_COLORS = {"bare": "#7f7f7f", "airlock": "#d62728", "unshare": "#2ca02c", "bwrap": "#1f77b4",
                 "firejail": "#9467bd", "nsjail": "#8c564b", "isolate": "#e377c2"}


def plot(res, path):
    """latency.png: one panel per workload, a horizontal box per runner
    (whiskers 5..95 %, every sample as a dot), the median written next to
    it; a log axis where the runners differ by more than 3x. Returns an
    error message, or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except ImportError:
        return "matplotlib is not importable by %s" % sys.executable
    lat = res["latency"]
    ws = [w for w in lat if lat[w]["stats"]]
    if not ws:
        return "no latency samples"
    cols = 2 if len(ws) > 1 else 1
    rows = math.ceil(len(ws) / cols)
    nrun = max(len(lat[w]["stats"]) for w in ws)
    fig, axes = plt.subplots(rows, cols, figsize=(7.0 * cols, 0.55 * nrun * rows + 1.6 * rows + 0.6),
                             squeeze=False)
    for ax in axes.flat[len(ws):]:
        ax.set_visible(False)
    for ax, w in zip(axes.flat, ws):
        d = lat[w]
        names = [n for n in res["runner_order"] if n in d["stats"]][::-1]  # bare on top
        data = [d["samples_ms"][n] for n in names]
        bp = ax.boxplot(data, vert=False, whis=(5, 95), showfliers=False, widths=0.6,
                        patch_artist=True, medianprops={"color": "black", "linewidth": 1.5})
        for patch, n in zip(bp["boxes"], names):
            patch.set_facecolor(RUNNER_COLORS.get(n, "#bcbd22"))
            patch.set_alpha(0.35)
        for k, (n, v) in enumerate(zip(names, data), start=1):
            jitter = [k + 0.18 * (((i * 7919) % 97) / 97.0 - 0.5) for i in range(len(v))]
            ax.plot(v, jitter, ".", ms=2.5, alpha=0.45, color=RUNNER_COLORS.get(n, "#bcbd22"))
        ax.set_yticks(range(1, len(names) + 1))
        ax.set_yticklabels(names)
        lo = min(min(v) for v in data)
        hi = max(max(v) for v in data)
        if hi / max(lo, 1e-3) > 3:
            ax.set_xscale("log")
            # labelled ticks at 1 2 5 10 ..., or at every integer multiple
            # when the panel spans less than a decade
            subs = (1, 2, 5) if hi / max(lo, 1e-3) > 10 else (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
            ax.xaxis.set_minor_locator(LogLocator(base=10, subs=range(1, 10)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: "%g" % x))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(lo / 1.25, hi * 1.6)
            pad = lambda x: x * 1.05  # noqa: E731
        else:
            span = hi - lo
            ax.set_xlim(lo - 0.05 * span, hi + 0.3 * span)
            pad = lambda x: x + 0.02 * span  # noqa: E731
        for k, n in enumerate(names, start=1):
            s = d["stats"][n]
            txt = fmt_ms(s["median_ms"]) + " ms"
            if n != "bare" and s["overhead_ms"] is not None:
                txt += " (%+.1f)" % s["overhead_ms"]
            p95 = percentile(d["samples_ms"][n], 0.95)
            ax.text(pad(p95), k + 0.28, txt, fontsize=8, va="center")
        ax.set_title("%s  (%d rounds)" % (d["label"], d["rounds"]), fontsize=10, family="monospace")
        ax.set_xlabel("ms, spawn to exit" + (" (log scale)" if ax.get_xscale() == "log" else ""))
        ax.grid(axis="x", which="both", alpha=0.25)
    h = res["host"]
    fig.suptitle("Cold-start latency: median (overhead over bare); box 25-75 %%, whiskers 5-95 %%\n"
                 "%s, %s cores, Linux %s, cgroup %s" % (h["cpu"], h["cores"], h["kernel"],
                                                        h["cgroup_version"].split()[0]), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def make_plot(res, out, results_json):
    """The plot with this interpreter's matplotlib or, when it has none (a
    pyenv/venv python3 first on PATH), with Debian's /usr/bin/python3."""
    path = os.path.join(out, "latency.png")
    err = plot(res, path)
    if err and err.startswith("matplotlib") and os.path.realpath(sys.executable) != os.path.realpath(PY) \
            and os.access(PY, os.X_OK) and results_json:
        p = subprocess.run([PY, os.path.abspath(__file__), "--report", results_json, "--out", out,
                            "--plot-only"], capture_output=True, text=True)
        err = None if p.returncode == 0 else err + "; %s: %s" % (PY, excerpt(p.stderr.encode()))
    if err:
        print("bench: no plot: %s" % err, file=sys.stderr)
        return None
    return path


# --- main ---------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--airlock", default=os.path.join(REPO, "build", "airlock"), help="the airlock binary")
    ap.add_argument("--out", default=os.path.join(REPO, "build", "bench"), help="output directory")
    ap.add_argument("--rounds", type=int,
                    help="latency rounds of the cheap workloads (default 100; pandas runs 40%% of it)")
    ap.add_argument("--warmup", type=int, help="warm-up rounds, thrown away (default 3)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="parallel workers for throughput (default: cores)")
    ap.add_argument("--duration", type=float, help="throughput seconds per runner (default 5)")
    ap.add_argument("--throughput-workload", default="python", choices=list(WORKLOADS),
                    help="workload of the throughput test (default python)")
    ap.add_argument("--timing-runs", type=int, help="airlock --timing runs per workload (default 30)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated subset of: %s" % ", ".join(WORKLOADS))
    ap.add_argument("--runners", default=None,
                    help="comma-separated subset of: airlock, unshare, bwrap, firejail, nsjail, isolate "
                         "(bare always runs)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 10 rounds, 1 warm-up, 1 s throughput, 10 timing runs "
                         "(explicit options still win)")
    ap.add_argument("--report", metavar="RESULTS_JSON",
                    help="measure nothing: write results.md and latency.png in --out from a results.json")
    ap.add_argument("--plot-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    # absolute: the measurement runs with a scratch directory as cwd
    a.airlock, a.out = os.path.abspath(a.airlock), os.path.abspath(a.out)
    # defaults, or --quick's; an option given explicitly wins over both
    for k, normal, quick in (("rounds", 100, 10), ("warmup", 3, 1), ("duration", 5.0, 1.0),
                             ("timing_runs", 30, 10)):
        if getattr(a, k) is None:
            setattr(a, k, quick if a.quick else normal)
    for k in ("rounds", "workers", "timing_runs"):
        if getattr(a, k) < 1:
            ap.error("--%s must be at least 1" % k.replace("_", "-"))
    if a.warmup < 0 or a.duration <= 0:
        ap.error("--warmup must be >= 0 and --duration > 0")
    a.workloads = [w for w in a.workloads.split(",") if w]
    for w in a.workloads:
        if w not in WORKLOADS:
            ap.error("unknown workload %s (one of %s)" % (w, ", ".join(WORKLOADS)))
    known = ["airlock"] + [p.name for p in PEERS]
    if a.runners is not None:
        a.runners = [r for r in a.runners.split(",") if r and r != "bare"]
        for r in a.runners:
            if r not in known:
                ap.error("unknown runner %s (one of %s)" % (r, ", ".join(known)))
    else:
        a.runners = known
    return a


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def write_outputs(res, out):
    os.makedirs(out, exist_ok=True)
    md = markdown(res)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    return md


def report_only(a):
    with open(a.report) as f:
        res = json.load(f)
    if a.plot_only:
        err = plot(res, os.path.join(a.out, "latency.png"))
        if err:
            sys.exit("bench: no plot: %s" % err)
        return
    md = write_outputs(res, a.out)
    make_plot(res, a.out, os.path.abspath(a.report))
    print(md)


def measure(a, workdir):
    started = time.monotonic()
    res = {"schema": 1, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "command": ["bench/bench.py"] + sys.argv[1:]}
    log("host facts")
    res["host"] = host_facts(5 if a.quick else 10)

    al_path, digest = snapshot_airlock(a.airlock, workdir)
    airlock = Airlock(al_path)
    res["airlock"] = {"path": a.airlock, "sha256": digest, "git": git_state(),
                      "version": tool_version([al_path, "--version"]), "protections": {}}

    # the runners asked for, bare first; those not installed are reported
    runners = [Bare()]
    unavailable = []
    for r in [airlock] + [p() for p in PEERS]:
        if r.name not in a.runners:
            continue
        why = r.installed()
        if why:
            unavailable.append({"runner": r.name, "workload": None, "reason": why})
        else:
            runners.append(r)
    res["runner_order"] = [r.name for r in runners]
    workloads = [WORKLOADS[w] for w in a.workloads]
    example = WORKLOADS["python"] if "python" in a.workloads else workloads[0]
    res["runner_example_workload"] = example.label

    def shown(argv):
        # the argv as reported: airlock under the name it was given, not its private copy
        return [a.airlock if x == airlock.path else x for x in argv]

    res["runners"] = {r.name: {"layers": r.layers, "example_argv": shown(r.argv(example)),
                               "argv": {w.name: shown(r.argv(w)) for w in workloads}} for r in runners}
    res["unavailable"] = unavailable
    res["config"] = {"rounds": {w.name: max(5, round(a.rounds * w.round_share)) for w in workloads},
                     "warmup": a.warmup, "workers": a.workers, "duration_s": a.duration,
                     "throughput_workload": a.throughput_workload, "timing_runs": a.timing_runs,
                     "env": CLEAN_ENV}

    try:
        for r in runners:
            try:
                r.setup()
            except (OSError, subprocess.TimeoutExpired) as e:
                log("%s setup: %s" % (r.name, e))  # its check below then fails and says why

        # 1. check every runner on every workload; only what works is timed
        works = {}  # workload name -> [runners]
        for w in workloads:
            works[w.name] = []
            for r in runners:
                why = check(r, w)
                if why and r is airlock:
                    # build/airlock may be mid-rebuild: take a fresh copy and retry
                    for _ in range(2):
                        log("airlock check failed on %s (%s); retrying with a fresh copy in 5 s" % (w.name, why))
                        time.sleep(5)
                        airlock.path, res["airlock"]["sha256"] = snapshot_airlock(a.airlock, workdir)
                        why = check(r, w)
                        if not why:
                            break
                if why:
                    log("%s cannot run %s: %s" % (r.name, w.name, why))
                    unavailable.append({"runner": r.name, "workload": w.label, "reason": why})
                else:
                    works[w.name].append(r)
        airlock_ok = [w for w in workloads if airlock in works[w.name]]
        if airlock_ok:
            res["airlock"]["protections"] = airlock_protections(airlock)

        # 2. latency, one workload after the other
        res["latency"] = {}
        for w in workloads:
            if len(works[w.name]) < 1:
                continue
            n = res["config"]["rounds"][w.name]
            samples, failures, dropped = latency(works[w.name], w, n, a.warmup, log)
            for name, why in dropped.items():
                unavailable.append({"runner": name, "workload": w.label, "reason": why})
                samples.pop(name, None)
            res["latency"][w.name] = {"label": w.label, "rounds": n, "samples_ms": samples,
                                      "failures": {k: v for k, v in failures.items() if v},
                                      "stats": latency_stats(samples)}

        # 3. throughput, one runner at a time
        tw = WORKLOADS[a.throughput_workload]
        dropped_tw = {u["runner"] for u in unavailable if u["workload"] == tw.label}
        tp = {"workload": tw.name, "label": tw.label, "workers": a.workers, "duration_s": a.duration,
              "runners": {}}
        if tw.name in works:
            tw_runners = [r for r in works[tw.name] if r.name not in dropped_tw]
        else:  # a workload not timed for latency: check it now
            tw_runners = []
            for r in runners:
                why = check(r, tw)
                if why:
                    unavailable.append({"runner": r.name, "workload": tw.label, "reason": why})
                else:
                    tw_runners.append(r)
        for r in tw_runners:
            log("throughput: %s, %d workers, %g s" % (r.name, a.workers, a.duration))
            ok, failed, elapsed = throughput(r, tw, a.workers, a.duration)
            tp["runners"][r.name] = {"runs": ok, "failed": failed, "elapsed_s": elapsed,
                                     "runs_per_s": ok / elapsed}
        bare_rate = tp["runners"].get("bare", {}).get("runs_per_s")
        for t in tp["runners"].values():
            t["ratio"] = t["runs_per_s"] / bare_rate if bare_rate else None
        res["throughput"] = tp

        # 4. airlock's per-phase breakdown
        tws = [w for w in airlock_ok if w.name in ("true", "python")]
        res["airlock_timing"] = airlock_timing(airlock, tws, a.timing_runs, log) if tws else {}
    finally:
        for r in runners:
            try:
                r.teardown()
            except (OSError, subprocess.TimeoutExpired) as e:
                log("%s teardown: %s" % (r.name, e))
    res["elapsed_s"] = round(time.monotonic() - started, 1)
    log("measured in %.0f s" % res["elapsed_s"])
    return res


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main():
    a = parse_args()
    if a.report:
        report_only(a)
        return 0
    os.makedirs(a.out, exist_ok=True)
    threading.Thread(target=_watchdog, daemon=True).start()
    # SIGTERM (e.g. from a CI timeout) is handled like Ctrl-C: clean up, exit
    signal.signal(signal.SIGTERM, _on_sigterm)
    # A scratch directory: the private copy of airlock, and the cwd of every
    # run (so no runner starts in, or writes to, the caller's directory).
    workdir = tempfile.mkdtemp(prefix="airlock-bench-")
    # airlock audits every run (its default, so it is timed with it); into
    # a state directory of the benchmark's own, not the host's
    CLEAN_ENV["AIRLOCK_STATE"] = os.path.join(workdir, "state")
    os.chmod(workdir, 0o755)
    cwd = os.getcwd()
    try:
        os.chdir(workdir)
        res = measure(a, workdir)
        os.chdir(cwd)
        results_json = os.path.abspath(os.path.join(a.out, "results.json"))
        with open(results_json, "w") as f:
            json.dump(res, f, indent=1)
        md = write_outputs(res, a.out)
        png = make_plot(res, a.out, results_json)
        print(md)
        print("Written: %s, %s%s" % (os.path.join(a.out, "results.md"), results_json,
                                     ", " + png if png else " (no plot)"))
        return 0
    except KeyboardInterrupt:
        log("interrupted; stopping the runs in flight")
        kill_inflight()
        return 130
    finally:
        os.chdir(cwd)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
