#!/usr/bin/python3
"""The short slice of `make check-sessions` that `make check` runs: the
attack suites attacks.t and attack-escape.t with AIRLOCK_E2E_VIA=session,
each probe the one cell of a fresh session (lib/airlock.py: session_argv,
session_result). Their TAP lines are passed on, renumbered and prefixed
with the suite's name; a suite that dies or plans wrong is a failure.
attack-exhaust.t (load and timing, ~25 s more) runs in make check-sessions."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, skip, done, diag  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SUITES = ["attacks.t", "attack-escape.t"]
LINE = re.compile(r"^(not ok|ok) \d+ - (.*?)(?: # SKIP (.*))?$")

env = dict(os.environ, AIRLOCK_E2E_VIA="session")
for suite in SUITES:
    p = subprocess.run([sys.executable, os.path.join(HERE, suite)], env=env, capture_output=True,
                       text=True, timeout=900)
    n, plan, failing = 0, None, False
    for line in p.stdout.splitlines():
        m = LINE.match(line)
        if m:
            n += 1
            failing = m.group(1) == "not ok"
            name = "%s in a session: %s" % (suite, m.group(2).replace("\\#", "#"))
            if m.group(3) is not None:
                skip(name, m.group(3))
            else:
                ok(m.group(1) == "ok", name)
        elif line.startswith("1.."):
            plan = int(line[3:])
        elif line.startswith("#"):
            print(line)  # diagnostics, also those of a failing line
            if failing:  # a failing line's on stderr too: prove without -v (make check) shows them
                print(line, file=sys.stderr)
    ok(p.returncode == 0 and plan == n and n > 0, "%s in a session ran to its plan (%s of %s lines, exit %d)"
       % (suite, n, plan, p.returncode), p.stderr[-3000:])
done()
