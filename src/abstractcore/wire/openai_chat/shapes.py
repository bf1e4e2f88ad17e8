"""The shapes both directions of Chat Completions share: messages, tools, tool calls, usage, and
the one finish-reason map."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from abstractcore.core.types import ImagePart, Message, TextPart, ToolCall, ToolCallDelta, ToolSpec, Usage
from abstractcore.features.tools.accumulator import ToolCallAccumulator

__all__ = [
    "FINISH_REASONS",
    "call_body",
    "finish_reason",
    "message_to_openai",
    "parse_tool_calls",
    "server_finish_reason",
    "tool_call_deltas",
    "tool_choice_to_openai",
    "tools_to_openai",
    "usage_body",
    "usage_of",
]

#: The finish reasons of the format: they are the common vocabulary, so the map is the identity
#: (a client passes any other value a server sends through; the server sends only these).
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}


def server_finish_reason(reason: str | None, calls: bool) -> str:
    """The finish reason a server sends: one of ``FINISH_REASONS`` ("tool_calls" when calls end it)."""
    if calls and reason in (None, "stop"):
        return "tool_calls"
    return FINISH_REASONS.get(reason or "stop", "stop")


def finish_reason(reason: str | None) -> str | None:
    """A reply's ``finish_reason`` in the common vocabulary (values outside the format pass through)."""
    return None if reason is None else FINISH_REASONS.get(reason, reason)


def _image_url(part: ImagePart) -> str:
    if part.url:
        return part.url
    data = base64.b64encode(part.data or b"").decode()
    return f"data:{part.mime_type};base64,{data}"


def _content(message: Message) -> str | list[dict[str, Any]]:
    if isinstance(message.content, str):
        return message.content
    if all(isinstance(p, TextPart) for p in message.content) and any(
        p.cache_control is not None for p in message.content
    ):  # cache breakpoints mean nothing here: the text as one string, as the blocks joined
        return "\n".join(p.text for p in message.content if isinstance(p, TextPart))
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        else:
            parts.append({"type": "image_url", "image_url": {"url": _image_url(part)}})
    return parts


def message_to_openai(message: Message) -> dict[str, Any]:
    """One ``Message`` in the Chat Completions form."""
    out: dict[str, Any] = {"role": message.role, "content": _content(message)}
    if message.tool_calls:
        # "content": "" rather than null: llama.cpp rejects null (its server with a 500).
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json()}}
            for c in message.tool_calls
        ]
    if message.role == "tool" and message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.name and message.role != "tool":
        out["name"] = message.name
    return out


def tools_to_openai(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """``ToolSpec``s as Chat Completions ``tools``."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
        }
        for t in tools
    ]


def tool_choice_to_openai(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """ "auto" / "none" / "required" pass through; a tool name forces that tool."""
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    return choice


def parse_tool_calls(raw: Any) -> list[ToolCall]:
    """Whole ``tool_calls`` of a reply (arguments as a JSON string or an object)."""
    if not raw:
        return []
    accumulator = ToolCallAccumulator()
    for index, call in enumerate(raw):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments or {})
        accumulator.add(
            ToolCallDelta(
                index=index, id=call.get("id"), name=function.get("name"), arguments_fragment=arguments
            )
        )
    return accumulator.finish()


def tool_call_deltas(delta: dict[str, Any]) -> list[ToolCallDelta]:
    """The tool-call fragments of one streamed ``delta``."""
    out = []
    for call in delta.get("tool_calls") or []:
        function = call.get("function") or {}
        out.append(
            ToolCallDelta(
                index=int(call.get("index", 0)),
                id=call.get("id"),
                name=function.get("name"),
                arguments_fragment=function.get("arguments") or "",
            )
        )
    return out


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_of(data: Any, timings: Any = None) -> Usage | None:
    """A reply's ``usage`` object as ``Usage`` (None when there is none); the thinking tokens among
    the completion tokens from ``completion_tokens_details.reasoning_tokens``; the cached prompt
    tokens from ``prompt_tokens_details.cached_tokens`` or, without it, from the reply's
    ``timings.cache_n`` (llama.cpp's server: the prompt tokens it reused from its KV cache)."""
    if not isinstance(data, dict):
        return None
    details = data.get("completion_tokens_details")
    thinking = _int(details.get("reasoning_tokens")) if isinstance(details, dict) else None
    prompt_details = data.get("prompt_tokens_details")
    cached = _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else None
    if cached is None and isinstance(timings, dict):
        cached = _int(timings.get("cache_n"))
    return Usage.of(
        data.get("prompt_tokens"),
        data.get("completion_tokens"),
        reasoning_tokens=thinking,
        cached_tokens=cached,
    )


def usage_body(usage: Usage | None) -> dict[str, Any] | None:
    """``Usage`` as a Chat Completions ``usage`` (the cached prompt tokens in
    ``prompt_tokens_details.cached_tokens``, always given: 0 when nothing was cached)."""
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def call_body(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json()},
    }
