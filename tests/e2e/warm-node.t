#!/usr/bin/python3
# Warm starts for node: `serve --warm node` keeps sandboxes ready whose
# driver runs a program as `node /workspace/main.js` would (request R):
# the result of a warm run is a cold run's (stdout, exit code from
# process.exitCode and process.exit, an uncaught error as exit 1, timers
# that run after the main module), and two warm runs share nothing (a
# global set in one is absent in the next). Bounded waits, no timing.
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, skip  # noqa: E402
from airlock import BIN, start_serve  # noqa: E402

if not os.path.exists("/usr/bin/node"):
    skip("warm node runs", "no /usr/bin/node on this host")
    done()
    sys.exit(0)
state = tempfile.mkdtemp(prefix="al-e2e-warmnode-")
os.chmod(state, 0o700)
key = json.loads(subprocess.run([BIN, "keys", "create", "--name", "w", "--state", state, "--json"],
                                capture_output=True, check=True).stdout)["key"]
p, port, log = start_serve(state, "--warm", "node=util", "--warm-pool", "2")


def run(code):
    req = urllib.request.Request("http://127.0.0.1:%d/v1/execute" % port,
                                 json.dumps({"language": "node", "code": code}).encode(),
                                 {"Authorization": "Bearer " + key})
    with urllib.request.urlopen(req, timeout=60) as f:
        return json.loads(f.read())


def warm(code, tries=60):
    """The first warm answer (the pool fills at start): bounded retries."""
    r = {}
    for _ in range(tries):
        r = run(code)
        if r.get("start") == "warm":
            return r
        time.sleep(0.5)
    return r


r = warm("console.log(1 + 1); process.exitCode = 3")
ok(r.get("start") == "warm" and r.get("stdout") == "2\n" and r.get("exit_code") == 3 and r.get("status") == "error",
   "a warm node run: its stdout, process.exitCode as the exit code", r)
r = warm("console.log(process.argv[1], require.main === module, typeof require('fs').readFileSync)")
ok(r.get("stdout") == "/workspace/main.js true function\n" and r.get("status") == "ok",
   "the program is the main module at /workspace/main.js, with require", r)
r = warm("throw new Error('boom')")
ok(r.get("exit_code") == 1 and "Error: boom" in r.get("stderr", ""), "an uncaught error: exit 1, printed", r)
r = warm("setTimeout(() => console.log('later'), 100)")
ok(r.get("stdout") == "later\n" and r.get("exit_code") == 0, "timers run after the main module, as node's", r)
r = warm("process.exit(5)")
ok(r.get("exit_code") == 5, "process.exit(5) is exit code 5", r)
warm("globalThis.leak = 'A'; require('util').leak = 'A'")
r = warm("console.log(typeof globalThis.leak, require('util').leak === undefined)")
ok(r.get("stdout") == "undefined true\n", "a global and a module property set in one warm run are absent in the next", r)
FDS = ("const fs = require('fs'); console.log(fs.readdirSync('/proc/self/fd').filter(f => {"
       "try { return fs.readlinkSync('/proc/self/fd/' + f).startsWith('pipe:'); } catch (e) { return false; } }).length)")
r = warm(FDS)
req = urllib.request.Request("http://127.0.0.1:%d/v1/execute" % port,
                             json.dumps({"language": "node", "code": FDS, "start": "cold"}).encode(),
                             {"Authorization": "Bearer " + key})
with urllib.request.urlopen(req, timeout=60) as f:
    c = json.loads(f.read())
ok(r.get("start") == "warm" and c.get("start") == "cold" and r.get("stdout") == c.get("stdout"),
   "a warm program holds as many pipes as a cold one: the driver's channel is closed before it runs",
   {"warm": r.get("stdout"), "cold": c.get("stdout")})
p.send_signal(signal.SIGTERM)
ok(p.wait(60) == 0, "serve stops cleanly")
done()
