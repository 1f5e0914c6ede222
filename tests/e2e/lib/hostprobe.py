"""Probes of the host's kernel, run OUTSIDE any sandbox: the same C program
compiled and run directly on the host shows what the kernel itself does
with a call, so a test can tell our seccomp filter's answer from the
kernel's (hosts differ: IA-32 emulation can be off, vsock or AF_ALG may be
missing). Standard library only."""
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import threading

# written by a foreign-ABI call that ran; must never be seen from a sandbox
ABI_MARK = "foreign-abi-call-ran"

_lock = threading.Lock()
_cache = {}


def foreign_write_program(abi):
    """C source: prints 'before', writes ABI_MARK to stdout through a foreign
    system call ABI (i386: int $0x80, write = 4; x32: the x32 bit 1 << 30 on
    write = 1), then prints 'survived <return value>'. The buffer is mapped
    below 4 GiB, where a 32-bit pointer reaches."""
    if abi == "i386":
        call = ('__asm__ volatile("int $0x80" : "=a"(ret) : "a"(4L), "b"(1L), "c"((long)(unsigned long)buf), '
                '"d"(n) : "r8", "r9", "r10", "r11", "memory");')
    elif abi == "x32":
        call = "ret = syscall(0x40000000L | 1, 1, buf, n);"
    else:
        raise ValueError(abi)
    return r"""#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
int main(void) {
        setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0}); /* no core file where the kernel answers SIGSEGV */
        char *buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        if (buf == MAP_FAILED) { puts("no-32bit-mapping"); return 3; }
        static const char mark[] = "%s\n";
        memcpy(buf, mark, sizeof mark);
        long ret, n = (long)strlen(buf);
        puts("before"); fflush(stdout);
        %s
        printf("survived %%ld\n", ret);
        return 0;
}
""" % (ABI_MARK, call)


