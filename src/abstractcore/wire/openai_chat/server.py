"""Chat Completions, server side: a request body -> ``ParsedCall``, an answer -> a
``chat.completion`` body, a stream -> ``chat.completion.chunk`` events; and the model list.

Fields a client may send by habit with no meaning here (``user``, ``store``, ``metadata``,
``parallel_tool_calls``, ...) are accepted and not forwarded; fields whose meaning cannot be
honoured (``n`` > 1, ``logprobs``, audio, the legacy ``functions``) are a ``FieldError``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, cast

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import (
    ContentPart,
    GenerateResponse,
    ImagePart,
    Message,
    Role,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)
from abstractcore.features.media import decode_data_url
from abstractcore.wire.encoding import dumps, new_id, now, sse_data
from abstractcore.wire.fields import (
    FieldError,
    Fields,
    JsonFormat,
    ParsedCall,
    answer_format,
    check_tools,
    checked_tool,
)
from abstractcore.wire.openai_chat.shapes import call_body, server_finish_reason, usage_body

__all__ = ["ChatStream", "completion", "include_usage", "model_list", "parse_chat"]

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
_EMPTY_SCHEMA = {"type": "object", "properties": {}}
_RANGES = (
    ("temperature", 0.0, 2.0),
    ("top_p", 0.0, 1.0),
    ("presence_penalty", -2.0, 2.0),
    ("frequency_penalty", -2.0, 2.0),
)


def parse_chat(body: Fields) -> ParsedCall:
    """The call a Chat Completions request asks for (``FieldError`` naming the field when wrong)."""
    model = body.string("model", required=True, nonempty=True)
    assert model is not None
    _refuse_unsupported(body)
    tools = _tools(body)
    choice = check_tools(tools, body.data.get("tool_choice"), tools_param="tools", choice_param="tool_choice")
    return ParsedCall(
        model=model,
        messages=_messages(body),
        params=_params(body),
        tools=tools,
        tool_choice=choice,
        stream=bool(body.boolean("stream")),
        answer=_answer(body),
    )


def include_usage(body: Fields) -> bool:
    """Whether a stream should end with a usage chunk (``stream_options.include_usage``)."""
    options = body.object("stream_options")
    return bool(options and options.boolean("include_usage"))


def _refuse_unsupported(body: Fields) -> None:
    body.refuse("n", 1, "only n=1 is supported")
    body.refuse("logprobs", False, "logprobs are not supported by this server")
    body.refuse("top_logprobs", 0, "logprobs are not supported by this server")
    body.refuse("audio", None, "audio output is not supported by this server")
    body.refuse("modalities", ["text"], "only text output is supported by this server")
    body.refuse("logit_bias", {}, "logit_bias is not supported by this server")
    body.refuse("functions", None, "the legacy functions field is not supported; use tools")
    body.refuse("function_call", None, "the legacy function_call field is not supported; use tool_choice")


def _params(body: Fields) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, low, high in _RANGES:
        value = body.number(name, low, high)
        if value is not None:
            params[name] = value
    max_tokens = body.integer("max_completion_tokens", minimum=1)
    if max_tokens is None:
        max_tokens = body.integer("max_tokens", minimum=1)
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    stop = body.strings("stop")
    if stop:
        params["stop"] = stop
    seed = body.integer("seed")
    if seed is not None:
        params["seed"] = seed
    effort = body.string("reasoning_effort")
    if effort is not None:  # the back end checks the value, and refuses it when it takes none
        params["reasoning_effort"] = effort
    return params


def _messages(body: Fields) -> list[Message]:
    out: list[Message] = []
    for message in body.objects("messages", required=True, nonempty=True):
        role = message.string("role", required=True)
        if role not in _ROLES:
            raise FieldError(message.path("role"), "must be system, developer, user, assistant or tool")
        role = _ROLES[role]
        content = _content(message, images=role == "user")
        if role == "assistant":
            calls = [_tool_call(c, i) for i, c in enumerate(message.objects("tool_calls"))]
            out.append(Message("assistant", content, tool_calls=calls))
        elif role == "tool":
            call_id = message.string("tool_call_id", required=True)
            out.append(Message("tool", _as_text(content), tool_call_id=call_id))
        else:
            out.append(Message(cast(Role, role), content, name=message.string("name")))
    return out


def _as_text(content: str | list[ContentPart]) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p.text for p in content if isinstance(p, TextPart))


def _content(message: Fields, *, images: bool) -> str | list[ContentPart]:
    value = message.data.get("content")
    if value is None or isinstance(value, str):
        return value or ""
    parts: list[ContentPart] = []
    for part in message.objects("content"):
        kind = part.string("type", required=True)
        if kind == "text":
            parts.append(TextPart(part.string("text", required=True) or ""))
        elif kind == "refusal":
            parts.append(TextPart(part.string("refusal") or ""))
        elif kind == "image_url" and images:
            parts.append(_image(part))
        else:
            raise FieldError(part.path("type"), f"{kind!r} content parts are not supported here")
    if all(isinstance(p, TextPart) for p in parts):
        return _as_text(parts)
    return parts


def _image(part: Fields) -> ImagePart:
    value = part.data.get("image_url")
    image = Fields({"url": value}, part.path("image_url")) if isinstance(value, str) else None
    image = image or part.object("image_url", required=True)
    assert image is not None
    url = image.string("url", required=True, nonempty=True) or ""
    if url.startswith(("http://", "https://")):
        return ImagePart(url=url)
    if not url.startswith("data:"):
        raise FieldError(image.path("url"), "must be an http(s) URL or a data: URL")
    if ";base64" not in url.partition(",")[0]:
        raise FieldError(image.path("url"), "a data: URL must be base64 (data:image/png;base64,...)")
    try:
        return decode_data_url(url)
    except ConfigurationError:
        raise FieldError(image.path("url"), "the data: URL holds invalid base64") from None


def _tool_call(call: Fields, index: int) -> ToolCall:
    function = call.object("function", required=True)
    assert function is not None
    name = function.string("name", required=True, nonempty=True) or ""
    raw = function.data.get("arguments")
    arguments: Any = raw if isinstance(raw, dict) else {}
    if isinstance(raw, str) and raw.strip():
        try:
            arguments = json.loads(raw)
        except ValueError:
            raise FieldError(function.path("arguments"), "is not valid JSON") from None
    if not isinstance(arguments, dict):
        raise FieldError(function.path("arguments"), "must be a JSON object")
    return ToolCall(id=call.string("id") or f"call_{index}", name=name, arguments=arguments)


def _tools(body: Fields) -> list[ToolSpec]:
    specs: list[ToolSpec] = []
    for tool in body.objects("tools"):
        if (tool.string("type") or "function") != "function":
            raise FieldError(tool.path("type"), "only 'function' tools are supported")
        function = tool.object("function", required=True)
        assert function is not None
        parameters = function.object("parameters")
        spec = ToolSpec(
            name=function.string("name", required=True, nonempty=True) or "",
            description=function.string("description") or "",
            parameters=dict(parameters.data) if parameters else dict(_EMPTY_SCHEMA),
        )
        specs.append(
            checked_tool(spec, name_param=function.path("name"), schema_param=function.path("parameters"))
        )
    return specs


def _answer(body: Fields) -> JsonFormat | None:
    return answer_format(body.object("response_format"), _json_schema)


def _json_schema(form: Fields) -> JsonFormat:
    spec = form.object("json_schema", required=True)
    assert spec is not None
    schema = spec.object("schema")
    return JsonFormat(
        dict(schema.data) if schema else {"type": "object"}, spec.string("name") or "json_answer"
    )


def completion(model: str, response: GenerateResponse) -> dict[str, Any]:
    """The ``chat.completion`` body of an answer."""
    calls = response.tool_calls
    message: dict[str, Any] = {
        "role": "assistant",
        "content": response.content if response.content or not calls else None,
        "refusal": None,
    }
    if response.reasoning is not None:  # DeepSeek's, vLLM's and llama-server's field
        message["reasoning_content"] = response.reasoning
    if calls:
        message["tool_calls"] = [call_body(c) for c in calls]
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": server_finish_reason(response.finish_reason, bool(calls)),
            }
        ],
        "usage": _usage(response.usage),
    }


def _usage(usage: Usage | None) -> dict[str, Any] | None:
    """OpenAI's usage, with ``completion_tokens_details.reasoning_tokens`` when counted."""
    body: dict[str, Any] | None = usage_body(usage)
    if body is not None and usage is not None and usage.reasoning_tokens:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


