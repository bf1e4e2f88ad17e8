"""The transport seam: send a request, read or stream the body, close.

A transport knows nothing of providers, retries or error bodies. It raises
``TransportFailure`` for anything below HTTP (connect, read, timeout) and
returns every HTTP status as a response. ``http.py`` builds on it.

A header holding a key is a ``Secret`` until the transport hands the request
to its HTTP library (``wire_headers``): nothing kept between requests holds
the raw key.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeAlias

from abstractcore.core.config import Timeout
from abstractcore.core.secrets import MASK, Secret

__all__ = [
    "BufferedResponse",
    "HttpRequest",
    "Transport",
    "TransportFailure",
    "TransportResponse",
    "wire_headers",
]

#: A header's value: text, or a ``Secret`` (an API key) revealed only while the request is sent.
HeaderValue: TypeAlias = str | Secret


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request. ``headers`` may hold secrets: it is never logged or shown."""

    method: str
    url: str
    headers: Mapping[str, HeaderValue] = field(default_factory=dict, repr=False)
    content: bytes | None = field(default=None, repr=False)
    timeout: Timeout = field(default_factory=Timeout)


class _Revealed(str):
    """A secret header's text on its way to the wire: a ``str`` for the HTTP library, masked in ``repr``
    (the library's header maps and a traceback's locals show ``'***'``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"'{MASK}'"

    def __reduce__(self) -> Any:
        raise TypeError("a header holding an API key is never pickled")


def wire_headers(headers: Mapping[str, HeaderValue]) -> dict[str, str]:
    """``headers`` for one request to the HTTP library, each ``Secret`` revealed (kept no longer)."""
    return {
        name: _Revealed(value.reveal()) if isinstance(value, Secret) else value
        for name, value in headers.items()
    }


class TransportFailure(Exception):
    """A failure below HTTP: no connection, a broken connection or a timeout."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class TransportResponse(Protocol):
    """A response whose body has not necessarily been read yet."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers; lookups are case-insensitive."""
        ...

    async def read(self) -> bytes:
        """The whole body; the connection is released afterwards."""
        ...

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """The body in chunks as they arrive (raises ``TransportFailure``)."""
        ...

    async def aclose(self) -> None:
        """Release the connection (closing it if the body was not fully read)."""
        ...


class Transport(Protocol):
    """What ``HttpClient`` needs from an HTTP library."""

    async def send(self, request: HttpRequest, *, stream: bool) -> TransportResponse:
        """Send ``request``; with ``stream=False`` the body is read before returning."""
        ...

    async def aclose(self) -> None:
        """Close every pooled connection."""
        ...


class BufferedResponse(abc.ABC):
    """What the transports' responses share: the body read once and kept, or streamed in chunks,
    and every failure below HTTP raised as ``TransportFailure``. A subclass gives the library's calls."""

    __slots__ = ("_body", "_response", "_url")

    #: The library's exceptions that mean the connection failed (or timed out) mid-body.
    errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(self, response: Any, url: str, body: bytes | None = None) -> None:
        self._response = response
        self._url = url
        self._body = body

    @abc.abstractmethod
    def _failure(self, exc: BaseException) -> TransportFailure:
        """``exc`` (one of ``errors``) as a ``TransportFailure``."""

    @abc.abstractmethod
    async def _read_all(self) -> bytes:
        """The library's "read the whole body"."""

    @abc.abstractmethod
    async def _release(self) -> None:
        """Give the connection back after a whole read."""

    @abc.abstractmethod
    def _chunks(self) -> AsyncIterator[bytes]:
        """The library's "body chunks as they arrive"."""

    async def read(self) -> bytes:
        """The whole body; the connection is released afterwards."""
        if self._body is None:
            try:
                self._body = await self._read_all()
            except self.errors as exc:
                raise self._failure(exc) from exc
            finally:
                await self._release()
        return self._body

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """The body in chunks as they arrive (``TransportFailure`` when the connection breaks)."""
        if self._body is not None:
            yield self._body
            return
        try:
            async for chunk in self._chunks():
                yield chunk
        except self.errors as exc:
            raise self._failure(exc) from exc
