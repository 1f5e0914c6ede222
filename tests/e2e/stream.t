#!/usr/bin/python3
# Streaming answers (server-sent events) of airlock serve, through the
# real binary and a raw HTTP client: output events arrive while the code
# still runs (a cell that prints, then waits on a file that the test
# writes only after it saw the first event; a one-shot run the same way),
# then one result event equal to what a plain request answers; a reader
# that does not read while the code writes megabytes leaves the server
# holding a bounded amount (the result says what was dropped); a client
# that leaves mid-stream does not stop the server or leak; a refusal on a
# stream is an error event with its status. Nothing asserts a duration.
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, done, diag  # noqa: E402
from airlock import BIN  # noqa: E402

state = tempfile.mkdtemp(prefix="al-e2e-stream-")
os.chmod(state, 0o700)


def keys(*args):
    p = subprocess.run([BIN, "keys", *args, "--state", state, "--json"], capture_output=True,
                       timeout=30)
    return json.loads(p.stdout.decode().splitlines()[-1])


KEY = keys("create", "--name", "stream")["key"]
AUTH = "Authorization: Bearer " + KEY

srv = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--state", state],
                       stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
PORT = json.loads(srv.stderr.readline().decode())["port"]
threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()


def open_stream(path, body, accept=True):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=60)
    b = json.dumps(body).encode()
    head = "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" % (path, AUTH)
    if accept:
        head += "Accept: text/event-stream\r\n"
    head += "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b)
    s.sendall(head.encode() + b)
    return s


class Events:
    """SSE events off a socket, chunked transfer decoded."""

    def __init__(self, s):
        self.s, self.raw, self.head, self.buf = s, b"", None, b""

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.raw += d
        if self.head is None and b"\r\n\r\n" in self.raw:
            self.head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        if self.head is not None:
            # chunked: <hex>\r\n<data>\r\n ...
            while True:
                line, sep, rest = self.raw.partition(b"\r\n")
                if not sep:
                    break
                n = int(line.split(b";")[0] or b"0", 16)
                if len(rest) < n + 2:
                    break
                self.buf += rest[:n]
                self.raw = rest[n + 2:]
                if n == 0:
                    break

    def status(self):
        while self.head is None:
            self._fill()
        return int(self.head.split(b" ")[1])

    def next(self):
        while b"\n\n" not in self.buf:
            self._fill()
        ev, _, self.buf = self.buf.partition(b"\n\n")
        name, data = None, None
        for line in ev.decode().split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        return name, data


def plain(method, path, body=None):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=60)
    b = json.dumps(body).encode() if body is not None else b""
    s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\nContent-Length: %d\r\n\r\n"
               % (method, path, AUTH, len(b))).encode() + b)
    raw = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        raw += d
    head, _, rest = raw.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ")[1]), json.loads(rest)
    except ValueError:
        return int(head.split(b" ")[1]), {}


# 1. a session's cell: the first chunk comes while the cell waits for us
st, sess = plain("POST", "/v1/sessions", {"language": "python"})
ok(st == 201 and sess.get("id"), "a session is created", sess)
SID = sess.get("id")
gate = "gate-%d" % os.getpid()
code = ("import os, time\nprint('first', flush=True)\n"
        "while not os.path.exists(%r): time.sleep(0.05)\nprint('second')\n6*7" % gate)
ev = Events(open_stream("/v1/sessions/%s/execute" % SID, {"code": code}))
ok(ev.status() == 200, "a streamed cell is answered 200 at once")
name, data = ev.next()
ok(name == "stdout" and "first" in data.get("text", ""), "the first output event", (name, data))
st, info = plain("GET", "/v1/sessions/" + SID)
ok(info.get("status") == "busy", "it arrived while the cell was still running", info)
# release the cell: a file in its workspace, through the files API
s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
s.sendall(("PUT /v1/sessions/%s/files/%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n"
           "Content-Length: 1\r\n\r\nx" % (SID, gate, AUTH)).encode())
s.recv(4096)
s.close()
events = []
while True:
    name, data = ev.next()
    events.append((name, data))
    if name in ("result", "error"):
        break
