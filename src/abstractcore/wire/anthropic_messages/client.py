"""The Messages API, client side: ``Message``s to Anthropic turns and blocks (``request_body``), a
reply and a stream's events back to ``GenerateResponse`` / ``StreamChunk``s.

Used by the ``anthropic`` provider. Pure translation (no I/O): the system
prompt goes to the top-level ``system``, tool results become ``tool_result``
blocks of a user turn (first in it), images become base64 ``image`` blocks,
consecutive turns of one role are merged, and ``stop_reason`` maps to the
common finish reasons. Extended thinking (``thinking.py``): the ``thinking`` field from the one
reasoning control, ``thinking`` / ``redacted_thinking`` blocks read into ``reasoning`` /
``reasoning_parts`` (streamed as ``StreamChunk.reasoning``) and, when thinking is on, sent back
first in their assistant turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from abstractcore.core.types import (
    GenerateResponse,
    ImagePart,
    Message,
    ReasoningPart,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
)
from abstractcore.features.media import base64_image
from abstractcore.features.tools.accumulator import ToolCallAccumulator, as_arguments
from abstractcore.wire.anthropic_messages.caching import add_breakpoints, cache_ttl, caching_on
from abstractcore.wire.anthropic_messages.shapes import INPUT_FIELDS, finish_reason, usage_of
from abstractcore.wire.anthropic_messages.thinking import (
    joined_reasoning,
    max_tokens_for,
    reasoning_blocks,
    reasoning_part,
    thinking_budget,
    thinking_field,
)

__all__ = [
    "COUNT_FIELDS",
    "DEFAULT_MAX_TOKENS",
    "MessagesStream",
    "content_blocks",
    "count_body",
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


def _with_control(block: dict[str, Any], part: TextPart | ImagePart) -> dict[str, Any]:
    """``block`` with the part's explicit ``cache_control``, unchanged, where it has one."""
    if part.cache_control is not None:
        block["cache_control"] = dict(part.cache_control)
    return block


def content_blocks(content: str | list[TextPart | ImagePart]) -> list[dict[str, Any]]:
    """Text and image parts as Anthropic content blocks (empty text left out: the API rejects it)."""
    parts = [TextPart(content)] if isinstance(content, str) else content
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            if part.text:  # the API rejects empty text blocks
                blocks.append(_with_control({"type": "text", "text": part.text}, part))
        else:
            blocks.append(_with_control(_image_block(part), part))
    return blocks


def _system_field(messages: list[Message], system: str) -> str | list[dict[str, Any]]:
    """The ``system`` field: the joined text, or the system messages' blocks where one of their
    parts carries an explicit ``cache_control`` (kept where the caller put it)."""
    parts = [p for m in messages if m.role == "system" and not isinstance(m.content, str) for p in m.content]
    if not any(p.cache_control is not None for p in parts):
        return system
    return [b for m in messages if m.role == "system" for b in content_blocks(m.content)]


def _turn(message: Message, thinking: bool) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id or ""}
        if isinstance(message.content, str):
            result["content"] = message.content
        else:
            result["content"] = content_blocks(message.content)
        return "user", [result]
    blocks = content_blocks(message.content)
    if message.role == "assistant":
        if thinking:  # its thinking first, unchanged (the API checks the signatures)
            blocks[:0] = reasoning_blocks(message.reasoning)
        blocks += [
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
            for call in message.tool_calls
        ]
    return message.role, blocks


def to_anthropic_messages(messages: list[Message], *, thinking: bool = False) -> list[dict[str, Any]]:
    """The ``messages`` array: system turns left out (they go to ``system``), tool results
    as ``tool_result`` blocks of a user turn, consecutive turns of one role merged.

    ``thinking`` (the request enables it): assistant turns start with their Anthropic thinking
    blocks, as the API requires of the turn a tool result answers; without it they are left out
    (the API would ignore them, and rejects them in a final assistant turn)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role, blocks = _turn(message, thinking)
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

    ``max_tokens`` defaults to ``DEFAULT_MAX_TOKENS`` (plus the thinking budget when thinking is
    on); ``seed`` and the penalties do not exist in this API and are not sent. The reasoning
    control (``reasoning_effort``, ``thinking_budget``, ``reasoning``) becomes ``thinking``;
    ``cache=True`` places the ``cache_control`` breakpoints (``caching.add_breakpoints``, with
    ``cache_ttl``).
    """
    budget = thinking_budget(params)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens_for(params, budget, DEFAULT_MAX_TOKENS),
        "messages": to_anthropic_messages(messages, thinking=budget is not None),
    }
    if budget is not None:
        body["thinking"] = thinking_field(budget)
    if system:
        body["system"] = _system_field(messages, system)
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
    if caching_on(params):
        add_breakpoints(body, cache_ttl(params))
    return body


