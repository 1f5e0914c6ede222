#!/usr/bin/python3
"""airlock run as a user drives it: languages, inputs, outputs, the JSON
result, refusals with stable error codes, exit codes, signals, doctor."""
import base64
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, diag  # noqa: E402
from airlock import BIN, run, run_raw  # noqa: E402

tmp = tempfile.mkdtemp(prefix="airlock-e2e-")


def write(name, data, mode="w"):
    p = os.path.join(tmp, name)
    with open(p, mode) as f:
        f.write(data)
    return p


# --- languages -----------------------------------------------------------
rc, r = run("python", "print(2+2)")
ok(rc == 0 and r["status"] == "ok" and r["stdout"] == "4\n", "python prints 4", r)
rc, r = run("python", 'import pandas as pd; print(int(pd.DataFrame({"a":[1,2]}).sum()["a"]))')
ok(r["status"] == "ok" and r["stdout"].strip() == "3", "pandas from Debian works read-only", r)
rc, r = run("node", "console.log([1,2,3].map(x => x*2).join(','))")
ok(r["status"] == "ok" and r["stdout"] == "2,4,6\n", "node runs", r)
rc, r = run("bash", 'echo "${BASH_VERSION%%.*}"')
ok(r["status"] == "ok" and r["stdout"].strip().isdigit(), "bash runs", r)
rc, r = run("sh", "echo hi from sh")
ok(r["status"] == "ok" and r["stdout"] == "hi from sh\n", "sh runs", r)
rc, r = run("c", '#include <stdio.h>\n#include <math.h>\nint main(){printf("%.0f\\n", sqrt(49.0));return 0;}')
ok(r["status"] == "ok" and r["stdout"] == "7\n" and r["compile"]["status"] == "ok",
   "C compiles in one sandbox and runs in another (libm linked)", r)
rc, r = run("c", "int main(){ return undefined_thing; }")
ok(rc == 1 and r["status"] == "error" and "compilation failed" in r["reason"]
   and "undefined_thing" in r["compile"]["stderr"], "C compile error is reported with gcc's message", r)

p = run_raw(["run", "--lang", "c", "-"], stdin=b'int main(){puts("hi");}')
ok(p.returncode == 0 and p.stdout == b"hi\n" and b"airlock: ok" in p.stderr,
   "C from stdin, human output with a summary line on stderr", p)

# --- inputs ----------------------------------------------------------------
data = write("data.csv", "x,y\n1,2\n3,4\n")
rc, r = run("python", "import csv; print(sum(int(r['y']) for r in csv.DictReader(open('data.csv'))))",
            "--file", "data.csv=" + data)
ok(r["status"] == "ok" and r["stdout"] == "6\n", "--file copies a host file into the workspace", r)
rc, r = run("python", "import sys; print(sys.stdin.read().upper(), end='')", "--stdin", write("in.txt", "hello"))
ok(r["stdout"] == "HELLO", "--stdin feeds the program", r)
big = write("big.txt", "y" * (3 << 20))
rc, r = run("python", "import sys; print(len(sys.stdin.buffer.read()))", "--stdin", big)
ok(r["stdout"] == str(3 << 20) + "\n", "3 MiB of stdin arrive whole", r)
rc, r = run("python", "import sys; print(sys.argv[1:])", "--arg", "a b", "--", "c", "--json")
ok(r["stdout"] == "['a b', 'c', '--json']\n", "arguments via --arg and after --", r)
rc, r = run("sh", 'echo "$FOO|$HOME|$(pwd)|$(id -u)"', "-e", "FOO=bar baz")
ok(r["stdout"] == "bar baz|/workspace|/workspace|1000\n", "env added explicitly; HOME and cwd are the workspace; uid 1000", r)
env = dict(os.environ, AIRLOCK_E2E_LEAK="should-not-pass")
rc, r = run("sh", "env", env=env)
names = sorted(line.split("=", 1)[0] for line in r["stdout"].splitlines())
ok("AIRLOCK_E2E_LEAK" not in r["stdout"] and len(names) <= 12,
   "environment built from scratch (%d variables)" % len(names), names)
