"""Chat Completions, client side: a request body from ``Message``s and ``ToolSpec``s; a reply, or
a stream's ``chat.completion.chunk`` events, back to ``GenerateResponse`` / ``StreamChunk``s.

Used by the OpenAI-compatible providers (OpenAI, LM Studio, vLLM, OpenRouter, llama.cpp's servers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from abstractcore.core.errors import ResponseFormatError, ToolCallError
from abstractcore.core.types import (
    GenerateResponse,
    Message,
    ReasoningPart,
    StreamChunk,
    ToolCall,
    ToolSpec,
    Usage,
)
from abstractcore.features.reasoning import ThinkingSplitter, split_thinking
from abstractcore.features.tools.accumulator import ToolCallAccumulator
from abstractcore.features.tools.forced import cut_call_error
from abstractcore.wire.openai_chat.reasoning import echoed_reasoning, reasoning_of
from abstractcore.wire.openai_chat.shapes import (
    finish_reason,
    message_to_openai,
    parse_tool_calls,
    tool_call_deltas,
    tool_choice_to_openai,
    tools_to_openai,
    usage_of,
)

if TYPE_CHECKING:
    from abstractcore.features.structured import OutputSpec

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
    controls: dict[str, Any] | None = None,
    reasoning_source: str | None = None,
    max_tokens_field: str = "max_tokens",
) -> dict[str, Any]:
    """A ``POST /chat/completions`` body (``answer_format``: a ``response_format``; ``controls``:
    the reasoning control's fields; ``reasoning_source``: the provider whose thinking goes back
    as ``reasoning_content`` on tool-call turns, None to send none; ``max_tokens_field``:
    "max_completion_tokens" for OpenAI, whose reasoning models refuse ``max_tokens``)."""
    body: dict[str, Any] = {"model": model, "messages": [_message(m, reasoning_source) for m in messages]}
    for name in PARAMS:
        value = params.get(name)
        if value is not None:
            body[max_tokens_field if name == "max_tokens" else name] = value
    if controls:
        body.update(controls)
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


def _message(message: Message, reasoning_source: str | None) -> dict[str, Any]:
    out = message_to_openai(message)
    thinking = echoed_reasoning(message, reasoning_source) if reasoning_source else None
    if thinking:
        out["reasoning_content"] = thinking
    return out


def _parts(thinking: str | None, source: str) -> list[ReasoningPart]:
    return [ReasoningPart(thinking, source=source)] if thinking else []


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


def reply_to_response(
    data: Any, *, provider: str, model: str, max_tokens: Any = None, think_tags: bool = True
) -> GenerateResponse:
    """A ``chat.completion`` reply as a ``GenerateResponse`` (``ResponseFormatError`` when it has
    no choices; ``max_tokens``, the call's, tells a call it cut from a malformed one).

    The thinking is the message's ``reasoning_content`` / ``reasoning``; without either, a
    ``<think>`` block at the start of the content (or a bare ``</think>``, the template having
    opened it) when ``think_tags``. It is one ``ReasoningPart`` whose source is ``provider``."""
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ResponseFormatError(
            f"{provider} reply has no choices: {str(data)[:200]!r}", provider=provider, model=model
        ) from None
    usage = usage_of(data.get("usage"), data.get("timings"))
    reason = finish_reason(choice.get("finish_reason"))
    content = message.get("content") or ""
    thinking = reasoning_of(message)
    if thinking is None and think_tags and isinstance(content, str):
        thinking, content = split_thinking(content)
    return GenerateResponse(
        content=content,
        reasoning=thinking,
        reasoning_parts=_parts(thinking, provider),
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
    carried a text, thinking or call fragment (one per token on llama.cpp's servers) and ``text``
    everything generated (to count when the server reported no usage). Thinking deltas come
    from a delta's ``reasoning_content`` / ``reasoning``; until one is seen, ``<think>`` at the
    start of the content is split off as it arrives (``think_tags``; a marker cut across deltas
    is still one).
    """

    def __init__(self, model: str, *, provider: str, think_tags: bool = True) -> None:
        self.model = model
        self.provider = provider
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.tokens = 0
        self._text: list[str] = []
        self._arguments: list[str] = []
        self._thinking: list[str] = []
        self._tools = ToolCallAccumulator()
        self._splitter = ThinkingSplitter() if think_tags else None

    @property
    def text(self) -> str:
        """The thinking, answer text and tool-call arguments, as streamed."""
        return "".join(self._text)

    def _split(self, content: str) -> tuple[str, str]:
        """(thinking, answer) of a content delta."""
        splitter = self._splitter
        if splitter is None or not content:
            return "", content
        split = splitter.feed(content)
        if splitter.passing_through:  # the answer has begun: the rest is not looked at again
            self._splitter = None
        return split

    def on_event(self, data: Any) -> list[StreamChunk]:
        """The chunks one event yields."""
        if not isinstance(data, dict):
            raise ResponseFormatError(
                f"unexpected stream event {str(data)[:200]!r}", provider=self.provider, model=self.model
            )
        self.model = data.get("model") or self.model
        if data.get("usage"):
            self.usage = usage_of(data["usage"], data.get("timings"))
        out: list[StreamChunk] = []
        for choice in data.get("choices") or ():
            delta = choice.get("delta")
            if delta:
                chunk = self._delta(delta, data)
                if chunk is not None:
                    out.append(chunk)
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = finish_reason(reason)
        return out

    def _delta(self, delta: dict[str, Any], data: Any) -> StreamChunk | None:
        raw = delta.get("content")
        if self._splitter is None and not (
            "tool_calls" in delta or "reasoning_content" in delta or "reasoning" in delta
        ):  # the common delta, answer text only: the loop of every stream, kept short
            if not isinstance(raw, str):
                return None
            self.tokens += 1
            self._text.append(raw)
            return StreamChunk(content=raw, model=self.model, raw=data) if raw else None
        content = raw if isinstance(raw, str) else ""
        field = reasoning_of(delta) if ("reasoning_content" in delta or "reasoning" in delta) else None
        thinking = ""
        if field is not None:
            # the server parses thinking itself: its content is the answer, as it comes
            if self._splitter is not None:
                held_thinking, held = self._splitter.close()
                thinking, content = held_thinking, held + content
                self._splitter = None
            thinking += field
        else:
            thinking, content = self._split(content)
        calls = delta.get("tool_calls")
        if isinstance(raw, str) or calls or field is not None:
            self.tokens += 1
            self._text.append(raw if field is None and raw else (field or "") + (raw or ""))
        if thinking:
            self._thinking.append(thinking)
        fragments = tool_call_deltas(delta) if calls else []
        for fragment in fragments:
            self._tools.add(fragment)
            self._text.append(fragment.arguments_fragment)
            self._arguments.append(fragment.arguments_fragment)
        if not (content or thinking or fragments):
            return None
        return StreamChunk(
            content=content, reasoning=thinking, tool_call_deltas=fragments, model=self.model, raw=data
        )

    def last_chunk(self, usage: Usage | None, max_tokens: Any = None) -> StreamChunk:
        """The closing chunk: what the thinking splitter held back, finish reason, ``usage`` (the
        reported one or a count), the calls (a call ``max_tokens`` cut raises ``cut_call_error``)
        and the whole thinking as ``reasoning_parts``."""
        thinking, content = self._splitter.close() if self._splitter is not None else ("", "")
        if thinking:
            self._thinking.append(thinking)
        # no usage (no way to count): each non-empty fragment took at least one token
        spent = usage or Usage.of(None, sum(1 for piece in self._arguments if piece))
        cut = _cut(self.finish_reason, spent, max_tokens)
        calls = _whole_calls(self._tools.finish, cut, lambda: "".join(self._arguments), usage)
        whole = "".join(self._thinking).strip()
        return StreamChunk(
            content=content,
            reasoning=thinking,
            reasoning_parts=_parts(whole or None, self.provider),
            finish_reason=self.finish_reason,
            usage=usage,
            tool_calls=calls,
            model=self.model,
        )
