#!/usr/bin/python3
# airlock mcp (stdio) and POST /mcp on airlock serve (Streamable HTTP):
# 1. the official MCP TypeScript SDK client (tests/mcp, installed by
#    scripts/test-npm.sh) lists the tools and calls them over both
#    transports;
# 2. protocol edge cases over stdio, as raw lines;
# 3. HTTP edge cases with curl;
# 4. every run_code call is in the audit log with source mcp.
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, skip  # noqa: E402
from airlock import BIN, REPO  # noqa: E402

MCP_DIR = os.path.join(REPO, "tests", "mcp")
state = tempfile.mkdtemp(prefix="al-e2e-mcp-")
os.chmod(state, 0o700)


def key(*args):
    p = subprocess.run([BIN, "keys", "create", "--state", state, "--json", *args], capture_output=True, timeout=30)
    return json.loads(p.stdout.decode().splitlines()[-1])


KEY = key("--name", "agent-host", "--scopes", "execute")
READER = key("--name", "reader", "--scopes", "audit:read")


def sdk(*args):
    p = subprocess.run(["node", os.path.join(MCP_DIR, "client.mjs"), *args], capture_output=True, timeout=300,
                       cwd=MCP_DIR)
    steps = {}
    for line in p.stdout.decode().splitlines():
        try:
            o = json.loads(line)
            steps[o["step"]] = o
        except ValueError:
            pass
    return p.returncode, steps, p.stderr.decode()[-500:]


def check_sdk(label, rc, s, err):
    ok(rc == 0 and "closed" in s and s.get("connect", {}).get("server", {}).get("name") == "airlock",
       "%s: the official SDK client connects, works through every call and closes" % label, (rc, err, s.get("fatal")))
    tools = s.get("tools", {})
    ok(tools.get("names") == ["run_code", "check_code", "list_languages"]
       and all(sch.get("type") == "object" and sch.get("additionalProperties") is False
               for sch in tools.get("schemas", {}).values())
       and tools["schemas"]["run_code"].get("required") == ["language", "code"],
       "%s: tools/list: three tools with JSON Schemas (objects, no extra properties)" % label, tools)
    p = s.get("print", {})
    ok(p.get("isError") is False and "--- stdout\n42\n" in p.get("text", "")
       and p.get("structured", {}).get("stdout") == "42\n",
       "%s: run_code python print(6 * 7): text and structuredContent hold 42" % label, p)
    pl = s.get("plot", {})
    imgs = pl.get("images", [])
    ok(pl.get("isError") is False and len(imgs) == 1 and imgs[0]["mimeType"] == "image/png"
       and imgs[0]["magic"] == "89504e470d0a1a0a" and imgs[0]["bytes"] > 1000,
       "%s: a matplotlib plot comes back as PNG image content (%s bytes)" % (
           label, imgs[0]["bytes"] if imgs else "no"), pl.get("text"))
    t = s.get("timeout", {})
    ok(t.get("isError") is True and t.get("structured", {}).get("status") == "timeout"
       and "wall time limit" in t.get("text", ""), "%s: an endless loop with wall_ms 500 is isError, timeout" % label, t)
    for step, code in [("bad_args", "invalid_type"), ("unknown_arg", "unknown_field"),
                       ("missing_code", "missing_field"), ("unknown_language", "unknown_language")]:
        r = s.get(step, {})
        ok(r.get("isError") is True and code in r.get("text", "") and r.get("structured", {}).get("id"),
           "%s: bad arguments (%s) are a tool error naming %s, audited" % (label, step, code), r)
    c = s.get("check", {})
    ok(c.get("isError") is False and "py.import.forbidden" in c.get("text", "")
       and len(c.get("structured", {}).get("findings", [])) == 2,
       "%s: check_code reports the import and the call, runs nothing" % label, c)
    lg = s.get("languages", {})
    ok(lg.get("isError") is False and "python" in lg.get("text", ""), "%s: list_languages" % label, lg)
    u = s.get("unknown_tool", {})
    ok(u.get("thrown") and u.get("code") == -32602, "%s: an unknown tool is JSON-RPC error -32602" % label, u)
    return [x.get("structured", {}).get("id") or x.get("structured", {}).get("audit_id")
            for k, x in s.items() if k in ("print", "plot", "timeout", "bad_args", "unknown_arg", "missing_code",
                                           "unknown_language")]


