#!/usr/bin/python3
# airlock agent against a scripted OpenAI-compatible stub on loopback that
# this test starts: the tool-call path, the Markdown-block path, a model
# that loops (max turns), a 500 and a timeout from the endpoint, malformed
# replies, an endpoint without function calling, a policy refusal fed
# back, the key never printed, every run audited with source agent.
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done  # noqa: E402
from airlock import BIN  # noqa: E402

state = tempfile.mkdtemp(prefix="al-e2e-agent-")
os.chmod(state, 0o700)
SECRET = "sk-test-0123456789abcdef-never-printed"
SEEN = {}  # scenario -> [(headers, body)]
RUN_IDS = []  # audit ids of every run the transcripts list
SPOOF = "\x1b[2J\x1b[H\x1b]52;c;Y3VybCBldmlsLnNofHNo\x07\u009b31mAll good.\rOK\x1b[0m"


def tool_call(code, lang="python", cid="call_1"):
    return {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [{
            "id": cid, "type": "function",
            "function": {"name": "run_code", "arguments": json.dumps({"language": lang, "code": code})}}]}}]}


def say(text):
    return {"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}


def last(body, role):
    for m in reversed(body["messages"]):
        if m["role"] == role:
            return m.get("content") or ""
    return ""


def scenario(name, n, body, headers=None):
    """-> (status, json or bytes, delay seconds) for request n (0-based)."""
    if name == "tool":
        return (200, tool_call("print(6 * 7)"), 0) if n == 0 else \
            (200, say("The answer is 42." if "42" in last(body, "tool") else "no result?"), 0)
    if name == "markdown":
        return (200, say("Let me compute it:\n\n```python\nprint(2 ** 10)\n```\n"), 0) if n == 0 else \
            (200, say("2^10 = 1024." if "1024" in last(body, "user") else "no result?"), 0)
    if name == "loop":
        return 200, tool_call("print(%d)" % n, cid="call_%d" % n), 0
    if name == "flaky":
        return (500, {"error": {"message": "upstream overloaded"}}, 0) if n == 0 else (200, say("fine now"), 0)
    if name == "down":
        return 500, {"error": {"message": "upstream overloaded"}}, 0
    if name == "slow":
        return 200, say("too late"), 3
    if name == "malformed":
        return 200, b"<html>not json</html>", 0
    if name == "notools":
        if "tools" in body:
            return 400, {"error": {"message": "this model does not support tools"}}, 0
        return (200, say("```python\nprint(sum(range(5)))\n```"), 0) if n < 2 else \
            (200, say("It is 10." if "10" in last(body, "user") else "no result?"), 0)
    if name == "policy":
        return (200, tool_call("import subprocess\nsubprocess.run(['id'])"), 0) if n == 0 else \
            (200, say("refused: " + ("policy_violation" if "policy_violation" in last(body, "tool") else "??")), 0)
    if name in ("greedy", "greedy-session"):
        if n == 0:
            r = tool_call("print('big')")
            r["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = json.dumps(
                {"language": "python", "code": "print('big')", "limits": {"memory_mb": 4096, "wall_ms": 3600000}})
            return 200, r, 0
        if n == 1:
            r = tool_call("print('small')")
            r["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = json.dumps(
                {"language": "python", "code": "print('small')", "limits": {"memory_mb": 64}})
            return 200, r, 0
        return 200, say("done"), 0
    if name in ("state", "state-oneshot"):
        # a variable and an import in one turn, used in the next
        if n == 0:
            return 200, tool_call("x = 6 * 7\nimport math"), 0
        if n == 1:
            return 200, tool_call("print(x, math.floor(math.pi))", cid="call_2"), 0
        return 200, say("x is 42" if "42 3" in last(body, "tool") else "lost: " + last(body, "tool")[-300:]), 0
    if name == "spoof":
        # a prompt-injected answer: clear the screen, set the clipboard
        # (OSC 52), a C1 CSI, a carriage return over a line, invalid UTF-8
        return 200, say(SPOOF), 0
    if name == "echo401":
        return 401, {"error": {"message": "Incorrect API key provided: " + headers.get("Authorization", "")}}, 0
    if name == "many":
        if n == 0:
            r = tool_call("print(0)")
            calls = r["choices"][0]["message"]["tool_calls"]
            for i in range(1, 20):
                c = json.loads(json.dumps(calls[0]))
                c["id"] = "call_%d" % i
                c["function"]["arguments"] = json.dumps({"language": "bash", "code": "echo %d" % i})
                calls.append(c)
            return 200, r, 0
        tools = [m for m in body["messages"] if m["role"] == "tool"]
        return 200, say("%d answers, %d not run" % (len(tools), sum("not run" in m["content"] for m in tools))), 0
    if name == "badargs":
        if n == 0:
            r = tool_call("x")
            r["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "{not json"
            return 200, r, 0
        return 200, say("gave up: " + ("not a JSON object" if "not a JSON object" in last(body, "tool") else "??")), 0
    if name == "warm":
        # run until a run saw the preload (colorsys imported before the
        # code: a warm start), then say so; a short pause per turn lets
        # the pool fill
        if "True" in last(body, "tool"):
            return 200, say("warm"), 0
        return 200, tool_call("import sys\nprint('colorsys' in sys.modules)", cid="call_%d" % n), 0.3
    return 404, {"error": {"message": "no scenario"}}, 0


class Stub(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        name = parts[0]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        seen = SEEN.setdefault(name, [])
        seen.append((dict(self.headers), body))
        if parts[1:] != ["v1", "chat", "completions"]:
            status, out, delay = 404, {"error": {"message": "bad path " + self.path}}, 0
        else:
            status, out, delay = scenario(name, len(seen) - 1, body, dict(self.headers))
        time.sleep(delay)
        data = out if isinstance(out, bytes) else json.dumps(out).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass


httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
PORT = httpd.server_address[1]


def agent(name, *flags, problem="What is 6 times 7?", timeout=120):
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": SECRET, "HOME": os.environ.get("HOME", "/root")}
    p = subprocess.run([BIN, "agent", "--base-url", "http://127.0.0.1:%d/%s/v1" % (PORT, name),
                        "--model", "stub-1", "--state", state, "--json", *flags, problem],
                       capture_output=True, timeout=timeout, env=env)
    try:
        t = json.loads(p.stdout)
    except ValueError:
        t = {}
    RUN_IDS.extend(r.get("audit_id") for r in t.get("runs", []))
    return p.returncode, t, p.stdout.decode() + p.stderr.decode()


# --- the tool-call path ----------------------------------------------------------------
rc, t, out = agent("tool")
runs = t.get("runs", [])
ok(rc == 0 and t.get("answer") == "The answer is 42." and t.get("stopped") == "answer" and t.get("turns") == 2,
   "tool calls: the model calls run_code, gets 42 back, answers (2 turns)", out[-600:])
ok(len(runs) == 1 and runs[0]["via"] == "tool" and runs[0]["status"] == "ok" and runs[0]["audit_id"]
   and "42" in runs[0]["result"], "--json: the transcript lists the run with its status and audit id", runs)
req = SEEN["tool"][0][1]
ok(req["model"] == "stub-1" and req["tools"][0]["function"]["name"] == "run_code"
   and req["tools"][0]["function"]["parameters"]["required"] == ["language", "code"]
   and [m["role"] for m in req["messages"]] == ["system", "user"],
   "the request: model, run_code offered as a function with its JSON Schema, system + user", req.get("tools"))
second = SEEN["tool"][1][1]["messages"]
ok([m["role"] for m in second] == ["system", "user", "assistant", "tool"] and second[3]["tool_call_id"] == "call_1"
   and second[2]["tool_calls"][0]["id"] == "call_1",
   "the second request carries the assistant's tool call and the tool result for its id",
   [m["role"] for m in second])
hdr = SEEN["tool"][0][0]
ok(hdr.get("Authorization") == "Bearer " + SECRET and SECRET not in out,
   "the key is sent as a Bearer token and printed nowhere (stdout, stderr, transcript)", "")

# --- the Markdown path ---------------------------------------------------------------------
rc, t, out = agent("markdown", problem="What is 2 to the 10th?")
ok(rc == 0 and t.get("answer") == "2^10 = 1024." and [r["via"] for r in t.get("runs", [])] == ["markdown"],
   "a reply with a fenced python block: it runs, the output goes back, the model answers", out[-600:])

# --- an endpoint without function calling: auto mode falls back to code blocks ---------------------
rc, t, out = agent("notools", problem="Sum 0..4")
ok(rc == 0 and t.get("answer") == "It is 10." and t.get("mode") == "markdown"
   and "tools" not in SEEN["notools"][-1][1],
   "an endpoint that refuses tools (400): the agent drops them and uses code blocks", out[-600:])

# --- a model that loops: stopped by --max-turns -----------------------------------------------------
rc, t, out = agent("loop", "--max-turns", "3")
ok(rc == 1 and t.get("stopped") == "max_turns" and len(SEEN["loop"]) == 3 and len(t.get("runs", [])) == 3
   and "--max-turns" in out,
   "a model that only ever calls tools: 3 requests, 3 runs, exit 1 with a clear message", out[-400:])

# --- endpoint failures: retried, bounded, clear --------------------------------------------------------
rc, t, out = agent("flaky")
ok(rc == 0 and t.get("answer") == "fine now" and len(SEEN["flaky"]) == 2 and "retry 1 of 2" in out,
   "a 500 then a good reply: retried once, answered", out[-400:])
t0 = time.time()
rc, t, out = agent("down", "--retries", "2")
ok(rc == 9 and len(SEEN["down"]) == 3 and "HTTP 500" in out and "upstream overloaded" in out
   and t.get("stopped") == "model_error" and time.time() - t0 < 30,
   "a 500 every time: 3 attempts (--retries 2), exit 9 naming the status and message", out[-400:])
t0 = time.time()
rc, t, out = agent("slow", "--request-timeout", "1", "--retries", "1")
ok(rc == 9 and len(SEEN["slow"]) == 2 and "within 1000 ms" in out and time.time() - t0 < 15,
   "an endpoint slower than --request-timeout 1: 2 attempts, exit 9 (%.1f s)" % (time.time() - t0), out[-400:])
rc, t, out = agent("malformed", "--retries", "1")
ok(rc == 9 and len(SEEN["malformed"]) == 2 and "malformed reply" in out,
   "a reply that is not JSON: retried, then exit 9 saying so", out[-400:])
rc, t, out = agent("nothing-here", "--retries", "3")
ok(rc == 9 and len(SEEN["nothing-here"]) == 1 and "HTTP 404" in out,
   "a 404 is not retried: one attempt, exit 9", out[-300:])
rc, t, out = agent("tool", "--base-url", "http://127.0.0.1:1/v1", "--retries", "0")
ok(rc == 9 and "127.0.0.1:1" in out, "nothing listening: exit 9 naming the address", out[-300:])

# --- what the model asks for is checked and refused in the sandbox's front, and it is told ---------------
rc, t, out = agent("policy", "--policy-mode", "enforce")
runs = t.get("runs", [])
ok(rc == 0 and t.get("answer") == "refused: policy_violation" and runs and runs[0]["status"] == "rejected"
   and "policy_violation" in runs[0]["result"],
   "a policy refusal (enforce) is fed back to the model as the tool result; nothing ran", (out[-500:], runs))
rc, t, out = agent("badargs")
ok(rc == 0 and t.get("answer") == "gave up: not a JSON object" and not t.get("runs"),
   "tool arguments that are not JSON: the model is told, nothing runs", out[-400:])

rc, t, out = agent("greedy", "--limit", "memory_mb=128", "--limit", "wall_ms=5000", "--no-session")
runs = t.get("runs", [])
tools = [m["content"] for m in (SEEN.get("greedy") or [({}, {"messages": []})])[-1][1]["messages"]
         if m["role"] == "tool"] + ["", ""]
ok(rc == 0 and len(runs) == 1 and "not run: limits.memory_mb 4096" in tools[0] and "small" in tools[1],
   "--limit values are ceilings: a model asking for 4096 MiB is told no and nothing runs; 64 MiB runs", tools)
if runs:
    rec = json.loads(subprocess.run([BIN, "audit", "show", runs[0]["audit_id"], "--json", "--state", state],
                                    capture_output=True).stdout or b"{}")
    lim = rec.get("request", {}).get("limits", {})
    ok(lim.get("memory_mb") == 64 and lim.get("wall_ms") == 5000,
       "... and the run that did happen had memory 64 (asked) and wall 5000 (the operator's)", lim)
# with a session (the default) the same: 4096 MiB is refused before anything
# starts; the session holds the operator's 128 MiB for its whole life, and a
# model's memory_mb for one call is dropped with a note saying so
rc, t, out = agent("greedy-session", "--limit", "memory_mb=128", "--limit", "wall_ms=5000")
runs = t.get("runs", [])
tools = [m["content"] for m in (SEEN.get("greedy-session") or [({}, {"messages": []})])[-1][1]["messages"]
         if m["role"] == "tool"] + ["", ""]
ok(rc == 0 and len(runs) == 1 and "not run: limits.memory_mb 4096" in tools[0] and "small" in tools[1]
   and "limits.memory_mb is the session's" in tools[1] and runs[0].get("session_id"),
   "a session task: 4096 MiB refused, 64 MiB runs in the session with a note that memory is the session's", tools)
if runs and runs[0].get("session_id"):
    rec = json.loads(subprocess.run([BIN, "audit", "show", runs[0]["session_id"], "--json", "--state", state],
                                    capture_output=True).stdout or b"{}")
    ok(rec.get("request", {}).get("limits", {}).get("memory_mb") == 128,
       "... and the session was started with the operator's --limit memory_mb=128", rec.get("request"))

# --- one session per task: the model's variables survive between turns -------------------------
rc, t, out = agent("state", problem="Keep x")
runs = t.get("runs", [])
sids = {r.get("session_id") for r in runs}
ok(rc == 0 and t.get("answer") == "x is 42" and len(runs) == 2 and len(sids) == 1 and None not in sids
   and t.get("sessions") is True,
   "default: x and an import from turn 1 are there in turn 2 (one session for the task)", (t.get("answer"), runs))
sid = runs[0].get("session_id") if runs else None
recs = [json.loads(x) for x in subprocess.run([BIN, "audit", "list", "--json", "--limit", "0", "--session",
                                               sid or "none", "--state", state], capture_output=True).stdout.splitlines()
        if x.strip()]
sess = [r for r in recs if r.get("kind") == "session"]
cells = [r for r in recs if r.get("kind") != "session"]
ok(len(sess) == 1 and sess[0]["source"] == "agent" and sess[0]["actor"].startswith("user:")
   and sess[0]["status"] == "closed" and sess[0]["result"]["reason"] == "closed" and sess[0]["result"]["cells"] == 2
   and sorted(c["id"] for c in cells) == sorted(r["audit_id"] for r in runs),
   "the session is audited (source agent), its 2 cells are the transcript's runs, and it ended with the task "
   "(closed)", recs)
SESSION_IDS = {sid}
# --- --warm: the runs start from sandboxes made ahead, the preload imported ------------------------
rc, t, out = agent("warm", "--no-session", "--warm", "python=colorsys", "--warm-pool", "1", "--max-turns", "200")
runs = t.get("runs", [])
ok(rc == 0 and t.get("answer") == "warm" and runs and runs[-1].get("start") == "warm"
   and runs[-1].get("status") == "ok" and all(r.get("start") == "cold" and r.get("start_reason") == "pool_empty"
                                              for r in runs[:-1]),
   "--no-session --warm python=colorsys: a run starts warm (start warm in the transcript, the preload "
   "imported); the ones before the pool filled are cold, pool_empty (%d runs)" % len(runs),
   (out[-500:], [(r.get("start"), r.get("start_reason")) for r in runs][-5:]))

rc, t, out = agent("state-oneshot", "--no-session", problem="Keep x")
runs = t.get("runs", [])
ok(rc == 0 and t.get("answer", "").startswith("lost") and "NameError" in t.get("answer", "")
   and not any(r.get("session_id") for r in runs) and t.get("sessions") is False,
   "--no-session: every run in a fresh sandbox, x is gone in turn 2 (NameError)", t.get("answer"))
rc, t, out = agent("echo401")
ok(rc == 9 and "Incorrect API key provided" in out and SECRET not in out and "[key]" in out,
   "an endpoint that echoes the key in its error: the message is shown with the key blanked", out[-300:])
# --- what reaches a person's terminal -----------------------------------------------------------
env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": SECRET}
p = subprocess.run([BIN, "agent", "--base-url", "http://127.0.0.1:%d/spoof/v1" % PORT, "--state", state, "x"],
                   capture_output=True, timeout=60, env=env)
ok(p.returncode == 0 and b"\x1b" not in p.stdout and b"\xc2\x9b" not in p.stdout and b"\r" not in p.stdout
   and p.stdout == b"\\x1b[2J\\x1b[H\\x1b]52;c;Y3VybCBldmlsLnNofHNo\\x07\\u009b31mAll good.\\x0dOK\\x1b[0m\n",
   "human mode: the model's answer reaches the terminal with every control escaped (no screen clear, no OSC 52)",
   p.stdout)
rc, t, out = agent("spoof")
ok(rc == 0 and t.get("answer") == SPOOF, "--json: the answer as the model sent it (JSON escapes it)", t.get("answer"))
# a short key that the operator's base URL holds many times: blanking each
# copy grows the message ("[key]" is longer), which once ran past its
# 512-byte buffer on the stack
short_key = "k3y9"
p = subprocess.run([BIN, "agent", "--base-url", "http://127.0.0.1:1/" + short_key * 200 + "/v1", "--state", state,
                    "--retries", "0", "x"], capture_output=True, timeout=60,
                   env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": short_key})
ok(p.returncode == 9 and b"[key][key]" in p.stderr and short_key.encode() not in p.stdout + p.stderr,
   "a base URL holding a 4-character key 200 times: exit 9, every copy blanked, no crash", (p.returncode, p.stderr[-300:]))
p = subprocess.Popen([BIN, "agent", "--base-url", "http://127.0.0.1:%d/slow/v1" % PORT, "--state", state,
                      "--request-timeout", "60", "x"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": SECRET})
time.sleep(0.7)
t0 = time.time()
p.send_signal(2)
try:
    _, perr = p.communicate(timeout=20)
except subprocess.TimeoutExpired:
    p.kill()
    _, perr = p.communicate()
ok(p.returncode == 130 and time.time() - t0 < 2 and b"retry" not in perr,
   "Ctrl-C during a slow model request: exit 130 at once (%.1f s), no retry" % (time.time() - t0),
   (p.returncode, perr[-300:]))

rc, t, out = agent("many")
ok(rc == 0 and t.get("answer") == "20 answers, 12 not run" and len(t.get("runs", [])) == 8,
   "a reply with 20 tool calls: 8 run, the other 12 answered 'not run' (each call gets its answer)", out[-400:])

# --- every run is audited with source agent -------------------------------------------------------------
recs = [json.loads(x) for x in subprocess.run([BIN, "audit", "list", "--json", "--limit", "0", "--state", state],
                                              capture_output=True).stdout.splitlines() if x.strip()]
src = {r["source"] for r in recs}
runs_recs = [r for r in recs if r.get("kind") != "session"]
ok(src == {"agent"} and sorted(r["id"] for r in runs_recs) == sorted(i for i in RUN_IDS if i)
   and all(r["actor"].startswith("user:") for r in recs)
   and all(r["status"] in ("closed", "start_failed") for r in recs if r.get("kind") == "session"),
   "every run and cell the transcripts list (%d) and no other is in the audit log, source agent, actor "
   "user:NAME; every session ended with its task" % len(RUN_IDS),
   (src, sorted(r["id"] for r in runs_recs), sorted(i for i in RUN_IDS if i)))
p = subprocess.run([BIN, "audit", "verify", "--state", state], capture_output=True, timeout=60)
ok(p.returncode == 0, "audit verify: the chain is intact", p.stdout[-300:] + p.stderr[-300:])

# --- usage errors ------------------------------------------------------------------------------------------
for args, why in [(["agent"], "PROBLEM"), (["agent", "--mode", "psychic", "x"], "--mode"),
                  (["agent", "--max-turns", "0", "x"], "--max-turns"),
                  (["agent", "--base-url", "ftp://x", "x"], "http"), (["agent", ""], "empty")]:
    p = subprocess.run([BIN, *args], capture_output=True, timeout=30)
    ok(p.returncode == 2 and why.encode() in p.stderr, "usage: %s -> exit 2" % " ".join(args[1:]), p.stderr[-200:])

httpd.shutdown()
subprocess.run(["rm", "-rf", state])
done()
