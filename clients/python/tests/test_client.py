"""The Python client against a real `airlock serve` (tests/server.py):
every route, every error class the tests can provoke, streaming order,
sessions with state and rich results, files round trip, retries on the
real rate limit, the tutorial class, the OpenAI and LangChain adapters,
async, local mode. Nothing asserts a duration."""
import asyncio
import base64
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import types
import unittest

from server import BIN, MAX_BODY, REPO, Server

import airlock_client as ac
from airlock_client import errors
from airlock_client.tools import (AirlockSandbox, AsyncAirlockSandbox, langchain_tool,
                                  openai_tool, run_tool_call)

SRV = Server()
URL = ""
KEYS = {}


def setUpModule():
    global URL
    URL = SRV.start()
    KEYS["exec"] = SRV.key("exec")
    KEYS["other"] = SRV.key("other")
    KEYS["auditor"] = SRV.key("auditor", "--scopes", "audit:read")
    KEYS["slow"] = SRV.key("slow", "--rate", "1/min")
    KEYS["persec"] = SRV.key("persec", "--rate", "1/s")
    KEYS["small"] = SRV.key("small", "--max-memory", "64")


def tearDownModule():
    SRV.stop()


def client(name="exec", **kw):
    return ac.Airlock(URL, KEYS[name], **kw)


def documented_codes():
    """Every error code docs/airlock-serve.1 (ERRORS) and docs/openapi.json
    (the error responses' descriptions) name."""
    with open(os.path.join(REPO, "docs", "airlock-serve.1")) as f:
        man = f.read()
    part = man.split(".SH ERRORS", 1)[1].split(".SH LOGS", 1)[0]
    part = part.split("Codes:", 1)[1]
    codes = set(re.findall(r"\b([a-z]+(?:_[a-z]+)+)\b", part.replace("\\-", "-")))
    # plain words that are codes too
    codes |= {w for w in ("unauthorized", "forbidden") if w in part}
    with open(os.path.join(REPO, "docs", "openapi.json")) as f:
        doc = json.load(f)
    for ops in doc["paths"].values():
        for op in ops.values():
            if not isinstance(op, dict):
                continue
            for st, r in op.get("responses", {}).items():
                if int(st) < 400:
                    continue
                for grp in re.findall(r"\(([a-z_, ]+)\)", r.get("description", "")):
                    codes |= {c.strip() for c in grp.split(",") if "_" in c or c.strip() in
                              ("unauthorized", "forbidden")}
                m = re.match(r"bad input: ([a-z_, ]+)$", r.get("description", ""))
                if m:
                    codes |= {c.strip() for c in m.group(1).split(",")}
    # words of the man page's list that are not codes: session_dead's
    # fields in the parenthesis
    return codes - {"session_id"}


class ErrorMapping(unittest.TestCase):
    def test_every_documented_code_has_its_class(self):
        codes = documented_codes()
        self.assertGreater(len(codes), 40, sorted(codes))
        missing = sorted(c for c in codes if c not in errors.CODE_CLASSES
                         and c != "audit_unavailable")
        self.assertEqual(missing, [], "codes without a class")
        for c in codes:
            cls = errors.error_class(c, 400)
            self.assertIsNot(cls, ac.AirlockError, c)
        self.assertIs(errors.error_class("audit_unavailable", 503), ac.Unavailable)
        self.assertIs(errors.error_class("audit_unavailable", 500), ac.ServerError)
        self.assertIs(errors.error_class("brand_new_code", 409), ac.Conflict)

    def test_every_public_name_has_a_docstring(self):
        import inspect
        import airlock_client.tools as tools_mod
        missing = []
        for mod in (ac, tools_mod):
            for name in mod.__all__:
                obj = getattr(mod, name)
                if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                    continue
                if not inspect.getdoc(obj):
                    missing.append(name)
                if inspect.isclass(obj):
                    for m, v in vars(obj).items():
                        if not m.startswith("_") and (inspect.isfunction(v) or
                                                      isinstance(v, property)) \
                                and not inspect.getdoc(v):
                            missing.append(name + "." + m)
        self.assertEqual(missing, [])

    def test_key_from_environment_never_shown(self):
        secret = KEYS["exec"]
        old = os.environ.get("AIRLOCK_API_KEY")
        os.environ["AIRLOCK_API_KEY"] = secret
        try:
            al = ac.Airlock(URL)
            self.assertTrue(al.run("print(7)").ok)
            self.assertNotIn(secret, repr(al))
            self.assertNotIn(secret.rsplit("_", 1)[-1], repr(al) + str(vars(al)))
        finally:
            if old is None:
                del os.environ["AIRLOCK_API_KEY"]
            else:
                os.environ["AIRLOCK_API_KEY"] = old


