"""Bytes on the wire: compact JSON, server-sent events, ids and timestamps."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

__all__ = ["JSON_HEADERS", "SSE_HEADERS", "dumps", "new_id", "now", "sse_data", "sse_event"]

_encode = json.JSONEncoder(separators=(",", ":")).encode

JSON_HEADERS = {"content-type": "application/json"}
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON (non-ASCII escaped: always valid UTF-8, whatever a model emits)."""
    return _encode(value).encode()


def sse_data(value: Any) -> bytes:
    """One unnamed event (``data: {...}``), as OpenAI streams."""
    return b"data: " + dumps(value) + b"\n\n"


def sse_event(name: str, value: Any) -> bytes:
    """One named event (``event: NAME`` then ``data: {...}``), as Anthropic streams."""
    return b"event: " + name.encode() + b"\ndata: " + dumps(value) + b"\n\n"


def new_id(prefix: str) -> str:
    """A fresh id such as ``chatcmpl-3f9a...`` (24 hex digits)."""
    return prefix + secrets.token_hex(12)


def now() -> int:
    """Seconds since the epoch (the ``created`` field)."""
    return int(time.time())
