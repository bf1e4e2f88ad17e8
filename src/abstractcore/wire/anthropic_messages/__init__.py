"""Anthropic's Messages wire format, both directions, as pure functions.

``client``: ``request_body`` writes a request (the system prompt top-level, tool results as
``tool_result`` blocks first in a user turn, images as base64 blocks, consecutive turns of one
role merged), ``message_to_response`` reads a reply, ``MessagesStream`` reads a stream's events
(the ``anthropic`` provider). ``server``: ``parse_messages`` reads a request into a
``ParsedCall``, ``message`` writes a reply, ``MessageStream`` writes a stream
(``abstractcore.server``). ``thinking``: extended thinking on the client side (the control
mapped to ``thinking``, its rules checked, thinking blocks read and sent back). ``caching``: the
``cache_control`` breakpoints of ``cache=True``. ``shapes``:
the one stop-reason map ``STOP_REASONS`` and usage.
"""

from __future__ import annotations

from abstractcore._lazy import lazy_exports as _lazy_exports

TYPE_CHECKING = False
if TYPE_CHECKING:
    from abstractcore.wire.anthropic_messages.caching import add_breakpoints, cache_control, cache_ttl
    from abstractcore.wire.anthropic_messages.client import (
        COUNT_FIELDS,
        DEFAULT_MAX_TOKENS,
        MessagesStream,
        content_blocks,
        count_body,
        is_error_event,
        is_message_stop,
        message_to_response,
        request_body,
        stop_sequences,
        to_anthropic_messages,
        tool_choice_to_anthropic,
        tools_to_anthropic,
    )
    from abstractcore.wire.anthropic_messages.server import MessageStream, message, model_list, parse_messages
    from abstractcore.wire.anthropic_messages.shapes import (
        STOP_REASONS,
        finish_reason,
        stop_reason,
        usage_body,
        usage_of,
    )
    from abstractcore.wire.anthropic_messages.thinking import (
        EFFORT_BUDGETS,
        check_thinking,
        reasoning_blocks,
        reasoning_part,
        thinking_budget,
    )
del TYPE_CHECKING

# imported on first use: ``import`` of the package loads none of its modules
__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "abstractcore.wire.anthropic_messages.caching": (
            "add_breakpoints",
            "cache_control",
            "cache_ttl",
        ),
        "abstractcore.wire.anthropic_messages.client": (
            "COUNT_FIELDS",
            "DEFAULT_MAX_TOKENS",
            "MessagesStream",
            "content_blocks",
            "count_body",
            "is_error_event",
            "is_message_stop",
            "message_to_response",
            "request_body",
            "stop_sequences",
            "to_anthropic_messages",
            "tool_choice_to_anthropic",
            "tools_to_anthropic",
        ),
        "abstractcore.wire.anthropic_messages.server": (
            "MessageStream",
            "message",
            "model_list",
            "parse_messages",
        ),
        "abstractcore.wire.anthropic_messages.shapes": (
            "STOP_REASONS",
            "finish_reason",
            "stop_reason",
            "usage_body",
            "usage_of",
        ),
        "abstractcore.wire.anthropic_messages.thinking": (
            "EFFORT_BUDGETS",
            "check_thinking",
            "reasoning_blocks",
            "reasoning_part",
            "thinking_budget",
        ),
    },
)

__all__ = [
    "COUNT_FIELDS",
    "DEFAULT_MAX_TOKENS",
    "EFFORT_BUDGETS",
    "STOP_REASONS",
    "MessageStream",
    "MessagesStream",
    "add_breakpoints",
    "cache_control",
    "cache_ttl",
    "check_thinking",
    "content_blocks",
    "count_body",
    "finish_reason",
    "is_error_event",
    "is_message_stop",
    "message",
    "message_to_response",
    "model_list",
    "parse_messages",
    "reasoning_blocks",
    "reasoning_part",
    "request_body",
    "stop_reason",
    "stop_sequences",
    "thinking_budget",
    "to_anthropic_messages",
    "tool_choice_to_anthropic",
    "tools_to_anthropic",
    "usage_body",
    "usage_of",
]
