#!/usr/bin/python3
# Where an allowlist is fixed besides the request, through the real binary,
# loopback only (an HTTP origin on the host's 127.0.0.1, named by IP, as in
# egress.t): a key's own list (keys create --allow-net, kept in keys.db,
# also one made by an older airlock), a policy file's network section
# (serve --policy narrows the server's ceiling; run --policy bounds
# --allow-net; its max_bytes caps the run), and a denied attempt flagging
# the run's audit record and raising one alert. Nothing asserts a duration.
import hashlib
import http.server
import json
import os
import shutil
import signal
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done  # noqa: E402
from airlock import BIN, run_raw, start_serve  # noqa: E402
from host import wait_until  # noqa: E402

ROOT = tempfile.mkdtemp(prefix="al-e2e-egpol-")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=ROOT, **kw)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


with open(os.path.join(ROOT, "hello.txt"), "w") as f:
    f.write("hello from the origin\n")
with open(os.path.join(ROOT, "big.txt"), "w") as f:
    f.write("x" * 8000)
srv = Server(("127.0.0.1", 0), Quiet)
PORT = srv.server_address[1]
threading.Thread(target=srv.serve_forever, daemon=True).start()
ORIGIN = "127.0.0.1:%d" % PORT
URL = "http://%s/hello.txt" % ORIGIN
BIG = "import urllib.request\nprint(len(urllib.request.urlopen('http://%s/big.txt', timeout=10).read()))" % ORIGIN
FETCH = ("import urllib.request\ntry:\n    print(urllib.request.urlopen(%r, timeout=10).read().decode(), end='')\n"
         "except Exception as e:\n    print('failed', getattr(e, 'code', type(e).__name__))" % URL)


def state_dir(name):
    d = os.path.join(ROOT, "state-" + name)
    os.makedirs(d, mode=0o700)
    return d


def keys(state, *args):
    return subprocess.run([BIN, "keys", *args, "--state", state], capture_output=True, text=True)


def policy(name, obj):
    path = os.path.join(ROOT, name)
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


