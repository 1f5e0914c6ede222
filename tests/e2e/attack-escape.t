#!/usr/bin/python3
"""Attack suite, part 1: getting out. Each case runs hostile code inside
airlock and then looks at the HOST: listeners that must stay silent, canaries
that must not leak, host files whose bytes and timestamps must not change,
host processes that must survive, other sandboxes that must not be reached.
Covers the issue's required attacks and harder variants of them; the
final ok line checks that none of this file's runs left a process behind."""
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, skip, done, diag  # noqa: E402
from airlock import BIN, VIA, NotInSession, driver_fd, run, run_or_why, warm_stop  # noqa: E402
from host import (become_subreaper, descendants, leftovers, parallel,  # noqa: E402
                  run_measured, short, wait_until)
from hostprobe import foreign_write_program, host_c, probe_foreign_abi, foreign_abi_check  # noqa: E402

ROOT = os.geteuid() == 0
TOKEN = secrets.token_hex(6)


def canary(tag):
    return "airlock-canary-%s-%s" % (tag, secrets.token_hex(12))


# ============================================================== network
class Listener:
    """A host socket that records every contact (connection or datagram)."""

    def __init__(self, family, kind, addr):
        self.hits = []
        self.s = socket.socket(family, kind)
        if family != socket.AF_UNIX:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            self.s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.s.bind(addr)
        if kind == socket.SOCK_STREAM:
            self.s.listen(16)
        self.s.settimeout(0.1)
        self.kind = kind
        self.addr = self.s.getsockname()
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop:
            try:
                if self.kind == socket.SOCK_DGRAM:
                    self.hits.append(self.s.recvfrom(100))
                else:
                    c, a = self.s.accept()
                    self.hits.append((a, c.recv(100)))
                    c.close()
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.t.join()
        self.s.close()


def host_addresses():
    """Non-loopback addresses of this host (v4 and v6)."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [a for a in out.split() if not a.startswith(("127.", "::1", "fe80"))]


def case_network():
    res = []
    lis = {}
    lis["tcp_any"] = Listener(socket.AF_INET, socket.SOCK_STREAM, ("0.0.0.0", 0))
    port_any = lis["tcp_any"].addr[1]
    lis["udp_any"] = Listener(socket.AF_INET, socket.SOCK_DGRAM, ("0.0.0.0", port_any))
    have_v6 = socket.has_ipv6 and os.path.exists("/proc/net/if_inet6")
    if have_v6:
        try:
            lis["tcp6"] = Listener(socket.AF_INET6, socket.SOCK_STREAM, ("::", port_any))
            lis["udp6"] = Listener(socket.AF_INET6, socket.SOCK_DGRAM, ("::", port_any))
        except OSError as e:
            have_v6 = False
            diag("no IPv6 listener: %s" % e)
    upath = "/tmp/airlock-e2e-%s.sock" % TOKEN
    lis["unix_path"] = Listener(socket.AF_UNIX, socket.SOCK_STREAM, upath)
    os.chmod(upath, 0o777)
    uabs = "\0airlock-e2e-abs-%s" % TOKEN
    lis["unix_abs"] = Listener(socket.AF_UNIX, socket.SOCK_STREAM, uabs)
    uabs_dgram = "\0airlock-e2e-absd-%s" % TOKEN
    lis["unix_abs_dgram"] = Listener(socket.AF_UNIX, socket.SOCK_DGRAM, uabs_dgram)
    addrs = host_addresses()
    diag("network: host port %d, host addresses %s, IPv6 %s" % (port_any, addrs, have_v6))

    py = r"""
import errno, json, socket
PORT, ADDRS, UPATH, UABS, UABSD = %d, %r, %r, %r, %r
res = {}
def tryit(name, f):
    try:
        res[name] = f() or "CONNECTED"
    except OSError as e:
        res[name] = errno.errorcode.get(e.errno, type(e).__name__) if e.errno else type(e).__name__
def tcp(host, fam=socket.AF_INET):
    def f():
        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(2); s.connect((host, PORT)); s.send(b"leak")
    return f
def udp(host, fam=socket.AF_INET):
    def f():
        s = socket.socket(fam, socket.SOCK_DGRAM)
        for _ in range(3): s.sendto(b"leak", (host, PORT))
        s.settimeout(0.3)
        try: s.recv(10)
        except socket.timeout: return "sent-no-answer"
        return "ANSWERED"
    return f
for i, a in enumerate(ADDRS):
    fam = socket.AF_INET6 if ":" in a else socket.AF_INET
    tryit("tcp_host%%d" %% i, tcp(a, fam)); tryit("udp_host%%d" %% i, udp(a, fam))
tryit("tcp_lo", tcp("127.0.0.1")); tryit("tcp_lo6", tcp("::1", socket.AF_INET6))
tryit("udp_lo", udp("127.0.0.1")); tryit("udp_lo6", udp("::1", socket.AF_INET6))
tryit("udp_bcast", udp("255.255.255.255"))
def unix_path():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(UPATH)
def unix_abs():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(UABS); s.send(b"leak")
def unix_absd():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b"leak", UABSD)
tryit("unix_path", unix_path); tryit("unix_abs", unix_abs); tryit("unix_absd", unix_absd)
# the same port is free in here: a network namespace of its own
def own_port():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", PORT)); s.listen(1)
    c = socket.create_connection(("127.0.0.1", PORT), timeout=2); c.close()
    return "own-loopback-works"
tryit("own_port", own_port)
res["ifaces"] = ",".join(n for _, n in socket.if_nameindex())
def raw():
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def packet():
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
def dns():
    return "RESOLVED " + str(socket.getaddrinfo("example.com", 80)[0][4])
tryit("raw", raw); tryit("packet", packet)
try:
    res["dns"] = dns()
except OSError as e:
    res["dns"] = type(e).__name__ + ":" + str(e.errno)
def netlink_route():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0); s.close(); return "netlink-ok"
tryit("netlink", netlink_route)
print(json.dumps(res))
""" % (port_any, addrs, upath, uabs, uabs_dgram)
    js = r"""
const net = require('net'), dns = require('dns'), dgram = require('dgram');
const PORT = %d, ADDRS = %s;
const res = {};
const tries = [];
for (const h of ['127.0.0.1', ...ADDRS]) tries.push(new Promise(done => {
  const s = net.connect({host: h, port: PORT, timeout: 2000});
  s.on('connect', () => { res['node_tcp_' + h] = 'CONNECTED'; s.write('leak'); s.end(); done(); });
  s.on('error', e => { res['node_tcp_' + h] = e.code; done(); });
  s.on('timeout', () => { res['node_tcp_' + h] = 'TIMEOUT'; s.destroy(); done(); });
}));
tries.push(new Promise(done => dns.lookup('example.com', (e, a) => { res.node_dns = e ? e.code : 'RESOLVED ' + a; done(); })));
tries.push(new Promise(done => {
  const s = dgram.createSocket('udp4');
  s.send('leak', PORT, '127.0.0.1', e => { res.node_udp = e ? e.code : 'sent'; s.close(); done(); });
}));
Promise.all(tries).then(() => console.log(JSON.stringify(res)));
""" % (port_any, json.dumps(addrs))
    (rc, r), (rc2, r2) = parallel(lambda a: run(*a), [("python", py, "--timeout", "20"),
                                                      ("node", js, "--timeout", "20")], 2)
    # give any datagram that did get out time to arrive, then stop listening
    time.sleep(0.3)
    for l in lis.values():
        l.close()
    os.unlink(upath)
    try:
        out = json.loads(r["stdout"])
    except (ValueError, KeyError):
        out = {}
    try:
        out2 = json.loads(r2["stdout"])
    except (ValueError, KeyError):
        out2 = {}
    diag("network (python): %s" % out)
    diag("network (node): %s" % out2)
    hits = {k: l.hits for k, l in lis.items() if l.hits}
    res.append((r.get("status") == "ok" and out and not hits
                and not any(v in ("CONNECTED", "ANSWERED") for v in out.values()),
                "IPv4/IPv6 TCP+UDP to host listeners on loopback and on %s: all fail, the host "
                "listeners saw nothing" % (",".join(addrs) or "no other address"),
                {"hits": hits, "inside": out, "r": short(r)}))
    res.append((out.get("raw") == "EPERM" and out.get("packet") == "EAFNOSUPPORT"
                and not str(out.get("dns", "RESOLVED")).startswith("RESOLVED"),
                "raw (AF_INET SOCK_RAW) sockets refused with EPERM, packet (AF_PACKET) sockets with "
                "EAFNOSUPPORT by the seccomp filter; DNS lookup fails (%s)" % out.get("dns"), out))
    res.append((out.get("unix_path") in ("ENOENT", "ECONNREFUSED", "EACCES") and not lis["unix_path"].hits,
                "a unix socket in host /tmp is not reachable (%s)" % out.get("unix_path"), out))
    res.append((out.get("unix_abs") not in (None, "CONNECTED") and out.get("unix_absd") not in (None, "CONNECTED")
                and not lis["unix_abs"].hits and not lis["unix_abs_dgram"].hits,
                "abstract unix sockets of the host (stream and datagram) are unreachable", out))
    res.append((out.get("own_port") == "own-loopback-works" and out.get("ifaces") == "lo",
                "inside: only 'lo', and the host's busy port is free there (a network namespace of its own)",
                out))
    res.append((r2.get("status") == "ok" and out2 and not any(v == "CONNECTED" for v in out2.values())
                and out2.get("node_dns") != "RESOLVED" and not str(out2.get("node_dns", "")).startswith("RESOLVED")
                and not hits,
                "node: TCP to the host, UDP and DNS all fail; listeners silent", {"inside": out2, "r": short(r2)}))
    return res


# ============================================================== socket families
C_SOCKETS = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
static void show(const char *name, long fd) {
        printf("%s %s\n", name, fd < 0 ? strerrorname_np(errno) : "MADE");
        if (fd >= 0) close((int)fd);
}
#define S(name, fam, type, proto) do { errno = 0; show(name, syscall(SYS_socket, (long)(fam), type, proto)); } while (0)
static void pair(const char *name, int fam, int type, int proto) {
        int sv[2] = {-1, -1};
        errno = 0;
        int r = socketpair(fam, type, proto, sv);
        show(name, r < 0 ? -1 : sv[0]);
        if (r == 0) close(sv[1]);
}
int main(void) {
        /* refused families, each with a type its kernel code accepts */
        S("vsock", 40, SOCK_STREAM, 0);           S("vsock_dgram", 40, SOCK_DGRAM, 0);
        S("alg", 38, SOCK_SEQPACKET, 0);          S("packet", 17, SOCK_RAW, 0x0300);
        S("packet_dgram", 17, SOCK_DGRAM, 0);     S("bluetooth", 31, SOCK_RAW, 1);
        S("xdp", 44, SOCK_RAW, 0);                S("key", 15, SOCK_RAW, 2);
        S("tipc", 30, SOCK_RDM, 0);               S("rds", 21, SOCK_SEQPACKET, 0);
        S("can", 29, SOCK_RAW, 1);                S("llc", 26, SOCK_DGRAM, 0);
        S("nfc", 39, SOCK_SEQPACKET, 0);          S("qipcrtr", 42, SOCK_DGRAM, 0);
        S("smc", 43, SOCK_STREAM, 0);             S("kcm", 41, SOCK_DGRAM, 0);
        S("mctp", 45, SOCK_DGRAM, 0);             S("appletalk", 5, SOCK_DGRAM, 0);
        S("ax25", 3, SOCK_SEQPACKET, 0);          S("x25", 9, SOCK_SEQPACKET, 0);
        S("ieee802154", 36, SOCK_RAW, 0);         S("phonet", 35, SOCK_DGRAM, 0);
        S("rxrpc", 33, SOCK_DGRAM, 2);            S("pppox", 24, SOCK_STREAM, 0);
        S("unspec", 0, SOCK_STREAM, 0);           S("future_46", 46, SOCK_STREAM, 0);
        S("vsock_high_bits", (1L << 32) | 40, SOCK_STREAM, 0);
        pair("pair_vsock", 40, SOCK_STREAM, 0);   pair("pair_tipc", 30, SOCK_SEQPACKET, 0);
        /* SOCK_PACKET on AF_INET: the kernel makes it an AF_PACKET socket
         * (with a protocol such as htons(ETH_P_ALL) the protocol rule
         * refuses it first, with EPROTONOSUPPORT) */
        S("inet_sock_packet", AF_INET, SOCK_PACKET, 0);
        /* inet protocols a run does not need: rare code, modules loaded on demand */
        S("ipp_sctp", AF_INET, SOCK_STREAM, 132);   S("ipp_sctp6", AF_INET6, SOCK_SEQPACKET, 132);
        S("ipp_dccp", AF_INET, SOCK_DCCP, 33);      S("ipp_mptcp", AF_INET, SOCK_STREAM, 262);
        S("ipp_udplite", AF_INET, SOCK_DGRAM, 136); S("ipp_l2tp", AF_INET, SOCK_DGRAM, 115);
        S("ipp_tcp_high_bits", AF_INET, SOCK_STREAM, (1L << 32) | 6);
        /* netlink: only NETLINK_ROUTE */
        S("nl_audit", AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
        S("nl_uevent", AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT);
        S("nl_connector", AF_NETLINK, SOCK_RAW, NETLINK_CONNECTOR);
        S("nl_generic", AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
        S("nl_sock_diag", AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG);
        S("nl_xfrm", AF_NETLINK, SOCK_RAW, NETLINK_XFRM);
        S("nl_netfilter", AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
        S("nl_selinux", AF_NETLINK, SOCK_RAW, NETLINK_SELINUX);
        S("nl_crypto", AF_NETLINK, SOCK_RAW, NETLINK_CRYPTO);
        pair("pair_nl_audit", AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
        /* what a run needs */
        S("ok_unix", AF_UNIX, SOCK_STREAM, 0);    S("ok_unix_dgram", AF_UNIX, SOCK_DGRAM, 0);
        S("ok_inet", AF_INET, SOCK_STREAM, 0);    S("ok_inet_dgram", AF_INET, SOCK_DGRAM, 0);
        S("ok_inet6", AF_INET6, SOCK_STREAM, 0);  S("ok_nl_route", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
        S("ok_inet_tcp", AF_INET, SOCK_STREAM, 6); S("ok_inet6_udp", AF_INET6, SOCK_DGRAM, 17);
        pair("ok_pair_unix", AF_UNIX, SOCK_STREAM, 0);
        puts("end END");
        return 0;
}
"""

