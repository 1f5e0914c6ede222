#!/usr/bin/python3
# airlock serve against a real HTTP client (curl): the data-driven cases in
# tests/http/*.txt (request and expected response side by side), then the
# cases that need more than one request (body cap, rate limit, queue
# overflow, SIGTERM during a run).
import base64
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, diag, skip  # noqa: E402
from airlock import start_serve, BIN, REPO, sandbox_uid_procs, slot_busy  # noqa: E402
from httpload import load  # noqa: E402
from openapi import OPENAPI, SEEN_OPS, conforms  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

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
    "OTHER_KEY": keys("create", "--name", "other-team", "--scopes", "execute")["key"],
    "ONE_KEY": keys("create", "--name", "one-at-a-time", "--max-concurrent", "1")["key"],
    "CEIL_KEY": keys("create", "--name", "ceilings", "--max-memory", "64", "--max-wall", "2", "--max-output",
                     "4096", "--max-disk", "16", "--max-collect", "1")["key"],
}
KEYS["KEY_ID"] = KEYS["KEY"][4:16]
keys("revoke", "old")


def start(*extra):
    p, port, lines = start_serve(state, *extra)
    return p, port, lines


def curl(port, method, path, headers=(), body=None, timeout=60, scheme="http", extra=()):
    """-> (status, {header: value}, body bytes); every response is checked
    against the OpenAPI document (MISMATCHES)."""
    args = ["curl", "-s", "-i", "-X", method, "--max-time", str(timeout), *extra,
            "%s://127.0.0.1:%d%s" % (scheme, port, path)]
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
    status = int(m.group(1)) if m else 0
    why = conforms(method, path, status, hdrs, rest) if status else ""
    if why:
        MISMATCHES.append("%s %s -> %d: %s" % (method, path, status, why))
    return status, hdrs, rest


MISMATCHES = []


def subset(want, got):
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and subset(v, got[k]) for k, v in want.items())
    return want == got


def parse_case(path):
    text = subst(open(path).read())
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


# --- the OpenAPI document: every response must match it (lib/openapi.py) ---
seen_ops = SEEN_OPS


srv, port, log = start()
ok(port, "airlock serve starts on a free loopback port and logs it as JSON", port)
st, hdrs, raw = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
                     b'{"language":"python","code":"print(1)"}')
KEYS["RUN_ID"] = json.loads(raw).get("id", "none") if st == 200 else "none"

# --- 1. the data-driven cases ------------------------------------------------
for path in sorted(glob.glob(os.path.join(REPO, "tests", "http", "*.txt"))):
    name = os.path.basename(path)
    method, target, headers, body, exp = parse_case(path)
    st, hdrs, raw = curl(port, method, target, headers, body.encode() if body is not None else None)
    why = []
    if st != int(exp["status"]):
        why.append("status %d, want %s" % (st, exp["status"]))
    want_ct = exp.get("content-type", "application/json")
    try:
        got = json.loads(raw) if want_ct == "application/json" else None
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
    if hdrs.get("content-type") != want_ct:
        why.append("content-type %s" % hdrs.get("content-type"))
    c = conforms(method, target, st, hdrs, raw)
    if c:
        why.append("OpenAPI: " + c)
    ok(not why, "%s: %s %s -> %s" % (name, method, target, exp["status"]), "; ".join(why) + "\n" + raw[:600].decode(errors="replace"))

# --- 1b. a session through every session route (sessions.t tests them in depth) --
auth = ["Authorization: Bearer " + KEYS["KEY"]]
st, _, raw = curl(port, "POST", "/v1/sessions", auth, b'{"language":"python"}')
sid = json.loads(raw).get("id", "none") if st == 201 else "none"
steps = [st]
for method, path, body in (("GET", "/v1/sessions", None), ("GET", "/v1/sessions/" + sid, None),
                           ("POST", "/v1/sessions/%s/execute" % sid, b'{"code":"x = 6\\nx * 7"}'),
                           ("POST", "/v1/sessions/%s/interrupt" % sid, b"{}"),
                           ("GET", "/v1/sessions/%s/files?dir=" % sid, None),
                           ("GET", "/v1/sessions/%s/files/none.txt" % sid, None)):
    steps.append(curl(port, method, path, auth, body)[0])
p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "--data-binary", "hi", "-H",
                    auth[0], "http://127.0.0.1:%d/v1/sessions/%s/files/a.txt" % (port, sid)], capture_output=True)
st, hdrs, raw = curl(port, "GET", "/v1/sessions/%s/files/a.txt" % sid, auth)
steps += [p.stdout.decode(), raw.decode(errors="replace"), curl(port, "DELETE", "/v1/sessions/" + sid, auth)[0]]
ok(steps == [201, 200, 200, 200, 200, 200, 404, "201", "hi", 200],
   "a session: create, list, show, a cell, interrupt, list files, a missing file, put and get one, delete", steps)

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

# --- 5b. artifacts: a matplotlib plot comes back as image/png -----------------------
plot = ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "plt.plot([1, 4, 9, 16])\nplt.title('squares')\nplt.savefig('plot.png')\nprint('saved')\n")
st, hdrs, raw = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
                     json.dumps({"language": "python", "code": plot, "collect": ["*.png"],
                                 "limits": {"memory_mb": 512}}).encode())
