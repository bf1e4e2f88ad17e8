"""Our Responses client against our Responses server (``create_llm("openai", api="responses")``
pointed at ``abstractcore serve`` over the embedded model): the two directions must agree on
text, streams, usage, tool calls and structured output."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from abstractcore import LLM, create_llm
from tests.server.support import KEY, MODEL, RunningServer

pytestmark = pytest.mark.slow


class Colour(BaseModel):
    name: str


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"Sunny and 21 C in {city}."


@pytest.fixture
def client(local_server: RunningServer) -> LLM:
    return create_llm(
        "openai", api="responses", model=MODEL, base_url=local_server.openai_url, api_key=KEY, temperature=0
    )


def test_text_and_a_stream_agree_with_the_same_usage(client: LLM, local_llm: LLM) -> None:
    plain = client.generate("Name a colour.", max_tokens=8)
    direct = local_llm.generate("Name a colour.", max_tokens=8, temperature=0)
    assert plain.content == direct.content and plain.content
    assert plain.usage is not None and plain.usage.input_tokens == direct.usage.input_tokens  # type: ignore[union-attr]
    chunks = list(client.stream("Name a colour.", max_tokens=8))
    assert "".join(c.content for c in chunks) == plain.content
    assert [c.usage is not None for c in chunks].count(True) == 1 and chunks[-1].usage is not None
    assert chunks[-1].usage.output_tokens == plain.usage.output_tokens
    assert chunks[-1].finish_reason == plain.finish_reason


def test_a_tool_loop_runs_over_the_responses_endpoint(client: LLM) -> None:
    result = client.run(
        "What is the weather in Paris?",
        tools=[get_weather],
        tool_choice="get_weather",
        max_turns=2,
        max_tokens=40,
    )
    executions = [e for step in result.steps for e in step.executions]
    assert executions and executions[0].call.name == "get_weather" and executions[0].ok
    assert "Sunny" in str(executions[0].result)


def test_structured_output_comes_back_validated(client: LLM) -> None:
    colour = client.generate("Give a colour as JSON.", response_model=Colour, max_tokens=30)
    assert isinstance(colour, Colour) and colour.name
