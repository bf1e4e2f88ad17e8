"""The shapes both directions of the Messages API share: the one stop-reason map and usage."""

from __future__ import annotations

from typing import Any

from abstractcore.core.types import Usage

__all__ = ["STOP_REASONS", "finish_reason", "stop_reason", "usage_body", "usage_of"]

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


def usage_of(usage: Any) -> Usage | None:
    """A reply's ``usage`` object as ``Usage`` (None when there is none)."""
    if not isinstance(usage, dict):
        return None
    return Usage.of(usage.get("input_tokens"), usage.get("output_tokens"))


def usage_body(usage: Usage | None) -> dict[str, int]:
    """Anthropic's usage (its SDK needs numbers: 0 when the back end did not count)."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
