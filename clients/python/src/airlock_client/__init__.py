"""airlock_client: a Python client for airlock, the sandbox for AI-agent code.

    from airlock_client import Airlock
    al = Airlock("http://127.0.0.1:8080", api_key="alk_...")  # or AIRLOCK_URL, AIRLOCK_API_KEY
    r = al.run("print(2 + 2)", timeout=10)
    r.ok, r.status, r.stdout, r.limits_hit, r.audit_id

Standard library only. Refusals raise :class:`AirlockError` subclasses keyed
by the server's error code; sandbox failures are results (``r.status``).
"""
from ._http import RetryPolicy
from .aio import AsyncAirlock, AsyncSession
from .client import Airlock, Session, __version__
from .errors import (AirlockError, AuditStoreFull, AuthError, BadPath, BadRequest, BinaryNotFound,
                     BodyTooLarge, ClientTimeout, Conflict, FileNotFound, FileTooLarge, Forbidden,
                     LimitExceedsKey, LimitExceedsServer, LocalFailed, MethodNotAllowed,
                     NoSessionDriver, NotADirectory, NotARegularFile, NotFound, NotSupported,
                     RateLimited, Rejected, ServerError, SessionBusy, SessionDead,
                     SessionNotFound, SessionStartFailed, TooLarge, TransportError,
                     Unavailable, UnknownLanguage, WorkspaceFull)
from .local import LocalAirlock
from .results import CellError, CellResult, OutFile, Result, RichResult, StreamEvent

__all__ = [
    "Airlock", "AsyncAirlock", "Session", "AsyncSession", "LocalAirlock", "RetryPolicy",
    "Result", "CellResult", "CellError", "RichResult", "OutFile", "StreamEvent",
    "AirlockError", "TransportError", "ClientTimeout", "AuthError", "Forbidden", "BadRequest",
    "UnknownLanguage", "LimitExceedsKey", "LimitExceedsServer", "NoSessionDriver", "BadPath",
    "NotFound", "SessionNotFound", "FileNotFound", "MethodNotAllowed", "Conflict",
    "SessionBusy", "NotARegularFile", "NotADirectory", "SessionDead", "TooLarge",
    "BodyTooLarge", "FileTooLarge", "Rejected", "RateLimited", "ServerError",
    "SessionStartFailed", "Unavailable", "AuditStoreFull", "WorkspaceFull", "BinaryNotFound",
    "LocalFailed", "NotSupported", "__version__",
]