have_sdk = os.path.isdir(os.path.join(MCP_DIR, "node_modules", "@modelcontextprotocol", "sdk"))
if not have_sdk:
    skip("the official MCP SDK client", "tests/mcp/node_modules is missing: run sh scripts/test-npm.sh")

# --- 1. the official SDK over stdio -----------------------------------------------
if have_sdk:
    rc, s, err = sdk("stdio", BIN, state)
    ids_stdio = check_sdk("stdio", rc, s, err)

# --- 2. and over Streamable HTTP on airlock serve -------------------------------------
srv = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--state", state],
                       stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
line = srv.stderr.readline().decode()
port = json.loads(line).get("port")
threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
URL = "http://127.0.0.1:%d/mcp" % port
if have_sdk:
    rc, s, err = sdk("http", URL, KEY["key"])
    ok(s.get("connect", {}).get("protocol") == "2025-11-25", "http: protocol version 2025-11-25 negotiated",
       s.get("connect"))
    ids_http = check_sdk("http", rc, s, err)

# --- 3. the audit log: every run_code call, source mcp, the right actor ------------------
time.sleep(0.3)
recs = [json.loads(x) for x in subprocess.run([BIN, "audit", "list", "--json", "--limit", "0", "--state", state],
                                              capture_output=True).stdout.splitlines() if x.strip()]
by_id = {r["id"]: r for r in recs}
if have_sdk:
    ok(all(i in by_id and by_id[i]["source"] == "mcp" and by_id[i]["actor"].startswith("user:") for i in ids_stdio)
       and len(ids_stdio) == 7,
       "stdio: each of the 7 run_code calls (4 refused) is audited, source mcp, actor user:NAME", ids_stdio)
    ok(all(i in by_id and by_id[i]["source"] == "mcp" and by_id[i]["actor"] == "key:" + KEY["id"] for i in ids_http)
       and len(ids_http) == 7,
       "http: each of the 7 run_code calls is audited, source mcp, actor key:%s" % KEY["id"], ids_http)
    st = {by_id[i]["status"] for i in ids_stdio if i in by_id}
    ok({"ok", "timeout", "rejected"} <= st, "the audit statuses: ok, timeout, rejected", st)


# --- 4. stdio protocol edge cases, as raw lines --------------------------------------------
def session(lines, timeout=120):
    """Send lines to airlock mcp, close stdin; -> (rc, [replies], seconds)."""
    t0 = time.time()
    p = subprocess.run([BIN, "mcp", "--state", state], input=b"".join(x + b"\n" for x in lines),
                       capture_output=True, timeout=timeout)
    out = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    return p.returncode, out, time.time() - t0, p.stderr


INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": "raw", "version": "0"}}}).encode()
rc, out, secs, err = session([
    json.dumps({"jsonrpc": "2.0", "id": 0, "method": "tools/list"}).encode(),   # before initialize
    b'{"jsonrpc": "2.0", "id": 2, "method": ',                                   # malformed
    INIT,
    b'{"jsonrpc":"2.0","method":"notifications/initialized"}',                   # no answer
    b"",                                                                          # blank: ignored
    b'[{"jsonrpc":"2.0","id":3,"method":"ping"},{"jsonrpc":"2.0","id":4,"method":"ping"}]',  # batch
    b'{"jsonrpc":"2.0","id":5,"method":"resources/list"}',                        # unknown method
    b'{"jsonrpc":"2.0","id":6,"method":"ping"}',
    b'{"id":7,"method":"ping"}',                                                  # no jsonrpc
    b'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"arguments":{}}}',  # no name
    b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"run_code","arguments":[1]}}',
    b'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}}',
    b'{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}',                           # bad id type
])
ok(rc == 0 and secs < 60, "closed stdin: airlock mcp exits 0 (%.1f s)" % secs, (rc, err[-300:]))
want = [(0, -32000), (None, -32700), (1, "result"), (None, -32600), (5, -32601), (6, "result"), (7, -32600),
        (8, -32602), (9, "isError"), (None, -32600)]
