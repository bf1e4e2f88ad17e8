"""The Messages API, client side: ``Message``s to Anthropic turns and blocks (``request_body``), a
reply and a stream's events back to ``GenerateResponse`` / ``StreamChunk``s.

Used by the ``anthropic`` provider. Pure translation (no I/O): the system
prompt goes to the top-level ``system``, tool results become ``tool_result``
blocks of a user turn (first in it), images become base64 ``image`` blocks,
consecutive turns of one role are merged, and ``stop_reason`` maps to the
common finish reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from abstractcore.core.types import (
    GenerateResponse,
    ImagePart,
    Message,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from abstractcore.features.media import base64_image
from abstractcore.features.tools.accumulator import ToolCallAccumulator, as_arguments
from abstractcore.wire.anthropic_messages.shapes import finish_reason, usage_of

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "MessagesStream",
    "content_blocks",
    "is_error_event",
    "is_message_stop",
    "message_to_response",
    "request_body",
    "stop_sequences",
    "to_anthropic_messages",
    "tool_choice_to_anthropic",
    "tools_to_anthropic",
]

#: ``max_tokens`` is required by the Messages API; this is sent when the caller gives none.
DEFAULT_MAX_TOKENS = 4096


def _image_block(part: ImagePart) -> dict[str, Any]:
    encoded = base64_image(part)
    if encoded is None:
        return {"type": "image", "source": {"type": "url", "url": part.url or ""}}
    mime, data = encoded
    return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}


def content_blocks(content: str | list[TextPart | ImagePart]) -> list[dict[str, Any]]:
    """Text and image parts as Anthropic content blocks (empty text left out: the API rejects it)."""
    parts = [TextPart(content)] if isinstance(content, str) else content
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            if part.text:  # the API rejects empty text blocks
                blocks.append({"type": "text", "text": part.text})
        else:
            blocks.append(_image_block(part))
    return blocks


def _turn(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id or ""}
        if isinstance(message.content, str):
            result["content"] = message.content
        else:
            result["content"] = content_blocks(message.content)
        return "user", [result]
    blocks = content_blocks(message.content)
    if message.role == "assistant":
        blocks += [
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
            for call in message.tool_calls
        ]
    return message.role, blocks


def to_anthropic_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The ``messages`` array: system turns left out (they go to ``system``), tool results
    as ``tool_result`` blocks of a user turn, consecutive turns of one role merged."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role, blocks = _turn(message)
        if out and out[-1]["role"] == role:
            previous = out[-1]
            if isinstance(previous["content"], str):
                previous["content"] = content_blocks(previous["content"])
            content = previous["content"]
            if blocks and blocks[0]["type"] == "tool_result":
                # tool results must come first in the user turn that answers the calls
                at = 0
                while at < len(content) and content[at]["type"] == "tool_result":
                    at += 1
                content[at:at] = blocks
            else:
                content.extend(blocks)
            continue
        if role == "assistant" and not blocks:
            continue  # an empty assistant turn is rejected; it says nothing anyway
        simple = role == "user" and isinstance(message.content, str) and message.role == "user"
        out.append({"role": role, "content": message.content if simple else blocks})
    return out


def tool_choice_to_anthropic(choice: str) -> dict[str, Any]:
    """A tool choice ("auto", "none", "required" or a tool's name) as Anthropic's ``tool_choice``."""
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def stop_sequences(stop: Any) -> list[str]:
    """``stop`` (a string or strings) as ``stop_sequences``."""
    return [stop] if isinstance(stop, str) else list(stop)


def tools_to_anthropic(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """``ToolSpec``s as Messages ``tools`` (``input_schema``; no empty description)."""
    return [
        {
            "name": t.name,
            **({"description": t.description} if t.description else {}),
            "input_schema": dict(t.parameters),
        }
        for t in tools
    ]


def request_body(
    model: str,
    messages: list[Message],
    params: dict[str, Any],
    *,
    system: str | None = None,
    tools: Sequence[ToolSpec] = (),
    tool_choice: str | None = None,
    output_schema: dict[str, Any] | None = None,
    stream: bool = False,
) -> dict[str, Any]:
    """A ``POST /v1/messages`` body (``output_schema``: native JSON output, ``output_format``).

    ``max_tokens`` defaults to ``DEFAULT_MAX_TOKENS``; ``seed`` and the penalties do not exist
    in this API and are not sent.
    """
    max_tokens = params.get("max_tokens")
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        "messages": to_anthropic_messages(messages),
    }
    if system:
        body["system"] = system
    for name in ("temperature", "top_p", "top_k"):
        if params.get(name) is not None:
            body[name] = params[name]
    if params.get("stop"):
        body["stop_sequences"] = stop_sequences(params["stop"])
    if tools:
        body["tools"] = tools_to_anthropic(tools)
        if tool_choice is not None:
            body["tool_choice"] = tool_choice_to_anthropic(tool_choice)
    if output_schema is not None:
        body["output_format"] = {"type": "json_schema", "schema": output_schema}
    if stream:
        body["stream"] = True
    return body


def is_error_event(data: Any) -> bool:
    """True for a stream's ``error`` event (or anything that is not an event object)."""
    return not isinstance(data, dict) or data.get("type") == "error"


def is_message_stop(data: Any) -> bool:
    """True for the event that ends a stream."""
    return isinstance(data, dict) and data.get("type") == "message_stop"


class MessagesStream:
    """Turns the events of one Messages stream into ``StreamChunk``s."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.done = False
        self.stop_reason: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self._tools = ToolCallAccumulator()
        self._tool_blocks: dict[int, int] = {}  # content block index -> tool call index

    def on_event(self, data: dict[str, Any]) -> list[StreamChunk]:
        """The chunks one event yields (ping and unknown event types yield none)."""
        kind = data.get("type")
        if kind == "message_start":
            message = data.get("message") or {}
            self.model = message.get("model") or self.model
            self._usage(message.get("usage"))
        elif kind == "content_block_start":
            return self._block_start(int(data.get("index", 0)), data.get("content_block") or {}, data)
        elif kind == "content_block_delta":
            return self._block_delta(int(data.get("index", 0)), data.get("delta") or {}, data)
        elif kind == "content_block_stop":
            if int(data.get("index", 0)) in self._tool_blocks and self._tools:
                # the call is complete with its block: deliver it whole now
                return [StreamChunk(tool_calls=self._tools.finish(), model=self.model, raw=data)]
        elif kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            self._usage(data.get("usage"))
        elif kind == "message_stop":
            self.done = True
        return []

    def _usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            if usage.get("input_tokens") is not None:
                self.input_tokens = int(usage["input_tokens"])
            if usage.get("output_tokens") is not None:
                self.output_tokens = int(usage["output_tokens"])  # cumulative, per the docs

    def _block_start(self, index: int, block: dict[str, Any], data: dict[str, Any]) -> list[StreamChunk]:
        if block.get("type") == "tool_use":
            position = len(self._tool_blocks)
            self._tool_blocks[index] = position
            delta = ToolCallDelta(index=position, id=block.get("id"), name=block.get("name"))
            self._tools.add(delta)
            return [StreamChunk(tool_call_deltas=[delta], model=self.model, raw=data)]
        if block.get("type") == "text" and block.get("text"):
            return [StreamChunk(content=str(block["text"]), model=self.model, raw=data)]
        return []

    def _block_delta(self, index: int, delta: dict[str, Any], data: dict[str, Any]) -> list[StreamChunk]:
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [StreamChunk(content=str(delta["text"]), model=self.model, raw=data)]
        position = self._tool_blocks.get(index)
        if delta.get("type") == "input_json_delta" and position is not None and delta.get("partial_json"):
            fragment = ToolCallDelta(index=position, arguments_fragment=str(delta["partial_json"]))
            self._tools.add(fragment)
            return [StreamChunk(tool_call_deltas=[fragment], model=self.model, raw=data)]
        return []  # thinking, signature and citation deltas carry no answer text

    def last_chunk(self) -> StreamChunk:
        """The closing chunk: finish reason, usage and any call not delivered yet."""
        usage = (
            Usage.of(self.input_tokens, self.output_tokens)
            if self.input_tokens is not None or self.output_tokens is not None
            else None
        )
        return StreamChunk(
            finish_reason=finish_reason(self.stop_reason) or "stop",
            usage=usage,
            tool_calls=self._tools.finish(),
            model=self.model,
        )


def message_to_response(data: dict[str, Any], *, provider: str, model: str | None) -> GenerateResponse:
    """A Messages reply (``{"content": [...], "stop_reason", "usage", ...}``) as a ``GenerateResponse``."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in data.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            calls.append(
                ToolCall(
                    id=str(block.get("id") or f"call_{len(calls)}"),
                    name=str(block.get("name") or ""),
                    arguments=as_arguments(block.get("input")),
                )
            )
    return GenerateResponse(
        content="".join(texts),
        tool_calls=calls,
        usage=usage_of(data.get("usage")),
        finish_reason=finish_reason(data.get("stop_reason")),
        model=data.get("model") or model,
        provider=provider,
        raw=data,
    )
