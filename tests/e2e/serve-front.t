#!/usr/bin/python3
# The HTTP front of airlock serve under attack by a client without a key:
# requests are decided on their headers before any body is read (memory and
# CPU of the server stay bounded), one address cannot hold the connections,
# silent and trickling connections are closed, every refusal of an
# execution route is audited, a flood of anonymous refusals is coalesced
# into summary records whose counts add up, and a request cannot forge a
# log line. Loads are bounded in count; nothing asserts a duration.
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, diag  # noqa: E402
from airlock import BIN  # noqa: E402

state = tempfile.mkdtemp(prefix="al-e2e-front-")
os.chmod(state, 0o700)
_HZ = os.sysconf("SC_CLK_TCK")
MiB = 1 << 20


def keys(*args, st=state):
    p = subprocess.run([BIN, "keys", *args, "--state", st, "--json"], capture_output=True, timeout=30)
    return json.loads(p.stdout.decode().splitlines()[-1])


KEY = keys("create", "--name", "front", "--scopes", "execute")["key"]
AUDIT_ONLY = keys("create", "--name", "reader", "--scopes", "audit:read")["key"]


def start(*extra, st=state):
    p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--state", st, *extra],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    line = p.stderr.readline().decode()
    port = json.loads(line).get("port") if line.startswith("{") else None
    lines = []
    threading.Thread(target=lambda: [lines.append(x.decode(errors="replace")) for x in p.stderr],
                     daemon=True).start()
    return p, port, lines


def stop(p):
    p.send_signal(signal.SIGTERM)
    return p.wait(30)


def usage(pid):
    """-> (CPU seconds used so far, VmHWM bytes, VmRSS bytes) of a process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _HZ
    mem = {}
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            k, _, v = ln.partition(":")
            if k in ("VmHWM", "VmRSS"):
                mem[k] = int(v.split()[0]) * 1024
    return cpu, mem["VmHWM"], mem["VmRSS"]


def request(port, method, path, headers=(), body=b"", src="127.0.0.1", timeout=30):
    """One request on a fresh connection -> (status, {header: value}, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
    head = "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % (method, path)
    for h in headers:
        head += h + "\r\n"
    if body or method in ("POST", "PUT"):
        head += "Content-Length: %d\r\n" % len(body)
    s.sendall(head.encode() + b"\r\n" + body)
    raw = b""
    while True:
        try:
            d = s.recv(65536)
        except OSError:
            break
        if not d:
            break
        raw += d
    s.close()
    return parse(raw)


def parse(raw):
    head, _, rest = raw.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):
        head, _, rest = rest.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    m = re.match(r"HTTP/\S+ (\d+)", lines[0] if lines else "")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return (int(m.group(1)) if m else 0), hdrs, rest


