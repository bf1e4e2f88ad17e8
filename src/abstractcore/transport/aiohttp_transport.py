"""The default transport on asyncio: aiohttp's connection pool.

Measured here: bare aiohttp serves ~14x the requests per second of
``httpx.AsyncClient`` at 100 concurrent requests (see benchmarks/overhead.py).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Mapping

import aiohttp

from abstractcore.core.config import Timeout
from abstractcore.transport.base import HttpRequest, TransportFailure

__all__ = ["AiohttpTransport", "close_transports_of_running_loop"]

_LIVE: weakref.WeakSet[AiohttpTransport] = weakref.WeakSet()


def _client_timeout(timeout: Timeout, *, stream: bool) -> aiohttp.ClientTimeout:
    if stream:
        # ``total`` would cut a long stream; it bounds the headers in HttpClient instead.
        return aiohttp.ClientTimeout(total=None, sock_connect=timeout.connect,
                                     sock_read=timeout.read)
    return aiohttp.ClientTimeout(total=timeout.total, sock_connect=timeout.connect,
                                 sock_read=timeout.read)


def _failure(exc: BaseException, url: str) -> TransportFailure:
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return TransportFailure(f"timed out talking to {url}", timeout=True)
    return TransportFailure(f"{type(exc).__name__}: {exc}".strip())


class _AiohttpResponse:
    __slots__ = ("_body", "_response", "_url")

    def __init__(self, response: aiohttp.ClientResponse, url: str, body: bytes | None) -> None:
        self._response = response
        self._url = url
        self._body = body

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def read(self) -> bytes:
        if self._body is None:
            try:
                self._body = await self._response.read()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise _failure(exc, self._url) from exc
            finally:
                self._response.release()
        return self._body

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        if self._body is not None:
            yield self._body
            return
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _failure(exc, self._url) from exc

    async def aclose(self) -> None:
        if not self._response.closed:
            if self._response.content.at_eof():
                self._response.release()
            else:
                self._response.close()


class AiohttpTransport:
    """A pooled ``aiohttp.ClientSession`` bound to the running asyncio loop."""

    def __init__(self, *, max_connections: int = 100) -> None:
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections,
                                         ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                              trust_env=True, skip_auto_headers=("User-Agent",))
        self._loop = asyncio.get_running_loop()
        _LIVE.add(self)

    async def send(self, request: HttpRequest, *, stream: bool) -> _AiohttpResponse:
        try:
            response = await self._session.request(
                request.method, request.url, data=request.content,
                headers=dict(request.headers),
                timeout=_client_timeout(request.timeout, stream=stream))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _failure(exc, request.url) from exc
        wrapped = _AiohttpResponse(response, request.url, None)
        if not stream:
            await wrapped.read()
        return wrapped

    async def aclose(self) -> None:
        await self._session.close()

    def __del__(self) -> None:
        # Dropped without aclose() (its loop ended, e.g. after asyncio.run): close the
        # sockets quietly instead of letting aiohttp warn about an unclosed session.
        session = getattr(self, "_session", None)
        if session is not None and not session.closed:
            try:
                session.connector._close()
            except Exception:
                pass


async def close_transports_of_running_loop() -> None:
    """Close every live aiohttp transport bound to the running loop (used at exit)."""
    loop = asyncio.get_running_loop()
    for transport in list(_LIVE):
        if transport._loop is loop:
            await transport.aclose()
