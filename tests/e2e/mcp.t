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
    ok(tools.get("names") == ["run_code", "check_code", "list_languages", "create_session", "close_session",
                              "upload_file", "download_file"]
       and all(sch.get("type") == "object" and sch.get("additionalProperties") is False
               for sch in tools.get("schemas", {}).values())
       and tools["schemas"]["run_code"].get("required") == ["language", "code"]
       and "session_id" in tools["schemas"]["run_code"].get("properties", {})
       and tools["schemas"]["upload_file"].get("required") == ["session_id", "path"],
       "%s: tools/list: seven tools (run_code with session_id, one tool per session action) with JSON Schemas "
       "(objects, no extra properties)" % label, tools)
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


def check_sessions(label, s):
    """The session steps of client.mjs: create, two cells sharing state, files, close."""
    c = s.get("s_create", {})
    sid = (c.get("structured") or {}).get("id")
    ok(c.get("isError") is False and sid and sid in c.get("text", "")
       and c["structured"].get("language") == "python" and c["structured"].get("idle_timeout_s") == 300,
       "%s: create_session python: the session id in the text and structuredContent" % label, c)
    c1, c2 = s.get("s_cell1", {}), s.get("s_cell2", {})
    st2 = c2.get("structured") or {}
    ok(c1.get("isError") is False and c2.get("isError") is False and st2.get("session_id") == sid
       and st2.get("results") == [{"text/plain": "42"}] and "--- result 1\n42\n" in c2.get("text", "")
       and st2.get("execution_count") == 2,
       "%s: run_code with session_id: x = 6 in one call, x * 7 in the next gives 42 (a result, text/plain)" % label,
       (c1, c2))
    up, pl = s.get("s_upload", {}), s.get("s_plot", {})
    imgs = pl.get("images", [])
    ok(up.get("isError") is False and (up.get("structured") or {}).get("size") == 6
       and pl.get("isError") is False and "--- result 1\n6\n" in pl.get("text", "")
       and len(imgs) == 1 and imgs[0]["mimeType"] == "image/png" and imgs[0]["magic"] == "89504e470d0a1a0a",
       "%s: upload_file, then a cell reads it (and math from cell 1): 6; its open figure as PNG image content"
       % label, (up, pl.get("text"), imgs))
    e = s.get("s_error", {})
    ok(e.get("isError") is True and "ZeroDivisionError: division by zero" in e.get("text", "")
       and 'line 2, in f' in e.get("text", "")
       and (e.get("structured") or {}).get("error", {}).get("name") == "ZeroDivisionError",
       "%s: an exception in a cell: isError, its traceback as text, the error in structuredContent" % label, e)
    w = s.get("s_wrong_lang", {})
    ok(w.get("isError") is True and "runs python" in w.get("text", ""),
       "%s: run_code node with a python session's id: a tool error naming the session's language" % label, w)
    gt, gp, esc = s.get("s_get_text", {}), s.get("s_get_png", {}), s.get("s_escape", {})
    ok(gt.get("isError") is False and gt.get("text", "").endswith("\nn\n1\n2\n") and gt.get("types") == ["text", "text"]
       and gp.get("isError") is False and gp.get("images", [{}])[0].get("magic") == "89504e470d0a1a0a"
       and gp.get("types") == ["text", "image"],
       "%s: download_file: a text file as text, a PNG the code saved as image content" % label, (gt, gp))
    ok(esc.get("isError") is True and "bad_path" in esc.get("text", ""),
       "%s: download_file ../../etc/passwd: a tool error (bad_path)" % label, esc)
    cl, af = s.get("s_close", {}), s.get("s_after", {})
    ok(cl.get("isError") is False and (cl.get("structured") or {}).get("status") == "ended"
       and af.get("isError") is True and "session_dead" in af.get("text", ""),
       "%s: close_session ends it; run_code on it afterwards: session_dead" % label, (cl, af))
    return sid


def session_records(sid):
    return [json.loads(x) for x in subprocess.run(
        [BIN, "audit", "list", "--json", "--limit", "0", "--session", sid or "none", "--state", state],
        capture_output=True).stdout.splitlines() if x.strip()]


have_sdk = os.path.isdir(os.path.join(MCP_DIR, "node_modules", "@modelcontextprotocol", "sdk"))
if not have_sdk:
    skip("the official MCP SDK client", "tests/mcp/node_modules is missing: run sh scripts/test-npm.sh")

