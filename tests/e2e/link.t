#!/usr/bin/python3
"""What the binary loads at start: `airlock --version` and `airlock run`
must not pay for the server's HTTP library (libmicrohttpd and its TLS
stack), which only `airlock serve` loads, with dlopen(). A user checks it
with ldd; and on a host where libmicrohttpd cannot be loaded, run still
works and serve says which package is missing."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from tap import ok, skip, done, diag  # noqa: E402
from airlock import BIN  # noqa: E402

MHD = "libmicrohttpd.so.12"
# the server's library and what it brings: none is mapped at start
SERVER_ONLY = [MHD, "libgnutls", "libp11-kit", "libnettle", "libhogweed", "libgmp",
               "libidn2", "libunistring", "libtasn1", "libffi", "libcurl"]

# --- what the loader maps (ldd) ----------------------------------------------
# LD_TRACE_LOADED_OBJECTS is what ldd sets: the loader lists and exits
p = subprocess.run([BIN], env=dict(os.environ, LD_TRACE_LOADED_OBJECTS="1"),
                   capture_output=True, text=True, timeout=30)
libs = [ln.split()[0] for ln in p.stdout.splitlines() if ln.strip()]
diag("loaded at start: " + " ".join(libs))
ok(p.returncode == 0 and libs, "the loader lists what airlock loads at start", p.stderr)
ok(not [x for x in libs if any(x.startswith(s) for s in SERVER_ONLY)],
   "no server or HTTP library is loaded at start (libmicrohttpd, gnutls, libcurl, ...)", libs)

# --- a host where libmicrohttpd cannot be loaded -----------------------------
# A private mount namespace with /dev/null over the library: the file is
# there but is no library, as for a broken or half-removed install.
so = None
for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
    if os.path.exists(os.path.join(d, MHD)):
        so = os.path.realpath(os.path.join(d, MHD))
        break


def hidden(*argv):
    """ARGV with the library hidden: (CompletedProcess or None, stderr or why)."""
    sh = 'mount --make-rprivate / && mount --bind /dev/null "$1" && shift && exec "$@"'
    try:
        q = subprocess.run(["unshare", "-m", "sh", "-c", sh, "sh", so] + list(argv),
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    return q, q.stderr


NAMES = ("--version works without libmicrohttpd", "run works without libmicrohttpd",
         "serve without libmicrohttpd exits 8 and names the package")
reason = None
if os.geteuid() != 0:
    reason = "not root: cannot make a mount namespace to hide the library"
elif not so:
    reason = "%s not found on this host" % MHD
else:
    probe, why = hidden("true")
    if probe is None or probe.returncode != 0:
        reason = "cannot hide the library here (unshare -m, mount --bind): " + why.strip()
if reason:
    for name in NAMES:
        skip(name, reason)
else:
    q, _ = hidden(BIN, "--version")
    ok(q is not None and q.returncode == 0 and q.stdout.startswith("airlock "),
       NAMES[0], q and (q.returncode, q.stdout, q.stderr))
    q, _ = hidden(BIN, "run", "--no-audit", "--lang", "sh", "-c", "echo hi")
    ok(q is not None and q.returncode == 0 and q.stdout == "hi\n",
       NAMES[1], q and (q.returncode, q.stdout, q.stderr))
    q, _ = hidden(BIN, "serve", "--listen", "127.0.0.1:0")
    ok(q is not None and q.returncode == 8
       and MHD + " cannot be loaded (Debian: apt-get install libmicrohttpd12)" in q.stderr,
       NAMES[2], q and (q.returncode, q.stdout, q.stderr))

done()
