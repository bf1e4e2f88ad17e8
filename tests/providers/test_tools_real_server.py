"""Tool calling against the real llama.cpp server (a forced tool is grammar-constrained)."""

from __future__ import annotations

import pytest

from abstractcore import LLM, Message, ToolCall, create_llm, tool

pytestmark = pytest.mark.slow  # the real model or a server process throughout


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city."""
    return f"Sunny in {city}"


@pytest.fixture
def llm(llama_base_url: str) -> LLM:
    return create_llm("openai", model="smollm2", base_url=llama_base_url, temperature=0, max_tokens=40)


def test_forced_tool_call_comes_back_parsed(llm: LLM) -> None:
    r = llm.generate("What is the weather in Paris?", tools=[get_weather], tool_choice="get_weather")
    assert len(r.tool_calls) == 1
    call = r.tool_calls[0]
    assert call.name == "get_weather" and call.id
    assert isinstance(call.arguments, dict) and isinstance(call.arguments.get("city"), str)


def test_streamed_tool_call_keeps_every_argument(llm: LLM) -> None:
    plain = llm.generate("Weather in Rome?", tools=[get_weather], tool_choice="get_weather")
    chunks = list(llm.stream("Weather in Rome?", tools=[get_weather], tool_choice="get_weather"))
    fragments = [d for c in chunks for d in c.tool_call_deltas]
    assert len(fragments) >= 2, "the arguments arrive in several fragments"
    streamed = chunks[-1].tool_calls
    assert [(c.name, c.arguments) for c in streamed] == [(c.name, c.arguments) for c in plain.tool_calls]


def test_tool_result_round_trip(llm: LLM) -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    r = llm.generate(
        messages=[
            Message("user", "What is the weather in Paris?"),
            Message("assistant", "", tool_calls=[call]),
            Message("tool", get_weather("Paris"), tool_call_id="call_1"),
        ],
        tools=[get_weather],
        max_tokens=12,
    )
    assert r.content.strip()