# --- 1. the official SDK over stdio -----------------------------------------------
if have_sdk:
    rc, s, err = sdk("stdio", BIN, state)
    ids_stdio = check_sdk("stdio", rc, s, err)
    sid_stdio = check_sessions("stdio", s)

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
    sid_http = check_sessions("http", s)

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
    for label, sid, actor in (("stdio", sid_stdio, None), ("http", sid_http, "key:" + KEY["id"])):
        recs = session_records(sid)
        sess = [r for r in recs if r.get("kind") == "session"]
        cells = sorted(r["id"] for r in recs if r.get("kind") == "cell")
        ok(len(sess) == 1 and sess[0]["source"] == "mcp" and sess[0]["status"] == "closed"
           and (sess[0]["actor"] == actor if actor else sess[0]["actor"].startswith("user:"))
           and cells == ["%s.%d" % (sid, i) for i in range(1, 5)],
           "%s: the session is audited (source mcp, its owner), with its 4 cells, ended closed" % label, recs)
    p = subprocess.run([BIN, "audit", "show", sid_stdio or "none", "--json", "--state", state], capture_output=True)
    files = json.loads(p.stdout or b"{}").get("files", [])
    ok([(f.get("kind"), f.get("path")) for f in files] == [("file_put", "data/in.csv"), ("file_get", "data/in.csv"),
                                                           ("file_get", "out.png")],
       "stdio: upload_file and the two download_file calls are in the session's audit record", files)


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

# stdio: the sessions airlock mcp started end when stdin closes ("closed")
# and on SIGTERM ("shutdown"), each audited
def tool_line(i, name, args):
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                       "params": {"name": name, "arguments": args}}).encode()


rc, out, secs, err = session([INIT, tool_line(2, "create_session", {"language": "python"})])
sid_eof = (out[-1].get("result", {}).get("structuredContent") or {}).get("id") if out else None
recs = [r for r in session_records(sid_eof) if r.get("kind") == "session"]
ok(rc == 0 and sid_eof and len(recs) == 1 and recs[0]["status"] == "closed"
   and recs[0]["result"]["reason"] == "closed" and recs[0]["actor"].startswith("user:"),
   "stdio: a session left open when stdin closes is ended and audited (reason closed)", (rc, recs, out[-1:]))
p = subprocess.Popen([BIN, "mcp", "--state", state], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL)
p.stdin.write(INIT + b"\n" + tool_line(2, "create_session", {"language": "python"}) + b"\n")
p.stdin.flush()
replies = [json.loads(p.stdout.readline()) for _ in range(2)]
sid_term = (replies[-1].get("result", {}).get("structuredContent") or {}).get("id")
p.send_signal(signal.SIGTERM)
try:
    rc = p.wait(timeout=30)
except subprocess.TimeoutExpired:
    p.kill()
    rc = None
recs = [r for r in session_records(sid_term) if r.get("kind") == "session"]
ok(rc == 0 and sid_term and len(recs) == 1 and recs[0]["result"].get("reason") == "shutdown",
   "stdio: SIGTERM with a live session: it ends, audited (reason shutdown), exit 0", (rc, recs))

