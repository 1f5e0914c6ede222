"""The synchronous client: :class:`Airlock` (one server) and
:class:`Session` (one live session on it)."""
import base64
import os
import urllib.parse
from typing import (IO, TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Sequence,
                    Union)

from ._common import DEFAULT_WALL_S, Files, _files
from ._http import RetryPolicy, Transport
from .errors import SessionDead, SessionNotFound
from .results import CellResult, Result, StreamEvent

if TYPE_CHECKING:
    from .local import LocalAirlock

__all__ = ["Airlock", "Session", "DEFAULT_WALL_S", "Files"]

__version__ = "0.1.0"

#: a session's sandbox and driver start within this (plus the margin)
SESSION_START_S = 30.0

Data = Union[bytes, bytearray, str, IO[bytes]]


def _quote_path(path: Union[str, bytes]) -> str:
    """A workspace path for the URL: its bytes (a str from os.fsdecode keeps
    its undecodable bytes) percent-encoded; the server judges them."""
    b = path if isinstance(path, bytes) else path.encode("utf-8", "surrogateescape")
    return urllib.parse.quote(b, safe="/")


def _put_bytes(body: Dict[str, Any], name: str, value: Union[str, bytes, None]) -> None:
    if value is None:
        return
    if isinstance(value, (bytes, bytearray)):
        try:
            body[name] = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            body[name + "_base64"] = base64.b64encode(bytes(value)).decode("ascii")
    else:
        body[name] = value


def _limits(limits: Optional[Mapping[str, int]], timeout: Optional[float],
            **named: Optional[int]) -> Dict[str, int]:
    out = dict(limits or {})
    if timeout is not None:
        out["wall_ms"] = int(round(timeout * 1000))
    for k, v in named.items():
        if v is not None:
            out[k] = int(v)
    return out


def _read_all(data: Data) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    return data.read()


