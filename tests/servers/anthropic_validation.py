"""Request validation for the Anthropic test server: what the real Messages API rejects, with
its messages (``validate`` raises ``Invalid``, answered as a 400 ``invalid_request_error``)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

__all__ = ["STRUCTURED_OUTPUTS_BETA", "Invalid", "validate"]

_TOP_LEVEL = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
    "service_tier",
}


_MEDIA_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


class Invalid(Exception):
    """A request the API rejects with 400 invalid_request_error."""


def _check_block(block: Any, where: str, role: str, tool_ids: set[str]) -> None:
    if not isinstance(block, dict) or "type" not in block:
        raise Invalid(f"{where}: Input should be a valid dictionary or object to extract fields from")
    kind = block["type"]
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise Invalid(f"{where}.text: Field required")
        if not block["text"]:
            raise Invalid("messages: text content blocks must be non-empty")
    elif kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            if source.get("media_type") not in _MEDIA_TYPES:
                raise Invalid(
                    f"{where}.source.base64.media_type: Input should be 'image/jpeg', "
                    "'image/png', 'image/gif' or 'image/webp'"
                )
            try:
                base64.b64decode(source.get("data") or "", validate=True)
            except (binascii.Error, ValueError):
                raise Invalid(f"{where}.source.base64.data: invalid base64 data") from None
        elif source.get("type") != "url":
            raise Invalid(
                f"{where}.source: Input tag '{source.get('type')}' found using 'type' "
                "does not match any of the expected tags: 'base64', 'url'"
            )
    elif kind == "tool_use":
        if role != "assistant":
            raise Invalid(f"{where}: tool_use blocks may only be used in assistant messages")
        if not block.get("id") or not block.get("name") or not isinstance(block.get("input"), dict):
            raise Invalid(f"{where}: tool_use blocks need an id, a name and an input object")
    elif kind in ("thinking", "redacted_thinking"):
        if role != "assistant":
            raise Invalid(f"{where}: {kind} blocks may only be used in assistant messages")
        if kind == "thinking" and not isinstance(block.get("thinking"), str):
            raise Invalid(f"{where}.thinking: Field required")
        if kind == "thinking" and not isinstance(block.get("signature"), str):
            raise Invalid(f"{where}.signature: Field required")
        if kind == "redacted_thinking" and not isinstance(block.get("data"), str):
            raise Invalid(f"{where}.data: Field required")
    elif kind == "tool_result":
        if role != "user":
            raise Invalid(f"{where}: tool_result blocks may only be used in user messages")
        if block.get("tool_use_id") not in tool_ids:
            raise Invalid(
                f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{block.get('tool_use_id')}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message."
            )
    else:
        raise Invalid(
            f"{where}.type: Input tag '{kind}' found using 'type' does not match any of "
            "the expected tags: 'text', 'image', 'tool_use', 'tool_result', 'thinking', "
            "'redacted_thinking'"
        )


#: The beta that enables ``output_format`` (JSON outputs constrained to a schema).


STRUCTURED_OUTPUTS_BETA = "structured-outputs-2025-11-13"


def validate(body: Any, betas: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Raise ``Invalid`` with the API's message for what the real API rejects."""
    if not isinstance(body, dict):
        raise Invalid("Input should be a valid dictionary")
    allowed = _TOP_LEVEL | ({"output_format"} if STRUCTURED_OUTPUTS_BETA in betas else set())
    for name in body:
        if name not in allowed:
            raise Invalid(f"{name}: Extra inputs are not permitted")
    output_format = body.get("output_format")
    if output_format is not None:
        schema = output_format.get("schema") if isinstance(output_format, dict) else None
        if output_format.get("type") != "json_schema" or not isinstance(schema, dict):
            raise Invalid("output_format.type: Input should be 'json_schema' (with a schema)")
        if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
            raise Invalid("output_format.schema: objects must set additionalProperties to false")
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise Invalid(f"{name}: Field required")
    tokens = body["max_tokens"]
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        raise Invalid("max_tokens: Input should be greater than or equal to 1")
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        raise Invalid("temperature: range: 0..1")
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        raise Invalid("stop_sequences: Input should be a valid list of strings")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: at least one message is required")
    tool_ids: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            raise Invalid(
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            raise Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            if not content and not (role == "assistant" and i == len(messages) - 1):
                raise Invalid(
                    f"messages.{i}: all messages must have non-empty content except "
                    "for the optional final assistant message"
                )
        elif isinstance(content, list):
            for j, block in enumerate(content):
                _check_block(block, f"messages.{i}.content.{j}", role, tool_ids)
        else:
            raise Invalid(f"messages.{i}.content: Input should be a valid list")
        tool_ids = (
            {b["id"] for b in content if b.get("type") == "tool_use"} if isinstance(content, list) else set()
        )
    tools = body.get("tools") or []
    names = set()
    for i, tool in enumerate(tools):
        schema = tool.get("input_schema") if isinstance(tool, dict) else None
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise Invalid(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
        names.add(tool.get("name"))
    choice = body.get("tool_choice")
    if choice is not None:
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            raise Invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
        if choice["type"] == "tool" and choice.get("name") not in names:
            raise Invalid(f"tool_choice.name: Tool '{choice.get('name')}' not found in tools")