outs = "".join(d.get("text", "") for n, d in events if n == "stdout")
res = events[-1][1]
ok(events[-1][0] == "result" and "second" in outs, "then the rest of the output, then the result",
   events)
ok(res.get("stdout") == "first\nsecond\n" and res.get("results") == [{"text/plain": "42"}]
   and res.get("status") == "ok", "the result event is the whole cell answer", res)

# 2. a one-shot run with "stream": true in the body
gate2 = os.path.join(tempfile.gettempdir(), "never-%d" % os.getpid())
ev = Events(open_stream("/v1/execute", {"language": "python", "stream": True,
                                        "code": "import time\nprint('a', flush=True)\n"
                                                "time.sleep(1.5)\nprint('b')"}, accept=False))
ok(ev.status() == 200, "a streamed run is answered 200 at once")
name, data = ev.next()
ok(name == "stdout" and data.get("text", "").startswith("a"), "its first output event", (name, data))
rest = []
while True:
    name, data = ev.next()
    rest.append(name)
    if name in ("result", "error"):
        break
ok(name == "result" and data.get("status") == "ok" and data.get("stdout") == "a\nb\n"
   and data.get("id"), "then its result, audited like any run", data)

# 3. a slow reader: the code writes 8 MiB while the client reads nothing
st, info = plain("GET", "/v1/sessions/" + SID)
cell = ("import sys\nfor i in range(128): sys.stdout.write('x' * 65535 + '\\n')\n"
        "sys.stdout.flush()\n'done'")
s = open_stream("/v1/sessions/%s/execute" % SID,
                {"code": cell, "limits": {"output_bytes": 16 << 20}})
cells0 = info.get("cells", 0)
deadline = time.time() + 60
while time.time() < deadline:
    st, info = plain("GET", "/v1/sessions/" + SID)
    if info.get("status") == "idle" and info.get("cells", 0) > cells0:
        break
    time.sleep(0.2)
ok(info.get("status") == "idle", "the cell finished although its reader read nothing", info)
raw = b""
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    raw += d
head, _, body = raw.partition(b"\r\n\r\n")
text, pos = bytearray(), 0
while pos < len(body):  # chunked
    eol = body.index(b"\r\n", pos)
    n = int(body[pos:eol].split(b";")[0], 16)
    text += body[eol + 2:eol + 2 + n]
    pos = eol + 4 + n
    if n == 0:
        break
evs = [e for e in bytes(text).split(b"\n\n") if e]
last = evs[-1].decode().split("\n") if evs else []
name = last[0][7:] if last else None
data = json.loads(last[1][6:]) if len(last) > 1 else {}
ok(name == "result" and data.get("stream_dropped_bytes", 0) > 0
   and len(data.get("stdout", "")) == 128 * 65536,
   "output events past the server's hold were dropped and counted; the result has all of it",
   {k: (v if k != "stdout" else len(v)) for k, v in (data or {}).items()})
s.close()

# 4. a client that leaves mid-stream: the server goes on
s = open_stream("/v1/sessions/%s/execute" % SID,
                {"code": "import time\nfor i in range(10):\n    print(i, flush=True); time.sleep(0.1)"})
Events(s).next()
s.close()
time.sleep(1.5)
st, info = plain("POST", "/v1/sessions/%s/execute" % SID, {"code": "1+1"})
ok(st == 200 and info.get("results") == [{"text/plain": "2"}],
   "after a client left mid-stream the session and the server answer", info)

# 5. a refusal on a stream: an error event with its status
ev = Events(open_stream("/v1/sessions/%s/execute" % ("0" * 32), {"code": "1"}))
ok(ev.status() == 200, "a stream is answered before the request is decided")
name, data = ev.next()
ok(name == "error" and data.get("http_status") == 404
   and data.get("error", {}).get("code") == "session_not_found",
   "a refusal is an error event with the status it would have had", (name, data))

plain("DELETE", "/v1/sessions/" + SID)
srv.send_signal(signal.SIGTERM)
ok(srv.wait(60) == 0, "the server stops cleanly")
v = subprocess.run([BIN, "audit", "verify", "--state", state], capture_output=True, text=True)
ok(v.returncode == 0, "the audit chain verifies", v.stdout + v.stderr)
done()
