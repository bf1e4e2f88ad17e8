"""Responses API shapes the server writes and a client reads: output items, usage, status.

Pure builders of the JSON objects of OpenAI's ``Response`` (``openai.types.responses``): a
``message`` item holding one ``output_text`` part, a ``function_call`` item, a ``reasoning``
item whose ``summary`` holds the thinking, and ``usage`` with its two detail objects.
"""

from __future__ import annotations

from typing import Any

from abstractcore.core.types import Usage

__all__ = [
    "function_call_item",
    "message_item",
    "output_text",
    "reasoning_item",
    "status_of",
    "usage_body",
]


def output_text(text: str) -> dict[str, Any]:
    """One ``output_text`` content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str | None, status: str = "completed") -> dict[str, Any]:
    """An assistant ``message`` item (``text`` None: no content part yet)."""
    content = [] if text is None else [output_text(text)]
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    """A ``function_call`` item (``arguments`` is the JSON text)."""
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def reasoning_item(item_id: str, summary: str | None) -> dict[str, Any]:
    """A ``reasoning`` item, the thinking as its one ``summary_text`` (None: no part yet)."""
    parts = [] if summary is None else [{"type": "summary_text", "text": summary}]
    return {"id": item_id, "type": "reasoning", "summary": parts}


def status_of(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """The response's ``status`` and ``incomplete_details`` for an answer's finish reason."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def usage_body(usage: Usage | None) -> dict[str, Any] | None:
    """Responses usage: ``input_tokens_details.cached_tokens`` and
    ``output_tokens_details.reasoning_tokens`` always present (0 when not counted)."""
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
    }
