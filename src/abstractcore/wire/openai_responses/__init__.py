"""OpenAI's Responses API (``POST /v1/responses``) wire format, both directions, as pure functions.

``client``: ``request_body`` writes a request (``instructions`` + ``input`` items, flat
function tools, ``text.format``, ``reasoning``, ``store`` / ``include``), ``reply_to_response``
reads a response object; ``events``: ``ResponsesStream`` reads a stream's typed events (used by
``create_llm("openai", api="responses")``). ``server``: ``parse_responses`` reads a request into
a ``ResponsesCall`` (a ``ParsedCall`` and what the reply echoes), ``completed`` writes a whole
``response`` object; ``server_stream``: ``ResponseStream`` writes the typed event stream
(``abstractcore serve``). ``shapes``: what both share (tools, tool choice, usage, output items,
the status / finish-reason map).
"""

from __future__ import annotations

from abstractcore._lazy import lazy_exports as _lazy_exports

TYPE_CHECKING = False
if TYPE_CHECKING:
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
    from abstractcore.wire.openai_responses.server import (
        ResponsesCall,
        completed,
        conversation_of,
        output_items,
        parse_responses,
        response_object,
    )
    from abstractcore.wire.openai_responses.server_stream import ResponseStream
    from abstractcore.wire.openai_responses.shapes import (
        SOURCE,
        finish_reason,
        function_tool,
        tool_choice_to_responses,
        tools_to_responses,
        usage_of,
    )
del TYPE_CHECKING

# imported on first use: ``import`` of the package loads none of its modules
__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "abstractcore.wire.openai_responses.client": (
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
        ),
        "abstractcore.wire.openai_responses.events": (
            "END_EVENTS",
            "ResponsesStream",
            "failure_of",
            "is_error_event",
            "is_last_event",
        ),
        "abstractcore.wire.openai_responses.server": (
            "ResponsesCall",
            "completed",
            "conversation_of",
            "output_items",
            "parse_responses",
            "response_object",
        ),
        "abstractcore.wire.openai_responses.server_stream": ("ResponseStream",),
        "abstractcore.wire.openai_responses.shapes": (
            "SOURCE",
            "finish_reason",
            "function_tool",
            "tool_choice_to_responses",
            "tools_to_responses",
            "usage_of",
        ),
    },
)

__all__ = [
    "ENCRYPTED_REASONING",
    "END_EVENTS",
    "SOURCE",
    "UNSUPPORTED_PARAMS",
    "ResponseStream",
    "ResponsesCall",
    "ResponsesStream",
    "check_params",
    "completed",
    "conversation_of",
    "failure_of",
    "finish_reason",
    "function_tool",
    "input_items",
    "is_error_event",
    "is_last_event",
    "output_items",
    "parse_responses",
    "reasoning_field",
    "reasoning_items",
    "reasoning_parts",
    "reply_to_response",
    "request_body",
    "response_object",
    "text_format",
    "tool_call",
    "tool_choice_to_responses",
    "tools_to_responses",
    "usage_of",
]
