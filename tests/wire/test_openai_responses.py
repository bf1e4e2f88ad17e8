"""The Responses API's client mappers: request bodies (checked against the official SDK's
``ResponseCreateParams``), responses and stream events back to abstractcore's types."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses.response_create_params import ResponseCreateParamsNonStreaming
from pydantic import TypeAdapter

from abstractcore import ConfigurationError, Message, ReasoningPart, ToolCall, ToolSpec, create_llm
from abstractcore.wire.openai_responses import ResponsesStream, reply_to_response, request_body

SDK = TypeAdapter(ResponseCreateParamsNonStreaming)
KEYS = set(ResponseCreateParamsNonStreaming.__annotations__) | {"stream"}
WEATHER = ToolSpec(
    "weather",
    "The weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def _valid(body: dict[str, Any]) -> None:
    assert set(body) <= KEYS
    SDK.validate_python(body)


def test_a_tool_loop_turn_becomes_input_items_the_sdk_accepts() -> None:
    messages = [
        Message("system", "Be brief."),
        Message("user", "Weather in Paris?"),
        Message(
            "assistant",
            "",
            tool_calls=[ToolCall("call_1", "weather", {"city": "Paris"})],
            reasoning=[ReasoningPart("look it up", signature="ENC", source="openai", id="rs_1")],
        ),
        Message("tool", "sunny", tool_call_id="call_1"),
    ]
    body = request_body(
        "gpt-5-mini",
        messages,
        {"reasoning_effort": "low", "max_tokens": 64},
        instructions="Be brief.",
        tools=[WEATHER],
        tool_choice="weather",
    )
    _valid(body)
    assert body["instructions"] == "Be brief."
    assert body["input"][1] == {
        "type": "reasoning",
        "id": "rs_1",
        "encrypted_content": "ENC",
        "summary": [{"type": "summary_text", "text": "look it up"}],
    }
    assert body["input"][2]["call_id"] == body["input"][3]["call_id"] == "call_1"
    assert body["tools"][0]["strict"] is True and body["tools"][0]["name"] == "weather"
    assert body["tool_choice"] == {"type": "function", "name": "weather"}
    assert body["store"] is False and body["include"] == ["reasoning.encrypted_content"]
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert body["max_output_tokens"] == 64


def test_other_providers_thinking_is_not_sent() -> None:
    turn = Message("assistant", "hi", reasoning=[ReasoningPart("x", signature="s", source="anthropic")])
    body = request_body("gpt-4o", [turn], {})
    assert [item.get("type") for item in body["input"]] == [None]
    assert "include" not in body


def test_unsupported_parameters_and_a_wrong_api_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="seed"):
        request_body("gpt-4o", [Message("user", "x")], {"seed": 1})
    with pytest.raises(ConfigurationError, match="'chat', 'responses'"):
        create_llm("openai", api="completions", api_key="sk-test")


def test_a_response_object_is_read_with_usage_reasoning_and_cut() -> None:
    data = {
        "id": "resp_1",
        "model": "gpt-5-mini",
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [
            {
                "type": "reasoning",
                "id": "rs_9",
                "summary": [{"type": "summary_text", "text": "hmm"}],
                "encrypted_content": "E",
            },
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]},
        ],
        "usage": {
            "input_tokens": 9,
            "output_tokens": 4,
            "total_tokens": 13,
            "input_tokens_details": {"cached_tokens": 3},
            "output_tokens_details": {"reasoning_tokens": 2},
        },
    }
    r = reply_to_response(data, provider="openai", model="gpt-5-mini")
    assert (r.content, r.finish_reason, r.reasoning) == ("Hi", "length", "hmm")
    assert r.reasoning_parts == [ReasoningPart("hmm", signature="E", source="openai", id="rs_9")]
    assert (r.usage.cached_tokens, r.usage.reasoning_tokens, r.usage.input_tokens) == (3, 2, 9)


def test_stream_events_give_text_calls_and_usage_on_the_last_chunk() -> None:
    state = ResponsesStream("m")
    call = {"type": "function_call", "call_id": "call_7", "name": "weather", "arguments": ""}
    events = [
        {"type": "response.created", "response": {"model": "m"}},
        {"type": "response.output_text.delta", "output_index": 0, "delta": "Hel"},
        {"type": "response.output_item.added", "output_index": 1, "item": call},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": '{"city":'},
        {
            "type": "response.output_item.done",
            "output_index": 1,
            "item": {**call, "arguments": '{"city":"P"}'},
        },
        {
            "type": "response.completed",
            "response": {
                "status": "completed",
                "output": [],
                "usage": {"input_tokens": 2, "output_tokens": 3},
            },
        },
    ]
    chunks = [c for e in events for c in state.on_event(e)]
    last = state.last_chunk()
    assert "".join(c.content for c in chunks) == "Hel"
    assert [t for c in chunks for t in c.tool_calls] == [ToolCall("call_7", "weather", {"city": "P"})]
    assert last.finish_reason == "tool_calls" and last.usage is not None and last.usage.output_tokens == 3
    assert last.tool_calls == []