PY_SOCKETS = r"""
import json, multiprocessing, os, socket
res = {}
def attempt(name, f):
    try:
        res[name] = f()
    except OSError as e:
        res[name] = "ERROR " + str(e)
def tcp(fam, host):
    s = socket.socket(fam, socket.SOCK_STREAM); s.bind((host, 0)); s.listen(1)
    c = socket.create_connection(s.getsockname()[:2], timeout=5); a, _ = s.accept()
    c.sendall(b"ping"); return a.recv(4).decode()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.sendto(b"ping", s.getsockname())
    return s.recv(4).decode()
def unix():
    a, b = socket.socketpair(); a.sendall(b"ping"); return b.recv(4).decode()
def square(x):
    return x * x
def pool():
    with multiprocessing.Pool(2) as p:
        return sum(p.map(square, range(10)))
attempt("tcp4", lambda: tcp(socket.AF_INET, "127.0.0.1"))
attempt("tcp6", lambda: tcp(socket.AF_INET6, "::1") if socket.has_ipv6 and os.path.exists("/proc/net/if_inet6") else "ping")
attempt("udp4", udp)
attempt("unix", unix)
attempt("pool", pool)
attempt("ifaces", lambda: ",".join(n for _, n in socket.if_nameindex()))
attempt("localhost", lambda: sorted({a[4][0] for a in socket.getaddrinfo("localhost", 80, flags=socket.AI_ADDRCONFIG)})[0])
print(json.dumps(res))
"""

JS_SOCKETS = r"""
const net = require('net'), os = require('os'), fs = require('fs');
const res = {};
res.ifaces = Object.keys(os.networkInterfaces()).join(',');
try { fs.watch('/usr'); res.watch = 'WATCHING'; } catch (e) { res.watch = e.code; }
// the last value, a Promise of the end: a session's cell waits for it
new Promise(done => { const srv = net.createServer(c => c.end('pong')).listen(0, '127.0.0.1', () => {
  const c = net.connect(srv.address().port, '127.0.0.1');
  let got = '';
  c.on('data', d => got += d);
  c.on('end', () => { res.tcp = got; srv.close(); console.log(JSON.stringify(res)); done(); });
  c.on('error', e => { res.tcp = e.code; srv.close(); console.log(JSON.stringify(res)); done(); });
}); });
"""


def case_socket_families():
    import re
    names = re.findall(r'(?:S|pair)\("(\w+)"', C_SOCKETS)
    want_fams = [n for n in names if not n.startswith(("ok_", "nl_", "pair_nl_", "ipp_"))]
    want_ipp = [n for n in names if n.startswith("ipp_")]
    want_nl = [n for n in names if n.startswith(("nl_", "pair_nl_"))]
    want_ok = [n for n in names if n.startswith("ok_")]
    out = []
    (rc, r), (rc_py, r_py), (rc_js, r_js) = parallel(lambda a: run_or_why(*a), [
        ("c", C_SOCKETS, "--timeout", "20"), ("python", PY_SOCKETS, "--timeout", "30"),
        ("node", JS_SOCKETS, "--timeout", "30")], 3)
    if "not_in_session" in r:  # the C probe in session mode: its checks are skipped, python's and node's run
        out.append((None, "socket families of the C probe (in a session)", r["not_in_session"]))
        r = None
    inside = dict(l.split() for l in r.get("stdout", "").splitlines() if len(l.split()) == 2) if r else {}
    # the same program on the host, outside any sandbox: which of these the kernel itself offers
    hrc, hout = host_c(C_SOCKETS)
    host = dict(l.split() for l in hout.splitlines() if len(l.split()) == 2) if hrc == 0 else {}
    offered = sorted(k for k, v in host.items() if not k.startswith("ok_") and k != "end"
                     and v not in ("EAFNOSUPPORT", "EPROTONOSUPPORT", "ESOCKTNOSUPPORT"))
    diag("socket families inside: %s" % " ".join("%s=%s" % kv for kv in inside.items()))
    diag("the host kernel itself (outside any sandbox) offers: %s" % (" ".join(
        "%s=%s" % (k, host[k]) for k in offered) if host else hout))
    if r is not None:
        ran = r.get("status") == "ok" and inside.get("end") == "END"
        fams = {k: v for k, v in inside.items() if not k.startswith(("ok_", "nl_", "pair_nl_", "ipp_")) and k != "end"}
        bad = {k: v for k, v in fams.items() if v != "EAFNOSUPPORT"}
        out.append((ran and sorted(fams) == sorted(want_fams) and not bad,
                    "%d socket()/socketpair() calls of families other than unix/inet/inet6/netlink (vsock, AF_ALG, "
                    "AF_PACKET, Bluetooth, AF_XDP, AF_KEY, TIPC, RDS, CAN, ..., family 46, vsock with high bits "
                    "set) fail with EAFNOSUPPORT; this kernel has %d of them (outside the sandbox they do not fail "
                    "with EAFNOSUPPORT)"
                    % (len(want_fams), len([k for k in offered if k in want_fams])), bad or short(r)))
        if "vsock" in host and host["vsock"] not in ("EAFNOSUPPORT",):
            out.append((inside.get("vsock") == "EAFNOSUPPORT" and inside.get("vsock_dgram") == "EAFNOSUPPORT",
                        "vsock, which reaches the hypervisor from this VM (outside: %s), is refused inside"
                        % host["vsock"], {"inside": inside.get("vsock"), "host": host.get("vsock")}))
        else:
            out.append((None, "vsock refused where the host offers it",
                         "no vsock in this kernel (outside the sandbox: %s)" % host.get("vsock", hout)))
        nl = {k: v for k, v in inside.items() if k.startswith(("nl_", "pair_nl_"))}
        out.append((ran and sorted(nl) == sorted(want_nl) and all(v == "EPROTONOSUPPORT" for v in nl.values()),
                    "netlink other than NETLINK_ROUTE (audit, uevent, connector, generic, sock_diag, xfrm, "
                    "netfilter, selinux, crypto) fails with EPROTONOSUPPORT", nl))
        ipp = {k: v for k, v in inside.items() if k.startswith("ipp_")}
        out.append((ran and sorted(ipp) == sorted(want_ipp) and all(v == "EPROTONOSUPPORT" for v in ipp.values()),
                    "AF_INET/AF_INET6 protocols other than TCP, UDP and ICMP (SCTP, DCCP, MPTCP, UDP-Lite, L2TP; "
                    "TCP with high bits set) fail with EPROTONOSUPPORT; outside the sandbox this kernel makes: %s"
                    % (" ".join(k for k in want_ipp if host.get(k) == "MADE") or "none"), ipp))
        need = {k: v for k, v in inside.items() if k.startswith("ok_")}
        six_missing = host.get("ok_inet6") == "EAFNOSUPPORT"
        out.append((ran and sorted(need) == sorted(want_ok)
                    and all(v == "MADE" or (k == "ok_inet6" and six_missing) for k, v in need.items()),
                    "AF_UNIX (also socketpair), AF_INET, AF_INET6 and NETLINK_ROUTE sockets are still made", need))
    try:
        py = json.loads(r_py.get("stdout", ""))
    except ValueError:
        py = {}
    out.append((r_py.get("status") == "ok" and py.get("tcp4") == py.get("tcp6") == py.get("udp4") == "ping"
                and py.get("unix") == "ping" and py.get("pool") == 285 and py.get("ifaces") == "lo"
                and py.get("localhost") in ("127.0.0.1", "::1"),
                "python: TCP over 127.0.0.1 and ::1, UDP, socketpair, a multiprocessing pool, if_nameindex "
                "(netlink route: only lo) and getaddrinfo(AI_ADDRCONFIG) still work", py or short(r_py)))
    try:
        js = json.loads(r_js.get("stdout", ""))
    except ValueError:
        js = {}
    out.append((r_js.get("status") == "ok" and js.get("tcp") == "pong" and js.get("ifaces") == "lo"
                and js.get("watch") == "ENOSYS",
                "node: a loopback TCP server and client and os.networkInterfaces() work; fs.watch fails "
                "with a clean ENOSYS (no inotify) and node goes on", js or short(r_js)))
    return out


