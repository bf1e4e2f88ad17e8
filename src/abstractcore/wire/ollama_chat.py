"""Ollama's wire format (``/api/chat``, ``/api/show``, ``OLLAMA_HOST``), client side only (the
server of this package does not speak it): ``Message``s to Ollama messages, replies back.

Used by the ``ollama`` provider. Pure translation (no I/O): images travel as
base64 ``images``, tool calls with object ``arguments``, a tool result names
the call it answers (``tool_name``); the ``done`` reply or line carries the
finish reason and the token counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import (
    GenerateResponse,
    ImagePart,
    Message,
    ReasoningPart,
    StreamChunk,
    ToolCall,
    ToolSpec,
    Usage,
)
from abstractcore.features.media import base64_image
from abstractcore.features.reasoning import ThinkingSplitter, split_thinking
from abstractcore.features.tools.accumulator import as_arguments
from abstractcore.wire.openai_chat.reasoning import checked_effort
from abstractcore.wire.openai_chat.shapes import tools_to_openai

__all__ = [
    "DEFAULT_PORT",
    "FINISH_REASONS",
    "SOURCE",
    "LineReader",
    "OPTION_NAMES",
    "chat_to_response",
    "host_url",
    "image_data",
    "is_done_line",
    "is_error_line",
    "line_chunk",
    "ollama_finish_reason",
    "ollama_options",
    "ollama_tool_calls",
    "ollama_usage",
    "request_body",
    "shown_capabilities",
    "think",
    "to_ollama_message",
    "to_ollama_messages",
]

#: The ``source`` of the thinking parts this format makes (and sends back).
SOURCE = "ollama"
#: The port ``ollama serve`` listens on.
DEFAULT_PORT = 11434
#: Ollama's ``done_reason`` -> the common finish reason (others pass through).
FINISH_REASONS = {"stop": "stop", "length": "length"}
#: Common parameter -> name in Ollama's ``options``.
OPTION_NAMES = {
    "temperature": "temperature",
    "max_tokens": "num_predict",
    "top_p": "top_p",
    "seed": "seed",
    "num_ctx": "num_ctx",
    "top_k": "top_k",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}


def ollama_options(params: dict[str, Any]) -> dict[str, Any]:
    """The generation parameters given, as Ollama's ``options`` (``max_tokens`` is ``num_predict``)."""
    options = {option: params[name] for name, option in OPTION_NAMES.items() if params.get(name) is not None}
    stop = params.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    return options


def think(params: dict[str, Any], provider: str = "ollama") -> bool | str | None:
    """The call's reasoning control as Ollama's ``think``: ``reasoning`` as true/false,
    ``reasoning_effort`` "low" | "medium" | "high" as that level (gpt-oss), "none" as false; None:
    not set. A ``thinking_budget``, or an effort Ollama has no level for, is a ``ConfigurationError``."""
    if params.get("thinking_budget") is not None:
        raise ConfigurationError(
            f"{provider} takes no thinking token budget (thinking_budget=): use reasoning_effort='low' | "
            "'medium' | 'high' or reasoning=True/False."
        )
    effort = checked_effort(params, provider, ("none", "low", "medium", "high"))
    switch = params.get("reasoning")
    if switch is not None and not isinstance(switch, bool):
        raise ConfigurationError(f"reasoning= must be True or False; got {switch!r}.")
    if switch is False and effort not in (None, "none"):
        raise ConfigurationError(
            f"{provider}: reasoning=False turns thinking off, reasoning_effort={effort!r} asks for it; "
            "pass one of them."
        )
    if switch is False or effort == "none":
        return False
    return effort or switch


def image_data(part: ImagePart) -> str:
    """An image as the base64 text Ollama's ``images`` takes (a link is refused: Ollama needs bytes)."""
    encoded = base64_image(part)
    if encoded is None:
        raise ConfigurationError(
            "Ollama takes images as bytes: pass a file path, bytes or a base64 data: URL "
            f"in media=, not a link ({(part.url or '')[:80]!r})."
        )
    return encoded[1]


