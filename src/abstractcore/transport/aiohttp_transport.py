"""The default transport on asyncio: aiohttp's connection pool.

Measured here: bare aiohttp serves ~14x the requests per second of
``httpx.AsyncClient`` at 100 concurrent requests (see benchmarks/overhead.py).
"""

from __future__ import annotations

import asyncio
import functools
import urllib.request
import weakref
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import aiohttp

from abstractcore.core.config import Timeout
from abstractcore.core.secrets import Secret
from abstractcore.transport.base import (
    BufferedResponse,
    HeaderValue,
    HttpRequest,
    TransportFailure,
    wire_headers,
)

__all__ = ["AiohttpTransport", "close_transports_of_running_loop"]

_LIVE: weakref.WeakSet[AiohttpTransport] = weakref.WeakSet()


@functools.lru_cache(maxsize=64)
def _client_timeout(timeout: Timeout, stream: bool) -> aiohttp.ClientTimeout:
    if stream:
        # ``total`` would cut a long stream; it bounds the headers in HttpClient instead.
        return aiohttp.ClientTimeout(total=None, sock_connect=timeout.connect, sock_read=timeout.read)
    # a per-read timer re-armed on every packet is redundant when ``total`` is the tighter bound
    read = timeout.read
    if read is not None and timeout.total is not None and read >= timeout.total:
        read = None
    return aiohttp.ClientTimeout(total=timeout.total, sock_connect=timeout.connect, sock_read=read)


class _Proxies:
    """Proxies from the environment (``HTTPS_PROXY``, ``NO_PROXY``, ...), read once.

    aiohttp's own ``trust_env=True`` re-reads them, and ``~/.netrc``, in a
    thread on every request: half of its per-request cost here.
    """

    def __init__(self) -> None:
        self._proxies = urllib.request.getproxies()
        self._cache: dict[tuple[str, str], str | None] = {}

    def for_url(self, url: str) -> str | None:
        if not self._proxies:
            return None
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._cache:
            proxy = self._proxies.get(parts.scheme)
            if proxy and urllib.request.proxy_bypass(parts.hostname or ""):
                proxy = None
            self._cache[key] = proxy
        return self._cache[key]


def _failure(exc: BaseException, url: str) -> TransportFailure:
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return TransportFailure(f"timed out talking to {url}", timeout=True)
    return TransportFailure(f"{type(exc).__name__}: {exc}".strip())


class _AiohttpResponse(BufferedResponse):
    __slots__ = ()
    errors = (aiohttp.ClientError, asyncio.TimeoutError)

    @property
    def status(self) -> int:
        return int(self._response.status)

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers  # type: ignore[no-any-return]

    def _failure(self, exc: BaseException) -> TransportFailure:
        return _failure(exc, self._url)

    async def _read_all(self) -> bytes:
        return bytes(await self._response.read())

    async def _release(self) -> None:
        self._response.release()

    def _chunks(self) -> AsyncIterator[bytes]:
        return self._response.content.iter_any()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        if not self._response.closed:
            if self._response.content.at_eof():
                self._response.release()
            else:
                self._response.close()


class AiohttpTransport:
    """A pooled ``aiohttp.ClientSession`` bound to the running asyncio loop."""

    def __init__(
        self, *, max_connections: int = 100, base_headers: Mapping[str, HeaderValue] | None = None
    ) -> None:
        connector = aiohttp.TCPConnector(
            limit=max_connections, limit_per_host=max_connections, ttl_dns_cache=300
        )
        # Headers sent with every request live on the session: aiohttp then copies one
        # CIMultiDict per request instead of rebuilding it from a dict (measurable at 100+ rps).
        # A header holding a key does not: the session would keep it revealed; it is added per request.
        base = dict(base_headers or {})
        self._base_headers = base_headers
        self._base_secrets = {name: value for name, value in base.items() if isinstance(value, Secret)}
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            trust_env=False,
            headers={name: value for name, value in base.items() if isinstance(value, str)},
        )
        self._proxies = _Proxies()
        # If the session becomes cyclic garbage, weakref callbacks run before any __del__:
        # close its sockets quietly there too, so aiohttp never warns "Unclosed client session".
        weakref.finalize(self._session, _close_quietly, connector).atexit = False
        self._loop = asyncio.get_running_loop()
        _LIVE.add(self)

    async def send(self, request: HttpRequest, *, stream: bool) -> _AiohttpResponse:
        if request.headers is self._base_headers:
            headers = wire_headers(self._base_secrets) if self._base_secrets else None
        else:
            headers = wire_headers(request.headers)
        try:
            response = await self._session.request(
                request.method,
                request.url,
                data=request.content,
                headers=headers,
                timeout=_client_timeout(request.timeout, stream),
                proxy=self._proxies.for_url(request.url),
            )
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
        if session is not None and session.connector is not None:
            _close_quietly(session.connector)


def _close_quietly(connector: aiohttp.BaseConnector) -> None:
    if not connector.closed:
        try:
            connector._close()
        except Exception:  # the loop may be gone; nothing left to release
            pass


async def close_transports_of_running_loop() -> None:
    """Close every live aiohttp transport bound to the running loop (used at exit)."""
    loop = asyncio.get_running_loop()
    for transport in list(_LIVE):
        if transport._loop is loop:
            await transport.aclose()