# ============================================================== inotify
C_INOTIFY = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
        errno = 0;
        int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        printf("inotify_init1 %s\n", fd < 0 ? strerrorname_np(errno) : "MADE");
#ifdef SYS_inotify_init
        errno = 0;
        long fd0 = syscall(SYS_inotify_init);
        printf("inotify_init %s\n", fd0 < 0 ? strerrorname_np(errno) : "MADE");
#else
        puts("inotify_init ENOSYS"); /* not on this architecture */
#endif
        /* the side channel: a watch on the shared read-only /usr sees every open there */
        int w = -1;
        if (fd >= 0) {
                errno = 0;
                w = inotify_add_watch(fd, "/usr/bin", IN_OPEN | IN_ACCESS);
                printf("watch_usr %s\n", w < 0 ? strerrorname_np(errno) : "MADE");
        } else {
                puts("watch_usr NO_INSTANCE");
        }
        if (w >= 0) {
                close(open("/usr/bin/env", O_RDONLY));
                char buf[4096];
                printf("saw_open %s\n", read(fd, buf, sizeof buf) > 0 ? "YES" : "NO");
        } else {
                puts("saw_open NO");
        }
        puts("end END");
        return 0;
}
"""


def case_inotify():
    rc, r = run("c", C_INOTIFY, "--timeout", "20")
    inside = dict(l.split() for l in r.get("stdout", "").splitlines() if len(l.split()) == 2)
    hrc, hout = host_c(C_INOTIFY)
    host = dict(l.split() for l in hout.splitlines() if len(l.split()) == 2) if hrc == 0 else {}
    diag("inotify inside: %s; the same program on the host: %s" % (inside, host or hout))
    return [(r.get("status") == "ok" and inside.get("end") == "END"
             and inside.get("inotify_init1") == "ENOSYS" and inside.get("inotify_init") == "ENOSYS"
             and inside.get("watch_usr") == "NO_INSTANCE" and inside.get("saw_open") == "NO",
             "inotify_init1 and inotify_init fail with ENOSYS: no watch on the shared /usr can be made "
             "(on the host the same program %s)"
             % ("watches /usr/bin and sees an open" if host.get("saw_open") == "YES" else "gets " + str(host or hout)),
             {"inside": inside or short(r), "host": host or hout})]


# ============================================================== secrets
def case_inherited_fd():
    """airlock is started with an open, inheritable fd on a secret: the code
    must not find it among its fds."""
    secret = canary("fd")
    d = "/root" if ROOT else tempfile.gettempdir()
    path = os.path.join(d, "airlock-e2e-fd-%s" % TOKEN)
    with open(path, "w") as f:
        f.write(secret)
    fd = os.open(path, os.O_RDONLY)  # inheritable
    os.set_inheritable(fd, True)
    rfd, wfd = os.pipe()  # and a pipe end, as a server would hold
    os.set_inheritable(wfd, True)
    pipe_ino = os.fstat(wfd).st_ino
    code = r"""
import os
fds = sorted(int(x) for x in os.listdir('/proc/self/fd'))
print('fds', fds)
for fd in range(3, 1024):
    try:
        st = os.fstat(fd)
    except OSError:
        continue
    try:
        print('open', fd, os.readlink('/proc/self/fd/%d' % fd))
        os.lseek(fd, 0, 0)
        print('data', os.read(fd, 200))
    except OSError as e:
        print('err', fd, e)
