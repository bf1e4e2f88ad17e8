"""Prompt caching on the Messages API: where ``cache=True`` puts the ``cache_control`` breakpoints.

Anthropic caches a request's prefix (tools, then system, then messages) up to a block marked
``cache_control: {"type": "ephemeral"}`` (``"ttl": "1h"`` for the one-hour cache; five minutes
otherwise), at most four breakpoints per request. ``add_breakpoints`` marks, within what is left
of those four (explicit ``cache_control`` in the body counts), in this order:

1. the last tool definition (the tools are the same on every call);
2. the system prompt's last block (the string becomes one text block);
3. the last block of the last message: the whole prompt is written, for the next call;
4. the last block of the previous user turn (the last message of the call before, in a
   ``Session`` or a tool loop): that prefix was written by the previous call, so it is read.

A conversation that grows by a turn per call therefore reads everything up to its previous
request from the cache and writes only the new turns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from abstractcore.core.errors import ConfigurationError

__all__ = ["MAX_BREAKPOINTS", "TTLS", "add_breakpoints", "cache_control", "cache_ttl", "caching_on"]

#: The most ``cache_control`` breakpoints the API takes in one request.
MAX_BREAKPOINTS = 4
#: The cache lifetimes the API offers ("5m" is its default).
TTLS = ("5m", "1h")


def caching_on(params: Mapping[str, Any]) -> bool:
    """True when the call asks for caching (``cache=True``)."""
    return bool(params.get("cache"))


def cache_ttl(params: Mapping[str, Any]) -> str:
    """The call's ``cache_ttl`` ("5m" when not given); ``ConfigurationError`` for any other."""
    ttl = params.get("cache_ttl")
    if ttl is None:
        return "5m"
    if ttl not in TTLS:
        raise ConfigurationError(
            f"cache_ttl must be '5m' or '1h' (Anthropic's cache lifetimes); got {ttl!r}."
        )
    return str(ttl)


def cache_control(ttl: str = "5m") -> dict[str, str]:
    """The ``cache_control`` field of a breakpoint (the 5-minute default sends no ``ttl``)."""
    return {"type": "ephemeral", "ttl": "1h"} if ttl == "1h" else {"type": "ephemeral"}


def _marked(blocks: Any) -> int:
    if not isinstance(blocks, list):
        return 0
    return sum(1 for b in blocks if isinstance(b, dict) and "cache_control" in b)


def _explicit(body: Mapping[str, Any]) -> int:
    count = _marked(body.get("tools")) + _marked(body.get("system"))
    for message in body.get("messages") or []:
        count += _marked(message.get("content"))
    return count


def _mark_last(container: dict[str, Any], key: str, control: dict[str, str]) -> bool:
    """Mark the last block of ``container[key]`` (a string becomes a text block); False when there
    is none or it is marked already."""
    value = container.get(key)
    if isinstance(value, str):
        if not value:
            return False
        container[key] = [{"type": "text", "text": value, "cache_control": control}]
        return True
    if not isinstance(value, list) or not value or "cache_control" in value[-1]:
        return False
    value[-1] = {**value[-1], "cache_control": control}
    return True


def _previous_user_turn(messages: list[dict[str, Any]]) -> int | None:
    users = [i for i, m in enumerate(messages[:-1]) if m.get("role") == "user"]
    return users[-1] if users else None


def add_breakpoints(body: dict[str, Any], ttl: str = "5m") -> dict[str, Any]:
    """``body`` (a Messages request, changed in place and returned) with the breakpoints of
    ``cache=True`` placed, as the module says; explicit ``cache_control`` is left as it is."""
    left = MAX_BREAKPOINTS - _explicit(body)
    control = cache_control(ttl)
    messages: list[dict[str, Any]] = body.get("messages") or []
    places: list[tuple[dict[str, Any], str]] = []
    if body.get("tools"):
        places.append((body, "tools"))
    if body.get("system"):
        places.append((body, "system"))
    if messages:
        places.append((messages[-1], "content"))
        previous = _previous_user_turn(messages)
        if previous is not None:
            places.append((messages[previous], "content"))
    for container, key in places:
        if left <= 0:
            break
        if _mark_last(container, key, control):
            left -= 1
    return body