def host_c(source, timeout=60):
    """Compile SOURCE with the host's compiler and run it on the host, outside
    any sandbox: (wait status as subprocess returncode, stdout), or
    (None, why) when it cannot be built here."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        return None, "no C compiler on the host"
    with tempfile.TemporaryDirectory(prefix="airlock-e2e-probe-") as d:
        src, exe = os.path.join(d, "probe.c"), os.path.join(d, "probe")
        with open(src, "w") as f:
            f.write(source)
        c = subprocess.run([cc, "-std=gnu17", "-O2", "-o", exe, src], capture_output=True, text=True,
                           timeout=timeout)
        if c.returncode != 0:
            return None, "host compile failed: " + c.stderr[-500:]
        p = subprocess.run([exe], capture_output=True, text=True, timeout=timeout, cwd=d)
        return p.returncode, p.stdout


def probe_foreign_abi(abi):
    """What this host's kernel does with the foreign-ABI write, without any
    filter: {'state': 'entered' | 'refused' | 'unknown', 'wrote', 'signal',
    'detail'}. 'entered': the call came back (the kernel has that entry; x32
    without x32 support comes back with -ENOSYS and writes nothing);
    'refused': the kernel killed the probe itself (no IA-32 entry: SIGSEGV)
    and the mark never appeared. Cached per test process."""
    with _lock:
        if abi in _cache:
            return _cache[abi]
        if platform.machine() != "x86_64":
            res = {"state": "unknown", "wrote": False, "signal": None,
                   "detail": "not x86-64 (%s)" % platform.machine()}
        else:
            rc, out = host_c(foreign_write_program(abi))
            ran = rc is not None and ABI_MARK in out
            if rc == 0 and "survived" in out:
                res = {"state": "entered", "wrote": ran, "signal": None,
                       "detail": "exit 0, %s" % out.strip().replace("\n", " | ")}
            elif rc is not None and rc < 0 and not ran:
                res = {"state": "refused", "wrote": False, "signal": -rc,
                       "detail": "killed by %s" % signal.Signals(-rc).name}
            else:
                res = {"state": "unknown", "wrote": ran, "signal": None,
                       "detail": "status %r, output %r" % (rc, out)}
        _cache[abi] = res
        return res


def foreign_abi_check(abi, probe, rc, r):
    """(cond, name, diag) for a sandboxed run of foreign_write_program(ABI),
    given the host probe. What matters everywhere: the call never ran (the
    mark is not in stdout, the program did not go on). i386: where the
    kernel has the IA-32 entry, our filter kills with SIGSYS; where the probe
    shows the kernel refuses int $0x80 itself, the kernel's signal comes
    before seccomp could see the call (the filter's arch rule is then
    checked on the BPF program by test-seccomp). x32: seccomp sees x32
    numbers on every x86-64 kernel before the kernel's own dispatch, so the
    filter's SIGSYS is required whatever the probe says."""
    if platform.machine() != "x86_64":
        return (None, "%s foreign-ABI write" % abi, "not x86-64 (%s): no int $0x80 or x32" % platform.machine())
    out = r.get("stdout", "") or ""
    never_ran = ABI_MARK not in out and "survived" not in out and out.startswith("before")
    killed_by = r.get("signal") if r.get("status") == "killed" and rc == 7 else None
    what = "i386 int $0x80 write" if abi == "i386" else "x32 write (0x40000000|1)"
    diag = {"host probe": probe, "inside": {k: r.get(k) for k in ("status", "reason", "signal", "stdout", "stderr")}}
    if abi == "x32":
        return (never_ran and killed_by == signal.SIGSYS,
                "%s: killed by SIGSYS, nothing written (host kernel without the filter: %s)"
                % (what, "x32 runs" if probe["wrote"] else
                   "no x32, the call comes back without writing" if probe["state"] == "entered" else
                   probe["detail"]), diag)
    if probe["state"] == "entered":
        return (never_ran and killed_by == signal.SIGSYS,
                "%s: killed by SIGSYS from the filter, nothing written (the host kernel has the IA-32 "
                "entry: the probe outside the sandbox %s)" % (what, "wrote" if probe["wrote"] else "came back"),
                diag)
    if probe["state"] == "refused":
        name = signal.Signals(probe["signal"]).name
        return (never_ran and killed_by == probe["signal"],
                "%s: this host's kernel has no IA-32 entry (the probe outside the sandbox got %s); inside "
                "the kernel's %s comes before seccomp, nothing written (the filter's arch rule is checked on "
                "the BPF program in test-seccomp)" % (what, name, name), diag)
    return (False, "%s: the host probe outside the sandbox was inconclusive (%s)" % (what, probe["detail"]), diag)


def foreign_abi_check_selftest():
    """The decision above on made-up results for both kinds of host, the one
    this host is and the one it is not: (cond, name, diag)."""
    entered = {"state": "entered", "wrote": True, "signal": None, "detail": ""}
    refused = {"state": "refused", "wrote": False, "signal": int(signal.SIGSEGV), "detail": ""}
    unknown = {"state": "unknown", "wrote": False, "signal": None, "detail": ""}

    def res(sig, out="before\n"):
        return (7 if sig else 0), {"status": "killed" if sig else "ok", "signal": sig, "stdout": out}
    sys_, segv, clean = res(int(signal.SIGSYS)), res(int(signal.SIGSEGV)), res(None, "before\nsurvived 21\n")
    leaked = res(int(signal.SIGSYS), "before\n" + ABI_MARK + "\n")
    cases = [
        (entered, "i386", sys_, True), (entered, "i386", segv, False), (entered, "i386", clean, False),
        (entered, "i386", leaked, False), (refused, "i386", segv, True), (refused, "i386", sys_, False),
        (refused, "i386", clean, False), (refused, "i386", res(int(signal.SIGSEGV), "before\n" + ABI_MARK), False),
        (unknown, "i386", sys_, False), (refused, "x32", segv, False), (refused, "x32", sys_, True),
        (entered, "x32", leaked, False)]
    wrong = [(p["state"], abi, r) for p, abi, (rc, r), want in cases
             if bool(foreign_abi_check(abi, p, rc, r)[0]) != want]
    return (not wrong or platform.machine() != "x86_64",
            "foreign-ABI verdict: SIGSYS required where the kernel has the entry, the kernel's own signal "
            "accepted only where the host probe shows it refuses the call, never a run whose write appeared",
            wrong)