def jbody(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def audit_list(*args, st=state):
    p = subprocess.run([BIN, "audit", "list", "--json", "--limit", "0", "--state", st, *args],
                       capture_output=True, timeout=60)
    return [json.loads(x) for x in p.stdout.splitlines() if x.strip()]


def audit_show(rid, st=state):
    p = subprocess.run([BIN, "audit", "show", rid or "none", "--json", "--state", st],
                       capture_output=True, timeout=60)
    return jbody(p.stdout)


# 10 MiB of [{},{},...]: 3.7 s of CPU and ~770 MB when parsed as JSON
BOMB = b"[" + b"{}," * ((10 * MiB - 4) // 3) + b"{}]"


def blind_post(port, path, body, hold=None, results=None, src="127.0.0.1", headers=""):
    """POST body without waiting to be told to go on (no Expect): send as
    much as the server takes, read whatever answer comes. hold: stop after
    that many bytes and keep the connection open (returns the socket)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(src, 0))
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s"
               "Content-Length: %d\r\n\r\n" % (path, headers, len(body))).encode())
    sent, raw, limit = 0, b"", len(body) if hold is None else hold
    s.setblocking(False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        want_w = [s] if sent < limit else []
        r, w, _ = select.select([s], want_w, [], 0.5)
        if r:
            try:
                d = s.recv(65536)
            except OSError:
                break
            if not d:
                break
            raw += d
            continue
        if w:
            try:
                sent += s.send(body[sent:min(limit, sent + 65536)])
            except OSError:
                break
        elif sent >= limit and hold is not None:
            break
        elif sent >= limit and raw:
            break
    if results is not None:
        results.append((parse(raw)[0], sent))
    if hold is not None:
        return s
    s.close()
    return parse(raw)[0], sent


# --- 1. item 4: a refused request's body is never read ----------------------------
srv, port, log = start()
request(port, "GET", "/healthz")
cpu0, hwm0, rss0 = usage(srv.pid)
# (a) the way curl posts a large body: Expect: 100-continue, then wait
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(("POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(BOMB)).encode())
first = b""
while b"\r\n\r\n" not in first:
    d = s.recv(65536)
    if not d:
        break
    first += d
if first.startswith(b"HTTP/1.1 100"):
    s.sendall(BOMB)   # the server asked for the body: the old behaviour
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            first += d
    except OSError:
        pass
s.close()
st, hdrs, raw = parse(first)
ok(st == 401 and not first.startswith(b"HTTP/1.1 100") and jbody(raw).get("success") is False,
   "POST /execute, 10 MiB of [{},...] without a key, Expect: 100-continue: 401 at once, the body never asked for",
   first[:300])
# (b) four clients at once that send the whole body without waiting, and four
# that send 1 MiB and then hold the connection
res = []
th = [threading.Thread(target=blind_post, args=(port, p, BOMB), kwargs={"results": res})
      for p in ("/execute", "/execute", "/v1/execute", "/mcp")]
held = [blind_post(port, "/v1/execute", BOMB, hold=MiB) for _ in range(4)]
for t in th:
    t.start()
for t in th:
    t.join(60)
time.sleep(0.3)
cpu1, hwm1, rss1 = usage(srv.pid)
for h in held:
    h.close()
diag("server: cpu %.2f s -> %.2f s, VmHWM %d -> %d MiB, VmRSS %d -> %d MiB; clients (status, bytes sent): %s"
     % (cpu0, cpu1, hwm0 // MiB, hwm1 // MiB, rss0 // MiB, rss1 // MiB, res))
ok(hwm1 - hwm0 < 16 * MiB,
   "9 unauthenticated 10 MiB bodies (4 sent whole at once, 4 held open after 1 MiB): the server's peak memory "
   "grows by less than 16 MiB (%.1f MiB)" % ((hwm1 - hwm0) / MiB), (hwm0, hwm1))
ok(cpu1 - cpu0 < 1.5, "... and costs it less than 1.5 s of CPU (%.2f s): no body is parsed" % (cpu1 - cpu0),
   (cpu0, cpu1))
ok(all(r[0] in (401, 0) for r in res) and any(r[0] == 401 for r in res),
   "... each is answered 401 (or its connection closed without reading on)", res)
st, _, raw = request(port, "GET", "/healthz")
ok(st == 200, "... and the server answers /healthz afterwards", (st, raw[:200]))

# (c) with a key the body is read, but parsed only within the bounds
cpu0 = usage(srv.pid)[0]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.sendall(("POST /execute HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nConnection: close\r\n"
           "Content-Length: %d\r\n\r\n" % (KEY, len(BOMB))).encode() + BOMB)
raw = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    raw += d
s.close()
cpu1, hwm2, _ = usage(srv.pid)
st, hdrs, body = parse(raw)
ok(st == 400 and "deeper than" in jbody(body).get("error", "") and jbody(body).get("id"),
   "POST /execute with a key and 10 MiB of [{},...]: 400 too complex, audited", raw[:300])
ok(cpu1 - cpu0 < 1.5 and hwm2 - hwm1 < 40 * MiB,
   "... without building the tree: %.2f s of CPU, peak memory +%.1f MiB (the body itself)"
   % (cpu1 - cpu0, (hwm2 - hwm1) / MiB), (cpu0, cpu1, hwm1, hwm2))
stop(srv)

# --- 2. item 4: one address cannot hold the connections; silent ones are closed ----
srv, port, log = start("--max-per-ip", "8", "--idle-timeout", "2", "--body-timeout", "3")
partial = []
for _ in range(20):
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")   # headers never finished
    partial.append(c)
time.sleep(0.5)


def closed(c, wait):
    """Whether the server closed c (EOF or reset) within wait seconds."""
    c.settimeout(wait)
    try:
        return c.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


shut = sum(closed(c, 0.2) for c in partial)
ok(shut >= 12, "--max-per-ip 8: of 20 connections from one address with unfinished headers, %d are closed at once "
   "(the idlest make room for the newer)" % shut, shut)
st, _, raw = request(port, "GET", "/healthz", src="127.0.0.2")
ok(st == 200, "... /healthz from another address is answered meanwhile", (st, raw[:200]))
st, _, raw = request(port, "GET", "/healthz", timeout=5)
ok(st == 200, "... and from the same address too: the idlest of its connections is cut to make room", (st, raw[:200]))
left = [c for c in partial if not closed(c, 10)]
ok(not left, "--idle-timeout 2: the unfinished ones are closed by the server (%d left open after 10 s)" % len(left),
   len(left))
for c in partial:
    c.close()
st, _, raw = request(port, "GET", "/healthz")
ok(st == 200, "... and the address is served again", (st, raw[:200]))
# a body that trickles in: one byte a second keeps the idle timeout at bay,
# not the body deadline
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(("POST /v1/execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Content-Length: 100\r\n\r\n{" % KEY).encode())
gone = False
for i in range(12):
    time.sleep(1)
    try:
        s.sendall(b" ")
    except OSError:
        gone = True
        break
    if closed(s, 0.01):
        gone = True
        break
s.close()
ok(gone and any('"airlock.serve.body_timeout"' in x for x in log),
   "--body-timeout 3: a body trickling in a byte a second is cut off (after %d s), logged as body_timeout" % (i + 1),
   log[-3:])
# a run longer than the idle timeout: its connection waits, suspended
st, _, raw = request(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEY],
                     b'{"language":"bash","code":"sleep 3; echo late"}')
ok(st == 200 and jbody(raw).get("stdout") == "late\n",
   "a 3 s run with --idle-timeout 2: answered (a connection waiting for its run is not idle)", (st, raw[:300]))
stop(srv)

# 1,100 connections from one address that never finish their headers (the
# red team's load): with the defaults, /healthz from that same address is
# answered at once, and the address holds at most --max-per-ip of them
srv, port, log = start()
held = []
for _ in range(1100):
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    held.append(c)
time.sleep(0.5)
st, _, raw = request(port, "GET", "/healthz", timeout=5)
still = sum(not closed(c, 0.01) for c in held)
ok(st == 200 and still <= 64,
   "1100 connections from one address with unfinished headers: /healthz from the same address is answered at once, "
   "%d of them are still open (--max-per-ip 64)" % still, (st, raw[:200], still))
for c in held:
    c.close()
stop(srv)

# a soft limit of 512 open files (Debian's default is 1024) would let a
# flood of connections make the server's own opens fail: it is raised
import resource  # noqa: E402
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--state", state], stderr=subprocess.PIPE,
                     stdout=subprocess.DEVNULL,
                     preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard)))
p.stderr.readline()
soft = int(re.search(r"^Max open files\s+(\d+)", open("/proc/%d/limits" % p.pid).read(), re.M).group(1))
stop(p)
want = 2048 if hard == resource.RLIM_INFINITY or hard >= 2048 else hard
ok(soft >= want, "serve started with a soft limit of 512 open files raises it to %d (for 1024 connections and its "
   "own files; hard limit %s)" % (soft, hard), soft)

# headers that trickle in (a byte a second keeps the idle timeout at bay):
# cut at the header deadline, so many addresses cannot hold every slot
srv, port, log = start("--idle-timeout", "5", "--header-timeout", "2")
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
gone = False
for i in range(12):
    try:
        s.sendall(b"X")
    except OSError:
        gone = True
        break
    if closed(s, 1.0):
        gone = True
        break
s.close()
for _ in range(40):   # the server logs it right after the shutdown
    if any('"airlock.serve.header_timeout"' in x for x in log):
        break
    time.sleep(0.05)
ok(gone and any('"airlock.serve.header_timeout"' in x for x in log),
   "--header-timeout 2: headers trickling in a byte a second are cut off (after %d s), logged as header_timeout"
   % (i + 1), log[-3:])
# a keep-alive connection between requests: the next request's headers are
# timed from the end of the last one, and a prompt one is served
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
st1, _, _ = parse(s.recv(65536))
time.sleep(1)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
st2, _, _ = parse(s.recv(65536))
s.close()
ok(st1 == 200 and st2 == 200, "... a prompt keep-alive client gets two answers on one connection", (st1, st2))


def stream_chunks(port, head, limit=64 << 20):
    """Send head, then 64 KiB chunks until the server closes the connection
    or limit bytes are sent: how many went."""
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(head)
    chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
    sent = 0
    try:
        while sent < limit:
            c.sendall(chunk)
            sent += 65536
    except OSError:
        pass
    c.close()
    return sent


# a refused request that says Content-Length 10 and sends chunks: the
# chunks are what libmicrohttpd reads, so the length is not known, and
# nothing past the drain cap is read
sent = stream_chunks(port, b"POST /v1/execute HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n")
ok(sent < (32 << 20), "an unauthenticated POST with Content-Length 10 and a chunked body: the server stops reading "
   "(%.1f MiB went before the connection closed, of 64 MiB offered)" % (sent / MiB), sent)
# routes that take no body: a long or endless one is refused at once
st, _, raw = request(port, "GET", "/healthz", ["Content-Length: 1000000000000"])
ok(st == 413 and jbody(raw).get("error", {}).get("code") == "body_too_large",
   "GET /healthz declaring a 1 TB body: 413 body_too_large at once", (st, raw[:200]))
sent = stream_chunks(port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
ok(sent < (32 << 20), "a chunked body to /healthz: refused, the server stops reading (%.1f MiB went)" % (sent / MiB),
   sent)
st, _, raw = request(port, "GET", "/healthz")
ok(st == 200, "... and the server still answers", (st, raw[:200]))
stop(srv)

# --max-body-total: the bodies held at once, all connections together
srv, port, log = start("--max-body", "1048576", "--max-body-total", "2097152")
held = [blind_post(port, "/v1/execute", b" " * 900000, hold=1000, headers="X-API-Key: %s\r\n" % KEY)
        for _ in range(2)]
st3 = None
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(("POST /v1/execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 900000\r\n"
           "Expect: 100-continue\r\n\r\n" % KEY).encode())
st3, hdrs3, raw3 = parse(s.recv(65536))
s.close()
for h in held:
    h.close()
time.sleep(0.3)
st4, _, raw4 = request(port, "POST", "/v1/execute", ["Authorization: Bearer " + KEY],
                       b'{"language":"bash","code":"echo room"}')
ok(st3 == 503 and jbody(raw3).get("error", {}).get("code") == "server_busy" and hdrs3.get("retry-after")
   and jbody(raw3).get("id") and st4 == 200,
   "--max-body-total 2 MiB: a third 900 kB body while two are held is 503 server_busy with Retry-After, audited; "
   "served again once they are gone", (st3, raw3[:300], st4, raw4[:200]))
stop(srv)

# --- 3. item 7: every refusal of an execution route is audited ----------------------
srv, port, log = start()
cases = [
    ("POST /execute timeout -5 without a key", "POST", "/execute", [], b'{"code":"x","timeout":-5}', 401,
     "unauthorized"),
    ("POST /execute timeout -5 with a key", "POST", "/execute", ["X-API-Key: " + KEY],
     b'{"code":"x","timeout":-5}', 400, "invalid_value"),
    ("PUT /v1/execute without a key", "PUT", "/v1/execute", [], b"{}", 401, "unauthorized"),
    ("PUT /v1/execute with a key", "PUT", "/v1/execute", ["X-API-Key: " + KEY], b"{}", 405, "method_not_allowed"),
    ("GET /execute without a key", "GET", "/execute", [], b"", 401, "unauthorized"),
    ("GET /execute with a key", "GET", "/execute", ["X-API-Key: " + KEY], b"", 405, "method_not_allowed"),
    ("GET /mcp with a key", "GET", "/mcp", ["X-API-Key: " + KEY], b"", 405, "method_not_allowed"),
    ("POST /v1/execute with an audit:read key", "POST", "/v1/execute", ["X-API-Key: " + AUDIT_ONLY],
     b'{"language":"bash","code":"true"}', 403, "forbidden"),
]
for name, method, path, hdrs, body, want, code in cases:
    st, h, raw = request(port, method, path, hdrs, body)
    b = jbody(raw)
    rec = audit_show(b.get("id"))
    actor = "anonymous" if want == 401 else "key:" + (KEY if "audit" not in name else AUDIT_ONLY)[4:16]
    ok(st == want and rec.get("status") == "rejected" and rec.get("error", {}).get("code") == code
       and rec.get("actor") == actor and (want != 405 or h.get("allow") == "POST"),
       "%s: %d %s, audited as rejected %s by %s" % (name, want, code, code, actor), (st, raw[:300], rec))
stop(srv)

# --- 4. item 10: a request cannot forge a log line -----------------------------------
srv, port, log = start()
forge = ('/v1/x%22,%22status%22:200,%22key%22:%22key:admin%22%7D%0A%7B%22event%22:%22airlock.serve.request%22,'
         '%22path%22:%22/forged%22%7D')
st, _, raw = request(port, "GET", forge)
time.sleep(0.3)
stop(srv)
mine = [x for x in log if "forged" in x]
parsed = []
for x in mine:
    try:
        parsed.append(json.loads(x))
    except ValueError:
        parsed.append(None)
want_path = ('/v1/x","status":200,"key":"key:admin"}\n{"event":"airlock.serve.request",'
             '"path":"/forged"}')
ok(st == 404 and len(mine) == 1 and parsed[0] and parsed[0].get("path") == want_path
   and parsed[0].get("status") == 404 and parsed[0].get("key") == "-",
   "a path with %22 and %0A: one log line, valid JSON, whose path field holds the raw path (status 404, no key)",
   mine)
bad = []
for x in log:
    try:
        json.loads(x)
    except ValueError:
        bad.append(x)
ok(not bad, "every line of the server's log parses as JSON", bad[:3])

# --- 5. item 6: a flood of anonymous refusals is coalesced, and adds up -------------
fst = tempfile.mkdtemp(prefix="al-e2e-front-flood-")
os.chmod(fst, 0o700)
srv, port, log = start(st=fst)
N = 300
t0 = time.monotonic()
statuses = {}
conn = socket.create_connection(("127.0.0.1", port), timeout=30)
buf = b""
for i in range(N):
    conn.sendall(b"POST /v1/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 2\r\n\r\n{}")
    while True:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            m = re.search(rb"Content-Length: (\d+)", head)
            n = int(m.group(1)) if m else 0
            if len(rest) >= n:
                st = int(head.split()[1])
                statuses[st] = statuses.get(st, 0) + 1
                buf = rest[n:]
                break
        d = conn.recv(65536)
        if not d:
            break
        buf += d
conn.close()
elapsed = time.monotonic() - t0
metrics = request(port, "GET", "/metrics")[2].decode()
stop(srv)
recs = [r for r in audit_list(st=fst) if r.get("actor") == "anonymous"]
full = [r for r in recs if r.get("error", {}).get("code") == "unauthorized"]
summ = [r for r in recs if r.get("error", {}).get("code") == "refusals_coalesced"]
counted = 0
for r in summ:
    m = re.match(r"(\d+) more unauthenticated refusals from 127\.0\.0\.1 between \S+ and \S+$",
                 r["error"]["message"])
    counted += int(m.group(1)) if m else 10 ** 9
windows = int(elapsed // 10) + 2
alerts = [x for x in log if '"airlock.audit.alert"' in x]
diag("%d anonymous requests in %.1f s: %d records in full, %d summaries counting %d; %d alerts"
     % (N, elapsed, len(full), len(summ), counted, len(alerts)))
ok(statuses == {401: N}, "%d anonymous POST /v1/execute {} on one connection: every one 401" % N, statuses)
ok(len(full) <= 10 * windows and len(summ) <= windows and len(recs) == len(full) + len(summ),
   "... at most 10 records in full per 10 s window (%d) plus one summary per window (%d)" % (len(full), len(summ)),
   [(r["error"]["code"], r["error"]["message"][:80]) for r in recs[:5]])
ok(len(full) + counted == N, "... the summaries count the rest: %d + %d = %d, none lost (the last one written at "
   "SIGTERM)" % (len(full), counted, N), [r["error"]["message"] for r in summ])
ok(len(alerts) <= len(recs) and len(alerts) <= 11 * windows,
   "... the alerts follow the records: %d alerts, not %d" % (len(alerts), N), len(alerts))
m1 = re.search(r"^airlock_unauthenticated_refusals_total (\d+)", metrics, re.M)
m2 = re.search(r"^airlock_refusals_coalesced_total (\d+)", metrics, re.M)
ok(m1 and int(m1.group(1)) == N and m2 and int(m2.group(1)) == counted,
   "... /metrics counts all %d, %s of them coalesced" % (N, m2 and m2.group(1)),
   [x for x in metrics.splitlines() if "unauth" in x or "coalesced" in x])
p = subprocess.run([BIN, "audit", "verify", "--state", fst], capture_output=True)
ok(p.returncode == 0, "audit verify: the chain with the summaries is intact", p.stdout[-300:] + p.stderr[-300:])

# Past the 1024 addresses it tracks, new addresses share an overflow entry
# per source: alternating http and mcp refusals must not restart it (each
# would then be a record of its own)
ost = tempfile.mkdtemp(prefix="al-e2e-front-overflow-")
os.chmod(ost, 0o700)
srv, port, log = start(st=ost)
for i in range(1024):
    request(port, "POST", "/v1/execute", body=b"{}", src="127.1.%d.%d" % (i // 250, i % 250 + 1))
got = []
for i in range(40):
    got.append(request(port, "POST", "/mcp" if i % 2 else "/v1/execute", body=b"{}", src="127.2.0.1")[0])
metrics = request(port, "GET", "/metrics", src="127.3.0.1")[2].decode()
stop(srv)
m = re.search(r"^airlock_refusals_coalesced_total (\d+)", metrics, re.M)
ok(got == [401] * 40 and m and int(m.group(1)) >= 20,
   "1024 addresses tracked, then 40 refusals from a new one alternating /v1/execute and /mcp: at most 10 in full "
   "per source, %s coalesced" % (m and m.group(1)), (got[:4], m and m.group(0)))
subprocess.run(["rm", "-rf", ost])

subprocess.run(["rm", "-rf", state, fst])
done()
