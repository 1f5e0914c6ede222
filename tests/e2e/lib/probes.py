"""Attack probes shared by the one-shot attack tests' ideas and sessions.t:
each is Python code for the sandbox and a check of what it printed. The
same probe runs one-shot (airlock run) and as a cell of a session, and
must fail the same way in both (a session keeps every layer of a run).

probes(ctx) -> [(name, code, check)]; check(stdout) -> (ok, why)
ctx: {"tcp_port", "udp_port", "marker", "host_pid", "canary_path"}
"""
import platform

# x86_64 system call numbers for the ctypes probe
SYSCALLS_X86_64 = {"mount": 165, "umount2": 166, "pivot_root": 155, "unshare": 272, "setns": 308,
                   "bpf": 321, "perf_event_open": 298, "keyctl": 250, "add_key": 248,
                   "io_uring_setup": 425, "userfaultfd": 323, "kexec_load": 246, "init_module": 175,
                   "open_by_handle_at": 304, "reboot": 169, "settimeofday": 164}


def _kv(out):
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def probes(ctx):
    p = []
    net = """
import socket, errno
def tryit(name, f):
    try:
        f(); print(name + "=CONNECTED")
    except socket.gaierror:
        print(name + "=GAIERROR")
    except OSError as e:
        print(name + "=" + (errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__))
def tcp():
    s = socket.create_connection(("127.0.0.1", %d), timeout=2); s.send(b"leak")
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(3): s.sendto(b"leak", ("127.0.0.1", %d))
    raise OSError(0, "sent")
def dns():
    socket.getaddrinfo("example.com", 80)
def raw():
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def packet():
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
def outside():
    socket.create_connection(("1.1.1.1", 443), timeout=2)
for n, f in (("tcp", tcp), ("udp", udp), ("dns", dns), ("raw", raw), ("packet", packet), ("outside", outside)):
    tryit(n, f)
import os
print("ifaces=" + ",".join(sorted(os.listdir("/proc/sys/net/ipv4/conf"))))
""" % (ctx["tcp_port"], ctx["udp_port"])

    def net_check(out):
        r = _kv(out)
        good = (r.get("tcp") not in (None, "CONNECTED") and r.get("dns") not in (None, "CONNECTED")
                and r.get("raw") == "EPERM" and r.get("packet") == "EAFNOSUPPORT"
                and r.get("outside") in ("ENETUNREACH", "EHOSTUNREACH") and r.get("ifaces") == "all,default,lo")
        return good, r
    p.append(("network: host loopback TCP, DNS, raw and packet sockets, the outside; only lo", net, net_check))

    priv = """
for line in open("/proc/self/status"):
    k, _, v = line.partition(":")
    if k.startswith("Cap") or k in ("NoNewPrivs", "Seccomp"):
        print(k + "=" + v.strip())
import os
print("uid=%d" % os.getuid())
"""

    def priv_check(out):
        r = _kv(out)
        good = (all(r.get(k) == "0000000000000000" for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))
                and r.get("NoNewPrivs") == "1" and r.get("Seccomp") == "2" and r.get("uid") not in (None, "0"))
        return good, r
    p.append(("privileges: no capabilities, NoNewPrivs 1, Seccomp 2, not uid 0", priv, priv_check))

    if platform.machine() == "x86_64":
        sc = """
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for name, nr in %r.items():
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0),
                     ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
    print(name + "=" + ("ALLOWED" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")))
ctypes.set_errno(0)
r = libc.syscall(ctypes.c_long(272), ctypes.c_long(0x10000000))
print("unshare_newuser=" + ("ALLOWED" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")))
ctypes.set_errno(0)
r = libc.syscall(ctypes.c_long(101), ctypes.c_long(16), ctypes.c_long(%d), ctypes.c_long(0), ctypes.c_long(0))
print("ptrace_host=" + ("ALLOWED" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")))
""" % (SYSCALLS_X86_64, ctx["host_pid"])

        def sc_check(out):
            r = _kv(out)
            bad = {k: r.get(k) for k in list(SYSCALLS_X86_64) + ["unshare_newuser", "ptrace_host"]
                   if r.get(k) != "EPERM"}
            return not bad, bad or r
        p.append(("system calls (mount, unshare, bpf, io_uring, ptrace of a host pid, ...) -> EPERM", sc, sc_check))

    files = """
import os
for path in ("/etc/shadow", %r):
    try:
        print(path + "=READ:" + open(path).read()[:40])
    except OSError as e:
        print(path + "=" + type(e).__name__)
for d in ("/usr", "/etc", "/"):
    try:
        open(os.path.join(d, "airlock-probe"), "w").write("x"); print("write" + d + "=WROTE")
    except OSError as e:
        print("write" + d + "=" + (os.strerror(e.errno) if e.errno else type(e).__name__))
""" % ctx["canary_path"]

    def files_check(out):
        r = _kv(out)
        good = (not any(v.startswith("READ:") for k, v in r.items() if k.startswith("/"))
                and len([k for k in r if k.startswith("/")]) == 2
                and all(r.get("write" + d) not in (None, "WROTE") for d in ("/usr", "/etc", "/")))
        return good, r
    p.append(("host files: /etc/shadow and a canary unreadable, /usr /etc / not writable", files, files_check))

    procs = """
import os, signal
seen = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            seen.append(open("/proc/%%s/cmdline" %% pid, "rb").read())
        except OSError:
            pass
print("marker=" + ("SEEN" if any(%r.encode() in c for c in seen) else "absent"))
print("pids=%%d" %% len(seen))
try:
    os.kill(%d, signal.SIGKILL); print("kill=KILLED")
except OSError as e:
    print("kill=" + type(e).__name__)
""" % (ctx["marker"], ctx["host_pid"])

    def procs_check(out):
        r = _kv(out)
        good = r.get("marker") == "absent" and r.get("kill") == "ProcessLookupError" and 0 < int(r.get("pids", "0")) < 30
        return good, r
    p.append(("host processes: a host process is not in /proc and cannot be signalled", procs, procs_check))
    return p
