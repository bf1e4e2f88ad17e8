"""The usage the server's stream writers put in their events (no back end needed)."""

from __future__ import annotations

import json
from typing import Any

from abstractcore.core.types import StreamChunk, Usage
from abstractcore.wire.anthropic_messages import MessageStream
from abstractcore.wire.openai_chat import ChatStream


def _events(data: bytes) -> dict[str, Any]:
    out = {}
    for block in data.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out[lines["event"]] = json.loads(lines["data"])
    return out


def test_message_start_has_the_input_tokens_counted_before_the_stream() -> None:
    stream = MessageStream("m", input_tokens=27)
    start = _events(stream.start())["message_start"]
    assert start["message"]["usage"] == {"input_tokens": 27, "output_tokens": 0}


def test_message_delta_has_both_counts_of_the_last_chunk() -> None:
    stream = MessageStream("m", input_tokens=27)
    stream.chunk(StreamChunk(content="Hi"))
    stream.chunk(StreamChunk(finish_reason="stop", usage=Usage.of(27, 5, counted=True)))
    delta = _events(stream.end())["message_delta"]
    assert delta["usage"] == {
        "input_tokens": 27,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 5,
    }


def test_message_delta_keeps_the_counted_input_when_the_back_end_reports_nothing() -> None:
    stream = MessageStream("m", input_tokens=27)
    stream.chunk(StreamChunk(finish_reason="stop"))
    assert _events(stream.end())["message_delta"]["usage"] == {
        "input_tokens": 27,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }


def test_the_openai_usage_chunk_carries_the_last_chunks_usage() -> None:
    stream = ChatStream("m", include_usage=True)
    stream.chunk(StreamChunk(finish_reason="length", usage=Usage.of(27, 8, counted=True)))
    events = [e for e in stream.end().decode().split("\n\n") if e]
    usage = json.loads(events[-2].removeprefix("data: "))
    assert usage["choices"] == [] and usage["usage"] == {
        "prompt_tokens": 27,
        "completion_tokens": 8,
        "total_tokens": 35,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