class OneShot(unittest.TestCase):
    def test_run_ok(self):
        r = client().run("print(6 * 7)", language="python", timeout=10)
        self.assertTrue(r.ok, r.raw)
        self.assertEqual((r.status, r.stdout, r.exit_code, r.limits_hit), ("ok", "42\n", 0, []))
        self.assertRegex(r.audit_id or "", r"^[0-9a-f]{32}$")
        self.assertEqual(r.limits.get("wall_ms"), 10000)
        r = client().run("print(1)", start="cold")
        self.assertTrue(r.ok, r.raw)
        self.assertIn(r.start, (None, "cold"))

    def test_run_every_input(self):
        blob = bytes(range(256))
        code = ("import os, sys\n"
                "data = open('in/blob.bin','rb').read()\n"
                "print(len(data), sys.argv[1:], os.environ['GREETING'], sys.stdin.read())\n"
                "open('out.bin','wb').write(data[::-1])\n")
        r = client().run(code, stdin="from stdin", args=["a", "b"], env={"GREETING": "hi"},
                         files={"in/blob.bin": blob}, collect=["*.bin"],
                         limits={"memory_mb": 128, "pids": 16}, policy_mode="record",
                         user_id="u1", agent_id="ag1", metadata={"trace": "t-1"})
        self.assertTrue(r.ok, r.raw)
        self.assertEqual(r.stdout, "256 ['a', 'b'] hi from stdin\n")
        f = r.file("out.bin")
        self.assertIsNotNone(f)
        self.assertEqual(f.content, blob[::-1])
        self.assertEqual(r.limits["memory_mb"], 128)
        self.assertEqual(r.metadata, {"trace": "t-1"})
        rec = client().execution(r.audit_id)
        self.assertIn("u1", json.dumps(rec))

    def test_sandbox_failures_are_results(self):
        al = client()
        r = al.run("import sys; print('x', file=sys.stderr); sys.exit(3)")
        self.assertEqual((r.ok, r.status, r.exit_code, r.stderr), (False, "error", 3, "x\n"))
        r = al.run("import time\nwhile True: time.sleep(0.1)", timeout=1)
        self.assertEqual(r.status, "timeout", r.raw)
        self.assertTrue(r.limits_hit, r.raw)
        r = al.run("echo not-utf8; printf '\\377'", language="bash")
        self.assertEqual(r.stdout_bytes, b"not-utf8\n\xff", r.raw)

    def test_client_waits_past_the_wall_limit(self):
        # a margin shorter than the server's default wall: the run's own
        # timeout (2 s) sets the wait, so the answer is the timeout result
        al = client(timeout_margin=3)
        r = al.run("import time; time.sleep(30)", timeout=2)
        self.assertEqual(r.status, "timeout", r.raw)

    def test_client_timeout_follows_each_wall_limit(self):
        al = client(timeout_margin=7)
        seen = []
        real = al._t._once

        def spy(method, path, body, headers, timeout):
            seen.append((path, timeout))
            return real(method, path, body, headers, timeout)
        al._t._once = spy
        al.run("print(1)", timeout=42)
        al.run("print(1)", limits={"wall_ms": 3000})
        al.run("print(1)")
        with al.session(timeout=20) as s:
            s.run("1")
            s.run("1", timeout=33)
        ex = [t for p, t in seen if p.endswith("execute")]
        self.assertEqual(ex, [49, 10, 17, 27, 40])

    def test_stream_order(self):
        evs = list(client().stream("import sys\nfor i in range(3): print(i, flush=True)\n"
                                   "print('err', file=sys.stderr, flush=True)\nprint('end')"))
        kinds = [e.kind for e in evs]
        self.assertEqual(kinds[-1], "result", kinds)
        self.assertNotIn("result", kinds[:-1])
        self.assertIn("stdout", kinds)
        res = evs[-1].result
        self.assertIsInstance(res, ac.Result)
        self.assertEqual("".join(e.text for e in evs if e.kind == "stdout"), res.stdout)
        self.assertEqual("".join(e.text for e in evs if e.kind == "stderr"), "err\n")
        self.assertEqual(res.stdout, "0\n1\n2\nend\n")

    def test_stream_refusal_raises(self):
        with self.assertRaises(ac.UnknownLanguage):
            list(client().stream("x", language="cobol"))

    def test_compat_route(self):
        d = client().execute_compat("print('hi')")
        self.assertEqual((d["success"], d["output"], d["error"]), (True, "hi\n", ""))