class Airlock:
    """A client of one ``airlock serve``.

    ``url`` defaults to ``$AIRLOCK_URL``; ``api_key`` to ``$AIRLOCK_API_KEY``.
    The key is never shown (repr, exceptions). Every call that runs code
    waits for its answer for the run's wall limit plus ``timeout_margin``
    seconds. 429 and 503 answers are retried per ``retry`` (a
    :class:`RetryPolicy`; ``retry=0`` turns retries off).

    Sandbox failures (a non-zero exit, a timeout, a limit hit) are results:
    check ``r.ok`` / ``r.status``. Refusals raise :class:`AirlockError`
    subclasses keyed by the server's error code."""

    def __init__(self, url: Optional[str] = None, api_key: Optional[str] = None, *,
                 retry: Union[RetryPolicy, int, None] = None, timeout_margin: float = 15.0,
                 connect_timeout: float = 10.0) -> None:
        url = url or os.environ.get("AIRLOCK_URL")
        if not url:
            raise ValueError("no server URL: pass one or set AIRLOCK_URL "
                             "(or use Airlock.local() to run without a server)")
        if api_key is None:
            api_key = os.environ.get("AIRLOCK_API_KEY") or None
        if isinstance(retry, int):
            retry = RetryPolicy(max_retries=retry)
        self.retry = retry or RetryPolicy()
        self.timeout_margin = timeout_margin
        self._t = Transport(url, api_key, self.retry, connect_timeout,
                            "airlock-client-python/" + __version__)

    @classmethod
    def local(cls, binary: Optional[str] = None, *, state: Optional[str] = None,
              timeout_margin: float = 15.0) -> "LocalAirlock":
        """A client without a server: each run is ``airlock run --json`` (the
        binary from ``binary``, ``$AIRLOCK_BIN`` or PATH), with the same
        result objects. ``state`` is the state directory (audit log)."""
        from .local import LocalAirlock
        return LocalAirlock(binary, state=state, timeout_margin=timeout_margin)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._t.url

    def __repr__(self) -> str:
        return "Airlock(%r, api_key=%s)" % (self._t.url, "'***'" if self._t._key else "None")

    def _wait(self, wall_s: Optional[float]) -> float:
        return (wall_s if wall_s is not None else DEFAULT_WALL_S) + self.timeout_margin

    # --- one-shot runs -----------------------------------------------------

    def _execute_body(self, code: Union[str, bytes], language: str, timeout: Optional[float],
                      stdin: Union[str, bytes, None], args: Optional[Sequence[str]],
                      env: Optional[Mapping[str, str]], files: Optional[Files],
                      collect: Optional[Sequence[str]], limits: Optional[Mapping[str, int]],
                      policy_mode: Optional[str], user_id: Optional[str],
                      agent_id: Optional[str], metadata: Optional[Mapping[str, Any]],
                      start: Optional[str], memory_mb: Optional[int],
                      cpu_ms: Optional[int]) -> Dict[str, Any]:
        body: Dict[str, Any] = {"language": language}
        _put_bytes(body, "code", code)
        _put_bytes(body, "stdin", stdin)
        if args is not None:
            body["args"] = list(args)
        if env is not None:
            body["env"] = dict(env)
        fl = _files(files)
        if fl is not None:
            body["files"] = fl
        if collect is not None:
            body["collect"] = list(collect)
        lim = _limits(limits, timeout, memory_mb=memory_mb, cpu_ms=cpu_ms)
        if lim:
            body["limits"] = lim
        for k, v in (("policy_mode", policy_mode), ("user_id", user_id),
                     ("agent_id", agent_id), ("start", start)):
            if v is not None:
                body[k] = v
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return body

    def run(self, code: Union[str, bytes], language: str = "python", *,
            timeout: Optional[float] = None, stdin: Union[str, bytes, None] = None,
            args: Optional[Sequence[str]] = None, env: Optional[Mapping[str, str]] = None,
            files: Optional[Files] = None, collect: Optional[Sequence[str]] = None,
            limits: Optional[Mapping[str, int]] = None, memory_mb: Optional[int] = None,
            cpu_ms: Optional[int] = None, policy_mode: Optional[str] = None,
            user_id: Optional[str] = None, agent_id: Optional[str] = None,
            metadata: Optional[Mapping[str, Any]] = None,
            start: Optional[str] = None) -> Result:
        """Run CODE once in a fresh sandbox (POST /v1/execute) -> :class:`Result`.

        ``timeout`` is the wall clock in seconds (limits.wall_ms); ``files``
        are put in the workspace (NAME -> bytes/str, or a list of {path,
        content, executable}); ``collect`` globs of files to return;
        ``limits`` any of wall_ms, cpu_ms, memory_mb, pids, disk_mb,
        output_bytes, open_files; ``policy_mode`` off, record, warn or
        enforce; ``start`` "auto" or "cold". A policy refusal raises
        :class:`Rejected`."""
        body = self._execute_body(code, language, timeout, stdin, args, env, files, collect,
                                  limits, policy_mode, user_id, agent_id, metadata, start,
                                  memory_mb, cpu_ms)
        wall = body.get("limits", {}).get("wall_ms")
        js = self._t.json("POST", "/v1/execute", json_body=body,
                          timeout=self._wait(wall / 1000 if wall else None))
        return Result(js)

    def stream(self, code: Union[str, bytes], language: str = "python", *,
               timeout: Optional[float] = None, stdin: Union[str, bytes, None] = None,
               args: Optional[Sequence[str]] = None, env: Optional[Mapping[str, str]] = None,
               files: Optional[Files] = None, collect: Optional[Sequence[str]] = None,
               limits: Optional[Mapping[str, int]] = None, memory_mb: Optional[int] = None,
               cpu_ms: Optional[int] = None, policy_mode: Optional[str] = None,
               user_id: Optional[str] = None, agent_id: Optional[str] = None,
               metadata: Optional[Mapping[str, Any]] = None,
               start: Optional[str] = None) -> Iterator[StreamEvent]:
        """Run CODE like :meth:`run`, yielding its output as it comes:
        ``stdout``/``stderr`` events (``ev.text``), then one ``result``
        event (``ev.result``, a :class:`Result`). A refusal raises."""
        body = self._execute_body(code, language, timeout, stdin, args, env, files, collect,
                                  limits, policy_mode, user_id, agent_id, metadata, start,
                                  memory_mb, cpu_ms)
        wall = body.get("limits", {}).get("wall_ms")
        return self._stream("/v1/execute", body, self._wait(wall / 1000 if wall else None), Result)

    def _stream(self, path: str, body: Dict[str, Any], timeout: float,
                result_type: Any) -> Iterator[StreamEvent]:
        for name, data in self._t.events(path, body, timeout):
            if name in ("stdout", "stderr"):
                yield StreamEvent(name, str(data.get("text", "")) if isinstance(data, dict) else "")
            elif name == "result":
                yield StreamEvent("result", result=result_type(data))
            elif name == "error":
                st = data.get("http_status", 500) if isinstance(data, dict) else 500
                raise self._t.error_from(int(st), data, None)

    def execute_compat(self, code: str, language: str = "python",
                       timeout: float = 30) -> Dict[str, Any]:
        """The tutorials' shape (POST /execute): -> {success, output, error, id}."""
        return self._t.json("POST", "/execute",  # type: ignore[no-any-return]
                            json_body={"code": code, "language": language, "timeout": timeout},
                            timeout=self._wait(float(timeout)))

    # --- sessions ----------------------------------------------------------

    def session(self, language: str = "python", *, memory_mb: Optional[int] = None,
                timeout: Optional[float] = None, limits: Optional[Mapping[str, int]] = None,
                env: Optional[Mapping[str, str]] = None, files: Optional[Files] = None,
                idle_timeout_s: Optional[int] = None, max_lifetime_s: Optional[int] = None,
                max_cells: Optional[int] = None, policy_mode: Optional[str] = None,
                user_id: Optional[str] = None, agent_id: Optional[str] = None,
                metadata: Optional[Mapping[str, Any]] = None) -> "Session":
        """Start a session (POST /v1/sessions): one sandbox kept alive whose
        state survives from cell to cell. Use it as a context manager (the
        session is closed at the end). ``timeout`` is its cells' default
        wall clock in seconds."""
        body: Dict[str, Any] = {"language": language}
        lim = _limits(limits, timeout, memory_mb=memory_mb)
        if lim:
            body["limits"] = lim
        if env is not None:
            body["env"] = dict(env)
        fl = _files(files)
        if fl is not None:
            body["files"] = fl
        for k, v in (("idle_timeout_s", idle_timeout_s), ("max_lifetime_s", max_lifetime_s),
                     ("max_cells", max_cells), ("policy_mode", policy_mode),
                     ("user_id", user_id), ("agent_id", agent_id)):
            if v is not None:
                body[k] = v
        if metadata is not None:
            body["metadata"] = dict(metadata)
        js = self._t.json("POST", "/v1/sessions", json_body=body,
                          timeout=SESSION_START_S + self.timeout_margin)
        return Session(self, js)

    def attach(self, session_id: str) -> "Session":
        """The live session SESSION_ID (GET /v1/sessions/ID) as a :class:`Session`."""
        return Session(self, self._t.json("GET", "/v1/sessions/" + _quote_path(session_id),
                                          timeout=self.timeout_margin))

    def sessions(self) -> List[Dict[str, Any]]:
        """The key's live sessions (GET /v1/sessions)."""
        js = self._t.json("GET", "/v1/sessions", timeout=self.timeout_margin)
        return list(js.get("sessions") or [])

    # --- reads -------------------------------------------------------------

    def execution(self, id: str) -> Dict[str, Any]:
        """The audit record of an execution (GET /v1/executions/ID): ID is
        a result's ``audit_id``, a session id, SESSION.N, or a unique
        prefix of 6+ hex digits."""
        return self._t.json("GET", "/v1/executions/" + _quote_path(id),  # type: ignore[no-any-return]
                            timeout=self.timeout_margin)

    def audit(self, **filters: Any) -> Dict[str, Any]:
        """One page of the audit log (GET /v1/audit): filters since, until,
        actor, status, source, language, suspicious, interrupted, limit,
        cursor -> {executions, count, more, next}. An execute-only key
        sees its own executions; audit:read keys see every tenant's."""
        q = {k: ("true" if v is True else "false" if v is False else str(v))
             for k, v in filters.items() if v is not None}
        path = "/v1/audit" + ("?" + urllib.parse.urlencode(q) if q else "")
        return self._t.json("GET", path, timeout=self.timeout_margin)  # type: ignore[no-any-return]

    def audit_all(self, **filters: Any) -> Iterator[Dict[str, Any]]:
        """Every execution matching FILTERS, following the pages' cursors."""
        cursor = None
        while True:
            page = self.audit(**dict(filters, cursor=cursor))
            yield from page.get("executions") or []
            cursor = page.get("next")
            if not page.get("more") or not cursor:
                return

    def languages(self) -> List[Dict[str, Any]]:
        """The server's languages and whether each is installed."""
        return list(self._t.json("GET", "/v1/languages", timeout=self.timeout_margin)
                    .get("languages") or [])

    def health(self) -> bool:
        """Liveness (GET /healthz): True when the server answers ok."""
        js = self._t.json("GET", "/healthz", timeout=self.timeout_margin, retry=False)
        return isinstance(js, dict) and js.get("status") == "ok"

    def ready(self) -> Dict[str, Any]:
        """Readiness (GET /readyz), not retried: the answer, or
        :class:`Unavailable` (shutting_down, audit_store_full)."""
        return self._t.json("GET", "/readyz",  # type: ignore[no-any-return]
                            timeout=self.timeout_margin, retry=False)

    def metrics(self) -> str:
        """The Prometheus exposition (GET /metrics)."""
        _, body = self._t.request("GET", "/metrics", timeout=self.timeout_margin,
                                  headers={"Accept": "text/plain"})
        return body.decode("utf-8", "replace")

    def openapi(self) -> Dict[str, Any]:
        """The server's OpenAPI document."""
        return self._t.json("GET", "/openapi.json",  # type: ignore[no-any-return]
                            timeout=self.timeout_margin)


