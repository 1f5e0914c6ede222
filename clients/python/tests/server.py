"""A real airlock serve on a loopback port with a fresh state directory,
for the client's tests: build/airlock (or $AIRLOCK_BIN), keys made with
`airlock keys create`."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
BIN = os.environ.get("AIRLOCK_BIN") or os.path.join(REPO, "build", "airlock")
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

#: request bodies over this are 413 on the test server (a small cap keeps
#: the test's oversized body small)
MAX_BODY = 256 * 1024


class Server:
    """`airlock serve` started in setUpClass, stopped in tearDownClass."""

    def __init__(self) -> None:
        self.state = tempfile.mkdtemp(prefix="al-pyclient-")
        os.chmod(self.state, 0o700)
        self.proc = None
        self.port = None
        self.lines = []

    def key(self, name, *flags):
        p = subprocess.run([BIN, "keys", "create", "--name", name, "--state", self.state,
                            "--json", *flags], capture_output=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("keys create: %s" % p.stderr.decode())
        return json.loads(p.stdout.decode().splitlines()[-1])["key"]

    def start(self):
        self.proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--state",
                                      self.state, "--max-body", str(MAX_BODY)],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        line = self.proc.stderr.readline().decode()
        try:
            self.port = json.loads(line)["port"]
        except (ValueError, KeyError):
            self.stop()
            raise RuntimeError("airlock serve did not start: %r" % line)
        threading.Thread(target=lambda: [self.lines.append(x) for x in self.proc.stderr],
                         daemon=True).start()
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.state, ignore_errors=True)
