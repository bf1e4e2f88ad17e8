"""The shapes both directions of the Messages API share: the one stop-reason map and usage."""

from __future__ import annotations

from typing import Any

from abstractcore.core.types import Usage

__all__ = ["INPUT_FIELDS", "STOP_REASONS", "finish_reason", "stop_reason", "usage_body", "usage_of"]

#: Common finish reason -> Anthropic's ``stop_reason``: what a server sends, and (read backwards,
#: with the aliases below) what a client reads.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
#: Stop reasons that read as a common one but are never sent for it.
_ALIASES = {"stop_sequence": "stop", "model_context_window_exceeded": "length"}
_FINISH_REASONS = {**{wire: common for common, wire in STOP_REASONS.items()}, **_ALIASES}


def finish_reason(stop_reason: str | None) -> str | None:
    """Anthropic's ``stop_reason`` in the common vocabulary (stop, length, tool_calls, ...)."""
    if stop_reason is None:
        return None
    return _FINISH_REASONS.get(stop_reason, stop_reason)


def stop_reason(reason: str | None, calls: bool) -> str:
    """The ``stop_reason`` a server sends for a common finish reason ("tool_use" when calls end it)."""
    if calls and reason in (None, "stop", "tool_calls"):
        return "tool_use"
    return STOP_REASONS.get(reason or "stop", "end_turn")


#: Anthropic's usage fields for the prompt: the uncached part, read from and written to the cache.
INPUT_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def usage_of(usage: Any) -> Usage | None:
    """A reply's ``usage`` object as ``Usage`` (None when there is none).

    Anthropic's ``input_tokens`` leaves out the cached prompt; ours counts every prompt token:
    ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``, the read ones in
    ``cached_tokens``, the written ones in ``cache_write_tokens``."""
    if not isinstance(usage, dict):
        return None
    uncached, read, written = (int(usage.get(name) or 0) for name in INPUT_FIELDS)
    return Usage.of(
        uncached + read + written,
        usage.get("output_tokens"),
        cached_tokens=read,
        cache_write_tokens=written,
    )


def usage_body(usage: Usage | None) -> dict[str, int]:
    """Anthropic's usage (its SDK needs numbers: 0 when the back end did not count): the uncached
    prompt in ``input_tokens``, the cached in ``cache_read_input_tokens`` /
    ``cache_creation_input_tokens``."""
    if usage is None:
        usage = Usage()
    read, written = usage.cached_tokens, usage.cache_write_tokens
    return {
        "input_tokens": max(usage.input_tokens - read - written, 0),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": usage.output_tokens,
    }
