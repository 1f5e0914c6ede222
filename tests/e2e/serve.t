#!/usr/bin/python3
# airlock serve against a real HTTP client (curl): the data-driven cases in
# tests/http/*.txt (request and expected response side by side), then the
# cases that need more than one request (body cap, rate limit, queue
# overflow, SIGTERM during a run).
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, diag  # noqa: E402
from airlock import BIN, REPO  # noqa: E402

state = tempfile.mkdtemp(prefix="al-e2e-serve-")
os.chmod(state, 0o700)


def keys(*args):
    p = subprocess.run([BIN, "keys", *args, "--state", state, "--json"], capture_output=True, timeout=30)
    return json.loads(p.stdout.decode().splitlines()[-1]) if p.returncode == 0 else {"rc": p.returncode,
                                                                                     "err": p.stderr.decode()}


KEYS = {
    "KEY": keys("create", "--name", "main", "--scopes", "execute")["key"],
    "AUDIT_KEY": keys("create", "--name", "auditor", "--scopes", "audit:read")["key"],
    "REVOKED_KEY": keys("create", "--name", "old")["key"],
    "SMALL_KEY": keys("create", "--name", "small", "--max-memory", "128")["key"],
    "RATE_KEY": keys("create", "--name", "rated", "--rate", "3/min")["key"],
}
keys("revoke", "old")


def start(*extra):
    p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--state", state, *extra],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    line = p.stderr.readline().decode()
    port = json.loads(line).get("port") if line.startswith("{") else None
    lines = []
    threading.Thread(target=lambda: [lines.append(x.decode()) for x in p.stderr], daemon=True).start()
    return p, port, lines


def curl(port, method, path, headers=(), body=None, timeout=60):
    """-> (status, {header: value}, body bytes)"""
    args = ["curl", "-s", "-i", "-X", method, "--max-time", str(timeout), "http://127.0.0.1:%d%s" % (port, path)]
    for h in headers:
        args += ["-H", h]
    if body is not None:
        args += ["--data-binary", "@-", "-H", "Content-Type: application/json"]
    p = subprocess.run(args, input=body, capture_output=True, timeout=timeout + 10)
    raw = p.stdout
    head, _, rest = raw.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):
        head, _, rest = rest.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    m = re.match(r"HTTP/\S+ (\d+)", lines[0] if lines else "")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return (int(m.group(1)) if m else 0), hdrs, rest


def subset(want, got):
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and subset(v, got[k]) for k, v in want.items())
    return want == got


def parse_case(path):
    text = open(path).read()
    req, _, resp = text.partition("--- response\n")
    req = req.split("--- request\n", 1)[1]
    head, _, body = req.partition("\n\n")
    hl = head.strip("\n").split("\n")
    method, target = hl[0].split(" ", 1)
    headers = [h for h in hl[1:] if h.strip()]
    exp = {}
    for ln in resp.strip().split("\n"):
        k, _, v = ln.partition(": ")
        exp[k] = v
    return method, target, headers, (body.rstrip("\n") if body else None), exp


def subst(s):
    for k in sorted(KEYS, key=len, reverse=True):
        s = s.replace("$" + k, KEYS[k])
    return s


srv, port, log = start()
ok(port, "airlock serve starts on a free loopback port and logs it as JSON", port)

# --- 1. the data-driven cases ------------------------------------------------
for path in sorted(glob.glob(os.path.join(REPO, "tests", "http", "*.txt"))):
    name = os.path.basename(path)
    method, target, headers, body, exp = parse_case(path)
    st, hdrs, raw = curl(port, method, target, [subst(h) for h in headers],
                         subst(body).encode() if body is not None else None)
    why = []
    if st != int(exp["status"]):
        why.append("status %d, want %s" % (st, exp["status"]))
    try:
        got = json.loads(raw)
    except ValueError:
        got = None
        why.append("body is not JSON")
    if "json" in exp and not subset(json.loads(exp["json"]), got):
        why.append("body does not have %s" % exp["json"])
    for k in [x.strip() for x in exp.get("has", "").split(",") if x.strip()]:
        if not isinstance(got, dict) or k not in got:
            why.append("no field %s" % k)
    for s in [x.strip() for x in exp.get("contains", "").split(",") if x.strip()]:
        if s.encode() not in raw:
            why.append("body lacks %s" % s)
    if hdrs.get("content-type") != "application/json":
        why.append("content-type %s" % hdrs.get("content-type"))
    ok(not why, "%s: %s %s -> %s" % (name, method, target, exp["status"]), "; ".join(why) + "\n" + raw[:600].decode(errors="replace"))

# --- 2. every execute request is audited with the key as actor ----------------
time.sleep(0.2)
p = subprocess.run([BIN, "audit", "list", "--json", "--limit", "0", "--state", state], capture_output=True)
recs = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
actors = {r.get("actor") for r in recs}
main_id = KEYS["KEY"][4:16]
ok("key:" + main_id in actors and "anonymous" in actors and all(r.get("source") == "http" for r in recs),
   "audit: runs under key:%s, auth failures as anonymous, source http" % main_id, sorted(actors))