"""
    if VIA == "session":  # what fds 0-2 are, to tell the driver's dups of them
        code += "print('std', *(os.readlink('/proc/self/fd/%d' % i) for i in (0, 1, 2)))\n"
    try:
        rc, r, dt = run_measured("python", code, pass_fds=(fd, wfd))
    finally:
        os.close(fd)
        os.close(wfd)
        os.close(rfd)
        os.unlink(path)
    blob = json.dumps(r)
    opened = [l for l in r.get("stdout", "").splitlines() if l.startswith("open ")]
    if VIA == "session":
        # a cell shares its driver's fds (driver_fd): those may be open
        # above 2 (pipes), and nothing else; the pipe end given to airlock
        # is recognised by its inode, the secret file by its bytes and path
        targets = [l.split(" ", 2)[1:] for l in opened]
        std = set(next((l.split()[1:] for l in r.get("stdout", "").splitlines() if l.startswith("std ")), []))
        foreign = [ft for ft in targets if not driver_fd(ft[0], ft[1], std)]
        return [(r.get("status") == "ok" and secret not in blob and path not in blob and len(std) == 3
                 and not foreign and "pipe:[%d]" % pipe_ino not in blob,
                 "an inheritable fd on a secret (and a pipe end) given to airlock do not reach the code "
                 "(fds above 2 inside: %s, the driver's own)" % (" ".join(f for f, t in targets) or "none"),
                 {"foreign": foreign, "r": short(r)})]
    return [(r.get("status") == "ok" and secret not in blob and path not in blob and "pipe:" not in blob,
             "an inheritable fd on a secret (and a pipe end) given to airlock do not reach the code "
             "(fds above 2 inside: %s)" % (" ".join(l.split()[1] for l in opened) or "none"), short(r))]


def case_argv():
    """The host path of an input file is the caller's business: it must not be
    readable inside (e.g. in /proc/1/cmdline, the supervisor's argv)."""
    secret = canary("argv")
    d = tempfile.mkdtemp(prefix="e2e-%s-" % secret)
    src = os.path.join(d, "input.txt")
    with open(src, "w") as f:
        f.write("harmless\n")
    code = r"""
import os
for p in sorted(os.listdir('/proc')):
    if p.isdigit():
        for k in ('cmdline', 'environ', 'comm'):
            try:
                print(p, k, open('/proc/%s/%s' % (p, k), 'rb').read().replace(b'\0', b' '))
            except OSError as e:
                print(p, k, 'unreadable', e.errno)
print(open('in.txt').read())
"""
    try:
        rc, r = run("python", code, "--file", "in.txt=" + src, "--stdin", src)
    finally:
        shutil.rmtree(d)
    leaks = [l for l in r.get("stdout", "").splitlines() if secret in l]
    return [(r.get("status") == "ok" and "harmless" in r.get("stdout", "") and not leaks,
             "host paths in airlock's own command line (--file, --stdin) are not visible inside",
             leaks or short(r))]


def case_env_all_languages():
    secret = canary("env")
    env = dict(os.environ, AIRLOCK_E2E_SECRET=secret, AWS_SECRET_ACCESS_KEY=secret,
               BASH_ENV="/root/%s.sh" % secret, PYTHONPATH="/root/%s" % secret,
               PYTHONSTARTUP="/root/%s.py" % secret)
    progs = [
        ("python", "import os\nfor k, v in sorted(os.environ.items()): print(k + '=' + v)\n"
                   "print(open('/proc/self/environ').read())"),
        ("node", "for (const [k, v] of Object.entries(process.env)) console.log(k + '=' + v);"),
        ("bash", "env; tr '\\0' '\\n' < /proc/self/environ; tr '\\0' '\\n' < /proc/$PPID/environ 2>&1; true"),
        ("sh", "env; cat /proc/1/environ 2>&1; true"),
        ("c", "#include <stdio.h>\nextern char **environ;\nint main(void){for(char**e=environ;*e;e++)puts(*e);return 0;}"),
    ]
    outs = parallel(lambda p: (p[0],) + run_or_why(p[0], p[1], env=env), progs, 3)
    res = []
    bad = {}
    for lang, rc, r in outs:
        if "not_in_session" in r:  # session mode: c has no driver; the others are judged
            res.append((None, "the environment of %s (in a session)" % lang, r["not_in_session"]))
            continue
        blob = json.dumps(r)
        if r.get("status") != "ok" or secret in blob or "AIRLOCK_E2E_SECRET" in blob \
                or "AWS_SECRET" in blob or ".pyenv" in r.get("stdout", ""):
            bad[lang] = short(r)
    res.append((not bad, "canary variables (and BASH_ENV/PYTHONPATH/PYTHONSTARTUP, the host PATH) in "
                "airlock's environment reach none of %s" % ", ".join(
                    lang for lang, rc, r in outs if "not_in_session" not in r), bad))
    return res


def case_other_sandbox():
    """Sandbox A keeps a secret and an abstract socket; sandbox B, running at
    the same time, hunts for them and kills everything it can see. A must
    finish normally and untouched; B must find nothing."""
    secret = canary("peer")
    marker = "airlock-e2e-peer-%s" % TOKEN
    a_code = r"""
import os, socket, time
SECRET, MARK = %r, %r
for p in ('/workspace/secret', '/tmp/secret', '/dev/shm/secret'):
    open(p, 'w').write(SECRET)
# the host cannot create files in here (its uid is not mapped): it writes to this one
open('/tmp/ctl', 'w').close(); os.chmod('/tmp/ctl', 0o666)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind('\0' + MARK); s.listen(1); s.setblocking(False)
open('/workspace/ready', 'w').write('1')
accepted = 0
deadline = time.time() + 20
stop = lambda: os.path.getsize('/tmp/ctl') > 0
while time.time() < deadline and not stop():
    try:
        s.accept(); accepted += 1
    except BlockingIOError:
        time.sleep(0.02)
print('A-done', 'accepted=%%d' %% accepted, 'stopped' if stop() else 'deadline')
""" % (secret, marker)
    b_code = r"""
import os, signal, socket
# (reversed, so that this code and its command line do not hold the secret)
SECRET, MARK = %r[::-1], %r[::-1]
found = []
for root in ('/', ):
    for dp, dn, fn in os.walk(root):
        # (not /dev: reading /dev/stdout would wait for ourselves)
        if dp.startswith(('/proc', '/sys', '/usr')) or (dp.startswith('/dev') and not dp.startswith('/dev/shm')):
            dn[:] = [d for d in dn if dp == '/dev' and d == 'shm']
            continue
        for n in fn:
            p = os.path.join(dp, n)
            try:
                if SECRET.encode() in open(p, 'rb').read(1 << 20): found.append(p)
            except OSError:
                pass
pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
for p in pids:
    try:
        if SECRET.encode() in open('/proc/%%d/cmdline' %% p, 'rb').read(): found.append('cmdline %%d' %% p)
    except OSError:
        pass
try:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect('\0' + MARK); found.append('socket')
except OSError:
    pass
for p in pids:
    if p != os.getpid():
        try: os.kill(p, signal.SIGKILL)
        except OSError: pass
try: os.kill(-1, signal.SIGKILL)
except OSError: pass
print('B pids', len(pids), 'found', found)
""" % (secret[::-1], marker[::-1])
    box = {}
    ta = threading.Thread(target=lambda: box.update(a=run_measured("python", a_code, "--timeout", "30")))
    ta.start()

    def a_ready():
        for pid in descendants(os.getpid()):
            if os.path.exists("/proc/%d/root/workspace/ready" % pid):
                return pid
        return None
    apid = wait_until(a_ready, 15)
    if apid:
        box["b"] = run_measured("python", b_code, "--timeout", "30")
        try:  # the host (root) reaches into A to tell it to stop
            with open("/proc/%d/root/tmp/ctl" % apid, "a") as f:
                f.write("1")
        except OSError as e:
            diag("cannot stop A: %s" % e)
    ta.join(40)
    if not apid:
        return [(False, "concurrent sandboxes cannot see or reach each other", "sandbox A never got ready: %s"
                 % short(box.get("a", (0, {}, 0))[1]))]
    _, ra, _ = box["a"]
    _, rb, _ = box["b"]
    ua = ra.get("protections", {}).get("host_uid")
    ub = rb.get("protections", {}).get("host_uid")
    return [(ra.get("status") == "ok" and "A-done accepted=0 stopped" in ra.get("stdout", "")
             and rb.get("status") == "ok" and "found []" in rb.get("stdout", "") and secret not in json.dumps(rb)
             and ua is not None and (ua != ub or not ROOT),  # as root, each run has a uid of its own
             "a concurrent sandbox finds no file, socket or process of another, and its kill -1 "
             "leaves the other running (host uids %s, %s)" % (ua, ub), {"A": short(ra), "B": short(rb)})]


def case_canary_files():
    """Secrets planted in the host's /root and /etc (and /home, /var/tmp,
    /srv when present): not by path, not by search, not anywhere in the
    result."""
    secret = canary("file")
    planted = []
    for d in ("/root", "/etc", "/home", "/var/tmp", "/srv", "/opt"):
        if os.path.isdir(d) and os.access(d, os.W_OK):
            p = os.path.join(d, "airlock-e2e-canary-%s" % TOKEN)
            with open(p, "w") as f:
                f.write(secret + "\n")
            os.chmod(p, 0o644)
            planted.append(p)
    if not any(p.startswith(("/root/", "/etc/")) for p in planted):
        for p in planted:
            os.unlink(p)
        return [(None, "canary secrets in /root and /etc stay unreadable", "cannot write /root or /etc (not root)")]
    code = r"""
import os
for p in %r:
    for attempt in (p, '/proc/1/root' + p, '/proc/self/root' + p, '/workspace/../..' + p):
        try:
            print('READ', attempt, open(attempt).read())
        except OSError as e:
            print('no', attempt, e.strerror)
for root in ('/', '/proc/self/cwd'):
    for dp, dn, fn in os.walk(root):
        if dp.startswith(('/proc', '/sys', '/usr', '/dev')):
            dn[:] = []
        for n in fn:
            if 'airlock-e2e-canary' in n:
                print('FOUND', os.path.join(dp, n))
""" % planted
    try:
        rc, r = run("python", code, "--timeout", "30")
        rc2, r2 = run("sh", "cat %s 2>&1; ls -la /root /home /etc 2>&1 | grep -c canary" % " ".join(planted))
    finally:
        for p in planted:
            os.unlink(p)
    blob = json.dumps(r) + json.dumps(r2)
    return [(r.get("status") == "ok" and "READ" not in r.get("stdout", "") and "FOUND" not in r.get("stdout", "")
             and secret not in blob and r2.get("stdout", "").strip().endswith("0"),
             "canary files in %s: not readable by path (also via /proc/*/root), not found by search, "
             "not in any part of the result" % ", ".join(os.path.dirname(p) for p in planted),
             {"python": short(r), "sh": short(r2)})]


# ============================================================== host files
def stat_kind(mode):
    import stat
    return stat.S_IFMT(mode)


def fingerprint(paths):
    fp = {}
    for p in paths:
        try:
            st = os.lstat(p)
            h = ""
            if p.startswith("/dev/"):  # a device: its kind and number are what matter
                fp[p] = (stat_kind(st.st_mode), st.st_rdev)
                continue
            if os.path.isfile(p) and not os.path.islink(p) and st.st_size < (64 << 20):
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
            elif os.path.isdir(p):
                h = ",".join(sorted(os.listdir(p)))
            fp[p] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns, h)
        except OSError as e:
            fp[p] = ("missing", e.errno)
    for p in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname", "/proc/sys/kernel/modprobe",
              "/proc/sys/vm/overcommit_memory"):
        try:
            with open(p) as f:
                fp[p] = f.read()
        except OSError:
            pass
    return fp


def case_host_files():
    py3 = os.path.realpath("/usr/bin/python3")
    # (not /etc itself: other cases plant canaries there at the same time)
    victims = ["/usr/bin/true", py3, "/usr/bin", "/usr/lib", "/usr/share", "/etc/ld.so.cache",
               "/etc/alternatives", "/etc/passwd", "/etc/shadow", "/etc/group", "/dev/null", "/",
               "/usr/bin/su", "/usr/bin/passwd"]
    host_tmp = "/tmp/airlock-e2e-victim-%s" % TOKEN
    with open(host_tmp, "w") as f:
        f.write("victim\n")
    os.chmod(host_tmp, 0o666)
    victims.append(host_tmp)
    before = fingerprint(victims)
    code = r"""
# host /tmp: the sandbox has a /tmp of its own, so these must not touch the host's
echo pwned > %s; rm -f %s; echo pwned > /tmp/airlock-e2e-new-%s
for f in /usr/bin/true %s /etc/ld.so.cache /etc/passwd /etc/shadow /etc/hostname; do
  : > "$f"; echo x >> "$f"; chmod 777 "$f"; chown 1000 "$f"; touch -d 2001-01-01 "$f"
  ln "$f" /workspace/hard.$$; mv "$f" "$f.moved"; rm -f "$f"
done 2>/dev/null
mkdir /usr/lib/airlock-e2e /etc/airlock-e2e /airlock-e2e 2>/dev/null
rmdir /usr/share/doc 2>/dev/null; rm -rf /usr/share/man 2>/dev/null
ln -s /workspace /etc/alternatives/airlock-e2e 2>/dev/null
touch /etc/alternatives/x /usr/bin/x 2>/dev/null
echo '|/tmp/x' > /proc/sys/kernel/core_pattern 2>/dev/null
echo /tmp/x > /proc/sys/kernel/modprobe 2>/dev/null
echo 1 > /proc/sys/vm/overcommit_memory 2>/dev/null
echo pwned > /proc/sys/kernel/hostname 2>/dev/null; hostname pwned 2>/dev/null
rm -f /dev/null 2>/dev/null; mknod /workspace/mem c 1 1 2>/dev/null && echo MKNOD
# the setuid helpers that edit /etc/passwd and /etc/shadow
echo | chsh -s /bin/sh 2>/dev/null; echo | chfn -f pwned 2>/dev/null
printf 'x\nx\n' | passwd 2>/dev/null; echo | gpasswd -a sandbox root 2>/dev/null
mount -t tmpfs none /usr 2>/dev/null && echo MOUNTED
umount -l /usr 2>/dev/null && echo UMOUNTED
for f in /usr/bin/true /etc/ld.so.cache; do [ -s "$f" ] && echo "still $f"; done
ls /etc/alternatives/airlock-e2e /usr/lib/airlock-e2e 2>/dev/null && echo CREATED
echo end
""" % (host_tmp, host_tmp, TOKEN, py3)
    rc, r = run("bash", code, "--timeout", "30")
    after = fingerprint(victims)
    changed = {p: (before.get(p), after.get(p)) for p in set(before) | set(after) if before.get(p) != after.get(p)}
    os.unlink(host_tmp)
    extra = [p for p in ("/usr/lib/airlock-e2e", "/etc/airlock-e2e", "/airlock-e2e", "/tmp/airlock-e2e-new-" + TOKEN,
                         "/etc/alternatives/airlock-e2e", "/usr/bin/x", "/etc/alternatives/x") if os.path.lexists(p)]
    out = r.get("stdout", "")
    return [(r.get("status") == "ok" and out.endswith("end\n") and "MKNOD" not in out and "MOUNTED" not in out
             and "CREATED" not in out and "still /usr/bin/true" in out and not changed and not extra,
             "truncate/chmod/chown/touch/link/rename/delete of host files (/usr, /etc, /, host /tmp), "
             "/proc/sys writes, mknod, "
             "mount and the setuid passwd helpers change nothing on the host (bytes, modes, times)",
             {"changed": changed, "created": extra, "r": short(r)})]