class Session:
    """One live session (made by :meth:`Airlock.session`): a sandbox kept
    alive, cells run one at a time with state kept between them, and its
    workspace's files.

    ``results`` are the rich results of the last cell (``s.results[-1].png``);
    ``last`` is the last :class:`CellResult`."""

    def __init__(self, client: Airlock, info: Dict[str, Any]) -> None:
        self._c = client
        self.info = info
        self.id: str = str(info["id"])
        self.language: str = str(info.get("language", ""))
        self.last: Optional[CellResult] = None
        lim = info.get("limits") or {}
        self._wall_s = lim.get("wall_ms", DEFAULT_WALL_S * 1000) / 1000

    def __repr__(self) -> str:
        return "Session(id=%r, language=%r)" % (self.id, self.language)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def results(self) -> List[Any]:
        """The rich results of the last cell (empty before the first)."""
        return self.last.results if self.last else []

    def _path(self, tail: str = "") -> str:
        return "/v1/sessions/" + _quote_path(self.id) + tail

    def _cell_body(self, code: Union[str, bytes], timeout: Optional[float],
                   cpu_ms: Optional[int], output_bytes: Optional[int],
                   policy_mode: Optional[str]) -> Dict[str, Any]:
        body: Dict[str, Any] = {}
        _put_bytes(body, "code", code)
        lim = _limits(None, timeout, cpu_ms=cpu_ms, output_bytes=output_bytes)
        if lim:
            body["limits"] = lim
        if policy_mode is not None:
            body["policy_mode"] = policy_mode
        return body

    def run(self, code: Union[str, bytes], *, timeout: Optional[float] = None,
            cpu_ms: Optional[int] = None, output_bytes: Optional[int] = None,
            policy_mode: Optional[str] = None) -> CellResult:
        """Run a cell (POST /v1/sessions/ID/execute) -> :class:`CellResult`.
        An exception in the cell is ``status == "error"`` with ``.error``;
        a cell over its time is ``timeout`` and the session lives."""
        body = self._cell_body(code, timeout, cpu_ms, output_bytes, policy_mode)
        js = self._c._t.json("POST", self._path("/execute"), json_body=body,
                             timeout=self._c._wait(timeout if timeout is not None
                                                   else self._wall_s))
        self.last = CellResult(js)
        return self.last

    def stream(self, code: Union[str, bytes], *, timeout: Optional[float] = None,
               cpu_ms: Optional[int] = None, output_bytes: Optional[int] = None,
               policy_mode: Optional[str] = None) -> Iterator[StreamEvent]:
        """Run a cell, yielding ``stdout``/``stderr`` events as they come,
        then one ``result`` event (a :class:`CellResult`)."""
        body = self._cell_body(code, timeout, cpu_ms, output_bytes, policy_mode)
        wait = self._c._wait(timeout if timeout is not None else self._wall_s)
        for ev in self._c._stream(self._path("/execute"), body, wait, CellResult):
            if ev.kind == "result":
                self.last = ev.result
            yield ev

    def interrupt(self) -> bool:
        """SIGINT to the running cell -> whether one was running."""
        js = self._c._t.json("POST", self._path("/interrupt"), timeout=self._c.timeout_margin)
        return bool(js.get("interrupted"))

    def status(self) -> Dict[str, Any]:
        """The session as the server sees it (GET /v1/sessions/ID)."""
        self.info = self._c._t.json("GET", self._path(), timeout=self._c.timeout_margin)
        return self.info

    def close(self) -> Dict[str, Any]:
        """End the session (DELETE /v1/sessions/ID); closing one that has
        already ended (or is gone) is not an error."""
        try:
            self.info = self._c._t.json("DELETE", self._path(), timeout=self._c.timeout_margin)
        except (SessionDead, SessionNotFound):
            pass
        return self.info

    # --- files -------------------------------------------------------------

    def upload(self, path: Union[str, bytes], data: Data) -> Dict[str, Any]:
        """Write DATA (bytes, str, or a binary file object) to PATH in the
        session's workspace -> {path, size, sha256}. A path the server
        refuses ('..', absolute, not UTF-8, through a symbolic link) raises
        :class:`BadPath`."""
        return self._c._t.json("PUT", self._path("/files/" + _quote_path(path)),  # type: ignore[no-any-return]
                               data=_read_all(data),
                               headers={"Content-Type": "application/octet-stream"},
                               timeout=self._c.timeout_margin + 60)

    def download(self, path: Union[str, bytes]) -> bytes:
        """The bytes of PATH in the session's workspace."""
        _, body = self._c._t.request("GET", self._path("/files/" + _quote_path(path)),
                                     headers={"Accept": "application/octet-stream"},
                                     timeout=self._c.timeout_margin + 60)
        return body

    def delete_file(self, path: Union[str, bytes]) -> Dict[str, Any]:
        """Delete PATH (a file or an empty directory) in the workspace."""
        return self._c._t.json("DELETE", self._path("/files/" + _quote_path(path)),  # type: ignore[no-any-return]
                               timeout=self._c.timeout_margin)

    def files(self, dir: str = "") -> List[Dict[str, Any]]:
        """The entries of DIR in the workspace: [{name, type, size, mtime}]."""
        q = "?" + urllib.parse.urlencode({"dir": dir}) if dir else ""
        js = self._c._t.json("GET", self._path("/files" + q), timeout=self._c.timeout_margin)
        return list(js.get("entries") or [])

