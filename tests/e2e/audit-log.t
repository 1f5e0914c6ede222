#!/usr/bin/python3
"""The audit log as an operator uses it: records with the right fields,
refusals recorded, tampering with sqlite3 caught by `verify` at the right
record, a cut-off tail caught against an anchored head, prune, kill -9
leaving an `interrupted` record and no sandbox, fail closed on a read-only,
full or corrupted store, alerts to a webhook and a command, and code in the
sandbox that hunts for the database and the key."""
import hashlib
import http.server
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, skip, diag  # noqa: E402
from airlock import BIN, STATE, run, run_raw, sandbox_uid_procs  # noqa: E402
from host import procs_with, wait_until  # noqa: E402

tmp = tempfile.mkdtemp(prefix="al-e2e-audit-")


def audit(*args, state=STATE):
    """airlock audit ARGS --state STATE -> CompletedProcess (text)."""
    return subprocess.run([BIN, "audit"] + list(args) + ["--state", state],
                          capture_output=True, text=True, timeout=60)


def audit_json(*args, state=STATE):
    p = audit(*args, "--json", state=state)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        return p.returncode, {"raw": p.stdout, "err": p.stderr}


def listing(*args, state=STATE):
    p = audit("list", "--json", "--limit", "0", *args, state=state)
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def started_count(state):
    """started records so far; 0 while the store is still being created."""
    try:
        return db(state, "SELECT count(*) FROM records WHERE kind='started'")[0][0]
    except sqlite3.Error:
        return 0


def fresh_state(name):
    d = os.path.join(tmp, name)
    os.makedirs(d, mode=0o700)
    return d


def write_config(state, cfg):
    with open(os.path.join(state, "config.json"), "w") as f:
        json.dump(cfg, f)
    os.chmod(os.path.join(state, "config.json"), 0o600)


def db(state, sql, params=()):
    c = sqlite3.connect(os.path.join(state, "audit.db"))
    try:
        cur = c.execute(sql, params)
        rows = cur.fetchall()
        c.commit()
        return rows
    finally:
        c.close()


# --- 1. what a record holds ------------------------------------------------
code = "import sys\nprint('to-stdout'); print('to-stderr', file=sys.stderr)\nsys.exit(3)\n"
data = os.path.join(tmp, "data.csv")
with open(data, "w") as f:
    f.write("a,b\n1,2\n")
rc, r = run("python", code, "--user-id", "alice@example", "--agent-id", "agent-7",
            "--file", "in/data.csv=" + data)
aid = r.get("audit_id", "")
ok(r["status"] == "error" and len(aid) == 32, "a run's result carries its audit id", r)
rc2, x = audit_json("show", aid)
req, res = x.get("request", {}), x.get("result") or {}
ok(rc2 == 0 and x.get("status") == "error" and x.get("source") == "cli"
   and x.get("actor") == "user:root" and x.get("user_id") == "alice@example"
   and x.get("agent_id") == "agent-7" and x.get("language") == "python"
   and x.get("started_at", "").endswith("Z") and x.get("finished_at"),
   "the record names who, where from, what language, when (UTC, ms)", x)
ok(req.get("code", {}).get("sha256") == hashlib.sha256(code.encode()).hexdigest()
   and req["code"].get("text") == code and req["code"].get("bytes") == len(code),
   "the code is recorded with its SHA-256", req.get("code"))
