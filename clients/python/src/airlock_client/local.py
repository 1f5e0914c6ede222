"""Local mode: no server, each run is ``airlock run --json`` as a
subprocess, with the same :class:`Result` objects as a server's."""
import json
import os
import shutil
import subprocess
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ._common import DEFAULT_WALL_S, Files, _files
from .errors import BinaryNotFound, BadRequest, ClientTimeout, LocalFailed, NotSupported, Rejected
from .results import Result, compat_from_result

__all__ = ["LocalAirlock", "find_binary"]

#: airlock run's exit status for a usage error (airlock-run(1))
EXIT_USAGE = 2


def find_binary(binary: Optional[str] = None) -> str:
    """The airlock binary: BINARY, else ``$AIRLOCK_BIN``, else ``airlock``
    on PATH; :class:`BinaryNotFound` when none is executable."""
    cand = binary or os.environ.get("AIRLOCK_BIN") or shutil.which("airlock")
    if not cand or not os.access(cand, os.X_OK) or os.path.isdir(cand):
        raise BinaryNotFound("no airlock binary: pass binary=, set AIRLOCK_BIN or put "
                             "airlock on PATH (%s)" % (cand or "not on PATH"))
    return cand


class LocalAirlock:
    """Runs code with the local ``airlock`` binary (``airlock run --json``).

    Same :meth:`run` and :class:`Result` as :class:`Airlock`; a policy
    refusal raises :class:`Rejected` as the server's 422 does. Sessions,
    streams and server reads need ``airlock serve``: they raise
    :class:`NotSupported`."""

    def __init__(self, binary: Optional[str] = None, *, state: Optional[str] = None,
                 timeout_margin: float = 15.0) -> None:
        self.binary = find_binary(binary)
        self.state = state
        self.timeout_margin = timeout_margin

    def __repr__(self) -> str:
        return "LocalAirlock(%r)" % self.binary

    def run(self, code: Union[str, bytes], language: str = "python", *,
            timeout: Optional[float] = None, stdin: Union[str, bytes, None] = None,
            args: Optional[Sequence[str]] = None, env: Optional[Mapping[str, str]] = None,
            files: Optional[Files] = None, collect: Optional[Sequence[str]] = None,
            limits: Optional[Mapping[str, int]] = None, memory_mb: Optional[int] = None,
            cpu_ms: Optional[int] = None, policy_mode: Optional[str] = None,
            user_id: Optional[str] = None, agent_id: Optional[str] = None,
            metadata: Optional[Mapping[str, Any]] = None,
            start: Optional[str] = None) -> Result:
        """Run CODE in a fresh sandbox with the local binary -> :class:`Result`.
        The arguments are those of :meth:`Airlock.run` (``metadata`` and
        ``start`` have no meaning locally and are ignored)."""
        lim: Dict[str, int] = dict(limits or {})
        if timeout is not None:
            lim["wall_ms"] = int(round(timeout * 1000))
        if memory_mb is not None:
            lim["memory_mb"] = memory_mb
        if cpu_ms is not None:
            lim["cpu_ms"] = cpu_ms
        with tempfile.TemporaryDirectory(prefix="airlock-client-") as tmp:
            src = os.path.join(tmp, "code")
            with open(src, "wb") as f:
                f.write(code.encode("utf-8") if isinstance(code, str) else code)
            argv: List[str] = [self.binary, "run", "--json", "--lang", language]
            if self.state:
                argv += ["--state", self.state]
            for k, v in lim.items():
                argv += ["--limit", "%s=%d" % (k, int(v))]
            for ek, ev in (env or {}).items():
                argv += ["--env", "%s=%s" % (ek, ev)]
            for i, fl in enumerate(_files(files) or []):
                host = os.path.join(tmp, "in-%d" % i)
                with open(host, "wb") as f:
                    if "content" in fl:
                        f.write(fl["content"].encode("utf-8"))
                    else:
                        import base64
                        f.write(base64.b64decode(fl["content_base64"]))
                os.chmod(host, 0o755 if fl.get("executable") else 0o644)
                argv += ["--file", "%s=%s" % (fl["path"], host)]
            for g in collect or []:
                argv += ["--collect", g]
            if policy_mode is not None:
                argv += ["--policy-mode", policy_mode]
            if user_id is not None:
                argv += ["--user-id", user_id]
            if agent_id is not None:
                argv += ["--agent-id", agent_id]
            data: Optional[bytes] = None
            if stdin is not None:
                argv += ["--stdin", "-"]
                data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
            argv += [src]
            for a in args or []:
                argv += ["--arg", a]
            wall_s = lim.get("wall_ms", DEFAULT_WALL_S * 1000) / 1000
            try:
                p = subprocess.run(argv, input=data if data is not None else b"",
                                   capture_output=True, timeout=wall_s + self.timeout_margin)
            except subprocess.TimeoutExpired as e:
                raise ClientTimeout("airlock run gave no result within %.1f s"
                                    % (wall_s + self.timeout_margin)) from e
        try:
            js = json.loads(p.stdout)
            if not isinstance(js, dict):
                raise ValueError("not an object")
        except ValueError:
            err = p.stderr.decode("utf-8", "replace").strip()[-2000:]
            cls = BadRequest if p.returncode == EXIT_USAGE else LocalFailed
            raise cls("airlock run exited %d without a result: %s" % (p.returncode, err),
                      code="invalid_request" if cls is BadRequest else None) from None
        if js.get("status") == "rejected":
            raise Rejected(str(js.get("reason") or "refused by the policy"),
                           code="policy_violation", http_status=0,
                           audit_id=js.get("audit_id"), body=js)
        return Result(js)

    def _no(self, what: str) -> NotSupported:
        return NotSupported("%s needs airlock serve (Airlock(url)); local mode runs "
                            "one-shot code only" % what)

    def stream(self, *a: Any, **kw: Any) -> Any:
        """Not in local mode: raises :class:`NotSupported`."""
        raise self._no("streaming")

    def session(self, *a: Any, **kw: Any) -> Any:
        """Not in local mode: raises :class:`NotSupported`."""
        raise self._no("a session")

    def execute_compat(self, code: str, language: str = "python",
                       timeout: float = 30) -> Dict[str, Any]:
        """The tutorials' shape, from a local run: {success, output, error, id}."""
        try:
            return compat_from_result(self.run(code, language, timeout=timeout))
        except Rejected as e:
            return {"success": False, "output": "", "error": e.message, "id": e.audit_id}
