"""Headers a layer above adds to every outgoing provider request: tracing's W3C ``traceparent``
when ``abstractcore.instrument(propagate=True)`` asked for it.

``outgoing`` is None (nothing added: one None check per request) or a function called as each
request is built, in the caller's context, returning the headers to add. This module imports
nothing; the transport reads it, the tracing sets it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["added", "outgoing"]

#: The headers to add to an outgoing request (None: none).
outgoing: Callable[[], Mapping[str, str]] | None = None


def added(headers: dict[str, Any]) -> dict[str, Any]:
    """``headers`` with ``outgoing()``'s added (``headers`` itself when ``outgoing`` is None)."""
    return headers if outgoing is None else {**headers, **outgoing()}
