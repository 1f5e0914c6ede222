#!/usr/bin/python3
"""The attack suite: each case runs hostile code inside airlock and checks
the HOST for its effect (a listener that must stay silent, a canary that
must not leak, a file that must not appear or change, a process that must
be gone), not just airlock's exit code.

Every group first submits its airlock runs to a small thread pool (so the
independent runs overlap), then all groups check their results in order.
A group that crashes reports one failing test and the others go on."""
import concurrent.futures
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, skip, done, diag  # noqa: E402
from airlock import VIA, NotInSession, driver_fd, run, uptime, procs_left_by, procs_with_argv0  # noqa: E402
from hostprobe import (foreign_write_program, probe_foreign_abi, foreign_abi_check,  # noqa: E402
                       foreign_abi_check_selftest)

ROOT = os.geteuid() == 0
TOKEN = secrets.token_hex(6)          # names every host artefact of this run of the suite
POOL = concurrent.futures.ThreadPoolExecutor(3)
RESULTS = []                          # every Res, for the suite-wide checks at the end
CLEANUP = []                          # host paths to remove at the end, whatever happens


class Res:
    def __init__(self, rc, r, dt, t_end, left):
        self.rc, self.r, self.dt, self.t_end, self.left = rc, r, dt, t_end, left

    def brief(self, *keys):
        keys = keys or ("status", "reason", "exit_code", "signal", "limits_hit", "stdout", "stderr")
        return {k: (self.r.get(k)[-1500:] if isinstance(self.r.get(k), str) else self.r.get(k)) for k in keys}


def run_now(lang, code, *flags, env=None, timeout=120):
    """One airlock run; right after it returns, the host processes still
    running as its sandbox uid (none may be left)."""
    t0, t_start = time.time(), uptime()
    rc, r = run(lang, code, *flags, env=env, timeout=timeout)
    t_end = uptime()
    dt = time.time() - t0
    uid = r.get("protections", {}).get("host_uid")
    left = procs_left_by(uid, t_start, t_end) if isinstance(uid, int) and uid != os.getuid() else []
    if left is None:
        diag("slot of uid %s stayed busy (another run): its leftovers are left to zz-leftovers.t" % uid)
        left = []
    res = Res(rc, r, dt, t_end, left)
    RESULTS.append(res)
    return res


def launch(lang, code, *flags, env=None, timeout=120):
    return POOL.submit(run_now, lang, code, *flags, env=env, timeout=timeout)


def plant(path, content, mode=0o644):
    with open(path, "w") as f:
        f.write(content)
    os.chmod(path, mode)
    CLEANUP.append(path)
    return path


GROUPS = []


def group(fn):
    GROUPS.append(fn)
    return fn


# --- network ------------------------------------------------------------------
class Listener:
    """Host-side listeners on loopback (TCP, UDP, TCP over ::1, abstract
    unix) that record any contact."""

    def __init__(self):
        self.hits = []
        self.socks = []
        self.tcp = self._add(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 0), "tcp")
        self.udp = self._add(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0), "udp")
        try:
            self.tcp6 = self._add(socket.AF_INET6, socket.SOCK_STREAM, ("::1", 0), "tcp6")
        except OSError:
            self.tcp6 = None
        self.abstract = "\0airlock-e2e-%s" % TOKEN
        self.unix = self._add(socket.AF_UNIX, socket.SOCK_STREAM, self.abstract, "unix")
        self.stop = False
        self.threads = [threading.Thread(target=self.loop, args=s, daemon=True) for s in self.socks]
        for t in self.threads:
            t.start()

    def _add(self, fam, typ, addr, kind):
        s = socket.socket(fam, typ)
        s.bind(addr)
        if typ == socket.SOCK_STREAM:
            s.listen(8)
        s.settimeout(0.1)
        self.socks.append((s, kind))
        return s

    def loop(self, s, kind):
        while not self.stop:
            try:
                if kind == "udp":
                    data, _ = s.recvfrom(100)
                    self.hits.append((kind, data))
                else:
                    c, _ = s.accept()
                    c.settimeout(0.5)
                    try:
                        self.hits.append((kind, c.recv(100)))
                    except OSError:
                        self.hits.append((kind, b""))
                    c.close()
            except (socket.timeout, OSError):
                pass

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join()
        for s, _ in self.socks:
            s.close()


