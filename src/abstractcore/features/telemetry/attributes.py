"""The attributes of a span, as plain dicts: what the OpenTelemetry GenAI semantic conventions
name (the registry of semantic-conventions v1.41.0, carried on by
open-telemetry/semantic-conventions-genai v0.1.0; see docs/tracing.md), read from a ``Request``
and its answer.

Pure functions over abstractcore's types; nothing here imports opentelemetry. API keys are never
read: a request carries none, and only a provider's ``base_url`` host and port are taken.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from abstractcore.core.types import GenerateResponse, Message, StreamChunk, ToolCall, Usage

__all__ = [
    "COST",
    "content_of",
    "error_type",
    "output_messages",
    "param_attributes",
    "request_attributes",
    "response_attributes",
    "server_of",
    "usage_attributes",
]

#: This library's own attribute: the call's cost in US dollars (priced providers only).
COST = "abstractcore.cost.usd"

#: Generation parameter -> its ``gen_ai.request.*`` attribute.
_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "seed": "gen_ai.request.seed",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
}


def server_of(provider: Any) -> tuple[str, int] | None:
    """``server.address`` and ``server.port`` of an HTTP provider (None in process)."""
    base_url = getattr(provider, "base_url", None)
    return _server_of_url(base_url) if isinstance(base_url, str) else None


@lru_cache(maxsize=256)
def _server_of_url(base_url: str) -> tuple[str, int] | None:
    parts = urlsplit(base_url)
    if not parts.hostname:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname, port


def request_attributes(
    operation: str, provider: str, model: str, params: Mapping[str, Any], server: tuple[str, int] | None
) -> dict[str, Any]:
    """The attributes known before the call is sent (the conventions ask for them at span start)."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    if server is not None:
        attributes["server.address"], attributes["server.port"] = server
    attributes.update(param_attributes(params))
    return attributes


def param_attributes(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``gen_ai.request.*`` sampling parameters given (temperature, max_tokens, stop, ...)."""
    attributes: dict[str, Any] = {}
    if not params:
        return attributes
    for name, key in _PARAMS.items():
        value = params.get(name)
        if value is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            if name == "top_k" and float(value).is_integer():
                value = int(value)  # an int since semantic-conventions-genai v0.1.0
            attributes[key] = value
    stop = params.get("stop")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        attributes["gen_ai.request.stop_sequences"] = list(stop)
    return attributes


def usage_attributes(usage: Usage | None) -> dict[str, Any]:
    """Token counts: input, output, and the cached and reasoning ones the back end reported."""
    if usage is None:
        return {}
    attributes: dict[str, Any] = {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
    }
    if usage.cached_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
    if usage.cache_write_tokens:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_tokens
    if usage.reasoning_tokens:
        attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
    return attributes


def _response_id(raw: Any) -> str | None:
    value = raw.get("id") if isinstance(raw, Mapping) else None
    return value if isinstance(value, str) and value else None


def response_attributes(answer: GenerateResponse | StreamChunk) -> dict[str, Any]:
    """What the answer (or a stream's last chunk) says: model, id, finish reason, usage, cost."""
    attributes = usage_attributes(answer.usage)
    if answer.model:
        attributes["gen_ai.response.model"] = answer.model
    response_id = _response_id(answer.raw)
    if response_id:
        attributes["gen_ai.response.id"] = response_id
    if answer.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = [answer.finish_reason]
    if answer.cost is not None:
        attributes[COST] = answer.cost
    return attributes


def error_type(error: BaseException) -> str:
    """``error.type``: the exception's class name (the conventions' fallback when no code fits)."""
    return type(error).__name__


def _parts(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if message.role == "tool":
        return [{"type": "tool_call_response", "id": message.tool_call_id, "response": message.text}]
    if message.text:
        parts.append({"type": "text", "content": message.text})
    parts.extend(_call_part(call) for call in message.tool_calls)
    return parts


def _call_part(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}


def content_of(messages: list[Message]) -> dict[str, str]:
    """``gen_ai.system_instructions`` and ``gen_ai.input.messages`` as the conventions' JSON
    (recorded only when content capture is on)."""
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    attributes = {
        "gen_ai.input.messages": _json([{"role": m.role, "parts": _parts(m)} for m in rest]),
    }
    if system:
        attributes["gen_ai.system_instructions"] = _json(
            [{"type": "text", "content": m.text} for m in system]
        )
    return attributes


def output_messages(text: str, calls: list[ToolCall], finish_reason: str | None) -> str:
    """``gen_ai.output.messages``: the answer as the conventions' JSON."""
    parts: list[dict[str, Any]] = [{"type": "text", "content": text}] if text else []
    parts.extend(_call_part(call) for call in calls)
    return _json([{"role": "assistant", "parts": parts, "finish_reason": finish_reason or "stop"}])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