# ============================================================== IPC persistence
def sysvipc_keys():
    keys = set()
    for kind in ("shm", "msg", "sem"):
        try:
            with open("/proc/sysvipc/" + kind) as f:
                next(f)
                for line in f:
                    keys.add((kind, line.split()[0]))
        except (OSError, StopIteration):
            pass
    return keys


def case_persistence():
    mark = "persist-%s" % TOKEN
    rc1, r1 = run("sh", "for d in /tmp /dev/shm /workspace; do echo %s > $d/%s && mkdir $d/dir-%s; done; "
                        "ls /tmp /dev/shm /workspace | grep -c %s" % (mark, mark, mark, mark))
    rc2, r2 = run("sh", "ls -A /tmp /dev/shm /workspace; cat /tmp/%s /dev/shm/%s /workspace/%s 2>&1; true"
                  % (mark, mark, mark))
    out2 = r2.get("stdout", "")
    return [(r1.get("status") == "ok" and r1.get("stdout", "").strip() == "6" and r2.get("status") == "ok"
             and out2.count("No such file") == 3 and out2.count(mark) == 3,
             "files and directories left in /tmp, /dev/shm and /workspace are gone in the next run",
             {"run1": short(r1), "run2": short(r2)})]


def case_ipc():
    key = 0x5A1E0000 + secrets.randbelow(0xFFFF)
    code = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
KEY, IPC_CREAT, IPC_EXCL = %d, 0o1000, 0o2000
mode = %r
flags = (IPC_CREAT | IPC_EXCL | 0o666) if mode == 'make' else 0
r = [libc.shmget(KEY, 4096, flags), libc.msgget(KEY, flags), libc.semget(KEY, 1, flags)]
print(mode, r, os.strerror(ctypes.get_errno()))
"""
    before = sysvipc_keys()
    rc1, r1 = run("python", code % (key, "make"))
    during_after = sysvipc_keys()
    rc2, r2 = run("python", code % (key, "look"))
    hexkey = "%d" % key
    leaked = [k for k in during_after - before if k[1] == hexkey]
    out1, out2 = r1.get("stdout", ""), r2.get("stdout", "")
    made = out1.startswith("make [") and "-1" not in out1.split("]")[0]
    return [(made and out2.startswith("look [-1, -1, -1]") and not leaked,
             "SysV shm/msg/sem objects made in one run exist in no later run and never on the host",
             {"run1": out1, "run2": out2, "host": leaked})]


# ============================================================== host processes
def case_host_processes():
    """Host processes, one of them running under the very host uid of the
    sandbox (so that only the pid namespace stands between them): the code
    learns their pids and tries kill(), pidfd_open() and kill(-1)."""
    code = r"""
import os, signal, time
# the host hands over its pids through a file we create (it cannot create any here)
open('/tmp/pids', 'w').close(); os.chmod('/tmp/pids', 0o666)
open('/tmp/host-look', 'w').close()
deadline = time.time() + 10
while os.path.exists('/tmp/host-look') and time.time() < deadline:
    time.sleep(0.01)
host = [int(x) for x in open('/tmp/pids').read().split()]
res = []
for p in host:
    try:
        os.kill(p, signal.SIGKILL); res.append('killed')
    except OSError as e:
        res.append(os.strerror(e.errno))
    try:
        fd = os.pidfd_open(p); res.append('pidfd')
    except OSError as e:
        res.append('pidfd-' + os.strerror(e.errno))
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
print(len(host), len([p for p in os.listdir('/proc') if p.isdigit()]), sorted(set(res)))
"""
    victims = []
    info = {}

    def started(pid):
        def host_side():
            for d in descendants(pid):
                look = "/proc/%d/root/tmp/host-look" % d
                if not os.path.exists(look):
                    continue
                uid = os.stat("/proc/%d" % d).st_uid
                victims.append(subprocess.Popen(["sleep", "120"]))
                if ROOT and uid != 0:
                    # the slot is ours while the run lasts: no one else's sandbox has this uid now
                    victims.append(subprocess.Popen(["sleep", "120"], user=uid, group=uid, extra_groups=[]))
                info["uid"] = uid
                with open("/proc/%d/root/tmp/pids" % d, "a") as f:
                    f.write(" ".join(str(v.pid) for v in victims))
                os.unlink(look)
                return True
            return False
        threading.Thread(target=lambda: wait_until(host_side, 10, 0.01), daemon=True).start()
    rc, r, dt = run_measured("python", code, "--timeout", "20", started=started)
    time.sleep(0.1)
    alive = [p.poll() is None for p in victims]
    for p in victims:
        p.kill()
        p.wait()
    out = r.get("stdout", "").split(None, 2)
    n_host = int(out[0]) if out and out[0].isdigit() else 0
    return [(r.get("status") == "ok" and n_host == len(victims) >= (2 if ROOT else 1) and all(alive)
             and "'killed'" not in out[2] and "'pidfd'" not in out[2] and int(out[1]) <= 3,
             "host processes (one as root, one under the sandbox's own host uid %s) cannot be signalled or "
             "pidfd-opened from inside, kill(-1) spares them, /proc inside shows %s pids"
             % (info.get("uid"), out[1] if len(out) > 1 else "?"), {"alive": alive, "r": short(r)})]


def case_privileges():
    suid = [p for p in ("/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount", "/usr/bin/newgrp", "/usr/bin/chsh",
                        "/usr/bin/gpasswd", "/usr/bin/sudo") if os.path.exists(p) and os.stat(p).st_mode & 0o4000]
    res = []
    code = r"""
