"""The transport on trio, and whenever a user hands in an ``httpx.AsyncClient``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import anyio
import httpx

from abstractcore.core.config import Timeout
from abstractcore.transport.base import BufferedResponse, HttpRequest, TransportFailure, wire_headers

__all__ = ["HttpxTransport"]


def _httpx_timeout(timeout: Timeout) -> dict[str, float | None]:
    return {"connect": timeout.connect, "read": timeout.read, "write": timeout.read, "pool": timeout.connect}


def _failure(exc: httpx.HTTPError, url: str) -> TransportFailure:
    if isinstance(exc, httpx.TimeoutException):
        return TransportFailure(f"timed out talking to {url}", timeout=True)
    return TransportFailure(f"{type(exc).__name__}: {exc}".strip())


class _HttpxResponse(BufferedResponse):
    __slots__ = ()
    errors = (httpx.HTTPError,)

    @property
    def status(self) -> int:
        return int(self._response.status_code)

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers  # type: ignore[no-any-return]

    def _failure(self, exc: BaseException) -> TransportFailure:
        return _failure(exc, self._url)  # type: ignore[arg-type]

    async def _read_all(self) -> bytes:
        return bytes(await self._response.aread())

    async def _release(self) -> None:
        await self._response.aclose()

    def _chunks(self) -> AsyncIterator[bytes]:
        return self._response.aiter_raw()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxTransport:
    """An ``httpx.AsyncClient``: ours (closed by ``aclose``) or the user's (left open)."""

    def __init__(self, *, max_connections: int = 100, client: httpx.AsyncClient | None = None) -> None:
        self._owned = client is None
        self._client = client or httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            timeout=None,
            follow_redirects=False,
        )

    async def send(self, request: HttpRequest, *, stream: bool) -> _HttpxResponse:
        req = self._client.build_request(
            request.method,
            request.url,
            content=request.content,
            headers=wire_headers(request.headers),  # httpx turns them into bytes here
            extensions={"timeout": _httpx_timeout(request.timeout)},
        )
        total = None if stream else request.timeout.total
        try:
            with anyio.fail_after(total):
                response = await self._client.send(req, stream=True)
                wrapped = _HttpxResponse(response, request.url)
                if not stream:
                    await wrapped.read()
        except httpx.HTTPError as exc:
            raise _failure(exc, request.url) from exc
        except TimeoutError as exc:
            raise TransportFailure(f"timed out talking to {request.url}", timeout=True) from exc
        return wrapped

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()