# stdio with --warm: run_code starts from a sandbox made ahead with the
# preload imported ("start": "warm" in structuredContent). colorsys is a
# module neither the driver nor site imports: in sys.modules only when the
# preload ran. Each run takes a sandbox; the pool (1) refills between them.
p = subprocess.Popen([BIN, "mcp", "--state", state, "--warm", "python=colorsys", "--warm-pool", "1"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
starts, warm_runs, deadline = [], [], time.time() + 120
for i in range(1, 400):  # bounded by count and time: the pool fills in its own time
    if len(warm_runs) == 2 or time.time() > deadline:
        break
    try:
        p.stdin.write((INIT if i == 1 else tool_line(i, "run_code", {
            "language": "python", "code": "import sys\nprint('colorsys' in sys.modules)"})) + b"\n")
        p.stdin.flush()
    except BrokenPipeError:
        break
    line = p.stdout.readline()
    if i == 1:
        continue
    sc = (json.loads(line or b"{}").get("result") or {}).get("structuredContent") or {}
    starts.append((sc.get("start"), sc.get("start_reason")))
    if sc.get("start") == "warm":
        warm_runs.append(sc)
    else:
        time.sleep(0.3)
try:
    p.stdin.close()
except BrokenPipeError:
    pass
rc = p.wait(timeout=60)
err = p.stderr.read()
ok(rc == 0 and len(warm_runs) == 2 and all(w.get("status") == "ok" and w.get("stdout") == "True\n" for w in warm_runs),
   "stdio --warm python=colorsys: run_code starts warm (structuredContent start warm, the preload imported), "
   "twice, each from a sandbox of its own", (rc, starts[-5:], warm_runs[-1:], err[-300:]))
ok(warm_runs and all(s == ("cold", "pool_empty") for s in starts if s[0] != "warm"),
   "stdio --warm: a run while the pool is empty is cold, start_reason pool_empty", starts)
p = subprocess.run([BIN, "mcp", "--warm", "cobol"], input=b"", capture_output=True, timeout=30)
ok(p.returncode == 2 and b"--warm cobol" in p.stderr, "stdio: --warm of an unknown language is a usage error (2)",
   p.stderr[-300:])
p = subprocess.run([BIN, "mcp", "--warm-pool", "0"], input=b"", capture_output=True, timeout=30)
ok(p.returncode == 2 and b"--warm-pool" in p.stderr, "stdio: --warm-pool 0 is a usage error (2)", p.stderr[-300:])

rc, out, secs, err = session([INIT] + [tool_line(i, "create_session", {"language": "python", "limits": {"memory_mb": 64}})
                                       for i in range(2, 11)])
codes = [o.get("result", {}).get("isError") for o in out[1:]]
ok(codes == [False] * 8 + [True] and "too_many_sessions" in out[-1]["result"]["content"][0]["text"],
   "stdio: at most 8 live sessions; the 9th create_session is a tool error (too_many_sessions)", codes)

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

# a session made by create_session over POST /mcp belongs to the key, across
# POSTs and across doors: the REST routes see it; another key does not
OTHER = key("--name", "other-host", "--scopes", "execute")
time.sleep(1.5)  # serve re-reads keys.db every second


def mcp_call(name, args, k=KEY):
    st, _, body = curl(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                   "params": {"name": name, "arguments": args}}).encode(),
                       ["Authorization: Bearer " + k["key"]])
    return json.loads(body or b"{}").get("result", {})


r = mcp_call("create_session", {"language": "python"})
sid = (r.get("structuredContent") or {}).get("id", "none")
r1 = mcp_call("run_code", {"language": "python", "session_id": sid, "code": "y = 5"})
r2 = mcp_call("run_code", {"language": "python", "session_id": sid, "code": "y * 2"})
ok(r1.get("isError") is False and (r2.get("structuredContent") or {}).get("results") == [{"text/plain": "10"}],
   "POST /mcp: a session's state lives across POSTs with the same key (y = 5, then y * 2 is 10)", (r1, r2))
raw = subprocess.run(["curl", "-s", "-H", AUTH, "http://127.0.0.1:%d/v1/sessions/%s" % (port, sid)],
                     capture_output=True, timeout=30).stdout
ok(json.loads(raw or b"{}").get("cells") == 2, "GET /v1/sessions/{id} with the same key sees it (2 cells)", raw[:300])
o1 = mcp_call("run_code", {"language": "python", "session_id": sid, "code": "y"}, OTHER)
o2 = mcp_call("download_file", {"session_id": sid, "path": "x"}, OTHER)
o3 = mcp_call("close_session", {"session_id": sid}, OTHER)
ok(all(x.get("isError") and "session_not_found" in x["content"][0]["text"] for x in (o1, o2, o3)),
   "another key: run_code, download_file, close_session on the session are session_not_found", (o1, o2, o3))
r3 = mcp_call("run_code", {"language": "python", "session_id": sid, "code": "y"})
ok((r3.get("structuredContent") or {}).get("results") == [{"text/plain": "5"}],
   "... and the session is untouched: its owner still reads y = 5", r3)
mcp_call("close_session", {"session_id": sid})

srv.send_signal(signal.SIGTERM)
ok(srv.wait(30) == 0, "serve exits 0", "")
p = subprocess.run([BIN, "audit", "verify", "--state", state], capture_output=True, timeout=60)
ok(p.returncode == 0, "audit verify: the chain is intact after every session step", p.stdout[-300:] + p.stderr[-300:])
subprocess.run(["rm", "-rf", state])
done()
