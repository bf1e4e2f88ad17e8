"""``create_llm("openai", api="responses")`` end to end, through the public API, against a server
that speaks the published Responses wire format (``tests/servers/openai_responses.py``: every
object and event it sends is validated by the official SDK's types)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from abstractcore import (
    LLM,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ProviderConnectionError,
    RateLimitError,
    RetryConfig,
    ServerError,
    create_llm,
)
from tests.servers.openai_responses import (
    KEY,
    FakeResponses,
    Reply,
    call_item,
    error_body,
    message_item,
    reasoning_item,
    running_fake_responses,
    usage,
)

pytestmark = pytest.mark.anyio

NO_RETRY = RetryConfig(max_attempts=1)


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeResponses]:
    with running_fake_responses() as state:
        yield state


@pytest.fixture
def server(_server: FakeResponses) -> FakeResponses:
    _server.reset()
    return _server


def make(server: FakeResponses, model: str = "gpt-4.1-mini", **config: Any) -> LLM:
    config.setdefault("retry_config", NO_RETRY)
    return create_llm("openai", model=model, api="responses", base_url=server.base_url, api_key=KEY, **config)


THOUGHT = [reasoning_item("Weighing the answer.", "gAAAA-encrypted-blob", "rs_abc123")]


async def test_generate_text_and_usage_with_cached_and_reasoning_tokens(server: FakeResponses) -> None:
    server.script.append(Reply.text("Paris is the capital.", usage=usage(40, 9, cached=32, reasoning=3)))
    r = await make(server).agenerate("Capital of France?", system_prompt="Be brief.", max_tokens=50)
    assert r.content == "Paris is the capital."
    assert r.finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (40, 9, 49)
    assert (r.usage.cached_tokens, r.usage.reasoning_tokens) == (32, 3)
    sent = server.requests[-1]
    assert sent["instructions"] == "Be brief."
    assert sent["input"] == [{"role": "user", "content": "Capital of France?"}]
    assert sent["max_output_tokens"] == 50
    assert sent["store"] is False  # nothing kept on the server's side by default
    assert "stream" not in sent


async def test_stream_text_deltas_and_usage_once_equal_to_generate(server: FakeResponses) -> None:
    llm = make(server)
    server.script.append(Reply.text("one two three four", usage=usage(12, 4, cached=8)))
    whole = await llm.agenerate("count")
    server.script.append(Reply.text("one two three four", usage=usage(12, 4, cached=8)))
    chunks = [c async for c in llm.astream("count")]
    assert server.requests[-1]["stream"] is True
    texts = [c.content for c in chunks if c.content]
    assert texts == ["one", " two", " three", " four"]
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1]
    assert with_usage[0].usage == whole.usage
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].raw["id"] == f"resp_{len(server.requests)}"  # for previous_response_id


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


async def test_run_tool_loop_sends_function_call_output_with_the_call_id(server: FakeResponses) -> None:
    server.script.append(Reply(output=[call_item("get_weather", {"city": "Oslo"}, "call_w1")]))
    server.script.append(Reply.text("It is sunny in Oslo."))
    result = await make(server).arun("Weather in Oslo?", tools=[get_weather])
    assert result.output == "It is sunny in Oslo."
    first, second = server.requests
    assert first["tools"][0]["type"] == "function" and first["tools"][0]["name"] == "get_weather"
    assert first["tools"][0]["parameters"]["properties"]["city"]["type"] == "string"
    call, output = second["input"][-2:]
    assert call == {
        "type": "function_call",
        "call_id": "call_w1",
        "name": "get_weather",
        "arguments": '{"city": "Oslo"}',
    }
    assert output == {"type": "function_call_output", "call_id": "call_w1", "output": "Sunny in Oslo"}
    assert result.usage.input_tokens == 22  # both turns summed


async def test_streamed_tool_call_arrives_whole(server: FakeResponses) -> None:
    server.script.append(Reply(output=[call_item("get_weather", {"city": "Rome"}, "call_s")]))
    chunks = [c async for c in make(server).astream("Weather in Rome?", tools=[get_weather])]
    calls = [call for c in chunks for call in c.tool_calls]
    assert [(c.id, c.name, c.arguments) for c in calls] == [("call_s", "get_weather", {"city": "Rome"})]
    assert chunks[-1].finish_reason == "tool_calls"


async def test_reasoning_summary_and_encrypted_content_echoed_next_turn(server: FakeResponses) -> None:
    llm = make(server, model="o4-mini")
    chat = llm.session()
    server.script.append(Reply(output=[*THOUGHT, message_item("42.")], usage=usage(10, 30, reasoning=25)))
    first = await chat.asend("The answer?", reasoning_effort="low")
    assert first.content == "42."
    assert first.reasoning == "Weighing the answer."
    assert first.usage is not None and first.usage.reasoning_tokens == 25
    asked = server.requests[0]
    assert asked["reasoning"] == {"effort": "low", "summary": "auto"}
    assert asked["include"] == ["reasoning.encrypted_content"]
    await chat.asend("Why?")
    echoed = [item for item in server.requests[1]["input"] if item.get("type") == "reasoning"]
    assert echoed == [
        {
            "type": "reasoning",
            "id": "rs_abc123",
            "summary": [{"type": "summary_text", "text": "Weighing the answer."}],
            "encrypted_content": "gAAAA-encrypted-blob",
        }
    ]
    roles = [item.get("role") or item.get("type") for item in server.requests[1]["input"]]
    assert roles == ["user", "reasoning", "assistant", "user"]


async def test_streamed_reasoning_summary_and_echo(server: FakeResponses) -> None:
    llm = make(server, model="o4-mini")
    server.script.append(Reply(output=[*THOUGHT, message_item("42.")]))
    chunks = [c async for c in llm.astream("The answer?")]
    assert "".join(c.reasoning or "" for c in chunks) == "Weighing the answer."
    assert "".join(c.content or "" for c in chunks) == "42."
    parts = chunks[-1].reasoning_parts
    assert [(p.id, p.signature) for p in parts] == [("rs_abc123", "gAAAA-encrypted-blob")]


class City(BaseModel):
    name: str
    population: int


async def test_response_model_sends_strict_json_schema_and_parses(server: FakeResponses) -> None:
    server.script.append(Reply.text('{"name": "Oslo", "population": 709000}'))
    city = await make(server).agenerate("Describe Oslo.", response_model=City)
    assert city == City(name="Oslo", population=709000)
    fmt = server.requests[-1]["text"]["format"]
    assert fmt["type"] == "json_schema" and fmt["strict"] is True
    assert fmt["schema"]["additionalProperties"] is False
    assert sorted(fmt["schema"]["required"]) == ["name", "population"]


async def test_store_and_previous_response_id_on_the_wire(server: FakeResponses) -> None:
    llm = make(server)
    first = await llm.agenerate("hi", store=True)
    assert server.requests[-1]["store"] is True
    assert "previous_response_id" not in server.requests[-1]
    await llm.agenerate("and then?", store=True, previous_response_id=first.raw["id"])
    assert server.requests[-1]["previous_response_id"] == first.raw["id"]


async def test_params_without_a_field_refused_before_sending(server: FakeResponses) -> None:
    llm = make(server)
    for params in ({"stop": ["x"]}, {"seed": 1}, {"presence_penalty": 0.1}, {"frequency_penalty": 0.1}):
        with pytest.raises(ConfigurationError, match="Responses API"):
            await llm.agenerate("hi", **params)
    assert server.requests == []


async def test_401_is_authentication_error(server: FakeResponses) -> None:
    llm = create_llm("openai", model="gpt-4.1", api="responses", base_url=server.base_url, api_key="sk-wrong")
    with pytest.raises(AuthenticationError) as caught:
        await llm.agenerate("hi")
    assert caught.value.status_code == 401
    assert "sk-wrong" not in str(caught.value)
    with pytest.raises(AuthenticationError):
        async for _ in llm.astream("hi"):
            pass


async def test_429_is_rate_limit_error_with_retry_after(server: FakeResponses) -> None:
    body = error_body("Rate limit reached for gpt-4.1.", "requests", "rate_limit_exceeded")
    server.script.append(Reply.error(429, body, **{"retry-after": "7"}))
    with pytest.raises(RateLimitError) as caught:
        await make(server).agenerate("hi")
    assert caught.value.status_code == 429 and caught.value.retry_after == 7.0
    assert "Rate limit reached" in str(caught.value)


async def test_400_is_bad_request_error(server: FakeResponses) -> None:
    body = error_body("Invalid value for 'input'.", "invalid_request_error", "invalid_value", "input")
    server.script.append(Reply.error(400, body))
    with pytest.raises(BadRequestError, match="Invalid value for 'input'"):
        await make(server).agenerate("hi")


@pytest.mark.parametrize("how", ["failed", "error"])
async def test_stream_failing_midway_raises_after_the_first_chunks(server: FakeResponses, how: str) -> None:
    server.script.append(Reply.text("one two three four", fail=how, fail_after=2))
    seen: list[str] = []
    with pytest.raises(ServerError):
        async for chunk in make(server).astream("count"):
            seen.append(chunk.content or "")
    assert "".join(seen) == "one two"


@pytest.mark.parametrize(
    ("how", "code", "error"),
    [("error", "rate_limit_exceeded", RateLimitError), ("failed", "invalid_prompt", BadRequestError)],
)
async def test_a_failed_streams_code_picks_the_error_class(
    server: FakeResponses, how: str, code: str, error: type[Exception]
) -> None:
    server.script.append(Reply.text("one two three", fail=how, fail_after=1, fail_code=code))
    with pytest.raises(error):
        async for _ in make(server).astream("count"):
            pass


async def test_a_tool_loop_of_a_reasoning_model_sends_its_reasoning_before_the_call(
    server: FakeResponses,
) -> None:
    server.script.append(Reply(output=[*THOUGHT, call_item("get_weather", {"city": "Oslo"}, "call_r")]))
    server.script.append(Reply.text("Sunny."))
    events = [e async for e in make(server, model="o4-mini").astream_run("Oslo?", tools=[get_weather])]
    assert events
    kinds = [item.get("type") or item.get("role") for item in server.requests[1]["input"]]
    assert kinds == ["user", "reasoning", "function_call", "function_call_output"]
    assert server.requests[1]["input"][1]["encrypted_content"] == "gAAAA-encrypted-blob"


async def test_count_tokens_asks_the_input_tokens_endpoint(server: FakeResponses) -> None:
    count = await make(server).acount_tokens("How many tokens is this?", system_prompt="Be brief.")
    assert count > 0
    (body,) = server.counted
    assert body["input"] == [{"role": "user", "content": "How many tokens is this?"}]
    assert body["instructions"] == "Be brief."
    assert "store" not in body and "stream" not in body  # the endpoint takes no such fields
    assert server.requests == []  # nothing generated


async def test_429_retried_when_retries_are_on(server: FakeResponses) -> None:
    body = error_body("Rate limit reached.", "requests", "rate_limit_exceeded")
    server.script.append(Reply.error(429, body, **{"retry-after": "0"}))
    fast = RetryConfig(max_attempts=2, initial_delay=0.01, max_delay=0.02, jitter=False)
    r = await make(server, retry_config=fast).agenerate("hi")
    assert r.content == "Hello." and len(server.requests) == 2


async def test_a_200_whose_response_failed_raises(server: FakeResponses) -> None:
    server.script.append(Reply(fail="failed", fail_code="server_error"))
    with pytest.raises(ServerError, match="failed midway"):
        await make(server).agenerate("hi")


async def test_cut_by_max_output_tokens_is_length(server: FakeResponses) -> None:
    llm = make(server)
    server.script.append(Reply.text("Once upon", incomplete="max_output_tokens"))
    r = await llm.agenerate("A story.", max_tokens=20)
    assert (r.content, r.finish_reason) == ("Once upon", "length")
    server.script.append(Reply.text("Once upon", incomplete="max_output_tokens"))
    chunks = [c async for c in llm.astream("A story.", max_tokens=20)]
    assert "".join(c.content or "" for c in chunks) == "Once upon"
    assert chunks[-1].finish_reason == "length" and chunks[-1].usage == r.usage


async def test_a_stream_cut_without_its_closing_event_raises(server: FakeResponses) -> None:
    server.script.append(Reply.text("one two three", fail="drop", fail_after=2))
    seen: list[str] = []
    with pytest.raises(ProviderConnectionError, match=r"response\.completed"):
        async for chunk in make(server).astream("count"):
            seen.append(chunk.content or "")
    assert "".join(seen) == "one two"


async def test_a_session_with_tools_sends_each_turns_reasoning_back(server: FakeResponses) -> None:
    chat = make(server, model="o4-mini").session(tools=[get_weather])
    server.script.append(Reply(output=[*THOUGHT, call_item("get_weather", {"city": "Oslo"}, "call_a")]))
    server.script.append(Reply(output=[reasoning_item("Done.", "enc-2", "rs_2"), message_item("Sunny.")]))
    server.script.append(Reply.text("Yes."))
    first = await chat.asend("Weather in Oslo?")
    assert (first.output, first.response.reasoning) == ("Sunny.", "Done.")
    await chat.asend("A coat?")
    sent = server.requests[-1]["input"]
    assert [i.get("id") or i.get("role") or i["type"] for i in sent] == [
        "user",
        "rs_abc123",
        "function_call",
        "function_call_output",
        "rs_2",
        "assistant",
        "user",
    ]
    assert sent[4]["encrypted_content"] == "enc-2"


async def test_summary_parts_read_the_same_streamed_or_not(server: FakeResponses) -> None:
    llm = make(server, model="o4-mini")
    items = [reasoning_item(["First I look.", "Then I answer."], "enc", "rs_m"), message_item("Done.")]
    server.script.append(Reply(output=items))
    whole = await llm.agenerate("Go.")
    server.script.append(Reply(output=items))
    chunks = [c async for c in llm.astream("Go.")]
    assert whole.reasoning == "First I look.\n\nThen I answer."
    assert "".join(c.reasoning or "" for c in chunks) == whole.reasoning


async def test_a_forced_tool_is_named_in_tool_choice(server: FakeResponses) -> None:
    server.script.append(Reply(output=[call_item("get_weather", {"city": "Bergen"}, "call_f")]))
    r = await make(server).agenerate("Bergen", tools=[get_weather], tool_choice="get_weather")
    assert [(c.id, c.arguments) for c in r.tool_calls] == [("call_f", {"city": "Bergen"})]
    assert r.finish_reason == "tool_calls"
    assert server.requests[-1]["tool_choice"] == {"type": "function", "name": "get_weather"}


async def test_a_router_falls_back_to_a_responses_deployment(server: FakeResponses) -> None:
    with socket.socket() as s:  # a port nothing listens on: the first deployment is refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    responses = {"model": "gpt-4.1-mini", "api": "responses", "base_url": server.base_url, "api_key": KEY}
    router = create_llm(
        "router",
        models=[
            (
                "openai",
                {
                    "name": "down",
                    "model": "gpt-4.1-mini",
                    "base_url": dead,
                    "api_key": KEY,
                    "retry_config": NO_RETRY,
                },
            ),
            ("openai", {"name": "responses", "retry_config": NO_RETRY, **responses}),
        ],
    )
    server.script.append(Reply.text("Served.", usage=usage(5, 2)))
    r = await router.agenerate("Hi")
    assert r.content == "Served." and r.deployment == "responses"
    assert server.requests[-1]["input"] == [{"role": "user", "content": "Hi"}]


async def test_abatch_sends_each_item_to_the_responses_endpoint(server: FakeResponses) -> None:
    llm = make(server)
    server.script.extend(Reply.text(f"answer {i}", usage=usage(3, 2)) for i in range(3))
    results = await llm.abatch([f"item {i}" for i in range(3)], concurrency=1, progress=False)
    assert [r.content for r in results] == ["answer 0", "answer 1", "answer 2"]
    assert [b["input"][0]["content"] for b in server.requests] == ["item 0", "item 1", "item 2"]
