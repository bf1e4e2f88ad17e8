"""The Messages API, server side: request body -> ``ParsedCall``, answer -> ``message`` body,
stream -> the Messages event sequence; and the model list.

The reverse of the client side: the top-level ``system`` becomes a system message,
``tool_result`` blocks become tool messages (placed before the rest of their user turn),
``tool_use`` blocks become the assistant's tool calls, base64 and URL images become
``ImagePart``s, ``thinking`` blocks the assistant's ``Message.reasoning`` (``signing``: this
server's own signatures are checked, Anthropic's passed on); ``thinking: {type: "enabled",
budget_tokens}`` is ``thinking_budget``, ``{type: "disabled"}`` ``reasoning=False``. The answer's
thinking is a signed ``thinking`` block before its text, streamed as ``thinking_delta`` events
and one ``signature_delta`` before the block's stop. Fields with no meaning here (``metadata``,
``service_tier``) are accepted and not forwarded; server tools, documents, MCP servers and
containers are a 400. ``cache_control`` on tools, system or message blocks is ``cache=True``
(``cache_ttl="1h"`` when one asks for the hour) for a back end that caches on request, and the
system and message blocks keep theirs (``TextPart.cache_control``: an Anthropic back end gets
each breakpoint on the block the client put it on); the usage reports
``cache_read_input_tokens`` / ``cache_creation_input_tokens``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import (
    ContentPart,
    GenerateResponse,
    ImagePart,
    Message,
    ReasoningPart,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)
from abstractcore.features.media import decode_base64_image
from abstractcore.wire.anthropic_messages.caching import MAX_BREAKPOINTS, TTLS
from abstractcore.wire.anthropic_messages.shapes import stop_reason, usage_body
from abstractcore.wire.anthropic_messages.signing import PREFIX, sign, verify
from abstractcore.wire.encoding import dumps, new_id, sse_event
from abstractcore.wire.fields import FieldError, Fields, JsonFormat, ParsedCall, check_tools, checked_tool

__all__ = ["MessageStream", "message", "model_list", "parse_messages"]


# -- request ------------------------------------------------------------------------------------


def parse_messages(body: Fields) -> ParsedCall:
    """The call a Messages request asks for (``FieldError`` naming the field when it is wrong)."""
    model = body.string("model", required=True, nonempty=True)
    assert model is not None
    params: dict[str, Any] = {"max_tokens": body.integer("max_tokens", required=True, minimum=1)}
    params.update(_thinking(body))
    for name in ("temperature", "top_p"):
        value = body.number(name, 0.0, 1.0)
        if value is not None:
            params[name] = value
    top_k = body.integer("top_k", minimum=0)
    if top_k is not None:
        params["top_k"] = top_k
    stop = body.strings("stop_sequences")
    if stop:
        params["stop"] = stop
    body.refuse("mcp_servers", None, "MCP servers are not supported by this server")
    body.refuse("container", None, "containers are not supported by this server")
    params.update(_cache(body))
    tools = _tools(body)
    choice = check_tools(tools, body.data.get("tool_choice"), tools_param="tools", choice_param="tool_choice")
    return ParsedCall(
        model=model,
        messages=[*_system(body), *_turns(body)],
        params=params,
        tools=tools,
        tool_choice=choice,
        stream=bool(body.boolean("stream")),
        answer=_answer(body),
    )


def _controls(body: Fields) -> list[Fields]:
    """The ``cache_control`` fields of the request's tools, system blocks and message blocks."""
    found: list[Fields] = []
    places = [body.objects("tools")]
    if isinstance(body.data.get("system"), list):
        places.append(body.objects("system"))
    for turn in body.objects("messages"):
        if isinstance(turn.data.get("content"), list):
            places.append(turn.objects("content"))
    for blocks in places:
        for block in blocks:
            control = block.object("cache_control")
            if control is not None:
                found.append(control)
    return found


def _cache(body: Fields) -> dict[str, Any]:
    """``cache_control`` anywhere in the request as ``cache=True`` (``cache_ttl="1h"`` when a
    breakpoint asks for the hour): the back end places its own breakpoints."""
    controls = _controls(body)
    if not controls:
        return {}
    if len(controls) > MAX_BREAKPOINTS:
        raise FieldError(
            "cache_control", f"at most {MAX_BREAKPOINTS} blocks may have cache_control; got {len(controls)}"
        )
    ttls = set()
    for control in controls:
        if control.string("type", required=True) != "ephemeral":
            raise FieldError(control.path("type"), "must be 'ephemeral'")
        ttl = control.string("ttl") or "5m"
        if ttl not in TTLS:
            raise FieldError(control.path("ttl"), "must be '5m' or '1h'")
        ttls.add(ttl)
    return {"cache": True, "cache_ttl": "1h"} if "1h" in ttls else {"cache": True}


