#!/usr/bin/python3
# airlock run --markdown: each fenced block of a model's reply in its own
# fresh sandbox, in order; skipped blocks reported; one JSON array.
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done  # noqa: E402
from airlock import BIN, STATE, run_raw  # noqa: E402

tmp = tempfile.mkdtemp(prefix="al-e2e-md-")


def write(name, text, mode="w"):
    path = os.path.join(tmp, name)
    with open(path, mode) as f:
        f.write(text)
    return path


def md_json(*args, stdin=None):
    p = run_raw(["run", "--json", *args], stdin=stdin)
    try:
        return p.returncode, json.loads(p.stdout), p.stderr.decode(errors="replace")
    except ValueError:
        return p.returncode, [{"raw": p.stdout[-1000:].decode(errors="replace")}], p.stderr.decode(errors="replace")


def audit_records():
    p = subprocess.run([BIN, "audit", "list", "--json", "--limit", "0", "--state", STATE], capture_output=True)
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


REPLY = """Here is how I would do it.

```python
import os
open("/workspace/left-behind", "w").write("x")
print("first", 6 * 7)
```

Then the shell part:

```bash
test -e /workspace/left-behind && echo leaked; echo second; exit 3
```

```
print("untagged")
```

```rust
fn main() {}
```

1. in a list item:

   ```js
   console.log("third")
   ```
"""
reply = write("reply.md", REPLY)

# --- blocks in order, each in a fresh sandbox ---------------------------------
before = len(audit_records())
rc, arr, err = md_json("--markdown", reply)
ok(isinstance(arr, list) and len(arr) == 5, "--json: one array element per block (5)", arr)
idx = [x.get("block", {}).get("index") for x in arr]
lines = [x.get("block", {}).get("line") for x in arr]
ok(idx == [1, 2, 3, 4, 5] and lines == [3, 11, 15, 19, 25], "blocks in document order with their fence lines", (idx, lines))
st = [x.get("status") for x in arr]
ok(st == ["ok", "error", "skipped", "skipped", "ok"], "statuses per block: ok, error, skipped, skipped, ok", st)
ok(arr[0].get("stdout") == "first 42\n" and arr[4].get("stdout") == "third\n",
   "python and the js block inside a list ran and printed", (arr[0].get("stdout"), arr[4].get("stdout")))
ok(arr[1].get("stdout") == "second\n" and arr[1].get("exit_code") == 3,
   "the bash block ran in a fresh workspace: the python block's file is not there", arr[1].get("stdout"))
ok(arr[2].get("reason") == "untagged" and arr[3].get("reason") == "unknown language 'rust'",
   "skipped blocks say why: untagged, unknown language 'rust'", (arr[2].get("reason"), arr[3].get("reason")))
ok([x.get("block", {}).get("language") for x in arr] == ["python", "bash", None, "rust", "node"],
   "each element names the block's language", [x.get("block") for x in arr])
ok(rc == 1, "exit status: the first block that did not succeed (bash exit 3 -> 1)", rc)
ids = [x.get("audit_id") for x in arr if x.get("status") != "skipped"]
ok(len(set(ids)) == 3 and all(ids), "each block that ran has its own audit id", ids)
recs = audit_records()
ok(len(recs) - before == 3 and {r.get("id") for r in recs} >= set(ids),
   "three audit records, those of the three runs; none for skipped blocks", (len(recs) - before, ids))

# --- human output -------------------------------------------------------------
p = run_raw(["run", "--markdown", reply])
out, err = p.stdout.decode(), p.stderr.decode()
ok(out == "first 42\nsecond\nthird\n", "human mode: the blocks' stdout in order", out)
ok("=== block 1, line 3: python" in err and "=== block 3, line 15: skipped: untagged" in err
   and "=== 3 blocks run, 2 skipped" in err, "human mode: a header per block and a summary on stderr", err)

# --- --default-lang, --lang, --fail-fast ---------------------------------------
rc, arr, err = md_json("--markdown", reply, "--default-lang", "python")
ok([x.get("status") for x in arr][2] == "ok" and arr[2].get("stdout") == "untagged\n",
   "--default-lang python runs the untagged block as python", arr[2])
rc, arr, err = md_json("--markdown", reply, "--lang", "py")
ok([x.get("status") for x in arr] == ["ok", "skipped", "skipped", "skipped", "skipped"]
   and arr[1].get("reason") == "language bash, not python (--lang)" and rc == 0,
   "--lang py: only the python blocks run, the rest are skipped with the reason", [x.get("reason") for x in arr])
rc, arr, err = md_json("--markdown", reply, "--fail-fast")
ok([x.get("status") for x in arr] == ["ok", "error", "skipped", "skipped", "skipped"]
   and "--fail-fast" in arr[4].get("reason", ""), "--fail-fast: blocks after a failure are skipped, not run",
   [x.get("reason") for x in arr])

