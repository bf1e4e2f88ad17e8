"""OpenAI's Responses API wire format (``POST /v1/responses``), as pure functions.

``server``: ``parse_responses`` reads a request into a ``ResponsesCall`` (a ``ParsedCall`` and
what the reply echoes), ``completed`` writes a whole ``response`` object; ``server_stream``:
``ResponseStream`` writes the typed event stream (``abstractcore.server``). ``shapes``: the
output items and usage both directions share.
"""

from __future__ import annotations

from abstractcore.wire.openai_responses.server import (
    ResponsesCall,
    completed,
    conversation_of,
    output_items,
    parse_responses,
    response_object,
)
from abstractcore.wire.openai_responses.server_stream import ResponseStream

__all__ = [
    "ResponseStream",
    "ResponsesCall",
    "completed",
    "conversation_of",
    "output_items",
    "parse_responses",
    "response_object",
]
