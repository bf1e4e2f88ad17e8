"""Headers a layer above adds to every outgoing provider request: tracing's W3C ``traceparent``
when ``abstractcore.instrument(propagate=True)`` asked for it.

``outgoing`` is None (nothing added: one None check per request) or a function called as each
request is built, in the caller's context, returning the headers to add. This module imports
nothing; the transport reads it, the tracing sets it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["outgoing"]

#: The headers to add to an outgoing request (None: none).
outgoing: Callable[[], Mapping[str, str]] | None = None