for b in %s; do "$b" </dev/null >/dev/null 2>&1; done
su -c 'id -u' root </dev/null 2>&1 | head -2
newgrp root </dev/null 2>&1 | head -1
echo "uid $(id -u) euid $(id -u) gid $(id -g)"
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
awk '{print "mount", $5, $6}' /proc/self/mountinfo
""" % " ".join(suid)
    rc, r = run("bash", code)
    out = r.get("stdout", "")
    st = dict(l.split(":\t") for l in out.splitlines() if ":\t" in l)
    mounts = [l.split()[1:] for l in out.splitlines() if l.startswith("mount ")]
    usr = [m for m in mounts if m[0] == "/usr"]
    no_nosuid = [m for m in mounts if "nosuid" not in m[1].split(",")]
    if suid:
        res.append((r.get("status") == "ok" and "uid 1000 euid 1000 gid 1000" in out
                    and not any(l.strip() == "0" for l in out.splitlines())
                    and usr and "nosuid" in usr[0][1].split(",") and not no_nosuid,
                    "setuid binaries (%s) give nothing: uid stays 1000; /usr and every other mount is nosuid"
                    % ", ".join(os.path.basename(p) for p in suid), {"out": out, "not nosuid": no_nosuid}))
    else:
        res.append((None, "setuid binaries give nothing", "no setuid binary installed"))
    res.append((all(st.get(k) == "0000000000000000" for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))
                and st.get("NoNewPrivs") == "1" and st.get("Seccomp") == "2",
                "/proc/self/status: CapInh/CapPrm/CapEff/CapBnd/CapAmb all zero, NoNewPrivs 1, Seccomp 2", st))
    return res


# ============================================================== syscalls, deeper
C_SYSCALLS = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x80
#endif
static void show(const char *name, long r) {
        printf("%s %s\n", name, r < 0 ? strerrorname_np(errno) : "ALLOWED");
}
#define TRY(name, call) do { errno = 0; long r_ = (long)(call); if (r_ == 0 && !strncmp(name, "clone", 5)) _exit(0); \
        if (r_ > 0 && !strncmp(name, "clone", 5)) waitpid((pid_t)r_, NULL, 0); show(name, r_); } while (0)
int main(void) {
        static const struct { const char *n; unsigned long f; } ns[] = {
                {"NEWUSER", CLONE_NEWUSER}, {"NEWNS", CLONE_NEWNS}, {"NEWPID", CLONE_NEWPID},
                {"NEWNET", CLONE_NEWNET}, {"NEWIPC", CLONE_NEWIPC}, {"NEWUTS", CLONE_NEWUTS},
                {"NEWCGROUP", CLONE_NEWCGROUP}, {"NEWTIME", CLONE_NEWTIME}};
        char name[64];
        for (unsigned i = 0; i < sizeof ns / sizeof ns[0]; i++) {
                snprintf(name, sizeof name, "unshare_%s", ns[i].n);
                TRY(name, syscall(SYS_unshare, ns[i].f));
                if (ns[i].f == CLONE_NEWTIME) continue; /* not a clone() flag */
                snprintf(name, sizeof name, "clone_%s", ns[i].n);
                TRY(name, syscall(SYS_clone, ns[i].f | SIGCHLD, 0, 0, 0, 0));
                snprintf(name, sizeof name, "clonehi_%s", ns[i].n);
                TRY(name, syscall(SYS_clone, (1UL << 32) | ns[i].f | SIGCHLD, 0, 0, 0, 0));
        }
        TRY("clone_plain_fork", syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
        static const char *nsf[] = {"user", "mnt", "pid", "net", "ipc", "uts", "cgroup", "time"};
        for (unsigned i = 0; i < 8; i++) {
                char p[64];
                snprintf(p, sizeof p, "/proc/self/ns/%s", nsf[i]);
                int fd = open(p, O_RDONLY);
                snprintf(name, sizeof name, "setns_%s", nsf[i]);
                if (fd < 0) { printf("%s open-%s\n", name, strerrorname_np(errno)); continue; }
                TRY(name, syscall(SYS_setns, fd, 0));
                close(fd);
        }
#define LISTED(name) TRY("listed_" #name, syscall(SYS_##name, 0, 0, 0, 0, 0, 0))
        LISTED(ptrace); LISTED(process_vm_readv); LISTED(process_vm_writev); LISTED(mount); LISTED(umount2);
        LISTED(pivot_root); LISTED(move_mount); LISTED(open_tree); LISTED(fsopen); LISTED(fsconfig);
        LISTED(fsmount); LISTED(fspick); LISTED(mount_setattr); LISTED(unshare); LISTED(setns); LISTED(bpf);
        LISTED(perf_event_open); LISTED(keyctl); LISTED(add_key); LISTED(request_key); LISTED(io_uring_setup);
        LISTED(io_uring_enter); LISTED(io_uring_register); LISTED(userfaultfd); LISTED(kexec_load);
        LISTED(kexec_file_load); LISTED(init_module); LISTED(finit_module); LISTED(delete_module);
        LISTED(open_by_handle_at); LISTED(acct); LISTED(swapon); LISTED(swapoff); LISTED(reboot);
        LISTED(settimeofday); LISTED(clock_settime);
        errno = 0; long c3 = syscall(SYS_clone3, 0, 0);
        printf("clone3 %s\n", c3 < 0 ? strerrorname_np(errno) : "ALLOWED");
        TRY("mount_tmpfs", mount("none", "/tmp", "tmpfs", 0, NULL));
        TRY("mount_remount_rw", mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
        TRY("umount_tmp", umount2("/tmp", MNT_DETACH));
        TRY("ptrace_traceme", syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0));
        TRY("ptrace_attach_init", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0));
        TRY("syslog_read_all", syscall(SYS_syslog, 3, (char[64]){0}, 64));
        TRY("kcmp", syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0));
        TRY("pidfd_getfd", syscall(SYS_pidfd_getfd, 0, 0, 0));
        TRY("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/", 0, 0, 0));
        TRY("fanotify_init", syscall(SYS_fanotify_init, 0, 0));
        TRY("chroot_tmp", chroot("/tmp"));
        TRY("bpf_map_create", syscall(SYS_bpf, 0, 0, 0));
        TRY("perf_event_open", syscall(SYS_perf_event_open, 0, 0, -1, -1, 0));
        TRY("userfaultfd", syscall(SYS_userfaultfd, 0));
        TRY("io_uring_setup", syscall(SYS_io_uring_setup, 1, 0));
        TRY("keyctl_join", syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0));
        TRY("add_key", syscall(SYS_add_key, "user", "x", "y", 1, -3));
        TRY("reboot_cad_off", syscall(SYS_reboot, 0xfee1dead, 672274793, 0 /* CAD_OFF */, 0));
        TRY("settimeofday", syscall(SYS_settimeofday, 0, 0));
        TRY("clock_settime", syscall(SYS_clock_settime, 0, 0));
        TRY("adjtimex", syscall(SYS_adjtimex, 0));
        /* ioctls on a pipe: not a tty, so an allowed call says ENOTTY */
        char c = 'x';
        TRY("ioctl_tiocsti", syscall(SYS_ioctl, 1, (unsigned long)TIOCSTI, &c));
        TRY("ioctl_tiocsti_hi", syscall(SYS_ioctl, 1, (unsigned long)TIOCSTI | (1UL << 32), &c));
        TRY("ioctl_tiocsti_hi2", syscall(SYS_ioctl, 1, (unsigned long)TIOCSTI | (0xffffUL << 40), &c));
        TRY("ioctl_tioclinux", syscall(SYS_ioctl, 1, (unsigned long)TIOCLINUX, &c));
        TRY("ioctl_tioclinux_hi", syscall(SYS_ioctl, 1, (unsigned long)TIOCLINUX | (1UL << 63), &c));
        TRY("ioctl_fionread", syscall(SYS_ioctl, 0, (unsigned long)FIONREAD, &(int){0}));
        /* personality: harmless values allowed, execution-domain flags not */
        TRY("personality_0", syscall(SYS_personality, 0));
        TRY("personality_addr_no_randomize", syscall(SYS_personality, 0x0040000));
        TRY("personality_read_implies_exec", syscall(SYS_personality, 0x0400000));
        TRY("personality_mmap_page_zero", syscall(SYS_personality, 0x0100000));
        TRY("personality_hi_no_randomize", syscall(SYS_personality, (1UL << 32) | 0x0040000));
        TRY("personality_short_inode", syscall(SYS_personality, 0x1000000));
        TRY("personality_0_again", syscall(SYS_personality, 0));
        /* privileges: guarded by the kernel's own checks */
        TRY("setuid_0", syscall(SYS_setuid, 0));
        TRY("setgroups_0", syscall(SYS_setgroups, 1, (gid_t[]){0}));
        TRY("mknod_mem", mknod("/tmp/mem", S_IFCHR | 0666, makedev(1, 1)));
        TRY("sethostname", sethostname("pwned", 5));
        TRY("iopl", syscall(SYS_iopl, 3));
        TRY("ioperm", syscall(SYS_ioperm, 0x80, 1, 1));
        TRY("prctl_nnp_off", prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0));
        printf("nnp %s\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? "ON" : "OFF");
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2] = {{0}};
        syscall(SYS_capget, &h, d);
        printf("capget %s\n", (d[0].effective | d[0].permitted | d[0].inheritable |
                               d[1].effective | d[1].permitted | d[1].inheritable) ? "NONZERO" : "ZERO");
        int bset = 0;
        for (int cap = 0; cap <= 63; cap++)
                if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) bset++;
        printf("bounding %s\n", bset ? "NONZERO" : "ZERO");
        printf("end END\n");
        return 0;
}
"""