class Errors(unittest.TestCase):
    def test_401_no_key_and_bad_key(self):
        old = os.environ.pop("AIRLOCK_API_KEY", None)
        try:
            with self.assertRaises(ac.AuthError) as cm:
                ac.Airlock(URL).run("print(1)")
            self.assertEqual((cm.exception.code, cm.exception.http_status), ("unauthorized", 401))
        finally:
            if old is not None:
                os.environ["AIRLOCK_API_KEY"] = old
        bad = KEYS["exec"][:-4] + "zzzz"
        al = ac.Airlock(URL, bad)
        with self.assertRaises(ac.AuthError) as cm:
            al.run("print(1)")
        e = cm.exception
        self.assertEqual(e.code, "invalid_api_key")
        self.assertRegex(e.audit_id or "", r"^[0-9a-f]{32}$")
        import traceback
        shown = str(e) + repr(e) + "".join(traceback.format_exception(type(e), e, e.__traceback__))
        self.assertNotIn(bad, shown)
        self.assertNotIn(bad, repr(al))

    def test_403_scope(self):
        with self.assertRaises(ac.Forbidden) as cm:
            client("auditor").run("print(1)")
        self.assertEqual(cm.exception.code, "forbidden")

    def test_400_family(self):
        with self.assertRaises(ac.UnknownLanguage) as cm:
            client().run("x", language="cobol")
        self.assertIn("python", cm.exception.message)
        with self.assertRaises(ac.BadRequest) as cm:
            client().run("x", limits={"memory_mb": -1})
        self.assertEqual(cm.exception.field, "limits.memory_mb")

    def test_limit_exceeds_key(self):
        with self.assertRaises(ac.LimitExceedsKey) as cm:
            client("small").run("print(1)", memory_mb=128)
        self.assertEqual((cm.exception.code, cm.exception.http_status),
                         ("limit_exceeds_key", 400))
        self.assertTrue(client("small").run("print(1)", memory_mb=64).ok)

    def test_413_body_too_large(self):
        with self.assertRaises(ac.BodyTooLarge) as cm:
            client().run("#" * (MAX_BODY + 1024))
        self.assertEqual(cm.exception.http_status, 413)

    def test_422_policy_violation(self):
        with self.assertRaises(ac.Rejected) as cm:
            client().run("import subprocess\nsubprocess.run(['id'])", policy_mode="enforce")
        e = cm.exception
        self.assertEqual((e.code, e.http_status), ("policy_violation", 422))
        self.assertTrue(e.findings)
        self.assertRegex(e.audit_id or "", r"^[0-9a-f]{32}$")

    def test_404_not_found(self):
        with self.assertRaises(ac.NotFound) as cm:
            client().execution("0" * 32)
        self.assertEqual(cm.exception.code, "not_found")

    def test_429_then_retry_honouring_retry_after(self):
        waits = []
        # 1/min: the wait the server asks is over max_wait: raised at once
        al = client("slow", retry=ac.RetryPolicy(max_retries=3, max_wait=5,
                                                 sleep=waits.append))
        self.assertTrue(al.run("print(1)").ok)
        with self.assertRaises(ac.RateLimited) as cm:
            al.run("print(1)")
        self.assertEqual(cm.exception.code, "rate_limited")
        self.assertGreater(cm.exception.retry_after or 0, 5)
        self.assertEqual(waits, [])
        # 1/s: the client sleeps what Retry-After says, then the run goes in
        real = []

        def sleep(s):
            real.append(s)
            time.sleep(s)
        al = client("persec", retry=ac.RetryPolicy(max_retries=5, sleep=sleep))
        for _ in range(3):
            self.assertTrue(al.run("print(1)").ok)
        self.assertTrue(real, "no 429 was retried")
        self.assertGreaterEqual(min(real), 1.0)
        # no retries: the 429 itself
        al0 = client("persec", retry=0)
        with self.assertRaises(ac.RateLimited):
            for _ in range(3):
                al0.run("print(1)")


