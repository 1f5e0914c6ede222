"""Exceptions of the airlock client, one class per family of the server's
stable error codes.

What raises and what does not: a request the server (or the client) refuses
raises an :class:`AirlockError` subclass; code that ran and failed (non-zero
exit, timeout, memory limit, output limit, a signal, an exception in a
session cell) is a *result* with a ``status``, never an exception.

Every exception has ``code`` (the server's ``error.code``, or one of the
client's own: ``transport``, ``client_timeout``, ``binary_not_found``,
``local_failed``, ``not_supported``), ``message``, ``http_status`` (0 when no
HTTP answer was had), ``field``, ``audit_id`` (execution routes audit every
refusal) and ``body`` (the parsed error object). The API key never appears in
any of them: the client scrubs it from every text it puts in an exception.
"""
from typing import Any, Dict, List, Optional, Type

__all__ = [
    "AirlockError", "TransportError", "ClientTimeout", "AuthError", "Forbidden",
    "BadRequest", "UnknownLanguage", "LimitExceedsKey", "LimitExceedsServer",
    "NoSessionDriver", "BadPath", "NotFound", "SessionNotFound", "FileNotFound",
    "MethodNotAllowed", "Conflict", "SessionBusy", "NotARegularFile",
    "NotADirectory", "SessionDead", "TooLarge", "BodyTooLarge", "FileTooLarge",
    "Rejected", "RateLimited", "ServerError", "SessionStartFailed",
    "Unavailable", "AuditStoreFull", "WorkspaceFull", "BinaryNotFound",
    "LocalFailed", "NotSupported", "error_class", "CODE_CLASSES",
]


