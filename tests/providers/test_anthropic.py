"""The "anthropic" provider against a Messages API server answering with the real SmolLM2.

Everything goes through the public API (``create_llm``, the error classes);
the server (tests/servers/anthropic_server.py) follows Anthropic's wire
format, records the requests it received and injects the faults a test asks
for with ``server.script(...)``.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from abstractcore import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContextLengthExceededError,
    Message,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderConnectionError,
    RateLimitError,
    RetryConfig,
    ServerError,
    ToolCall,
    create_llm,
)
from abstractcore.wire.anthropic_messages import finish_reason, to_anthropic_messages
from tests.servers.anthropic_server import API_KEY, AnthropicServer, anthropic_server
from tests.servers.common import Fault, LocalModel, Script

FAST = RetryConfig(initial_delay=0.01, max_delay=0.05, jitter=False)
#: A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="session")
def server(gguf_path: Path) -> Iterator[AnthropicServer]:
    """One Messages API server (and one loaded model) for the whole session."""
    model = LocalModel(gguf_path)
    with anthropic_server(model) as running:
        yield running
    model.unload()


@pytest.fixture(autouse=True)
def _no_anthropic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


def make(server: AnthropicServer, script: Script | None = None, **config: Any) -> Any:
    config.setdefault("api_key", API_KEY)
    config.setdefault("retry_config", FAST)
    return create_llm("anthropic", base_url=server.url, headers=script.headers if script else None, **config)


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


class City(BaseModel):
    name: str
    country: str


# -- generate and stream ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_agenerate_sends_the_messages_api_request_and_maps_the_reply(server: AnthropicServer) -> None:
    script = server.script()
    llm = make(server, script)
    r = await llm.agenerate("Name a fruit.", system_prompt="You answer briefly.", max_tokens=8, temperature=0)
    assert r.content.strip()
    assert r.provider == "anthropic"
    assert r.model == "claude-haiku-4-5-20251001"  # the default alias, resolved by the server
    assert r.finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.input_tokens > 0 and 0 < r.usage.output_tokens <= 8
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    sent = script.requests[0]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == API_KEY
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["body"]["system"] == "You answer briefly."
    assert sent["body"]["messages"] == [{"role": "user", "content": "Name a fruit."}]
    assert sent["body"]["max_tokens"] == 8 and sent["body"]["temperature"] == 0
    assert "stream" not in sent["body"]


@pytest.mark.anyio
async def test_astream_yields_text_deltas_then_usage_and_finish_reason(server: AnthropicServer) -> None:
    llm = make(server)
    chunks = [
        c async for c in llm.astream("Write a long story about a dragon.", max_tokens=12, temperature=0)
    ]
    texts = [c.content for c in chunks if c.content]
    assert len(texts) >= 3
    last = chunks[-1]
    assert last.finish_reason == "length"
    assert last.usage is not None and last.usage.input_tokens > 0
    assert last.usage.output_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])
    assert last.model == "claude-haiku-4-5-20251001"
    # greedy decoding: the stream and a plain call produce the same text
    whole = await llm.agenerate("Write a long story about a dragon.", max_tokens=12, temperature=0)
    assert "".join(texts) == whole.content


def test_stop_sequences_cut_the_answer_with_finish_reason_stop(server: AnthropicServer) -> None:
    llm = make(server)
    prompt = "List three colors of the rainbow."
    free = llm.generate(prompt, max_tokens=16, temperature=0).content
    words = free.split()
    assert len(words) >= 2, free
    stop = words[1]
    expected = free[: free.find(stop)]
    script = server.script()
    cut = make(server, script).generate(prompt, max_tokens=16, temperature=0, stop=stop)
    assert cut.content == expected
    assert cut.finish_reason == "stop"
    assert script.requests[0]["body"]["stop_sequences"] == [stop]
    streamed = list(make(server).stream(prompt, max_tokens=16, temperature=0, stop=[stop]))
    assert "".join(c.content for c in streamed) == expected
    assert streamed[-1].finish_reason == "stop"


def test_max_tokens_defaults_to_4096_and_only_supported_params_are_sent(server: AnthropicServer) -> None:
    script = server.script()
    llm = make(server, script, top_k=5, seed=7, presence_penalty=0.5)
    stream = llm.stream("Tell me about the sea.", top_p=0.9)
    first = next(iter(stream))  # leave early: the server stops generating
    stream.close()
    assert first.content
    body = script.requests[0]["body"]
    assert body["max_tokens"] == 4096
    assert body["top_k"] == 5 and body["top_p"] == 0.9 and body["stream"] is True
    assert "seed" not in body and "presence_penalty" not in body  # no such fields in this API


def test_model_alias_passes_through_untouched(server: AnthropicServer) -> None:
    script = server.script()
    r = make(server, script, model="claude-3-5-haiku-latest").generate("Hi", max_tokens=4)
    assert script.requests[0]["body"]["model"] == "claude-3-5-haiku-latest"
    assert r.model == "claude-3-5-haiku-20241022"


# -- configuration ----------------------------------------------------------------------------------


def test_key_and_base_url_from_the_environment_with_v1_suffix(
    server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url + "/v1/")
    llm = create_llm("anthropic", retry_config=FAST)
    assert llm.model == "claude-haiku-4-5"
    assert llm.generate("Hi", max_tokens=4).content


def test_missing_key_for_api_anthropic_com_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        create_llm("anthropic", model="claude-sonnet-4-5")


def test_custom_base_url_may_go_without_key_and_a_401_says_which_variable(server: AnthropicServer) -> None:
    llm = create_llm("anthropic", base_url=server.url)  # no key: allowed off api.anthropic.com
    with pytest.raises(AuthenticationError) as info:
        llm.generate("Hi", max_tokens=4)
    assert info.value.status_code == 401
    assert "x-api-key header is required" in str(info.value)
    assert "ANTHROPIC_API_KEY" in str(info.value)


# -- errors -------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_wrong_key_raises_authentication_error_without_showing_the_key(server: AnthropicServer) -> None:
    secret = "sk-ant-api03-wrong-SECRET-key-987654321"
    llm = make(server, api_key=secret)
    with pytest.raises(AuthenticationError) as info:
        await llm.agenerate("Hi", max_tokens=4)
    error = info.value
    assert error.status_code == 401 and error.request_id and error.request_id.startswith("req_")
    assert "invalid x-api-key" in str(error) and "ANTHROPIC_API_KEY" in str(error)
    for text in (str(error), repr(error), error.body or "", repr(llm), repr(llm.provider)):
        assert secret not in text


def test_api_key_never_appears_in_messages_reprs_or_logs(
    server: AnthropicServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    script = server.script(
        Fault("status", 429, "rate_limit_error", "slow down", headers={"retry-after": "0"}), Fault("echo_key")
    )
    llm = make(server, script)
    with pytest.raises(BadRequestError) as info:
        llm.generate("Hi", max_tokens=4)
    error = info.value
    assert "proxy rejected the request sent with key ***" in str(error)
    for text in (str(error), repr(error), error.body or "", repr(llm), caplog.text):
        assert API_KEY not in text
    assert len(script.requests) == 2  # the 429 was retried, and logged without the key


def test_unknown_model_raises_model_not_found_naming_it(server: AnthropicServer) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        make(server, model="claude-9-imaginary").generate("Hi", max_tokens=4)
    assert info.value.status_code == 404
    assert "model: claude-9-imaginary" in str(info.value)
    assert "list_models()" in str(info.value)


def test_prompt_too_long_raises_context_length_exceeded(server: AnthropicServer) -> None:
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 300
    with pytest.raises(ContextLengthExceededError) as info:
        make(server).generate(long_prompt, max_tokens=8)
    assert isinstance(info.value, BadRequestError) and info.value.status_code == 400
    assert "prompt is too long" in str(info.value)
    assert "Shorten the prompt" in str(info.value)


def test_invalid_request_raises_bad_request_with_the_api_message(server: AnthropicServer) -> None:
    with pytest.raises(BadRequestError) as info:
        make(server).generate("Hi", max_tokens=4, temperature=1.5)  # Anthropic allows 0..1
    assert not isinstance(info.value, ContextLengthExceededError)
    assert "temperature: range: 0..1" in str(info.value)
    assert "Check the request parameters" in str(info.value)


def test_permission_error_is_permission_denied(server: AnthropicServer) -> None:
    script = server.script(
        Fault(
            "status",
            403,
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        )
    )
    with pytest.raises(PermissionDeniedError) as info:
        make(server, script).generate("Hi", max_tokens=4)
    assert "check its permissions" in str(info.value)
    assert len(script.requests) == 1  # never retried


def test_rate_limit_is_retried_after_retry_after_then_succeeds(server: AnthropicServer) -> None:
    script = server.script(
        Fault(
            "status",
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            headers={"retry-after": "1"},
        )
    )
    start = time.monotonic()
    r = make(server, script).generate("Hi", max_tokens=4)
    assert r.content
    assert time.monotonic() - start >= 1.0
    assert len(script.requests) == 2


def test_rate_limit_exhausted_raises_rate_limit_error(server: AnthropicServer) -> None:
    faults = [
        Fault("status", 429, "rate_limit_error", "rate limited", headers={"retry-after": "0"})
        for _ in range(2)
    ]
    script = server.script(*faults)
    with pytest.raises(RateLimitError) as info:
        make(server, script, retry_config=RetryConfig(max_attempts=2, jitter=False)).generate(
            "Hi", max_tokens=4
        )
    assert info.value.retry_after == 0.0
    assert "RetryConfig" in str(info.value)


def test_overloaded_529_is_retried_then_succeeds(server: AnthropicServer) -> None:
    script = server.script(Fault("status", 529, "overloaded_error", "Overloaded"))
    r = make(server, script).generate("Hi", max_tokens=4)
    assert r.content
    assert len(script.requests) == 2


@pytest.mark.parametrize(("status", "kind"), [(529, "overloaded_error"), (500, "api_error")])
def test_server_side_errors_exhausted_raise_server_error(
    server: AnthropicServer, status: int, kind: str
) -> None:
    script = server.script(
        *[
            Fault("status", status, kind, "Overloaded" if status == 529 else "Internal server error")
            for _ in range(2)
        ]
    )
    with pytest.raises(ServerError) as info:
        make(server, script, retry_config=RetryConfig(max_attempts=2, initial_delay=0.01)).generate(
            "Hi", max_tokens=4
        )
    assert info.value.status_code == status
    assert "try again" in str(info.value).lower()
    assert len(script.requests) == 2


@pytest.mark.anyio
async def test_error_event_mid_stream_raises_the_mapped_error(server: AnthropicServer) -> None:
    script = server.script(Fault("stream_error", type="overloaded_error", message="Overloaded", after=2))
    llm = make(server, script)
    received: list[str] = []
    with pytest.raises(ServerError) as info:
        async for chunk in llm.astream("Tell me a story.", max_tokens=16):
            received.append(chunk.content)
    assert len("".join(received)) > 0  # the text before the error reached the caller
    # the error came inside a 200 stream: no HTTP status is made up for it; its type says what it is
    assert info.value.status_code is None and info.value.error_type == "overloaded_error"  # type: ignore[attr-defined]
    assert "Overloaded" in str(info.value) and "overloaded" in str(info.value).lower()
    assert "try again" in str(info.value)
    assert len(script.requests) == 1  # a started stream is never retried


def test_stream_cut_before_message_stop_raises_connection_error(server: AnthropicServer) -> None:
    script = server.script(Fault("cut", after=1))
    with pytest.raises(ProviderConnectionError, match="message_stop"):
        list(make(server, script).stream("Tell me a story.", max_tokens=16))


# -- tools, images, structured output -------------------------------------------------------------


@pytest.mark.anyio
async def test_forced_tool_choice_returns_tool_calls(server: AnthropicServer) -> None:
    script = server.script()
    llm = make(server, script)
    r = await llm.agenerate(
        "What is the weather in Paris?",
        tools=[get_weather],
        tool_choice="get_weather",
        max_tokens=48,
        temperature=0,
    )
    assert r.finish_reason == "tool_calls"
    assert [c.name for c in r.tool_calls] == ["get_weather"]
    assert isinstance(r.tool_calls[0].arguments.get("city"), str)
    assert r.tool_calls[0].id.startswith("toolu_")
    body = script.requests[0]["body"]
    assert body["tools"][0]["name"] == "get_weather"
    assert body["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}


def test_streamed_tool_call_is_assembled_from_input_json_deltas(server: AnthropicServer) -> None:
    chunks = list(
        make(server).stream(
            "What is the weather in Paris?",
            tools=[get_weather],
            tool_choice="get_weather",
            max_tokens=48,
            temperature=0,
        )
    )
    fragments = [d.arguments_fragment for c in chunks for d in c.tool_call_deltas]
    calls = [call for c in chunks for call in c.tool_calls]
    assert len(fragments) >= 3
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert isinstance(calls[0].arguments["city"], str)
    assert chunks[-1].finish_reason == "tool_calls" and chunks[-1].usage is not None


def test_tool_results_go_back_as_tool_result_blocks(server: AnthropicServer) -> None:
    script = server.script()
    call = ToolCall(id="toolu_01A", name="get_weather", arguments={"city": "Paris"})
    messages = [
        Message("user", "What is the weather in Paris?"),
        Message("assistant", "", tool_calls=[call]),
        Message("tool", "sunny, 24 C", tool_call_id="toolu_01A"),
    ]
    r = make(server, script).generate(messages=messages, tools=[get_weather], max_tokens=8)
    assert r.content  # the server accepted the turn: each tool_result answers a tool_use
    sent = script.requests[0]["body"]["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "sunny, 24 C"}],
    }


def test_images_are_sent_as_base64_image_blocks(server: AnthropicServer) -> None:
    script = server.script()
    r = make(server, script).generate("What is in this picture?", media=[PNG], max_tokens=8)
    assert r.content
    content = script.requests[0]["body"]["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "What is in this picture?"}
    assert content[1]["type"] == "image"
    assert content[1]["source"]["type"] == "base64"
    assert content[1]["source"]["media_type"] == "image/png"
    assert base64.b64decode(content[1]["source"]["data"]) == PNG


@pytest.mark.anyio
async def test_response_model_uses_a_forced_tool_and_validates(server: AnthropicServer) -> None:
    script = server.script()
    llm = make(server, script, model="claude-3-5-haiku-latest")  # a model without native JSON output
    city = await llm.agenerate(
        "Paris is the capital of France.", response_model=City, max_tokens=48, temperature=0
    )
    assert isinstance(city, City) and city.name and city.country
    body = script.requests[0]["body"]
    assert body["tool_choice"]["type"] == "tool"
    assert body["tools"][0]["input_schema"]["required"] == ["name", "country"]


@pytest.mark.anyio
async def test_response_model_uses_native_json_output_where_the_model_has_it(server: AnthropicServer) -> None:
    script = server.script()
    llm = make(server, script, model="claude-haiku-4-5")
    city = await llm.agenerate(
        "Paris is the capital of France.", response_model=City, max_tokens=48, temperature=0
    )
    assert isinstance(city, City) and city.name
    sent = script.requests[0]
    assert sent["headers"]["anthropic-beta"] == "structured-outputs-2025-11-13"
    schema = sent["body"]["output_format"]["schema"]
    assert schema["additionalProperties"] is False and "tools" not in sent["body"]
    forced = await llm.agenerate(
        "Rome is the capital of Italy.",
        response_model=City,
        structured_mode="tool",
        max_tokens=96,
        temperature=0,
    )
    assert isinstance(forced, City)
    assert script.requests[1]["body"]["tool_choice"] == {"type": "tool", "name": "final_answer"}


# -- lifecycle, sync face, concurrency --------------------------------------------------------------


def test_list_models_reads_v1_models(server: AnthropicServer) -> None:
    assert make(server).list_models() == [
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-5-20250929",
        "claude-3-5-haiku-20241022",
    ]


@pytest.mark.anyio
async def test_unload_is_a_harmless_no_op_and_the_object_stays_usable(server: AnthropicServer) -> None:
    llm = make(server)
    await llm.agenerate("Hi", max_tokens=4)
    await llm.aunload()
    await llm.aunload()
    r = await llm.agenerate("Hi again", max_tokens=4)
    assert r.content
    llm.unload()
    assert llm.generate("Bye", max_tokens=4).content


@pytest.mark.anyio
async def test_sync_generate_inside_a_running_event_loop(server: AnthropicServer) -> None:
    llm = make(server)
    r = llm.generate("Hi", max_tokens=4)  # blocking call from async code: no asyncio.run here
    assert r.content and r.usage is not None


@pytest.mark.anyio
async def test_concurrent_agenerate_calls_all_complete(server: AnthropicServer) -> None:
    llm = make(server)
    prompts = ["Name a color.", "Name an animal.", "Name a city."]
    results: dict[str, str] = {}

    async def one(prompt: str) -> None:
        results[prompt] = (await llm.agenerate(prompt, max_tokens=6, temperature=0)).content

    async with anyio.create_task_group() as group:
        for prompt in prompts:
            group.start_soon(one, prompt)
    assert set(results) == set(prompts) and all(results.values())
    alone = await llm.agenerate(prompts[1], max_tokens=6, temperature=0)
    assert results[prompts[1]] == alone.content  # no mix-up between concurrent answers


# -- pure translation --------------------------------------------------------------------------------


def test_messages_translation_merges_turns_and_orders_tool_results_first() -> None:
    call_a = ToolCall(id="a", name="f", arguments={"x": 1})
    call_b = ToolCall(id="b", name="f", arguments={"x": 2})
    messages = [
        Message("system", "be brief"),
        Message("user", "hi"),
        Message("assistant", "calling", tool_calls=[call_a, call_b]),
        Message("tool", "one", tool_call_id="a"),
        Message("tool", "two", tool_call_id="b"),
        Message("user", "and now?"),
    ]
    assert to_anthropic_messages(messages) == [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "a", "name": "f", "input": {"x": 1}},
                {"type": "tool_use", "id": "b", "name": "f", "input": {"x": 2}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "a", "content": "one"},
                {"type": "tool_result", "tool_use_id": "b", "content": "two"},
                {"type": "text", "text": "and now?"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        (None, None),
    ],
)
def test_stop_reason_mapping(stop_reason: str | None, expected: str | None) -> None:
    assert finish_reason(stop_reason) == expected