body = json.loads(raw or b"{}")
files = body.get("files", [])
png = base64.b64decode(files[0]["content_base64"]) if files else b""
ok(st == 200 and body.get("status") == "ok" and len(files) == 1 and files[0]["mime"] == "image/png"
   and files[0]["name"] == "plot.png" and png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) == files[0]["size"]
   and int.from_bytes(png[16:20], "big") > 100,
   "a matplotlib plot: files[0] is plot.png, image/png, a real PNG of the stated size (%d bytes)" % len(png),
   (st, body.get("status"), body.get("stderr", "")[-300:], [(f["name"], f["mime"], f["size"]) for f in files]))

# --- 5c. audit reads: the record of a run as the key that made it --------------------
rid = body.get("id", "none")
st, hdrs, raw = curl(port, "GET", "/v1/executions/" + rid[:8], ["Authorization: Bearer " + KEYS["AUDIT_KEY"]])
rec = json.loads(raw or b"{}")
ok(st == 200 and rec.get("id") == rid and rec.get("status") == "ok"
   and [r.get("kind") for r in rec.get("records", [])] == ["started", "finished"],
   "GET /v1/executions/{8-digit prefix}: the run's record with its started and finished chain records",
   (st, raw[:300]))
cli = subprocess.run([BIN, "audit", "show", rid, "--json", "--state", state], capture_output=True)
cli_rec = json.loads(cli.stdout or b"{}")
ok(cli.returncode == 0 and cli_rec == rec, "... the same object as airlock audit show --json",
   (cli.stderr[:300], {k: (rec.get(k), cli_rec.get(k)) for k in set(rec) | set(cli_rec) if rec.get(k) != cli_rec.get(k)}))

# --- 5d. metrics: parsed by the Prometheus client library's own parser ----------------
st, hdrs, raw = curl(port, "GET", "/metrics")
fams = {}
try:
    for f in text_string_to_metric_families(raw.decode()):
        fams[f.name] = f
    parse_error = None
except Exception as e:  # noqa: BLE001 - any parse failure is the finding
    parse_error = repr(e)
ok(st == 200 and parse_error is None and fams, "GET /metrics parses as Prometheus text (%d families)" % len(fams),
   parse_error or raw[:300])


def sample(fam, name, **labels):
    f = fams.get(fam)
    for smp in (f.samples if f else []):
        if smp.name == name and all(smp.labels.get(k) == v for k, v in labels.items()):
            return smp.value
    return None


ok((sample("airlock_http_requests", "airlock_http_requests_total", route="/v1/execute", status="200") or 0) >= 5
   and (sample("airlock_http_requests", "airlock_http_requests_total", route="/v1/execute", status="401") or 0) >= 2
   and (sample("airlock_http_requests", "airlock_http_requests_total", route="/v1/audit", status="200") or 0) >= 1,
   "requests counted by route and status (execute 200 and 401, audit 200)",
   [x for x in raw.decode().splitlines() if x.startswith("airlock_http_requests_total")])
ok((sample("airlock_executions", "airlock_executions_total", language="python", status="ok") or 0) >= 3
   and (sample("airlock_executions", "airlock_executions_total", language="python", status="timeout") or 0) >= 1
   and (sample("airlock_executions", "airlock_executions_total", language="python", status="rejected") or 0) >= 1,
   "executions by language and status: python ok, timeout, rejected (policy)",
   [x for x in raw.decode().splitlines() if x.startswith("airlock_executions_total")])
h = fams.get("airlock_execution_duration_seconds")
buckets = [smp.value for smp in (h.samples if h else []) if smp.name.endswith("_bucket")
           and smp.labels.get("language") == "python"]
ok(h and buckets == sorted(buckets) and buckets[-1] == sample("airlock_execution_duration_seconds",
                                                               "airlock_execution_duration_seconds_count",
                                                               language="python"),
   "latency histogram: cumulative buckets, +Inf = count", buckets)
ok(sample("airlock_queue_depth", "airlock_queue_depth") == 0 and sample("airlock_active_sandboxes",
                                                                         "airlock_active_sandboxes") == 0
   and sample("airlock_audit_failures", "airlock_audit_failures_total") == 0
   and (sample("airlock_requests_refused", "airlock_requests_refused_total") or 0) >= 10
   and sample("airlock_workers", "airlock_workers") >= 1,
   "gauges at rest: queue 0, active 0; audit failures 0; refusals counted", "")

# --- 5e. per-key concurrency: max_concurrent 1 -> the second at once is 429 ----------
res = []
th = [threading.Thread(target=lambda: res.append(curl(port, "POST", "/v1/execute", ["X-API-Key: " + KEYS["ONE_KEY"]],
                                                      b'{"language":"bash","code":"sleep 1"}')[:2]))
      for _ in range(2)]
for x in th:
    x.start()
    time.sleep(0.2)
for x in th:
    x.join(30)
ok(sorted(c[0] for c in res) == [200, 429] and any(c[1].get("retry-after") for c in res if c[0] == 429),
   "a key with max_concurrent 1: a second run at once is 429 with Retry-After", res)