class AirlockError(Exception):
    """Base class of every error of the client.

    ``code`` is the server's stable error code (``error.code``), which is
    what to branch on; ``http_status`` the HTTP status (0: no answer)."""

    #: default code when the server gives none (subclasses override)
    default_code = "error"

    def __init__(self, message: str, *, code: Optional[str] = None, http_status: int = 0,
                 field: Optional[str] = None, audit_id: Optional[str] = None,
                 body: Optional[Dict[str, Any]] = None,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.http_status = http_status
        self.field = field
        self.audit_id = audit_id
        self.body: Dict[str, Any] = body or {}
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = " (field %s)" % self.field if self.field else ""
        st = "HTTP %d " % self.http_status if self.http_status else ""
        return "%s%s: %s%s" % (st, self.code, self.message, where)

    def __repr__(self) -> str:
        return "%s(code=%r, http_status=%r, message=%r)" % (
            type(self).__name__, self.code, self.http_status, self.message)


class TransportError(AirlockError):
    """The server could not be reached, or its answer was not HTTP/JSON."""
    default_code = "transport"


class ClientTimeout(TransportError):
    """No answer within the client's timeout (the run's wall limit plus a
    margin): the server may still be running the code."""
    default_code = "client_timeout"


class AuthError(AirlockError):
    """401: no key, a malformed one, or an unknown or revoked one
    (``unauthorized``, ``invalid_api_key``)."""
    default_code = "unauthorized"


class Forbidden(AirlockError):
    """403: the key lacks the scope (``forbidden``), or a foreign Origin
    (``forbidden_origin``)."""
    default_code = "forbidden"


class BadRequest(AirlockError):
    """400: the request is malformed or out of bounds (``invalid_json``,
    ``invalid_type``, ``unknown_field``, ``invalid_value``, ...)."""
    default_code = "invalid_request"


class UnknownLanguage(BadRequest):
    """400 ``unknown_language``: the message lists the valid ones."""
    default_code = "unknown_language"


class LimitExceedsKey(BadRequest):
    """400 ``limit_exceeds_key``: a limit above the key's ceiling (never
    clamped by the server: ask for less)."""
    default_code = "limit_exceeds_key"


class LimitExceedsServer(BadRequest):
    """400 ``limit_exceeds_server``: a limit above the server's ceiling."""
    default_code = "limit_exceeds_server"


class NoSessionDriver(BadRequest):
    """400 ``no_session_driver``: the language has no session driver."""
    default_code = "no_session_driver"


class BadPath(BadRequest):
    """400 ``bad_path``: a session file path that is not plain, relative,
    valid UTF-8, or that crosses a symbolic link."""
    default_code = "bad_path"


class NotFound(AirlockError):
    """404 ``not_found``: no such execution (or another tenant's)."""
    default_code = "not_found"


class SessionNotFound(NotFound):
    """404 ``session_not_found``: no such session, or another key's."""
    default_code = "session_not_found"


class FileNotFound(NotFound):
    """404 ``file_not_found``: no such file in the session's workspace."""
    default_code = "file_not_found"


class MethodNotAllowed(AirlockError):
    """405 ``method_not_allowed``."""
    default_code = "method_not_allowed"


class Conflict(AirlockError):
    """409: the request conflicts with the state of the session."""
    default_code = "conflict"


class SessionBusy(Conflict):
    """409 ``session_busy``: another cell of the session is running."""
    default_code = "session_busy"


class NotARegularFile(Conflict):
    """409 ``not_a_regular_file``: a fifo, socket, device or directory."""
    default_code = "not_a_regular_file"


class NotADirectory(Conflict):
    """409 ``not_a_directory``: listing something that is not a directory."""
    default_code = "not_a_directory"


class SessionDead(AirlockError):
    """410 ``session_dead``: the session has ended; ``reason`` says why
    (closed, idle, lifetime, max_cells, memory, cpu, interrupt_ignored,
    protocol, exited, shutdown, start_failed)."""
    default_code = "session_dead"

    @property
    def reason(self) -> Optional[str]:
        """Why the session ended (``error.reason``)."""
        r = self.body.get("reason")
        return r if isinstance(r, str) else None

    @property
    def session_id(self) -> Optional[str]:
        """The session that ended (``error.session_id``)."""
        r = self.body.get("session_id")
        return r if isinstance(r, str) else None


class TooLarge(AirlockError):
    """413: the body or file is too big."""
    default_code = "body_too_large"


class BodyTooLarge(TooLarge):
    """413 ``body_too_large``: the request body is over the server's --max-body."""
    default_code = "body_too_large"


class FileTooLarge(TooLarge):
    """413 ``file_too_large``: a session file over 64 MiB or --max-body."""
    default_code = "file_too_large"


class Rejected(AirlockError):
    """422: the static-validation policy refused the code before it ran
    (``policy_violation``; also ``policy_unsupported``,
    ``policy_check_failed``). ``findings`` lists why; the refusal is audited
    (``audit_id``)."""
    default_code = "policy_violation"

    @property
    def findings(self) -> List[Dict[str, Any]]:
        """The policy findings that caused the refusal."""
        f = self.body.get("findings")
        return f if isinstance(f, list) else []


class RateLimited(AirlockError):
    """429: over the key's rate (``rate_limited``), its max_concurrent
    (``too_many_concurrent``) or its live sessions (``too_many_sessions``).
    ``retry_after`` is the server's Retry-After in seconds. Raised once the
    client's bounded retries are spent."""
    default_code = "rate_limited"


class ServerError(AirlockError):
    """500: airlock failed (``internal_error``, ``audit_unavailable``)."""
    default_code = "internal_error"


class SessionStartFailed(ServerError):
    """500 ``session_start_failed``: the sandbox or its driver did not start."""
    default_code = "session_start_failed"


class Unavailable(AirlockError):
    """503: the server cannot take the request now (``queue_full``,
    ``queue_timeout``, ``shutting_down``, ``server_busy``,
    ``sessions_full``, ``response_budget_exhausted``, ``audit_unavailable``);
    retried by the client with backoff, honouring Retry-After."""
    default_code = "server_busy"


class AuditStoreFull(Unavailable):
    """503 ``audit_store_full``: the server's audit store has too little
    free space, and it refuses every run."""
    default_code = "audit_store_full"


class WorkspaceFull(AirlockError):
    """507 ``workspace_full``: the session's workspace has no room left."""
    default_code = "workspace_full"


class BinaryNotFound(AirlockError):
    """Local mode: no ``airlock`` binary (AIRLOCK_BIN or PATH)."""
    default_code = "binary_not_found"


class LocalFailed(AirlockError):
    """Local mode: ``airlock run`` printed no result (usage error, crash)."""
    default_code = "local_failed"


class NotSupported(AirlockError):
    """The operation has no meaning in this mode (e.g. sessions in local mode)."""
    default_code = "not_supported"


#: every error code the server documents (docs/openapi.json,
#: airlock-serve(1)), and its class
CODE_CLASSES: Dict[str, Type[AirlockError]] = {
    "unauthorized": AuthError, "invalid_api_key": AuthError,
    "forbidden": Forbidden, "forbidden_origin": Forbidden,
    "invalid_json": BadRequest, "invalid_utf8": BadRequest, "too_complex": BadRequest,
    "unknown_field": BadRequest, "invalid_type": BadRequest, "invalid_value": BadRequest,
    "missing_field": BadRequest, "invalid_limit": BadRequest, "invalid_file": BadRequest,
    "invalid_base64": BadRequest, "too_many": BadRequest, "unknown_parameter": BadRequest,
    "duplicate_parameter": BadRequest, "ambiguous_id": BadRequest, "invalid_code": BadRequest,
    "invalid_stdin": BadRequest, "invalid_request": BadRequest,
    "unknown_language": UnknownLanguage, "limit_exceeds_key": LimitExceedsKey,
    "limit_exceeds_server": LimitExceedsServer, "no_session_driver": NoSessionDriver,
    "bad_path": BadPath,
    "not_found": NotFound, "session_not_found": SessionNotFound,
    "file_not_found": FileNotFound,
    "method_not_allowed": MethodNotAllowed,
    "session_busy": SessionBusy, "not_a_regular_file": NotARegularFile,
    "not_a_directory": NotADirectory,
    "session_dead": SessionDead,
    "body_too_large": BodyTooLarge, "file_too_large": FileTooLarge,
    "policy_violation": Rejected, "policy_unsupported": Rejected,
    "policy_check_failed": Rejected,
    "rate_limited": RateLimited, "too_many_concurrent": RateLimited,
    "too_many_sessions": RateLimited,
    "internal_error": ServerError, "session_start_failed": SessionStartFailed,
    "queue_full": Unavailable, "queue_timeout": Unavailable, "shutting_down": Unavailable,
    "server_busy": Unavailable, "sessions_full": Unavailable,
    "response_budget_exhausted": Unavailable, "audit_store_full": AuditStoreFull,
    "workspace_full": WorkspaceFull,
}

# An unknown code (a newer server) still gets the family of its status.
_STATUS_CLASSES: Dict[int, Type[AirlockError]] = {
    400: BadRequest, 401: AuthError, 403: Forbidden, 404: NotFound,
    405: MethodNotAllowed, 409: Conflict, 410: SessionDead, 413: TooLarge,
    422: Rejected, 429: RateLimited, 500: ServerError, 503: Unavailable,
    507: WorkspaceFull,
}


def error_class(code: Optional[str], http_status: int) -> Type[AirlockError]:
    """The exception class of an error ``code`` answered with ``http_status``.

    ``audit_unavailable`` is a 500 on reads and a 503 (retryable) on runs,
    so it follows the status."""
    if code == "audit_unavailable":
        return Unavailable if http_status == 503 else ServerError
    if code and code in CODE_CLASSES:
        return CODE_CLASSES[code]
    if http_status in _STATUS_CLASSES:
        return _STATUS_CLASSES[http_status]
    return ServerError if http_status >= 500 else AirlockError
