"""The HTTP transport of the client: http.client, one connection per
request (so a client object is safe to share between threads), bounded
retries of the refusals that say "not now", and the key kept out of every
text the client produces."""
import http.client
import json
import random
import socket
import ssl
import time
import urllib.parse
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from . import errors
from .errors import AirlockError, ClientTimeout, TransportError

#: statuses that mean "refused before anything ran, try later": retrying
#: them never runs code twice
RETRY_STATUSES = (429, 503)

#: an error body larger than this is not parsed (a proxy's HTML page, say)
MAX_ERROR_BODY = 1 << 20


class RetryPolicy:
    """How the client retries 429 and 503 answers (the server refused
    before running anything, so a retry never runs code twice).

    ``max_retries``: retries after the first attempt (0: none).
    ``backoff``: the first wait when the server sends no Retry-After,
    doubled each retry, at most ``max_backoff``. The wait is never shorter
    than the server's Retry-After; an answer whose Retry-After is above
    ``max_wait`` is raised at once instead of slept on. ``sleep`` is the
    function that waits (tests replace it to record the waits)."""

    def __init__(self, max_retries: int = 3, backoff: float = 0.5, max_backoff: float = 8.0,
                 max_wait: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> None:
        if max_retries < 0 or backoff < 0 or max_backoff < 0 or max_wait < 0:
            raise ValueError("retry settings must be >= 0")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_wait = max_wait
        self.sleep = sleep

    def delay(self, attempt: int, retry_after: Optional[float]) -> float:
        """The wait before retry number ATTEMPT (0-based)."""
        d = float(min(self.backoff * (2 ** attempt), self.max_backoff))
        d += random.uniform(0, d / 10)  # spread clients that were refused together
        if retry_after is not None:
            d = max(d, retry_after)
        return d

    def __repr__(self) -> str:
        return "RetryPolicy(max_retries=%d, backoff=%r, max_backoff=%r, max_wait=%r)" % (
            self.max_retries, self.backoff, self.max_backoff, self.max_wait)


def parse_retry_after(v: Optional[str]) -> Optional[float]:
    """Retry-After in seconds (delta-seconds or an HTTP date), or None."""
    if not v:
        return None
    v = v.strip()
    if v.isdigit():
        return float(v)
    try:
        when = parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Transport:
    """One server: base URL, key, retry policy. Not public API."""

    def __init__(self, url: str, api_key: Optional[str], retry: RetryPolicy,
                 connect_timeout: float, user_agent: str) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("the server URL must be http://HOST[:PORT] or https://...")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port
        self.prefix = u.path.rstrip("/")
        self.url = "%s://%s%s%s" % (u.scheme, u.netloc.rpartition("@")[2], self.prefix, "")
        self._key = api_key
        self.retry = retry
        self.connect_timeout = connect_timeout
        self.user_agent = user_agent

    def scrub(self, s: str) -> str:
        """S with the API key (and its secret part) replaced by ***."""
        if self._key:
            s = s.replace(self._key, "***")
            secret = self._key.rsplit("_", 1)[-1]
            if len(secret) >= 8:
                s = s.replace(secret, "***")
        return s

    def _conn(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _headers(self, extra: Optional[Mapping[str, str]]) -> Dict[str, str]:
        h = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self._key:
            h["Authorization"] = "Bearer " + self._key
        h.update(extra or {})
        return h

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> AirlockError:
        """The exception for an error answer."""
        js: Any = None
        try:
            js = json.loads(body[:MAX_ERROR_BODY]) if body else None
        except ValueError:
            js = None
        return self.error_from(status, js, parse_retry_after(headers.get("retry-after")),
                               body)

    def error_from(self, status: int, js: Any, retry_after: Optional[float],
                   raw: bytes = b"") -> AirlockError:
        """The exception for the error object JS answered with STATUS."""
        err = js.get("error") if isinstance(js, dict) else None
        if isinstance(err, str) and isinstance(js, dict) and "success" in js:
            # the compat route (POST /execute) keeps the status and says why
            # in a string: {success: false, output, error, id}
            return errors.error_class(None, status)(
                self.scrub(err), code=None, http_status=status, retry_after=retry_after,
                audit_id=js.get("id") if isinstance(js.get("id"), str) else None)
        if not isinstance(err, dict):
            text = raw[:200].decode("utf-8", "replace") or http.client.responses.get(status, "")
            return errors.error_class(None, status)(
                self.scrub("HTTP %d without an airlock error object: %s" % (status, text)),
                code=None, http_status=status, retry_after=retry_after)
        code = err.get("code") if isinstance(err.get("code"), str) else None
        msg = self.scrub(str(err.get("message", "")))
        body = {k: v for k, v in err.items()}
        assert isinstance(js, dict)
        for k in ("findings", "status"):
            if k in js:
                body[k] = js[k]
        body["message"] = msg
        cls = errors.error_class(code, status)
        return cls(msg, code=code, http_status=status,
                   field=err.get("field") if isinstance(err.get("field"), str) else None,
                   audit_id=js.get("id") if isinstance(js.get("id"), str) else None,
                   body=body, retry_after=retry_after)

    def _once(self, method: str, path: str, body: Optional[bytes], headers: Dict[str, str],
              timeout: float) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        c = self._conn(min(self.connect_timeout, timeout))
        try:
            c.connect()
            if c.sock is not None:
                c.sock.settimeout(timeout)
            c.request(method, self.prefix + path, body=body, headers=headers)
            return c, c.getresponse()
        except socket.timeout as e:
            c.close()
            raise ClientTimeout("no answer from %s within %.1f s" % (self.url, timeout)) from e
        except (OSError, http.client.HTTPException) as e:
            c.close()
            raise TransportError(self.scrub("%s %s: %s" % (method, self.url + path, e))) from e

    def open(self, method: str, path: str, *, json_body: Any = None, data: Optional[bytes] = None,
             headers: Optional[Mapping[str, str]] = None, timeout: float = 30.0,
             retry: bool = True) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request (retrying 429/503 per the policy) -> the open
        connection and a 2xx response whose body is still unread. Error
        answers raise their exception."""
        h = self._headers(headers)
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            h["Content-Type"] = "application/json"
        attempt = 0
        while True:
            c, r = self._once(method, path, data, h, timeout)
            if 200 <= r.status < 300:
                return c, r
            try:
                raw = r.read(MAX_ERROR_BODY + 1)
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                c.close()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            exc = self.error(r.status, hdrs, raw)
            if (not retry or r.status not in RETRY_STATUSES
                    or attempt >= self.retry.max_retries):
                raise exc
            wait = self.retry.delay(attempt, exc.retry_after)
            if exc.retry_after is not None and exc.retry_after > self.retry.max_wait:
                raise exc
            self.retry.sleep(wait)
            attempt += 1

    def request(self, method: str, path: str, *, json_body: Any = None,
                data: Optional[bytes] = None, headers: Optional[Mapping[str, str]] = None,
                timeout: float = 30.0, retry: bool = True,
                max_bytes: Optional[int] = None) -> Tuple[Dict[str, str], bytes]:
        """Send a request -> (lower-case headers, body bytes)."""
        c, r = self.open(method, path, json_body=json_body, data=data, headers=headers,
                         timeout=timeout, retry=retry)
        try:
            body = r.read() if max_bytes is None else r.read(max_bytes)
        except socket.timeout as e:
            raise ClientTimeout("the answer from %s stalled for %.1f s" % (self.url, timeout)) from e
        except (OSError, http.client.HTTPException) as e:
            raise TransportError(self.scrub("reading %s: %s" % (path, e))) from e
        finally:
            c.close()
        return {k.lower(): v for k, v in r.getheaders()}, body

    def json(self, method: str, path: str, **kw: Any) -> Any:
        """Send a request -> the JSON body of its 2xx answer."""
        _, body = self.request(method, path, **kw)
        try:
            return json.loads(body)
        except ValueError as e:
            raise TransportError("%s %s: the answer is not JSON" % (method, path)) from e

    def events(self, path: str, json_body: Any, timeout: float) -> Iterator[Tuple[str, Any]]:
        """POST with Accept: text/event-stream -> (event, parsed data) as
        they arrive. The connection is closed when the iterator ends or is
        dropped."""
        c, r = self.open("POST", path, json_body=json_body,
                         headers={"Accept": "text/event-stream"}, timeout=timeout)
        try:
            ctype = (r.getheader("Content-Type") or "").split(";")[0].strip()
            if ctype != "text/event-stream":
                # a server that answered in one piece: one final event
                body = r.read()
                yield "result", json.loads(body)
                return
            name, data = "message", []  # type: str, List[str]
            while True:
                try:
                    line = r.readline()
                except socket.timeout as e:
                    raise ClientTimeout("the stream from %s stalled for %.1f s"
                                        % (self.url, timeout)) from e
                except (OSError, http.client.HTTPException) as e:
                    raise TransportError(self.scrub("stream %s: %s" % (path, e))) from e
                if not line:
                    return
                s = line.decode("utf-8", "replace").rstrip("\r\n")
                if s == "":
                    if data:
                        try:
                            yield name, json.loads("\n".join(data))
                        except ValueError as e:
                            raise TransportError("stream %s: an event is not JSON" % path) from e
                    name, data = "message", []
                elif s.startswith(":"):
                    continue
                else:
                    field, _, value = s.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        name = value
                    elif field == "data":
                        data.append(value)
        finally:
            c.close()