def case_syscalls():
    rc, r = run("c", C_SYSCALLS, "--timeout", "20")
    res_ = {}
    for line in r.get("stdout", "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            res_[parts[0]] = parts[1]
    diag("syscalls: %s" % " ".join("%s=%s" % kv for kv in res_.items()))
    out = []
    listed = {k[7:]: v for k, v in res_.items() if k.startswith("listed_")}
    out.append((r.get("status") == "ok" and len(listed) == 36 and all(v == "EPERM" for v in listed.values()),
                "each of the %d listed system calls (ptrace ... clock_settime) fails with EPERM" % len(listed),
                {k: v for k, v in listed.items() if v != "EPERM"} or short(r)))
    out.append((res_.get("clone3") == "ENOSYS" and res_.get("clone_NEWUSER") == "EPERM"
                and res_.get("unshare_NEWUSER") == "EPERM",
                "clone3 -> ENOSYS; unshare(CLONE_NEWUSER) and clone(CLONE_NEWUSER|SIGCHLD) -> EPERM",
                {k: res_.get(k) for k in ("clone3", "clone_NEWUSER", "unshare_NEWUSER")}))
    ns_calls = {k: v for k, v in res_.items() if k.startswith(("unshare_", "clone_NEW", "clonehi_", "setns_"))}
    out.append((r.get("status") == "ok" and res_.get("end") == "END" and len(ns_calls) == 30
                and all(v == "EPERM" for v in ns_calls.values()) and res_.get("clone_plain_fork") == "ALLOWED",
                "namespaces: unshare and clone with each CLONE_NEW* flag (also with high bits set) and setns "
                "on each /proc/self/ns file -> EPERM; a plain clone works",
                {k: v for k, v in ns_calls.items() if v != "EPERM"} or short(r)))
    eperm = ["mount_tmpfs", "mount_remount_rw", "umount_tmp", "ptrace_traceme", "ptrace_attach_init",
             "syslog_read_all", "kcmp", "pidfd_getfd", "name_to_handle_at", "fanotify_init", "chroot_tmp",
             "bpf_map_create", "perf_event_open", "userfaultfd", "io_uring_setup", "keyctl_join", "add_key",
             "reboot_cad_off", "settimeofday", "clock_settime", "adjtimex"]
    bad = {k: res_.get(k) for k in eperm if res_.get(k) != "EPERM"}
    out.append((not bad, "mount/umount/ptrace/syslog/kcmp/pidfd_getfd/handles/fanotify/chroot/bpf/perf/"
                "userfaultfd/io_uring/keyring/reboot/clock calls with real arguments -> EPERM", bad))
    tty = {k: res_.get(k) for k in ("ioctl_tiocsti", "ioctl_tiocsti_hi", "ioctl_tiocsti_hi2",
                                    "ioctl_tioclinux", "ioctl_tioclinux_hi")}
    out.append((all(v == "EPERM" for v in tty.values()) and res_.get("ioctl_fionread") == "ALLOWED",
                "TIOCSTI/TIOCLINUX refused however the high 32 bits are set; other ioctls work",
                dict(tty, ioctl_fionread=res_.get("ioctl_fionread"))))
    pers = {k: v for k, v in res_.items() if k.startswith("personality_")}
    out.append((pers.get("personality_0") == "ALLOWED" and pers.get("personality_0_again") == "ALLOWED"
                and all(v == "EPERM" for k, v in pers.items() if not k.startswith("personality_0")),
                "personality: 0 allowed; ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, MMAP_PAGE_ZERO, "
                "SHORT_INODE (also with high bits) refused", pers))
    priv = {k: res_.get(k) for k in ("setuid_0", "setgroups_0", "mknod_mem", "sethostname", "iopl", "ioperm",
                                     "prctl_nnp_off")}
    out.append((all(v not in (None, "ALLOWED") for v in priv.values())
                and res_.get("capget") == "ZERO" and res_.get("bounding") == "ZERO" and res_.get("nnp") == "ON",
                "no privilege: setuid(0), setgroups, mknod, sethostname, iopl, ioperm fail; no_new_privs "
                "stays; capget and the bounding set are all zero",
                dict(priv, capget=res_.get("capget"), bounding=res_.get("bounding"), nnp=res_.get("nnp"))))
    # foreign system call ABIs: a write through each must never reach stdout; where the host's
    # kernel has the entry (probe outside the sandbox) the filter kills with SIGSYS
    for abi in ("i386", "x32"):
        rc2, r2 = run("c", foreign_write_program(abi))
        out.append(foreign_abi_check(abi, probe_foreign_abi(abi), rc2, r2))
    # x32 numbers reach seccomp on every x86-64 kernel (before the kernel's own dispatch)
    abis = [("x32 syscall 0x40000000|165 (mount)", 'syscall(0x40000000L | 165, 0, "/tmp", "tmpfs", 0, 0); '
                                                   'puts("survived");')]
    for name, body, in abis:
        rc2, r2 = run("c", "#define _GNU_SOURCE\n#include <stdio.h>\n#include <unistd.h>\n"
                           "int main(void){%s return 0;}" % body)
        out.append((r2.get("status") == "killed" and r2.get("signal") == 31 and rc2 == 7
                    and "survived" not in r2.get("stdout", ""),
                    "%s: status killed, signal 31 (SIGSYS)" % name, short(r2)))
    return out


# ============================================================== collected files
def case_collect():
    secret = canary("collect")
    secret_dir = "/root" if ROOT else tempfile.gettempdir()
    secret_file = os.path.join(secret_dir, "airlock-e2e-collect-%s" % secrets.token_hex(6))
    with open(secret_file, "w") as f:
        f.write(secret)
    outdir = tempfile.mkdtemp(prefix="airlock-e2e-outdir-")
    victim = tempfile.mkdtemp(prefix="airlock-e2e-victim-")
    # a caller re-using an out dir that holds a symlink: writes must not follow it
    os.symlink(victim, os.path.join(outdir, "linked"))
    code = r"""
mkdir -p out/deep/er linked
ln -s %s out/secret.txt
ln -s /etc/shadow out/shadow.txt
ln -s %s out/dirlink
ln -s / out/root
ln -s %s rootlink
mkfifo out/fifo.txt
# sparse: no blocks, so it fits the disk cap; just under RLIMIT_FSIZE (64 MiB)
truncate -s 60M out/sparse.bin && echo SPARSE
echo fine > out/ok.txt
echo deeper > out/deep/er/x.txt
echo payload > linked/evil.txt
printf 'name\n' > "$(printf 'out/new\nline.txt')"
printf 'bad' > "$(printf 'out/bad\377name.txt')"
""" % (secret_file, secret_dir, secret_dir)
    try:
        rc, r, dt = run_measured("bash", code, "--collect", "out/**", "--collect", "out/*", "--collect",
                                 "rootlink/*", "--collect", "linked/*", "--collect", "out/root/etc/*",
                                 "--out-dir", outdir, timeout=120)
        host_written = []
        for dp, dn, fn in os.walk(outdir):
            for n in fn + dn:
                host_written.append(os.path.relpath(os.path.join(dp, n), outdir))
        victim_files = os.listdir(victim)
        host_links = [p for p in host_written if os.path.islink(os.path.join(outdir, p)) and p != "linked"]
    finally:
        os.unlink(secret_file)
        shutil.rmtree(outdir, ignore_errors=True)
        shutil.rmtree(victim, ignore_errors=True)
    names = sorted(f.get("name", "") for f in r.get("files", []))
    note = r.get("files_note", "") or ""
    import base64
    contents = b"".join(base64.b64decode(f.get("content_base64") or "") for f in r.get("files", []))
    blob = json.dumps(r)
    res = []
    res.append((r.get("status") == "ok" and secret not in blob and secret.encode() not in contents
                and b"root:" not in contents
                and "out/ok.txt" in names and "out/deep/er/x.txt" in names
                and not any(n.startswith(("out/secret", "out/shadow", "out/dirlink", "out/root", "rootlink"))
                            for n in names),
                "symlinks to a host file, /etc/shadow, host dirs and / in the collected tree: no host "
                "content returned, real files still are", {"names": names, "note": note, "r": short(r)}))
    res.append(("secret.txt" in note and "shadow.txt" in note and "symbolic link" in note,
                "files_note names the skipped symlinks", note))
    res.append(("SPARSE" in r.get("stdout", "") and "out/sparse.bin" not in names and "sparse.bin" in note
                and "out/fifo.txt" not in names and dt < 20,
                "a 60 MB sparse file (over the collect cap) and a FIFO in the collected dir are skipped, airlock returns "
                "in %.1f s" % dt, {"names": names, "note": note}))
    res.append((any(n.startswith("out/bad") for n in names) or "out/bad" in note,
                "a collected file whose name is not UTF-8 is returned or named in files_note, not "
                "silently dropped", {"names": names, "note": note, "on host": host_written}))
    res.append((not victim_files and not host_links and all(not p.startswith("linked/") for p in host_written),
                "--out-dir: no symlink is created on the host, and a symlink already in the out dir is "
                "not followed", {"written": host_written, "victim": victim_files}))
    return res


def case_collect_note_hiding():
    """One skipped entry with a name that is not UTF-8 must not wipe out the
    whole files_note (which would hide the other skipped symlinks)."""
    code = r"""
mkdir out
ln -s /etc/shadow out/shadow.txt
ln -s /etc/passwd "$(printf 'out/x\377.txt')"
echo fine > out/ok.txt
"""
    rc, r = run("bash", code, "--collect", "out/*")
    note = r.get("files_note") or ""
    return [(r.get("status") == "ok" and "shadow.txt" in note,
             "a symlink whose name is not UTF-8 does not erase files_note (the /etc/shadow link is "
             "still named)", {"note": r.get("files_note"), "files": [f.get("name") for f in r.get("files", [])]})]


# ============================================================== host mounts
def case_mounts():
    """A mount already below a read-only bound path (/usr/local/...) must be
    read-only inside too; a mount the host makes while the run is on must
    not appear inside at all (no propagation into the sandbox)."""
    if not ROOT or not os.path.isdir("/usr/local"):
        return [(None, "host submounts stay read-only / do not propagate", "needs root and /usr/local")]
    secret = canary("mnt")
    early = "/usr/local/e2e-submount-%s" % TOKEN
    late = "/usr/local/e2e-latemount-%s" % TOKEN
    made = []
    try:
        for d in (early, late):
            os.mkdir(d)
            made.append(d)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "e2e-submount", early]).returncode != 0:
            return [(None, "host submounts stay read-only / do not propagate", "cannot mount a tmpfs")]
        with open(early + "/file", "w") as f:
            f.write("early\n")
        os.chmod(early, 0o777)
        os.chmod(early + "/file", 0o666)
        code = r"""
import os, time
EARLY, LATE = %r, %r
res = []
def attempt(name, f):
    try:
        f(); res.append(name + ':ALLOWED')
    except OSError as e:
        res.append(name + ':' + os.strerror(e.errno))
attempt('write_early', lambda: open(EARLY + '/file', 'a').write('pwned'))
attempt('create_early', lambda: open(EARLY + '/new', 'w').write('pwned'))
opts = [l.split()[5] for l in open('/proc/self/mountinfo') if l.split()[4] == EARLY]
res.append('early_opts:' + (opts[0] if opts else 'absent'))
open('/tmp/host-look', 'w').close()
deadline = time.time() + 10
while os.path.exists('/tmp/host-look') and time.time() < deadline:
    time.sleep(0.01)
res.append('waited:' + ('host' if not os.path.exists('/tmp/host-look') else 'deadline'))
attempt('list_late', lambda: res.append('late_entries:' + ','.join(os.listdir(LATE))))
attempt('read_late', lambda: res.append('late_data:' + open(LATE + '/secret').read()))
attempt('create_late', lambda: open(LATE + '/new', 'w').write('pwned'))
print('|'.join(res))
""" % (early, late)
        state = {}

        def started(pid):
            def host_side():
                for p in descendants(pid):
                    path = "/proc/%d/root/tmp/host-look" % p
                    if os.path.exists(path):
                        # the sandbox is up: now mount something new on the host
                        ok_ = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "e2e-latemount",
                                              late]).returncode == 0
                        if ok_:
                            with open(late + "/secret", "w") as f:
                                f.write(secret)
                            os.chmod(late, 0o777)
                        state["late"] = ok_
                        try:
                            os.unlink(path)
                        except OSError:
                            pass
                        return True
                return False
            threading.Thread(target=lambda: wait_until(host_side, 10, 0.01), daemon=True).start()
        rc, r, dt = run_measured("python", code, "--timeout", "20", started=started)
        with open(early + "/file") as f:
            early_after = f.read()
        new_on_host = [p for p in (early + "/new", late + "/new") if os.path.exists(p)]
    finally:
        for d in (early, late):
            subprocess.run(["umount", d], stderr=subprocess.DEVNULL)
        for d in reversed(made):
            try:
                os.rmdir(d)
            except OSError as e:
                diag("cannot remove %s: %s" % (d, e))
    out = dict(item.split(":", 1) for item in r.get("stdout", "").strip().split("|") if ":" in item)
    res = []
    res.append((out.get("write_early") == "Read-only file system" and out.get("create_early") == "Read-only file system"
                and "ro" in out.get("early_opts", "").split(",") and "nosuid" in out.get("early_opts", "").split(",")
                and early_after == "early\n" and not new_on_host,
                "a host mount below /usr (%s) is read-only and nosuid inside too; the host file is unchanged"
                % early, {"inside": out, "host file": early_after, "r": short(r)}))
    res.append((state.get("late") and out.get("waited") == "host" and secret not in json.dumps(r)
                and out.get("late_entries") == "" and out.get("read_late") == "No such file or directory"
                and not new_on_host,
                "a mount the host makes during the run does not propagate into the sandbox",
                {"inside": out, "host mounted": state.get("late"), "r": short(r)}))
    return res


# ============================================================== controlling terminal
def case_tty():
    """airlock started on a terminal: the code must get no controlling
    terminal and no way to push input into the user's terminal."""
    import pty
    import tty
    master, slave = pty.openpty()
    tty.setraw(slave)  # raw: a single pushed byte becomes readable input at once
    code = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
