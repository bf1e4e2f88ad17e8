"""The tool loop (``llm.run`` / ``await llm.arun``) over the Anthropic and Ollama wire formats.

The test servers answer the scripted turns (``Fault("tool_calls", calls=[...])``) in each API's
own format and generate every other turn with the real SmolLM2 model.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from abstractcore import RetryConfig, create_llm, tool
from abstractcore.run import RunResult, ToolLoopError
from tests.servers.anthropic_server import API_KEY, AnthropicServer
from tests.servers.common import Fault, Script
from tests.servers.ollama_server import OllamaServer

FAST = RetryConfig(max_attempts=1)
calls_seen: list[tuple[str, dict[str, Any]]] = []


def get_weather(city: str, unit: str = "celsius") -> str:
    """The current weather in a city.

    Args:
        city: the city's name
        unit: celsius or fahrenheit
    """
    calls_seen.append(("get_weather", {"city": city, "unit": unit}))
    return f"sunny, 21 degrees {unit} in {city}"


timeline: list[tuple[str, str]] = []


async def get_time(city: str) -> str:
    """The local time in a city."""
    calls_seen.append(("get_time", {"city": city}))
    timeline.append(("start", city))
    await anyio.sleep(0.2)
    timeline.append(("end", city))
    return f"14:05 in {city}"


def broken(city: str) -> str:
    """A tool that fails."""
    raise RuntimeError("the weather service is down")


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls_seen.clear()
    timeline.clear()


def anthropic(server: AnthropicServer, script: Script) -> Any:
    return create_llm(
        "anthropic",
        model="claude-3-5-haiku-latest",
        base_url=server.url,
        api_key=API_KEY,
        headers=script.headers,
        retry_config=FAST,
        max_tokens=24,
        temperature=0,
    )


def ollama(server: OllamaServer, script: Script) -> Any:
    return create_llm(
        "ollama",
        model="qwen2.5-coder:7b",  # a model whose /api/show lists tools: native tool calls
        base_url=server.url,
        headers=script.headers,
        retry_config=FAST,
        max_tokens=24,
        temperature=0,
    )


PROVIDERS = ["anthropic", "ollama"]


def make(name: str, request: pytest.FixtureRequest, *faults: Fault) -> tuple[Any, Script]:
    server = request.getfixturevalue(f"{name}_test_server")
    script = server.script(*faults)
    return (anthropic if name == "anthropic" else ollama)(server, script), script


@pytest.mark.slow
@pytest.mark.parametrize("name", PROVIDERS)
def test_a_call_runs_its_result_goes_back_and_the_model_answers(
    name: str, request: pytest.FixtureRequest
) -> None:
    llm, script = make(
        name, request, Fault("tool_calls", calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    )
    result = llm.run("What is the weather in Paris?", tools=[get_weather])
    assert isinstance(result, RunResult)
    assert calls_seen == [("get_weather", {"city": "Paris", "unit": "celsius"})]  # default filled in
    assert result.content.strip()  # the real model's final answer
    assert [len(s.executions) for s in result.steps] == [1, 0]
    roles = [m.role for m in result.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert result.messages[2].content.startswith("sunny")
    assert result.usage.input_tokens > 0 and result.usage.total_tokens == sum(
        s.response.usage.total_tokens for s in result.steps if s.response.usage
    )
    second = script.requests[1]["body"]["messages"]
    if name == "anthropic":  # the result went back in the API's own shape
        assert second[-1]["content"][0]["type"] == "tool_result"
    else:
        assert second[-1]["role"] == "tool" and second[-1]["tool_name"] == "get_weather"
    # the transcript is accepted as the next call's input
    follow = llm.generate(messages=[*result.messages, {"role": "user", "content": "Thanks!"}])
    assert follow.content is not None


@pytest.mark.slow
@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.anyio
async def test_parallel_calls_run_concurrently(name: str, request: pytest.FixtureRequest) -> None:
    llm, _ = make(
        name,
        request,
        Fault(
            "tool_calls",
            calls=[
                {"name": "get_time", "arguments": {"city": "Paris"}},
                {"name": "get_time", "arguments": {"city": "Tokyo"}},
                {"name": "get_weather", "arguments": {"city": "Oslo"}},
            ],
        ),
    )
    result = await llm.arun("Times and weather?", tools=[get_weather, get_time])
    executions = result.steps[0].executions
    assert [e.call.arguments["city"] for e in executions] == ["Paris", "Tokyo", "Oslo"]  # in call order
    assert all(e.ok for e in executions)
    assert sorted(timeline[:2]) == [("start", "Paris"), ("start", "Tokyo")]  # both ran at once
    assert min(e.seconds for e in executions[:2]) >= 0.2
    assert [m.role for m in result.messages].count("tool") == 3


@pytest.mark.slow
@pytest.mark.parametrize("name", PROVIDERS)
def test_a_tool_that_raises_or_gets_bad_arguments_becomes_an_error_result(
    name: str, request: pytest.FixtureRequest
) -> None:
    llm, _ = make(
        name,
        request,
        Fault(
            "tool_calls",
            calls=[
                {"name": "broken", "arguments": {"city": "Paris"}},
                {"name": "get_weather", "arguments": {"town": "Paris"}},
                {"name": "no_such_tool", "arguments": {}},
            ],
        ),
    )
    result = llm.run("Weather?", tools=[broken, get_weather])
    errors = [e.error for e in result.steps[0].executions]
    assert "RuntimeError: the weather service is down" in str(errors[0])
    assert "city: Field required" in str(errors[1]) and "town" in str(errors[1])
    assert "no tool named 'no_such_tool'" in str(errors[2])
    assert calls_seen == []  # invalid arguments never reached the function
    assert all(m.content.startswith("Error:") for m in result.messages if m.role == "tool")


@pytest.mark.slow
@pytest.mark.parametrize("name", PROVIDERS)
def test_max_turns_reached_raises_with_the_transcript(name: str, request: pytest.FixtureRequest) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    llm, _ = make(name, request, *(Fault("tool_calls", calls=[call]) for _ in range(3)))
    with pytest.raises(ToolLoopError) as info:
        llm.run("Weather?", tools=[get_weather], max_turns=2)
    assert len(info.value.steps) == 2 and len(calls_seen) == 2
    assert [m.role for m in info.value.messages] == ["user", "assistant", "tool", "assistant", "tool"]


@pytest.mark.slow
@pytest.mark.parametrize("name", PROVIDERS)
def test_an_approval_callback_can_refuse_a_call(name: str, request: pytest.FixtureRequest) -> None:
    llm, _ = make(
        name,
        request,
        Fault(
            "tool_calls",
            calls=[
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_weather", "arguments": {"city": "Rome"}},
            ],
        ),
    )
    asked: list[str] = []

    def approve(call: Any) -> bool:
        asked.append(call.arguments["city"])
        return call.arguments["city"] != "Rome"

    result = llm.run("Weather?", tools=[get_weather], approve=approve)
    assert sorted(asked) == ["Paris", "Rome"]
    assert calls_seen == [("get_weather", {"city": "Paris", "unit": "celsius"})]
    refused = result.steps[0].executions[1]
    assert refused.error is not None and "did not approve" in refused.error


@pytest.mark.slow
@pytest.mark.parametrize("name", PROVIDERS)
def test_the_streaming_loop_yields_text_calls_and_results(name: str, request: pytest.FixtureRequest) -> None:
    llm, _ = make(
        name, request, Fault("tool_calls", calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    )
    events = list(llm.stream_run("What is the weather in Paris?", tools=[get_weather]))
    kinds = [e.kind for e in events]
    assert kinds[0] == "tool_call" and kinds[1] == "tool_result" and kinds[-1] == "done"
    assert "text" in kinds  # the final answer streamed
    text = "".join(e.text for e in events if e.kind == "text")
    assert events[-1].result is not None and events[-1].result.content == text


@pytest.mark.slow
@pytest.mark.anyio
async def test_cancelling_the_run_cancels_the_running_tool(request: pytest.FixtureRequest) -> None:
    started, finished = threading.Event(), threading.Event()

    async def slow(city: str) -> str:
        """Takes long."""
        started.set()
        await anyio.sleep(30)
        finished.set()
        return "late"

    llm, _ = make(
        "anthropic", request, Fault("tool_calls", calls=[{"name": "slow", "arguments": {"city": "x"}}])
    )
    with anyio.move_on_after(1) as scope:
        await llm.arun("Go", tools=[slow])
    assert scope.cancelled_caught and started.is_set() and not finished.is_set()


class Forecast(BaseModel):
    city: str
    summary: str


@pytest.mark.slow
@pytest.mark.parametrize("name", PROVIDERS)
def test_response_model_applies_to_the_final_answer(name: str, request: pytest.FixtureRequest) -> None:
    llm, _ = make(
        name, request, Fault("tool_calls", calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    )
    result = llm.run("Weather in Paris?", tools=[get_weather], response_model=Forecast, max_tokens=64)
    assert isinstance(result.output, Forecast)


def test_decorated_tools_keep_defaults_and_descriptions() -> None:
    @tool(name="weather", description="Weather, now.")
    def fn(city: str, days: int = 1) -> str:
        """Ignored: the decorator's description wins.

        Args:
            city: where
        """
        return city

    from abstractcore.features.tools.schema import to_tool

    spec = to_tool(fn).spec
    assert (spec.name, spec.description) == ("weather", "Weather, now.")
    assert spec.parameters["properties"]["days"]["default"] == 1
    assert spec.parameters["properties"]["city"]["description"] == "where"
    assert spec.parameters["required"] == ["city"]
    assert fn("Paris") == "Paris"  # still a plain function