def to_ollama_message(message: Message) -> dict[str, Any]:
    """One ``Message`` in Ollama's chat form."""
    out: dict[str, Any] = {"role": message.role, "content": message.text}
    if not isinstance(message.content, str):
        images = [image_data(p) for p in message.content if isinstance(p, ImagePart)]
        if images:
            out["images"] = images
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": call.id, "function": {"index": index, "name": call.name, "arguments": call.arguments}}
            for index, call in enumerate(message.tool_calls)
        ]
    thinking = "".join(p.text for p in message.reasoning if p.source == SOURCE and p.text)
    if message.role == "assistant" and thinking:
        out["thinking"] = thinking  # Ollama's own turn, sent back as it gave it
    if message.role == "tool":
        if message.name:
            out["tool_name"] = message.name
        if message.tool_call_id:
            out["tool_call_id"] = message.tool_call_id
    return out


def to_ollama_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The ``messages`` array; a tool result is named after the call it answers (``tool_name``)."""
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    out: list[dict[str, Any]] = []
    for message in messages:
        item = to_ollama_message(message)
        if message.role == "tool" and "tool_name" not in item and message.tool_call_id in names:
            item["tool_name"] = names[message.tool_call_id]
        out.append(item)
    return out


def request_body(
    model: str,
    messages: list[Message],
    params: dict[str, Any],
    *,
    tools: Sequence[ToolSpec] = (),
    tool_choice: str | None = None,
    json_schema: dict[str, Any] | None = None,
    stream: bool = False,
) -> dict[str, Any]:
    """A ``POST /api/chat`` body: parameters in ``options``, ``keep_alive`` and ``format`` (the
    answer's JSON schema) top-level. Ollama has no ``tool_choice``: "none" leaves the tools out."""
    body: dict[str, Any] = {"model": model, "messages": to_ollama_messages(messages), "stream": stream}
    options = ollama_options(params)
    if options:
        body["options"] = options
    if params.get("keep_alive") is not None:
        body["keep_alive"] = params["keep_alive"]
    thinks = think(params)
    if thinks is not None:
        body["think"] = thinks
    if tools and tool_choice != "none":
        body["tools"] = tools_to_openai(tools)
    if json_schema is not None:
        body["format"] = json_schema
    return body


def line_chunk(line: dict[str, Any], model: str) -> StreamChunk | None:
    """The chunk one stream line carries (None for a line with no text and no call)."""
    message = line.get("message") or {}
    calls = ollama_tool_calls(message.get("tool_calls"))
    thinking = message.get("thinking")
    thinking = thinking if isinstance(thinking, str) else ""
    if not message.get("content") and not calls and not thinking:
        return None
    return StreamChunk(
        content=str(message.get("content") or ""),
        reasoning=thinking,
        tool_calls=calls,
        model=line.get("model") or model,
        raw=line,
    )


class LineReader:
    """Reads the NDJSON lines of one ``/api/chat`` stream into ``StreamChunk``s: thinking from
    each line's ``message.thinking`` or, until one is seen, from ``<think>`` at the start of the
    content (split as it arrives); the last chunk has the whole thinking's ``reasoning_parts``."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.had_calls = False
        self._splitter: ThinkingSplitter | None = ThinkingSplitter()
        self._thinking: list[str] = []

    def on_line(self, line: dict[str, Any]) -> StreamChunk | None:
        """The chunk one line carries (None for a line with nothing to show)."""
        chunk = line_chunk(line, self.model)
        if chunk is None:
            return None
        self.had_calls = self.had_calls or bool(chunk.tool_calls)
        if chunk.reasoning and self._splitter is not None:  # the server splits: flush what was held
            held_thinking, held = self._splitter.close()
            self._splitter = None
            chunk.reasoning, chunk.content = held_thinking + chunk.reasoning, held + chunk.content
        elif self._splitter is not None and chunk.content:
            chunk.reasoning, chunk.content = self._splitter.feed(chunk.content)
            if self._splitter.passing_through:  # the answer has begun: the rest is not looked at
                self._splitter = None
        if chunk.reasoning:
            self._thinking.append(chunk.reasoning)
        if not (chunk.content or chunk.reasoning or chunk.tool_calls):
            return None
        return chunk

    def last_chunk(self, final: dict[str, Any]) -> StreamChunk:
        """The closing chunk, from the ``done`` line: held-back text, finish reason, usage, thinking."""
        thinking, content = self._splitter.close() if self._splitter is not None else ("", "")
        whole = ("".join(self._thinking) + thinking).strip()
        return StreamChunk(
            content=content,
            reasoning=thinking,
            reasoning_parts=[ReasoningPart(whole, source=SOURCE)] if whole else [],
            finish_reason=ollama_finish_reason(final, self.had_calls),
            usage=ollama_usage(final),
            model=final.get("model") or self.model,
        )


def ollama_tool_calls(raw: Any) -> list[ToolCall]:
    """A message's ``tool_calls`` (object ``arguments``) as ``ToolCall``s."""
    calls: list[ToolCall] = []
    for position, call in enumerate(raw or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        index = function.get("index", position)
        calls.append(
            ToolCall(
                id=str(call.get("id") or f"call_{index}"),
                name=str(function.get("name") or ""),
                arguments=as_arguments(function.get("arguments")),
            )
        )
    return calls


def ollama_usage(data: dict[str, Any]) -> Usage | None:
    """``prompt_eval_count`` / ``eval_count`` as ``Usage`` (None when neither is given)."""
    if data.get("prompt_eval_count") is None and data.get("eval_count") is None:
        return None
    return Usage.of(data.get("prompt_eval_count"), data.get("eval_count"))


def ollama_finish_reason(data: dict[str, Any], had_tool_calls: bool) -> str:
    """The finish reason of a ``done`` reply or line."""
    if had_tool_calls:
        return "tool_calls"
    reason = data.get("done_reason")
    return FINISH_REASONS.get(str(reason), str(reason)) if reason else "stop"


def is_error_line(line: Any) -> bool:
    """True for a line that reports a failure (Ollama sends ``{"error": ...}`` mid-stream)."""
    return not isinstance(line, dict) or "error" in line


def is_done_line(line: Any) -> bool:
    """True for the last line of a stream."""
    return bool(line.get("done"))


def chat_to_response(data: dict[str, Any], *, provider: str, model: str | None) -> GenerateResponse:
    """A whole ``/api/chat`` reply (``{"message": {...}, "done": true, ...}``) as a ``GenerateResponse``."""
    message = data.get("message") or {}
    calls = ollama_tool_calls(message.get("tool_calls"))
    content = str(message.get("content") or "")
    thinking = message.get("thinking")
    thinking = thinking if isinstance(thinking, str) and thinking else None
    if thinking is None:  # ``think`` not set: a thinking model's tags may be in the text
        thinking, content = split_thinking(content)
    return GenerateResponse(
        content=content,
        reasoning=thinking,
        reasoning_parts=[ReasoningPart(thinking, source=SOURCE)] if thinking else [],
        tool_calls=calls,
        usage=ollama_usage(data),
        finish_reason=ollama_finish_reason(data, bool(calls)),
        model=data.get("model") or model,
        provider=provider,
        raw=data,
    )


def shown_capabilities(data: Any) -> dict[str, Any]:
    """What ``POST /api/show`` says of a model: ``tools``, ``vision``, ``embeddings`` (from its
    ``capabilities`` list, when the server sends one) and ``context_window``."""
    listed = data.get("capabilities") if isinstance(data, dict) else None
    info = data.get("model_info") if isinstance(data, dict) else None
    context = next((v for k, v in (info or {}).items() if k.endswith(".context_length")), None)
    found: dict[str, Any] = {"context_window": context}
    if isinstance(listed, list):
        found.update(tools="tools" in listed, vision="vision" in listed, embeddings="embedding" in listed)
    return found


def host_url(value: str) -> str:
    """``OLLAMA_HOST``-style values (``host``, ``host:port``, ``:port``) as a URL."""
    value = value.strip()
    if "://" in value:
        return value
    if value.startswith(":"):
        value = "127.0.0.1" + value
    host, slash, path = value.partition("/")
    has_port = "]:" in host if host.startswith("[") else ":" in host
    if not has_port:
        host = f"{host}:{DEFAULT_PORT}"
    return f"http://{host}{slash}{path}"
