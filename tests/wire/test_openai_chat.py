"""Chat Completions both ways: what the client writes the server reads back unchanged, what the
server writes the client reads back unchanged, and each finish reason maps back to itself."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from abstractcore.core.types import GenerateResponse, StreamChunk, ToolCallDelta, ToolSpec, Usage
from abstractcore.features.structured import OutputSpec
from abstractcore.transport.sse import SSEDecoder
from abstractcore.wire import openai_chat
from abstractcore.wire.fields import Fields, JsonFormat, parse_json_object
from tests.wire.strategies import answers, as_any, conversations, split, texts, tool_specs

REASONS = list(openai_chat.FINISH_REASONS)


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False)


params = st.fixed_dictionaries(
    {},
    optional={
        "temperature": _floats(0, 2),
        "top_p": _floats(0, 1),
        "presence_penalty": _floats(-2, 2),
        "frequency_penalty": _floats(-2, 2),
        "max_tokens": st.integers(1, 10**5),
        "seed": st.integers(-(2**31), 2**31),
        "stop": st.lists(texts, min_size=1, max_size=3),
    },
)


@st.composite
def calls(draw: st.DrawFn) -> dict[str, Any]:
    tools: list[ToolSpec] = draw(tool_specs())
    choices = ["auto", "none", "required", *(t.name for t in tools)]
    choose: bool = draw(st.booleans())
    return {
        "messages": draw(conversations(images_in_user_turns=True)),
        "params": draw(params),
        "tools": tools,
        "tool_choice": draw(st.sampled_from(choices)) if tools and choose else None,
        "stream": draw(st.booleans()),
    }


@settings(max_examples=60, deadline=None)
@given(calls())
def test_a_request_the_client_builds_is_parsed_back_by_the_server(call: dict[str, Any]) -> None:
    body = openai_chat.request_body(
        "m",
        call["messages"],
        call["params"],
        tools=call["tools"],
        tool_choice=call["tool_choice"],
        stream=call["stream"],
    )
    parsed = openai_chat.parse_chat(parse_json_object(json.dumps(body).encode()))
    assert parsed.model == "m"
    assert parsed.messages == call["messages"]
    assert parsed.params == call["params"]
    assert parsed.tools == call["tools"]
    assert parsed.tool_choice == call["tool_choice"]
    assert parsed.stream == call["stream"]
    assert parsed.answer is None
    assert openai_chat.include_usage(Fields(as_any(body), "")) == call["stream"]


def test_a_json_schema_answer_is_parsed_back_with_its_schema_and_name() -> None:
    output = OutputSpec.from_schema({"type": "object", "properties": {"a": {"type": "integer"}}}, "thing")
    body = openai_chat.request_body(
        "m", [], {}, answer_format=openai_chat.response_format(output, "json_schema")
    )
    parsed = openai_chat.parse_chat(
        Fields({**as_any(body), "messages": [{"role": "user", "content": "x"}]}, "")
    )
    assert parsed.answer == JsonFormat(output.strict_schema or output.schema, "thing")


def test_every_finish_reason_maps_back_to_itself() -> None:
    for reason in REASONS:
        sent = openai_chat.server_finish_reason(reason, calls=reason == "tool_calls")
        assert openai_chat.finish_reason(sent) == reason
        assert openai_chat.server_finish_reason(openai_chat.finish_reason(sent), calls=False) == sent


@settings(max_examples=60, deadline=None)
@given(answers(finish_reasons=["stop", "length", "content_filter"]))
def test_a_reply_the_server_builds_is_read_back_by_the_client(answer: GenerateResponse) -> None:
    body = as_any(openai_chat.completion("m", answer))
    read = openai_chat.reply_to_response(body, provider="p", model="m")
    assert (read.content, read.tool_calls, read.usage, read.finish_reason) == (
        answer.content,
        answer.tool_calls,
        answer.usage,
        answer.finish_reason,
    )


@st.composite
def streams(draw: st.DrawFn) -> tuple[GenerateResponse, list[StreamChunk]]:
    """An answer and the chunks a back end streams it in: text in pieces, each call in argument
    fragments or whole, then finish reason and usage."""
    answer = draw(answers(finish_reasons=["stop", "length", "content_filter"]))
    chunks = [StreamChunk(content=p) for p in split(answer.content, draw(st.lists(st.integers(0, 99))))]
    if draw(st.booleans()):
        chunks.append(StreamChunk(tool_calls=answer.tool_calls))
    else:
        for index, call in enumerate(answer.tool_calls):
            pieces = split(call.arguments_json(), draw(st.lists(st.integers(0, 99))))
            chunks.append(StreamChunk(tool_call_deltas=[ToolCallDelta(index, call.id, call.name, pieces[0])]))
            chunks += [
                StreamChunk(tool_call_deltas=[ToolCallDelta(index, arguments_fragment=p)]) for p in pieces[1:]
            ]
    chunks.append(StreamChunk(finish_reason=answer.finish_reason, usage=answer.usage))
    return answer, chunks


@settings(max_examples=60, deadline=None)
@given(streams(), st.lists(st.integers(1, 64)))
def test_a_stream_the_server_writes_is_read_back_by_the_client(
    stream: tuple[GenerateResponse, list[StreamChunk]], cuts: list[int]
) -> None:
    answer, chunks = stream
    writer = openai_chat.ChatStream("m", include_usage=True)
    wire = writer.start() + b"".join(writer.chunk(c) for c in chunks) + writer.end()
    decoder, events = SSEDecoder(), []
    at = 0
    for size in [*cuts, len(wire)]:  # the bytes as they arrive, cut anywhere
        events += decoder.feed(wire[at : at + size])
        at += size
    events += decoder.close()
    assert events[-1].data == "[DONE]"
    reader = openai_chat.ChunkReader("m", provider="p")
    read = [c for e in events[:-1] for c in reader.on_event(json.loads(e.data))]
    read.append(reader.last_chunk(reader.usage))
    assert "".join(c.content for c in read) == answer.content
    assert [call for c in read for call in c.tool_calls] == answer.tool_calls
    assert (reader.usage, reader.finish_reason) == (answer.usage, answer.finish_reason)


def test_usage_reads_the_cached_prompt_tokens() -> None:
    """OpenAI's ``prompt_tokens_details.cached_tokens``; llama.cpp's ``timings.cache_n`` without it."""
    from abstractcore.wire.openai_chat import usage_body, usage_of

    details = {"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 8}}
    assert usage_of(details) == Usage.of(10, 2, cached_tokens=8)
    plain = {"prompt_tokens": 10, "completion_tokens": 2}
    assert usage_of(plain, {"cache_n": 7, "prompt_n": 3}).cached_tokens == 7  # type: ignore[union-attr]
    assert usage_of(plain).cached_tokens == 0  # type: ignore[union-attr]
    body = usage_body(Usage.of(10, 2, cached_tokens=8))
    assert body is not None and body["prompt_tokens_details"] == {"cached_tokens": 8}