# --- stdin, policy per block, limits per block --------------------------------
p = run_raw(["run", "--json", "--markdown", "-"], stdin=b"```sh\necho from-stdin\n```\n")
arr = json.loads(p.stdout or b"[]")
ok(p.returncode == 0 and len(arr) == 1 and arr[0].get("stdout") == "from-stdin\n", "--markdown - reads the reply from stdin",
   (p.returncode, p.stdout[-300:]))
two = write("two.md", "```python\nprint(input())\n```\n\n```python\nprint(input().upper())\n```\n")
rc, arr, err = md_json("--markdown", two, "--stdin", "-", stdin=b"hello\n")
ok([x.get("stdout") for x in arr] == ["hello\n", "HELLO\n"], "--stdin - is read once and given to every block",
   [x.get("stdout") for x in arr])
pol = write("pol.md", "```python\nimport math\nprint(math.pi > 3)\n```\n\n```python\nimport subprocess\nsubprocess.run(['id'])\n```\n")
rc, arr, err = md_json("--markdown", pol, "--policy-mode", "enforce")
ok([x.get("status") for x in arr] == ["ok", "rejected"] and arr[1].get("error", {}).get("code") == "policy_violation"
   and any(f.get("rule") == "py.import.forbidden" for f in arr[1].get("findings", [])) and rc == 3,
   "the policy applies per block: the clean block runs, the other is rejected with findings (exit 3)", arr)
rc, arr, err = md_json("--markdown", two.replace("two", "two"), "--timeout", "0.5",
                       "--stdin", write("in.txt", "x\n"))
ok(all(x.get("limits", {}).get("wall_ms") == 500 for x in arr) and len(arr) == 2,
   "flags (limits, --stdin FILE) apply to every block", [x.get("limits") for x in arr])

# --- files out per block --------------------------------------------------------
plots = write("plots.md", "```python\nopen('/workspace/out.txt','w').write('a')\n```\n"
                          "```python\nopen('/workspace/out.txt','w').write('b')\n```\n")
outdir = os.path.join(tmp, "out")
rc, arr, err = md_json("--markdown", plots, "--collect", "out.txt", "--out-dir", outdir)
got = {}
for n in ("1", "2"):
    try:
        with open(os.path.join(outdir, n, "out.txt")) as f:
            got[n] = f.read()
    except OSError as e:
        got[n] = str(e)
ok(got == {"1": "a", "2": "b"}, "--out-dir DIR: block N's files in DIR/N, no block overwrites another's", got)

# --- errors ------------------------------------------------------------------------
p = run_raw(["run", "--markdown", write("none.md", "no code here\n\n    indented = 1\n")])
ok(p.returncode == 2 and b"no code block to run" in p.stderr, "a reply without a fenced block: exit 2 'no code block to run'",
   p.stderr)
rc, arr, err = md_json("--markdown", write("rust.md", "```rust\nfn main(){}\n```\n"))
ok(rc == 2 and [x.get("status") for x in arr] == ["skipped"], "only skipped blocks: exit 2, the skip still in the array", arr)
p = run_raw(["run", "--markdown", reply, "-c", "print(1)", "--lang", "python"])
ok(p.returncode == 2 and b"--markdown and -c" in p.stderr, "--markdown with -c: usage error", p.stderr)
p = run_raw(["run", "--markdown", reply, "--default-lang", "cobol"])
ok(p.returncode == 2 and b"unknown language 'cobol'" in p.stderr, "--default-lang cobol: usage error naming it", p.stderr)
p = run_raw(["run", "--lang", "python", "-c", "print(1)", "--default-lang", "python"])
ok(p.returncode == 2 and b"go with --markdown" in p.stderr, "--default-lang without --markdown: usage error", p.stderr)
big = write("big.md", "x" * (17 << 20))
p = run_raw(["run", "--json", "--markdown", big])
j = json.loads(p.stdout or b"{}")
ok(p.returncode == 2 and j.get("error", {}).get("code") == "invalid_markdown" and "16 MiB" in j.get("reason", ""),
   "a 17 MiB reply: exit 2, invalid_markdown naming the limit", (p.returncode, p.stdout[-300:]))
crlf = write("crlf.md", "```python\r\nprint('crlf ok')\r\n```\r\n", mode="w")
rc, arr, err = md_json("--markdown", crlf)
ok(rc == 0 and arr and arr[0].get("stdout") == "crlf ok\n", "a CRLF reply runs (lines normalised)", arr)
unterm = write("unterm.md", "text\n\n```bash\necho cut off\n")
rc, arr, err = md_json("--markdown", unterm)
ok(rc == 0 and arr and arr[0].get("stdout") == "cut off\n" and arr[0].get("block", {}).get("unterminated") is True,
   "an unterminated fence runs to the end and is flagged unterminated", arr)

shutil.rmtree(tmp, ignore_errors=True)
done()