class Sessions(unittest.TestCase):
    def test_state_rich_results_and_audit(self):
        al = client()
        with al.session("python", memory_mb=512) as s:
            self.assertTrue(s.run("x = 41").ok)
            c = s.run("x + 1")
            self.assertEqual((c.status, c.text), ("ok", "42"))
            c = s.run("import matplotlib.pyplot as plt; plt.plot([1,3,2])")
            self.assertTrue(c.ok, c.raw)
            self.assertTrue(s.results[-1].png.startswith(b"\x89PNG\r\n\x1a\n"))
            self.assertEqual(c.png, s.results[-1].png)
            c = s.run("1/0")
            self.assertEqual((c.status, c.error.name), ("error", "ZeroDivisionError"))
            self.assertTrue(c.error.traceback)
            evs = list(s.stream("for i in range(2): print(i, flush=True)"))
            self.assertEqual(evs[-1].kind, "result")
            self.assertIsInstance(evs[-1].result, ac.CellResult)
            self.assertEqual("".join(e.text for e in evs[:-1] if e.kind == "stdout"), "0\n1\n")
            self.assertIn(s.id, [x["id"] for x in al.sessions()])
            self.assertEqual(al.attach(s.id).id, s.id)
            self.assertEqual(al.execution(s.id + ".2")["status"], "ok")
            sid = s.id
        self.assertEqual(s.info.get("status"), "ended")
        with self.assertRaises(ac.SessionDead) as cm:
            s.run("x")
        self.assertEqual((cm.exception.http_status, cm.exception.reason,
                          cm.exception.session_id), (410, "closed", sid))
        s.close()  # closing again is not an error

    def test_files_round_trip(self):
        blob = bytes(range(256)) * 10
        with client().session() as s:
            info = s.upload("data/blob.bin", blob)
            self.assertEqual(info["size"], len(blob))
            with tempfile.TemporaryFile() as f:
                f.write(b"a,b\n1,2\n")
                f.seek(0)
                s.upload("data.csv", f)
            c = s.run("open('out.bin','wb').write(open('data/blob.bin','rb').read()[::-1])\n"
                      "len(open('data.csv').read())")
            self.assertEqual(c.text, "8", c.raw)
            self.assertEqual(s.download("out.bin"), blob[::-1])
            self.assertIn("blob.bin", [e["name"] for e in s.files("data")])
            self.assertTrue(s.delete_file("data/blob.bin")["deleted"])
            with self.assertRaises(ac.FileNotFound):
                s.download("data/blob.bin")
            with self.assertRaises(ac.BadPath):
                s.upload("../escape", b"x")
            with self.assertRaises(ac.BadPath):
                s.upload(b"bad\xffname", b"x")
            with self.assertRaises(ac.BadPath):
                s.upload(os.fsdecode(b"bad\xfename"), b"x")
            with self.assertRaises(ac.NotADirectory):
                s.files("out.bin")

    def test_other_key_sees_404(self):
        with client().session() as s:
            with self.assertRaises(ac.SessionNotFound):
                client("other").attach(s.id)
            other = ac.Session(client("other"), {"id": s.id})
            with self.assertRaises(ac.SessionNotFound):
                other.run("1")

    def _busy_then_interrupt(self, s):
        """Run a cell that loops, see 409 session_busy while it runs, then
        interrupt it -> its result."""
        out = {}
        t = threading.Thread(target=lambda: out.setdefault(
            "r", s.run("import time\nwhile True: time.sleep(0.05)", timeout=60)))
        t.start()
        busy = False
        for _ in range(200):
            if s.status().get("status") == "busy":
                busy = True
                break
            time.sleep(0.05)
        self.assertTrue(busy, s.info)
        with self.assertRaises(ac.SessionBusy) as cm:
            s.run("1")
        self.assertEqual(cm.exception.http_status, 409)
        self.assertTrue(s.interrupt())
        t.join(60)
        self.assertFalse(t.is_alive())
        return out["r"]

    def test_busy_and_interrupt(self):
        with client().session() as s:
            r = self._busy_then_interrupt(s)
            self.assertEqual(r.status, "error", r.raw)
            self.assertEqual(r.error.name, "KeyboardInterrupt")
            self.assertFalse(s.interrupt())

    # a 409 session_busy refusal takes no cell number: the next cell runs
    def test_cell_after_busy_refusal(self):
        with client(retry=0).session() as s:
            self._busy_then_interrupt(s)
            self.assertEqual(s.run("2 + 2").text, "4")