got = []
for o in out:
    if "error" in o:
        got.append((o.get("id"), o["error"]["code"]))
    elif isinstance(o.get("result"), dict) and o["result"].get("isError"):
        got.append((o.get("id"), "isError"))
    else:
        got.append((o.get("id"), "result"))
ok(got == want, "edge cases answered in order: before initialize -32000, malformed -32700, batch -32600, "
   "unknown method -32601, no jsonrpc -32600, no tool name -32602, arguments not an object a tool error, "
   "bad id -32600; notifications and blank lines get nothing", "\n".join(map(str, got)))
calls = [json.loads(x) for x in err.splitlines() if b'"airlock.mcp.call"' in x]
ok([(c["tool"], c["is_error"], c["source"]) for c in calls] == [("run_code", True, "mcp")],
   "each tool call is one JSON log line on stderr (tool, is_error, source)", calls)
rc, out2, secs, err2 = session([INIT, json.dumps({"jsonrpc": "2.0", "id": 2, "method": "x" * 99 + "\u00e9"}).encode(),
                                json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                            "params": {"name": "a" * 63 + "\u00e9"}}).encode()])
ok([o.get("error", {}).get("code") for o in out2[1:]] == [-32601, -32602],
   "a method or tool name cut mid-character in the error message: still answered (-32601, -32602)", out2)
ok(out[2]["result"].get("protocolVersion") == "2025-06-18",
   "initialize with 2025-06-18 is answered with 2025-06-18", out[2]["result"])

rc, out, secs, err = session([json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                          "params": {"protocolVersion": "1999-01-01"}}).encode()])
ok(rc == 0 and out and out[0]["result"]["protocolVersion"] == "2025-11-25",
   "a version the server does not speak: it answers with its newest, 2025-11-25", out)

rc, out3, secs, err3 = session([INIT, json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
    "name": "run_code", "arguments": {"language": "python", "code": "print('\u00e9' * 40000)"}}}).encode()])
r3 = out3[-1].get("result", {}) if out3 else {}
t3 = r3.get("content", [{}])[0].get("text", "")
ok(len(r3.get("structuredContent", {}).get("stdout", "")) == 40001 and "more bytes; the whole of it is in" in t3
   and len(t3.encode()) < 70000, "80 KB of stdout: the text block quotes 64 KiB (cut on a character), "
   "structuredContent has all of it", (len(t3.encode()), t3[-120:]))

huge = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' + b"x" * (17 << 20) + b'"}}'
rc, out, secs, err = session([huge, b'{"jsonrpc":"2.0","id":2,"method":"ping"}'])
ok(rc == 0 and len(out) == 2 and out[0]["error"]["code"] == -32600 and "16 MiB" in out[0]["error"]["message"]
   and out[1].get("id") == 2 and "result" in out[1],
   "a 17 MiB line: -32600 (bounded, dropped), and the next message is still answered",
   [o.get("error", o.get("result")) for o in out])

# SIGTERM during a run_code: the run is cancelled, answered and audited, exit 0
p = subprocess.Popen([BIN, "mcp", "--state", state], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL)
p.stdin.write(INIT + b"\n" + json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
    "name": "run_code", "arguments": {"language": "python", "code": "import time\ntime.sleep(30)"}}}).encode() + b"\n")
p.stdin.flush()
time.sleep(1.5)
p.send_signal(signal.SIGTERM)
try:
    outs, _ = p.communicate(timeout=20)
    rc = p.returncode
except subprocess.TimeoutExpired:
    p.kill()
    outs, rc = b"", None
replies = [json.loads(x) for x in outs.splitlines() if x.strip()]
last = replies[-1]["result"] if replies and "result" in replies[-1] else {}
ok(rc == 0 and last.get("isError") and last.get("structuredContent", {}).get("status") == "killed",
   "SIGTERM during run_code: the run is killed, answered (isError, killed), airlock mcp exits 0", (rc, replies[-1:]))

