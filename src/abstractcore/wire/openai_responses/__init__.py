"""OpenAI's Responses API (``POST /v1/responses``) wire format, as pure functions.

``client``: ``request_body`` writes a request (``instructions`` + ``input`` items, flat
function tools, ``text.format``, ``reasoning``, ``store`` / ``include``), ``reply_to_response``
reads a response object. ``events``: ``ResponsesStream`` reads a stream's typed events.
``shapes``: what both directions share (tools, tool choice, usage, the finish reason of a
response's ``status``). Used by ``create_llm("openai", api="responses")``.
"""

from __future__ import annotations

from abstractcore.wire.openai_responses.client import (
    ENCRYPTED_REASONING,
    UNSUPPORTED_PARAMS,
    check_params,
    input_items,
    reasoning_field,
    reasoning_items,
    reasoning_parts,
    reply_to_response,
    request_body,
    text_format,
    tool_call,
)
from abstractcore.wire.openai_responses.events import (
    END_EVENTS,
    ResponsesStream,
    failure_of,
    is_error_event,
    is_last_event,
)
from abstractcore.wire.openai_responses.shapes import (
    SOURCE,
    finish_reason,
    function_tool,
    tool_choice_to_responses,
    tools_to_responses,
    usage_of,
)

__all__ = [
    "ENCRYPTED_REASONING",
    "END_EVENTS",
    "SOURCE",
    "UNSUPPORTED_PARAMS",
    "ResponsesStream",
    "check_params",
    "failure_of",
    "finish_reason",
    "function_tool",
    "input_items",
    "is_error_event",
    "is_last_event",
    "reasoning_field",
    "reasoning_items",
    "reasoning_parts",
    "reply_to_response",
    "request_body",
    "text_format",
    "tool_call",
    "tool_choice_to_responses",
    "tools_to_responses",
    "usage_of",
]