src = write("prog.py", "print('from file')\n")
p = run_raw(["run", "--lang", "python", src, "--json"])
ok(p.returncode == 0 and json.loads(p.stdout)["stdout"] == "from file\n", "code from a file", p)

# --- outputs -----------------------------------------------------------------
plot = ("import matplotlib.pyplot as plt, os; os.makedirs('out', exist_ok=True);"
        "plt.plot([1,2,3],[1,4,9]); plt.savefig('out/plot.png'); open('out/n.txt','w').write('x')")
rc, r = run("python", plot, "--collect", "out/*.png", timeout=180)
files = r.get("files", [])
png = base64.b64decode(files[0]["content_base64"]) if files else b""
ok(r["status"] == "ok" and len(files) == 1 and files[0]["name"] == "out/plot.png"
   and files[0]["mime"] == "image/png" and png.startswith(b"\x89PNG") and len(png) == files[0]["size"],
   "matplotlib plot collected as image/png, base64 round trip", {k: v for k, v in r.items() if k != "files"})
outdir = os.path.join(tmp, "outdir")
p = run_raw(["run", "--lang", "sh", "-c", "mkdir -p a/b; echo deep > a/b/c.txt; echo top > t.txt",
             "--collect", "**/*.txt", "--out-dir", outdir])
ok(p.returncode == 0 and open(os.path.join(outdir, "a/b/c.txt")).read() == "deep\n"
   and open(os.path.join(outdir, "t.txt")).read() == "top\n", "--collect '**' and --out-dir write the files", p)
rc, r = run("sh", r"printf 'ok\377\376\000end'")
raw = base64.b64decode(r.get("stdout_base64", ""))
ok(raw == b"ok\xff\xfe\x00end" and r["stdout"].startswith("ok\ufffd"),
   "invalid UTF-8 output survives JSON (stdout_base64 exact, stdout with U+FFFD)", r)
rc, r = run("python", "import sys; sys.stderr.write('e'*5000); print('o'*100)", "--output", "1000")
ok(r["status"] == "output_limit" and r["stderr_truncated"] and len(r["stderr"]) == 1000
   and "output" in r["limits_hit"] and rc == 6, "stderr over its cap: output_limit, truncated flag, exit 6", r)

# --- statuses and exit codes ---------------------------------------------------
rc, r = run("sh", "exit 3")
ok(rc == 1 and r["status"] == "error" and r["exit_code"] == 3, "non-zero exit: status error, exit_code 3, airlock exits 1", r)
rc, r = run("sh", "kill -SEGV $$")
ok(rc == 7 and r["status"] == "killed" and r["signal"] == 11 and r["exit_code"] is None,
   "killed by SIGSEGV: status killed, signal 11, exit 7", r)
rc, r = run("python", "import time; time.sleep(5)", "--timeout", "0.5")
ok(rc == 4 and r["status"] == "timeout" and "wall" in r["limits_hit"] and r["wall_ms"] < 3000,
   "fractional --timeout 0.5 enforced: timeout, exit 4", r)
rc, r = run("python", "print(1)", "--memory", "128", "--pids", "10", "--disk", "8", "--timeout", "5", "--cpu", "2")
ok(r["limits"] == {"wall_ms": 5000, "cpu_ms": 2000, "memory_mb": 128, "pids": 10, "disk_mb": 8,
                   "output_bytes": 1048576, "open_files": 256, "net_connections": 32,
                   "net_bytes_out": 104857600, "net_bytes_in": 104857600, "net_idle_ms": 30000},
   "limits actually applied are reported", r.get("limits"))
