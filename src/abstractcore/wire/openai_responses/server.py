"""The Responses API, server side: a ``POST /v1/responses`` body -> ``ResponsesCall`` (a
``ParsedCall`` and what the reply echoes), an answer -> a ``response`` object.

Mapped: ``instructions`` (a system turn, not carried over by ``previous_response_id``, as the
API defines), ``input`` as a string or items (``message`` items with ``input_text`` /
``output_text`` / ``input_image`` parts, images as data: or http(s) URLs; ``function_call`` and
``function_call_output`` items; ``reasoning`` items are accepted and dropped: a local model takes
no thinking back), function tools in the flat Responses shape and ``tool_choice``,
``text.format`` (``json_schema``, ``json_object``, ``text``), ``max_output_tokens``,
``temperature``, ``top_p``, ``reasoning.effort``, ``stream``, ``store`` and
``previous_response_id``. Fields with no meaning here (``metadata``, ``user``,
``parallel_tool_calls``, ``service_tier``, ``include``, ...) are accepted and not forwarded;
hosted tools (web search, file search, ...), ``background``, ``conversation``, ``prompt`` and
file inputs are a ``FieldError`` naming what is unsupported. The stream is ``server_stream``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import (
    ContentPart,
    GenerateResponse,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
)
from abstractcore.features.media import decode_data_url
from abstractcore.wire.encoding import new_id, now
from abstractcore.wire.fields import (
    FieldError,
    Fields,
    JsonFormat,
    ParsedCall,
    answer_format,
    check_tools,
    checked_tool,
)
from abstractcore.wire.openai_responses.shapes import (
    function_call_item,
    message_item,
    reasoning_item,
    status_of,
    usage_body,
)

__all__ = [
    "ResponsesCall",
    "completed",
    "conversation_of",
    "output_items",
    "parse_responses",
    "response_object",
]

_EMPTY_SCHEMA = {"type": "object", "properties": {}}
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_UNSUPPORTED = (
    ("background", False, "background responses are not supported by this server"),
    ("conversation", None, "conversations are not supported by this server; use previous_response_id"),
    ("prompt", None, "prompt templates are not supported by this server"),
    ("top_logprobs", 0, "logprobs are not supported by this server"),
    ("max_tool_calls", None, "max_tool_calls is not supported by this server"),
    ("truncation", "disabled", "only truncation 'disabled' is supported by this server"),
)


@dataclass(slots=True)
class ResponsesCall:
    """A parsed Responses request: ``call`` (its ``messages`` are the ``input`` only, the
    history of ``previous_response_id`` not yet before them), the ``instructions``, whether to
    ``store`` the answer, the ``previous_response_id``, and the request fields a ``response``
    object echoes."""

    call: ParsedCall
    instructions: str | None
    store: bool
    previous_response_id: str | None
    echo: dict[str, Any] = field(default_factory=dict)

    def messages(self, history: list[Message]) -> list[Message]:
        """The conversation to send: the instructions, ``history``, then this input."""
        head = [Message("system", self.instructions)] if self.instructions else []
        return [*head, *history, *self.call.messages]


def parse_responses(body: Fields) -> ResponsesCall:
    """The call a Responses request asks for (``FieldError`` naming the field when wrong)."""
    model = body.string("model", required=True, nonempty=True)
    assert model is not None
    for key, allowed, why in _UNSUPPORTED:
        body.refuse(key, allowed, why)
    tools = _tools(body)
    raw_choice = body.data.get("tool_choice")
    if isinstance(raw_choice, dict) and raw_choice.get("type") == "function":
        raw_choice = {"type": "tool", "name": raw_choice.get("name")}
    elif isinstance(raw_choice, dict) and raw_choice.get("type") not in ("auto", "none", "any", "tool"):
        raise FieldError("tool_choice", f"{raw_choice.get('type')!r} tool choices are not supported here")
    choice = check_tools(tools, raw_choice, tools_param="tools", choice_param="tool_choice")
    call = ParsedCall(
        model=model,
        messages=_input(body),
        params=_params(body),
        tools=tools,
        tool_choice=choice,
        stream=bool(body.boolean("stream")),
        answer=_answer(body),
    )
    store = body.boolean("store")
    return ResponsesCall(
        call=call,
        instructions=body.string("instructions"),
        store=True if store is None else store,
        previous_response_id=body.string("previous_response_id", nonempty=True),
        echo=_echo(body, store is not False),
    )


def _echo(body: Fields, store: bool) -> dict[str, Any]:
    data = body.data
    reasoning = body.object("reasoning")
    return {
        "instructions": data.get("instructions"),
        "tools": list(data.get("tools") or []),
        "tool_choice": data.get("tool_choice") or "auto",
        "parallel_tool_calls": data.get("parallel_tool_calls", True),
        "temperature": data.get("temperature"),
        "top_p": data.get("top_p"),
        "max_output_tokens": data.get("max_output_tokens"),
        "previous_response_id": data.get("previous_response_id"),
        "reasoning": {"effort": reasoning.data.get("effort") if reasoning else None, "summary": None},
        "text": {
            "format": dict((body.object("text") or Fields({}, "")).data.get("format") or {"type": "text"})
        },
        "metadata": dict(data.get("metadata") or {}),
        "store": store,
        "truncation": "disabled",
    }


def _params(body: Fields) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        value = body.number(name, low, high)
        if value is not None:
            params[name] = value
    max_tokens = body.integer("max_output_tokens", minimum=1)
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    reasoning = body.object("reasoning")
    effort = reasoning.string("effort") if reasoning else None
    if effort is not None:  # the back end checks the value, and refuses it when it takes none
        params["reasoning_effort"] = effort
    return params


def _input(body: Fields) -> list[Message]:
    value = body.data.get("input")
    if value is None:
        raise FieldError("input", "field required")
    if isinstance(value, str):
        return [Message("user", value)]
    out: list[Message] = []
    for item in body.objects("input", nonempty=True):
        kind = item.string("type") or "message"
        if kind == "message":
            out.append(_message(item))
        elif kind == "function_call":
            call = _function_call(item)
            last = out[-1] if out else None
            if last is not None and last.role == "assistant":  # calls after the text: one turn
                last.tool_calls.append(call)
            else:
                out.append(Message("assistant", "", tool_calls=[call]))
        elif kind == "function_call_output":
            output = item.data.get("output")
            text = output if isinstance(output, str) else _text_of(_parts(item, "output", images=False))
            out.append(
                Message("tool", text, tool_call_id=item.string("call_id", required=True, nonempty=True))
            )
        elif kind == "reasoning":
            continue  # a local model takes no thinking back; the API's own encrypted content is not ours
        else:
            raise FieldError(item.path("type"), f"{kind!r} input items are not supported by this server")
    return out


def _message(item: Fields) -> Message:
    role = item.string("role", required=True)
    if role not in _ROLES:
        raise FieldError(item.path("role"), "must be user, assistant, system or developer")
    value = item.data.get("content")
    content: str | list[ContentPart]
    if value is None or isinstance(value, str):
        content = value or ""
    else:
        parts = _parts(item, "content", images=role == "user")
        content = _text_of(parts) if all(isinstance(p, TextPart) for p in parts) else parts
    if role == "assistant":
        return Message("assistant", content)
    return Message("user" if role == "user" else "system", content)


def _parts(item: Fields, key: str, *, images: bool) -> list[ContentPart]:
    parts: list[ContentPart] = []
    for part in item.objects(key):
        kind = part.string("type", required=True)
        if kind in ("input_text", "output_text"):
            parts.append(TextPart(part.string("text", required=True) or ""))
        elif kind == "refusal":
            parts.append(TextPart(part.string("refusal") or ""))
        elif kind == "input_image" and images:
            parts.append(_image(part))
        else:
            raise FieldError(part.path("type"), f"{kind!r} content parts are not supported here")
    return parts


def _text_of(parts: list[ContentPart]) -> str:
    return "\n".join(p.text for p in parts if isinstance(p, TextPart))


def _image(part: Fields) -> ImagePart:
    if part.has("file_id"):
        raise FieldError(part.path("file_id"), "file ids are not supported by this server; send image_url")
    url = part.string("image_url", required=True, nonempty=True) or ""
    if url.startswith(("http://", "https://")):
        return ImagePart(url=url)
    if not url.startswith("data:") or ";base64" not in url.partition(",")[0]:
        raise FieldError(part.path("image_url"), "must be an http(s) URL or a base64 data: URL")
    try:
        return decode_data_url(url)
    except ConfigurationError:
        raise FieldError(part.path("image_url"), "the data: URL holds invalid base64") from None


def _function_call(item: Fields) -> ToolCall:
    name = item.string("name", required=True, nonempty=True) or ""
    raw = item.string("arguments") or "{}"
    try:
        arguments = json.loads(raw)
    except ValueError:
        raise FieldError(item.path("arguments"), "is not valid JSON") from None
    if not isinstance(arguments, dict):
        raise FieldError(item.path("arguments"), "must be a JSON object")
    return ToolCall(
        id=item.string("call_id", required=True, nonempty=True) or "", name=name, arguments=arguments
    )


def _tools(body: Fields) -> list[ToolSpec]:
    specs: list[ToolSpec] = []
    for tool in body.objects("tools"):
        kind = tool.string("type") or "function"
        if kind != "function":
            raise FieldError(
                tool.path("type"), f"{kind!r} tools are not supported by this server (only 'function' tools)"
            )
        parameters = tool.object("parameters")
        spec = ToolSpec(
            name=tool.string("name", required=True, nonempty=True) or "",
            description=tool.string("description") or "",
            parameters=dict(parameters.data) if parameters else dict(_EMPTY_SCHEMA),
        )
        specs.append(checked_tool(spec, name_param=tool.path("name"), schema_param=tool.path("parameters")))
    return specs


def _answer(body: Fields) -> JsonFormat | None:
    text = body.object("text")
    return answer_format(text.object("format") if text else None, _json_schema)


def _json_schema(form: Fields) -> JsonFormat:
    schema = form.object("schema", required=True)
    assert schema is not None
    return JsonFormat(dict(schema.data), form.string("name") or "json_answer")


def output_items(response: GenerateResponse) -> list[dict[str, Any]]:
    """The output items of an answer: its reasoning, its text, its function calls, in order."""
    items: list[dict[str, Any]] = []
    if response.reasoning:
        items.append(reasoning_item(new_id("rs_"), response.reasoning))
    if response.content or not response.tool_calls:
        items.append(message_item(new_id("msg_"), response.content))
    for call in response.tool_calls:
        items.append(function_call_item(new_id("fc_"), call.id, call.name, call.arguments_json()))
    return items


def response_object(
    response_id: str,
    model: str,
    echo: dict[str, Any],
    output: list[dict[str, Any]],
    *,
    status: str,
    usage: dict[str, Any] | None = None,
    incomplete: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    created_at: int | None = None,
) -> dict[str, Any]:
    """A ``response`` object: its id, status, ``output`` items, usage and the request's echo."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at or now(),
        "status": status,
        "model": model,
        "output": output,
        "usage": usage,
        "error": error,
        "incomplete_details": incomplete,
        **echo,
    }


def completed(
    response_id: str, model: str, echo: dict[str, Any], response: GenerateResponse
) -> dict[str, Any]:
    """The finished ``response`` object of a whole answer."""
    status, incomplete = status_of(response.finish_reason)
    return response_object(
        response_id,
        model,
        echo,
        output_items(response),
        status=status,
        usage=usage_body(response.usage),
        incomplete=incomplete,
    )


def conversation_of(items: list[dict[str, Any]]) -> list[Message]:
    """Output items (a stored response's) as the turns they continue a conversation with."""
    return _input(Fields({"input": items}, ""))