class Reads(unittest.TestCase):
    def test_reads(self):
        al = client()
        r = al.run("print('audited')", agent_id="reader-test")
        rec = al.execution(r.audit_id)
        self.assertEqual(rec["id"], r.audit_id)
        page = al.audit(limit=5)
        self.assertIn(r.audit_id, [e["id"] for e in page["executions"]])
        ids = [e["id"] for e in al.audit_all(limit=2)]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertIn(r.audit_id, ids)
        # an audit:read key sees every tenant's; the other execute key not
        self.assertEqual(client("auditor").execution(r.audit_id)["id"], r.audit_id)
        with self.assertRaises(ac.NotFound):
            client("other").execution(r.audit_id)
        with self.assertRaises(ac.BadRequest) as cm:
            al.audit(bogus="1")
        self.assertEqual(cm.exception.code, "unknown_parameter")
        self.assertIn("python", [x["name"] for x in al.languages()])
        self.assertTrue(al.health())
        self.assertEqual(al.ready()["status"], "ready")
        self.assertIn("airlock_http_requests_total", al.metrics())
        self.assertIn("/v1/execute", al.openapi()["paths"])


class Adapters(unittest.TestCase):
    def test_tutorial_class(self):
        sb = AirlockSandbox(client())
        d = sb.execute("print('hello')", language="python", timeout=30)
        self.assertEqual((d["success"], d["output"], d["error"]), (True, "hello\n", ""))
        d = sb.execute("import sys; sys.exit('boom')")
        self.assertEqual((d["success"], d["error"]), (False, "boom\n"))
        d = sb.execute("import time; time.sleep(10)", timeout=1)
        self.assertEqual((d["success"], d["error"]), (False, "Execution timed out"))
        d = sb.execute("x", language="cobol")
        self.assertFalse(d["success"])
        self.assertIn("cobol", d["error"])
        d = asyncio.run(AsyncAirlockSandbox(client()).execute("print(5)"))
        self.assertEqual((d["success"], d["output"]), (True, "5\n"))
        with self.assertRaises(ac.AuthError):
            AirlockSandbox(ac.Airlock(URL, "alk_x_y")).execute("print(1)")

    def test_openai_tool_call(self):
        tool = openai_tool()
        self.assertEqual(tool["type"], "function")
        self.assertEqual(tool["function"]["name"], "run_code")
        self.assertEqual(tool["function"]["parameters"]["required"], ["code"])
        call = {"id": "call_abc", "type": "function",
                "function": {"name": "run_code",
                             "arguments": json.dumps({"code": "print(sum(range(5)))"})}}
        msg = run_tool_call(client(), call)
        self.assertEqual((msg["role"], msg["tool_call_id"]), ("tool", "call_abc"))
        out = json.loads(msg["content"])
        self.assertEqual((out["status"], out["stdout"], out["exit_code"]), ("ok", "10\n", 0))
        self.assertRegex(out["audit_id"], r"^[0-9a-f]{32}$")
        # the SDK's objects (attributes, not keys) and the Responses shape
        obj = types.SimpleNamespace(id="c2", function=types.SimpleNamespace(
            name="run_code", arguments='{"code": "echo hi", "language": "bash"}'))
        self.assertEqual(json.loads(run_tool_call(client(), obj)["content"])["stdout"], "hi\n")
        item = {"type": "function_call", "call_id": "fc1", "name": "run_code",
                "arguments": '{"code": "print(1)"}'}
        m = run_tool_call(client(), item)
        self.assertEqual((m["type"], m["call_id"]), ("function_call_output", "fc1"))
        bad = dict(call, function={"name": "run_code", "arguments": "{not json"})
        self.assertEqual(json.loads(run_tool_call(client(), bad)["content"])["status"],
                         "invalid_arguments")
        rej = dict(call, function={"name": "run_code", "arguments": json.dumps(
            {"code": "import subprocess"})})
        self.assertEqual(json.loads(run_tool_call(client(), rej, policy_mode="enforce")
                                    ["content"])["status"], "rejected")
        with self.assertRaises(ValueError):
            run_tool_call(client(), dict(call, function={"name": "other", "arguments": "{}"}))

    def test_langchain_tool(self):
        try:
            import langchain_core  # noqa: F401
            real = True
        except ImportError:
            real = False
        if not real:
            with self.assertRaises(ImportError) as cm:
                langchain_tool(client())
            self.assertIn("langchain", str(cm.exception))
            # the adapter against a stand-in BaseTool of the same protocol
            mod = types.ModuleType("langchain_core.tools")

            class BaseTool:
                def run(self, tool_input):
                    return self._run(**tool_input)
            mod.BaseTool = BaseTool
            pkg = types.ModuleType("langchain_core")
            pkg.tools = mod
            sys.modules["langchain_core"], sys.modules["langchain_core.tools"] = pkg, mod
            try:
                t = langchain_tool(client())
            finally:
                del sys.modules["langchain_core"], sys.modules["langchain_core.tools"]
        else:
            t = langchain_tool(client())
        self.assertEqual(t.name, "run_code")
        out = json.loads(t.run({"code": "print(3)"}))
        self.assertEqual((out["status"], out["stdout"]), ("ok", "3\n"))