def post(port, key, body):
    req = urllib.request.Request("http://127.0.0.1:%d/v1/execute" % port, json.dumps(body).encode(),
                                 {"Authorization": "Bearer " + key})
    try:
        with urllib.request.urlopen(req, timeout=60) as f:
            return f.status, json.loads(f.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(30)


def err(js):
    return js.get("error") or {}


# --- keys create --allow-net: checked, kept normalized, listed ---------------------------
st = state_dir("keys")
p = keys(st, "create", "--name", "origin", "--allow-net", ORIGIN, "--json")
korigin = json.loads(p.stdout)["key"] if p.returncode == 0 else ""
p = keys(st, "create", "--name", "pypi", "--allow-net", "PyPI.org:443", "--allow-net", "*.Pythonhosted.ORG", "--json")
kpypi = json.loads(p.stdout)["key"] if p.returncode == 0 else ""
p = keys(st, "create", "--name", "plain", "--json")
kplain = json.loads(p.stdout)["key"] if p.returncode == 0 else ""
listed = {x["name"]: x for x in map(json.loads, keys(st, "list", "--json").stdout.splitlines())}
ok(listed.get("pypi", {}).get("allow_net") == ["pypi.org:443", "*.pythonhosted.org"]
   and listed.get("origin", {}).get("allow_net") == [ORIGIN]
   and "allow_net" in listed.get("plain", {}) and listed["plain"]["allow_net"] is None,
   "keys create --allow-net: the list is kept normalized and shown by keys list --json (null: none)", listed)
p = keys(st, "create", "--name", "bad", "--allow-net", "a.*.example", "--json")
ok(p.returncode == 2 and "a.*.example" in p.stderr and "bad" not in keys(st, "list", "--json").stdout,
   "keys create --allow-net with a bad entry: exit 2 naming it, no key made", p.stderr)

# --- a keys.db made by an older airlock (no allow_net column) keeps working -----------------
old = state_dir("oldkeys")
secret = "ab" * 32
oldkey = "alk_0123456789ab_" + secret
c = sqlite3.connect(os.path.join(old, "keys.db"))
c.executescript("CREATE TABLE keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash BLOB NOT NULL,"
                " scopes INTEGER NOT NULL, rate_count INTEGER NOT NULL DEFAULT 0,"
                " rate_period_s INTEGER NOT NULL DEFAULT 0, max_concurrent INTEGER NOT NULL DEFAULT 0,"
                " max_memory_mb INTEGER NOT NULL DEFAULT 0, max_wall_ms INTEGER NOT NULL DEFAULT 0,"
                " created_at TEXT NOT NULL, revoked_at TEXT NOT NULL DEFAULT '');"
                "CREATE UNIQUE INDEX keys_active_name ON keys(name) WHERE revoked_at = '';")
c.execute("INSERT INTO keys (id, name, hash, scopes, created_at) VALUES (?, ?, ?, 1, ?)",
          ("0123456789ab", "legacy", hashlib.sha256(secret.encode()).digest(), "2025-01-01T00:00:00.000Z"))
c.commit()
c.close()
os.chmod(os.path.join(old, "keys.db"), 0o600)
p = keys(old, "list", "--json")
rows = [json.loads(x) for x in p.stdout.splitlines()]
ok(p.returncode == 0 and len(rows) == 1 and rows[0]["name"] == "legacy" and rows[0].get("allow_net", "absent") is None,
   "an old keys.db (no allow_net column) is migrated: its key is listed without a list", p.stdout + p.stderr)
p = keys(old, "create", "--name", "new", "--allow-net", ORIGIN, "--json")
ok(p.returncode == 0 and json.loads(p.stdout).get("allow_net") == [ORIGIN],
   "... and takes new keys with a list", p.stdout + p.stderr)
srvp, port, _ = start_serve(old, "--allow-net", ORIGIN)
s, js = post(port, oldkey, {"language": "python", "code": FETCH, "network": {"allow": [ORIGIN]}})
ok(s == 200 and js.get("stdout") == "hello from the origin\n",
   "the old key still authenticates and gets the server's ceiling", {k: js.get(k) for k in ("stdout", "error")})
stop(srvp)

# --- serve: a request within the key's list and the server's ----------------------------------
srvp, port, _ = start_serve(st, "--allow-net", ORIGIN + ",pypi.org:443,*.pythonhosted.org")
s, js = post(port, korigin, {"language": "python", "code": FETCH, "network": {"allow": [ORIGIN]}})
ok(s == 200 and js.get("stdout") == "hello from the origin\n",
   "a key whose list names the origin: the run reaches it", {k: js.get(k) for k in ("status", "stdout", "error")})
s, js = post(port, kpypi, {"language": "python", "code": FETCH, "network": {"allow": [ORIGIN]}})
ok(s == 400 and err(js).get("code") == "network_not_allowed" and "key" in err(js).get("message", "")
   and ORIGIN in err(js).get("message", ""),
   "a key whose list does not: 400 network_not_allowed naming the key's list and the entry", js)
s, js = post(port, kpypi, {"language": "python", "code": "print(1)", "network": {"allow": ["files.pythonhosted.org:443"]}})
ok(s == 200 and js.get("stdout") == "1\n", "a narrower request within the key's wildcard is taken", js)
s, js = post(port, kplain, {"language": "python", "code": FETCH, "network": {"allow": [ORIGIN]}})
ok(s == 200 and js.get("stdout") == "hello from the origin\n",
   "a key without a list has the server's ceiling", {k: js.get(k) for k in ("stdout", "error")})
s, js = post(port, korigin, {"language": "python", "code": FETCH, "network": {"allow": ["example.com"]}})
ok(s == 400 and err(js).get("code") == "network_not_allowed" and "--allow-net" in err(js).get("message", ""),
   "outside the server's list: the refusal names the server's --allow-net", js)
stop(srvp)

# --- serve --policy: its network section narrows the server's ceiling ---------------------------
pol = policy("pol.json", {"version": 1, "extends": "none", "network": {"allow": ["pypi.org:443"]}})
srvp, port, _ = start_serve(st, "--allow-net", ORIGIN + ",pypi.org:443", "--policy", pol)
s, js = post(port, kplain, {"language": "python", "code": FETCH, "network": {"allow": [ORIGIN]}})
ok(s == 400 and err(js).get("code") == "network_not_allowed" and "policy" in err(js).get("message", ""),
   "serve --policy with network.allow: a request outside it is refused, naming the policy", js)
s, js = post(port, kplain, {"language": "python", "code": "print(2)", "network": {"allow": ["pypi.org:443"]}})
ok(s == 200 and js.get("stdout") == "2\n", "... and one within it runs", js)
stop(srvp)
small = policy("small.json", {"version": 1, "extends": "none", "network": {"allow": [ORIGIN], "max_bytes": 2000}})
srvp, port, _ = start_serve(st, "--allow-net", ORIGIN, "--policy", small)
s, js = post(port, kplain, {"language": "python", "code": BIG, "network": {"allow": [ORIGIN]}})
ok(s == 200 and "net_bytes_in" in js.get("limits_hit", []) and js.get("stdout") != "8000\n",
   "the policy's max_bytes caps a served run's bytes (net_bytes_in in limits_hit)",
   {k: js.get(k) for k in ("stdout", "limits_hit", "network")})
stop(srvp)
bad = policy("bad.json", {"version": 1, "network": {"allow": ["pypi.org:0"]}})
p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--state", st, "--policy", bad],
                   capture_output=True, text=True, timeout=30)
ok(p.returncode != 0 and "network.allow[0]" in p.stderr and "pypi.org:0" in p.stderr,
   "a policy with a bad network entry does not load: serve does not start, the error names it", p.stderr[-400:])