# --- 5. HTTP edge cases --------------------------------------------------------------------------------------


def curl(body=None, headers=(), method="POST"):
    args = ["curl", "-s", "-i", "-X", method, URL, "--max-time", "60"]
    for h in headers:
        args += ["-H", h]
    if body is not None:
        args += ["--data-binary", "@-", "-H", "Content-Type: application/json"]
    raw = subprocess.run(args, input=body, capture_output=True, timeout=90).stdout
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP") else 0, hdrs, rest


AUTH = "Authorization: Bearer " + KEY["key"]
PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
cases = [
    ("no key: 401", curl(PING), 401, None),
    ("GET /mcp: 405 with Allow: POST (no SSE stream)", curl(headers=[AUTH], method="GET"), 405, "allow"),
    ("a notification: 202 with an empty body",
     curl(b'{"jsonrpc":"2.0","method":"notifications/initialized"}', [AUTH]), 202, "empty"),
    ("ping without initialize (stateless): 200", curl(PING, [AUTH]), 200, None),
    ("a batch: 400 with -32600", curl(b"[" + PING + b"]", [AUTH]), 400, -32600),
    ("malformed JSON: 400 with -32700", curl(b"{nope", [AUTH]), 400, -32700),
    ("MCP-Protocol-Version 1999-01-01: 400", curl(PING, [AUTH, "MCP-Protocol-Version: 1999-01-01"]), 400, None),
    ("Origin https://evil.example: 403", curl(PING, [AUTH, "Origin: https://evil.example"]), 403, None),
    ("Origin http://localhost:3000: allowed", curl(PING, [AUTH, "Origin: http://localhost:3000"]), 200, None),
]
for name, (st, hdrs, body), want, extra in cases:
    why = []
    if st != want:
        why.append("status %d" % st)
    if extra == "allow" and hdrs.get("allow") != "POST":
        why.append("allow %s" % hdrs.get("allow"))
    if extra == "empty" and body:
        why.append("body %r" % body[:100])
    if isinstance(extra, int):
        try:
            if json.loads(body)["error"]["code"] != extra:
                why.append("code")
        except (ValueError, KeyError):
            why.append("not a JSON-RPC error")
    ok(not why, "POST /mcp, " + name, "; ".join(why) + " " + body[:200].decode(errors="replace"))

n0 = len(subprocess.run([BIN, "audit", "list", "--json", "--limit", "0", "--source", "mcp", "--state", state],
                        capture_output=True).stdout.splitlines())
st_bad = curl(PING, ["Authorization: Bearer alk_000000000000_" + "0" * 64])[0]
n1 = len(subprocess.run([BIN, "audit", "list", "--json", "--limit", "0", "--source", "mcp", "--state", state],
                        capture_output=True).stdout.splitlines())
ok(st_bad == 401 and n1 == n0 + 1, "a bad key on /mcp: 401, audited as refused with source mcp", (st_bad, n0, n1))
RATED = key("--name", "rated-mcp", "--rate", "2/min")
time.sleep(1.5)  # serve re-reads keys.db every second
codes = [curl(PING, ["Authorization: Bearer " + RATED["key"]])[0] for _ in range(3)]
ok(codes == [200, 200, 429], "every /mcp POST takes one token of the key's rate (2/min: 200, 200, 429)", codes)
st, hdrs, body = curl(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
    "name": "run_code", "arguments": {"language": "bash", "code": "echo hi"}}}).encode(),
    ["Authorization: Bearer " + READER["key"]])
r = json.loads(body or b"{}").get("result", {})
ok(st == 200 and r.get("isError") and "forbidden" in r["content"][0]["text"],
   "a key without the execute scope: run_code is a tool error (forbidden), nothing runs", body[:300])

srv.send_signal(signal.SIGTERM)
ok(srv.wait(30) == 0, "serve exits 0", "")
subprocess.run(["rm", "-rf", state])
done()
