#!/usr/bin/python3
"""Static-validation benchmark: what checking code costs, on this machine.

    python3 bench/check.py --airlock build/airlock --timer build/bench/check-time
    make bench-check                     # the same (also part of make bench)

  1. in process: al_check_code over a generated 2,000-line python file
     (functions, classes, imports, comprehensions, a few flagged calls),
     median of --rounds, next to CPython's own ast.parse of the same file
     (the bare runtime's parser) in one loop; ratio printed.
  2. end to end: `airlock check FILE` (process start, policy load, parse,
     rules) next to `python3 -c 'import ast; ast.parse(...)'`.

Goal (issue 5): a 2,000-line python file checked in <= 2 ms (median).
"""
import argparse
import ast
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def python_source(lines):
    out, i = ["import json", "import math", "import os"], 0
    while True:
        block = ("class Shape%d:\n    def __init__(self, w, h):\n        self.w, self.h = w, h\n"
                 "    def area(self):\n        return self.w * self.h + math.sqrt(%d)\n"
                 "def compute_%d(data):\n    total = sum(x * x for x in data if x %% 2)\n"
                 "    result = {'k%d': [v for v in range(10)], 'total': total}\n"
                 "    if total > 10:\n        print(json.dumps(result))\n    return result" % (i, i, i, i))
        if i % 25 == 0:
            block += "\nvalue_%d = eval('1 + %d')\nos.getcwd()" % (i, i)
        b = block.split("\n")
        if len(out) + len(b) > lines:
            break
        out += b
        i += 1
    out += ["x_%d = %d" % (k, k) for k in range(lines - len(out))]
    return "\n".join(out) + "\n"


def timed(argv, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ts.append((time.perf_counter() - t) * 1000)
        if p.returncode not in (0, 1):
            raise RuntimeError("%s exited %d" % (" ".join(argv), p.returncode))
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--airlock", default=os.path.join(REPO, "build", "airlock"))
    ap.add_argument("--timer", default=os.path.join(REPO, "build", "bench", "check-time"))
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--lines", type=int, default=2000)
    a = ap.parse_args()
    src = python_source(a.lines)
    d = tempfile.mkdtemp(prefix="check-bench-")
    path = os.path.join(d, "big.py")
    with open(path, "w") as f:
        f.write(src)
    import json as _json
    p = subprocess.run([a.timer, "python", path, str(a.rounds)], capture_output=True, text=True, check=True)
    ours = _json.loads(p.stdout)
    ts = []
    for _ in range(a.rounds):
        t = time.perf_counter()
        ast.parse(src)
        ts.append((time.perf_counter() - t) * 1000)
    cpy = statistics.median(ts)
    e2e = timed([a.airlock, "check", path], 30)
    e2e_py = timed([sys.executable, "-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())", path], 30)
    print("## Static validation\n")
    print("%d-line python file (%d bytes), %d rounds, default policy (%d findings):\n"
          % (a.lines, len(src.encode()), a.rounds, ours["findings"]))
    print("| what | median | ratio |\n|---|---:|---:|")
    print("| al_check_code (tree-sitter parse + rules) | %.3f ms | 1.00 |" % ours["median_ms"])
    print("| CPython ast.parse (parse only) | %.3f ms | %.2f |" % (cpy, cpy / ours["median_ms"]))
    print("| `airlock check FILE` (process) | %.2f ms | |" % e2e)
    print("| `python3 -c 'ast.parse(...)'` (process) | %.2f ms | |" % e2e_py)
    print("\nGoal <= 2 ms median in process: %s" % ("met" if ours["median_ms"] <= 2 else "MISSED"))


if __name__ == "__main__":
    sys.exit(main())
