"""Result objects: what a run, a session cell or a stream answers.

Each wraps the server's JSON (kept whole in ``.raw``) with typed attributes
for what callers branch on. ``status`` is one of a closed set (``ok``,
``error``, ``timeout``, ``memory_limit``, ``output_limit``, ``killed``,
``internal_error``; cells: ``ok``, ``error``, ``timeout``,
``session_dead``): a failed run is a result, not an exception.
"""
import base64
import binascii
from typing import Any, Dict, List, Optional

__all__ = ["Result", "OutFile", "CellResult", "CellError", "RichResult", "StreamEvent",
           "compat_from_result"]


def _b64(s: Any) -> Optional[bytes]:
    if not isinstance(s, str):
        return None
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None


def _text(raw: Dict[str, Any], name: str) -> str:
    """stdout/stderr as text: the server sends NAME, or NAME_base64 when the
    bytes are not UTF-8 (decoded here with replacement characters)."""
    v = raw.get(name)
    if isinstance(v, str):
        return v
    b = _b64(raw.get(name + "_base64"))
    return b.decode("utf-8", "replace") if b is not None else ""


def _bytes(raw: Dict[str, Any], name: str) -> bytes:
    b = _b64(raw.get(name + "_base64"))
    if b is not None:
        return b
    v = raw.get(name)
    return v.encode("utf-8") if isinstance(v, str) else b""


class OutFile:
    """A file the run returned (``collect``): ``name``, ``size``, ``mime``
    and ``content`` (bytes; None when the server skipped it, see the
    result's ``files_note``)."""

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.raw = raw
        self.name: str = str(raw.get("name", ""))
        self.size: int = int(raw.get("size") or 0)
        self.mime: Optional[str] = raw.get("mime")
        self.content: Optional[bytes] = _b64(raw.get("content_base64"))

    def __repr__(self) -> str:
        return "OutFile(name=%r, size=%d, mime=%r)" % (self.name, self.size, self.mime)


class Result:
    """The result of a one-shot run (POST /v1/execute, or ``airlock run
    --json`` in local mode).

    ``ok`` is True when ``status`` is ``ok``. ``audit_id`` is the id of the
    execution in the audit log (``Airlock.execution(audit_id)`` reads it).
    ``start`` is ``warm`` or ``cold`` where the server says so."""

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.raw = raw
        self.status: str = str(raw.get("status", ""))
        self.reason: str = str(raw.get("reason") or "")
        self.stdout: str = _text(raw, "stdout")
        self.stderr: str = _text(raw, "stderr")
        self.stdout_truncated: bool = bool(raw.get("stdout_truncated"))
        self.stderr_truncated: bool = bool(raw.get("stderr_truncated"))
        self.exit_code: Optional[int] = raw.get("exit_code")
        self.signal: Optional[int] = raw.get("signal")
        self.limits_hit: List[str] = list(raw.get("limits_hit") or [])
        self.audit_id: Optional[str] = raw.get("id") or raw.get("audit_id")
        self.files: List[OutFile] = [OutFile(f) for f in raw.get("files") or [] if isinstance(f, dict)]
        self.files_note: Any = raw.get("files_note")
        self.findings: List[Dict[str, Any]] = list(raw.get("findings") or [])
        self.start: Optional[str] = raw.get("start")
        self.wall_ms: Optional[int] = raw.get("wall_ms")
        self.cpu_ms: Optional[int] = raw.get("cpu_ms")
        self.memory_peak_bytes: Optional[int] = raw.get("memory_peak_bytes")
        self.limits: Dict[str, Any] = dict(raw.get("limits") or {})
        self.protections: Dict[str, Any] = dict(raw.get("protections") or {})
        self.metadata: Any = raw.get("metadata")

    @property
    def ok(self) -> bool:
        """True when the code ran and exited 0 within its limits."""
        return self.status == "ok"

    @property
    def stdout_bytes(self) -> bytes:
        """stdout as the program wrote it (bytes)."""
        return _bytes(self.raw, "stdout")

    @property
    def stderr_bytes(self) -> bytes:
        """stderr as the program wrote it (bytes)."""
        return _bytes(self.raw, "stderr")

    def file(self, name: str) -> Optional[OutFile]:
        """The returned file called NAME, or None."""
        for f in self.files:
            if f.name == name:
                return f
        return None

    def __repr__(self) -> str:
        return "Result(status=%r, exit_code=%r, audit_id=%r, limits_hit=%r)" % (
            self.status, self.exit_code, self.audit_id, self.limits_hit)