prot = r["protections"]
ok(all(prot["namespaces"].values()) and prot["seccomp"] and prot["no_new_privs"] and prot["capabilities_dropped"]
   and prot["readonly_root"] and prot["cgroup"]["version"] in ("v1", "v2", "none"),
   "protections reported as active", prot)
if prot["cgroup"]["version"] == "none":
    ok("note" in prot, "no cgroups: the result says so in protections.note", prot)

# --- refusals --------------------------------------------------------------------
def refusal(args, code, name, exit_code=2):
    p = run_raw(["run", "--json"] + args)
    try:
        lines = p.stdout.decode().strip().splitlines()
        obj = json.loads(p.stdout)
    except ValueError:
        lines, obj = [], {}
    ok(p.returncode == exit_code and len(lines) == 1 and obj.get("status") == "rejected"
       and obj.get("error", {}).get("code") == code and obj["error"].get("message")
       and b"airlock: error:" in p.stderr, name, p)


refusal(["--lang", "python", "-c", "1", "--memory", "0"], "invalid_limit", "--memory 0 refused")
refusal(["--lang", "python", "-c", "1", "--memory", "-5"], "invalid_limit", "negative memory refused")
refusal(["--lang", "python", "-c", "1", "--pids", "99999999999999999999999"], "invalid_limit", "overflowing pids refused")
refusal(["--lang", "python", "-c", "1", "--timeout", "99999"], "invalid_limit", "timeout above the maximum refused")
refusal(["--lang", "python", "-c", "1", "--timeout", "1e3"], "invalid_limit", "non-decimal timeout refused")
refusal(["--lang", "python", "-c", "1", "--limit", "bogus=1"], "invalid_limit", "unknown limit name refused")
refusal(["--lang", "cobol", "-c", "1"], "unknown_language", "unknown language refused")
refusal(["--lang", "python", "-c", "1", "--file", "../x=" + data], "invalid_file", "input name with .. refused")
refusal(["--lang", "python", "-c", "1", "--file", "/etc/x=" + data], "invalid_file", "absolute input name refused")
refusal(["--lang", "python", "-c", "1", "--file", "x=/nonexistent/file"], "invalid_file", "missing input file refused")
refusal(["--lang", "python", "-c", "1", "--file", "d=" + tmp], "invalid_file", "directory as input file refused")
refusal(["--lang", "python", "-c", "1", "--collect", "../*"], "invalid_collect", "collect glob with .. refused")
refusal(["--lang", "python", "-c", "1", "-e", "1BAD=x"], "invalid_env", "bad env name refused")
refusal(["--lang", "python", "/nonexistent.py"], "invalid_code", "missing code file refused")
refusal(["--lang", "python"], "usage", "no code refused")
p = run_raw(["run", "--json", "--lang", "python", "-c", "1", "--file", "main.py=" + data])
obj = json.loads(p.stdout or b"{}")
ok(p.returncode == 3 and obj.get("status") == "rejected" and "main.py" in obj.get("reason", ""),
   "input file that would overwrite the program: rejected, exit 3", p)
p = run_raw(["run", "--lang", "python", "-c", "1", "--bogus-flag"])
ok(p.returncode == 2, "unknown flag: exit 2", p)

# --- listing, help, doctor ---------------------------------------------------------
p = run_raw(["run", "--list-languages"])
listing = p.stdout.decode()
ok(p.returncode == 0 and all(l in listing for l in ("python", "node", "bash", "sh", "c ")) and "available" in listing,
   "--list-languages", listing)
p = run_raw(["run", "--help"])
ok(p.returncode == 0 and b"Exit status" in p.stdout and b"--collect" in p.stdout, "run --help documents flags and exit codes", p)
p = run_raw(["--version"])
ok(p.returncode == 0 and p.stdout.startswith(b"airlock "), "--version", p)
p = run_raw(["doctor", "--json"])
try:
    d = json.loads(p.stdout)
    checks = {c["name"]: c for c in d["checks"]}
except ValueError:
    d, checks = {}, {}
