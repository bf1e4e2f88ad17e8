"""Anthropic Messages both ways: what the client writes the server reads back unchanged, what the
server writes the client reads back unchanged, and each stop reason maps back to itself."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from abstractcore.core.types import GenerateResponse, StreamChunk, ToolCallDelta, ToolSpec
from abstractcore.transport.sse import SSEDecoder
from abstractcore.wire import anthropic_messages
from abstractcore.wire.fields import JsonFormat, parse_json_object
from tests.wire.strategies import answers, as_any, conversations, split, texts, tool_specs

REASONS = list(anthropic_messages.STOP_REASONS)


params = st.fixed_dictionaries(
    {"max_tokens": st.integers(1, 10**5)},
    optional={
        "temperature": st.floats(0, 1, allow_nan=False),
        "top_p": st.floats(0, 1, allow_nan=False),
        "top_k": st.integers(0, 500),
        "stop": st.lists(texts, min_size=1, max_size=3),
    },
)


@st.composite
def calls(draw: st.DrawFn) -> dict[str, Any]:
    tools: list[ToolSpec] = draw(tool_specs())
    choices = ["auto", "none", "required", *(t.name for t in tools)]
    choose: bool = draw(st.booleans())
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    return {
        "messages": draw(conversations(images_in_user_turns=True)),
        "params": draw(params),
        "tools": tools,
        "tool_choice": draw(st.sampled_from(choices)) if tools and choose else None,
        "output_schema": schema if draw(st.booleans()) else None,
        "stream": draw(st.booleans()),
    }


@settings(max_examples=60, deadline=None)
@given(calls())
def test_a_request_the_client_builds_is_parsed_back_by_the_server(call: dict[str, Any]) -> None:
    system = [m.text for m in call["messages"] if m.role == "system"]
    body = anthropic_messages.request_body(
        "m",
        call["messages"],
        call["params"],
        system=system[0] if system else None,
        tools=call["tools"],
        tool_choice=call["tool_choice"],
        output_schema=call["output_schema"],
        stream=call["stream"],
    )
    parsed = anthropic_messages.parse_messages(parse_json_object(json.dumps(body).encode()))
    assert parsed.model == "m"
    assert parsed.messages == call["messages"]
    assert parsed.params == call["params"]
    assert parsed.tools == call["tools"]
    assert parsed.tool_choice == call["tool_choice"]
    assert parsed.stream == call["stream"]
    schema = call["output_schema"]
    assert parsed.answer == (JsonFormat(schema) if schema is not None else None)


def test_every_finish_reason_maps_back_to_itself() -> None:
    for reason in REASONS:
        sent = anthropic_messages.stop_reason(reason, calls=reason == "tool_calls")
        assert sent == anthropic_messages.STOP_REASONS[reason]
        assert anthropic_messages.finish_reason(sent) == reason
    for alias, reason in (("stop_sequence", "stop"), ("model_context_window_exceeded", "length")):
        assert anthropic_messages.finish_reason(alias) == reason


@settings(max_examples=60, deadline=None)
@given(answers(finish_reasons=["stop", "length", "content_filter"]))
def test_a_reply_the_server_builds_is_read_back_by_the_client(answer: GenerateResponse) -> None:
    body = as_any(anthropic_messages.message("m", answer))
    read = anthropic_messages.message_to_response(body, provider="p", model="m")
    assert (read.content, read.tool_calls, read.usage, read.finish_reason) == (
        answer.content,
        answer.tool_calls,
        answer.usage,
        answer.finish_reason,
    )


@st.composite
def streams(draw: st.DrawFn) -> tuple[GenerateResponse, list[StreamChunk]]:
    """An answer and the chunks a back end streams it in (see tests/wire/test_openai_chat.py)."""
    answer = draw(answers(finish_reasons=["stop", "length", "content_filter"]))
    chunks = [StreamChunk(content=p) for p in split(answer.content, draw(st.lists(st.integers(0, 99))))]
    if draw(st.booleans()):
        chunks.append(StreamChunk(tool_calls=answer.tool_calls))
    else:
        for index, call in enumerate(answer.tool_calls):
            pieces = split(call.arguments_json(), draw(st.lists(st.integers(0, 99))))
            first = ToolCallDelta(index, call.id, call.name, pieces[0])
            chunks.append(StreamChunk(tool_call_deltas=[first]))
            chunks += [
                StreamChunk(tool_call_deltas=[ToolCallDelta(index, arguments_fragment=p)]) for p in pieces[1:]
            ]
    chunks.append(StreamChunk(finish_reason=answer.finish_reason, usage=answer.usage))
    return answer, chunks


@settings(max_examples=60, deadline=None)
@given(streams(), st.booleans())
def test_a_stream_the_server_writes_is_read_back_by_the_client(
    stream: tuple[GenerateResponse, list[StreamChunk]], counted_before: bool
) -> None:
    answer, chunks = stream
    assert answer.usage is not None
    writer = anthropic_messages.MessageStream("m", answer.usage.input_tokens if counted_before else None)
    wire = writer.start() + b"".join(writer.chunk(c) for c in chunks) + writer.end()
    events = SSEDecoder().feed(wire)
    assert [e.event for e in events][-1] == "message_stop"
    reader = anthropic_messages.MessagesStream("m")
    read = [c for e in events for c in reader.on_event(json.loads(e.data))]
    assert reader.done
    read.append(reader.last_chunk())
    assert "".join(c.content for c in read) == answer.content
    assert [call for c in read for call in c.tool_calls] == answer.tool_calls
    assert (read[-1].usage, read[-1].finish_reason) == (answer.usage, answer.finish_reason)
