"""The shapes both directions of the Responses API share: function tools in its flat form, the
tool choice, usage with its details, and the one map from a response's ``status`` to a finish
reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from abstractcore.core.types import ToolSpec, Usage
from abstractcore.features.structured import strict_json_schema

__all__ = [
    "SOURCE",
    "finish_reason",
    "function_tool",
    "tool_choice_to_responses",
    "tools_to_responses",
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
