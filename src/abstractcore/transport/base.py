"""The transport seam: send a request, read or stream the body, close.

A transport knows nothing of providers, retries or error bodies. It raises
``TransportFailure`` for anything below HTTP (connect, read, timeout) and
returns every HTTP status as a response. ``http.py`` builds on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from abstractcore.core.config import Timeout

__all__ = ["HttpRequest", "Transport", "TransportFailure", "TransportResponse"]


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request. ``headers`` may hold secrets: it is never logged or shown."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    content: bytes | None = field(default=None, repr=False)
    timeout: Timeout = field(default_factory=Timeout)


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