ok(any(r.get("status") == "rejected" and r.get("actor") == "key:" + main_id for r in recs),
   "audit: refused requests (bad input, policy) are recorded too", [r.get("status") for r in recs])
p = subprocess.run([BIN, "audit", "verify", "--state", state], capture_output=True)
ok(p.returncode == 0, "audit verify: the chain written by serve's threads is intact", p.stdout + p.stderr)

# --- 3. body cap, invalid UTF-8 -------------------------------------------------
st, hdrs, raw = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
                     b'{"language":"python","code":"' + b"x" * (11 << 20) + b'"}')
ok(st == 413 and json.loads(raw or b"{}").get("error", {}).get("code") == "body_too_large",
   "an 11 MiB body: 413 body_too_large", (st, raw[:300]))
st, hdrs, raw = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
                     b'{"language":"python","code":"print(\xff\xfe)"}')
ok(st == 400 and json.loads(raw or b"{}").get("error", {}).get("code") == "invalid_utf8",
   "code that is not UTF-8 without code_base64: 400 invalid_utf8", (st, raw[:300]))

# --- 4. rate limit ----------------------------------------------------------------
codes = []
for i in range(4):
    st, hdrs, raw = curl(port, "POST", "/v1/execute", ["X-API-Key: " + KEYS["RATE_KEY"]],
                         b'{"language":"bash","code":"true"}')
    codes.append((st, hdrs.get("retry-after")))
ok([c[0] for c in codes] == [200, 200, 200, 429] and codes[3][1] and int(codes[3][1]) >= 1,
   "a key of 3/min: the 4th request is 429 with Retry-After", codes)

# --- 5. logs ------------------------------------------------------------------------
reqs = [json.loads(x) for x in log if '"airlock.serve.request"' in x]
ok(reqs and all({"method", "path", "status", "key", "latency_ms", "id"} <= set(r) for r in reqs),
   "one JSON log line per request with status, key, latency and id", reqs[:2])
ok(not any(KEYS["KEY"] in x for x in log), "no log line holds a key", "")

# --- 6. SIGTERM during a long run: the run finishes, the server exits 0 ---------------
result = {}


def long_run():
    result["r"] = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
                       b'{"language":"python","code":"import time\\ntime.sleep(1.5)\\nprint(\\"done\\")"}')


t = threading.Thread(target=long_run)
t.start()
time.sleep(0.7)
srv.send_signal(signal.SIGTERM)
t.join(30)
rc = srv.wait(30)
st, hdrs, raw = result.get("r", (0, {}, b""))
ok(rc == 0 and st == 200 and json.loads(raw or b"{}").get("stdout") == "done\n",
   "SIGTERM during a run: the run finishes and is answered, then serve exits 0", (rc, st, raw[:300]))

# --- 7. SIGTERM with a run past the grace period: killed, audited, nothing left -------
srv, port, log = start("--grace", "1")
result.clear()
t = threading.Thread(target=lambda: result.update(r=curl(port, "POST", "/v1/execute",
                     ["Authorization: Bearer " + KEYS["KEY"]],
                     b'{"language":"python","code":"import time\\ntime.sleep(30)"}')))
t.start()
time.sleep(0.8)
t0 = time.time()
srv.send_signal(signal.SIGTERM)
rc = srv.wait(30)
t.join(30)
st, hdrs, raw = result.get("r", (0, {}, b""))
body = json.loads(raw or b"{}")
ok(rc == 0 and time.time() - t0 < 10 and body.get("status") == "killed",
   "SIGTERM, run past --grace 1: killed, answered, serve exits 0 (%.1f s)" % (time.time() - t0), (rc, st, raw[:300]))
rec = subprocess.run([BIN, "audit", "show", body.get("id", "x"), "--json", "--state", state], capture_output=True)
ok(b'"killed"' in rec.stdout, "its audit record is finished as killed", rec.stdout[:300])
left = subprocess.run(["pgrep", "-f", "time.sleep\\(30\\)"], capture_output=True)
ok(left.returncode == 1, "no process of the run is left", left.stdout)

# --- 8. queue overflow -> 503 and recovery --------------------------------------------
srv, port, log = start("--workers", "1", "--queue", "1")
res = []


def slow():
    res.append(curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
                    b'{"language":"python","code":"import time\\ntime.sleep(1)"}')[:2])


th = [threading.Thread(target=slow) for _ in range(4)]
for x in th:
    x.start()
    time.sleep(0.15)
for x in th:
    x.join(60)
codes = sorted(c[0] for c in res)
ok(codes.count(503) >= 1 and codes.count(200) >= 2 and all(c[1].get("retry-after") for c in res if c[0] == 503),
   "1 worker, queue of 1, 4 slow requests: the extra ones get 503 with Retry-After", codes)
st, hdrs, raw = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
                     b'{"language":"bash","code":"echo back"}')
ok(st == 200 and json.loads(raw).get("stdout") == "back\n", "after the burst: served again", (st, raw[:200]))
srv.send_signal(signal.SIGTERM)
srv.wait(30)

subprocess.run(["rm", "-rf", state])
done()