class Async(unittest.TestCase):
    def test_async_client(self):
        async def main():
            async with ac.AsyncAirlock(URL, KEYS["exec"]) as al:
                rs = await asyncio.gather(*(al.run("print(%d)" % i) for i in range(3)))
                kinds = [ev.kind async for ev in al.stream("print('a'); print('b')")]
                s = await al.session()
                async with s:
                    await s.run("y = 2")
                    c = await s.run("y * 21")
                    await s.upload("f.bin", b"\x00\xff")
                    got = await s.download("f.bin")
                return rs, kinds, c, got
        rs, kinds, c, got = asyncio.run(main())
        self.assertEqual([r.stdout for r in rs], ["0\n", "1\n", "2\n"])
        self.assertEqual(kinds[-1], "result")
        self.assertEqual(c.text, "42")
        self.assertEqual(got, b"\x00\xff")


class Local(unittest.TestCase):
    def test_local_mode(self):
        state = tempfile.mkdtemp(prefix="al-pyclient-local-")
        self.addCleanup(shutil.rmtree, state, True)
        os.chmod(state, 0o700)
        old = os.environ.get("AIRLOCK_BIN")
        os.environ["AIRLOCK_BIN"] = BIN
        try:
            al = ac.Airlock.local(state=state)
        finally:
            if old is None:
                del os.environ["AIRLOCK_BIN"]
            else:
                os.environ["AIRLOCK_BIN"] = old
        r = al.run("import sys\nprint(open('in.txt').read(), sys.argv[1:], sys.stdin.read())\n"
                   "open('o.bin','wb').write(b'\\xff')", stdin="S", args=["A"],
                   files={"in.txt": "file"}, collect=["*.bin"], timeout=10)
        self.assertIsInstance(r, ac.Result)
        self.assertTrue(r.ok, r.raw)
        self.assertEqual(r.stdout, "file ['A'] S\n")
        self.assertEqual(r.file("o.bin").content, b"\xff")
        self.assertRegex(r.audit_id or "", r"^[0-9a-f]{32}$")
        r = al.run("import time; time.sleep(5)", timeout=1)
        self.assertEqual(r.status, "timeout")
        with self.assertRaises(ac.Rejected):
            al.run("import subprocess", policy_mode="enforce")
        with self.assertRaises(ac.NotSupported):
            al.session()
        d = AirlockSandbox(al).execute("print(9)")
        self.assertEqual((d["success"], d["output"]), (True, "9\n"))
        with self.assertRaises(ac.BinaryNotFound):
            ac.Airlock.local(binary=os.path.join(state, "no-such-airlock"))


if __name__ == "__main__":
    unittest.main()
