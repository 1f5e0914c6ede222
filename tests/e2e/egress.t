#!/usr/bin/python3
# Egress by allowlist, through the real binary, loopback only: an HTTP
# origin and a small package index served by this test on the host's
# 127.0.0.1, named by the allowlist as an IP literal (explicit, so allowed
# although loopback). Allowed GET and CONNECT from python (urllib, pip),
# node (http, fetch) and bash (curl); a name not on the list refused and
# reported; the allowed host on another port refused; the run connecting
# directly (ignoring the proxy) reaches nothing; DNS from inside fails;
# the request field network.allow within serve --allow-net, and refused
# outside it or without it (400 network_not_allowed); malformed requests to
# the proxy leave the run and the supervisor standing; the audit record
# carries the report. The proxy's caps are limits (--limit, the request's
# limits): each one hit is in limits_hit and on the connection's entry.
# 50 runs with proxies at once under serve leave its fds and threads as
# they were. Nothing asserts a duration.
import http.server
import io
import json
import os
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, diag, skip  # noqa: E402
from airlock import BIN, run  # noqa: E402

ROOT = tempfile.mkdtemp(prefix="al-e2e-egress-")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=ROOT, **kw)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, *a):
        pass  # a client cut off by a cap: expected here


# the origin: a page, and a simple index with one tiny wheel
with open(os.path.join(ROOT, "hello.txt"), "w") as f:
    f.write("hello from the origin\n")
BIG = 512 * 1024  # a download well over the small caps below
with open(os.path.join(ROOT, "big.bin"), "wb") as f:
    f.write(b"x" * BIG)