@group
def network():
    lis = Listener()
    port6 = lis.tcp6.getsockname()[1] if lis.tcp6 else 0
    code = """
import socket, errno
res = []
def tryit(name, f):
    try:
        f(); res.append(name + ":CONNECTED")
    except socket.gaierror as e:
        res.append(name + ":GAIERROR")
    except OSError as e:
        res.append(name + ":" + (errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__))
def tcp():
    s = socket.create_connection(("127.0.0.1", %d), timeout=2); s.send(b"leak")
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(5): s.sendto(b"leak", ("127.0.0.1", %d))
def tcp6():
    if not %d: raise OSError(0, "no ipv6 listener")
    s = socket.create_connection(("::1", %d), timeout=2); s.send(b"leak")
def dns():
    socket.getaddrinfo("example.com", 80)
def abstract():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(%r); s.send(b"leak")
def raw():
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def packet():
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
def outside():
    socket.create_connection(("1.1.1.1", 443), timeout=2)
for n, f in [("tcp", tcp), ("udp", udp), ("tcp6", tcp6), ("dns", dns), ("abstract", abstract),
             ("raw", raw), ("packet", packet), ("outside", outside)]:
    tryit(n, f)
print(" ".join(res))
import os; print("IFACES", sorted(os.listdir("/proc/sys/net/ipv4/conf")))
""" % (lis.tcp.getsockname()[1], lis.udp.getsockname()[1], port6, port6, lis.abstract)
    fut = launch("python", code, "--timeout", "20")

    def check():
        try:
            x = fut.result()
            time.sleep(0.3)
        finally:
            lis.close()
        lines = x.r["stdout"].splitlines()
        out = dict(item.split(":", 1) for item in (lines[0].split() if lines else []) if ":" in item)
        diag("network results: %s; %s" % (out, lines[1] if len(lines) > 1 else ""))
        hits = lambda k: [h for h in lis.hits if h[0] == k]  # noqa: E731
        ok(x.r["status"] == "ok" and len(out) == 8, "the network probe ran", x.brief())
        ok(out.get("tcp") not in (None, "CONNECTED") and not hits("tcp"),
           "TCP to a host 127.0.0.1 listener fails; the listener saw nothing", (out, lis.hits))
        ok("udp" in out and not hits("udp"), "UDP datagrams to a host 127.0.0.1 listener never arrive", (out, lis.hits))
        if lis.tcp6:
            ok(out.get("tcp6") not in (None, "CONNECTED") and not hits("tcp6"),
               "TCP to a host ::1 listener fails; the listener saw nothing", (out, lis.hits))
        else:
            skip("TCP to a host ::1 listener", "no IPv6 loopback on this host")
        ok(out.get("dns") not in (None, "CONNECTED"), "DNS lookup fails", out)
        ok(out.get("abstract") not in (None, "CONNECTED") and not hits("unix"),
           "abstract unix socket of the host unreachable; the listener accepted nothing", (out, lis.hits))
        ok(out.get("raw") == "EPERM", "raw socket (AF_INET, SOCK_RAW) refused with EPERM", out)
        ok(out.get("packet") == "EAFNOSUPPORT", "packet socket (AF_PACKET) refused with EAFNOSUPPORT by the "
           "seccomp filter", out)
        ok(out.get("outside") in ("ENETUNREACH", "EHOSTUNREACH"), "no route to the outside", out)
        ok(len(lines) > 1 and lines[1] == "IFACES ['all', 'default', 'lo']", "only the loopback interface exists", lines)
    return check


# --- secrets ---------------------------------------------------------------------
SECRET = "airlock-canary-" + secrets.token_hex(16)   # never to be seen in any result
ENV_SECRET = "airlock-envcanary-" + secrets.token_hex(16)


@group
def secrets_group():
    planted = []
    for d in ("/root", "/etc", "/root/.ssh", "/var/tmp", "/home"):
        if os.path.isdir(d) and os.access(d, os.W_OK):
            planted.append(plant(os.path.join(d, "airlock-canary-%s.txt" % TOKEN), SECRET + "\n"))
    if not ROOT or "/root/airlock-canary-%s.txt" % TOKEN not in planted:
        skip("canary secrets in /root and /etc", "not root: cannot plant canaries in /root and /etc")
        return None
    code = "import os\nfor p in %r:\n    try:\n        print(open(p).read())\n    except OSError as e:\n        print('DENIED', p, e.strerror)\n" % planted
    code += ("for root in ('/', '/proc/1/root', '/proc/self/cwd/..'):\n"
             "    for dp, dn, fn in os.walk(root):\n"
             "        if dp.startswith(('/proc/sys', '/proc/1', '/proc/self')) and root == '/': dn[:] = []\n"
             "        for n in fn + dn:\n"
             "            if %r in n: print('FOUND', os.path.join(dp, n))\n"
             "print('walked')\n" % ("airlock-canary-" + TOKEN))
    env = dict(os.environ, AIRLOCK_E2E_CANARY=ENV_SECRET)
    f_files = launch("python", code, "--timeout", "30")
    f_env = launch("sh", "env; for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ; done 2>/dev/null; echo done",
                   env=env)
    f_python_env = launch("python", "import os; print(sorted(os.environ))", env=env)

    def check():
        x = f_files.result()
        blob = json.dumps(x.r)
        ok(x.r["status"] == "ok" and x.r["stdout"].count("DENIED") == len(planted) and "walked" in x.r["stdout"],
           "the canary probe ran (%d paths tried, whole tree walked)" % len(planted), x.brief())
        ok(SECRET not in blob and "FOUND" not in x.r["stdout"],
           "canary files in %s: content absent from the whole JSON, names found nowhere inside" % ", ".join(planted),
           x.brief())
        x = f_env.result()
        ok(x.r["status"] == "ok" and "HOME=/workspace" in x.r["stdout"] and x.r["stdout"].endswith("done\n")
           and ENV_SECRET not in json.dumps(x.r) and "AIRLOCK_E2E_CANARY" not in x.r["stdout"],
           "a canary variable in airlock's environment is absent inside (env and every /proc/*/environ)", x.brief())
        x = f_python_env.result()
        names = x.r["stdout"]
        ok(x.r["status"] == "ok" and "PATH" in names and "AIRLOCK_E2E_CANARY" not in names
           and not any(k in names for k in ("'SSL_CERT_FILE'", "'PYENV_ROOT'", "'SUDO_USER'")),
           "the environment is built from scratch (no host variable inside)", x.brief())
    return check