# --- 5f. keys change while serving: new ones work at once, revoked ones stop ----------
tmp = keys("create", "--name", "short-lived")
firsts = [curl(port, "GET", "/v1/audit?limit=1", ["X-API-Key: " + tmp["key"]])[0] for _ in range(3)]
srv.send_signal(signal.SIGHUP)
time.sleep(0.3)
st2 = curl(port, "GET", "/v1/audit?limit=1", ["X-API-Key: " + tmp["key"]])[0]
ok(firsts == [200, 200, 200] and st2 == 200,
   "a key created while serving works at once, the first request too (%s), and after SIGHUP (%d)" % (firsts, st2), "")
keys("revoke", "short-lived")
tries = []
for _ in range(40):  # the keys are re-read every second: well within 10 s
    st, hdrs, raw = curl(port, "GET", "/v1/audit?limit=1", ["X-API-Key: " + tmp["key"]])
    tries.append(st)
    if st == 401:
        break
    time.sleep(0.25)
ok(tries[-1] == 401 and json.loads(raw or b"{}").get("error", {}).get("code") == "invalid_api_key",
   "revoked while serving, the key is refused (401 invalid_api_key) after %d tries" % len(tries), tries)


def lookups(port):
    text = curl(port, "GET", "/metrics")[2].decode()
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'^airlock_key_lookups_total\{result="(\w+)"\} (\d+)$', text, re.M)}


# a burst of unknown (well-formed) keys: each 401, and keys.db is looked up
# at most at the lookup rate (20 at once, 20/s), the rest refused from the cache
import urllib.request  # noqa: E402
import urllib.error  # noqa: E402


def get(port, path, key=None, timeout=60):
    """-> (status, body bytes) over urllib (fast: no curl process)."""
    rq = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if key:
        rq.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(rq, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


before = lookups(port)
N_UNKNOWN = 300
bogus = ["alk_%s_%s" % (os.urandom(6).hex(), os.urandom(32).hex()) for _ in range(N_UNKNOWN)]
got = []
t0 = time.monotonic()
workers = [threading.Thread(target=lambda part: got.extend(
    (st, json.loads(b or b"{}").get("error", {}).get("code")) for st, b in
    (get(port, "/v1/audit?limit=1", k) for k in part)), args=(bogus[i::6],)) for i in range(6)]
for x in workers:
    x.start()
for x in workers:
    x.join(120)
elapsed = time.monotonic() - t0
after = lookups(port)
done_lookups = sum(after.get(r, 0) - before.get(r, 0) for r in ("found", "unknown", "error"))
limited = after.get("rate_limited", 0) - before.get("rate_limited", 0)
ok(len(got) == N_UNKNOWN and all(g == (401, "invalid_api_key") for g in got),
   "%d unknown keys at once: every one 401 invalid_api_key" % N_UNKNOWN, sorted(set(got)))
ok(after and done_lookups + limited == N_UNKNOWN and done_lookups <= 20 + 20 * elapsed + 1,
   "... keys.db was looked up %d times in %.1f s (at most 20 + 20/s), %d refused from the cache "
   "(airlock_key_lookups_total)" % (done_lookups, elapsed, limited), (before, after))

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
busy = curl(port, "GET", "/metrics")[2].decode()
for x in th:
    x.join(60)
ok("airlock_active_sandboxes 1\n" in busy and "airlock_queue_depth 1\n" in busy,
   "during the burst, /metrics shows 1 active sandbox and 1 queued request",
   [x for x in busy.splitlines() if x.startswith(("airlock_active", "airlock_queue"))])
codes = sorted(c[0] for c in res)
ok(codes.count(503) >= 1 and codes.count(200) >= 2 and all(c[1].get("retry-after") for c in res if c[0] == 503),
   "1 worker, queue of 1, 4 slow requests: the extra ones get 503 with Retry-After", codes)
st, hdrs, raw = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
                     b'{"language":"bash","code":"echo back"}')
ok(st == 200 and json.loads(raw).get("stdout") == "back\n", "after the burst: served again", (st, raw[:200]))
srv.send_signal(signal.SIGTERM)
srv.wait(30)

# --- 9. queue timeout: a request that waits longer than --queue-timeout -------------
srv, port, log = start("--workers", "1", "--queue", "4", "--queue-timeout", "1")
res = {}
t = threading.Thread(target=lambda: res.update(a=curl(port, "POST", "/v1/execute",
                     ["Authorization: Bearer " + KEYS["KEY"]], b'{"language":"bash","code":"sleep 2.5"}')))
t.start()
time.sleep(0.3)
st, hdrs, raw = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
                     b'{"language":"bash","code":"echo late"}')
t.join(30)
body = json.loads(raw or b"{}")
ok(st == 503 and body.get("error", {}).get("code") == "queue_timeout" and hdrs.get("retry-after")
   and res.get("a", (0,))[0] == 200,
   "--queue-timeout 1 behind a 2.5 s run: 503 queue_timeout with Retry-After (the first run still 200)",
   (st, raw[:300]))
rec = subprocess.run([BIN, "audit", "show", body.get("id", "x"), "--json", "--state", state], capture_output=True)
rec = json.loads(rec.stdout or b"{}")
ok(rec.get("status") == "rejected" and rec.get("error", {}).get("code") == "queue_timeout"
   and rec.get("actor") == "key:" + KEYS["KEY_ID"], "... and audited as refused, queue_timeout, with the key as actor",
   rec)
srv.send_signal(signal.SIGTERM)
srv.wait(30)

