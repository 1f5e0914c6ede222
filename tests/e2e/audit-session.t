#!/usr/bin/python3
"""Session records in the audit log as an operator reads them: a session
with two cells, a file put and its end, appended to a real store by an
independent writer of the documented canonical encoding (airlock-audit(1));
`verify` counts them, `list --session` shows the session and its cells,
`show SESSION` and `show PREFIX.N` read them, a changed cell record fails
verify at that record, a bad --session is a usage error."""
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done  # noqa: E402
from airlock import BIN  # noqa: E402

tmp = tempfile.mkdtemp(prefix="al-e2e-audit-session-")
state = os.path.join(tmp, "state")


def audit(*args):
    return subprocess.run([BIN, "audit"] + list(args) + ["--state", state],
                          capture_output=True, text=True, timeout=60)


def encode(seq, f):
    """airlock-audit(1), CANONICAL ENCODING."""
    b = b"airlock-audit-v1\n" + struct.pack(">Q", seq)
    for k in ("kind", "id", "ts", "source", "actor", "user_id", "agent_id",
              "language", "status", "flags", "detail", "prev"):
        v = f.get(k)
        if v is None:
            b += b"\0"
        else:
            v = v.encode()
            b += b"\1" + struct.pack(">I", len(v)) + v
    return b


p = audit("verify")  # creates the store and the key
ok(p.returncode == 0, "an empty store verifies", p.stdout + p.stderr)
key = bytes.fromhex(open(os.path.join(state, "audit.key")).read().strip())
con = sqlite3.connect(os.path.join(state, "audit.db"))
sid = "5e55" + "0" * 27 + "1"
who = {"source": "http", "actor": "key:A", "language": "python"}
owner = {"pid": 0, "start": 0, "boot": ""}
recs = [
    ("session_created", sid, None, {"session_id": sid, "owner": owner,
                                    "idle_timeout_s": 600}),
    ("cell_started", sid + ".1", None,
     {"session_id": sid, "seq": 1, "owner": owner,
      "code": {"bytes": 5, "sha256": hashlib.sha256(b"x = 1").hexdigest(),
               "preview": "x = 1", "text": "x = 1"}}),
    ("cell", sid + ".1", "ok", {"session_id": sid, "seq": 1, "status": "ok",
                                "wall_ms": 2, "execution_count": 1}),
    ("cell_started", sid + ".2", None,
     {"session_id": sid, "seq": 2, "owner": owner,
      "code": {"bytes": 3, "sha256": hashlib.sha256(b"1/0").hexdigest(),
               "preview": "1/0", "text": "1/0"}}),
    ("cell", sid + ".2", "error",
     {"session_id": sid, "seq": 2, "status": "error", "wall_ms": 3,
      "execution_count": 2, "error_name": "ZeroDivisionError"}),
    ("file_put", sid, None, {"session_id": sid, "path": "data/in.csv",
                             "bytes": 4, "sha256": "ab" * 32}),
    ("session_ended", sid, "closed", {"session_id": sid, "reason": "closed",
                                      "cells": 2, "wall_ms": 900}),
]
prev = "0" * 64
for i, (kind, rid, status, detail) in enumerate(recs, 1):
    f = dict(who, kind=kind, id=rid, status=status,
             ts="2026-12-01T10:00:%02d.000Z" % i,
             detail=json.dumps(detail, separators=(",", ":")), prev=prev)
    h = hashlib.sha256(encode(i, f)).digest()
    mac = hmac.new(key, h, hashlib.sha256).hexdigest()
    con.execute("INSERT INTO records (seq, kind, id, ts, source, actor, "
                "user_id, agent_id, language, status, flags, detail, prev, "
                "hash, mac) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (i, kind, rid, f["ts"], f["source"], f["actor"], None, None,
                 f["language"], status, None, f["detail"], prev, h.hex(), mac))
    prev = h.hex()
con.commit()

p = audit("verify")
ok(p.returncode == 0 and "1 sessions, 2 cells" in p.stdout,
   "verify: the session's records chain, counted as 1 session and 2 cells",
   p.stdout + p.stderr)

p = audit("list", "--session", sid, "--json", "--limit", "0")
rows = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
ok(p.returncode == 0 and [r["kind"] for r in rows] == ["cell", "cell", "session"]
   and all(r["session_id"] == sid for r in rows)
   and [r["status"] for r in rows] == ["error", "ok", "closed"],
   "list --session: the session and its cells, newest first, with session_id",
   p.stdout + p.stderr)

p = audit("list")
ok(p.returncode == 0 and sid[:8] + ".2" in p.stdout and sid[:12] + "*" in p.stdout,
   "list: a cell shown as PREFIX.N, a session with *", p.stdout + p.stderr)

p = audit("show", sid)
ok(p.returncode == 0 and "kind:      session" in p.stdout
   and "ended:     closed, 2 cells" in p.stdout and "ZeroDivisionError" in p.stdout
   and "file_put" in p.stdout and "data/in.csv" in p.stdout,
   "show SESSION: its cells, its file events, how it ended", p.stdout + p.stderr)

p = audit("show", sid[:8] + ".2", "--json")
x = json.loads(p.stdout) if p.returncode == 0 else {}
ok(x.get("kind") == "cell" and x.get("id") == sid + ".2"
   and x.get("status") == "error"
   and x["result"]["error_name"] == "ZeroDivisionError"
   and x["request"]["code"]["text"] == "1/0",
   "show PREFIX.2: that cell, its code and its error", p.stdout + p.stderr)

p = audit("list", "--session", "../x")
ok(p.returncode == 2 and "--session" in p.stderr,
   "list --session with a bad id: exit 2 naming the option", p.stderr)

con.execute("UPDATE records SET status = 'ok' WHERE seq = 5")
con.commit()
p = audit("verify")
ok(p.returncode == 1 and "FAILED at record 5: modified" in p.stdout,
   "a cell record changed from error to ok: verify fails at that record",
   p.stdout + p.stderr)
con.close()
shutil.rmtree(tmp, ignore_errors=True)
done()