ok(req.get("inputs") == [{"name": "in/data.csv", "bytes": 8,
                          "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest()}]
   and req.get("limits", {}).get("wall_ms") == 10000,
   "input files are recorded by name and hash, with the limits applied", req)
ok(res.get("exit_code") == 3 and res.get("signal") == 0 and res.get("wall_ms", -1) >= 0
   and res.get("memory_peak_bytes", 0) > 0
   and res.get("stdout", {}).get("preview") == "to-stdout\n"
   and res["stdout"].get("sha256") == hashlib.sha256(b"to-stdout\n").hexdigest()
   and res.get("stderr", {}).get("preview") == "to-stderr\n",
   "the outcome: exit code, signal, usage, stdout/stderr previews and hashes", res)
ok([rec["kind"] for rec in x.get("records", [])] == ["started", "finished"],
   "two chain records: started, then finished", x.get("records"))
rc2, xp = audit_json("show", aid[:8])
ok(rc2 == 0 and xp.get("id") == aid, "show finds the execution by a unique 8-digit prefix of its id", xp)
modes = {n: oct(os.stat(os.path.join(STATE, n)).st_mode & 0o777) for n in ("audit.db", "audit.key")}
modes["."] = oct(os.stat(STATE).st_mode & 0o777)
ok(modes == {".": "0o700", "audit.db": "0o600", "audit.key": "0o600"},
   "the state dir is 0700, the database and its key 0600", modes)

# several first runs at once on a machine without a store yet: each opens
# the new database and switches it to WAL; none may fail "database is locked"
first = []
for i in range(4):
    d = fresh_state("first-%d" % i)
    ps = [subprocess.Popen([BIN, "run", "--state", d, "--lang", "bash", "-c", "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(6)]
    first += [(p.wait(timeout=120), p.stderr.read().decode(errors="replace")[-300:]) for p in ps]
    for p in ps:
        p.stderr.close()
    first.append(("started records", started_count(d)))
bad = [f for f in first if f[0] not in (0, "started records") or (f[0] == "started records" and f[1] != 6)]
ok(not bad, "24 runs, 6 at a time on each of 4 new state dirs, all run and are recorded (none refused "
   "because another was creating the store)", bad)

# a long output is previewed (500 bytes) but hashed whole
rc, r = run("python", "print('x' * 5000)")
rc2, x = audit_json("show", r.get("audit_id", "none"))
out = (x.get("result") or {}).get("stdout", {})
ok(len(out.get("preview", "")) == 500 and out.get("bytes") == 5001
   and out.get("sha256") == hashlib.sha256(b"x" * 5000 + b"\n").hexdigest(),
   "stdout beyond the preview: 500 bytes kept, the hash covers all of it", out)

# --- 2. refusals are recorded ----------------------------------------------
before = {e["id"] for e in listing()}
p1 = run_raw(["run", "--json", "--lang", "cobol", "-c", "x"])
p2 = run_raw(["run", "--json", "--lang", "python", "--timeout", "-5", "-c", "print(1)"])
new = [e for e in listing() if e["id"] not in before]
codes = sorted((e.get("error") or {}).get("code", "") for e in new)
ok(p1.returncode == 2 and p2.returncode == 2 and len(new) == 2
   and all(e["status"] == "rejected" for e in new) and codes == ["invalid_limit", "unknown_language"],
   "refused requests (unknown language, bad limit) are recorded as rejected with their error code",
   json.dumps(new)[:1500])
ok(json.loads(p1.stdout).get("audit_id") in {e["id"] for e in new},
   "a refusal's JSON carries the audit id of its record", p1.stdout)

# flags
rc, r = run("python", "import base64\nprint(eval('1+1'))")
rc2, x = audit_json("show", r.get("audit_id", "none"))
ok(x.get("suspicious") is True and "base64" in x.get("flags", []) and "eval" in x.get("flags", [])
   and r["status"] == "ok",
   "suspicious patterns (base64, eval) flag the record; the run itself is unaffected", x.get("flags"))
ok(any(e["id"] == r.get("audit_id") for e in listing("--suspicious"))
   and all(e["suspicious"] for e in listing("--suspicious")),
   "list --suspicious shows flagged executions only")

p = audit("verify")
ok(p.returncode == 0 and p.stdout.startswith("OK:"), "verify: the untouched chain is OK", p.stdout + p.stderr)

# --- 3. tampering with sqlite3 ---------------------------------------------
base = fresh_state("tamper-base")
for i in range(5):
    run("sh", "echo run %d" % i, "--state", base)
n_base = db(base, "SELECT max(seq) FROM records")[0][0]
head_before = audit("head", state=base).stdout.strip()


def tampered(name, sql, params=()):
    d = os.path.join(tmp, "tamper-" + name)
    shutil.copytree(base, d)
    db(d, sql, params)
    return d


def verify_fails_at(d, seq, problem, *extra):
    rc, v = audit_json("verify", *extra, state=d)
    return rc == 1 and v.get("ok") is False and v.get("bad_seq") == seq and v.get("problem") == problem, v


fin = db(base, "SELECT seq FROM records WHERE kind='finished' ORDER BY seq LIMIT 1 OFFSET 1")[0][0]
d = tampered("stdout", "UPDATE records SET detail = replace(detail, 'run 1', 'run X') WHERE seq = ?", (fin,))
changed = db(d, "SELECT detail FROM records WHERE seq = ?", (fin,))[0][0]
good, v = verify_fails_at(d, fin, "modified")
ok(good and "run X" in changed, "stdout changed inside a record: verify fails at that record (modified)", v)

d = tampered("status", "UPDATE records SET status = 'ok' WHERE seq = 2")
d2 = tampered("status2", "UPDATE records SET status = 'error' WHERE seq = 2")
good, v = verify_fails_at(d2, 2, "modified")
ok(good, "only the status column changed: verify fails at that record (modified)", v)

d = tampered("delete", "DELETE FROM records WHERE seq = 5")
good, v = verify_fails_at(d, 5, "deleted")
ok(good, "a record deleted from the middle: verify fails at its position (deleted)", v)
ok(v.get("message") == "record 5 is missing: deleted",
   "one record deleted from the middle: the message names that one record", v.get("message"))

cols = "kind, id, ts, source, actor, user_id, agent_id, language, status, flags, detail, prev, hash, mac"
d = os.path.join(tmp, "tamper-swap")
shutil.copytree(base, d)
r3 = db(d, "SELECT %s FROM records WHERE seq = 3" % cols)[0]
r4 = db(d, "SELECT %s FROM records WHERE seq = 4" % cols)[0]
setters = ", ".join("%s = ?" % c.strip() for c in cols.split(","))
db(d, "UPDATE records SET %s WHERE seq = 3" % setters, r4)
db(d, "UPDATE records SET %s WHERE seq = 4" % setters, r3)
good, v = verify_fails_at(d, 3, "reordered")
ok(good, "two records swapped: verify fails at the first of them (reordered)", v)

head_hash = head_before.split(":")[1]
d = tampered("insert",
             "INSERT INTO records (seq, kind, id, ts, source, actor, status, detail, prev, hash, mac) "
             "VALUES (?, 'refused', 'deadbeefdeadbeefdeadbeefdeadbeef', '2026-01-01T00:00:00.000Z', 'cli', "
             "'user:root', 'rejected', '{}', ?, ?, ?)",
             (n_base + 1, head_hash, "ab" * 32, "cd" * 32))
good, v = verify_fails_at(d, n_base + 1, "inserted")
ok(good, "a forged record appended: verify fails at it (inserted: not airlock's MAC)", v)

d = tampered("truncate", "DELETE FROM records WHERE seq > ?", (n_base - 2,))
plain = audit("verify", state=d)
good, v = verify_fails_at(d, n_base, "truncated", "--expect-head", head_before)
ok(plain.returncode == 0 and good,
   "the tail cut off: the shorter chain is still consistent (why one anchors the head), "
   "and verify --expect-head catches it (truncated)", (plain.stdout, v))
run("sh", "echo later", "--state", base)
p = audit("verify", "--expect-head", head_before, state=base)
ok(p.returncode == 0, "an anchored head from before still verifies on the grown, untouched chain", p.stdout + p.stderr)

# --- 4. prune ---------------------------------------------------------------
pst = fresh_state("prune")
old_ids = [run("sh", "echo old", "--state", pst)[1].get("audit_id") for _ in range(3)]
time.sleep(1.3)
new_ids = [run("sh", "echo new", "--state", pst)[1].get("audit_id") for _ in range(2)]
pp = audit("prune", "--before", "1s", state=pst)
left = {e["id"] for e in listing(state=pst)}
rcv, v = audit_json("verify", state=pst)
ok(pp.returncode == 0 and "pruned 6 records" in pp.stdout and left == set(new_ids)
   and rcv == 0 and v.get("pruned") == 6,
   "prune --before 1s removes the older runs (6 records); the rest still verifies", (pp.stdout, left, v))
first = db(pst, "SELECT min(seq) FROM records")[0][0]
db(pst, "DELETE FROM records WHERE seq = ?", (first,))
rcv, v = audit_json("verify", state=pst)
ok(rcv == 1 and v.get("bad_seq") == first,
   "after a prune, deleting the record after the checkpoint is still caught", v)
last = db(pst, "SELECT kind FROM records ORDER BY seq DESC LIMIT 1")[0][0]
ps = audit("show", old_ids[0], state=pst)
ok(last == "pruned" and ps.returncode == 2 and "no execution" in ps.stderr,
   "the prune itself is the last record of the chain; a pruned id is no longer shown (exit 2)",
   (last, ps.returncode, ps.stderr))

# --- 5. kill -9 of airlock run: interrupted, and no sandbox left ------------
kst = fresh_state("kill")
marker = "al-audit-kill-%d" % os.getpid()
proc = subprocess.Popen([BIN, "run", "--json", "--state", kst, "--lang", "python", "-c",
                         "import time\n# %s\ntime.sleep(30)\n" % marker],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
started = wait_until(lambda: os.path.exists(os.path.join(kst, "audit.db"))
                     and started_count(kst) == 1 and sandbox_uid_procs(), 10)
running = listing(state=kst)
ok(len(running) == 1 and running[0]["status"] == "running",
   "while the code runs, its started record is listed as running", running)
time.sleep(0.3)
proc.kill()
proc.wait()
gone = wait_until(lambda: not procs_with(marker), 5)
intr = listing("--interrupted", state=kst)
rcv, v = audit_json("verify", state=kst)
ok(bool(started) and len(intr) == 1 and intr[0]["status"] == "interrupted" and intr[0]["result"] is None,
   "kill -9 of airlock mid-run: the execution is listed as interrupted", intr)
ok(gone is True or not procs_with(marker), "kill -9 of airlock mid-run: no process of the sandbox is left",
   procs_with(marker))
ok(rcv == 0 and v.get("interrupted") == 1, "verify counts the interrupted execution (and the chain is OK)", v)

# --- 6. fail closed ---------------------------------------------------------
have_unshare = shutil.which("unshare") is not None and os.geteuid() == 0


def in_private_mounts(script):
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60)


MARK = "CODE-RAN-%d" % os.getpid()
if have_unshare:
    ro = fresh_state("readonly")
    run("sh", "true", "--state", ro)  # the store exists
    p = in_private_mounts("mount --bind %s %s && mount -o remount,bind,ro %s && "
                          "exec %s run --json --state %s --lang sh -c 'echo %s'" % (ro, ro, ro, BIN, ro, MARK))
    try:
        j = json.loads(p.stdout)
    except ValueError:
        j = {}
    ok(p.returncode == 8 and j.get("error", {}).get("code") == "audit_unavailable"
       and MARK not in p.stdout and "read-only" in j.get("reason", "").lower(),
       "a read-only store: the run is refused (exit 8, audit_unavailable) and the code never runs",
       (p.returncode, p.stdout, p.stderr))

    full = os.path.join(tmp, "full-mnt")
    os.makedirs(full)
    p = in_private_mounts(
        "mount -t tmpfs -o size=256k tmpfs {m} && mkdir -m 700 {m}/s && "
        "{b} run --state {m}/s --lang sh -c true >/dev/null 2>&1; "
        "dd if=/dev/zero of={m}/fill bs=4k >/dev/null 2>&1; "
        "exec {b} run --json --state {m}/s --lang sh -c 'echo {mk}'".format(m=full, b=BIN, mk=MARK))
    try:
        j = json.loads(p.stdout)
    except ValueError:
        j = {}
    ok(p.returncode == 8 and j.get("error", {}).get("code") == "audit_unavailable" and MARK not in p.stdout,
       "a full disk under the store: the run is refused and the code never runs",
       (p.returncode, p.stdout, p.stderr))
else:
    skip("read-only store refuses the run", "needs root and unshare for a private read-only mount")
    skip("full store refuses the run", "needs root and unshare for a private tmpfs")

cst = os.path.join(tmp, "corrupt")
shutil.copytree(base, cst)
with open(os.path.join(cst, "audit.db"), "r+b") as f:
    f.write(b"\x00garbage" * 12)
for w in ("audit.db-wal", "audit.db-shm"):
    try:
        os.unlink(os.path.join(cst, w))
    except FileNotFoundError:
        pass
p = run_raw(["run", "--json", "--state", cst, "--lang", "sh", "-c", "echo " + MARK])
j = json.loads(p.stdout or b"{}")
ok(p.returncode == 8 and j.get("error", {}).get("code") == "audit_unavailable" and MARK.encode() not in p.stdout,
   "a corrupted store: the run is refused and the code never runs", (p.stdout, p.stderr))
p = audit("verify", state=cst)
ok(p.returncode == 8 and not p.stdout.startswith("OK"),
   "verify of a corrupted store exits 8 (cannot read); it does not claim OK", (p.stdout, p.stderr))

kst2 = fresh_state("badkey")
run("sh", "true", "--state", kst2)
os.chmod(os.path.join(kst2, "audit.key"), 0o644)
p = run_raw(["run", "--json", "--state", kst2, "--lang", "sh", "-c", "echo " + MARK])
ok(p.returncode == 8 and b"readable by others" in p.stdout and MARK.encode() not in p.stdout,
   "a key file others can read: the run is refused", p.stdout)

bst = fresh_state("badconfig")
write_config(bst, {"audit-bogus": 1})
p = run_raw(["run", "--json", "--state", bst, "--lang", "sh", "-c", "echo " + MARK])
ok(p.returncode == 8 and b"audit-bogus" in p.stdout and MARK.encode() not in p.stdout,
   "a config key it does not know: the run is refused, naming the key", p.stdout)

p = run_raw(["run", "--json", "--no-audit", "--state", cst, "--lang", "sh", "-c", "echo " + MARK])
ok(p.returncode == 0 and MARK.encode() in p.stdout and b"audit_id" not in p.stdout,
   "--no-audit runs without the log (even a broken one) and has no audit id", p.stdout)

# --- 7. alerts: webhook and command ----------------------------------------
posts = []


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        posts.append((self.path, self.headers.get("Content-Type"), self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=srv.serve_forever, daemon=True).start()
wst = fresh_state("webhook")
write_config(wst, {"alert-webhook": "http://127.0.0.1:%d/hook" % srv.server_address[1]})
p = run_raw(["run", "--json", "--state", wst, "--lang", "python", "-c", "import base64\nprint('fine')"])
r = json.loads(p.stdout)
got = wait_until(lambda: posts, 10)
body = json.loads(posts[0][2]) if posts else {}
ok(p.returncode == 0 and r["status"] == "ok" and got and posts[0][0] == "/hook"
   and posts[0][1] == "application/json" and body.get("alert") == "flagged"
   and body.get("id") == r.get("audit_id") and "base64" in body.get("flags", []),
   "a flagged run: the webhook on loopback receives the alert (id, flags); the run is unaffected",
   (p.stdout[:300], posts))
ok(b'"event":"airlock.audit.alert"' in p.stderr and b'"alert":"flagged"' in p.stderr,
   "the alert is also a structured log line on stderr", p.stderr)

dead = fresh_state("deadhook")
s = __import__("socket").socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()  # nothing listens there now
write_config(dead, {"alert-webhook": "http://127.0.0.1:%d/" % port, "alert-retries": 1})
p = run_raw(["run", "--json", "--state", dead, "--lang", "python", "-c", "exec('print(7)')"])
r = json.loads(p.stdout)
ok(p.returncode == 0 and r["status"] == "ok" and r["stdout"] == "7\n" and r.get("audit_id"),
   "a webhook nobody answers neither fails nor changes the run; the record is there", p.stdout)

cst2 = fresh_state("command")
sink = os.path.join(tmp, "alerts.jsonl")
write_config(cst2, {"alert-command": "cat >> %s" % sink, "alert-on": ["flagged", "timeout"]})
p = run_raw(["run", "--json", "--state", cst2, "--timeout", "0.5", "--lang", "python", "-c",
             "import socket, time\ntime.sleep(5)"])
r = json.loads(p.stdout)


def alerts():
    try:
        with open(sink) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


got = wait_until(lambda: len(alerts()) >= 2, 10)
kinds = sorted(a.get("alert") for a in alerts())
ok(r["status"] == "timeout" and kinds == ["failure", "flagged"]
   and all(a.get("id") == r.get("audit_id") for a in alerts())
   and [a.get("status") for a in alerts() if a.get("alert") == "failure"] == ["timeout"],
   "alert-command gets the JSON of each alert on stdin: flagged at the start, the timeout at the end",
   alerts())

# --- 8. the sandbox cannot reach the log ------------------------------------
hunt = r'''
import json, os
targets = %r
names = ("audit.db", "audit.key", "audit.db-wal")
found, readable, fds, walked = [], [], [], 0
for t in targets:
    for p in (t, "/proc/1/root" + t, "/proc/self/root" + t):
        try:
            with open(p, "rb") as f:
                f.read(16)
            readable.append(p)
        except OSError:
            pass
for root, dirs, files in os.walk("/"):
    if root in ("/proc", "/sys"):
        dirs[:] = []
        continue
    walked += len(files)
    found += [os.path.join(root, n) for n in files if n in names]
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        for fd in os.listdir("/proc/%%s/fd" %% pid):
            link = os.readlink("/proc/%%s/fd/%%s" %% (pid, fd))
            if any(n in link for n in names):
                fds.append(link)
    except OSError:
        pass
print(json.dumps({"found": found, "readable": readable, "fds": fds, "walked": walked}))
''' % ([os.path.join(STATE, "audit.db"), os.path.join(STATE, "audit.key"),
        "/var/lib/airlock/audit.db", "/var/lib/airlock/audit.key"],)
# a cold page cache makes the walk slow: a generous timeout
rc, r = run("python", hunt, "--timeout", "120", timeout=150)
try:
    verdict = json.loads(r["stdout"])
except ValueError:
    verdict = {}
walked = verdict.pop("walked", 0)
ok(r["status"] == "ok" and walked > 1000 and verdict == {"found": [], "readable": [], "fds": []},
   "code in the sandbox reading the database and key by path and via /proc/1/root, walking all of / "
   "and every /proc/*/fd finds neither",
   (r["status"], walked, r["stdout"][:500], r["stderr"][:500]))

prof = os.path.join(tmp, "expose.json")
with open(prof, "w") as f:
    json.dump({"version": 1, "languages": {"peek": {
        "aliases": [], "description": "binds the state dir's parent", "file": "main.sh",
        "run": ["/bin/sh", "{file}"], "ro_paths": [os.path.dirname(STATE)], "env": {}}}}, f)
rc, r = run("peek", "ls " + STATE, "--languages", prof)
ok(r["status"] == "rejected" and "protected state" in r["reason"] and STATE not in r["stdout"],
   "a profile that would mount the state directory's parent is rejected", r)

# --- 9. the CLI's own errors ------------------------------------------------
checks = [(["show", "nothex!"], "hex digits"), (["show", "0123456789ab"], "no execution"),
          (["prune"], "--before"), (["list", "--since", "yesterday"], "bad time"),
          (["verify", "--expect-head", "12:zz"], "hex digits"), (["frobnicate"], "unknown audit command")]
bad = []
for args, words in checks:
    p = audit(*args)
    if p.returncode != 2 or words not in p.stderr:
        bad.append((args, p.returncode, p.stderr))
ok(not bad, "audit show/prune/list/verify with bad input: exit 2 with a precise message", bad)

csv = audit("export", "--format", "csv").stdout.splitlines()
jl = audit("export", "--format", "jsonl").stdout.splitlines()
n_exec = len(listing())
ok(csv and csv[0].startswith("id,started_at,finished_at,source,actor") and len(csv) == n_exec + 1
   and len(jl) == n_exec and all(json.loads(line)["id"] for line in jl),
   "export: csv has a header and one line per execution; jsonl one object per line",
   (len(csv), len(jl), n_exec))
rcs, st = audit_json("stats")
ok(rcs == 0 and st.get("executions") == n_exec and st.get("by_status", {}).get("rejected", 0) >= 2
   and st.get("suspicious", 0) >= 1 and len(st.get("head", "")) == 64,
   "stats counts executions by status and flags, with the chain head", st)

# --- 10. one write to audit.db: planted schema objects, types and NULs -------
# (issue 17 item 14) whoever can write the file but lacks the key must not
# hide records from verify
tst = fresh_state("trigger")
for i in range(2):
    run("sh", "echo before %d" % i, "--state", tst)
anchor = audit("head", state=tst).stdout.strip()
db(tst, "CREATE TRIGGER x BEFORE INSERT ON records WHEN NEW.detail LIKE '%EVIL%' "
        "BEGIN SELECT RAISE(IGNORE); END;")
p = run_raw(["run", "--json", "--state", tst, "--lang", "python", "-c", 'print("EVIL ran")'])
try:
    j = json.loads(p.stdout)
except ValueError:
    j = {}
ok(p.returncode == 8 and j.get("error", {}).get("code") == "audit_unavailable"
   and b"EVIL ran" not in p.stdout and "trigger 'x'" in j.get("reason", ""),
   "a trigger planted in audit.db: the run is refused (exit 8, audit_unavailable) naming the trigger, "
   "and the code never runs", (p.returncode, p.stdout[:600]))
rcv, v = audit_json("verify", "--expect-head", anchor, state=tst)
ok(rcv == 1 and v.get("problem") == "schema" and "unexpected trigger 'x'" in v.get("message", ""),
   "verify --expect-head reports the planted trigger by name (schema)", v)
p = audit("verify", state=tst)
ok(p.returncode == 1 and p.stdout.startswith("FAILED: schema:") and "trigger 'x'" in p.stdout,
   "verify in human form: FAILED: schema: ... trigger 'x'", p.stdout)

for name, plant, named in (
        ("view", "CREATE VIEW v AS SELECT * FROM records", "unexpected view 'v'"),
        ("index", "CREATE INDEX i ON records(actor)", "unexpected index 'i' on 'records'"),
        ("table", "CREATE TABLE t (x)", "unexpected table 't'"),
        ("dropped-index", "DROP INDEX records_ts", "missing index 'records_ts'")):
    d = tampered("schema-" + name, plant)
    rcv, v = audit_json("verify", state=d)
    ok(rcv == 1 and v.get("problem") == "schema" and named in v.get("message", ""),
       "a %s changed in the schema: verify names it (%s)" % (name, named), v)

st_seq = db(base, "SELECT seq FROM records WHERE kind='started' ORDER BY seq LIMIT 1 OFFSET 2")[0][0]
st_id = db(base, "SELECT id FROM records WHERE seq = ?", (st_seq,))[0][0]
d = tampered("blobkind", "UPDATE records SET kind = CAST(kind AS BLOB) WHERE seq = ?", (st_seq,))
hidden = st_id not in {e["id"] for e in listing(state=d)}
good, v = verify_fails_at(d, st_seq, "modified")
ok(hidden and good and "column kind is a BLOB" in v.get("message", ""),
   "kind cast to a BLOB hides the run from list; verify fails at that record naming the column", v)
d = tampered("nulactor", "UPDATE records SET actor = actor || char(0) || 'x' WHERE seq = ?", (st_seq,))
hidden = st_id not in {e["id"] for e in listing("--actor", "user:root", state=d)}
good, v = verify_fails_at(d, st_seq, "modified")
ok(hidden and good and "actor holds a NUL" in v.get("message", ""),
   "a NUL and more appended to actor hides the run from --actor; verify fails at that record naming it", v)

# an index swapped through writable_schema: the schema's text is airlock's,
# but the index behind records_id leaves one execution out of every lookup
d = os.path.join(tmp, "tamper-index-swap")
shutil.copytree(base, d)
c = sqlite3.connect(os.path.join(d, "audit.db"), isolation_level=None)
for stmt in ("CREATE INDEX evil ON records(id, kind) WHERE id <> '%s'" % st_id.replace("'", "''"),
             "PRAGMA writable_schema=ON",
             "UPDATE sqlite_master SET rootpage=(SELECT rootpage FROM sqlite_master WHERE name='evil') "
             "WHERE name='records_id'",
             "DELETE FROM sqlite_master WHERE name='evil'"):
    c.execute(stmt)
c.close()
shown = audit("show", st_id, state=d)
rcv, v = audit_json("verify", state=d)
ok(rcv == 1 and v.get("problem") == "corrupt" and "index" in v.get("message", ""),
   "an index swapped in through writable_schema (it hides the run from show: %s): verify fails, corrupt"
   % ("hidden" if shown.returncode != 0 else "still shown"), (v, shown.stdout[-200:], shown.stderr[-200:]))

# --- 11. what the audit CLI prints cannot drive the terminal ------------------
# (issue 17 item 15) ESC[2K ESC[1G in a comment, an OSC title, a CR
tty_code = "print('harmless')  # \x1b[2K\x1b[1Gprint('what you think ran')\x1b]0;owned\x07\rX"
rc, r = run("python", tty_code, "--agent-id", "=HYPERLINK(\"http://x\")")
p = subprocess.run([BIN, "audit", "show", r.get("audit_id", "none")], capture_output=True, timeout=60)
ok(p.returncode == 0 and b"\x1b" not in p.stdout and b"\r" not in p.stdout and b"\x07" not in p.stdout
   and b"\\x1b[2K\\x1b[1G" in p.stdout and b"\\x1b]0;owned\\x07\\x0dX" in p.stdout,
   "audit show: ESC[2K ESC[1G, an OSC title and CR in the code are shown escaped, never sent raw",
   p.stdout[-800:])
rc, rx = run("sh", "true", "--user-id", "u\x1b[31mred")
p = subprocess.run([BIN, "audit", "show", rx.get("audit_id", "none")], capture_output=True, timeout=60)
ok(rx["status"] == "rejected" and p.returncode == 0 and b"\x1b" not in p.stdout
   and b"u\\x1b[31mred" in p.stdout,
   "audit show: an error text holding ESC (a refused --user-id) is shown escaped", p.stdout[-600:])
d = tampered("tty-actor", "UPDATE records SET actor = char(27) || ']0;owned' || char(7) || char(27) "
                         "|| '[2K' || char(13) WHERE seq = 1")
p = subprocess.run([BIN, "audit", "list", "--state", d], capture_output=True, timeout=60)
ok(p.returncode == 0 and b"\x1b" not in p.stdout and b"\r" not in p.stdout and b"\x07" not in p.stdout
   and b"\\x1b]0;owned" in p.stdout,
   "audit list: an actor written into the database with OSC, CSI and CR is shown escaped", p.stdout[-500:])
rows = [ln for ln in audit("export", "--format", "csv").stdout.splitlines() if r.get("audit_id", "-") in ln]
ok(len(rows) == 1 and ',"\'=HYPERLINK(""http://x"")",' in rows[0] and "\x1b" not in rows[0],
   "export csv: a cell starting with = gets a ' in front, inside its quotes (no formula)", rows)
rc, r2 = run("sh", "true", "--agent-id", "@SUM(A1)", "--user-id", "-2+3")
rows = [ln for ln in audit("export", "--format", "csv").stdout.splitlines() if r2.get("audit_id", "-") in ln]
ok(len(rows) == 1 and ",'-2+3,'@SUM(A1)," in rows[0],
   "export csv: cells starting with - and @ are neutralised too", rows)

# --- 12. kill -9 whose parent has not reaped it yet: a zombie is not running -----
# (issue 17 item 13)
zst = fresh_state("zombie")
zmark = "al-audit-zombie-%d" % os.getpid()
zp = subprocess.Popen([BIN, "run", "--json", "--state", zst, "--lang", "python", "-c",
                       "import time\n# %s\ntime.sleep(30)\n" % zmark],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
up = wait_until(lambda: os.path.exists(os.path.join(zst, "audit.db")) and started_count(zst) == 1, 10)
os.kill(zp.pid, signal.SIGKILL)   # and no wait(): the test is its parent


def zstate():
    try:
        with open("/proc/%d/stat" % zp.pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


is_zombie = wait_until(lambda: zstate() == "Z", 10)
zl = listing(state=zst)
ok(bool(up) and is_zombie and len(zl) == 1 and zl[0]["status"] == "interrupted",
   "airlock run killed with SIGKILL and not yet reaped (a zombie): listed as interrupted, not running",
   (zstate(), zl))
zp.wait()
wait_until(lambda: not procs_with(zmark), 5)

# --- 13. every stored field is capped; free space is shown -------------------
# (issue 17 item 6) through serve: a request body can carry 9 MB of args
sst = fresh_state("serve")
kp = subprocess.run([BIN, "keys", "create", "--name", "t", "--scopes", "execute", "--state", sst, "--json"],
                    capture_output=True, timeout=30)
skey = json.loads(kp.stdout.decode().splitlines()[-1])["key"]
sp = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--state", sst],
                      stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
line = sp.stderr.readline().decode()
sport = json.loads(line).get("port") if line.startswith("{") else None
threading.Thread(target=lambda: [None for _ in sp.stderr], daemon=True).start()


def http(method, path, body=None, key=skey):
    import urllib.request
    import urllib.error
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (sport, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if key:
        req.add_header("Authorization", "Bearer " + key)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw[:300]}


st, rz = http("GET", "/readyz", key=None)
store = rz.get("audit_store", {})
ok(sport and st == 200 and store.get("ok") is True and store.get("free_bytes", 0) > 0
   and store.get("min_free_bytes") == 64 << 20,
   "GET /readyz shows the audit store's free space, ok above the threshold", (st, rz))

run_db = lambda: sum(os.path.getsize(os.path.join(sst, n)) for n in ("audit.db", "audit.db-wal")
                     if os.path.exists(os.path.join(sst, n)))
size0 = run_db()
a5, a4 = "A" * (5 << 20), "B" * (4 << 20)
st, rr = http("POST", "/v1/execute", {"language": "sh", "code": "true", "args": [a5, a4],
                                      "env": {"1bad": "x"}})
grown = run_db() - size0
rcs, x = audit_json("show", rr.get("id", "none"), state=sst)
args = x.get("request", {}).get("args", [{}, {}])
ok(st == 400 and rcs == 0 and grown < 1 << 20
   and args[0].get("bytes") == 5 << 20 and args[0].get("sha256") == hashlib.sha256(a5.encode()).hexdigest()
   and len(args[0].get("preview", "")) == 1024 and args[1].get("bytes") == 4 << 20,
   "a refused request with args of 5 MB and 4 MB grows audit.db by %d bytes; the record keeps each "
   "arg's size, SHA-256 and a 1 KiB preview" % grown, (st, grown, json.dumps(args)[:300]))
p = audit("show", rr.get("id", "none"), state=sst)
ok("5242880 bytes, sha256 " + hashlib.sha256(a5.encode()).hexdigest() in p.stdout,
   "audit show reports the capped argument's size and hash", p.stdout[-600:])

# a trigger planted while serve runs: the next request fails closed
db(sst, "CREATE TRIGGER x BEFORE INSERT ON records BEGIN SELECT RAISE(IGNORE); END;")
n_before = db(sst, "SELECT count(*) FROM records")[0][0]
st, rr = http("POST", "/v1/execute", {"language": "sh", "code": "echo EVIL"})
n_after = db(sst, "SELECT count(*) FROM records")[0][0]
ok(st == 503 and rr.get("error", {}).get("code") == "audit_unavailable" and "stdout" not in rr
   and "trigger 'x'" in rr.get("error", {}).get("message", "") and n_after == n_before,
   "a trigger planted while serve runs: the request fails closed (503 audit_unavailable naming it), "
   "no phantom id", (st, rr, n_before, n_after))
sp.send_signal(signal.SIGTERM)
sp.wait(30)

p = subprocess.run([BIN, "doctor", "--state", sst], capture_output=True, text=True, timeout=120)
ok("audit.free_space" in p.stdout and "MiB free for the audit store" in p.stdout,
   "airlock doctor shows the audit store's free space", p.stdout[-800:])
# the trigger planted above is still there: doctor says why every run is refused
p = subprocess.run([BIN, "doctor", "--json", "--state", sst], capture_output=True, text=True, timeout=120)
chk = {c["name"]: c for c in json.loads(p.stdout or "{}").get("checks", [])}.get("audit.log", {})
ok(chk.get("state") == "missing" and "trigger 'x'" in chk.get("detail", "") and chk.get("fix"),
   "airlock doctor names the planted trigger in audit.log's check, with what to do", chk)

shutil.rmtree(tmp, True)
srv.shutdown()
done()