def _text_blocks(blocks: list[Fields]) -> str:
    texts = []
    for block in blocks:
        if block.string("type", required=True) != "text":
            raise FieldError(block.path("type"), "only text blocks are allowed here")
        texts.append(block.string("text", required=True) or "")
    return "\n".join(texts)


def _control(block: Fields) -> dict[str, Any] | None:
    """A block's ``cache_control``, kept as sent (``_cache`` checked it)."""
    control = block.data.get("cache_control")
    return dict(control) if isinstance(control, dict) else None


def _system(body: Fields) -> list[Message]:
    value = body.data.get("system")
    if value is None or value == "":
        return []
    if isinstance(value, list) and any(isinstance(b, dict) and "cache_control" in b for b in value):
        _text_blocks(body.objects("system"))  # text blocks only
        parts: list[ContentPart] = [
            TextPart(b.string("text") or "", cache_control=_control(b)) for b in body.objects("system")
        ]
        return [Message("system", parts)]
    text = value if isinstance(value, str) else _text_blocks(body.objects("system"))
    return [Message("system", text)] if text else []


def _turns(body: Fields) -> list[Message]:
    out: list[Message] = []
    for turn in body.objects("messages", required=True, nonempty=True):
        role = turn.string("role", required=True)
        if role not in ("user", "assistant"):
            hint = " (the system prompt goes in the top-level 'system' field)" if role == "system" else ""
            raise FieldError(turn.path("role"), f"must be 'user' or 'assistant'{hint}")
        content = turn.data.get("content")
        if isinstance(content, str):
            out.append(Message("user" if role == "user" else "assistant", content))
        elif role == "user":
            out += _user_turn(turn.objects("content", required=True))
        else:
            out.append(_assistant_turn(turn.objects("content", required=True)))
    return out


def _user_turn(blocks: list[Fields]) -> list[Message]:
    results: list[Message] = []
    parts: list[ContentPart] = []
    for block in blocks:
        kind = block.string("type", required=True)
        if kind == "text":
            parts.append(TextPart(block.string("text", required=True) or "", cache_control=_control(block)))
        elif kind == "image":
            parts.append(replace(_image(block), cache_control=_control(block)))
        elif kind == "tool_result":
            results.append(_tool_result(block))
        else:
            raise FieldError(block.path("type"), f"{kind!r} blocks are not supported by this server")
    if not parts:
        return results
    if all(isinstance(p, TextPart) and p.cache_control is None for p in parts):
        return [*results, Message("user", "\n".join(p.text for p in parts if isinstance(p, TextPart)))]
    return [*results, Message("user", parts)]


def _tool_result(block: Fields) -> Message:
    call_id = block.string("tool_use_id", required=True, nonempty=True)
    value = block.data.get("content")
    text = value if isinstance(value, str) or value is None else _text_blocks(block.objects("content"))
    if block.boolean("is_error"):
        text = f"Error: {text or ''}"
    return Message("tool", text or "", tool_call_id=call_id)


def _thinking(body: Fields) -> dict[str, Any]:
    """``thinking: {type: "enabled", budget_tokens}`` / ``{type: "disabled"}`` as our controls."""
    thinking = body.object("thinking")
    if thinking is None:
        return {}
    kind = thinking.string("type", required=True)
    if kind == "disabled":
        return {"reasoning": False}
    if kind != "enabled":
        raise FieldError(thinking.path("type"), "thinking.type must be 'enabled' or 'disabled'")
    return {"thinking_budget": thinking.integer("budget_tokens", required=True, minimum=1)}


def _reasoning_part(block: Fields, kind: str) -> ReasoningPart:
    """A thinking block sent back: this server's (its signature checked) or Anthropic's."""
    if kind == "redacted_thinking":
        return ReasoningPart(redacted=block.string("data", required=True) or "", source="anthropic")
    text = block.string("thinking", required=True) or ""
    signature = block.string("signature") or ""
    if signature.startswith(PREFIX):
        if not verify(text, signature):
            raise FieldError(
                block.path("signature"), "the thinking block was changed after this server signed it"
            )
        return ReasoningPart(text)
    return ReasoningPart(text, signature=signature or None, source="anthropic")


