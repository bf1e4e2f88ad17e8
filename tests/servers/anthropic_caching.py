"""Prompt caching for the Anthropic test server, as the Messages API publishes it.

A request's prefix (tools, system, messages, in that order) up to a block marked
``cache_control: {"type": "ephemeral"[, "ttl": "5m" | "1h"]}`` is a cache entry: written on first
sight (``cache_creation_input_tokens``), read afterwards (``cache_read_input_tokens``), for its
time to live. The usage then splits the prompt as the API does: ``input_tokens`` is what comes
after the last breakpoint, so the three add up to the whole prompt; ``cache_creation`` says which
lifetime was written. More than four breakpoints, or a ``ttl`` other than 5m / 1h, is the API's
400. ``POST /v1/messages/count_tokens`` counts a request's prompt (``{"input_tokens": N}``).

The entries are keyed by the prefix's JSON (``cache_control`` left out) and hold its token
count: the chat template's tokens of the system prompt and turns up to the breakpoint (the
tools are not part of this server's prompt: their prefix counts no tokens).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["COUNT_FIELDS", "Cache", "breakpoint_problem"]

#: The fields ``/v1/messages/count_tokens`` takes.
COUNT_FIELDS = {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"}
_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}

Chat = list[dict[str, str]]


def _controls(body: dict[str, Any]) -> list[tuple[tuple[str, int, int], dict[str, Any]]]:
    """Each breakpoint as (where, its cache_control): where is (part, message index, block index)."""
    found: list[tuple[tuple[str, int, int], dict[str, Any]]] = []
    for j, tool in enumerate(body.get("tools") or []):
        if isinstance(tool, dict) and "cache_control" in tool:
            found.append((("tools", 0, j), tool["cache_control"]))
    system = body.get("system")
    for j, block in enumerate(system if isinstance(system, list) else []):
        if isinstance(block, dict) and "cache_control" in block:
            found.append((("system", 0, j), block["cache_control"]))
    for i, message in enumerate(body.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            if isinstance(block, dict) and "cache_control" in block:
                found.append((("messages", i, j), block["cache_control"]))
    return found


def breakpoint_problem(body: dict[str, Any]) -> str | None:
    """The API's message for breakpoints it rejects (None: they are fine)."""
    controls = _controls(body)
    if len(controls) > 4:
        return f"A maximum of 4 blocks with cache_control may be provided. Found {len(controls)}."
    for _, control in controls:
        if not isinstance(control, dict) or control.get("type") != "ephemeral":
            return "cache_control.type: Input should be 'ephemeral'"
        if control.get("ttl", "5m") not in _TTL_SECONDS:
            return "cache_control.ttl: Input should be '5m' or '1h'"
    return None


def _key(prefix: dict[str, Any]) -> bytes:
    """The cache key of a prefix: its JSON without ``cache_control``, a string content or system
    prompt read as the one text block it is (the API caches them alike)."""
    system = prefix.get("system")
    if isinstance(system, str):
        prefix = {**prefix, "system": [{"type": "text", "text": system}]}
    if "messages" in prefix:
        prefix = {
            **prefix,
            "messages": [
                {**m, "content": [{"type": "text", "text": m["content"]}]}
                if isinstance(m.get("content"), str)
                else m
                for m in prefix["messages"]
            ],
        }
    return hashlib.sha256(json.dumps(_strip(prefix), sort_keys=True).encode()).digest()


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _prefix(body: dict[str, Any], where: tuple[str, int, int]) -> dict[str, Any]:
    """The request up to and including the block at ``where``."""
    part, i, j = where
    tools = body.get("tools") or []
    prefix: dict[str, Any] = {"tools": tools[: j + 1] if part == "tools" else tools}
    if part == "tools":
        return prefix
    system = body.get("system")
    prefix["system"] = system[: j + 1] if part == "system" and isinstance(system, list) else system
    if part == "system":
        return prefix
    messages = list(body.get("messages") or [])[: i + 1]
    last = dict(messages[-1])
    last["content"] = list(last["content"])[: j + 1]
    prefix["messages"] = [*messages[:-1], last]
    return prefix


class Cache:
    """The server's prompt cache: prefix key -> (tokens, expiry)."""

    def __init__(self, count: Callable[[Chat], int], chat: Callable[[dict[str, Any]], Chat]) -> None:
        self._count = count
        self._chat = chat
        self._entries: dict[bytes, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def _tokens(self, prefix: dict[str, Any]) -> int:
        if "messages" not in prefix:
            if not prefix.get("system"):
                return 0
            prefix = {**prefix, "messages": []}
        return self._count(self._chat(prefix))

    def usage(self, body: dict[str, Any], input_tokens: int) -> dict[str, Any]:
        """The prompt's usage fields for ``body`` (whose whole prompt is ``input_tokens``),
        reading and writing the entries at its breakpoints."""
        read = written = 0
        written_by_ttl = {"5m": 0, "1h": 0}
        now = time.monotonic()
        done = 0  # tokens of the prefix read or written so far
        for where, control in _controls(body):
            prefix = _prefix(body, where)
            key = _key(prefix)
            ttl = control.get("ttl", "5m")
            tokens = min(self._tokens(prefix), input_tokens)
            with self._lock:
                entry = self._entries.get(key)
                hit = entry is not None and entry[1] > now
                self._entries[key] = (tokens, now + _TTL_SECONDS[ttl])
            new = max(tokens - done, 0)
            if hit:
                read += new
            else:
                written += new
                written_by_ttl[ttl] += new
            done = max(done, tokens)
        return {
            "input_tokens": input_tokens - read - written,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": written_by_ttl["5m"],
                "ephemeral_1h_input_tokens": written_by_ttl["1h"],
            },
        }