@group
def host_files_absent():
    fut = launch("sh", "cat /etc/shadow /root/.bashrc /etc/ssh/sshd_config 2>&1; "
                 "ls -d /root /home /var /srv /run /run/airlock /sys /boot /etc/ssh 2>&1; echo end")

    def check():
        x = fut.result()
        out = x.r["stdout"]
        ok(x.r["status"] == "ok" and "root:" not in out and out.count("No such file") == 12 and out.endswith("end\n"),
           "/etc/shadow, /root, /home, /var, /srv, /run, /sys, /boot and airlock's state are not there", out)
    return check


# --- filesystem writes ---------------------------------------------------------------
@group
def writes():
    original = "original-%s\n" % TOKEN
    victims = []
    for d in ("/usr/share", "/etc", "/", "/tmp"):
        victims.append(plant(os.path.join(d, "airlock-e2e-victim-%s" % TOKEN), original))
    news = [os.path.join(d, "airlock-e2e-new-%s" % TOKEN) for d in ("/usr", "/usr/share", "/etc", "/", "/tmp", "/dev")]
    CLEANUP.extend(news)
    before = {p: (os.stat(p).st_mode, os.stat(p).st_uid, os.stat(p).st_mtime) for p in victims + ["/usr/bin/true", "/usr/bin", "/etc/passwd"]}
    script = "for v in %s; do\n" % " ".join(victims)
    script += """  [ -e "$v" ] && echo "SEEN $v"
  [ -e "$v" ] || continue
  (echo pwned > "$v") 2>/dev/null && echo "WROTE $v"
  (echo pwned >> "$v") 2>/dev/null && echo "APPENDED $v"
  rm -f "$v" 2>/dev/null; [ -e "$v" ] || echo "DELETED $v"
  mv "$v" "$v.moved" 2>/dev/null && echo "MOVED $v"
  chmod 777 "$v" 2>/dev/null && echo "CHMOD $v"
  truncate -s 0 "$v" 2>/dev/null && echo "TRUNCATED $v"
done
"""
    script += "for n in %s; do (echo pwned > \"$n\") 2>/dev/null && echo \"CREATED $n\"; done\n" % " ".join(news)
    script += """rm -f /usr/bin/true 2>/dev/null && echo "DELETED true"
chmod 777 /usr/bin 2>/dev/null && echo "CHMOD usr"
(echo x >> /etc/passwd) 2>/dev/null && echo "APPENDED passwd"
mkdir /usr/x 2>/dev/null && echo "MKDIR usr"
(echo x > /proc/sysrq-trigger) 2>/dev/null && echo "SYSRQ"
(echo x > /proc/sys/kernel/hostname) 2>/dev/null && echo "SYSCTL"
echo mine > /workspace/mine && cat /workspace/mine
"""
    fut = launch("sh", script)

    def check():
        x = fut.result()
        lines = x.r["stdout"].splitlines()
        did = [l for l in lines if l != "mine"]
        # only /usr is shared (read-only) with the host: the victim there is the one visible; the
        # sandbox has a /tmp of its own, creating there is fine, it must just not reach the host
        did = [l for l in did if l != "CREATED /tmp/airlock-e2e-new-%s" % TOKEN]
        ok(x.r["status"] == "ok" and lines[-1:] == ["mine"] and did == ["SEEN " + victims[0]],
           "inside, writes/deletes/renames/chmods of /usr, /etc, /, /proc fail; the workspace is writable", x.brief())
        changed = []
        for p in victims:
            try:
                with open(p) as f:
                    if f.read() != original:
                        changed.append(p + ": content")
                if not os.path.exists(p + ".moved") and (os.stat(p).st_mode, os.stat(p).st_uid, os.stat(p).st_mtime) != before[p]:
                    changed.append(p + ": metadata")
            except OSError as e:
                changed.append("%s: %s" % (p, e))
            if os.path.exists(p + ".moved"):
                changed.append(p + ".moved exists")
                CLEANUP.append(p + ".moved")
        for p in ("/usr/bin/true", "/usr/bin", "/etc/passwd"):
            st = os.stat(p)
            if (st.st_mode, st.st_uid, st.st_mtime) != before[p]:
                changed.append(p)
        created = [p for p in news if os.path.exists(p)] + [p for p in ("/usr/x",) if os.path.exists(p)]
        ok(not changed and not created,
           "host files in /usr, /etc, / and /tmp unchanged; nothing created there on the host",
           {"changed": changed, "created": created})
    return check


# --- persistence ---------------------------------------------------------------------
@group
def persistence():
    mark = "persist-%s" % TOKEN

    def both():
        a = run_now("sh", "for d in /tmp /dev/shm /workspace /workspace/.cache; do mkdir -p $d; echo %s > $d/%s; done; "
                    "ls -A /tmp /dev/shm /workspace" % (mark, mark))
        b = run_now("sh", "ls -A /tmp /dev/shm; ls -A /workspace; grep -rl --exclude=main.sh %s /tmp /dev/shm /workspace 2>/dev/null; echo end" % mark)
        return a, b
    fut = POOL.submit(both)

    def check():
        a, b = fut.result()
        ok(a.r["status"] == "ok" and a.r["stdout"].count(mark) >= 3, "first run wrote into /tmp, /dev/shm and /workspace", a.brief())
        out = b.r["stdout"]
        # a run's /workspace holds its main.sh; a session's starts empty
        ws = "" if VIA == "session" else "main.sh\n"
        ok(b.r["status"] == "ok" and out == "/dev/shm:\n\n/tmp:\n" + ws + "end\n",
           "second run sees nothing of the first (/tmp and /dev/shm empty, no marker in /workspace)", b.brief())
        host = [p for d in ("/tmp", "/dev/shm", "/var/tmp") if os.path.isdir(d) for p in os.listdir(d) if mark in p]
        ok(not host, "nothing of the runs' files reached the host's /tmp, /dev/shm, /var/tmp", host)
    return check