# --- 10. TLS --------------------------------------------------------------------------
tls = tempfile.mkdtemp(prefix="al-e2e-tls-")
gen = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                      "-keyout", tls + "/key.pem", "-out", tls + "/cert.pem", "-subj", "/CN=127.0.0.1",
                      "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True)
ok(gen.returncode == 0, "a self-signed certificate for the test", gen.stderr[-300:])
srv, port, log = start("--tls-cert", tls + "/cert.pem", "--tls-key", tls + "/key.pem")
st, hdrs, raw = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
                     b'{"language":"bash","code":"echo over tls"}', scheme="https",
                     extra=("--cacert", tls + "/cert.pem"))
ok(st == 200 and json.loads(raw or b"{}").get("stdout") == "over tls\n",
   "--tls-cert/--tls-key: HTTPS with a certificate curl verifies", (st, raw[:200]))
st_plain = curl(port, "GET", "/healthz", timeout=5)[0]
ok(st_plain != 200, "plain HTTP to the TLS port gets no answer (%d)" % st_plain, "")
srv.send_signal(signal.SIGTERM)
srv.wait(30)
subprocess.run(["rm", "-rf", tls])

# --- 11. --config: keys mirror the long flags ----------------------------------------------
cfg = os.path.join(state, "serve.json")
with open(cfg, "w") as f:
    json.dump({"workers": 1, "queue": 2, "metrics-auth": True, "policy-mode": "enforce"}, f)
srv, port, log = start("--config", cfg)
st_anon = curl(port, "GET", "/metrics")[0]
st, hdrs, raw = curl(port, "GET", "/metrics", ["Authorization: Bearer " + KEYS["AUDIT_KEY"]])
text = raw.decode()
ok(st_anon == 401 and st == 200 and "airlock_workers 1\n" in text and "airlock_queue_capacity 2\n" in text,
   "--config {workers 1, queue 2, metrics-auth}: /metrics wants a key and shows 1 worker, queue 2",
   (st_anon, st, [x for x in text.splitlines() if x.startswith(("airlock_workers", "airlock_queue_cap"))]))
st = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
          b'{"language":"python","code":"import subprocess"}')[0]
ok(st == 422, "--config policy-mode enforce: a forbidden import is refused (422)", st)
srv.send_signal(signal.SIGTERM)
srv.wait(30)
# SIGHUP re-reads the --policy file; one that no longer loads leaves the old one
pol = os.path.join(state, "policy.json")
with open(pol, "w") as f:
    json.dump({"version": 1, "extends": "none", "rules": []}, f)
srv, port, log = start("--policy", pol, "--policy-mode", "enforce")
req = b'{"language":"python","code":"import subprocess"}'
st1 = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]], req)[0]
with open(pol, "w") as f:
    json.dump({"version": 1, "extends": "default"}, f)
srv.send_signal(signal.SIGHUP)
time.sleep(0.5)
st2 = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]], req)[0]
with open(pol, "w") as f:
    f.write("{not json")
srv.send_signal(signal.SIGHUP)
time.sleep(0.5)
st3 = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]], req)[0]
ok((st1, st2, st3) == (200, 422, 422) and any("reload_failed" in x for x in log),
   "SIGHUP reloads --policy: an empty policy lets subprocess run (200), the default after SIGHUP refuses it "
   "(422), a broken file keeps the last good one (422, reload_failed logged)", (st1, st2, st3))
srv.send_signal(signal.SIGTERM)
srv.wait(30)
for bad, why in [({"listen": "127.0.0.1:0", "colour": "red"}, "colour"),
                 ({"metrics-auth": "yes"}, "true or false"), ({"workers": 0}, "workers")]:
    with open(cfg, "w") as f:
        json.dump(bad, f)
    p = subprocess.run([BIN, "serve", "--config", cfg, "--state", state], capture_output=True, timeout=30)
    ok(p.returncode == 2 and why.encode() in p.stderr, "a bad config %s: exit 2 naming the problem" % json.dumps(bad),
       (p.returncode, p.stderr[-300:]))

# the sample config and the systemd unit under contrib/
srv, port, log = start("--config", os.path.join(REPO, "contrib", "serve.json"))
st_anon = curl(port, "GET", "/metrics")[0]
st = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]],
          b'{"language":"python","code":"import subprocess"}')[0]
ok(port and st_anon == 401 and st == 422, "contrib/serve.json loads: metrics want a key, policy enforced",
   (st_anon, st))
srv.send_signal(signal.SIGTERM)
srv.wait(30)
if subprocess.run(["sh", "-c", "command -v systemd-analyze"], capture_output=True).returncode == 0:
    unit_dir = tempfile.mkdtemp(prefix="al-e2e-unit-")
    unit = open(os.path.join(REPO, "contrib", "airlock-serve.service")).read().replace(
        "/usr/local/bin/airlock", BIN)
    with open(os.path.join(unit_dir, "airlock-serve.service"), "w") as f:
        f.write(unit)
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", os.path.join(unit_dir, "airlock-serve.service")],
                       capture_output=True, timeout=60)
    ok(p.returncode == 0 and not p.stderr.strip(), "contrib/airlock-serve.service: systemd-analyze verify is clean",
       p.stderr[-500:])
    subprocess.run(["rm", "-rf", unit_dir])
else:
    skip("contrib/airlock-serve.service: systemd-analyze verify", "systemd-analyze is not installed here")

