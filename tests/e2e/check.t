#!/usr/bin/python3
"""Static validation as a user meets it: `airlock check` over the corpus
(tests/check/corpus-*.txt: malicious, evasive and benign look-alike code
with the exact rule ids expected), exit codes, syntax errors with their
position, policy files and their errors, and `airlock run --policy`:
enforce refuses before any sandbox exists, warn runs and reports, the
findings reach the audit log, and the python allow-list is enforced at
run time too."""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done  # noqa: E402
from airlock import BIN, REPO, STATE, run, run_raw  # noqa: E402

tmp = tempfile.mkdtemp(prefix="al-e2e-check-")


def check(*args, code=None):
    p = subprocess.run([BIN, "check"] + list(args), input=code.encode() if code is not None else None,
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def check_json(*args, code=None):
    rc, out, err = check("--json", *args, code=code)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, {"raw": out}, err


def write(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# --- 1. the corpus -----------------------------------------------------------
def corpus():
    for path in sorted(glob.glob(os.path.join(REPO, "tests", "check", "corpus-*.txt"))):
        text = open(path, encoding="utf-8").read()
        for block in re.split(r"^=== name: ", text, flags=re.M)[1:]:
            lines = block.split("\n")
            head = {}
            i = 1
            while i < len(lines) and lines[i].startswith("--- "):
                k, _, v = lines[i][4:].partition(":")
                head[k.strip()] = v.strip()
                i += 1
            yield os.path.basename(path), lines[0].strip(), head["lang"], set(head["expect"].split()), \
                "\n".join(lines[i:])


n_cases, langs = 0, set()
for src, name, lang, want, code in corpus():
    n_cases += 1
    langs.add(lang)
    rc, j, err = check_json("--lang", lang, "-", code=code)
    got = {f["rule"] for f in j.get("findings", [])}
    ok(got == want and rc in (0, 1) and (rc == 1) == bool(want),
       "%s: %s: %s" % (src, name, " ".join(sorted(want)) or "clean"),
       {"got": sorted(got), "want": sorted(want), "rc": rc, "stderr": err, "code": code})
ok(n_cases >= 60 and langs >= {"python"}, "the corpus has at least 60 cases (%d, %s)" % (n_cases, sorted(langs)))

# --- 2. airlock check: output, exit codes, errors ----------------------------
f = write("evil.py", "import os\nx = 1\nos.system('id')\n")
rc, out, err = check(f)
ok(rc == 1 and "%s:1:8: high py.import.forbidden" % f in out and "%s:3:1: high py.call.host" % f in out
   and "os.system('id')" in out,
   "human output: FILE:LINE:COL, severity, rule, message and the snippet; exit 1", out + err)
rc, j, err = check_json(f)
fd = j.get("findings", [{}])[0]
ok(rc == 1 and j.get("language") == "python" and j.get("policy") == "default" and j.get("threshold") == "medium"
   and fd.get("line") == 1 and fd.get("column") == 8 and fd.get("end_column") == 10 and fd.get("snippet") == "os"
   and j.get("syntax_error") is None,
   "--json: language from the extension, the policy, positions and snippets", j)
rc, out, err = check("--threshold", "critical", f)
ok(rc == 0 and "py.import.forbidden" in out, "--threshold critical: high findings are listed but exit 0", out)
rc, j, err = check_json("--lang", "python", "-", code="def f(:\n    return 1\n")
se = j.get("syntax_error") or {}
ok(rc == 1 and se.get("line") == 1 and se.get("column", 0) >= 6 and j.get("at_or_above_threshold") == 1,
   "a syntax error: a high finding (exit 1 at threshold medium) with its line and column, not a usage error", j)
rc, out, err = check("--threshold", "critical", "--lang", "python", "-", code="def f(:\n    return 1\n")
ok(rc == 0 and "-:1:" in out and "syntax" in out, "a syntax error under --threshold critical: listed, exit 0",
   (rc, out, err))
# valid bash the grammar does not know: the critical finding decides, the
# parse gap is reported and is no usage error
for args in ([], ["--json"]):
    rc, out, err = check(*(args + ["--lang", "bash", "-"]), code="exec 3<>/dev/tcp/10.0.0.1/80\n")
    ok(rc == 1 and "sh.net.dev-tcp" in out and "syntax" in out and not err.strip(),
       "bash exec 3<>/dev/tcp/...%s: exit 1 on the critical finding, the grammar gap reported (not exit 2)"
       % (" --json" if args else ""), (rc, out, err))
rc, out, err = check("--lang", "cobol", "-", code="x")
ok(rc == 2 and "python, node and bash" in err, "an unknown language: exit 2 naming the known ones", err)
rc, out, err = check(os.path.join(tmp, "nope.py"))
ok(rc == 2 and "No such file" in err, "a missing file: exit 2", err)
rc, out, err = check(write("noext", "print(1)\n"))
ok(rc == 2 and "--lang" in err, "no extension and no --lang: exit 2 asking for --lang", err)
rc, j, err = check_json("--lang", "python", "-", code="x = " + "(" * 50000 + "1" + ")" * 50000 + "\n")
ok(rc in (0, 2) and isinstance(j.get("findings"), list), "50,000 nested parentheses: no crash, an answer",
   (rc, err[-500:]))
# Debian's tree-sitter corrupts its heap past 65,535 levels of nesting; the
# check must come back with an error, not take the process down with it
for lang, deep in (("python", "-" * 70000 + "\n"), ("python", "[" * 70000 + "\n"),
                   ("node", "!" * 70000 + "\n"), ("node", "a?" * 70000 + "\n"),
                   ("bash", "if true; then " * 70000 + "\n"), ("bash", "$(" * 70000 + "\n")):
    rc, out, err = check("--lang", lang, "-", code=deep)
    ok(rc == 2 and "parser failed on this code" in err and "Traceback" not in err and "munmap" not in err,
       "%s nested 70,000 deep (%r...): exit 2 'parser failed', the checker survives" % (lang, deep[:6]), (rc, err[-300:]))
rc, r = run("node", "!" * 70000 + "\n", "--policy", os.path.join(REPO, "policies", "math-only.json"))
ok(rc == 3 and r.get("error", {}).get("code") == "policy_check_failed" and "parser failed" in r.get("reason", ""),
   "run --policy on code that breaks the parser: rejected, policy_check_failed", r)
# long code (checked in a child process) gives the same findings as short code
for lang, filler, tail, rule, line in (("python", "x = 1\n", "import os\ndef f(:\n", "py.import.forbidden", 20001),
                                       ("node", "let x = 1;\n", "require('child_process')\n", "js.import.forbidden", 20001),
                                       ("bash", "echo hi\n", "curl http://x\n", "sh.command.network", 20001)):
    rc, j, err = check_json("--lang", lang, "-", code=filler * 20000 + tail)
    got = [(x["rule"], x["line"]) for x in j.get("findings", [])]
    ok((rule, line) in got, "%s, %d bytes: %s found at line %d" % (lang, len(filler * 20000), rule, line), (rc, got, err))
    if lang == "python":
        ok(rc == 1 and ("syntax", 20002) in got, "python, long: the syntax error is reported at its line", got)
# code of 16 KiB and more is parsed in a child process: it runs under the
# parser's seccomp allow-list with no_new_privs (seen from the host's /proc)
seen = set()
pbig = subprocess.Popen([BIN, "check", write("long.py", "x = [1, 2, 3]\n" * 400000)],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
t_end = time.time() + 120
while pbig.poll() is None and time.time() < t_end:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/status" % pid) as fh:
                st = dict(x.split(":\t", 1) for x in fh.read().splitlines() if ":\t" in x)
        except OSError:
            continue
        if st.get("PPid", "").strip() == str(pbig.pid):
            seen.add((st.get("Seccomp", "?").strip(), st.get("NoNewPrivs", "?").strip()))
    time.sleep(0.01)
bout, berr = pbig.communicate(timeout=120)
# (a sample may fall between the fork and the filter: what counts is that
# the parsing child was seen confined)
ok(pbig.returncode == 0 and ("2", "1") in seen,
   "the checker's child for long code runs under a seccomp filter with no_new_privs (Seccomp, NoNewPrivs)",
   (pbig.returncode, seen, berr[-300:]))
big = write("big.py", "x = 1\n" * (1_500_000))
rc, out, err = check(big)
ok(rc == 2 and "larger than 8 MiB" in err, "9 MiB of code: exit 2 'larger than 8 MiB', not a truncated check", err)
rc, j, err = check_json("--lang", "python", "-", code="s = '\udcff'\n".encode("utf-8", "surrogateescape").decode("latin-1"))
ok(rc in (0, 2), "invalid UTF-8 in the code: an answer, no crash", (rc, err))

# --- 3. policy files ----------------------------------------------------------
bad_policies = [
    ("not JSON", "{", "policy-0.json:1:"),
    ("unknown top-level key", '{"version": 1, "rulez": []}', "rulez: unknown key"),
    ("no version", '{"rules": []}', "version: 1 is required"),
    ("a match the language lacks", '{"version": 1, "rules": [{"id": "a", "lang": "bash", "match": "import", '
     '"names": ["x"]}]}', "import is not a match for bash"),
    ("names missing", '{"version": 1, "rules": [{"id": "a", "lang": "python", "match": "call"}]}',
     "needs a non-empty array of names"),
    ("a bad severity", '{"version": 1, "rules": [{"id": "a", "lang": "python", "match": "call", "names": ["x"], '
     '"severity": "scary"}]}', "rules[0].severity"),
    ("an unknown rule key", '{"version": 1, "rules": [{"id": "a", "lang": "python", "match": "call", '
     '"names": ["x"], "sev": "low"}]}', "rules[0].sev: unknown key"),
    ("disable of a rule that does not exist", '{"version": 1, "disable": ["no.such.rule"]}',
     "disable[0]: no.such.rule is not a rule"),
    ("a bad threshold", '{"version": 1, "threshold": "loud"}', "threshold: one of"),
]
for i, (what, text, msg) in enumerate(bad_policies):
    p = write("policy-%d.json" % i, text)
    rc, out, err = check("--policy", p, f)
    ok(rc == 2 and msg in err, "policy error, %s: exit 2 with '%s'" % (what, msg), err)

only = write("only-eval.json", json.dumps({"version": 1, "extends": "none", "rules": [
    {"id": "team.no-eval", "lang": "python", "match": "call", "names": ["eval"], "severity": "low",
     "message": "no eval here ({name})"}]}))
rc, j, err = check_json("--policy", only, "--lang", "python", "-", code="import os\neval('1')\n")
ok(rc == 0 and [x["rule"] for x in j.get("findings", [])] == ["team.no-eval"]
   and j["findings"][0]["message"] == "no eval here (eval)" and j["findings"][0]["severity"] == "low",
   "extends none: only the file's rules; {name} in messages; low is below the default threshold (exit 0)", j)
relax = write("relax.json", json.dumps({"version": 1, "disable": ["py.import.forbidden"], "rules": [
    {"id": "py.call.host", "lang": "python", "match": "call", "names": ["os.system"], "severity": "info"}]}))
rc, j, err = check_json("--policy", relax, f)
ok(rc == 0 and sorted(x["rule"] for x in j.get("findings", [])) == ["py.call.host"]
   and j["findings"][0]["severity"] == "info",
   "extends default: disable removes a rule, a rule with an inherited id replaces it", j)

# the example policies of the README do what they say
analysis = os.path.join(REPO, "policies", "data-analysis.json")
mathp = os.path.join(REPO, "policies", "math-only.json")
ana_code = "import numpy as np\nimport pandas as pd\nimport json\nprint(pd.DataFrame({'a': np.arange(3)}).to_json())\n"
rc1, j1, _ = check_json("--policy", analysis, "--lang", "python", "-", code=ana_code)
rc2, j2, _ = check_json("--policy", analysis, "--lang", "python", "-", code="import requests\n")
ok(rc1 == 0 and not j1.get("findings") and rc2 == 1
   and {x["rule"] for x in j2.get("findings", [])} == {"analysis.allow", "py.import.forbidden"},
   "policies/data-analysis.json: numpy/pandas/json pass, requests is refused", (j1, j2))
rc1, j1, _ = check_json("--policy", mathp, "--lang", "python", "-", code="import math\nprint(math.sqrt(2))\n")
rc2, j2, _ = check_json("--policy", mathp, "--lang", "python", "-", code="import pandas\nopen('x').read()\n")
ok(rc1 == 0 and rc2 == 1 and {x["rule"] for x in j2.get("findings", [])} == {"math.allow", "math.no-files"},
   "policies/math-only.json: math passes, pandas and open() are refused", (j1, j2))

# --- 4. run --policy ----------------------------------------------------------
MARK = "CODE-RAN-%d" % os.getpid()
strict = write("strict.json", json.dumps({"version": 1, "threshold": "high"}))
rc, r = run("python", "import os as o\nprint('%s')\n" % MARK, "--policy", strict)
ok(rc == 3 and r["status"] == "rejected" and r.get("error", {}).get("code") == "policy_violation"
   and MARK not in r.get("stdout", "") and not r.get("protections")
   and {x["rule"] for x in r.get("findings", [])} == {"py.import.forbidden", "py.evasion.alias-import"},
   "enforce: rejected (exit 3, policy_violation) with the findings; no sandbox was made, the code never ran", r)
p = subprocess.run([BIN, "audit", "show", "--json", r.get("audit_id", "none")], capture_output=True, text=True)
rec = json.loads(p.stdout or "{}")
ok(rec.get("status") == "rejected" and [x.get("kind") for x in rec.get("records", [])] == ["refused"]
   and "policy:py.evasion.alias-import" in rec.get("flags", [])
   and {x["rule"] for x in rec.get("request", {}).get("findings", [])} == {"py.import.forbidden",
                                                                              "py.evasion.alias-import"},
   "the refusal is audited with its findings and flags", rec)
rc, r = run("python", "print(eval('6*7'))", "--policy", strict, "--policy-mode", "warn")
p = run_raw(["run", "--lang", "python", "--policy", strict, "--policy-mode", "warn", "-c", "print(eval('6*7'))"])
ok(rc == 0 and r["status"] == "ok" and r["stdout"] == "42\n"
   and [x["rule"] for x in r.get("findings", [])] == ["py.call.exec"]
   and b"warning: 1:7: high py.call.exec" in p.stderr,
   "warn: the code runs; the findings are in the result and on stderr", (r, p.stderr))
rc, r = run("python", "import sys\nprint(1)\n")
ok(rc == 0 and [x["rule"] for x in r.get("findings", [])] == ["py.import.forbidden"],
   "without --policy the default policy's findings are recorded (record mode) and the code runs", r)
rc, r = run("python", "import sys\nprint(1)\n", "--policy-mode", "off")
ok(rc == 0 and "findings" not in r, "--policy-mode off: no check, no findings", r)
rc, r = run("py", "import os\nprint(1)\n")
ok(rc == 0 and [x["rule"] for x in r.get("findings", [])] == ["py.import.forbidden"],
   "--lang py (a tag of python) is checked like python", r.get("findings"))
rc, r = run("c", "int main(void){return 0;}", "--policy", strict)
ok(rc == 3 and r.get("error", {}).get("code") == "policy_unsupported",
   "enforce on a language static validation does not know (c): refused, not run unchecked", r)
rc, r = run("python", "print(1)", "--policy", os.path.join(tmp, "policy-0.json"))
ok(rc == 2 and r.get("error", {}).get("code") == "invalid_policy", "run with a broken policy: exit 2, invalid_policy",
   r)
rc, r = run("python", "def f(:\n", "--policy", strict)
ok(rc == 3 and "does not parse" in r.get("reason", ""), "enforce: code that does not parse cannot be checked: rejected",
   r)

# --- 5. the allow-list at run time (python) ----------------------------------
mathonly = write("math-only.json", json.dumps({"version": 1, "threshold": "high", "rules": [
    {"id": "py.allow", "lang": "python", "match": "import-allowlist", "names": ["math", "json", "statistics"]}]}))
rc, r = run("python", "import math, statistics\nprint(statistics.mean([1, 2, math.floor(3.5)]))\n",
            "--policy", mathonly)
ok(rc == 0 and r["stdout"] == "2\n" and not r.get("findings"),
   "allow-list: listed modules (and what they import themselves) work", r)
rc, r = run("python", "import numpy\n", "--policy", mathonly)
ok(rc == 3 and [x["rule"] for x in r.get("findings", [])] == ["py.allow"],
   "allow-list: a module not on the list is refused statically", r)
hidden = "m = ''.join(['o', 's'])\nmod = __builtins__.__dict__['__imp' + 'ort__'](m)\nprint('%s', mod.getcwd())\n" % MARK
rc, r = run("python", hidden, "--policy", mathonly, "--policy-mode", "warn")
ok(r["status"] == "error" and MARK not in r["stdout"]
   and "the policy does not allow importing 'os'" in r["stderr"],
   "allow-list: an import hidden behind string building is refused at run time by the import guard", r)
rc, r = run("python", hidden, "--policy-mode", "warn")
ok(r["status"] == "ok" and MARK in r["stdout"],
   "(without an allow-list there is no guard: the same code runs, so the test above sees the guard)", r)

done()