# --- disk ------------------------------------------------------------------------------------
@group
def disk():
    free_before = shutil.disk_usage("/").free
    shm_before = shutil.disk_usage("/dev/shm").used if os.path.isdir("/dev/shm") else 0
    big = launch("sh", "echo start; dd if=/dev/zero of=/workspace/big bs=1M count=200", "--disk", "16")
    tmp = launch("sh", "head -c 100000000 /dev/zero > /dev/shm/fill", "--disk", "16")
    many = launch("python", "n = 0\ntry:\n    while n < 200000:\n        open('/tmp/f%d' % n, 'w').close(); n += 1\n"
                  "except OSError as e:\n    print('errno', e.errno)\nprint('made=%d' % n)", "--disk", "4", "--timeout", "60")

    def check():
        x = big.result()
        ok(x.r["status"] == "error" and x.r["stdout"] == "start\n"
           and ("No space left" in x.r["stderr"] or "File too large" in x.r["stderr"]) and "disk" in x.r["limits_hit"],
           "one big file (200 MiB, --disk 16) fails; 'disk' in limits_hit", x.brief())
        diff = free_before - shutil.disk_usage("/").free
        ok(diff < (100 << 20), "host free disk space unaffected (changed by %d MiB during the runs)" % (diff >> 20))
        x = tmp.result()
        ok(x.r["status"] == "error" and "disk" in x.r["limits_hit"], "filling /dev/shm hits the same capped tmpfs", x.brief())
        x = many.result()
        out = x.r["stdout"]
        made = int(out.split("made=")[-1]) if "made=" in out else -1
        ok(0 < made < 200000 and "errno 28" in out and "disk" in x.r["limits_hit"],
           "many small files stop at the inode/size cap (%d made, ENOSPC, 'disk' in limits_hit)" % made, x.brief())
        if os.path.isdir("/dev/shm"):
            used = shutil.disk_usage("/dev/shm").used - shm_before
            ok(used < (16 << 20), "host /dev/shm unaffected (%d KiB more used)" % (used >> 10))
    return check


# --- output ------------------------------------------------------------------------------------
@group
def output():
    out = launch("sh", "yes", "--output", "65536")
    err = launch("sh", "yes >&2", "--output", "4096")

    def check():
        x = out.result()
        ok(x.r["status"] == "output_limit" and x.r.get("stdout_truncated") is True and len(x.r["stdout"]) == 65536
           and x.rc == 6 and "output" in x.r["limits_hit"] and x.dt < 10,
           "output flood on stdout: output_limit, truncated, exactly the cap (%d bytes)" % len(x.r["stdout"]),
           x.brief("status", "reason", "stdout_truncated", "limits_hit"))
        x = err.result()
        ok(x.r["status"] == "output_limit" and x.r.get("stderr_truncated") is True and len(x.r["stderr"]) == 4096,
           "output flood on stderr: output_limit, truncated at the cap", x.brief("status", "reason", "stderr_truncated"))
    return check


# --- processes and threads --------------------------------------------------------------------
@group
def forkbombs():
    py = launch("python", "import os\nwhile True:\n    os.fork()", "--pids", "32", "--timeout", "20")
    sh = launch("bash", ":(){ :|:& };:; sleep 3; echo survived", "--pids", "32", "--timeout", "20")
    th = launch("python", "import threading, time\nn=0\ntry:\n    while True:\n"
                "        threading.Thread(target=time.sleep, args=(5,)).start(); n+=1\n"
                "except RuntimeError as e:\n    print('stopped at', n)", "--pids", "16", "--timeout", "20")

    def check():
        x = py.result()
        ok(x.r["status"] not in ("ok", "<no json>") and "pids" in x.r["limits_hit"] and x.dt < 20,
           "python fork bomb (--pids 32): run ends %s, 'pids' reported, %.1f s" % (x.r["status"], x.dt), x.brief())
        ok(not x.left, "after the fork bomb no process of its sandbox uid is left on the host", x.left)
        x = sh.result()
        # (whether the main shell itself still gets a fork in depends on the timing: not asserted)
        ok("pids" in x.r["limits_hit"] and not x.left and x.dt < 20,
           "bash fork bomb (--pids 32): contained, 'pids' reported, nothing left afterwards", (x.brief(), x.left))
        x = th.result()
        n = x.r["stdout"].split()[-1] if x.r["stdout"].split() else ""
        ok(n.isdigit() and int(n) < 16 and "pids" in x.r["limits_hit"], "thread bomb stops below --pids 16", x.brief())
    return check


@group
def memory():
    fut = launch("python", "x = bytearray(1 << 30)\nx[::4096] = b'x' * len(x[::4096])\nprint(len(x))", "--memory", "64")

    def check():
        x = fut.result()
        ok(x.r["status"] == "memory_limit" and "memory" in x.r["limits_hit"] and x.rc == 5
           and "1073741824" not in x.r["stdout"], "memory bomb (1 GiB, --memory 64): memory_limit", x.brief())
        peak = x.r.get("memory_peak_bytes") or 0
        ok(0 < peak <= (64 + 4) << 20, "peak memory within the limit (%d MiB)" % (peak >> 20), x.brief("memory_peak_bytes"))
    return check