ok(checks.get("sandbox.run", {}).get("state") == "ok" and "seccomp.filter" in checks
   and all(c["fix"] for c in checks.values() if c["state"] != "ok")
   and p.returncode == (0 if d.get("all_ok") else 1),
   "doctor --json: a real run works; every non-ok check has a fix", p.stdout.decode()[-3000:])

# --- concurrency: distinct identities ------------------------------------------------
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    res = list(ex.map(lambda i: run("sh", "sleep 0.3; echo %d" % i), range(4)))
uids = {r["protections"]["host_uid"] for _, r in res}
ok(all(r["status"] == "ok" for _, r in res) and (len(uids) == 4 or os.geteuid() != 0),
   "4 concurrent runs succeed, each with its own host uid (as root)", [r["protections"]["host_uid"] for _, r in res])

# --- the supervisor is interrupted ------------------------------------------------
marker = "airlock-e2e-sigterm-%d" % os.getpid()
proc = subprocess.Popen([BIN, "run", "--lang", "bash", "-c", "exec -a %s sleep 300" % marker],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
deadline = time.time() + 10


def marker_alive():
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    # argv[0] only: airlock's own argv holds the marker too
                    if f.read().split(b"\0")[0] == marker.encode():
                        return True
            except OSError:
                pass
    return False


while time.time() < deadline and not marker_alive():
    time.sleep(0.05)
started = marker_alive()
proc.send_signal(signal.SIGTERM)
try:
    out, err = proc.communicate(timeout=10)
except subprocess.TimeoutExpired:
    proc.kill()
    out, err = proc.communicate()
ok(started and proc.returncode == 130 and not marker_alive() and b"cancelled" in err,
   "SIGTERM to airlock: exit 130, the sandboxed process is gone", (started, proc.returncode, err))

# --- the supervisor is killed outright ----------------------------------------------
marker = "airlock-e2e-sigkill-%d" % os.getpid()
proc = subprocess.Popen([BIN, "run", "--lang", "bash", "-c", "exec -a %s sleep 300" % marker],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.time() + 10
while time.time() < deadline and not marker_alive():
    time.sleep(0.05)
started = marker_alive()
proc.kill()
proc.wait()
deadline = time.time() + 5
while time.time() < deadline and marker_alive():
    time.sleep(0.05)
ok(started and not marker_alive(), "SIGKILL to airlock: the sandbox dies with its supervisor (parent-death signal)")
rc, r = run("sh", "echo after")
ok(r["status"] == "ok", "the next run takes over the dead run's slot and cgroup", r)

# --- as an ordinary user ----------------------------------------------------------
if os.geteuid() == 0 and os.path.exists("/usr/bin/setpriv"):
    import shutil
    import tempfile
    # an ordinary user's audit log goes to ~/.local/share/airlock by default
    home = tempfile.mkdtemp(prefix="al-test-home-")
    os.chown(home, 65534, 65534)
    uenv = {k: v for k, v in os.environ.items() if k not in ("AIRLOCK_STATE", "XDG_DATA_HOME")}
    uenv["HOME"] = home
    p = subprocess.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        BIN, "run", "--json", "--lang", "python", "-c",
                        "import os; c={l.split(':')[1].strip() for l in open('/proc/self/status') if l.startswith('Cap')};"
                        " print(os.getuid(), sorted(c))"],
                       capture_output=True, cwd="/", env=uenv)
    try:
        r = json.loads(p.stdout)
    except ValueError:
        r = {}
    prot = r.get("protections", {})
    ok(r.get("status") == "ok" and r.get("stdout") == "1000 ['0000000000000000']\n" and prot.get("identity") == "userns-self"
       and prot.get("host_uid") == 65534 and (prot["cgroup"]["version"] != "none" or "rlimits" in prot.get("note", "")),
       "unprivileged user: runs in its own user namespace; missing cgroups are reported, not hidden", p)
    st_dir = os.path.join(home, ".local", "share", "airlock")
    modes = {n: os.stat(os.path.join(st_dir, n)).st_mode & 0o777 for n in ("audit.db", "audit.key")} \
        if os.path.isdir(st_dir) else {}
    ok(os.path.isdir(st_dir) and os.stat(st_dir).st_mode & 0o777 == 0o700 and os.stat(st_dir).st_uid == 65534
       and modes == {"audit.db": 0o600, "audit.key": 0o600} and r.get("audit_id"),
       "unprivileged user: the run is audited under ~/.local/share/airlock (dir 0700, database and key 0600)",
       (st_dir, modes, r.get("audit_id")))
    shutil.rmtree(home, True)