int main(void) {
        for (int fd = 0; fd < 3; fd++) {
                char c = 'X';
                errno = 0;
                int r = ioctl(fd, TIOCSTI, &c);
                printf("fd%d isatty=%d tiocsti=%s\n", fd, isatty(fd), r < 0 ? strerrorname_np(errno) : "ALLOWED");
        }
        int t = open("/dev/tty", O_RDWR);
        printf("devtty=%s\n", t < 0 ? strerrorname_np(errno) : "OPENED");
        FILE *f = fopen("/proc/self/stat", "r");
        char buf[1024] = {0};
        if (f) { fread(buf, 1, sizeof buf - 1, f); fclose(f); }
        int tty_nr = -1;
        char *p = strrchr(buf, ')');
        if (p) sscanf(p + 2, "%*c %*d %*d %*d %d", &tty_nr);
        printf("tty_nr=%d\n", tty_nr);
        return 0;
}
"""
    p = subprocess.Popen([BIN, "run", "--json", "--lang", "c", "-c", code], stdin=slave,
                         stdout=subprocess.PIPE, stderr=slave)
    out, _ = p.communicate(timeout=120)
    # whatever the code managed to push into the terminal would now be input
    os.set_blocking(slave, False)
    try:
        pushed = os.read(slave, 100)
    except (BlockingIOError, OSError):
        pushed = b""
    os.close(slave)
    os.close(master)
    try:
        r = json.loads(out)
    except ValueError:
        r = {"status": "<no json>", "raw": out[-2000:]}
    o = r.get("stdout", "")
    return [(r.get("status") == "ok" and "isatty=1" not in o and "tiocsti=ALLOWED" not in o
             and "devtty=OPENED" not in o and "tty_nr=0" in o and b"X" not in pushed,
             "run from a terminal: the code has no tty on any fd, no /dev/tty, no controlling terminal, "
             "and TIOCSTI pushes nothing into the user's terminal", {"r": short(r), "pushed": pushed})]


# ============================================================== compile-time
def case_compile():
    secret = canary("cc")
    paths = []
    for d in (("/root", "/etc") if ROOT else (tempfile.gettempdir(),)):
        p = os.path.join(d, "airlock-e2e-cc-%s" % TOKEN)
        with open(p, "w") as f:
            f.write(secret + "\n")
        paths.append(p)
    def incbin_prog(files):
        incbin = "\n".join(
            '__asm__(".section .rodata\\n.global s%d\\ns%d:\\n.incbin \\"%s\\"\\n.byte 0\\n.previous");\n'
            'extern const char s%d[];' % (i, i, p, i) for i, p in enumerate(files))
        prints = "".join("puts(s%d);" % i for i in range(len(files)))
        return '#include <stdio.h>\n%s\nint main(void){%s return 0;}\n' % (incbin, prints)
    progs = [
        # the control: the same program embedding a file the compiler may see (its own source)
        ("control", incbin_prog(["/workspace/main.c"])),
        ("incbin", incbin_prog(paths)),
        ("include", "".join('#include "%s"\n' % p for p in paths) + "int main(void){return 0;}\n"),
        ("shadow", '#include "/etc/shadow"\nint main(void){return 0;}\n'),
        ("bigarray", "char big[1u << 30] = {1};\nint main(void){return big[5];}\n"),
        ("urandom", '#include "/dev/urandom"\nint main(void){return 0;}\n'),
        ("macro", "#define A(x) x x x x x x x x\n#define B(x) A(A(A(A(x))))\n#define C(x) B(B(B(x)))\n"
                  "int main(void){ const char *s = C(\"x\"); return s[0]; }\n"),
    ]
    t0 = time.monotonic()
    try:
        outs = parallel(lambda p: (p[0],) + run_measured("c", p[1], timeout=150), progs, 2)
    finally:
        for p in paths:
            os.unlink(p)
    res = []
    got = {name: (rc, r, dt) for name, rc, r, dt in outs}
    leaks = {n: short(r) for n, (rc, r, dt) in got.items() if secret in json.dumps(r)}
    nonok = {n: r.get("status") for n, (rc, r, dt) in got.items()
             if n not in ("bigarray", "control", "urandom", "macro")}
    ctl = got["control"][1]
    res.append((not leaks and all(s != "ok" for s in nonok.values())
                and ctl.get("status") == "ok" and ".incbin" in ctl.get("stdout", ""),
                "the compile sandbox cannot read host files: .incbin/#include of a canary in %s and "
                "#include \"/etc/shadow\" fail without leaking (the same .incbin of the program's own source "
                "works)" % " and ".join(os.path.dirname(p) for p in paths),
                leaks or {n: short(r) for n, (rc, r, dt) in got.items()}))
    rc, r, dt = got["bigarray"]
    res.append((r.get("status") != "ok" and dt < 60,
                "a 1 GiB initialised array is bounded by the compile sandbox (%s: %s, %.1f s)"
                % (r.get("status"), r.get("compile", {}).get("reason") or r.get("reason"), dt), short(r)))
    for n, what in (("urandom", '#include "/dev/urandom"'), ("macro", "an exponential macro expansion (8^12 tokens)")):
        rc, r, dt = got[n]
        res.append((r.get("status") not in ("ok", "<no json>") and r.get("compile", {}).get("status") != "ok"
                    and dt < 60,
                    "%s is bounded by the compile sandbox (compile %s: %s, %.1f s)"
                    % (what, r.get("compile", {}).get("status"), r.get("compile", {}).get("reason"), dt),
                    short(r)))
    diag("compile cases took %.1f s" % (time.monotonic() - t0))
    return res


# ============================================================== host identity from /proc
def host_file(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def case_host_identity():
    """What /proc tells the code about the host: uptime, boot time and
    boot_id (the run's time namespace and its own boot_id), the kernel's
    boot arguments and build configuration (masked)."""
    res = []
    code = r"""
import json, time
def rd(p):
    try:
        with open(p, 'rb') as f: return f.read().decode('latin-1')
    except OSError as e: return 'ERR ' + e.strerror
stat = rd('/proc/stat')
print(json.dumps({'uptime': float(rd('/proc/uptime').split()[0]),
                  'btime': int(stat.split('btime ')[1].split()[0]) if 'btime ' in stat else None,
                  'mono': time.clock_gettime(time.CLOCK_MONOTONIC),
                  'boot': time.clock_gettime(time.CLOCK_BOOTTIME),
                  'boot_id': rd('/proc/sys/kernel/random/boot_id'),
                  'files': {n: rd('/proc/' + n)[:300] for n in ('cmdline', 'config.gz', 'kallsyms', 'modules')},
                  'write': rd('/proc/sys/kernel/random/boot_id') and __import__('os').system(
                      'echo x > /proc/sys/kernel/random/boot_id 2>/dev/null')}))
"""
    host_up = float(host_file("/proc/uptime").split()[0])
    host_mono = time.clock_gettime(time.CLOCK_MONOTONIC)
    host_btime = int(host_file("/proc/stat").split(b"btime ")[1].split()[0])
    host_boot_id = host_file("/proc/sys/kernel/random/boot_id").decode()
    t_real, t0 = time.time(), time.monotonic()
    rcs = parallel(lambda _: run("python", code), [0, 1], 2)
    elapsed = time.monotonic() - t0
    got = []
    for rc, r in rcs:
        try:
            got.append(json.loads(r.get("stdout", "")))
        except ValueError:
            got.append({})
    rc, r = rcs[0]
    g = got[0]
    timens = os.path.exists("/proc/self/ns/time")
    claim = r.get("protections", {}).get("namespaces", {}).get("time")
    res.append((claim is timens,
                "protections.namespaces.time says %s on a host %s time namespaces" % (claim, "with" if timens else "without"),
                short(r, ("status", "protections"))))
    name = "/proc/uptime, CLOCK_MONOTONIC/BOOTTIME and /proc/stat btime inside are the run's, not the host's"
    if not timens:
        res.append((None, name, "this kernel has no time namespaces (CONFIG_TIME_NS, Linux >= 5.6)"))
    else:
        up, btime = g.get("uptime", 1e9), g.get("btime") or 0
        # the run's clocks start at a whole second at most before its
        # namespace was made, i.e. during this airlock invocation; a warm
        # run's sandbox (its time namespace with it) was made ahead, at
        # most --warm-max-age (300 s) before
        ahead = 300.0 if r.get("start") == "warm" else 0.0
        res.append((r.get("status") == "ok" and up < host_up and up <= elapsed + ahead + 1.0
                    and g.get("mono", 1e9) < host_mono and g.get("boot", 1e9) <= elapsed + ahead + 1.0
                    and btime != host_btime and btime >= int(t_real) - 2 - ahead,
                    "%s (uptime %.2f s inside vs %.0f s on the host; btime %s vs %s)"
                    % (name, up, host_up, btime, host_btime), {"inside": g, "r": short(r)}))
    ids = [x.get("boot_id", "") for x in got]
    res.append((all(len(i) == 37 and i.count("-") == 4 and i.endswith("\n") for i in ids)
                and host_boot_id not in ids and ids[0] != ids[1] and g.get("write") != 0,
                "boot_id inside is a uuid of the run's own (not the host's, not another run's), read-only",
                {"host": host_boot_id, "runs": ids, "write": g.get("write")}))
    for n in ("cmdline", "config.gz", "kallsyms", "modules"):
        host = host_file("/proc/" + n)
        inside = g.get("files", {}).get(n)
        if not host:
            res.append((None, "/proc/%s inside does not show the host's" % n,
                        "the host has no (readable) /proc/%s" % n))
            continue
        res.append((r.get("status") == "ok" and inside == "",
                    "/proc/%s inside is empty (the host's has %d bytes)" % (n, len(host)),
                    {"inside": (inside or "")[:200]}))
    return res


# ============================================================== main
cases = [case_network, case_socket_families, case_inotify, case_canary_files, case_inherited_fd, case_argv, case_env_all_languages,
         case_other_sandbox, case_host_files, case_persistence, case_ipc, case_privileges, case_host_processes, case_syscalls, case_collect,
         case_collect_note_hiding, case_mounts, case_tty, case_compile]
cases += [case_host_identity]


def guarded(fn):
    try:
        return fn()
    except NotInSession as e:  # AIRLOCK_E2E_VIA=session: a probe a session cannot run
        return [(None, "%s (in a session)" % fn.__name__, str(e))]
    except Exception:  # a crash in one case must not hide the others
        import traceback
        return [(False, "%s ran to completion" % fn.__name__, traceback.format_exc())]


t0 = time.monotonic()
if not become_subreaper():
    diag("cannot become a subreaper: leftovers of our runs may escape the final check")
results = parallel(guarded, cases, 3)
for res in results:
    for cond, name, dg in res:
        if cond is None:
            skip(name, dg)
        else:
            ok(cond, name, dg)

warm_stop()  # the warm transport's server and its ready sandboxes
left = leftovers()
ok(not left, "nothing these runs started is left on the host (no process below this test)", left)
diag("attack-escape took %.1f s" % (time.monotonic() - t0))
done()
