#!/usr/bin/python3
"""Cold-start benchmark: airlock side by side with the bare runtime and the
sandboxing peers found on this machine, on the same workloads, in one run.

    python3 bench/bench.py --airlock build/airlock --out build/bench
    (or: make bench)

Latency: every runner runs every workload, interleaved (A B C A B C ...),
timed from posix_spawn to waitpid; medians, p90 and overhead over bare.
Throughput: N parallel workers looping one workload for a fixed time.
Also: which protection layers airlock had on, airlock's own per-phase
breakdown (--timing), and the host facts that move the numbers.
See bench/README.md for the peers' profiles and how to read the output.
Python stdlib only; matplotlib (Debian's python3-matplotlib) for the plot.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}  # the same for everyone
PY, NODE = "/usr/bin/python3", "/usr/bin/node"

# name -> (the bare command, the code airlock runs, airlock's --lang)
WORKLOADS = {
    "true": (["/bin/true"], "", "true"),
    "python": ([PY, "-c", "pass"], "pass", "python"),
    "node": ([NODE, "-e", "0"], "0", "node"),
    "pandas": ([PY, "-c", "import numpy, pandas"], "import numpy, pandas", "python"),
}
# the expensive workload gets fewer rounds
ROUND_SHARE = {"true": 1.0, "python": 1.0, "node": 0.6, "pandas": 0.3}


# --- runners: each turns a workload into an argv ----------------------------

def airlock_argv(al, w):
    bare, code, lang = WORKLOADS[w]
    extra = ["--languages", os.path.join(HERE, "languages.json")] if lang == "true" else []
    return [al, "run"] + extra + ["--lang", lang, "-c", code]


def unshare_argv(w):
    # namespaces only: no new root, no seccomp, no cgroups (a floor)
    return ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount", "--net",
            "--ipc", "--uts", "--mount-proc", "--"] + WORKLOADS[w][0]


def bwrap_argv(w):
    # a typical bubblewrap profile: every namespace, read-only /usr with the
    # merged-/usr links, the /etc files the runtimes read, new /proc and
    # /dev, tmpfs /tmp and workspace, no capabilities, new session; no
    # cgroups and no seccomp filter (bwrap has neither by default)
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr"]
    for d in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink("/" + d):
            argv += ["--symlink", os.readlink("/" + d), "/" + d]
    for f in ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime", "/etc/python3",
              "/etc/python3.11", "/etc/matplotlibrc", "/etc/fonts"):
        argv += ["--ro-bind-try", f, f]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/workspace",
             "--chdir", "/workspace", "--clearenv"]
    for k, v in ENV.items():
        argv += ["--setenv", k, v]
    return argv + ["--"] + WORKLOADS[w][0]


def firejail_argv(w):
    # firejail without a profile, but with its own layers on: no network,
    # private home/tmp/dev, no capabilities, no_new_privs, its default
    # seccomp filter
    return ["firejail", "--quiet", "--noprofile", "--net=none", "--private", "--private-tmp",
            "--private-dev", "--caps.drop=all", "--nonewprivs", "--seccomp", "--nogroups",
            "--"] + WORKLOADS[w][0]


def nsjail_argv(w):
    # nsjail in one-shot mode with the host root read-only (its common
    # quick-start profile), no cgroups
    return ["nsjail", "-Mo", "--really_quiet", "--chroot", "/", "--user", "99999", "--group", "99999",
            "--disable_proc", "--"] + WORKLOADS[w][0]


def runners(al):
    rs = {"bare": lambda w: WORKLOADS[w][0], "airlock": lambda w: airlock_argv(al, w)}
    for name, fn, tool in (("unshare", unshare_argv, "unshare"), ("bwrap", bwrap_argv, "bwrap"),
                           ("firejail", firejail_argv, "firejail"), ("nsjail", nsjail_argv, "nsjail")):
        if shutil.which(tool):
            rs[name] = fn
    return rs


# --- measuring ----------------------------------------------------------------

_DEVNULL = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]


def spawn_ms(argv):
    """Wall time of one run in ms, and its exit status."""
    path = argv[0] if os.path.isabs(argv[0]) else shutil.which(argv[0])
    t = time.perf_counter()
    pid = os.posix_spawn(path, argv, ENV, file_actions=_DEVNULL)
    _, st = os.waitpid(pid, 0)
    return (time.perf_counter() - t) * 1000, os.waitstatus_to_exitcode(st)


def check(argv):
    """None if the runner works for this workload here, else why not."""
    try:
        p = subprocess.run(argv, env=ENV, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if p.returncode != 0:
        msg = (p.stderr or p.stdout).decode("utf-8", "replace").strip().splitlines()
        return "exit %d: %s" % (p.returncode, (msg[-1] if msg else "")[:200])
    return None


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def latency(rs, workloads, rounds, warmup=3):
    """Interleaved rounds; returns {workload: {runner: [ms...]}} and the
    unavailable {(runner, workload): reason}."""
    samples, unavailable = {}, {}
    for w in workloads:
        live = {}
        for name, fn in rs.items():
            why = check(fn(w))
            if why:
                unavailable[(name, w)] = why
            else:
                live[name] = fn(w)
        n = max(5, int(rounds * ROUND_SHARE[w]))
        samples[w] = {name: [] for name in live}
        print("latency: %-7s %d rounds x %s" % (w, n, ", ".join(live)), file=sys.stderr, flush=True)
        for i in range(warmup + n):
            for name, argv in live.items():
                ms, rc = spawn_ms(argv)
                if rc != 0:
                    raise RuntimeError("%s failed on %s during the benchmark (exit %d)" % (name, w, rc))
                if i >= warmup:
                    samples[w][name].append(ms)
    return samples, unavailable


def throughput(argv, workers, duration):
    """Runs per second with WORKERS loops in parallel for DURATION s."""
    count = [0] * workers
    stop = time.perf_counter() + duration

    def loop(k):
        while time.perf_counter() < stop:
            spawn_ms(argv)
            count[k] += 1

    t0 = time.perf_counter()
    ts = [threading.Thread(target=loop, args=(k,)) for k in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(count) / (time.perf_counter() - t0)


def airlock_facts(al):
    """The protections of a default run, and the median --timing phases."""
    p = subprocess.run([al, "run", "--json", "--lang", "python", "-c", "pass"], env=ENV,
                       capture_output=True, timeout=60)
    prot = json.loads(p.stdout).get("protections", {})
    phases = {}
    for w in ("true", "python"):
        runs = []
        for _ in range(30):
            q = subprocess.run(airlock_argv(al, w) + ["--json", "--timing"], env=ENV,
                               capture_output=True, timeout=60)
            runs.append(json.loads(q.stdout)["timing"])
        phases[w] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return prot, phases


def migration_ms():
    """Median cost of moving a process into a cgroup v1 group (root only):
    without favordynmods each move waits for an RCU grace period."""
    base = "/sys/fs/cgroup/pids"
    if os.geteuid() != 0 or not os.path.exists(base + "/cgroup.procs"):
        return None
    d = os.path.join(base, "airlock-bench-%d" % os.getpid())
    ts = []
    try:
        os.mkdir(d)
        for _ in range(10):
            child = subprocess.Popen(["sleep", "5"])
            time.sleep(0.02)
            t = time.perf_counter()
            with open(d + "/cgroup.procs", "w") as f:
                f.write(str(child.pid))
            ts.append((time.perf_counter() - t) * 1000)
            child.kill()
            child.wait()
    except OSError:
        return None
    finally:
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)
    return statistics.median(ts) if ts else None


def host_facts():
    f = {"cores": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as c:
            f["cpu"] = next(l.split(":", 1)[1].strip() for l in c if l.startswith("model name"))
    except (OSError, StopIteration):
        f["cpu"] = platform.processor()
    try:
        with open("/etc/debian_version") as d:
            f["os"] = "Debian " + d.read().strip()
    except OSError:
        f["os"] = platform.platform()
    with open("/proc/mounts") as m:
        cg = [l.split() for l in m if l.split()[2] in ("cgroup", "cgroup2")]
    with open("/proc/cmdline") as c:
        cmdline = c.read()
    f["cgroup_mounts"] = sorted({t for _, _, t, *_ in cg})
    f["favordynmods"] = (any("favordynmods" in l[3] for l in cg) or "cgroup_favordynmods=1" in cmdline
                         or "cgroup_favordynmods=true" in cmdline or "cgroup_favordynmods=y" in cmdline)
    f["cgroup_v1_migration_ms"] = migration_ms()
    return f


# --- reporting ----------------------------------------------------------------

def stats(samples):
    out = {}
    for w, by in samples.items():
        bare = statistics.median(by["bare"]) if by.get("bare") else None
        out[w] = {}
        for name, v in by.items():
            med = statistics.median(v)
            out[w][name] = {"n": len(v), "median_ms": med, "p90_ms": pct(v, 0.9), "min_ms": min(v),
                            "overhead_ms": med - bare if bare else None,
                            "ratio": med / bare if bare else None}
    return out


def layers_line(prot):
    ns = [k for k, v in prot.get("namespaces", {}).items() if v]
    cg = prot.get("cgroup", {})
    on = ["namespaces: " + ",".join(ns)]
    for k, label in (("pivot_root", "pivot_root"), ("readonly_root", "read-only root"),
                     ("seccomp", "seccomp"), ("no_new_privs", "no_new_privs"),
                     ("capabilities_dropped", "caps dropped"), ("setsid", "setsid"), ("rlimits", "rlimits")):
        if prot.get(k):
            on.append(label)
    on.append("cgroup %s (%s)" % (cg.get("version", "none"),
                                  ",".join(k for k in ("memory", "pids", "cpu") if cg.get(k)) or "-"))
    on.append("identity " + str(prot.get("identity")))
    return "; ".join(on)


def markdown(res):
    h, st, L = res["host"], res["stats"], []
    L.append("# airlock cold-start benchmark\n")
    L.append("Host: %s, %s cores, %s, kernel %s; cgroup mounts %s; favordynmods option: %s; measured "
             "cost of one cgroup v1 migration: %s.\n" % (
                 h["cpu"], h["cores"], h["os"], h["kernel"], "/".join(h["cgroup_mounts"]),
                 "set" if h["favordynmods"] else "not set",
                                    "%.2f ms" % h["cgroup_v1_migration_ms"]
                                    if h["cgroup_v1_migration_ms"] is not None else "not measured"))
    L.append("airlock layers active: %s.\n" % layers_line(res["airlock_protections"]))
    L.append("Latency (ms, wall time from spawn to exit, interleaved rounds; overhead = median - bare median):\n")
    L.append("| workload | runner | median | p90 | overhead | ratio | n |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    for w, by in st.items():
        for name, s in sorted(by.items(), key=lambda kv: kv[1]["median_ms"]):
            L.append("| %s | %s | %.2f | %.2f | %s | %s | %d |" % (
                " ".join(WORKLOADS[w][0]), name, s["median_ms"], s["p90_ms"],
                "%+.2f" % s["overhead_ms"] if s["overhead_ms"] is not None else "-",
                "%.2fx" % s["ratio"] if s["ratio"] is not None else "-", s["n"]))
    if res["throughput"]:
        tp = res["throughput"]
        L.append("\nThroughput (`%s`, %d workers, %.0f s each):\n" % (
            " ".join(WORKLOADS[tp["workload"]][0]), tp["workers"], tp["duration_s"]))
        L.append("| runner | runs/s | vs bare |")
        L.append("|---|---:|---:|")
        bare = tp["runs_per_s"].get("bare")
        for name, v in sorted(tp["runs_per_s"].items(), key=lambda kv: -kv[1]):
            L.append("| %s | %.0f | %s |" % (name, v, "%.0f%%" % (100 * v / bare) if bare else "-"))
    L.append("\nairlock per-phase breakdown (median ms of 30 runs with `--timing`; the sandbox side and the "
             "supervisor work in parallel, so phases overlap; setup = start of `al_run` to the code's execve):\n")
    ph = res["airlock_phases"]
    names = list(next(iter(ph.values())).keys()) if ph else []
    L.append("| phase | " + " | ".join(ph) + " |")
    L.append("|---|" + "---:|" * len(ph))
    for k in names:
        L.append("| %s | " % k.replace("_ms", "") + " | ".join("%.3f" % ph[w][k] for w in ph) + " |")
    if res["unavailable"]:
        L.append("\nNot measured here:\n")
        for u in res["unavailable"]:
            L.append("- %s on %s: %s" % (u["runner"], u["workload"], u["reason"]))
    missing = [t for t in ("nsjail", "isolate", "firejail") if not shutil.which(t)]
    if missing:
        L.append("\nNot installed (not measured): %s." % ", ".join(missing))
    return "\n".join(L) + "\n"


def plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib missing, no plot", file=sys.stderr)
        return False
    ws = list(res["samples"])
    fig, axes = plt.subplots(1, len(ws), figsize=(4.2 * len(ws), 4.2), squeeze=False)
    for ax, w in zip(axes[0], ws):
        by = res["samples"][w]
        names = sorted(by, key=lambda n: statistics.median(by[n]))
        ax.boxplot([by[n] for n in names], labels=names, showfliers=False, vert=True)
        ax.set_title(" ".join(WORKLOADS[w][0]), fontsize=10)
        ax.set_ylabel("ms (spawn to exit)")
        ax.tick_params(axis="x", rotation=30)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Cold-start latency, %s cores, %s" % (res["host"]["cores"], res["host"]["kernel"]), fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--airlock", default=os.path.join(HERE, "..", "build", "airlock"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "build", "bench"))
    ap.add_argument("--rounds", type=int, default=100, help="latency rounds (cheap workloads)")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per throughput runner")
    ap.add_argument("--throughput-workload", default="python", choices=list(WORKLOADS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--quick", action="store_true", help="few rounds, short throughput (a smoke run)")
    ap.add_argument("--report", metavar="RESULTS_JSON",
                    help="measure nothing: rewrite results.md and latency.png in --out from a results.json")
    a = ap.parse_args()
    if a.report:
        with open(a.report) as f:
            res = json.load(f)
        os.makedirs(a.out, exist_ok=True)
        md = markdown(res)
        with open(os.path.join(a.out, "results.md"), "w") as f:
            f.write(md)
        plot(res, os.path.join(a.out, "latency.png"))
        print(md)
        return
    if a.quick:
        a.rounds, a.duration = 10, 1.0
    al = os.path.abspath(a.airlock)
    if not os.access(al, os.X_OK):
        sys.exit("bench: %s is not built (make)" % al)
    workloads = [w for w in a.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            sys.exit("bench: unknown workload %s (one of %s)" % (w, ", ".join(WORKLOADS)))
    os.makedirs(a.out, exist_ok=True)

    rs = runners(al)
    res = {"host": host_facts(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    res["airlock_protections"], res["airlock_phases"] = airlock_facts(al)
    samples, unavailable = latency(rs, workloads, a.rounds)
    res["samples"], res["stats"] = samples, stats(samples)
    res["unavailable"] = [{"runner": r, "workload": w, "reason": why} for (r, w), why in unavailable.items()]
    tw = a.throughput_workload
    res["throughput"] = {"workload": tw, "workers": a.workers, "duration_s": a.duration, "runs_per_s": {}}
    for name, fn in rs.items():
        if (name, tw) in unavailable:
            continue
        print("throughput: %s" % name, file=sys.stderr, flush=True)
        res["throughput"]["runs_per_s"][name] = throughput(fn(tw), a.workers, a.duration)

    md = markdown(res)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    if plot(res, os.path.join(a.out, "latency.png")):
        md += "\nPlot: %s\n" % os.path.join(a.out, "latency.png")
    print(md)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