for name, obj, words in [("nosec.json", {"version": 1, "network": ["pypi.org"]}, "network"),
                         ("extra.json", {"version": 1, "network": {"allow": [], "max": 1}}, "network.max"),
                         ("mb.json", {"version": 1, "network": {"allow": [], "max_bytes": 0}}, "max_bytes")]:
    p = run_raw(["check", "--policy", policy(name, obj), "--lang", "python", "-"], stdin=b"print(1)\n")
    ok(p.returncode == 2 and words.encode() in p.stderr, "a policy whose network section is malformed: %s" % words, p.stderr)

# --- run --policy: --allow-net within the policy's network section ---------------------------
rst = state_dir("run")
p = run_raw(["run", "--json", "--state", rst, "--lang", "python", "-c", "print(1)", "--policy", pol,
             "--allow-net", ORIGIN])
r = json.loads(p.stdout or b"{}")
ok(p.returncode == 2 and err(r).get("code") == "invalid_network" and ORIGIN in err(r).get("message", ""),
   "run --policy FILE --allow-net outside the policy's list: exit 2, invalid_network naming the entry", p.stdout)
p = run_raw(["run", "--json", "--state", rst, "--lang", "python", "-c", BIG, "--policy", small,
             "--policy-mode", "off", "--allow-net", ORIGIN])
r = json.loads(p.stdout or b"{}")
ok("net_bytes_in" in r.get("limits_hit", []) and r.get("stdout") != "8000\n" and not r.get("error"),
   "run --policy: within the list it runs, with the policy's max_bytes", {k: r.get(k) for k in ("stdout", "limits_hit", "error")})
p = run_raw(["run", "--json", "--state", rst, "--lang", "python", "-c", BIG, "--allow-net", ORIGIN])
r = json.loads(p.stdout or b"{}")
ok(p.returncode == 0 and r.get("stdout") == "8000\n" and not r.get("limits_hit"),
   "without --policy the same run is not capped", {k: r.get(k) for k in ("stdout", "limits_hit")})

# --- a denied attempt flags the run and raises one alert ------------------------------------------
ast = state_dir("alerts")
sink = os.path.join(ROOT, "alerts.jsonl")
with open(os.path.join(ast, "config.json"), "w") as f:
    json.dump({"alert-command": "cat >> %s" % sink, "alert-on": ["flagged"]}, f)
os.chmod(os.path.join(ast, "config.json"), 0o600)
code = ("import urllib.request\n"
        "for u in ['http://a.invalid/', 'http://a.invalid/x', 'http://b.invalid:8080/', %r]:\n"
        "    try:\n        print(urllib.request.urlopen(u, timeout=10).read().decode(), end='')\n"
        "    except Exception as e:\n        print('denied', getattr(e, 'code', ''))\n" % URL)
p = run_raw(["run", "--json", "--state", ast, "--lang", "python", "-c", code, "--allow-net", ORIGIN])
r = json.loads(p.stdout or b"{}")


def alerts():
    try:
        with open(sink) as f:
            return [json.loads(x) for x in f if x.strip()]
    except (OSError, ValueError):
        return []


def denied_alerts(rid):
    return [a for a in alerts() if a.get("id") == rid and "net_denied" in a.get("flags", [])]


# (its code is flagged at the start too, by the default policy's findings:
# that alert is the existing one; the run's denials make exactly one more)
wait_until(lambda: denied_alerts(r.get("audit_id")), 10)
al = denied_alerts(r.get("audit_id"))
ok(r.get("status") == "ok" and "hello from the origin" in r.get("stdout", "") and len(al) == 1
   and al[0].get("alert") == "flagged" and al[0].get("reason", "").startswith("egress denied:")
   and "a.invalid:80 (x2)" in al[0].get("reason", "") and "b.invalid:8080" in al[0].get("reason", ""),
   "denied attempts: one flagged alert for the run, naming each host:port once (coalesced)", alerts())
lst = subprocess.run([BIN, "audit", "list", "--json", "--suspicious", "--state", ast], capture_output=True, text=True)
rows = [json.loads(x) for x in lst.stdout.splitlines() if x.strip()]
rows = rows[0] if len(rows) == 1 and isinstance(rows[0], list) else rows
ok(any(x.get("id") == r.get("audit_id") and "net_denied" in x.get("flags", []) for x in rows),
   "audit list --suspicious shows the run with the flag net_denied", lst.stdout[-600:] + lst.stderr[-300:])
human = subprocess.run([BIN, "audit", "list", "--state", ast], capture_output=True, text=True)
ok("net_denied" in human.stdout, "... and so does the FLAGS column of audit list", human.stdout[-600:])
p = run_raw(["run", "--json", "--state", ast, "--lang", "python", "-c", FETCH, "--allow-net", ORIGIN])
r = json.loads(p.stdout or b"{}")
wait_until(lambda: [a for a in alerts() if a.get("id") == r.get("audit_id")], 10)
ok(r.get("stdout") == "hello from the origin\n" and [a for a in alerts() if a.get("id") == r.get("audit_id")]
   and not denied_alerts(r.get("audit_id")),
   "a run whose connections were all allowed: no net_denied alert (only its start's)", alerts())

srv.shutdown()
shutil.rmtree(ROOT, ignore_errors=True)
done()
