"""abstractcore against llama.cpp's own C++ ``llama-server`` (the engine under Ollama and LM Studio),
running the real SmolLM2-135M GGUF: its errors, what ``/props`` says, structured output through its
grammar, and tool calling for a chat template that has no tools (prompted, the forced call under the
server's own JSON-schema grammar)."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import anyio
import httpx
import pytest
from pydantic import BaseModel

from abstractcore import (
    BadRequestError,
    ContextLengthExceededError,
    RetryConfig,
    create_llm,
)

pytestmark = pytest.mark.slow  # the real model or a server process throughout

TOO_LONG = " ".join(f"word{i}" for i in range(1500))  # ~6,000 tokens for a 4,096 context


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"\x00\xff\x00\x00" * 1
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def counting(llm_url: str, **config: Any) -> tuple[Any, list[str]]:
    """An LLM on the server whose requests are counted (through a user-supplied httpx client)."""
    calls: list[str] = []

    async def count(request: httpx.Request) -> None:
        calls.append(request.url.path)

    client = httpx.AsyncClient(event_hooks={"request": [count]})
    llm = create_llm(
        "openai-compatible",
        base_url=llm_url,
        http_client=client,
        retry_config=RetryConfig(max_attempts=3, initial_delay=0.01),
        **config,
    )
    return llm, calls


def test_a_prompt_over_the_context_is_context_length_exceeded_streamed_or_not(cpp_server_url: str) -> None:
    llm = create_llm("openai-compatible", base_url=cpp_server_url, max_tokens=4)
    for call in (lambda: llm.generate(TOO_LONG), lambda: list(llm.stream(TOO_LONG))):
        with pytest.raises(ContextLengthExceededError) as info:
            call()
        assert info.value.context_length == 4096
        assert info.value.prompt_tokens is not None and info.value.prompt_tokens > 4096
        assert info.value.status_code == 400


def test_an_image_to_a_text_model_is_one_request_and_names_vision(cpp_server_url: str) -> None:
    async def run() -> None:
        llm, calls = counting(cpp_server_url, max_tokens=4)
        with pytest.raises(BadRequestError) as info:
            await llm.agenerate("What is in this picture?", media=[tiny_png()])
        assert len(calls) == 1  # a 500 the server means as "cannot do": never retried
        message = str(info.value)
        assert "takes no images" in message and "mmproj" in message and "try again" not in message.lower()
        calls.clear()
        with pytest.raises(BadRequestError):
            async for _ in llm.astream("And now?", media=[tiny_png()]):
                pass
        assert len(calls) == 1

    anyio.run(run)


@pytest.mark.anyio
async def test_capabilities_come_from_props(cpp_server_url: str) -> None:
    llm = create_llm("openai-compatible", base_url=cpp_server_url)
    caps = await llm.acapabilities()
    assert caps.source == "server"
    assert caps.tools is False  # SmolLM2's chat template has no tool support
    assert caps.vision is False and caps.context_window == 4096
    assert llm.fetch_capabilities() == caps  # the blocking twin, cached


class Person(BaseModel):
    name: str
    age: int


def test_response_model_is_enforced_by_the_servers_grammar(cpp_server_url: str) -> None:
    llm = create_llm("openai-compatible", base_url=cpp_server_url, temperature=0, max_tokens=48)
    person = llm.generate("Ann is 31 years old. Give her name and age.", response_model=Person)
    assert isinstance(person, Person)
    partials = list(llm.stream("Bob is 40.", response_model=Person))
    assert isinstance(partials[-1], Person)


calls_made: list[str] = []


def get_weather(city: str) -> str:
    """The current weather in a city."""
    calls_made.append(city)
    return f"Sunny and 21 degrees in {city}."


def test_tools_are_prompted_and_the_forced_call_is_valid_by_construction(cpp_server_url: str) -> None:
    llm = create_llm("openai-compatible", base_url=cpp_server_url, temperature=0, max_tokens=48)
    r = llm.generate("What is the weather in Paris?", tools=[get_weather], tool_choice="get_weather")
    assert r.tool_strategy == "prompted+grammar"
    assert [c.name for c in r.tool_calls] == ["get_weather"] and isinstance(
        r.tool_calls[0].arguments["city"], str
    )
    assert r.finish_reason == "tool_calls"


def test_the_tool_loop_runs_on_a_model_without_tool_support(cpp_server_url: str) -> None:
    calls_made.clear()
    llm = create_llm("openai-compatible", base_url=cpp_server_url, temperature=0, max_tokens=40)
    result = llm.run(
        "What is the weather in Paris?", tools=[get_weather], tool_choice="get_weather", max_turns=4
    )
    assert len(calls_made) >= 1  # the real Python function ran
    assert any(m.role == "tool" for m in result.messages)
    assert result.steps[-1].response.tool_calls == []  # ... and the model answered in text
    # the transcript (with its tool turns) is accepted as the next call's input
    follow = llm.generate(messages=[*result.messages, {"role": "user", "content": "Thanks."}], max_tokens=8)
    assert follow.finish_reason in ("stop", "length")
