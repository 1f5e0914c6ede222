"""Run build/airlock the way a user would."""
import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.environ.get("AIRLOCK_BIN") or os.path.join(REPO, "build", "airlock")


def run_raw(args, stdin=None, timeout=120, env=None):
    """airlock ARGS... -> CompletedProcess (bytes)."""
    return subprocess.run([BIN] + list(args), input=stdin, capture_output=True,
                          timeout=timeout, env=env)


def run(lang, code, *flags, stdin=None, timeout=120, env=None):
    """airlock run --json --lang LANG -c CODE FLAGS... -> (exit code, dict)."""
    p = run_raw(["run", "--json", "--lang", lang, "-c", code] + list(flags),
                stdin=stdin, timeout=timeout, env=env)
    try:
        r = json.loads(p.stdout)
    except ValueError:
        r = {"status": "<no json>", "raw_stdout": p.stdout[-2000:],
             "raw_stderr": p.stderr[-2000:]}
    return p.returncode, r
