"""Ollama's chat format (client only: the server does not speak it): the tool calls an assistant
turn is written with read back the same, the finish reasons of a done line, the options."""

from __future__ import annotations

from hypothesis import given, settings

from abstractcore.core.types import Message, ToolCall
from abstractcore.wire import ollama_chat
from tests.wire.strategies import as_any, tool_calls


@settings(max_examples=60, deadline=None)
@given(tool_calls(min_size=1))
def test_the_calls_of_an_assistant_turn_read_back_the_same(calls: list[ToolCall]) -> None:
    written = as_any(ollama_chat.to_ollama_message(Message("assistant", "", tool_calls=calls)))
    assert ollama_chat.ollama_tool_calls(written["tool_calls"]) == calls
    reply = ollama_chat.chat_to_response(
        {"message": written, "done": True, "done_reason": "stop"}, provider="ollama", model="m"
    )
    assert reply.tool_calls == calls
    assert reply.finish_reason == "tool_calls"


def test_every_finish_reason_maps_back_to_itself() -> None:
    for wire, reason in ollama_chat.FINISH_REASONS.items():
        assert ollama_chat.ollama_finish_reason({"done_reason": wire}, False) == reason
    assert ollama_chat.ollama_finish_reason({}, False) == "stop"


def test_a_tool_result_is_named_after_the_call_it_answers() -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Paris"})
    body = ollama_chat.request_body(
        "m",
        [Message("assistant", "", tool_calls=[call]), Message("tool", "sunny", tool_call_id="call_1")],
        {"max_tokens": 5, "stop": "x", "keep_alive": "1m"},
    )
    assert body["messages"][1]["tool_name"] == "get_weather"
    assert body["options"] == {"num_predict": 5, "stop": ["x"]}
    assert body["keep_alive"] == "1m"
