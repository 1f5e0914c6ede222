#!/usr/bin/python3
"""`airlock extract` as a user meets it: a model's reply in, its fenced code
blocks out (JSON and the readable listing), --default-lang, --lang, the
skipped list with reasons, stdin, exit codes, unreadable and oversized
input refused cleanly, bad bytes and hostile Markdown handled."""
import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done  # noqa: E402
from airlock import run_raw  # noqa: E402

tmp = tempfile.mkdtemp(prefix="al-e2e-extract-")


def write(name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def extract(*args, stdin=None):
    """airlock extract ARGS -> (exit code, stdout text, stderr text)."""
    p = run_raw(["extract"] + list(args), stdin=stdin, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def extract_json(*args, stdin=None):
    rc, out, err = extract("--json", *args, stdin=stdin)
    try:
        j = json.loads(out)
    except ValueError:
        j = {"blocks": [], "skipped": [], "raw": out, "stderr": err}
    return rc, j, err


REPLY = """Here is how to do it.

1. First compute the values:

   ```python3 title="compute.py"
   import math
   print(math.sqrt(2))
   ```

2. Then list the files:

```
ls -l
```

> Or in node:
>
> ~~~js
> console.log([1, 2].map(x => x * 2))
> ~~~

    indented = "not taken"

```rust
fn main() {}
```

````markdown
```py
nested = True
```
````

```sh
echo unterminated
"""

# --- JSON ----------------------------------------------------------------------
path = write("reply.md", REPLY)
rc, j, err = extract_json(path)
blocks, skipped = j["blocks"], j["skipped"]
ok(rc == 0, "exit 0 when blocks are found", (rc, err))
ok([b["lang"] for b in blocks] == ["python", "node", "bash"],
   "python3 -> python, js -> node, sh -> bash, in document order", j)
b0 = blocks[0] if blocks else {}
ok(b0.get("info") == 'python3 title="compute.py"' and b0.get("line") == 5 and b0.get("code_line") == 6
   and b0.get("code") == "import math\nprint(math.sqrt(2))\n" and b0.get("unterminated") is False
   and b0.get("index") == 0,
   "a block inside a list item: info kept whole, line of the fence, code without the item's indent", b0)
ok(len(blocks) > 1 and blocks[1]["code"] == "console.log([1, 2].map(x => x * 2))\n" and blocks[1]["line"] == 18,
   "a ~~~ block inside a block quote", blocks)
ok(len(blocks) > 2 and blocks[2]["code"] == "echo unterminated\n" and blocks[2]["unterminated"] is True,
   "an unterminated fence runs to the end and is flagged", blocks)
reasons = {s["index"]: s["reason"] for s in skipped}
ok(reasons.get(1) == "untagged" and skipped[0]["line"] == 12,
   "the untagged block is skipped and reported with its line", skipped)
ok("indented" in reasons.get(3, ""), "the indented code block is reported as not taken", skipped)
ok(reasons.get(4) == "unknown language 'rust'", "an unknown language is skipped by name", skipped)
ok(reasons.get(5) == "unknown language 'markdown'" and
   [s for s in skipped if s["index"] == 5][0]["info"] == "markdown",
   "a ```` fence holding a ``` block is one markdown block", skipped)
ok(sorted([b["index"] for b in blocks] + list(reasons)) == list(range(7)),
   "blocks and skipped share one index, every code block once", j)

# --- --default-lang, --lang ------------------------------------------------------
rc, j, _ = extract_json("--default-lang", "bash", path)
langs = {b["index"]: b["lang"] for b in j["blocks"]}
ok(rc == 0 and langs.get(1) == "bash" and j["blocks"][1]["code"] == "ls -l\n"
   and 1 not in {s["index"] for s in j["skipped"]},
   "--default-lang gives the untagged block a language", j)
ok(3 in {s["index"] for s in j["skipped"]}, "--default-lang does not take indented blocks", j)
rc, j, _ = extract_json("--default-lang", "py3", path)
ok(rc == 2, "--default-lang must be one of ours", j)
rc, j, _ = extract_json("--default-lang", "python3", path)
ok(rc == 0 and {b["index"]: b["lang"] for b in j["blocks"]}.get(1) == "python",
   "--default-lang is normalised too", j)
rc, j, _ = extract_json("--lang", "js", path)
ok(rc == 0 and [b["lang"] for b in j["blocks"]] == ["node"], "--lang keeps one language", j)
ok(any(s["index"] == 0 and "python" in s["reason"] for s in j["skipped"]),
   "--lang reports the others as skipped", j)
rc, j, _ = extract_json("--lang", "c", path)
ok(rc == 1 and j["blocks"] == [], "--lang with no match: exit 1, empty blocks", j)

# --- stdin, readable output -----------------------------------------------------
rc, j, _ = extract_json("-", stdin=REPLY.encode())
ok(rc == 0 and len(j["blocks"]) == 3, "'-' reads the reply from stdin", j)
rc, out, err = extract(path)
ok(rc == 0 and "--- block 0: python, line 5, info \"python3 title=\"compute.py\"\"\nimport math\n" in out
   and "--- skipped block 1, line 12: untagged" in out and "unterminated" in out
   and out.rstrip().endswith("--- 3 blocks taken, 4 skipped"),
   "the readable listing: headers, code verbatim, skipped, a summary", out)
rc, out, err = extract("--pretty", path)
ok(rc == 0 and out.startswith("{\n  \"blocks\"") and json.loads(out)["blocks"], "--pretty indents the JSON", out)

# --- exit codes, usage ------------------------------------------------------------
rc, j, _ = extract_json(write("prose.md", "# Title\n\nNo code here, just `inline` code.\n"))
ok(rc == 1 and j == {"blocks": [], "skipped": []}, "no blocks: exit 1 and an empty result", j)
rc, j, _ = extract_json(write("untagged.md", "```\nx\n```\n"))
ok(rc == 1 and j["skipped"] and j["skipped"][0]["reason"] == "untagged", "only skipped blocks: exit 1", j)
rc, out, err = extract(os.path.join(tmp, "missing.md"))
ok(rc == 2 and out == "" and "cannot read" in err and "No such file" in err, "a missing file: exit 2, why", err)
rc, out, err = extract(tmp)
ok(rc == 2 and "cannot read" in err, "a directory: exit 2", err)
rc, out, err = extract()
ok(rc == 2 and "no input" in err, "no FILE: exit 2", err)
rc, out, err = extract(path, path)
ok(rc == 2, "two inputs: exit 2", err)
rc, out, err = extract("--frobnicate", path)
ok(rc == 2 and "Usage" in err, "an unknown flag: exit 2 with the usage", err)
rc, out, err = extract("--lang", "rust", path)
ok(rc == 2 and "unknown language 'rust'" in err, "--lang must be one of ours", err)
rc, out, err = extract("--help")
ok(rc == 0 and "--default-lang" in out and "Exit status" in out, "--help", out)
p = run_raw(["help", "extract"])
ok(p.returncode == 0 and b"airlock extract" in p.stdout, "airlock help extract", p)
p = run_raw(["--help"])
ok(b"extract" in p.stdout, "extract is in the command list", p.stdout)

# --- size bound ------------------------------------------------------------------
limit = 16 << 20
para = "Prose with *emphasis* and a [link](https://example.com).\n\n"
tail = "\n```py\nx\n```\n"
body = (para * (limit // len(para) + 1))[: limit - len(tail)]
exact = write("exact.md", body + tail)
t = time.monotonic()
rc, j, err = extract_json(exact)
ok(rc == 0 and os.path.getsize(exact) == limit and j["blocks"] and j["blocks"][-1]["code"] == "x\n",
   "exactly 16 MiB is read whole (%.2f s)" % (time.monotonic() - t), (rc, err, os.path.getsize(exact)))
big = write("big.md", body + "x" * 100)
t = time.monotonic()
rc, out, err = extract("--json", big)
ok(rc == 2 and out == "" and "16 MiB" in err, "a file over 16 MiB is refused with exit 2 (%.2f s)"
   % (time.monotonic() - t), (rc, err))
rc, out, err = extract("-", stdin=(body + "x" * 100).encode())
ok(rc == 2 and "stdin: larger than the 16 MiB limit" in err, "so is stdin over 16 MiB", err)

# --- bad bytes, hostile Markdown ----------------------------------------------------
rc, j, err = extract_json("-", stdin=b"```py\xff\n\x00print(1)\xc3\n```\n```python\r\nx = 1\r\n```\r\n")
ok(rc == 0 and j["blocks"] and j["blocks"][0]["code"] == "x = 1\n",
   "CRLF: code without \\r", j)
ok(j["skipped"] and j["skipped"][0]["info"] == "py\ufffd" and
   j["skipped"][0]["reason"] == "unknown language 'py\ufffd'",
   "invalid UTF-8 in an info string becomes U+FFFD", j)
rc, j, err = extract_json("--default-lang", "c", "-", stdin=b"```\n\x00\xfe\xff int x;\n```\n")
ok(rc == 0 and j["blocks"][0]["code"] == "\ufffd\ufffd\ufffd int x;\n",
   "NUL and invalid UTF-8 in code become U+FFFD", j)
rng = random.Random(5)
alphabet = b"`~ \n\r>-*1.#{}[]()!<x\t\x80\xff\xc3\x00"
fine = True
for i in range(30):
    data = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 20000)))
    rc, out, err = extract("--json", "--default-lang", "py", "-", stdin=data)
    try:
        json.loads(out)
        good = rc in (0, 1)
    except ValueError:
        good = False
    if not good:
        fine = False
        write("crash-%d.md" % i, data)
        break
ok(fine, "30 random byte soups: exit 0/1 and valid JSON every time", (rc, out[:200], err))
t = time.monotonic()
rc, out, err = extract("-", stdin=b"![[]()" * 50000)
ok(rc == 2 and "too costly" in err and time.monotonic() - t < 10,
   "input that costs cmark quadratic time is stopped by the CPU budget (%.1f s)" % (time.monotonic() - t), err)

done()
