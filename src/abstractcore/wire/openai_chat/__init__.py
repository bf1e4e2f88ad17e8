"""OpenAI's Chat Completions wire format, both directions, as pure functions.

``client``: ``request_body`` writes a request, ``reply_to_response`` reads a reply,
``ChunkReader`` reads a stream (the OpenAI-compatible providers; the llama.cpp engine's
``create_chat_completion`` takes the same message and tool shapes in process). ``server``:
``parse_chat`` reads a request into a ``ParsedCall``, ``completion`` writes a reply,
``ChatStream`` writes a stream (``abstractcore.server``). ``shapes``: what both share, the
messages, tool calls, usage and the one finish-reason map ``FINISH_REASONS``.
"""

from __future__ import annotations

from abstractcore._lazy import lazy_exports as _lazy_exports

TYPE_CHECKING = False
if TYPE_CHECKING:
    from abstractcore.wire.openai_chat.client import (
        PARAMS,
        ChunkReader,
        reply_to_response,
        request_body,
        response_format,
    )
    from abstractcore.wire.openai_chat.server import (
        ChatStream,
        completion,
        include_usage,
        model_list,
        parse_chat,
    )
    from abstractcore.wire.openai_chat.shapes import (
        FINISH_REASONS,
        call_body,
        finish_reason,
        message_to_openai,
        parse_tool_calls,
        server_finish_reason,
        tool_call_deltas,
        tool_choice_to_openai,
        tools_to_openai,
        usage_body,
        usage_of,
    )
del TYPE_CHECKING

# imported on first use: ``import`` of the package loads none of its modules
__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "abstractcore.wire.openai_chat.client": (
            "PARAMS",
            "ChunkReader",
            "reply_to_response",
            "request_body",
            "response_format",
        ),
        "abstractcore.wire.openai_chat.server": (
            "ChatStream",
            "completion",
            "include_usage",
            "model_list",
            "parse_chat",
        ),
        "abstractcore.wire.openai_chat.shapes": (
            "FINISH_REASONS",
            "call_body",
            "finish_reason",
            "message_to_openai",
            "parse_tool_calls",
            "server_finish_reason",
            "tool_call_deltas",
            "tool_choice_to_openai",
            "tools_to_openai",
            "usage_body",
            "usage_of",
        ),
    },
)

__all__ = [
    "FINISH_REASONS",
    "PARAMS",
    "ChatStream",
    "ChunkReader",
    "call_body",
    "completion",
    "finish_reason",
    "include_usage",
    "message_to_openai",
    "model_list",
    "parse_chat",
    "parse_tool_calls",
    "reply_to_response",
    "request_body",
    "response_format",
    "server_finish_reason",
    "tool_call_deltas",
    "tool_choice_to_openai",
    "tools_to_openai",
    "usage_body",
    "usage_of",
]