else:
    from tap import skip
    skip("unprivileged user run", "needs root and setpriv to switch to an ordinary user")
    skip("unprivileged user audit dir", "needs root and setpriv to switch to an ordinary user")

# the code starts with a fresh process's signal state: airlock ignores
# SIGPIPE itself, and that must not reach the code through execve
rc, r = run("bash", "grep -E '^Sig(Blk|Ign)' /proc/self/status; yes | head -c 1 >/dev/null; "
            "echo \"yes: ${PIPESTATUS[0]}\"")
ok(r.get("stdout") == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nyes: 141\n",
   "the code has no blocked or ignored signal; yes | head ends yes by SIGPIPE (141)", r.get("stdout"))

subprocess.run(["rm", "-rf", tmp])

# --- alerts in human mode --------------------------------------------------
# a flagged run (it reads /proc/self) raises an alert; a person at a
# terminal gets one line of words, --json keeps the machine line
flag_code = "cat /proc/self/status > /dev/null; printf '\\033]0;x\\007'; echo done"
p = run_raw(["run", "--lang", "bash", "-c", flag_code])
err_lines = p.stderr.decode(errors="replace").splitlines()
alerts = [x for x in err_lines if "alert" in x]
ok(p.returncode == 0 and p.stdout.endswith(b"done\n") and len(alerts) == 1
   and alerts[0].startswith("airlock: alert flagged") and "/proc/self" in alerts[0]
   and not any(x.lstrip().startswith("{") or "airlock.audit.alert" in x for x in err_lines),
   "run in human mode: a flagged run's alert is one readable line, no JSON on the terminal", p)
p = run_raw(["run", "--json", "--lang", "bash", "-c", flag_code])
jl = [json.loads(x) for x in p.stderr.decode(errors="replace").splitlines() if x.startswith("{")]
ok(p.returncode == 0 and any(x.get("event") == "airlock.audit.alert" and x.get("alert") == "flagged" for x in jl),
   "run --json: the alert stays one JSON line on stderr for machines", p)


# fds 7 and 8 are the supervisor's slots for a live run's driver: in a run
# that is not live, an fd airlock inherited there must not reach the code
def is_open(n):
    try:
        os.fstat(n)
        return True
    except OSError:
        return False


slots = [n for n in (7, 8) if not is_open(n)]
if slots:
    src = os.open("/etc/hostname", os.O_RDONLY)
    for n in slots:
        os.dup2(src, n, inheritable=True)
    os.close(src)
    try:
        p = subprocess.run([BIN, "run", "--json", "--no-audit", "--lang", "python", "-c",
                            "import os; print(sorted(int(x) for x in os.listdir('/proc/self/fd')))"],
                           pass_fds=slots, capture_output=True, timeout=60)
    finally:
        for n in slots:
            os.close(n)
    r = json.loads(p.stdout or b"{}")
    ok(r.get("status") == "ok" and r.get("stdout") == "[0, 1, 2, 3]\n",
       "an inheritable fd given to airlock as fd %s does not reach the code (only 0-2 and listdir's own)"
       % "/".join(map(str, slots)), r.get("stdout"))
else:
    ok(True, "# SKIP fds 7 and 8 are both taken in this test process")
done()
