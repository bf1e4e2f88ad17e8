"""The "ollama" provider against a native-API server answering with the real SmolLM2.

Everything goes through the public API (``create_llm``, the error classes);
the server (tests/servers/ollama_server.py) follows Ollama's wire format,
records the requests it received, really unloads its model on
``keep_alive: 0`` and injects the faults a test asks for with
``server.script(...)``.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from abstractcore import (
    BadRequestError,
    ConfigurationError,
    Message,
    ModelNotFoundError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RetryConfig,
    ServerError,
    ToolCall,
    create_llm,
)
from abstractcore.wire.ollama_chat import to_ollama_messages
from tests.servers.common import Fault, LocalModel, Script
from tests.servers.ollama_server import OllamaServer, ollama_server

FAST = RetryConfig(initial_delay=0.01, max_delay=0.05, jitter=False)
MODEL = "smollm2:135m"
#: A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="session")
def server(gguf_path: Path) -> Iterator[OllamaServer]:
    """One Ollama-API server (and one model) for the whole session."""
    model = LocalModel(gguf_path)
    with ollama_server(model) as running:
        yield running
    model.unload()


@pytest.fixture(autouse=True)
def _no_ollama_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)


#: A model whose /api/show lists "tools" (SmolLM2's template has none: its tools are prompted).
TOOLS_MODEL = "qwen2.5-coder:7b"


def make(server: OllamaServer, script: Script | None = None, **config: Any) -> Any:
    config.setdefault("retry_config", FAST)
    config.setdefault("model", MODEL)
    return create_llm("ollama", base_url=server.host, headers=script.headers if script else None, **config)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


class City(BaseModel):
    name: str
    country: str


# -- generate and stream -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_agenerate_posts_api_chat_with_options_and_maps_the_reply(server: OllamaServer) -> None:
    script = server.script()
    llm = make(server, script, keep_alive="10m", num_ctx=1024)
    r = await llm.agenerate(
        "Name a fruit.",
        system_prompt="You answer briefly.",
        max_tokens=8,
        temperature=0,
        top_p=0.9,
        top_k=20,
        seed=3,
    )
    assert r.content.strip()
    assert r.provider == "ollama" and r.model == MODEL
    assert r.finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.input_tokens > 0 and 0 < r.usage.output_tokens <= 8
    body = script.requests[0]["body"]
    assert script.requests[0]["path"] == "/api/chat"
    assert body["stream"] is False
    assert body["messages"] == [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "Name a fruit."},
    ]
    assert body["options"] == {
        "temperature": 0,
        "num_predict": 8,
        "top_p": 0.9,
        "seed": 3,
        "num_ctx": 1024,
        "top_k": 20,
    }
    assert body["keep_alive"] == "10m"


@pytest.mark.anyio
async def test_astream_reads_ndjson_until_done_with_counts_on_the_last_chunk(server: OllamaServer) -> None:
    llm = make(server)
    chunks = [
        c async for c in llm.astream("Write a long story about a dragon.", max_tokens=12, temperature=0)
    ]
    texts = [c.content for c in chunks if c.content]
    assert len(texts) >= 3
    last = chunks[-1]
    assert last.finish_reason == "length"
    assert last.usage is not None and last.usage.input_tokens > 0 and last.usage.output_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])
    whole = await llm.agenerate("Write a long story about a dragon.", max_tokens=12, temperature=0)
    assert "".join(texts) == whole.content and whole.finish_reason == "length"


def test_stop_option_ends_with_done_reason_stop(server: OllamaServer) -> None:
    llm = make(server)
    prompt = "List three colors of the rainbow."
    free = llm.generate(prompt, max_tokens=16, temperature=0).content
    words = free.split()
    assert len(words) >= 2, free
    script = server.script()
    cut = make(server, script).generate(prompt, max_tokens=16, temperature=0, stop=words[1])
    assert cut.content == free[: free.find(words[1])]
    assert cut.finish_reason == "stop"
    assert script.requests[0]["body"]["options"]["stop"] == [words[1]]


# -- where the server is ---------------------------------------------------------------------------


def test_ollama_host_forms_are_accepted(server: OllamaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    port = server.host.rsplit(":", 1)[1]
    monkeypatch.setenv("OLLAMA_HOST", f":{port}")  # Ollama's own shorthand for localhost
    llm = create_llm("ollama", model=MODEL)
    assert llm.base_url == f"http://127.0.0.1:{port}"
    assert llm.generate("Hi", max_tokens=4).content
    assert create_llm("ollama", model=MODEL, base_url="gpu-box").base_url == "http://gpu-box:11434"
    assert create_llm("ollama", model=MODEL, base_url=server.url + "/api/").base_url == server.url
    monkeypatch.delenv("OLLAMA_HOST")
    assert create_llm("ollama", model=MODEL).base_url == "http://localhost:11434"


def test_a_model_is_required() -> None:
    with pytest.raises(ConfigurationError, match="model="):
        create_llm("ollama")


def test_connection_refused_says_to_run_ollama_serve() -> None:
    llm = create_llm(
        "ollama",
        model=MODEL,
        base_url=f"127.0.0.1:{free_port()}",
        retry_config=RetryConfig(max_attempts=2, initial_delay=0.01),
    )
    with pytest.raises(ProviderConnectionError) as info:
        llm.generate("Hi", max_tokens=4)
    assert "ollama serve" in str(info.value)
    with pytest.raises(ProviderConnectionError, match="ollama serve"):
        list(llm.stream("Hi", max_tokens=4))


def test_a_timeout_is_a_timeout_error_not_a_start_ollama_hint(server: OllamaServer) -> None:
    script = server.script(Fault("delay", seconds=1.5))
    llm = make(server, script, timeout=0.5, retry_config=RetryConfig(max_attempts=1))
    with pytest.raises(ProviderTimeoutError) as info:
        llm.generate("Hi", max_tokens=4)
    assert "timed out" in str(info.value) and "ollama serve" not in str(info.value)


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_missing_model_raises_model_not_found_saying_ollama_pull(server: OllamaServer) -> None:
    llm = make(server, model="llama3.2")
    with pytest.raises(ModelNotFoundError) as info:
        await llm.agenerate("Hi", max_tokens=4)
    assert info.value.status_code == 404
    assert 'model "llama3.2" not found, try pulling it first' in str(info.value)
    assert "ollama pull llama3.2" in str(info.value)
    with pytest.raises(ModelNotFoundError, match=r"ollama pull llama3\.2"):
        async for _ in llm.astream("Hi", max_tokens=4):
            pass


def test_server_error_is_retried_then_succeeds(server: OllamaServer) -> None:
    script = server.script(
        Fault("status", 503, message="server busy, please try again.  maximum pending requests exceeded")
    )
    assert make(server, script).generate("Hi", max_tokens=4).content
    assert len(script.requests) == 2


def test_error_line_mid_stream_raises_server_error(server: OllamaServer) -> None:
    script = server.script(
        Fault("stream_error", after=2, message="an error was encountered while running the model")
    )
    received: list[str] = []
    with pytest.raises(ServerError, match="an error was encountered while running the model"):
        for chunk in make(server, script).stream("Tell me a story.", max_tokens=16):
            received.append(chunk.content)
    assert "".join(received)
    assert len(script.requests) == 1


def test_stream_without_done_line_raises_connection_error(server: OllamaServer) -> None:
    script = server.script(Fault("cut", after=1))
    with pytest.raises(ProviderConnectionError, match="done line"):
        list(make(server, script).stream("Tell me a story.", max_tokens=16))


def test_bad_request_keeps_ollamas_message(server: OllamaServer) -> None:
    script = server.script(Fault("status", 400, message='invalid options: "mirostat_tau"'))
    with pytest.raises(BadRequestError, match="invalid options"):
        make(server, script).generate("Hi", max_tokens=4)
    assert len(script.requests) == 1


def test_keep_alive_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="keep_alive"):
        create_llm("ollama", model=MODEL, keep_alive=[5])


# -- tools, images, structured output ---------------------------------------------------------------


@pytest.mark.anyio
async def test_tools_are_sent_in_ollama_format_and_calls_come_back(server: OllamaServer) -> None:
    script = server.script()
    r = await make(server, script, model=TOOLS_MODEL).agenerate(
        "What is the weather in Paris?", tools=[get_weather], max_tokens=64, temperature=0
    )
    assert r.tool_strategy == "native"
    assert r.finish_reason == "tool_calls"
    assert [c.name for c in r.tool_calls] == ["get_weather"]
    assert isinstance(r.tool_calls[0].arguments["city"], str)
    tool = script.requests[0]["body"]["tools"][0]
    assert tool == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }


def test_streamed_tool_call_arrives_whole(server: OllamaServer) -> None:
    chunks = list(
        make(server, model=TOOLS_MODEL).stream(
            "What is the weather in Paris?", tools=[get_weather], max_tokens=64, temperature=0
        )
    )
    calls = [call for c in chunks for call in c.tool_calls]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert chunks[-1].finish_reason == "tool_calls" and chunks[-1].usage is not None


def test_tool_results_are_sent_with_the_tool_name(server: OllamaServer) -> None:
    script = server.script()
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    messages = [
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=[call]),
        Message("tool", "sunny", tool_call_id="call_1"),
    ]
    assert make(server, script).generate(messages=messages, max_tokens=6).content
    sent = script.requests[0]["body"]["messages"]
    assert sent[1]["tool_calls"] == [
        {"id": "call_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert sent[2] == {
        "role": "tool",
        "content": "sunny",
        "tool_name": "get_weather",
        "tool_call_id": "call_1",
    }


def test_images_go_as_base64_on_the_message(server: OllamaServer) -> None:
    script = server.script()
    assert make(server, script).generate("Describe this.", media=[PNG], max_tokens=6).content
    message = script.requests[0]["body"]["messages"][0]
    assert message["content"] == "Describe this."
    assert [base64.b64decode(i) for i in message["images"]] == [PNG]


def test_image_links_are_refused_before_sending(server: OllamaServer) -> None:
    with pytest.raises(ConfigurationError, match="bytes"):
        make(server).generate("Describe this.", media=["https://example.com/cat.png"])


@pytest.mark.anyio
async def test_response_model_sends_the_schema_as_format(server: OllamaServer) -> None:
    script = server.script()
    city = await make(server, script).agenerate(
        "Paris is the capital of France.", response_model=City, max_tokens=48, temperature=0
    )
    assert isinstance(city, City) and city.name and city.country
    assert script.requests[0]["body"]["format"]["required"] == ["name", "country"]


# -- lifecycle, sync face, concurrency ----------------------------------------------------------------


def test_list_models_reads_api_tags(server: OllamaServer) -> None:
    assert make(server).list_models() == ["smollm2:135m", "smollm2:latest", "qwen2.5-coder:7b", "qwen3:0.6b"]


@pytest.mark.anyio
async def test_unload_frees_the_model_on_the_server_and_the_object_stays_usable(server: OllamaServer) -> None:
    script = server.script()
    llm = make(server, script)
    await llm.agenerate("Hi", max_tokens=4)
    assert server.model.loaded
    await llm.aunload()
    assert not server.model.loaded
    assert script.requests[-1]["body"] == {"model": MODEL, "messages": [], "keep_alive": 0}
    r = await llm.agenerate("Hi again", max_tokens=4)  # loads again
    assert r.content and server.model.loaded
    llm.unload()  # the blocking twin
    assert not server.model.loaded
    assert llm.generate("Bye", max_tokens=4).content


def test_unload_never_fails_when_there_is_nothing_to_unload(server: OllamaServer) -> None:
    create_llm(
        "ollama", model=MODEL, base_url=f"127.0.0.1:{free_port()}", retry_config=RetryConfig(max_attempts=1)
    ).unload()  # no server at all
    make(server, model="not-pulled:1b").unload()  # a model the server does not have


@pytest.mark.anyio
async def test_sync_generate_inside_a_running_event_loop(server: OllamaServer) -> None:
    r = make(server).generate("Hi", max_tokens=4)
    assert r.content and r.usage is not None


@pytest.mark.anyio
async def test_concurrent_agenerate_calls_all_complete(server: OllamaServer) -> None:
    llm = make(server)
    prompts = ["Name a color.", "Name an animal.", "Name a city."]
    results: dict[str, str] = {}

    async def one(prompt: str) -> None:
        results[prompt] = (await llm.agenerate(prompt, max_tokens=6, temperature=0)).content

    async with anyio.create_task_group() as group:
        for prompt in prompts:
            group.start_soon(one, prompt)
    assert set(results) == set(prompts) and all(results.values())
    alone = await llm.agenerate(prompts[2], max_tokens=6, temperature=0)
    assert results[prompts[2]] == alone.content


def test_a_proxy_key_never_shows_in_errors_or_repr(server: OllamaServer) -> None:
    secret = "ollama-proxy-SECRET-token-42"
    llm = make(server, model="llama3.2", api_key=secret)
    with pytest.raises(ModelNotFoundError) as info:
        llm.generate("Hi", max_tokens=4)
    for text in (str(info.value), repr(info.value), repr(llm)):
        assert secret not in text


# -- pure translation ---------------------------------------------------------------------------------


def test_tool_messages_are_named_after_the_call_they_answer() -> None:
    call = ToolCall(id="c9", name="lookup", arguments={"q": "x"})
    out = to_ollama_messages(
        [Message("assistant", "", tool_calls=[call]), Message("tool", "42", tool_call_id="c9")]
    )
    assert out[1] == {"role": "tool", "content": "42", "tool_name": "lookup", "tool_call_id": "c9"}


def test_a_model_without_tools_gets_them_prompted_and_a_forced_call_under_format(
    server: OllamaServer,
) -> None:
    script = server.script()
    llm = make(server, script, max_tokens=64, temperature=0)
    assert llm.fetch_capabilities().tools is False  # from /api/show
    r = llm.generate("What is the weather in Paris?", tools=[get_weather], tool_choice="get_weather")
    assert r.tool_strategy == "prompted+grammar"
    assert [c.name for c in r.tool_calls] == ["get_weather"] and isinstance(
        r.tool_calls[0].arguments["city"], str
    )
    body = script.requests[-1]["body"]
    assert "tools" not in body  # Ollama would answer 400 "does not support tools"
    assert body["format"]["properties"]["name"] == {"const": "get_weather"}
    assert "<tool_call>" in body["messages"][0]["content"]  # the tools are in the system prompt
    streamed = list(llm.stream("Weather in Rome?", tools=[get_weather], tool_choice="required"))
    calls = [c for chunk in streamed for c in chunk.tool_calls]
    assert [c.name for c in calls] == ["get_weather"] and streamed[-1].finish_reason == "tool_calls"


@pytest.mark.anyio
async def test_capabilities_come_from_api_show(server: OllamaServer) -> None:
    caps = await make(server, model=TOOLS_MODEL).acapabilities()
    assert (caps.tools, caps.vision, caps.source) == (True, False, "server")
    assert caps.context_window == server.model.n_ctx