@group
def cpu():
    spin = launch("python", "while True: pass", "--cpu", "1", "--timeout", "20")
    kids = launch("sh", "for i in 1 2 3 4; do (while :; do :; done) & done; wait", "--cpu", "1", "--timeout", "20")

    def check():
        x = spin.result()
        ok(x.r["status"] == "timeout" and "cpu" in x.r["limits_hit"] and "wall" not in x.r["limits_hit"]
           and x.rc == 4 and 900 <= (x.r.get("cpu_ms") or 0) < 3000,
           "CPU spin (--cpu 1): timeout, 'cpu' in limits_hit (cpu %s ms)" % x.r.get("cpu_ms"), x.brief())
        x = kids.result()
        ok(x.r["status"] == "timeout" and "cpu" in x.r["limits_hit"] and (x.r.get("wall_ms") or 1e9) < 8000 and not x.left,
           "4 spinning children: the CPU limit counts the whole tree, nothing left", (x.brief(), x.left))
    return check


@group
def wall():
    fut = launch("python", "import time; time.sleep(60)", "--timeout", "1")
    sh = launch("sh", "trap '' TERM INT HUP; sleep 60 & sleep 60 & wait", "--timeout", "1")

    def check():
        x = fut.result()
        ok(x.r["status"] == "timeout" and "wall" in x.r["limits_hit"] and x.rc == 4 and x.dt < 10,
           "sleep 60 with --timeout 1: timeout, 'wall' in limits_hit, airlock returned in %.1f s" % x.dt, x.brief())
        x = sh.result()
        ok(x.r["status"] == "timeout" and x.dt < 10 and not x.left,
           "signal-ignoring shell with sleeping children: killed at the wall limit (%.1f s), nothing left" % x.dt,
           (x.brief(), x.left))
    return check


@group
def fds():
    fut = launch("python", "import os\nfds=[]\ntry:\n    while True: fds.append(os.open('/dev/null', os.O_RDONLY))\n"
                 "except OSError as e:\n    print(len(fds), e.errno)", "--open-files", "64")
    inherited = launch("python", "import os\nfor fd in sorted(int(f) for f in os.listdir('/proc/self/fd')):\n"
                       "    try:\n        print(fd, os.readlink('/proc/self/fd/%d' % fd))\n    except OSError:\n        pass")

    def check():
        x = fut.result()
        p = x.r["stdout"].split()
        ok(x.r["status"] == "ok" and len(p) == 2 and p[1] == "24" and int(p[0]) < 64,
           "open files bounded by --open-files 64 (EMFILE)", x.brief())
        x = inherited.result()
        fds_ = [l.split(" ", 1) for l in x.r["stdout"].splitlines()]
        std = {f[1] for f in fds_ if f[0] in ("0", "1", "2")}
        # (in a session the cell shares its driver's fds: driver_fd)
        extra = [f for f in fds_ if f[0] not in ("0", "1", "2") and "/proc/" not in f[1]
                 and not driver_fd(f[0], f[1], std)]
        ok(x.r["status"] == "ok" and len(fds_) >= 3 and not extra,
           "no file descriptor of the supervisor is inherited (only 0, 1, 2)", x.r["stdout"])
    return check


# --- processes that want to outlive the run --------------------------------------------
@group
def daemons():
    marker = "airlock-e2e-daemon-" + TOKEN
    code = """
trap '' HUP TERM INT
( setsid bash -c 'trap "" HUP TERM; (trap "" HUP TERM; exec -a %(m)s sleep 1000) & disown' & )
nohup bash -c 'trap "" HUP TERM; exec -a %(m)s sleep 1000' >/dev/null 2>&1 &
python3 -c '
import os, signal, time
if os.fork(): os._exit(0)
os.setsid()
if os.fork(): os._exit(0)
signal.signal(signal.SIGHUP, signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.execvp("sleep", ["%(m)s", "1000"])' </dev/null >/dev/null 2>&1
disown -a
sleep 0.5
for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/cmdline 2>/dev/null | head -n 1; done | grep -c '^%(m)s$'
echo main-exits
""" % {"m": marker}
    def run_and_scan():
        x = run_now("bash", code)
        return x, procs_with_argv0(marker)      # scanned right after airlock returned
    fut = POOL.submit(run_and_scan)

    def check():
        x, left = fut.result()
        inside = x.r["stdout"].split()[0] if x.r["stdout"].split() else "0"
        ok(x.r["status"] == "ok" and inside == "3" and "main-exits" in x.r["stdout"],
           "three daemons (double fork + setsid, nohup, ignoring HUP/TERM) were running inside", x.brief())
        ok(not left and not x.left, "after airlock returns no process on the host has argv[0] %s" % marker,
           {"marker": left, "uid": x.left})
    return check


# --- host processes and other sandboxes -------------------------------------------------
@group
def host_processes():
    host = subprocess.Popen(["sleep", "120"])
    code = """
import os, signal
pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
try:
    os.kill(%d, 0); seen = 'VISIBLE'
except ProcessLookupError:
    seen = 'ESRCH'
except PermissionError:
    seen = 'EPERM'
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
print(len(pids), seen, os.getpid(), os.getuid(), os.getgid())
""" % host.pid
    fut = launch("python", code)
    uts = launch("sh", "hostname; cat /proc/sys/kernel/hostname; hostname evil 2>/dev/null && echo CHANGED; echo end")

    def check():
        try:
            x = fut.result()
            alive = host.poll() is None
        finally:
            host.kill()
            host.wait()
        p = x.r["stdout"].split()
        ok(x.r["status"] == "ok" and len(p) == 5 and int(p[0]) <= 3 and int(p[2]) <= 3 and p[3:] == ["1000", "1000"],
           "inside, /proc lists only the sandbox's few pids; uid/gid 1000", x.brief())
        ok(len(p) == 5 and p[1] == "ESRCH", "kill(host_pid, 0) fails with ESRCH", x.brief())
        ok(alive, "kill(-1, SIGKILL) inside does not reach the host's sleep")
        x = uts.result()
        ok(x.r["stdout"] == "airlock\nairlock\nend\n" and socket.gethostname() != "airlock",
           "own UTS namespace; sethostname refused", x.brief())
    return check


