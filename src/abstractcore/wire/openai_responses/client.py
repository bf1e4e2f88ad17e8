"""The Responses API (``POST /v1/responses``), client side: a request body from a ``Request``'s
messages, tools and parameters (``request_body``); a response object back to a
``GenerateResponse`` (``reply_to_response``). The stream's events are read by ``events.py``.

Messages become ``instructions`` (the system prompt) and ``input`` items: user turns as
``input_text`` / ``input_image`` parts, assistant turns as their text (the easy message form)
preceded by the reasoning items they carried (``encrypted_content`` echoed unchanged, so a tool
loop goes on statelessly with ``store: false``) and followed by ``function_call`` items, tool
results as ``function_call_output`` items naming the ``call_id``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from abstractcore.core.errors import ConfigurationError, ResponseFormatError
from abstractcore.core.types import (
    GenerateResponse,
    ImagePart,
    Message,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolSpec,
)
from abstractcore.features.tools.accumulator import as_arguments
from abstractcore.wire.openai_responses.shapes import (
    SOURCE,
    finish_reason,
    tool_choice_to_responses,
    tools_to_responses,
    usage_of,
)

if TYPE_CHECKING:
    from abstractcore.features.structured import OutputSpec

__all__ = [
    "ENCRYPTED_REASONING",
    "UNSUPPORTED_PARAMS",
    "check_params",
    "input_items",
    "reasoning_field",
    "reasoning_items",
    "reasoning_parts",
    "reply_to_response",
    "request_body",
    "text_format",
    "tool_call",
]

#: What ``include`` asks for when nothing is stored: the reasoning items' encrypted content.
ENCRYPTED_REASONING = "reasoning.encrypted_content"
#: Generation parameters with no field in this API (refused before sending).
UNSUPPORTED_PARAMS = ("stop", "seed", "presence_penalty", "frequency_penalty", "top_k")
#: The efforts ``reasoning.effort`` takes.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
#: Model name prefixes of OpenAI's reasoning models (they return reasoning items).
REASONING_MODELS = ("o1", "o3", "o4", "gpt-5", "codex")


def _image(part: ImagePart) -> dict[str, Any]:
    encoded = base64.b64encode(part.data or b"").decode("ascii")
    url = part.url or f"data:{part.mime_type};base64,{encoded}"
    return {"type": "input_image", "image_url": url, "detail": "auto"}


def _user_content(content: str | list[TextPart | ImagePart]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [
        {"type": "input_text", "text": part.text} if isinstance(part, TextPart) else _image(part)
        for part in content
    ]


def reasoning_items(parts: Sequence[ReasoningPart]) -> list[dict[str, Any]]:
    """The reasoning items to send back for ``parts``: this API's own (an item id), with their
    ``encrypted_content`` unchanged; thinking of other providers is dropped."""
    items: list[dict[str, Any]] = []
    for part in parts:
        if part.source != SOURCE or not part.id:
            continue
        item: dict[str, Any] = {
            "type": "reasoning",
            "id": part.id,
            "summary": [{"type": "summary_text", "text": part.text}] if part.text else [],
        }
        if part.signature:
            item["encrypted_content"] = part.signature
        items.append(item)
    return items


def _function_call(call: ToolCall) -> dict[str, Any]:
    arguments = call.arguments_json()
    return {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": arguments}


def input_items(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The ``input`` items of ``messages`` (system turns left out: they are ``instructions``)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            call_id = message.tool_call_id or ""
            items.append({"type": "function_call_output", "call_id": call_id, "output": message.text})
            continue
        if message.role == "user":
            items.append({"role": "user", "content": _user_content(message.content)})
            continue
        items += reasoning_items(message.reasoning)
        if message.text:
            items.append({"role": "assistant", "content": message.text})
        items += [_function_call(call) for call in message.tool_calls]
    return items


def text_format(output: OutputSpec[Any]) -> dict[str, Any]:
    """``text.format`` asking for ``output``: a ``json_schema`` format, strict where the schema
    can be (in the strict form), else the schema as it is with ``strict: false``."""
    strict = output.strict_schema
    return {
        "type": "json_schema",
        "name": output.name,
        "schema": strict if strict is not None else output.schema,
        "strict": strict is not None,
    }


def reasoning_field(params: Mapping[str, Any], provider: str) -> dict[str, Any] | None:
    """``reasoning: {"effort", "summary": "auto"}`` from the call's reasoning control (None: the
    model's default, nothing sent). ``reasoning=False`` is effort "none"; ``reasoning=True``
    "medium"; ``thinking_budget`` has no field here (``ConfigurationError``)."""
    effort = params.get("reasoning_effort")
    switch = params.get("reasoning")
    if params.get("thinking_budget") is not None:
        raise ConfigurationError(
            f"{provider} (Responses API) takes no thinking token budget (thinking_budget=): use "
            "reasoning_effort='low' | 'medium' | 'high' (max_tokens caps thinking and answer together)."
        )
    if effort is not None and effort not in EFFORTS:
        raise ConfigurationError(
            f"{provider} takes reasoning_effort= one of {', '.join(map(repr, EFFORTS))}; got {effort!r}."
        )
    if switch is not None and not isinstance(switch, bool):
        raise ConfigurationError(f"reasoning= must be True or False; got {switch!r}.")
    if switch is False and effort not in (None, "none"):
        raise ConfigurationError(
            f"{provider}: reasoning=False turns thinking off, reasoning_effort={effort!r} asks for it; "
            "pass one of them."
        )
    if switch is False:
        effort = "none"
    elif effort is None and switch:
        effort = "medium"
    if effort is None:
        return None
    return {"effort": effort} if effort == "none" else {"effort": effort, "summary": "auto"}


def check_params(params: Mapping[str, Any], provider: str) -> None:
    """Refuse the parameters this API has no field for, before anything is sent."""
    given = [name for name in UNSUPPORTED_PARAMS if params.get(name) is not None]
    if given:
        raise ConfigurationError(
            f"{provider} with api='responses' cannot send {', '.join(given)}: the Responses API has no "
            "such field. Leave them unset, or use the default api='chat' (Chat Completions)."
        )
    store = params.get("store")
    if store is not None and not isinstance(store, bool):
        raise ConfigurationError(f"store= must be True or False; got {store!r}.")
    previous = params.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise ConfigurationError(
            f"previous_response_id= must be a response id ('resp_...'); got {previous!r}."
        )


def request_body(
    model: str,
    messages: Sequence[Message],
    params: Mapping[str, Any],
    *,
    instructions: str | None = None,
    tools: Sequence[ToolSpec] = (),
    tool_choice: str | None = None,
    output: OutputSpec[Any] | None = None,
    stream: bool = False,
    provider: str = "openai",
) -> dict[str, Any]:
    """A ``POST /v1/responses`` body.

    ``store`` is False unless the call sets ``store=True``; then nothing is kept by the server,
    so reasoning models are asked for their reasoning items' ``encrypted_content``
    (``include``) to send them back next turn. ``previous_response_id`` continues a stored
    response; ``output`` (native structured output) becomes ``text.format``."""
    check_params(params, provider)
    body: dict[str, Any] = {"model": model, "input": input_items(messages)}
    if instructions:
        body["instructions"] = instructions
    if params.get("max_tokens") is not None:
        body["max_output_tokens"] = params["max_tokens"]
    for name in ("temperature", "top_p", "previous_response_id"):
        if params.get(name) is not None:
            body[name] = params[name]
    reasoning = reasoning_field(params, provider)
    if reasoning is not None:
        body["reasoning"] = reasoning
    store = bool(params.get("store"))
    body["store"] = store
    thinks = model.startswith(REASONING_MODELS) or (reasoning is not None and reasoning["effort"] != "none")
    if not store and thinks:
        body["include"] = [ENCRYPTED_REASONING]
    if tools:
        body["tools"] = tools_to_responses(tools)
        if tool_choice is not None:
            body["tool_choice"] = tool_choice_to_responses(tool_choice)
    if output is not None:
        body["text"] = {"format": text_format(output)}
    if stream:
        body["stream"] = True
    return body


def reasoning_parts(items: Sequence[Any]) -> list[ReasoningPart]:
    """The ``reasoning`` output items as ``ReasoningPart``s: the summaries' text (or, without a
    summary, the reasoning text open models give), the item id and its ``encrypted_content``."""
    parts: list[ReasoningPart] = []
    for item in items:
        if not isinstance(item, Mapping) or item.get("type") != "reasoning":
            continue
        texts = [str(s.get("text") or "") for s in item.get("summary") or () if isinstance(s, Mapping)]
        if not any(texts):
            texts = [str(c.get("text") or "") for c in item.get("content") or () if isinstance(c, Mapping)]
        encrypted = item.get("encrypted_content")
        parts.append(
            ReasoningPart(
                "\n\n".join(t for t in texts if t),
                signature=str(encrypted) if encrypted else None,
                source=SOURCE,
                id=str(item["id"]) if item.get("id") else None,
            )
        )
    return parts


def _message_text(item: Mapping[str, Any]) -> str:
    pieces = []
    for part in item.get("content") or ():
        if isinstance(part, Mapping):
            if part.get("type") == "output_text":
                pieces.append(str(part.get("text") or ""))
            elif part.get("type") == "refusal":
                pieces.append(str(part.get("refusal") or ""))
    return "".join(pieces)


def tool_call(item: Mapping[str, Any], index: int) -> ToolCall:
    """A ``function_call`` item as a ``ToolCall`` (its ``call_id`` is the id sent back)."""
    return ToolCall(
        id=str(item.get("call_id") or item.get("id") or f"call_{index}"),
        name=str(item.get("name") or ""),
        arguments=as_arguments(item.get("arguments")),
    )


def reply_to_response(data: Any, *, provider: str, model: str) -> GenerateResponse:
    """A ``response`` object as a ``GenerateResponse`` (``ResponseFormatError`` when it has no
    ``output``): the text of its messages, its function calls, its reasoning summaries, usage,
    and "length" when ``status`` is "incomplete" for ``max_output_tokens``."""
    output = data.get("output") if isinstance(data, Mapping) else None
    if not isinstance(output, list):
        raise ResponseFormatError(
            f"{provider} response has no output: {str(data)[:200]!r}", provider=provider, model=model
        )
    texts: list[str] = []
    calls: list[ToolCall] = []
    for item in output:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "message":
            texts.append(_message_text(item))
        elif item.get("type") == "function_call":
            calls.append(tool_call(item, len(calls)))
    parts = reasoning_parts(output)
    return GenerateResponse(
        content="".join(texts),
        tool_calls=calls,
        usage=usage_of(data.get("usage")),
        finish_reason=finish_reason(data, bool(calls)),
        model=data.get("model") or model,
        provider=provider,
        raw=data,
        reasoning="\n\n".join(p.text for p in parts if p.text) or None,
        reasoning_parts=parts,
    )
