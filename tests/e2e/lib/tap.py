"""Minimal TAP producer for the end-to-end tests (run under prove).

ok(cond, name, diag=None)  one test line; diag (any object) printed as '# '
                           lines when the test fails
skip(name, reason)         one 'ok N - name # SKIP reason' line
diag(msg)                  '# ' lines, always
done()                     prints the plan '1..N', exits 1 if anything failed
"""
import sys

_n = 0
_failed = 0


def _clean(name):
    # '#' would start a TAP directive, a newline would end the line
    return str(name).replace("#", "\\#").replace("\n", " ")


def diag(msg):
    for line in str(msg).splitlines() or [""]:
        print("# " + line)
    sys.stdout.flush()


def ok(cond, name, diag=None):
    global _n, _failed
    _n += 1
    if not cond:
        _failed += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (_n, _clean(name)))
    if not cond and diag is not None:
        for line in str(diag).splitlines()[:60]:
            print("#   " + line[:2000])
    sys.stdout.flush()
    return bool(cond)


def skip(name, reason):
    global _n
    _n += 1
    print("ok %d - %s # SKIP %s" % (_n, _clean(name), str(reason).replace("\n", " ")))
    sys.stdout.flush()


def failed():
    return _failed


def done():
    print("1..%d" % _n)
    sys.stdout.flush()
    sys.exit(1 if _failed else 0)