# --- 11b. the first requests of a fresh server, all at once ---------------------------
# (the language registry and the runtime directory are set up on first use,
# by whichever thread comes first)
firsts = []
for attempt in range(3):
    srv, port, log = start()
    res = []
    th = [threading.Thread(target=lambda: res.append(curl(port, "POST", "/v1/execute",
          ["Authorization: Bearer " + KEYS["KEY"]], b'{"language":"sh","code":"echo first"}')[0]))
          for _ in range(16)]
    for x in th:
        x.start()
    for x in th:
        x.join(60)
    firsts.append(sorted(res))
    srv.send_signal(signal.SIGTERM)
    srv.wait(30)
ok(all(f == [200] * 16 for f in firsts), "3 fresh servers, 16 simultaneous first requests each: all 200", firsts)

# --- 11c. reads of the audit log: pages, the front stays free, read rate, tenants --------
# A state of their own: the last part rewrites ids in audit.db (the chain
# of the main state must stay intact for the checks after the load).
rstate = tempfile.mkdtemp(prefix="al-e2e-serve-reads-")
os.chmod(rstate, 0o700)


def rkey(name):
    p = subprocess.run([BIN, "keys", "create", "--name", name, "--scopes", "execute", "--state", rstate, "--json"],
                       capture_output=True, timeout=30)
    return json.loads(p.stdout.decode().splitlines()[-1])["key"]


big_key, ta_key, tb_key = rkey("big"), rkey("tenant-a"), rkey("tenant-b")
AUDITOR = json.loads(subprocess.run([BIN, "keys", "create", "--name", "auditor", "--scopes", "audit:read", "--state",
                                     rstate, "--json"], capture_output=True).stdout.decode().splitlines()[-1])["key"]
p_srv = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--state", rstate, "--read-rate", "1000/s"],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
rport = json.loads(p_srv.stderr.readline().decode()).get("port")
threading.Thread(target=lambda: [None for _ in p_srv.stderr], daemon=True).start()

# 24 runs whose stored code is 64 KiB of \x01 (each about 390 KB as JSON):
# about 9 MB in all, more than two pages of 4 MiB
N_BIG = 24
big_code = "#" + "\x01" * 65000 + "\ntrue\n"
big_ids = []


def big_runs(n):
    for _ in range(n):
        rq = urllib.request.Request("http://127.0.0.1:%d/v1/execute" % rport,
                                    data=json.dumps({"language": "bash", "code": big_code}).encode(),
                                    headers={"X-API-Key": big_key, "Content-Type": "application/json"})
        with urllib.request.urlopen(rq, timeout=120) as r:
            big_ids.append(json.loads(r.read()).get("id"))