@group
def other_sandboxes():
    marker = "airlock-e2e-neighbour-" + TOKEN

    def pair():
        # its own thread: the pool's workers may all be busy
        a = concurrent.futures.ThreadPoolExecutor(1).submit(run_now, "bash", "(exec -a %s sleep 4)" % marker, "--timeout", "10")
        # wait (host side) until the neighbour runs, then look for it from a second sandbox
        deadline = time.time() + 20
        while not procs_with_argv0(marker) and time.time() < deadline:
            time.sleep(0.05)
        seen_on_host = procs_with_argv0(marker)
        hostpid = seen_on_host[0][0] if seen_on_host else 999999
        b = run_now("sh", "for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/cmdline 2>/dev/null | head -n 1; done | "
                    "grep -c %s; kill -9 %d 2>&1; kill -9 -1; echo end" % (marker, hostpid))
        return seen_on_host, b, a.result()
    fut = POOL.submit(pair)

    def check():
        seen, b, a = fut.result()
        ok(bool(seen), "the neighbour sandbox was running (seen from the host)")
        ok(b.r["stdout"].startswith("0\n") and b.r["stdout"].endswith("end\n") and a.r["status"] == "ok"
           and a.r.get("protections", {}).get("host_uid") != b.r.get("protections", {}).get("host_uid"),
           "a concurrent sandbox is invisible and unkillable from another one; each has its own host uid",
           {"a": a.brief(), "b": b.brief(), "uids": [a.r.get("protections", {}).get("host_uid"), b.r.get("protections", {}).get("host_uid")]})
    return check


