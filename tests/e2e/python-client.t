#!/usr/bin/python3
# The Python client (clients/python) against a real airlock serve: its
# unittest suite (clients/python/tests, standard library only) run with a
# TAP result, one line per test; then a strict mypy check of the package
# where Debian's python3-mypy is installed (scripts/deps.sh installs it).
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import tap  # noqa: E402
from tap import ok, done, skip  # noqa: E402
from airlock import BIN, REPO  # noqa: E402

PKG = os.path.join(REPO, "clients", "python")
sys.path.insert(0, os.path.join(PKG, "tests"))
sys.path.insert(0, os.path.join(PKG, "src"))
os.environ["AIRLOCK_BIN"] = BIN


class TapResult(unittest.TestResult):
    """Each test as a TAP line: a failure with its traceback as diagnostics,
    a skip with its reason, an expected failure as a TODO."""

    def addSuccess(self, test):
        ok(True, test.id())

    def addFailure(self, test, err):
        ok(False, test.id(), self._exc_info_to_string(err, test))

    def addError(self, test, err):
        ok(False, test.id(), self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        skip(test.id(), reason)

    def addExpectedFailure(self, test, err):
        tap._n += 1  # a TODO line: prove counts it, it does not fail the file
        why = (str(err[1]).splitlines() or [""])[0][:200].replace("#", "\\#")
        print("not ok %d - %s # TODO known bug: %s" % (tap._n, test.id(), why))

    def addUnexpectedSuccess(self, test):
        ok(False, test.id() + ": passed, but is marked expectedFailure (remove the marker)")


suite = unittest.defaultTestLoader.loadTestsFromName("test_client")
suite.run(TapResult())

try:
    import mypy  # noqa: F401
    have_mypy = True
except ImportError:
    have_mypy = False
if have_mypy:
    p = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "pyproject.toml"],
                       cwd=PKG, capture_output=True, timeout=300)
    ok(p.returncode == 0, "mypy --strict clients/python/src/airlock_client",
       (p.stdout + p.stderr).decode("utf-8", "replace"))
else:
    skip("mypy --strict clients/python/src/airlock_client",
         "python3-mypy is not installed (scripts/deps.sh installs it)")
# the package installs as a user would (pip, into a fresh venv; offline
# here, so without build isolation: the build backend is the system's)
import shutil  # noqa: E402
import tempfile  # noqa: E402

venv = tempfile.mkdtemp(prefix="al-e2e-pyclient-")
try:
    v = subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
                       capture_output=True, timeout=120)
    if v.returncode != 0:
        skip("pip install ./clients/python into a venv, then import", "no venv module: %s" % v.stderr[-200:])
    else:
        # from a copy: a build writes build/ and *.egg-info beside the sources
        src = os.path.join(venv, "src")
        shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        pip = subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--quiet",
                              "--no-index", "--no-build-isolation", src],
                             capture_output=True, timeout=300)
        imp = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                              "import airlock_client, os; print(os.path.dirname(airlock_client.__file__))"],
                             capture_output=True, text=True, cwd=venv, timeout=60)
        ok(pip.returncode == 0 and imp.returncode == 0 and venv in imp.stdout,
           "pip install ./clients/python into a venv, then import it from there",
           (pip.stdout + pip.stderr).decode("utf-8", "replace")[-800:] + imp.stdout + imp.stderr)
finally:
    shutil.rmtree(venv, ignore_errors=True)
done()
