"""The asyncio client: :class:`AsyncAirlock` and :class:`AsyncSession`.

They run the synchronous client in a thread pool of their own rather than
speak HTTP on asyncio streams: one HTTP implementation (TLS, chunked
streams, retries, error mapping) serves both, with the standard library
alone; a call costs a thread while it waits, which is nothing next to a
sandbox run; and the pool's size bounds how many calls one client makes at
once. The event loop itself never blocks.
"""
import asyncio
import concurrent.futures
import functools
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Optional, TypeVar, Union

from ._http import RetryPolicy
from .client import Airlock, Session
from .results import CellResult, Result, StreamEvent

__all__ = ["AsyncAirlock", "AsyncSession"]

T = TypeVar("T")

#: calls of one AsyncAirlock in flight at once (its threads)
DEFAULT_MAX_CONCURRENCY = 16

_END = object()


class _Pool:
    def __init__(self, workers: int) -> None:
        self.ex = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                        thread_name_prefix="airlock-client")

    async def call(self, f: Callable[..., T], *a: Any, **kw: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.ex, functools.partial(f, *a, **kw))

    async def iterate(self, it: Iterator[Any]) -> AsyncIterator[Any]:
        try:
            while True:
                v = await self.call(next, it, _END)
                if v is _END:
                    return
                yield v
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                await self.call(close)


class AsyncAirlock:
    """:class:`Airlock` for asyncio: the same methods, as coroutines
    (``await al.run(...)``; ``async for ev in al.stream(...)``;
    ``async with await al.session() as s``). Arguments as for
    :class:`Airlock`, plus ``max_concurrency`` (calls in flight at once)."""

    def __init__(self, url: Optional[str] = None, api_key: Optional[str] = None, *,
                 retry: Union[RetryPolicy, int, None] = None, timeout_margin: float = 15.0,
                 connect_timeout: float = 10.0,
                 max_concurrency: int = DEFAULT_MAX_CONCURRENCY) -> None:
        self.sync = Airlock(url, api_key, retry=retry, timeout_margin=timeout_margin,
                            connect_timeout=connect_timeout)
        self._pool = _Pool(max_concurrency)

    def __repr__(self) -> str:
        return "Async" + repr(self.sync)

    async def __aenter__(self) -> "AsyncAirlock":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the client's threads (after the calls in flight end)."""
        await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self._pool.ex.shutdown, wait=True))

    async def run(self, code: Union[str, bytes], language: str = "python",
                  **kw: Any) -> Result:
        """As :meth:`Airlock.run`."""
        return await self._pool.call(self.sync.run, code, language, **kw)

    async def stream(self, code: Union[str, bytes], language: str = "python",
                     **kw: Any) -> AsyncIterator[StreamEvent]:
        """As :meth:`Airlock.stream`, an async iterator."""
        async for ev in self._pool.iterate(self.sync.stream(code, language, **kw)):
            yield ev

    async def execute_compat(self, code: str, language: str = "python",
                             timeout: float = 30) -> Dict[str, Any]:
        """As :meth:`Airlock.execute_compat`."""
        return await self._pool.call(self.sync.execute_compat, code, language, timeout)

    async def session(self, language: str = "python", **kw: Any) -> "AsyncSession":
        """As :meth:`Airlock.session` -> :class:`AsyncSession`."""
        s = await self._pool.call(self.sync.session, language, **kw)
        return AsyncSession(self._pool, s)

    async def sessions(self) -> List[Dict[str, Any]]:
        """As :meth:`Airlock.sessions`."""
        return await self._pool.call(self.sync.sessions)

    async def execution(self, id: str) -> Dict[str, Any]:
        """As :meth:`Airlock.execution`."""
        return await self._pool.call(self.sync.execution, id)

    async def audit(self, **filters: Any) -> Dict[str, Any]:
        """As :meth:`Airlock.audit`."""
        return await self._pool.call(self.sync.audit, **filters)

    async def languages(self) -> List[Dict[str, Any]]:
        """As :meth:`Airlock.languages`."""
        return await self._pool.call(self.sync.languages)

    async def health(self) -> bool:
        """As :meth:`Airlock.health`."""
        return await self._pool.call(self.sync.health)

    async def ready(self) -> Dict[str, Any]:
        """As :meth:`Airlock.ready`."""
        return await self._pool.call(self.sync.ready)


class AsyncSession:
    """:class:`Session` for asyncio (made by :meth:`AsyncAirlock.session`)."""

    def __init__(self, pool: _Pool, session: Session) -> None:
        self._pool = pool
        self.sync = session
        self.id = session.id

    def __repr__(self) -> str:
        return "Async" + repr(self.sync)

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def results(self) -> List[Any]:
        """The rich results of the last cell."""
        return self.sync.results

    async def run(self, code: Union[str, bytes], **kw: Any) -> CellResult:
        """As :meth:`Session.run`."""
        return await self._pool.call(self.sync.run, code, **kw)

    async def stream(self, code: Union[str, bytes], **kw: Any) -> AsyncIterator[StreamEvent]:
        """As :meth:`Session.stream`, an async iterator."""
        async for ev in self._pool.iterate(self.sync.stream(code, **kw)):
            yield ev

    async def interrupt(self) -> bool:
        """As :meth:`Session.interrupt`."""
        return await self._pool.call(self.sync.interrupt)

    async def upload(self, path: Union[str, bytes], data: Any) -> Dict[str, Any]:
        """As :meth:`Session.upload`."""
        return await self._pool.call(self.sync.upload, path, data)

    async def download(self, path: Union[str, bytes]) -> bytes:
        """As :meth:`Session.download`."""
        return await self._pool.call(self.sync.download, path)

    async def delete_file(self, path: Union[str, bytes]) -> Dict[str, Any]:
        """As :meth:`Session.delete_file`."""
        return await self._pool.call(self.sync.delete_file, path)

    async def files(self, dir: str = "") -> List[Dict[str, Any]]:
        """As :meth:`Session.files`."""
        return await self._pool.call(self.sync.files, dir)

    async def status(self) -> Dict[str, Any]:
        """As :meth:`Session.status`."""
        return await self._pool.call(self.sync.status)

    async def close(self) -> Dict[str, Any]:
        """As :meth:`Session.close`."""
        return await self._pool.call(self.sync.close)
