#!/usr/bin/python3
"""Markdown extraction benchmark: what pulling the code out of a model's
reply costs, on this machine.

    python3 bench/extract.py --airlock build/airlock --timer build/bench/extract-bench
    make bench-extract                   # the same (also part of make bench)

  1. in process: al_extract_blocks over a generated ~1 MiB reply (headings,
     prose with inline markup, lists, quotes, ~2,000 fenced blocks in
     python, js, bash, c, some untagged, some nested in list items and
     block quotes), --rounds times in one process: the first call, median,
     p90; next to cmark_parse_document + cmark_node_free of the same bytes
     with cmark's own allocator (the parser alone, the floor).
  2. end to end: `airlock extract --json FILE` (process start, read, parse,
     JSON out) next to `cat FILE`, interleaved; medians and their ratio.

Goal (issue 5): a 1 MiB Markdown reply extracted in <= 10 ms (median, in
process). Reports, never asserts.
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

CODE = {
    "python": "import math\n\ndef area(r):\n    return math.pi * r ** 2\n\nfor r in range({k}):\n    print(r, area(r))\n",
    "js": "const xs = [1, 2, 3].map(x => x * {k});\nconsole.log(xs.join(','));\n",
    "bash": "for f in *.csv; do\n  wc -l \"$f\"  # {k}\ndone\n",
    "c": "#include <stdio.h>\nint main(void) {{\n    printf(\"%d\\n\", {k});\n    return 0;\n}}\n",
}
WORDS = ("the sandbox runs each block in a fresh namespace with limits on memory cpu and time so that "
         "a model's mistake cannot reach the host data frame plot value result").split()


def reply(size, seed=5):
    """A model-style Markdown reply of at most `size` bytes (whole sections)
    and how many of its fenced blocks are untagged."""
    rnd = random.Random(seed)

    def sentence():
        w = [rnd.choice(WORDS) for _ in range(rnd.randint(8, 20))]
        i = rnd.randrange(len(w))
        w[i] = rnd.choice(["*%s*" % w[i], "**%s**" % w[i], "`%s`" % w[i],
                           "[%s](https://example.com/%d)" % (w[i], i)])
        return " ".join(w).capitalize() + "."

    out, n, k, untagged = [], 0, 0, 0
    while n < size:
        k += 1
        part = "## Step %d\n\n%s\n\n" % (k, " ".join(sentence() for _ in range(rnd.randint(2, 5))))
        lang = rnd.choice(list(CODE))
        code = CODE[lang].format(k=k)
        kind = k % 6
        if kind == 0:  # in a list item
            part += "- %s\n- %s\n\n  ```%s\n%s  ```\n\n" % (
                sentence(), sentence(), lang, "".join("  " + l + "\n" for l in code.splitlines()))
        elif kind == 1:  # in a block quote, ~~~
            part += "> %s\n>\n> ~~~%s\n%s> ~~~\n\n" % (
                sentence(), lang, "".join("> " + l + "\n" for l in code.splitlines()))
        elif kind == 2:  # untagged, after a numbered list
            part += "1. %s\n2. %s\n\n```\n%s```\n\n" % (sentence(), sentence(), code)
        else:
            part += "```%s\n%s```\n\n" % (lang, code)
        if n + len(part) > size:
            break
        out.append(part)
        n += len(part)
        untagged += kind == 2
    return "".join(out), untagged


def timed(argv, stdout=subprocess.DEVNULL):
    t = time.perf_counter()
    p = subprocess.run(argv, stdout=stdout, stderr=subprocess.DEVNULL)
    dt = (time.perf_counter() - t) * 1000
    if p.returncode not in (0, 1):
        raise RuntimeError("%s exited %d" % (" ".join(argv), p.returncode))
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--airlock", default=os.path.join(REPO, "build", "airlock"))
    ap.add_argument("--timer", default=os.path.join(REPO, "build", "bench", "extract-bench"))
    ap.add_argument("--size", type=int, default=1 << 20, help="bytes of Markdown (default 1 MiB)")
    ap.add_argument("--rounds", type=int, default=200, help="in-process rounds")
    ap.add_argument("--runs", type=int, default=40, help="end-to-end runs of each command")
    a = ap.parse_args()

    md, untagged = reply(a.size)
    d = tempfile.mkdtemp(prefix="extract-bench-")
    try:
        bench(a, md, untagged, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def bench(a, md, untagged, d):
    path = os.path.join(d, "reply.md")
    with open(path, "w") as f:
        f.write(md)
    tiny = os.path.join(d, "tiny.md")
    with open(tiny, "w") as f:
        f.write("Run this:\n\n```python\nprint(1)\n```\n")

    p = subprocess.run([a.timer, path, str(a.rounds)], capture_output=True, text=True, check=True)
    ours = json.loads(p.stdout)

    # end to end, interleaved so that drift hits both alike
    for _ in range(3):
        timed([a.airlock, "extract", "--json", path])
        timed(["cat", path])
    ext, cat, small = [], [], []
    for _ in range(a.runs):
        ext.append(timed([a.airlock, "extract", "--json", path]))
        cat.append(timed(["cat", path]))
        small.append(timed([a.airlock, "extract", "--json", tiny]))
    e2e, e2e_cat, e2e_small = statistics.median(ext), statistics.median(cat), statistics.median(small)

    print("## Markdown extraction\n")
    print("Generated reply: %d bytes, %d lines, %d fenced blocks (%d untagged), "
          "%d rounds in process, %d runs end to end:\n"
          % (ours["bytes"], md.count("\n"), ours["blocks"], untagged, a.rounds, a.runs))
    print("| what | median | p90 / first | ratio |\n|---|---:|---:|---:|")
    print("| al_extract_blocks (normalise, cmark in a bounded arena, walk, copy out) | %.2f ms | "
          "%.2f / %.2f ms | 1.00 |" % (ours["median_ms"], ours["p90_ms"], ours["first_ms"]))
    print("| cmark_parse_document + cmark_node_free (parser alone, malloc) | %.2f ms | | %.2f |"
          % (ours["cmark_median_ms"], ours["cmark_median_ms"] / ours["median_ms"]))
    print("| `airlock extract --json FILE` (process) | %.2f ms | | |" % e2e)
    print("| `cat FILE` (process) | %.2f ms | | %.1fx |" % (e2e_cat, e2e / e2e_cat))
    print("| `airlock extract --json` of a 40-byte reply (process floor) | %.2f ms | | |" % e2e_small)
    print("\nGoal <= 10 ms median in process for 1 MiB: %s (%.2f ms; %.1f MB/s)"
          % ("met" if ours["median_ms"] <= 10 else "MISSED", ours["median_ms"],
             ours["bytes"] / 1e3 / ours["median_ms"]))


if __name__ == "__main__":
    sys.exit(main())
