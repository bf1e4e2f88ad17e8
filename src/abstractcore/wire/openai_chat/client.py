"""Chat Completions, client side: a request body from ``Message``s and ``ToolSpec``s; a reply, or
a stream's ``chat.completion.chunk`` events, back to ``GenerateResponse`` / ``StreamChunk``s.

Used by the OpenAI-compatible providers (OpenAI, LM Studio, vLLM, OpenRouter, llama.cpp's servers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from abstractcore.core.errors import ResponseFormatError, ToolCallError
from abstractcore.core.types import GenerateResponse, Message, StreamChunk, ToolCall, ToolSpec, Usage
from abstractcore.features.structured import OutputSpec
from abstractcore.features.tools.accumulator import ToolCallAccumulator
from abstractcore.features.tools.forced import cut_call_error
from abstractcore.wire.openai_chat.shapes import (
    finish_reason,
    message_to_openai,
    parse_tool_calls,
    tool_call_deltas,
    tool_choice_to_openai,
    tools_to_openai,
    usage_of,
)

__all__ = ["PARAMS", "ChunkReader", "reply_to_response", "request_body", "response_format"]

#: The generation parameters a request carries (``top_k``: llama.cpp's servers and vLLM take it).
PARAMS = (
    "temperature",
    "max_tokens",
    "top_p",
    "top_k",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
)


def response_format(output: OutputSpec[Any], json_mode: str) -> dict[str, Any]:
    """``response_format`` asking for ``output``: "json_schema" (strict where the schema allows,
    as OpenAI takes it) or "json_object" with the schema (llama.cpp's servers)."""
    if json_mode == "json_object":
        return {"type": "json_object", "schema": output.schema}
    strict = output.strict_schema
    spec: dict[str, Any] = {"name": output.name, "schema": strict or output.schema}
    if strict is not None:
        spec["strict"] = True
    return {"type": "json_schema", "json_schema": spec}


def request_body(
    model: str,
    messages: Sequence[Message],
    params: dict[str, Any],
    *,
    tools: Sequence[ToolSpec] = (),
    tool_choice: str | dict[str, Any] | None = None,
    answer_format: dict[str, Any] | None = None,
    stream: bool = False,
) -> dict[str, Any]:
    """A ``POST /chat/completions`` body (``answer_format``: a ``response_format``)."""
    body: dict[str, Any] = {"model": model, "messages": [message_to_openai(m) for m in messages]}
    for name in PARAMS:
        value = params.get(name)
        if value is not None:
            body[name] = value
    if tools:
        body["tools"] = tools_to_openai(tools)
        if tool_choice is not None:
            body["tool_choice"] = tool_choice_to_openai(tool_choice)
    if answer_format is not None:
        body["response_format"] = answer_format
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _cut(finish: str | None, usage: Usage | None, max_tokens: Any) -> bool:
    """Whether ``max_tokens`` ended the answer: finish "length", or as many tokens as it allows
    (llama-cpp-python's server says "tool_calls" for a forced call it cut)."""
    spent = usage.output_tokens if usage is not None else None
    return finish == "length" or (isinstance(max_tokens, int) and spent is not None and spent >= max_tokens)


def _whole_calls(
    parse: Callable[[], list[ToolCall]], cut: bool, text: Callable[[], str], usage: Usage | None
) -> list[ToolCall]:
    """The reply's tool calls; a call whose arguments ``max_tokens`` cut (``cut``, the arguments
    not JSON) raises ``cut_call_error`` rather than a complaint about its JSON."""
    try:
        return parse()
    except ToolCallError:
        if not cut:
            raise
        raise cut_call_error(None, text(), usage) from None


def reply_to_response(data: Any, *, provider: str, model: str, max_tokens: Any = None) -> GenerateResponse:
    """A ``chat.completion`` reply as a ``GenerateResponse`` (``ResponseFormatError`` when it has
    no choices; ``max_tokens``, the call's, tells a call it cut from a malformed one)."""
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ResponseFormatError(
            f"{provider} reply has no choices: {str(data)[:200]!r}", provider=provider, model=model
        ) from None
    usage = usage_of(data.get("usage"))
    reason = finish_reason(choice.get("finish_reason"))
    return GenerateResponse(
        content=message.get("content") or "",
        tool_calls=_whole_calls(
            lambda: parse_tool_calls(message.get("tool_calls")),
            _cut(reason, usage, max_tokens),
            lambda: "".join(
                str((c.get("function") or {}).get("arguments") or "") for c in message["tool_calls"]
            ),
            usage,
        ),
        usage=usage,
        finish_reason=reason,
        model=data.get("model") or model,
        provider=provider,
        raw=data,
    )


class ChunkReader:
    """Reads the ``chat.completion.chunk`` events of one stream into ``StreamChunk``s.

    ``on_event`` gives each event's chunks; after the last event, ``finish_reason`` is None when
    the stream ended early, ``usage`` is what the server reported, ``tokens`` the events that
    carried a text or call fragment (one per token on llama.cpp's servers) and ``text`` the
    answer's text and call arguments (to count when the server reported no usage).
    """

    def __init__(self, model: str, *, provider: str) -> None:
        self.model = model
        self.provider = provider
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.tokens = 0
        self._text: list[str] = []
        self._arguments: list[str] = []
        self._tools = ToolCallAccumulator()

    @property
    def text(self) -> str:
        """The answer's text and tool-call arguments, as streamed."""
        return "".join(self._text)

    def on_event(self, data: Any) -> list[StreamChunk]:
        """The chunks one event yields."""
        if not isinstance(data, dict):
            raise ResponseFormatError(
                f"unexpected stream event {str(data)[:200]!r}", provider=self.provider, model=self.model
            )
        self.model = data.get("model") or self.model
        if data.get("usage"):
            self.usage = usage_of(data["usage"])
        out: list[StreamChunk] = []
        for choice in data.get("choices") or ():
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if isinstance(content, str) or delta.get("tool_calls"):
                    self.tokens += 1
                    self._text.append(content or "")
                if delta.get("tool_calls"):
                    fragments = tool_call_deltas(delta)
                    for fragment in fragments:
                        self._tools.add(fragment)
                        self._text.append(fragment.arguments_fragment)
                        self._arguments.append(fragment.arguments_fragment)
                    out.append(
                        StreamChunk(
                            content=content or "", tool_call_deltas=fragments, model=self.model, raw=data
                        )
                    )
                elif content:
                    out.append(StreamChunk(content=content, model=self.model, raw=data))
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = finish_reason(reason)
        return out

    def last_chunk(self, usage: Usage | None, max_tokens: Any = None) -> StreamChunk:
        """The closing chunk: finish reason, ``usage`` (the reported one or a count) and the calls
        (a call ``max_tokens`` cut raises ``cut_call_error``)."""
        # no usage (no way to count): each non-empty fragment took at least one token
        spent = usage or Usage.of(None, sum(1 for piece in self._arguments if piece))
        cut = _cut(self.finish_reason, spent, max_tokens)
        calls = _whole_calls(self._tools.finish, cut, lambda: "".join(self._arguments), usage)
        return StreamChunk(finish_reason=self.finish_reason, usage=usage, tool_calls=calls, model=self.model)