#: The fields of a request that ``POST /v1/messages/count_tokens`` takes.
COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def count_body(body: dict[str, Any]) -> dict[str, Any]:
    """A ``/v1/messages`` body as a ``/v1/messages/count_tokens`` body (no max_tokens, sampling,
    stop or stream)."""
    return {name: body[name] for name in COUNT_FIELDS if name in body}


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
        #: The prompt's usage fields as last reported (message_start; message_delta may repeat them).
        self.prompt: dict[str, int] = {}
        self.output_tokens: int | None = None
        self._tools = ToolCallAccumulator()
        self._tool_blocks: dict[int, int] = {}  # content block index -> tool call index
        self._thinking: dict[int, dict[str, Any]] = {}  # content block index -> block so far
        self._reasoned = False  # some thinking text was delivered

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
            # each figure replaces the one before: events repeat them, never add to them
            for name in INPUT_FIELDS:
                if usage.get(name) is not None:
                    self.prompt[name] = int(usage[name])
            if usage.get("output_tokens") is not None:
                self.output_tokens = int(usage["output_tokens"])  # cumulative, per the docs

    def _block_start(self, index: int, block: dict[str, Any], data: dict[str, Any]) -> list[StreamChunk]:
        if block.get("type") in ("thinking", "redacted_thinking"):
            self._thinking[index] = {**block, "thinking": ""}
            return self._thought(index, str(block.get("thinking") or ""), data)
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
        thinking = self._thinking.get(index)
        if thinking is not None:
            if delta.get("type") == "signature_delta":
                signature = str(thinking.get("signature") or "") + str(delta.get("signature") or "")
                thinking["signature"] = signature
            elif delta.get("type") == "thinking_delta":
                return self._thought(index, str(delta.get("thinking") or ""), data)
            return []
        position = self._tool_blocks.get(index)
        if delta.get("type") == "input_json_delta" and position is not None and delta.get("partial_json"):
            fragment = ToolCallDelta(index=position, arguments_fragment=str(delta["partial_json"]))
            self._tools.add(fragment)
            return [StreamChunk(tool_call_deltas=[fragment], model=self.model, raw=data)]
        return []  # citation deltas carry no answer text

    def _thought(self, index: int, text: str, data: dict[str, Any]) -> list[StreamChunk]:
        """A thinking delta (a later block's first text set apart by a blank line, as in a reply)."""
        if not text:
            return []
        block = self._thinking[index]
        apart = "\n\n" if not block["thinking"] and self._reasoned else ""
        block["thinking"] += text
        self._reasoned = True
        return [StreamChunk(reasoning=apart + text, model=self.model, raw=data)]

    def reasoning_parts(self) -> list[ReasoningPart]:
        """The thinking blocks seen so far, whole (with their signatures), in order."""
        parts = (reasoning_part(self._thinking[i]) for i in sorted(self._thinking))
        return [p for p in parts if p is not None]

    def last_chunk(self) -> StreamChunk:
        """The closing chunk: finish reason, usage, any call not delivered yet and the whole
        thinking blocks (``reasoning_parts``, to send back)."""
        usage = (
            usage_of({**self.prompt, "output_tokens": self.output_tokens})
            if self.prompt or self.output_tokens is not None
            else None
        )
        return StreamChunk(
            finish_reason=finish_reason(self.stop_reason) or "stop",
            usage=usage,
            tool_calls=self._tools.finish(),
            model=self.model,
            reasoning_parts=self.reasoning_parts(),
        )


def message_to_response(data: dict[str, Any], *, provider: str, model: str | None) -> GenerateResponse:
    """A Messages reply (``{"content": [...], "stop_reason", "usage", ...}``) as a ``GenerateResponse``."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    parts: list[ReasoningPart] = []
    for block in data.get("content") or []:
        if not isinstance(block, dict):
            continue
        part = reasoning_part(block)
        if part is not None:
            parts.append(part)
        elif block.get("type") == "text":
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
        reasoning=joined_reasoning(parts),
        reasoning_parts=parts,
    )
