"""A forced tool choice is a promise that the answer is a call: "required" (Anthropic's "any")
gives a call to one of the tools, in process and over both llama.cpp servers; a call cut by
max_tokens raises the typed error structured output raises, through generate, stream and run;
response_model in "tool" mode works where the server's template ignores tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from abstractcore import LLM, StructuredOutputError, create_llm, tool

pytestmark = pytest.mark.slow


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city."""
    return f"Sunny in {city}"


@tool
def get_time(zone: str) -> str:
    """The time in a time zone."""
    return "noon"


TOOLS = [get_weather, get_time]
NAMES = {"get_weather", "get_time"}


class City(BaseModel):
    name: str


@pytest.fixture(scope="module")
def in_process(gguf_path: Path) -> Any:
    llm = create_llm("huggingface", model=str(gguf_path), temperature=0)
    yield llm
    llm.unload()


def llama_python(llama_base_url: str) -> LLM:
    """A new provider on llama-cpp-python's server (nothing learned about it yet)."""
    return create_llm("openai-compatible", model="smollm2", base_url=llama_base_url, temperature=0)


def _one_call(calls: list[Any]) -> Any:
    assert len(calls) == 1 and calls[0].name in NAMES, calls
    return calls[0]


@pytest.mark.parametrize("choice", ["required", "any", {"type": "any"}])
def test_required_gives_a_call_to_one_of_the_tools_in_process(in_process: LLM, choice: Any) -> None:
    r = in_process.generate("Weather in Paris?", tools=TOOLS, tool_choice=choice, max_tokens=60)
    call = _one_call(r.tool_calls)
    assert r.finish_reason == "tool_calls" and r.content == ""
    assert r.tool_strategy == "prompted+grammar"
    assert isinstance(call.arguments, dict) and set(call.arguments) <= {"city", "unit", "zone"}


def test_required_streams_one_whole_call_and_no_prose_in_process(in_process: LLM) -> None:
    chunks = list(in_process.stream("Weather in Paris?", tools=TOOLS, tool_choice="required", max_tokens=60))
    assert "".join(c.content for c in chunks) == ""
    _one_call([c for chunk in chunks for c in chunk.tool_calls])
    assert chunks[-1].finish_reason == "tool_calls"


def test_required_with_a_schema_keyword_no_grammar_enforces_still_gives_a_call(in_process: LLM) -> None:
    tagger = {
        "name": "tag",
        "description": "Tag the text.",
        "parameters": {
            "type": "object",
            "properties": {"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
            "required": ["tags"],
        },
    }
    r = in_process.generate("Tag: sunny Paris", tools=[tagger], tool_choice="required", max_tokens=60)
    assert [c.name for c in r.tool_calls] == ["tag"]
    assert isinstance(r.tool_calls[0].arguments["tags"], list)


def test_required_gives_a_call_over_the_python_server(llama_base_url: str) -> None:
    llm = llama_python(llama_base_url)
    r = llm.generate("Weather in Paris?", tools=TOOLS, tool_choice="required", max_tokens=60)
    _one_call(r.tool_calls)
    assert r.finish_reason == "tool_calls" and r.content == ""
    # the server ignored "required" once; later calls go prompted with the grammar at once
    again = llm.generate("Weather in Rome?", tools=TOOLS, tool_choice={"type": "any"}, max_tokens=60)
    _one_call(again.tool_calls)
    assert again.tool_strategy == "prompted+grammar"


def test_required_streams_a_call_over_the_python_server(llama_base_url: str) -> None:
    chunks = list(
        llama_python(llama_base_url).stream(
            "Weather in Rome?", tools=TOOLS, tool_choice="required", max_tokens=60
        )
    )
    assert "".join(c.content for c in chunks) == ""
    _one_call([c for chunk in chunks for c in chunk.tool_calls])
    assert chunks[-1].finish_reason == "tool_calls"


def test_required_gives_a_call_over_the_cpp_server(cpp_server_url: str) -> None:
    llm = create_llm("openai-compatible", base_url=cpp_server_url, temperature=0)
    r = llm.generate("Weather in Paris?", tools=TOOLS, tool_choice="required", max_tokens=60)
    _one_call(r.tool_calls)


# -- a forced call cut by max_tokens ---------------------------------------------------------------


def _cut(error: pytest.ExceptionInfo[StructuredOutputError]) -> None:
    assert error.value.finish_reason == "length"
    assert "cut by max_tokens" in str(error.value) and "raise max_tokens" in str(error.value)
    assert error.value.raw


@pytest.mark.parametrize("choice", ["get_weather", "required"])
def test_a_cut_forced_call_raises_through_run_over_the_cpp_server(cpp_server_url: str, choice: str) -> None:
    llm = create_llm("openai-compatible", base_url=cpp_server_url, temperature=0)
    with pytest.raises(StructuredOutputError) as error:
        llm.run("Weather in Paris?", tools=[get_weather], tool_choice=choice, max_tokens=5)
    _cut(error)
    with pytest.raises(StructuredOutputError) as error:
        list(llm.stream("Weather in Paris?", tools=[get_weather], tool_choice=choice, max_tokens=5))
    _cut(error)


@pytest.mark.parametrize("choice", ["get_weather", "required"])
def test_a_cut_forced_call_raises_in_process(in_process: LLM, choice: str) -> None:
    for call in (
        lambda: in_process.generate(
            "Weather in Paris?", tools=[get_weather], tool_choice=choice, max_tokens=4
        ),
        lambda: list(
            in_process.stream("Weather in Paris?", tools=[get_weather], tool_choice=choice, max_tokens=4)
        ),
        lambda: in_process.run("Weather in Paris?", tools=[get_weather], tool_choice=choice, max_tokens=4),
    ):
        with pytest.raises(StructuredOutputError) as error:
            call()
        _cut(error)


def test_a_cut_forced_call_raises_over_the_python_server(llama_base_url: str) -> None:
    llm = llama_python(llama_base_url)
    with pytest.raises(StructuredOutputError) as error:  # that server says "tool_calls" for it
        llm.generate("Weather in Paris?", tools=[get_weather], tool_choice="get_weather", max_tokens=4)
    _cut(error)
    with pytest.raises(StructuredOutputError) as error:  # and streams no usage
        list(llm.stream("Weather in Paris?", tools=[get_weather], tool_choice="get_weather", max_tokens=4))
    _cut(error)


# -- response_model in "tool" mode where the template ignores tools --------------------------------


def test_tool_mode_structured_output_on_the_cpp_server_whose_template_ignores_tools(
    cpp_server_url: str,
) -> None:
    llm = create_llm("openai-compatible", base_url=cpp_server_url, temperature=0, max_tokens=60)
    assert llm.fetch_capabilities().tools is False  # SmolLM2's template: from /props
    city = llm.generate(
        "The capital of France is Paris. Name the city.", response_model=City, structured_mode="tool"
    )
    assert isinstance(city, City) and city.name
    streamed = list(
        llm.stream(
            "The capital of France is Paris. Name the city.", response_model=City, structured_mode="tool"
        )
    )
    assert isinstance(streamed[-1], City) and streamed[-1].name
