"""The OpenAI Chat Completions message and tool format, as pure functions.

Shared by the OpenAI-compatible providers (on the wire) and the llama.cpp
engine (``create_chat_completion`` takes the same shapes in process).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from abstractcore.core.types import ImagePart, Message, TextPart, ToolCall, ToolCallDelta, ToolSpec
from abstractcore.features.tools.accumulator import ToolCallAccumulator

__all__ = [
    "message_to_openai",
    "parse_tool_calls",
    "tool_call_deltas",
    "tool_choice_to_openai",
    "tools_to_openai",
]


def _image_url(part: ImagePart) -> str:
    if part.url:
        return part.url
    data = base64.b64encode(part.data or b"").decode()
    return f"data:{part.mime_type};base64,{data}"


def _content(message: Message) -> str | list[dict[str, Any]]:
    if isinstance(message.content, str):
        return message.content
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