def _assistant_turn(blocks: list[Fields]) -> Message:
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[ReasoningPart] = []
    for block in blocks:
        kind = block.string("type", required=True)
        if kind in ("thinking", "redacted_thinking"):
            reasoning.append(_reasoning_part(block, kind))
        elif kind == "text":
            texts.append(block.string("text", required=True) or "")
        elif kind == "tool_use":
            arguments = block.object("input", required=True)
            assert arguments is not None
            calls.append(
                ToolCall(
                    id=block.string("id", required=True, nonempty=True) or "",
                    name=block.string("name", required=True, nonempty=True) or "",
                    arguments=dict(arguments.data),
                )
            )
        else:
            raise FieldError(block.path("type"), f"{kind!r} blocks are not supported by this server")
    return Message("assistant", "".join(texts), tool_calls=calls, reasoning=reasoning)


def _image(block: Fields) -> ImagePart:
    source = block.object("source", required=True)
    assert source is not None
    kind = source.string("type", required=True)
    if kind == "url":
        return ImagePart(url=source.string("url", required=True, nonempty=True))
    if kind != "base64":
        raise FieldError(source.path("type"), "must be 'base64' or 'url'")
    mime = source.string("media_type", required=True) or ""
    if not mime.startswith("image/"):
        raise FieldError(source.path("media_type"), "must be an image type such as 'image/png'")
    try:
        return decode_base64_image(source.string("data", required=True) or "", mime)
    except ConfigurationError:
        raise FieldError(source.path("data"), "invalid base64 data") from None


def _tools(body: Fields) -> list[ToolSpec]:
    specs: list[ToolSpec] = []
    for tool in body.objects("tools"):
        if tool.string("type") not in (None, "custom"):
            raise FieldError(tool.path("type"), "only custom tools (name, input_schema) are supported")
        schema = tool.object("input_schema", required=True)
        assert schema is not None
        spec = ToolSpec(
            name=tool.string("name", required=True, nonempty=True) or "",
            description=tool.string("description") or "",
            parameters=dict(schema.data),
        )
        specs.append(checked_tool(spec, name_param=tool.path("name"), schema_param=tool.path("input_schema")))
    return specs


def _answer(body: Fields) -> JsonFormat | None:
    config = body.object("output_config")
    form = (config.object("format") if config else None) or body.object("output_format")
    if form is None:
        return None
    if form.string("type", required=True) != "json_schema":
        raise FieldError(form.path("type"), "must be 'json_schema'")
    schema = form.object("schema", required=True)
    assert schema is not None
    return JsonFormat(dict(schema.data))


# -- reply --------------------------------------------------------------------------------------


def message(model: str, response: GenerateResponse) -> dict[str, Any]:
    """The ``message`` body of an answer."""
    content: list[dict[str, Any]] = _thinking_blocks(response)
    if response.content:
        content.append({"type": "text", "text": response.content})
    for call in response.tool_calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(response.finish_reason, bool(response.tool_calls)),
        "stop_sequence": None,
        "usage": usage_body(response.usage),
    }


def _thinking_blocks(response: GenerateResponse) -> list[dict[str, Any]]:
    """The answer's thinking: Anthropic's own blocks passed on, any other thinking signed here."""
    parts = response.reasoning_parts
    if parts and all(p.source == "anthropic" and (p.signature or p.redacted) for p in parts):
        return [
            {"type": "redacted_thinking", "data": p.redacted}
            if p.redacted is not None
            else {"type": "thinking", "thinking": p.text, "signature": p.signature}
            for p in parts
        ]
    if response.reasoning is None:
        return []
    return [{"type": "thinking", "thinking": response.reasoning, "signature": sign(response.reasoning)}]


