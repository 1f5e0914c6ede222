#!/bin/sh
# make demo: a real computation, then a few attacks that the sandbox stops.
# Every line below runs build/airlock exactly as a user would.
set -u
A=${1:-build/airlock}
PY=/usr/bin/python3
tmp=$(mktemp -d /tmp/airlock-demo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

field() { # field JSON-FILE EXPR -> prints a value from airlock's JSON
        "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

echo "== 1. A real computation: pandas + matplotlib, plot returned as a file"
cat > "$tmp/analyse.py" <<'PYEOF'
import numpy as np, pandas as pd, matplotlib.pyplot as plt, os
df = pd.read_csv("data.csv")
print(df.describe().loc[["mean", "std"]].round(2).to_string())
os.makedirs("out", exist_ok=True)
df.plot(x="x", y="y", title="y = x^2")
plt.savefig("out/plot.png")
PYEOF
printf 'x,y\n' > "$tmp/data.csv"
for i in 1 2 3 4 5 6 7 8 9 10; do printf '%s,%s\n' "$i" "$((i * i))" >> "$tmp/data.csv"; done
"$A" run --lang python "$tmp/analyse.py" --file data.csv="$tmp/data.csv" \
        --collect 'out/*.png' --out-dir "$tmp/out"
ls -l "$tmp/out/out/plot.png" 2>/dev/null | sed 's/^/   returned: /'
echo

attack() { # attack TITLE EXPECT LANG CODE [FLAGS...]; EXPECT: a Python test on r
        title=$1 expect=$2 lang=$3 code=$4
        shift 4
        "$A" run --json --lang "$lang" -c "$code" "$@" > "$tmp/r.json" 2>/dev/null
        status=$(field "$tmp/r.json" 'r["status"]')
        out=$(field "$tmp/r.json" '(r["stdout"]+r["stderr"]).strip().splitlines()[-1][:70] if (r["stdout"]+r["stderr"]).strip() else r["reason"][:70]')
        if [ "$(field "$tmp/r.json" "$expect")" = True ]; then
                verdict="BLOCKED"
        else
                verdict="NOT BLOCKED"
        fi
        printf '%-34s %-8s status=%-13s %s\n' "$title" "$verdict" "$status" "$out"
}

echo "== 2. Attacks (each in a fresh sandbox; the host is checked by 'make check')"
attack "read a host secret" 'r["status"] == "error"' python \
        'print(open("/etc/shadow").read())'
attack "connect to the network" 'r["status"] == "error"' python \
        'import socket; socket.create_connection(("1.1.1.1", 53), timeout=2)'
attack "write outside the workspace" 'r["status"] == "error"' sh \
        'echo pwned > /usr/bin/pwned'
attack "ptrace another process" 'r["status"] == "error"' python \
        'import ctypes; l=ctypes.CDLL(None, use_errno=True); r=l.ptrace(16,1,0,0); import os; exit("ptrace: " + os.strerror(ctypes.get_errno()) if r else "ptrace worked")'
attack "mount a filesystem" 'r["status"] == "error"' python \
        'import ctypes, os; l=ctypes.CDLL(None, use_errno=True); r=l.mount(b"none", b"/tmp", b"tmpfs", 0, None); exit("mount: " + os.strerror(ctypes.get_errno()) if r else "mounted")'
attack "fork bomb (limit 32 pids)" '"pids" in r["limits_hit"]' bash \
        'b(){ b|b& }; b; sleep 2; echo "bomb contained, host unaffected"' --pids 32 --timeout 3
attack "memory bomb (limit 64 MiB)" 'r["status"] == "memory_limit"' python \
        'x = bytearray(1 << 30); print(len(x))' --memory 64
attack "spin forever (wall limit 1 s)" 'r["status"] == "timeout"' python \
        'while True: pass' --timeout 1
attack "flood the output" 'r["status"] == "output_limit"' sh \
        'yes' --output 65536
echo
echo "== 3. What this host gives (airlock doctor)"
"$A" doctor | tail -n 12