# --- privileges ----------------------------------------------------------------------
@group
def privileges():
    status = launch("sh", "grep -E '^(Cap[A-Za-z]+|NoNewPrivs|Seccomp):' /proc/self/status")
    suid = [p for p in ("/usr/bin/su", "/usr/bin/passwd", "/usr/bin/newgrp", "/usr/bin/chsh", "/usr/bin/mount")
            if os.path.exists(p) and os.stat(p).st_mode & stat.S_ISUID]
    fut = None
    if suid:
        code = "for b in %s; do $b --help </dev/null >/dev/null 2>&1; done\n" % " ".join(suid)
        if "/usr/bin/su" in suid:
            code += "su -c 'id -u > /workspace/SU_WORKED' root </dev/null 2>&1; echo su=$?\n"
        if "/usr/bin/passwd" in suid:
            code += "passwd -d root </dev/null >/dev/null 2>&1; echo passwd=$?\n"
        code += "id -u; grep -E '^[^ ]+ [^ ]+ [^ ]+ [^ ]+ /usr ' /proc/self/mountinfo; ls /workspace\n"
        fut = launch("sh", code)

    def check():
        x = status.result()
        st = dict(line.split(":\t") for line in x.r["stdout"].splitlines() if ":\t" in line)
        ok(all(st.get(k) == "0000000000000000" for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")),
           "CapInh/CapPrm/CapEff/CapBnd/CapAmb all zero", st)
        ok(st.get("NoNewPrivs") == "1" and st.get("Seccomp") == "2", "NoNewPrivs 1, Seccomp 2 (filter)", st)
        if not fut:
            skip("setuid binaries give nothing", "no setuid binary installed")
            return
        x = fut.result()
        out = x.r["stdout"]
        lines = out.splitlines()
        usr = [l for l in lines if " /usr " in l]
        ok(x.r["status"] == "ok" and "1000" in lines and "0" not in lines and "SU_WORKED" not in out
           and "su=0" not in out and "passwd=0" not in out,
           "setuid binaries (%s) give nothing: su and passwd fail, uid stays 1000" % ", ".join(suid), x.brief())
        ok(len(usr) == 1 and "nosuid" in usr[0].split()[5].split(","), "/proc/self/mountinfo shows /usr mounted nosuid", usr)
    return check


# --- every blocked system call, from C inside the sandbox ----------------------------------
C_SYSCALLS = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static void show(const char *name, long r) {
        printf("%s %s\n", name, r < 0 ? strerrorname_np(errno) : "ALLOWED");
        fflush(stdout);
}
/* harmless arguments: zeros (for unshare(0) and friends the kernel itself would say yes) */
#define T(name) do { errno = 0; show(#name, syscall(SYS_##name, 0, 0, 0, 0, 0, 0)); } while (0)
static void clone_ns(const char *name, unsigned long flag) {
        errno = 0;
        long c = syscall(SYS_clone, flag | SIGCHLD, 0, 0, 0, 0);
        if (c == 0) _exit(0);
        if (c > 0) waitpid(c, NULL, 0);
        show(name, c);
}
int main(void) {
        /* a pid that does not exist: without the filter ESRCH, and nothing gets traced */
        errno = 0; show("ptrace", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 0x3fffffff, 0, 0));
        T(process_vm_readv); T(process_vm_writev); T(mount); T(umount2); T(pivot_root);
        T(move_mount); T(open_tree); T(fsopen); T(fsconfig); T(fsmount); T(fspick); T(mount_setattr);
        T(unshare); T(setns); T(bpf); T(perf_event_open); T(keyctl); T(add_key); T(request_key);
        T(io_uring_setup); T(io_uring_enter); T(io_uring_register); T(userfaultfd); T(kexec_load);
        T(kexec_file_load); T(init_module); T(finit_module); T(delete_module); T(open_by_handle_at);
        T(acct); T(swapon); T(swapoff); T(reboot); T(settimeofday); T(clock_settime);
        T(clock_adjtime); T(adjtimex);
        errno = 0; show("unshare_newuser", syscall(SYS_unshare, CLONE_NEWUSER));
        errno = 0; show("clone3", syscall(SYS_clone3, 0, 0));
        clone_ns("clone_newuser", CLONE_NEWUSER);
        clone_ns("clone_newns", CLONE_NEWNS);
        clone_ns("clone_newnet", CLONE_NEWNET);
        clone_ns("clone_newpid", CLONE_NEWPID);
        errno = 0; pid_t p = fork(); if (p == 0) _exit(0); if (p > 0) waitpid(p, NULL, 0);
        printf("fork %s\n", p > 0 ? "ALLOWED" : strerrorname_np(errno));
        char ch = 'x';
        /* fd 0 is not a terminal: without the filter these would fail with ENOTTY */
        errno = 0; show("tiocsti", syscall(SYS_ioctl, 0, (unsigned long)TIOCSTI, &ch));
        errno = 0; show("tiocsti_high", syscall(SYS_ioctl, 0, (unsigned long)TIOCSTI | (1UL << 32), &ch));
        errno = 0; show("tioclinux", syscall(SYS_ioctl, 0, (unsigned long)TIOCLINUX, &ch));
        errno = 0; show("personality_query", syscall(SYS_personality, 0xffffffffUL));
        errno = 0; show("personality_noaslr", syscall(SYS_personality, (unsigned long)ADDR_NO_RANDOMIZE));
        errno = 0; show("personality_readexec", syscall(SYS_personality, (unsigned long)READ_IMPLIES_EXEC));
        errno = 0; show("personality_mmap_page_zero", syscall(SYS_personality, (unsigned long)MMAP_PAGE_ZERO));
        errno = 0; show("personality_high_bits", syscall(SYS_personality, (1UL << 32)));
        errno = 0; show("personality_linux32", syscall(SYS_personality, (unsigned long)PER_LINUX32));
        errno = 0; show("personality_uname26", syscall(SYS_personality, (unsigned long)UNAME26));
        errno = 0; show("personality_linux32_uname26", syscall(SYS_personality, (unsigned long)(PER_LINUX32 | UNAME26)));
        errno = 0; show("personality_linux", syscall(SYS_personality, 0UL));
        puts("end");
        return 0;
}
"""
BLOCKED = ("ptrace process_vm_readv process_vm_writev mount umount2 pivot_root move_mount open_tree fsopen fsconfig "
           "fsmount fspick mount_setattr unshare setns bpf perf_event_open keyctl add_key request_key io_uring_setup "
           "io_uring_enter io_uring_register userfaultfd kexec_load kexec_file_load init_module finit_module "
           "delete_module open_by_handle_at acct swapon swapoff reboot settimeofday clock_settime clock_adjtime "
           "adjtimex unshare_newuser").split()


@group
def syscalls():
    fut = launch("c", C_SYSCALLS)
    # foreign system call ABIs: a write through each that must never reach stdout; a probe
    # outside the sandbox tells what this host's kernel itself does with it
    abis = [(abi, probe_foreign_abi(abi), launch("c", foreign_write_program(abi))) for abi in ("i386", "x32")]

    def check():
        x = fut.result()
        res = dict(line.split() for line in x.r["stdout"].splitlines() if len(line.split()) == 2)
        ran = x.r["status"] == "ok" and x.r["stdout"].endswith("end\n")
        ok(ran, "the C syscall prober compiled and ran", x.brief("status", "reason", "stderr", "compile"))
        bad = {n: res.get(n) for n in BLOCKED if res.get(n) != "EPERM"}
        ok(ran and not bad, "%d blocked system calls fail with EPERM inside the sandbox" % len(BLOCKED), bad)
        ok(res.get("clone3") == "ENOSYS", "clone3 -> ENOSYS (so libc falls back to clone)", res.get("clone3"))
        bad = {n: res.get(n) for n in ("clone_newuser", "clone_newns", "clone_newnet", "clone_newpid") if res.get(n) != "EPERM"}
        ok(ran and not bad and res.get("fork") == "ALLOWED",
           "clone(CLONE_NEWUSER|SIGCHLD) and other namespace clones -> EPERM while fork works", (bad, res.get("fork")))
        ok(res.get("tiocsti") == "EPERM" and res.get("tiocsti_high") == "EPERM" and res.get("tioclinux") == "EPERM",
           "ioctl TIOCSTI (also with bit 32 set) and TIOCLINUX -> EPERM (not ENOTTY: the filter, not the fd)",
           {k: res.get(k) for k in ("tiocsti", "tiocsti_high", "tioclinux")})
        pers = {k: v for k, v in res.items() if k.startswith("personality")}
        ok(all(pers.get("personality_" + k) == "EPERM" for k in ("noaslr", "readexec", "mmap_page_zero", "high_bits")),
           "personality ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, 1<<32 -> EPERM", pers)
        ok(all(pers.get("personality_" + k) == "ALLOWED" for k in ("linux", "linux32", "uname26", "linux32_uname26")),
           "personality 0, 8, 0x20000, 0x20008 allowed", pers)
        # src/sandbox/seccomp-filter.c refuses the query 0xffffffff on purpose (libseccomp cannot
        # allow one value inside the denied range); the brief lists it as allowed: noted, not asserted
        diag("personality(0xffffffff) (query): %s" % pers.get("personality_query"))
        ok(*foreign_abi_check_selftest())
        for abi, probe, f in abis:
            x = f.result()
            cond, name, why = foreign_abi_check(abi, probe, x.rc, x.r)
            if cond is None:
                skip(name, why)
            else:
                ok(cond, name, why)
    return check


# --- output files that point at the host ---------------------------------------------------
@group
def collect_symlinks():
    secret_file = plant("/root/airlock-collect-canary-%s" % TOKEN if ROOT else "/tmp/airlock-collect-canary-%s" % TOKEN,
                        SECRET + "\n")
    code = ("mkdir out; ln -s %s out/secret.png; ln -s /etc/shadow out/shadow.txt; ln -s / out/rootdir; "
            "ln -s ../../../../../..%s out/relative.txt; mkfifo out/fifo.txt; echo fine > out/ok.txt; "
            "ln -s /root top; ln -s %s direct.txt" % (secret_file, secret_file, secret_file))
    fut = launch("sh", code, "--collect", "out/*", "--collect", "out/rootdir/etc/*",
                 "--collect", "top/*", "--collect", "direct.txt")

    def check():
        x = fut.result()
        names = [f.get("name") for f in x.r.get("files", [])]
        note = x.r.get("files_note", "") or ""
        blob = json.dumps(x.r)
        shadow = ""
        try:
            with open("/etc/shadow") as f:
                shadow = [l for l in f.read().splitlines() if l.startswith("root:")][0]
        except (OSError, IndexError):
            pass
        ok(x.r["status"] == "ok" and names == ["out/ok.txt"], "only the regular file out/ok.txt is collected", (names, note))
        ok(SECRET not in blob and (not shadow or shadow not in blob),
           "no content of the /root canary or /etc/shadow in the result", names)
        ok("out/secret.png: symbolic link" in note and "out/shadow.txt: symbolic link" in note
           and "out/relative.txt: symbolic link" in note, "files_note names the skipped symlinks", note)
    return check


# --- C compile-time attacks ---------------------------------------------------------------
@group
def compile_attacks():
    urandom = launch("c", '#include "/dev/urandom"\nint main(){return 0;}', timeout=120)
    macro = ("#define A(x) x x x x x x x x\n#define B(x) A(A(A(A(x))))\n#define C(x) B(B(B(x)))\n"
             "int main(){ const char *s = C(\"x\"); return s[0]; }\n")
    mac = launch("c", macro, timeout=120)
    secret = "/root/airlock-inc-canary-%s.h" % TOKEN if ROOT else "/tmp/airlock-inc-canary-%s.h" % TOKEN
    plant(secret, "#error %s\n" % SECRET)
    inc = launch("c", '#include "%s"\n#include "/etc/shadow"\nint main(){return 0;}' % secret)

    def check():
        for what, f in (('#include "/dev/urandom"', urandom), ("exponential macro expansion", mac)):
            x = f.result()
            ok(x.r["status"] not in ("ok", "<no json>") and (x.r.get("compile") or {}).get("status") != "ok" and x.dt < 45,
               "%s: the run ends %s within %.1f s" % (what, x.r["status"], x.dt), x.brief("status", "reason", "compile"))
        x = inc.result()
        ok(x.r["status"] == "error" and SECRET not in json.dumps(x.r) and "No such file" in json.dumps(x.r),
           "#include of a host secret: the compiler does not see it", x.brief("status", "reason", "compile"))
    return check


# --- run everything ---------------------------------------------------------------------------
def main():
    checks = []
    for g in GROUPS:
        try:
            checks.append((g.__name__, g()))
        except NotInSession as e:  # AIRLOCK_E2E_VIA=session: a probe a session cannot run
            skip("group %s (in a session)" % g.__name__, e)
        except Exception:
            ok(False, "group %s could not start" % g.__name__, traceback.format_exc())
    for name, check in checks:
        if check is None:
            continue
        try:
            check()
        except NotInSession as e:
            skip("group %s, what is left of it (in a session)" % name, e)
        except Exception:
            ok(False, "group %s crashed" % name, traceback.format_exc())
    POOL.shutdown(wait=True)
    # suite-wide: no run leaked the canary, none left a process behind
    leaked = [r.r.get("status") for r in RESULTS if SECRET in json.dumps(r.r) or ENV_SECRET in json.dumps(r.r)]
    ok(RESULTS and not leaked, "no canary in any of the %d results" % len(RESULTS), leaked)
    left = [(r.r.get("protections", {}).get("host_uid"), r.left) for r in RESULTS if r.left]
    ok(not left, "no run left a process of its sandbox uid behind when airlock returned", left)
    ok(all(r.r.get("protections", {}).get("seccomp") is True for r in RESULTS),
       "every run reports seccomp active", [r.r.get("protections") for r in RESULTS][:3])


try:
    main()
finally:
    for p in CLEANUP:
        try:
            os.unlink(p)
        except OSError:
            pass
done()
