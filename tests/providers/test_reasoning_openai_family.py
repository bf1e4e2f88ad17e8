"""Thinking models through the OpenAI-compatible providers, against the fake OpenAI server: the
thinking apart from the answer (generate and stream), the control mapped into the body (or
refused before anything is sent), reasoning tokens counted, and ``response_model`` validated on
the first answer when the thinking is full of braces."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from abstractcore import ConfigurationError, Usage, create_llm
from abstractcore.core.retry import RetryConfig
from abstractcore.features.cost import cost_of
from tests.servers.openai_fake import KEY, FakeOpenAI, Fault, thinking_body

FAST = RetryConfig(max_attempts=1)
THINKING = 'The schema wants {"name": str, "age": int}; so {name: Ann, age: 31}.'


class Person(BaseModel):
    name: str
    age: int


def make(fake: FakeOpenAI, provider: str = "openai-compatible", **config: Any) -> Any:
    return create_llm(provider, model="m", base_url=fake.base_url, api_key=KEY, retry_config=FAST, **config)


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", None])
def test_generate_and_stream_keep_the_thinking_apart(fake: FakeOpenAI, field: str | None) -> None:
    llm = make(fake)
    body = thinking_body("2+2 {is} 4", "Four.", field=field, reasoning_tokens=5)
    fake.script.extend([Fault("thinking", body=body), Fault("thinking", body=body)])
    response = llm.generate("2+2?")
    assert (response.reasoning, response.content) == ("2+2 {is} 4", "Four.")
    assert response.usage.reasoning_tokens == 5
    chunks = list(llm.stream("2+2?"))
    assert len([c for c in chunks if c.reasoning]) > 1  # thinking arrives as deltas
    assert "".join(c.reasoning for c in chunks) == "2+2 {is} 4"
    assert "".join(c.content for c in chunks) == "Four."
    assert chunks[-1].reasoning_parts[0].text == "2+2 {is} 4" and chunks[-1].usage.reasoning_tokens == 5


@pytest.mark.parametrize(
    ("provider", "params", "sent"),
    [
        (
            "openai",
            {"reasoning_effort": "high", "max_tokens": 50},
            {"reasoning_effort": "high", "max_tokens": 50},
        ),
        ("openai", {"reasoning": False}, {"reasoning_effort": "none"}),
        ("openrouter", {"thinking_budget": 1024}, {"reasoning": {"max_tokens": 1024}}),
        ("openrouter", {"reasoning_effort": "low"}, {"reasoning": {"effort": "low"}}),
        ("vllm", {"reasoning": False}, {"chat_template_kwargs": {"enable_thinking": False}}),
        ("openai-compatible", {"reasoning_effort": "low"}, {"reasoning_effort": "low"}),
        ("lmstudio", {"reasoning_effort": "medium"}, {"reasoning_effort": "medium"}),
    ],
)
def test_the_control_reaches_the_body_as_the_provider_takes_it(
    fake: FakeOpenAI, provider: str, params: dict[str, Any], sent: dict[str, Any]
) -> None:
    make(fake, provider).generate("hi", **params)
    body = fake.requests[-1]["body"]
    assert {k: body.get(k) for k in sent} == sent


def test_openais_own_api_gets_max_completion_tokens_another_server_max_tokens() -> None:
    """OpenAI's reasoning models refuse ``max_tokens``; a server behind ``base_url`` may know only it."""
    import httpx

    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        reply = {"choices": [{"message": {"content": "a"}, "finish_reason": "stop"}], "model": "o3"}
        return httpx.Response(200, json=reply)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    llm = create_llm("openai", model="o3", api_key=KEY, http_client=client, retry_config=FAST)
    llm.generate("hi", max_tokens=40, reasoning_effort="low")
    assert bodies[-1]["max_completion_tokens"] == 40 and "max_tokens" not in bodies[-1]
    assert bodies[-1]["reasoning_effort"] == "low"


def test_a_control_given_at_construction_is_every_calls_default(fake: FakeOpenAI) -> None:
    llm = make(fake, "vllm", reasoning_effort="high")
    llm.generate("hi")
    assert fake.requests[-1]["body"]["reasoning_effort"] == "high"


@pytest.mark.parametrize(
    ("provider", "params", "says"),
    [
        ("openai", {"thinking_budget": 2000}, "reasoning_effort="),
        ("vllm", {"thinking_budget": 2000}, "reasoning=False"),
        ("lmstudio", {"reasoning": False}, "no per-request switch"),
        ("openrouter", {"reasoning_effort": "loud"}, "reasoning_effort= one of"),
    ],
)
def test_a_control_the_provider_cannot_take_fails_before_sending(
    fake: FakeOpenAI, provider: str, params: dict[str, Any], says: str
) -> None:
    llm = make(fake, provider)
    with pytest.raises(ConfigurationError, match=says):
        llm.generate("hi", **params)
    with pytest.raises(ConfigurationError, match=says):
        llm.stream("hi", **params)  # refused when the stream is asked for, not at its first chunk
    assert fake.requests == []


@pytest.mark.parametrize("field", ["reasoning_content", None])
def test_response_model_validates_the_answer_on_the_first_try_whatever_the_thinking(
    fake: FakeOpenAI, field: str | None
) -> None:
    fake.script.append(
        Fault("thinking", body=thinking_body(THINKING, '{"name": "Ann", "age": 31}', field=field))
    )
    person = make(fake).generate("Ann, 31", response_model=Person)
    assert person == Person(name="Ann", age=31)
    assert len(fake.requests) == 1  # no re-ask


def test_reasoning_tokens_are_part_of_the_completion_tokens_cost_counts_them_once(fake: FakeOpenAI) -> None:
    fake.script.append(Fault("thinking", body=thinking_body("t", "a", reasoning_tokens=15)))
    llm = create_llm("openai", model="gpt-4o-mini", base_url=fake.base_url, api_key=KEY, retry_config=FAST)
    response = llm.generate("hi")
    assert response.usage.output_tokens == 20 and response.usage.reasoning_tokens == 15
    # priced on the 20 completion tokens: the 15 thinking tokens are among them, not added on top
    assert response.cost is not None and response.cost == cost_of("openai", "gpt-4o-mini", Usage.of(7, 20))


def test_a_tool_loop_sends_the_turns_thinking_back_as_reasoning_content(fake: FakeOpenAI) -> None:
    calls = {
        "id": "chatcmpl-5",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "",
                    "reasoning_content": "I need the weather",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
            }
        ],
    }
    fake.script.extend([Fault("status", status=200, body=calls), Fault("reply", body={"content": "Sunny."})])

    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    result = make(fake).run("Weather in Paris?", tools=[weather])
    assert result.content == "Sunny."
    second = fake.requests[1]["body"]["messages"]
    assert second[1]["reasoning_content"] == "I need the weather" and second[1]["tool_calls"]