class MessageStream:
    """The Messages events of one streamed answer.

    ``start()`` is ``message_start`` and a ``ping``; ``chunk(c)`` opens and closes content blocks
    as the answer moves between text and tool calls (``content_block_start`` / ``_delta`` with
    ``text_delta`` or ``input_json_delta`` / ``_stop``; a call the back end delivers whole is one
    ``input_json_delta``); ``end()`` closes the last block and sends ``message_delta`` (stop reason,
    usage) and ``message_stop``.
    """

    def __init__(self, model: str, input_tokens: int | None = None) -> None:
        self._model = model
        #: The input tokens counted before the stream began, for ``message_start``.
        self.input_tokens = input_tokens
        self._open: int | None = None  # index of the open block
        self._text_prefix = b""  # the bytes of a text delta in the open text block, up to its text
        self._blocks = 0
        self._tools: dict[int, int] = {}  # the back end's call index -> block index
        self._fragments = False
        self._calls = False
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._thinking: list[str] | None = None  # the open thinking block's text so far

    def start(self) -> bytes:
        """``message_start`` with the input tokens counted before the stream (0 when the back end
        cannot count before answering: ``message_delta`` then brings them) and a ping."""
        start = {
            "type": "message_start",
            "message": {
                "id": new_id("msg_"),
                "type": "message",
                "role": "assistant",
                "model": self._model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": self.input_tokens or 0, "output_tokens": 0},
            },
        }
        return sse_event("message_start", start) + sse_event("ping", {"type": "ping"})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open, self._text_prefix = self._open, None, b""
        out = b""
        if self._thinking is not None:  # a thinking block ends with its signature
            text, self._thinking = "".join(self._thinking), None
            delta = {"type": "signature_delta", "signature": sign(text.strip())}
            out = sse_event(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            )
        return out + sse_event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _start_block(self, block: dict[str, Any]) -> tuple[int, bytes]:
        out = self._close()
        index = self._open = self._blocks
        self._blocks += 1
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return index, out + sse_event("content_block_start", start)

    @staticmethod
    def _json_delta(index: int, fragment: str) -> bytes:
        delta = {"type": "input_json_delta", "partial_json": fragment}
        return sse_event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    def chunk(self, chunk: StreamChunk) -> bytes:
        """The events of one chunk of the answer (stop reason and usage are kept for ``end``)."""
        out = b""
        if chunk.reasoning:
            if self._thinking is None:
                index, out = self._start_block({"type": "thinking", "thinking": "", "signature": ""})
                self._thinking = []
            self._thinking.append(chunk.reasoning)
            piece = {"type": "thinking_delta", "thinking": chunk.reasoning}
            event = {"type": "content_block_delta", "index": self._open, "delta": piece}
            out += sse_event("content_block_delta", event)
        if chunk.content:
            if not self._text_prefix:
                index, out = self._start_block({"type": "text", "text": ""})
                self._text_prefix = (
                    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                    b'"delta":{"type":"text_delta","text":' % index
                )
            out += self._text_prefix + dumps(chunk.content) + b"}}\n\n"
        for delta in chunk.tool_call_deltas:
            self._fragments = self._calls = True
            known = self._tools.get(delta.index)
            if known is not None:
                index = known
            else:
                block = {
                    "type": "tool_use",
                    "id": delta.id or new_id("toolu_"),
                    "name": delta.name or "",
                    "input": {},
                }
                index, started = self._start_block(block)
                self._tools[delta.index] = index
                out += started
            if delta.arguments_fragment:
                out += self._json_delta(index, delta.arguments_fragment)
        if not self._fragments:  # the back end hands calls over whole
            for call in chunk.tool_calls:
                self._calls = True
                index, started = self._start_block(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
                )
                out += started + self._json_delta(index, call.arguments_json()) + self._close()
        if chunk.finish_reason is not None:
            self._finish = chunk.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        return out

    def end(self) -> bytes:
        """The last block's stop, ``message_delta`` with the stop reason and the usage (cumulative,
        input tokens included, as Anthropic sends it), ``message_stop``."""
        usage = self._usage
        if usage is None and self.input_tokens is not None:
            usage = Usage.of(self.input_tokens, 0, counted=True)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(self._finish, self._calls), "stop_sequence": None},
            "usage": usage_body(usage),
        }
        return (
            self._close()
            + sse_event("message_delta", delta)
            + sse_event("message_stop", {"type": "message_stop"})
        )

    def error(self, body: dict[str, Any]) -> bytes:
        """An error after the stream began: Anthropic's ``error`` event holding ``body``."""
        return sse_event("error", body)


def model_list(models: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``GET /v1/models`` as Anthropic lists models (one page)."""
    data = [
        {"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}
        for name, _ in models
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