class ChatStream:
    """The ``chat.completion.chunk`` events of one streamed answer.

    ``start()`` is the role chunk; ``chunk(c)`` the events of one ``StreamChunk`` (text deltas;
    tool calls in OpenAI's delta form: the first fragment of each call carries its index, id and
    name, later ones only argument text; calls the back end delivers whole are sent as one
    fragment each); ``end()`` the finish chunk, the usage chunk when asked for, and ``[DONE]``.
    """

    def __init__(self, model: str, *, include_usage: bool) -> None:
        head = dumps(
            {"id": new_id("chatcmpl-"), "object": "chat.completion.chunk", "created": now(), "model": model}
        )
        self._prefix = b"data: " + head[:-1] + b',"choices":[{"index":0,"delta":'
        self._usage_head = b"data: " + head[:-1] + b',"choices":[],"usage":'
        self._include_usage = include_usage
        self._indices: dict[int, int] = {}  # the back end's call index -> ours
        self._fragments = False
        self._calls = 0
        self._finish: str | None = None
        self._usage: Usage | None = None

    def _event(self, delta: bytes, finish: bytes = b"null") -> bytes:
        return self._prefix + delta + b',"logprobs":null,"finish_reason":' + finish + b"}]}\n\n"

    def start(self) -> bytes:
        """The first chunk: the assistant's role."""
        return self._event(b'{"role":"assistant","content":""}')

    def chunk(self, chunk: StreamChunk) -> bytes:
        """The events of one chunk of the answer (finish and usage are kept for ``end``)."""
        out = b""
        if chunk.reasoning:
            out = self._event(b'{"reasoning_content":' + dumps(chunk.reasoning) + b"}")
        if chunk.content:
            out += self._event(b'{"content":' + dumps(chunk.content) + b"}")
        if chunk.tool_call_deltas or chunk.tool_calls:
            calls = self._tool_calls(chunk)
            if calls:
                out += self._event(dumps({"tool_calls": calls}))
        if chunk.finish_reason is not None:
            self._finish = chunk.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        return out

    def _tool_calls(self, chunk: StreamChunk) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for delta in chunk.tool_call_deltas:
            self._fragments = True
            index = self._indices.get(delta.index)
            if index is None:
                index = self._indices[delta.index] = len(self._indices)
                out.append(
                    {
                        "index": index,
                        "id": delta.id or new_id("call_"),
                        "type": "function",
                        "function": {"name": delta.name or "", "arguments": delta.arguments_fragment},
                    }
                )
            elif delta.arguments_fragment:
                out.append({"index": index, "function": {"arguments": delta.arguments_fragment}})
        if not self._fragments:  # the back end hands calls over whole
            for call in chunk.tool_calls:
                out.append({"index": self._calls, **call_body(call)})
                self._calls += 1
        return out

    def end(self) -> bytes:
        """The finish chunk, the usage chunk (``include_usage``; usage null when the back end did
        not count) and ``[DONE]``."""
        calls = bool(self._indices) or self._calls > 0
        finish = self._event(b"{}", dumps(server_finish_reason(self._finish, calls)))
        if self._include_usage:
            finish += self._usage_head + dumps(_usage(self._usage)) + b"}\n\n"
        return finish + b"data: [DONE]\n\n"

    def error(self, body: dict[str, Any]) -> bytes:
        """An error after the stream began: an event holding OpenAI's error ``body``."""
        return sse_data(body)


def model_list(models: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``GET /v1/models``: the served names, ``(name, owner)`` pairs."""
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 0, "owned_by": owner} for name, owner in models],
    }