whl = "airtiny-1.0-py3-none-any.whl"
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("airtiny/__init__.py", "VALUE = 42\n")
    z.writestr("airtiny-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: airtiny\nVersion: 1.0\n")
    z.writestr("airtiny-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr("airtiny-1.0.dist-info/RECORD", "")
os.makedirs(os.path.join(ROOT, "simple", "airtiny"))
with open(os.path.join(ROOT, "simple", "airtiny", whl), "wb") as f:
    f.write(buf.getvalue())
with open(os.path.join(ROOT, "simple", "airtiny", "index.html"), "w") as f:
    f.write('<html><body><a href="%s">%s</a></body></html>\n' % (whl, whl))

srv = Server(("127.0.0.1", 0), Quiet)
PORT = srv.server_address[1]
threading.Thread(target=srv.serve_forever, daemon=True).start()
ORIGIN = "127.0.0.1:%d" % PORT
URL = "http://%s/hello.txt" % ORIGIN


def net(r):
    return r.get("network") or []


# --- python: urllib through the proxy --------------------------------------------
rc, r = run("python", "import urllib.request\nprint(urllib.request.urlopen(%r, timeout=10).read().decode(), end='')" % URL,
            "--allow-net", ORIGIN)
ok(r.get("status") == "ok" and r.get("stdout") == "hello from the origin\n",
   "python urllib reaches the listed origin through the proxy", {k: r.get(k) for k in ("status", "stdout", "stderr", "network")})
e = [x for x in net(r) if x.get("allowed")]
ok(e and e[0].get("port") == PORT and e[0].get("bytes_in", 0) > 0,
   "the result reports the connection: host, port, allowed, bytes in", net(r))

# --- a name not on the list: refused, reported, never reached ----------------------
rc, r = run("python", "import urllib.request\ntry:\n    urllib.request.urlopen(%r, timeout=10)\nexcept Exception as e:\n    print(type(e).__name__, getattr(e, 'code', ''))" % URL,
            "--allow-net", "example.invalid")
ok(r.get("status") == "ok" and "403" in r.get("stdout", ""),
   "a host not on the list: the proxy answers 403", {k: r.get(k) for k in ("stdout", "stderr", "network")})
d = [x for x in net(r) if not x.get("allowed")]
ok(d and d[0].get("host") == "127.0.0.1", "... and the denial is in the result", net(r))

# --- the allowed host on another port -----------------------------------------------
other = srv.server_address[1] + 1 if srv.server_address[1] < 65535 else 1
rc, r = run("python", "import urllib.request\ntry:\n    urllib.request.urlopen('http://127.0.0.1:%d/', timeout=10)\nexcept Exception as e:\n    print(getattr(e, 'code', type(e).__name__))" % other,
            "--allow-net", ORIGIN)
ok("403" in r.get("stdout", ""), "the listed host on another port: refused (403)", r.get("stdout"))

# --- ignoring the proxy: no route, no DNS ----------------------------------------------
rc, r = run("python", "import socket\n"
            "for a in [('127.0.0.1', %d)]:\n"
            "    try:\n        socket.create_connection(a, timeout=3); print('REACHED')\n"
            "    except OSError as e:\n        print('no', e.errno)\n"
            "try:\n    socket.getaddrinfo('example.com', 80); print('DNS')\nexcept OSError as e:\n    print('nodns')" % PORT,
            "--allow-net", ORIGIN)
ok(r.get("status") == "ok" and "REACHED" not in r.get("stdout", "") and "DNS" not in r.get("stdout", "").replace("nodns", ""),
   "a direct connection to the host's origin reaches nothing, DNS fails (the run's own namespace)", r.get("stdout"))

# --- the proxy's socket is the supervisor's: the code cannot take it over ------------
rc, r = run("python", "import os, socket\n"
            "print(sorted(os.listdir('/proc/self/fd')))\n"
            "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "try:\n    s.bind(('127.0.0.1', 3128)); print('BOUND')\nexcept OSError as e:\n    print('bind', e.errno)\n"
            "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n"
            "try:\n    s.bind(('127.0.0.1', 3128)); print('BOUND')\nexcept OSError as e:\n    print('bind', e.errno)\n",
            "--allow-net", ORIGIN)
out = r.get("stdout", "")
ok(r.get("status") == "ok" and out.startswith("['0', '1', '2', '3']") and "BOUND" not in out,
   "the code holds no proxy descriptor and cannot bind the proxy's port (EADDRINUSE, also with SO_REUSEPORT)",
   {k: r.get(k) for k in ("stdout", "stderr")})
rc, r = run("python", "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 3128), timeout=3); print('PROXY')\n"
            "except OSError as e:\n    print('no proxy', e.errno)")
ok(r.get("status") == "ok" and "no proxy" in r.get("stdout", "") and "network" not in r,
   "a run without an allowlist has no proxy at all (nothing listens on 3128)", {k: r.get(k) for k in ("stdout", "stderr")})

# --- curl and node ----------------------------------------------------------------------
rc, r = run("bash", "curl -sS %s" % URL, "--allow-net", ORIGIN)
ok(r.get("stdout") == "hello from the origin\n", "bash: curl through the proxy", {k: r.get(k) for k in ("stdout", "stderr")})
if shutil.which("node") or os.path.exists("/usr/bin/node"):
    rc, r = run("node", "const http = require('http');\n"
                "http.get(%r, (res) => { let b=''; res.on('data', d => b += d); res.on('end', async () => {\n"
                "  process.stdout.write('http:' + b);\n"
                "  const f = await fetch(%r); process.stdout.write('fetch:' + await f.text()); }); });" % (URL, URL),
                "--allow-net", ORIGIN)
    ok(r.get("stdout") == "http:hello from the origin\nfetch:hello from the origin\n",
       "node: http.get and fetch through the proxy (NODE_OPTIONS preload)", {k: r.get(k) for k in ("stdout", "stderr")})
else:
    skip("node: http.get and fetch through the proxy", "no node on this host")

# --- pip install from a local index ---------------------------------------------------------
rc, r = run("python", "import subprocess, sys\n"
            "p = subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-cache-dir', '--disable-pip-version-check',\n"
            "    '--target', '/workspace/lib', '--index-url', 'http://%s/simple', 'airtiny'], capture_output=True, text=True)\n"
            "print(p.returncode, p.stderr[-300:])\nsys.path.insert(0, '/workspace/lib')\nimport airtiny\nprint('value', airtiny.VALUE)" % ORIGIN,
            "--allow-net", ORIGIN, "--timeout", "60")
ok("value 42" in r.get("stdout", ""), "pip install from an index on the allowlist, then import", {k: r.get(k) for k in ("stdout", "stderr")})

# --- malformed requests to the proxy -------------------------------------------------------
rc, r = run("python", "import socket\nouts = []\n"
            "for req in [b'CONNECT\\r\\n\\r\\n', b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n',\n"
            "            b'GET http://%s/ HTTP/1.1\\r\\nHost: evil\\r\\n\\r\\n',\n"
            "            b'POST http://%s/ HTTP/1.1\\r\\nContent-Length: 1\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n',\n"
            "            b'\\x00' * 100 + b'\\r\\n\\r\\n']:\n"
            "    s = socket.create_connection(('127.0.0.1', 3128), timeout=5); s.sendall(req)\n"
            "    outs.append(s.recv(100).split(b' ')[1:2]); s.close()\n"
            "print(outs)\n"
            "import urllib.request\nprint(urllib.request.urlopen(%r, timeout=10).read().decode(), end='')" % (ORIGIN, ORIGIN, URL),
            "--allow-net", ORIGIN)
out = r.get("stdout", "")
ok(r.get("status") == "ok" and out.endswith("hello from the origin\n") and "b'200'" not in out.split("\n")[0],
   "malformed and smuggling requests are refused (4xx) and the proxy still serves the run", {k: r.get(k) for k in ("stdout", "stderr")})

# --- the proxy's caps as limits -------------------------------------------------------------
CAP = 50000
get_big = ("import urllib.request\nn = 0\ntry:\n"
           "    with urllib.request.urlopen('http://%s/big.bin', timeout=10) as f:\n"
           "        while True:\n            b = f.read(65536)\n            if not b: break\n            n += len(b)\n"
           "except Exception as e:\n    print(type(e).__name__)\nprint('got', n)" % ORIGIN)
rc, r = run("python", get_big, "--allow-net", ORIGIN, "--limit", "net_bytes_in=%d" % CAP)
e = [x for x in net(r) if x.get("allowed")]
ok("net_bytes_in" in r.get("limits_hit", []) and r.get("limits", {}).get("net_bytes_in") == CAP,
   "--limit net_bytes_in: a bigger download hits it, limits_hit says net_bytes_in, limits has the value",
   {k: r.get(k) for k in ("status", "stdout", "stderr", "limits_hit", "limits")})
ok(e and e[0].get("reason") == "net_bytes_in" and 0 < e[0].get("bytes_in", 0) <= CAP
   and "got %d" % BIG not in r.get("stdout", ""),
   "... the connection's entry says net_bytes_in, counts at most the cap, and the code did not get it all",
   {"network": net(r), "stdout": r.get("stdout")})
rc, r = run("python", get_big, "--allow-net", ORIGIN)
ok("got %d" % BIG in r.get("stdout", "") and not r.get("limits_hit") and r.get("limits", {}).get("net_bytes_in") == 100 << 20,
   "with the default net_bytes_in (100 MiB) the same download is whole", {k: r.get(k) for k in ("stdout", "limits_hit")})

post_big = ("import urllib.request\ntry:\n"
            "    urllib.request.urlopen(urllib.request.Request('http://%s/x', data=b'y' * %d), timeout=10)\n"
            "except Exception as e:\n    print(type(e).__name__)" % (ORIGIN, BIG))
rc, r = run("python", post_big, "--allow-net", ORIGIN, "--limit", "net_bytes_out=%d" % CAP)
ok("net_bytes_out" in r.get("limits_hit", []) and any(x.get("reason") == "net_bytes_out" for x in net(r)),
   "--limit net_bytes_out: a bigger upload hits it, reported in limits_hit and on the entry",
   {k: r.get(k) for k in ("stdout", "stderr", "limits_hit", "network")})

# two sockets at once: a tunnel held open (the code's connection and the
# proxy's one out) leaves no room for a second connection to the proxy
two = ("import socket\n"
       "a = socket.create_connection(('127.0.0.1', 3128), timeout=10)\n"
       "a.sendall(b'CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n')\n"
       "print('first', a.recv(100).split(b' ')[1].decode())\n"
       "b = socket.create_connection(('127.0.0.1', 3128), timeout=10)\n"
       "b.sendall(b'CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n')\n"
       "try:\n    print('second', (b.recv(100).split(b' ') + [b'closed'])[1].decode())\n"
       "except OSError as e:\n    print('second', 'reset')\n" % (ORIGIN, ORIGIN, ORIGIN, ORIGIN))
rc, r = run("python", two, "--allow-net", ORIGIN, "--limit", "net_connections=2")
out = r.get("stdout", "")
ok("first 200" in out and "second 200" not in out and "net_connections" in r.get("limits_hit", []),
   "--limit net_connections=2: one tunnel open, a second connection is refused, limits_hit says net_connections",
   {k: r.get(k) for k in ("stdout", "stderr", "limits_hit", "network")})

# a tunnel left silent far longer than net_idle_ms is closed by the proxy
idle = ("import socket, time\n"
        "a = socket.create_connection(('127.0.0.1', 3128), timeout=10)\n"
        "a.sendall(b'CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n')\n"
        "print('open', a.recv(100).split(b' ')[1].decode())\n"
        "time.sleep(3)\n"
        "try:\n    print('then', a.recv(100) or b'closed')\nexcept OSError as e:\n    print('then reset')\n" % (ORIGIN, ORIGIN))
rc, r = run("python", idle, "--allow-net", ORIGIN, "--limit", "net_idle_ms=200")
ok("open 200" in r.get("stdout", "") and ("closed" in r.get("stdout", "") or "then reset" in r.get("stdout", ""))
   and "net_idle_ms" in r.get("limits_hit", []),
   "--limit net_idle_ms=200: a tunnel silent for 3 s is closed, limits_hit says net_idle_ms",
   {k: r.get(k) for k in ("stdout", "stderr", "limits_hit", "network")})
rc, r = run("python", "pass", "--allow-net", ORIGIN, "--limit", "net_connections=1")
ok(rc == 2 and "net_connections" in r.get("error", {}).get("message", "") + r.get("raw_stderr", ""),
   "--limit net_connections=1 is refused before anything runs (usage, names the limit)", r)

# --- over HTTP: network.allow within serve --allow-net ------------------------------------
state = tempfile.mkdtemp(prefix="al-e2e-egress-st-")
os.chmod(state, 0o700)
key = json.loads(subprocess.run([BIN, "keys", "create", "--name", "n", "--state", state, "--json"],
                                capture_output=True, check=True).stdout)["key"]


def serve(*extra):
    p = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--state", state, *extra],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    port = json.loads(p.stderr.readline().decode())["port"]
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p, port


def post(port, body):
    req = urllib.request.Request("http://127.0.0.1:%d/v1/execute" % port, json.dumps(body).encode(),
                                 {"Authorization": "Bearer " + key})
    try:
        with urllib.request.urlopen(req, timeout=60) as f:
            return f.status, json.loads(f.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


code = "import urllib.request\nprint(urllib.request.urlopen(%r, timeout=10).read().decode(), end='')" % URL
p, port = serve()
st, js = post(port, {"language": "python", "code": code, "network": {"allow": [ORIGIN]}})
ok(st == 400 and js.get("error", {}).get("code") == "network_not_allowed",
   "a server without --allow-net refuses network.allow: 400 network_not_allowed", js)
p.send_signal(signal.SIGTERM)
p.wait(30)
p, port = serve("--allow-net", ORIGIN + ",pypi.org", "--workers", "10")
st, js = post(port, {"language": "python", "code": code, "network": {"allow": [ORIGIN]}})
ok(st == 200 and js.get("stdout") == "hello from the origin\n" and js.get("network"),
   "within serve --allow-net: the run reaches it, the result has network", {k: js.get(k) for k in ("status", "stdout", "stderr", "network", "error")})
rid = js.get("id")
st, js = post(port, {"language": "python", "code": code, "network": {"allow": ["example.com"]}})
ok(st == 400 and js.get("error", {}).get("code") == "network_not_allowed",
   "a request that widens the server's list: 400 network_not_allowed", js)
st, js = post(port, {"language": "python", "code": code})
ok(st == 200 and js.get("status") == "error" and "network" not in js,
   "a request without network.allow gets no network", {k: js.get(k) for k in ("status", "stderr")})

# the caps in the request's limits
st, js = post(port, {"language": "python", "code": get_big, "network": {"allow": [ORIGIN]},
                     "limits": {"net_bytes_in": CAP}})
ok(st == 200 and "net_bytes_in" in js.get("limits_hit", []) and js.get("limits", {}).get("net_bytes_in") == CAP
   and any(x.get("reason") == "net_bytes_in" for x in js.get("network", [])),
   "limits.net_bytes_in over HTTP: the download hits it, in limits_hit, limits and the network entry",
   {k: js.get(k) for k in ("status", "stdout", "limits_hit", "network", "error")})
st, js = post(port, {"language": "python", "code": "pass", "network": {"allow": [ORIGIN]},
                     "limits": {"net_connections": 100000}})
ok(st == 400 and js.get("error", {}).get("code") == "invalid_limit"
   and js.get("error", {}).get("field") == "limits.net_connections",
   "limits.net_connections above its maximum: 400 invalid_limit naming the field", js)


# 50 runs with proxies at once (10 clients x 5): all answered, and then the
# server holds as many fds and threads as before them
def server_state(pid):
    return {"fds": len(os.listdir("/proc/%d/fd" % pid)), "threads": len(os.listdir("/proc/%d/task" % pid))}


def settle(pid, want, timeout=30):
    """Poll the server's state until it is want, at most timeout s."""
    end = time.time() + timeout
    now = server_state(pid)
    while now != want and time.time() < end:
        time.sleep(0.2)
        now = server_state(pid)
    return now


def steady(pid, timeout=30):
    """The state once two reads 0.5 s apart agree (the runs above have
    answered; what follows an answer is given time to end)."""
    end = time.time() + timeout
    a = server_state(pid)
    while time.time() < end:
        time.sleep(0.5)
        b = server_state(pid)
        if a == b:
            break
        a = b
    return a


before = steady(p.pid)
results = []


def client():
    for _ in range(5):
        results.append(post(port, {"language": "python", "code": code, "network": {"allow": [ORIGIN]}}))


ts = [threading.Thread(target=client) for _ in range(10)]
for t in ts:
    t.start()
peak = {"egress": 0}
while any(t.is_alive() for t in ts):
    n = 0
    for tid in os.listdir("/proc/%d/task" % p.pid):
        try:
            n += open("/proc/%d/task/%s/comm" % (p.pid, tid)).read().startswith("airlock-egress")
        except OSError:
            pass
    peak["egress"] = max(peak["egress"], n)
    time.sleep(0.05)
for t in ts:
    t.join(300)
diag("proxies at once (airlock-egress threads seen): %d" % peak["egress"])
good = [1 for st, js in results if st == 200 and js.get("stdout") == "hello from the origin\n"]
ok(len(good) == 50, "50 runs with proxies at once (10 clients x 5): all 200, each reached the origin",
   sorted({(st, js.get("status"), (js.get("error") or {}).get("code")) for st, js in results}))
after = settle(p.pid, before)
ok(after == before, "... then the server's fds and threads are back to the baseline (no leaked socket or thread)",
   {"before": before, "after": after})


# a session with network.allow: its cells reach the origin, within the ceiling
def call(port, method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 json.dumps(body).encode() if body is not None else None,
                                 {"Authorization": "Bearer " + key}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as f:
            return f.status, json.loads(f.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


st, sess = call(port, "POST", "/v1/sessions", {"language": "python", "network": {"allow": [ORIGIN]}})
ok(st == 201, "a session with network.allow within the ceiling is created", sess)
st, cell = call(port, "POST", "/v1/sessions/%s/execute" % sess.get("id"),
                {"code": "import urllib.request\nurllib.request.urlopen(%r, timeout=10).read().decode()" % URL})
ok(st == 200 and cell.get("results") == [{"text/plain": repr("hello from the origin\n")}],
   "... and its cells reach the origin through the session's proxy", cell)
call(port, "DELETE", "/v1/sessions/%s" % sess.get("id"))
shown = ""
for _ in range(100):  # the ended record is written as the last reference goes
    sh = subprocess.run([BIN, "audit", "show", sess.get("id", "x"), "--json", "--state", state],
                        capture_output=True, text=True)
    shown = sh.stdout
    if '"network"' in shown:
        break
    time.sleep(0.1)
ok('"network"' in shown and str(PORT) in shown and '"allowed": true' in shown.replace('":true', '": true'),
   "the session's ended record keeps its proxy's report (the connection to the origin)", shown[-800:])
st, js = call(port, "POST", "/v1/sessions", {"language": "python", "network": {"allow": ["example.com"]}})
ok(st == 400 and js.get("error", {}).get("code") == "network_not_allowed",
   "a session that widens the ceiling: 400 network_not_allowed", js)
p.send_signal(signal.SIGTERM)
p.wait(30)
# serve --warm: a ready sandbox has no proxy socket, so a run with network
# is cold (start_reason network) and reaches the origin
p, port = serve("--allow-net", ORIGIN, "--warm", "python", "--warm-pool", "1")


def warm_ready():
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as f:
            return 'airlock_warm_ready{language="python"} 1' in f.read().decode()
    except OSError:
        return False


end = time.time() + 90
while not warm_ready() and time.time() < end:
    time.sleep(0.2)
st, js = post(port, {"language": "python", "code": code, "network": {"allow": [ORIGIN]}})
ok(st == 200 and js.get("stdout") == "hello from the origin\n" and js.get("start") == "cold"
   and js.get("start_reason") == "network",
   "serve --warm: a run with network.allow is cold (start_reason network) and reaches the origin",
   {k: js.get(k) for k in ("status", "stdout", "stderr", "start", "start_reason", "network", "error")})
st, js = post(port, {"language": "python", "code": "print(1)"})
ok(st == 200 and js.get("start") == "warm", "... a run without network still takes the warm sandbox",
   {k: js.get(k) for k in ("status", "start", "start_reason")})
p.send_signal(signal.SIGTERM)
p.wait(30)

show = subprocess.run([BIN, "audit", "show", rid or "x", "--json", "--state", state], capture_output=True, text=True)
ok(show.returncode == 0 and '"network"' in show.stdout and str(PORT) in show.stdout,
   "the audit record carries the network report", show.stdout[-600:] + show.stderr[-300:])

srv.shutdown()
shutil.rmtree(ROOT, ignore_errors=True)
shutil.rmtree(state, ignore_errors=True)
done()