class RichResult:
    """One rich result of a session cell: a MIME bundle (``data``: MIME type
    -> value; ``image/png`` is base64 on the wire and bytes in ``.png``)."""

    def __init__(self, raw: Dict[str, Any]) -> None:
        # the server sends {mime: data}; the Jupyter shape {type, data} too
        d: Dict[str, Any] = raw["data"] if isinstance(raw.get("data"), dict) else raw
        self.raw = raw
        self.data: Dict[str, Any] = {k: v for k, v in d.items() if "/" in k}

    @property
    def text(self) -> Optional[str]:
        """``text/plain``, or None."""
        v = self.data.get("text/plain")
        return v if isinstance(v, str) else None

    @property
    def html(self) -> Optional[str]:
        """``text/html``, or None."""
        v = self.data.get("text/html")
        return v if isinstance(v, str) else None

    @property
    def png(self) -> Optional[bytes]:
        """``image/png`` decoded to bytes, or None."""
        return _b64(self.data.get("image/png"))

    @property
    def mimes(self) -> List[str]:
        """The MIME types of this result."""
        return list(self.data)

    def __repr__(self) -> str:
        return "RichResult(%r)" % self.mimes


class CellError:
    """The exception a session cell raised: ``name``, ``value``, ``traceback``
    (list of lines)."""

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.raw = raw
        self.name: str = str(raw.get("name", ""))
        self.value: str = str(raw.get("value", ""))
        self.traceback: List[str] = [str(x) for x in raw.get("traceback") or []]

    def __str__(self) -> str:
        return "%s: %s" % (self.name, self.value)

    def __repr__(self) -> str:
        return "CellError(%r, %r)" % (self.name, self.value)


class CellResult:
    """The result of one session cell (POST /v1/sessions/ID/execute).

    ``status`` is ``ok``, ``error`` (the cell raised: see ``.error``),
    ``timeout`` (interrupted; the session lives) or ``session_dead``.
    ``results`` are the rich results (the cell's value, display() calls,
    figures); ``.text``, ``.html``, ``.png`` are those of the last result
    that has that type. ``audit_id`` is ``SESSION.SEQ``."""

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.raw = raw
        self.id: Optional[str] = raw.get("id")
        self.audit_id = self.id
        self.session_id: Optional[str] = raw.get("session_id")
        self.seq: Optional[int] = raw.get("seq")
        self.status: str = str(raw.get("status", ""))
        self.reason: str = str(raw.get("reason") or "")
        self.execution_count: Optional[int] = raw.get("execution_count")
        self.stdout: str = _text(raw, "stdout")
        self.stderr: str = _text(raw, "stderr")
        self.results: List[RichResult] = [RichResult(r) for r in raw.get("results") or []
                                          if isinstance(r, dict)]
        e = raw.get("error")
        self.error: Optional[CellError] = CellError(e) if isinstance(e, dict) else None
        self.limits_hit: List[str] = list(raw.get("limits_hit") or [])
        self.findings: List[Dict[str, Any]] = list(raw.get("findings") or [])
        self.wall_ms: Optional[int] = raw.get("wall_ms")
        self.cpu_ms: Optional[int] = raw.get("cpu_ms")

    @property
    def ok(self) -> bool:
        """True when the cell ran to its end without an exception."""
        return self.status == "ok"

    def _last(self, attr: str) -> Any:
        for r in reversed(self.results):
            v = getattr(r, attr)
            if v is not None:
                return v
        return None

    @property
    def text(self) -> Optional[str]:
        """``text/plain`` of the last rich result that has one."""
        return self._last("text")  # type: ignore[no-any-return]

    @property
    def html(self) -> Optional[str]:
        """``text/html`` of the last rich result that has one."""
        return self._last("html")  # type: ignore[no-any-return]

    @property
    def png(self) -> Optional[bytes]:
        """``image/png`` bytes of the last rich result that has one."""
        return self._last("png")  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return "CellResult(id=%r, status=%r, results=%r)" % (self.id, self.status, self.results)


class StreamEvent:
    """One event of a streamed run: ``kind`` is ``stdout`` or ``stderr``
    (``text`` is the chunk), then one ``result`` (``result`` is the
    :class:`Result` or :class:`CellResult`). A refusal ends the stream with
    an exception instead."""

    def __init__(self, kind: str, text: str = "", result: Any = None) -> None:
        self.kind = kind
        self.text = text
        self.result = result

    def __repr__(self) -> str:
        if self.kind == "result":
            return "StreamEvent('result', %r)" % (self.result,)
        return "StreamEvent(%r, %r)" % (self.kind, self.text)


def compat_from_result(r: Result) -> Dict[str, Any]:
    """A :class:`Result` in the tutorials' shape {success, output, error,
    id}, as the server's POST /execute makes it."""
    if r.status == "timeout":
        err = "Execution timed out"
    elif not r.ok and not r.stderr:
        err = r.reason or r.status
    else:
        err = r.stderr
    return {"success": r.ok, "output": r.stdout, "error": err, "id": r.audit_id}
