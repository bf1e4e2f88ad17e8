"""The shapes both directions of the Responses API share: function tools in its flat form, the
tool choice, usage with its details read (``usage_of``) and written (``usage_body``), the output
items the server writes and a client reads (``message``, ``function_call``, ``reasoning``), and
the one map between a response's ``status`` and a finish reason (``INCOMPLETE_REASONS``, read by
``finish_reason`` and written by ``status_of``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from abstractcore.core.types import ToolSpec, Usage
from abstractcore.features.structured import strict_json_schema

__all__ = [
    "INCOMPLETE_REASONS",
    "SOURCE",
    "finish_reason",
    "function_call_item",
    "function_tool",
    "message_item",
    "output_text",
    "reasoning_item",
    "status_of",
    "tool_choice_to_responses",
    "tools_to_responses",
    "usage_body",
    "usage_of",
]

#: The ``source`` of the reasoning parts this API makes (and the only ones sent back to it).
SOURCE = "openai"

#: ``incomplete_details.reason`` -> finish reason.
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def finish_reason(response: Mapping[str, Any], calls: bool) -> str:
    """A response's finish reason: "length" when ``max_output_tokens`` cut it ("incomplete"),
    "content_filter", "tool_calls" when it ends with function calls, else "stop"."""
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        return INCOMPLETE_REASONS.get(str(reason), "length")
    return "tool_calls" if calls else "stop"


def function_tool(spec: ToolSpec) -> dict[str, Any]:
    """One ``ToolSpec`` as a Responses function tool (flat: ``name`` beside ``type``).

    The API makes a function tool strict unless told otherwise, and strict mode takes only
    schemas whose every property is required: such a schema is sent strict (in the strict form),
    any other with ``"strict": false`` as it is, so optional arguments stay optional."""
    parameters = dict(spec.parameters)
    strict = strict_json_schema(parameters)
    same = strict is not None and _required(strict) == _required(parameters)
    tool: dict[str, Any] = {"type": "function", "name": spec.name}
    if spec.description:
        tool["description"] = spec.description
    tool["parameters"] = strict if same and strict is not None else parameters
    tool["strict"] = same
    return tool


def _required(schema: Mapping[str, Any]) -> set[str]:
    found = schema.get("required")
    return set(found) if isinstance(found, list) else set()


def tools_to_responses(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """``ToolSpec``s as the request's ``tools``."""
    return [function_tool(spec) for spec in tools]


def tool_choice_to_responses(choice: str) -> str | dict[str, Any]:
    """ "auto" / "none" / "required" pass through; a tool's name forces that function."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "name": choice}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _detail(data: Mapping[str, Any], field: str, name: str) -> int | None:
    details = data.get(field)
    return _int(details.get(name)) if isinstance(details, Mapping) else None


def usage_of(data: Any) -> Usage | None:
    """A response's ``usage`` as ``Usage``: the cached prompt tokens from
    ``input_tokens_details.cached_tokens``, the thinking tokens from
    ``output_tokens_details.reasoning_tokens`` (None when there is no usage)."""
    if not isinstance(data, Mapping):
        return None
    return Usage.of(
        _int(data.get("input_tokens")),
        _int(data.get("output_tokens")),
        cached_tokens=_detail(data, "input_tokens_details", "cached_tokens"),
        reasoning_tokens=_detail(data, "output_tokens_details", "reasoning_tokens"),
    )


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
    for reason, finish in INCOMPLETE_REASONS.items():
        if finish_reason == finish:
            return "incomplete", {"reason": reason}
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