th = [threading.Thread(target=big_runs, args=(N_BIG // 4,)) for _ in range(4)]
for x in th:
    x.start()
for x in th:
    x.join(300)
ok(len(big_ids) == N_BIG and all(big_ids), "%d runs with 64 KiB of stored code each" % N_BIG, len(big_ids))
st, hdrs, raw = curl(rport, "GET", "/v1/audit?limit=1000", ["X-API-Key: " + big_key])
page = json.loads(raw or b"{}")
ok(st == 200 and len(raw) <= (4 << 20) + 256 and page.get("more") is True and page.get("next")
   and 0 < page.get("count", 0) < N_BIG and page["count"] == len(page.get("executions", [])),
   "GET /v1/audit?limit=1000 over ~9 MB of records: one page within 4 MiB (%d bytes, %s executions), more: true "
   "and a cursor" % (len(raw), page.get("count")), (st, raw[:300]))
seen, pages, cur = [e["id"] for e in page.get("executions", [])], 1, page.get("next")
while cur and pages < 50:
    st, hdrs, raw = curl(rport, "GET", "/v1/audit?limit=1000&cursor=" + cur, ["X-API-Key: " + big_key])
    pg = json.loads(raw or b"{}")
    if st != 200:
        break
    seen += [e["id"] for e in pg.get("executions", [])]
    pages += 1
    cur = pg.get("next") if pg.get("more") else None
cli = subprocess.run([BIN, "audit", "list", "--json", "--limit", "0", "--state", rstate], capture_output=True)
own = [r["id"] for r in map(json.loads, cli.stdout.splitlines()) if r.get("actor") == "key:" + big_key[4:16]]
ok(st == 200 and pages >= 3 and seen == own and sorted(seen) == sorted(big_ids),
   "following next page by page (%d pages): every execution exactly once, newest first, as airlock audit list"
   % pages, {"pages": pages, "seen": len(seen), "distinct": len(set(seen)), "want": len(own)})
st, hdrs, raw = curl(rport, "GET", "/v1/audit?cursor=abc", ["X-API-Key: " + big_key])
ok(st == 400 and json.loads(raw).get("error", {}).get("field") == "cursor", "a cursor that is not one: 400", raw[:200])

# while large reads are in flight, the front answers: /metrics (served by the
# front's thread) shows them on the reader threads, /healthz is answered
reads_done = []
saw = {"active": 0, "healthz": []}


def big_read():
    reads_done.append(get(rport, "/v1/audit?limit=1000", big_key)[0])


th = [threading.Thread(target=big_read) for _ in range(12)]
for x in th:
    x.start()
while len(reads_done) < len(th):
    st, b = get(rport, "/metrics")
    m = re.search(r"^airlock_audit_reads_active (\d+)$", b.decode(), re.M)
    active = int(m.group(1)) if m else 0
    if active and len(reads_done) < len(th):
        saw["active"] = max(saw["active"], active)
        hz = get(rport, "/healthz")[0]
        if len(reads_done) < len(th):  # answered while reads were still running
            saw["healthz"].append(hz)
for x in th:
    x.join(120)
ok(reads_done == [200] * len(th) and saw["active"] >= 1 and 200 in saw["healthz"],
   "12 large reads at once: /metrics saw up to %d on the reader threads and /healthz was answered (%d times) "
   "while they ran" % (saw["active"], len(saw["healthz"])), (reads_done, saw))

# cross-tenant id probing: ids that share a prefix across tenants. Ids are
# random, and a natural 6-digit collision takes thousands of runs, so two
# are made by giving tenant B's ids the first digits of others in audit.db.
tids = {}
for name, k, n in (("a", ta_key, 1), ("b", tb_key, 3)):
    for i in range(n):
        st, hdrs, raw = curl(rport, "POST", "/v1/execute", ["X-API-Key: " + k], b'{"language":"bash","code":"true"}')
        tids.setdefault(name, []).append(json.loads(raw or b"{}").get("id", ""))
a1, (b1, b2, b3) = tids["a"][0], tids["b"]
P, Q = a1[:6], b2[:6]
import sqlite3  # noqa: E402
db = sqlite3.connect(os.path.join(rstate, "audit.db"), timeout=30)
for old, like in ((b1, a1), (b3, b2)):
    db.execute("UPDATE records SET id = ? WHERE id = ?", (like[:6] + old[6:], old))
db.commit()
db.close()
b1 = a1[:6] + b1[6:]
unknown = next(x for x in ("%06x" % int.from_bytes(os.urandom(3), "big") for _ in range(100))
               if not any(i.startswith(x) for i in tids["a"] + tids["b"] + big_ids))


def probe(k, pfx):
    st, hdrs, raw = curl(rport, "GET", "/v1/executions/" + pfx, ["X-API-Key: " + k])
    b = json.loads(raw or b"{}")
    return st, b.get("id") or b.get("error", {}).get("code"), b.get("error", {}).get("message", "").replace(pfx, "ID")


pa, qa, ua = probe(ta_key, P), probe(ta_key, Q), probe(ta_key, unknown)
ok(pa[:2] == (200, a1), "tenant A asks a prefix of one of its ids and one of B's: A's record", pa)
ok(qa == ua and qa[:2] == (404, "not_found"),
   "tenant A asks a prefix of two of B's ids: 404 not_found, the same as an unknown id", (qa, ua))
pb, pall = probe(tb_key, P), probe(AUDITOR, P)
ok(pb[:2] == (200, b1) and pall[:2] == (400, "ambiguous_id"),
   "... B asking the shared prefix gets its own; audit:read (every tenant) is told it is ambiguous", (pb, pall))
# reads have a bucket of their own per key: --read-rate 3/min -> the 4th is 429
p_srv.send_signal(signal.SIGTERM)
p_srv.wait(30)
p_srv = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--state", rstate, "--read-rate", "3/min"],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
rport = json.loads(p_srv.stderr.readline().decode()).get("port")
threading.Thread(target=lambda: [None for _ in p_srv.stderr], daemon=True).start()
codes = []
for path in ("/v1/audit?limit=1", "/v1/executions/" + big_ids[0], "/v1/audit?limit=1", "/v1/audit?limit=1"):
    st, hdrs, raw = curl(rport, "GET", path, ["X-API-Key: " + big_key])
    codes.append((st, json.loads(raw or b"{}").get("error", {}).get("code"), hdrs.get("retry-after")))
st_other = curl(rport, "GET", "/v1/audit?limit=1", ["X-API-Key: " + ta_key])[0]
st_exec = curl(rport, "POST", "/v1/execute", ["X-API-Key: " + big_key], b'{"language":"bash","code":"true"}')[0]
ok([c[0] for c in codes] == [200, 200, 200, 429] and codes[3][1] == "rate_limited" and codes[3][2]
   and st_other == 200 and st_exec == 200,
   "--read-rate 3/min: a key's 4th read is 429 rate_limited with Retry-After; another key reads, the key still "
   "executes", (codes, st_other, st_exec))

p_srv.send_signal(signal.SIGTERM)
p_srv.wait(30)
subprocess.run(["rm", "-rf", rstate])

# --- 12. load: 32 clients, nothing unexpected, nothing leaked -------------------------------
PER = int(os.environ.get("AIRLOCK_LOAD_PER_CLIENT", "50"))


def server_state(pid):
    fds = len(os.listdir("/proc/%d/fd" % pid))
    threads = len(os.listdir("/proc/%d/task" % pid))
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True).stdout.split()
    mounts = len(open("/proc/self/mountinfo").read().splitlines())
    # cgroups of slots that no live run holds (others may run airlock on
    # this machine at the same time: a held slot lock is a live run)
    cgs = sorted(os.path.join(dp, d) for dp, dn, fn in os.walk("/sys/fs/cgroup") for d in dn
                 if d.startswith("airlock-") and not slot_busy(d))
    # sandbox processes of this server only: others may run airlock on this
    # machine at the same time
    return {"fds": fds, "threads": threads, "children": len(kids), "mounts": mounts, "cgroups": len(cgs),
            "sandbox_procs": len([p for p in sandbox_uid_procs() if descends_from(p[0], pid)])}


def descends_from(pid, ancestor):
    for _ in range(64):
        if pid == ancestor:
            return True
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
        if pid <= 1:
            return False
    return False


srv, port, log = start()
curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEYS["KEY"]], b'{"language":"bash","code":"true"}')
time.sleep(0.3)
before = server_state(srv.pid)
r = load(port, KEYS["KEY"], {"language": "bash", "code": "echo $((6*7))"}, clients=32, per_client=PER)
time.sleep(0.5)
after = server_state(srv.pid)
n = 32 * PER
lat = sorted(r["latencies"])
diag("load: %d requests in %.1f s (%.0f/s), latency median %.0f ms, p99 %.0f ms" % (
     n, r["elapsed"], n / r["elapsed"], 1000 * lat[len(lat) // 2], 1000 * lat[int(len(lat) * 0.99)]))
ok(r["statuses"] == {200: n} and r["bodies"] == {"ok": n},
   "32 clients x %d requests: every one 200 and ok, no unexpected error" % PER, (r["statuses"], r["bodies"],
                                                                                r["errors"][:3]))
ok(after == before, "after the load: no leaked fd, thread, child process, mount, cgroup or sandbox process",
   {"before": before, "after": after})
text = curl(port, "GET", "/metrics")[2].decode()
m = re.search(r'^airlock_executions_total\{language="bash",status="ok"\} (\d+)', text, re.M)
ok(m and int(m.group(1)) == n + 1, "the metrics counted every run (%s = %d + 1)" % (m and m.group(1), n), "")
srv.send_signal(signal.SIGTERM)
ok(srv.wait(30) == 0, "serve exits 0 after the load", "")
p = subprocess.run([BIN, "audit", "verify", "--state", state], capture_output=True)
ok(p.returncode == 0, "audit verify after the load: the chain is intact", p.stdout[-300:] + p.stderr[-300:])

# --- 12c. ceilings a key and the server put on everything a run costs --------------
def post(port, key, req):
    st, hdrs, raw = curl(port, "POST", "/v1/execute", ["Authorization: Bearer " + key], json.dumps(req).encode())
    try:
        return st, hdrs, json.loads(raw or b"{}")
    except ValueError:
        return st, hdrs, {"raw": raw[:300]}


srv, port, log = start()
bomb = ("#define A(x) x x x x x x x x\n#define B(x) A(A(A(A(x))))\n#define C(x) B(B(B(x)))\n"
        "int main(void) { C(;) return 0; }\n")
st, _, b = post(port, KEYS["CEIL_KEY"], {"language": "c", "code": bomb})
comp = b.get("compile") or {}
ok(st == 200 and comp.get("limits", {}).get("memory_mb") == 64 and comp.get("limits", {}).get("wall_ms") == 2000
   and comp.get("status") in ("memory_limit", "timeout") and b.get("status") == comp.get("status")
   and "compilation failed" in b.get("reason", ""),
   "a key of --max-memory 64 --max-wall 2: a C macro bomb's compile step runs within 64 MiB / 2 s and the result "
   "names the limit (%s: %s)" % (comp.get("status"), b.get("reason")), (st, b.get("reason"), comp))
for lim, val in (("output_bytes", 8192), ("disk_mb", 32)):
    st, _, b = post(port, KEYS["CEIL_KEY"], {"language": "bash", "code": "true", "limits": {lim: val}})
    ok(st == 400 and b.get("error", {}).get("code") == "limit_exceeds_key"
       and b["error"].get("field") == "limits." + lim,
       "a key with a ceiling on %s: a request for more is refused, 400 limit_exceeds_key" % lim, (st, b))
st, _, b = post(port, KEYS["CEIL_KEY"], {"language": "bash", "code": "head -c 100000 /dev/zero | tr '\\0' x",
                                         "collect": ["*.bin"]})
ok(st == 200 and b.get("limits", {}).get("output_bytes") == 4096 and b.get("limits", {}).get("disk_mb") == 16
   and b.get("stdout_truncated") is True and len(b.get("stdout", "")) <= 4096,
   "... and the defaults come down to the key's ceilings (output 4096 bytes, disk 16 MiB)",
   (st, b.get("limits"), b.get("status")))
st, _, b = post(port, KEYS["CEIL_KEY"], {"language": "bash", "collect": ["*.bin"],
                                         "code": "head -c 700000 /dev/zero > a.bin; head -c 700000 /dev/zero > b.bin"})
ok(st == 200 and len(b.get("files", [])) == 1 and "size cap" in b.get("files_note", ""),
   "a key with --max-collect 1: of two 700 kB files one comes back, the other is named in files_note",
   (st, [f.get("name") for f in b.get("files", [])], b.get("files_note")))
srv.send_signal(signal.SIGTERM)
srv.wait(30)

srv, port, log = start("--max-output", "2048", "--max-inflight", "16")
st, _, b = post(port, KEYS["KEY"], {"language": "bash", "code": "true", "limits": {"output_bytes": 4096}})
ok(st == 400 and b.get("error", {}).get("code") == "limit_exceeds_server",
   "serve --max-output 2048: a request for 4096 is refused, 400 limit_exceeds_server", (st, b))
st, _, b = post(port, KEYS["KEY"], {"language": "bash", "code": "echo hi"})
ok(st == 200 and b.get("limits", {}).get("output_bytes") == 2048 and b.get("stdout") == "hi\n",
   "... a request without limits runs with output_bytes 2048", (st, b.get("limits")))
st, hdrs, b = post(port, KEYS["KEY"], {"language": "bash", "code": "echo hi > x.txt", "collect": ["*.txt"]})
ok(st == 503 and b.get("error", {}).get("code") == "response_budget_exhausted" and hdrs.get("retry-after") == "1",
   "serve --max-inflight 16: a run whose worst-case result (64 MiB of files) does not fit is refused, 503 "
   "response_budget_exhausted with Retry-After", (st, b))
srv.send_signal(signal.SIGTERM)
srv.wait(30)
# A response that a client does not read keeps its part of the budget until
# it has been sent: slow readers cannot pile up results outside --max-inflight.
def inflight(port):
    m = re.search(r"^airlock_inflight_bytes (\d+)", curl(port, "GET", "/metrics")[2].decode(), re.M)
    return int(m.group(1)) if m else -1


def executions(port):
    text = curl(port, "GET", "/metrics")[2].decode()
    return sum(int(float(v)) for v in re.findall(r"^airlock_executions_total\{[^}]*\} (\S+)", text, re.M))


srv, port, log = start()
idle0, n0 = inflight(port), executions(port)
body = json.dumps({"language": "bash", "code": "head -c 16000000 /dev/zero | tr '\\0' x",
                   "limits": {"output_bytes": 16000000}}).encode()
sk = socket.socket()
sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # a reader that takes nothing
sk.connect(("127.0.0.1", port))
sk.sendall(b"POST /v1/execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEYS["KEY"].encode()
           + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
deadline = time.time() + 60
while executions(port) <= n0 and time.time() < deadline:
    time.sleep(0.1)
time.sleep(0.5)
held = inflight(port)
sk.close()
deadline = time.time() + 30
while inflight(port) != idle0 and time.time() < deadline:
    time.sleep(0.1)
after = inflight(port)
ok(idle0 == 0 and held >= 16000000 and after == 0,
   "a 16 MB result that its client does not read holds %d bytes of --max-inflight until the connection is gone "
   "(then %d)" % (held, after), {"idle": idle0, "held": held, "after": after})


def held_while_unread(request, wait_for=None):
    """Send a raw request on a socket that reads nothing; once the answer is
    made (wait_for() true, or a moment), what the budget holds; then close
    it and see the budget come back."""
    sk = socket.socket()
    sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sk.connect(("127.0.0.1", port))
    sk.sendall(request)
    deadline = time.time() + 60
    while wait_for and not wait_for() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    h = inflight(port)
    sk.close()
    deadline = time.time() + 30
    while inflight(port) != 0 and time.time() < deadline:
        time.sleep(0.1)
    return h, inflight(port)


# the same for an MCP reply (run_code's output as tool content; audit pages
# take their size the same way, srv_api_hold)
n0 = executions(port)
mbody = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "run_code", "arguments": {
    "language": "bash", "code": "head -c 8000000 /dev/zero | tr '\\0' x", "limits": {"output_bytes": 8000000}}}}).encode()
held, after = held_while_unread(
    b"POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEYS["KEY"].encode()
    + b"\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(mbody) + mbody, lambda: executions(port) > n0)
ok(held >= 8000000 and after == 0,
   "an MCP reply of 8 MB of output that its client does not read holds %d bytes of --max-inflight (then %d)"
   % (held, after), {"held": held, "after": after})

# A refused execution with an unknown key is looked up once, not twice
def lookups(port):
    text = curl(port, "GET", "/metrics")[2].decode()
    return sum(int(float(v)) for v in re.findall(r'^airlock_key_lookups_total\{result="(?:unknown|found)"\} (\S+)',
                                                 text, re.M))


l0 = lookups(port)
st, _, _ = curl(port, "POST", "/v1/execute", ["Authorization: Bearer alk_0123456789ab_" + "0" * 64],
                b'{"language":"bash","code":"true"}')
l1 = lookups(port)
ok(st == 401 and l1 - l0 == 1, "a refused execution with an unknown key costs one key lookup (%d)" % (l1 - l0),
   (st, l0, l1))
srv.send_signal(signal.SIGTERM)
srv.wait(30)
recs = [json.loads(x) for x in subprocess.run([BIN, "audit", "list", "--json", "--limit", "0", "--state", state],
                                              capture_output=True).stdout.splitlines() if x.strip()]
ok(any("response_budget_exhausted" in json.dumps(r) or "--max-inflight" in json.dumps(r) for r in recs),
   "... and that refusal is in the audit log", len(recs))

# --- 13. the OpenAPI document matches every response above, and covers every route ----------
ok(not MISMATCHES, "every response of this test matches docs/openapi.json (%d mismatches)" % len(MISMATCHES),
   "\n".join(MISMATCHES[:10]))
ops = {(m.upper(), tpl) for tpl, o in OPENAPI["paths"].items() for m in o if m in ("get", "post")}
ok(ops <= seen_ops, "every documented operation was called (%d)" % len(ops), sorted(ops - seen_ops))

subprocess.run(["rm", "-rf", state])
done()
