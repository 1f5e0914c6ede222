"""Minimal TAP producer for the end-to-end tests (run under prove)."""
import sys

_n = 0
_failed = 0


def ok(cond, name, diag=None):
    global _n, _failed
    _n += 1
    if not cond:
        _failed += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (_n, name))
    if not cond and diag is not None:
        for line in str(diag).splitlines()[:40]:
            print("#   " + line)
    sys.stdout.flush()
    return bool(cond)


def skip(name, reason):
    global _n
    _n += 1
    print("ok %d - %s # SKIP %s" % (_n, name, reason))
    sys.stdout.flush()


def diag(msg):
    for line in str(msg).splitlines():
        print("# " + line)


def done():
    print("1..%d" % _n)
    sys.stdout.flush()
    sys.exit(1 if _failed else 0)
