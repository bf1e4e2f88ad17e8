"""The OpenAI provider against the real llama-cpp-python server running SmolLM2-135M; usage in
streams also against llama.cpp's C++ server."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from abstractcore import LLM, GenerateResponse, StreamChunk, StructuredOutputError, create_llm
from abstractcore.core.types import Usage

pytestmark = pytest.mark.slow  # the real model or a server process throughout

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
#: Prompts and answer lengths: cut by max_tokens, ended by the model, and an answer whose
#: characters span several tokens (accents and emoji, streamed as fewer events than tokens).
STREAMED = [
    ("Say hi.", 64),
    ("What is the weather in Paris?", 8),
    ("List emojis: \U0001f389\U0001f525\U0001f4af\U0001f680", 16),
    ("\u00c9cris un po\u00e8me sur l'\u00e9t\u00e9 \U0001f31e avec des \u00e9mojis", 24),
]


def _streamed_usage(llm: LLM, prompt: str, **kwargs: object) -> tuple[Usage, Usage]:
    """(the usage of the call unstreamed, the usage on the last chunk of the same call streamed)."""
    plain = llm.generate(prompt, **kwargs)  # type: ignore[call-overload]
    chunks = list(llm.stream(prompt, **kwargs))  # type: ignore[call-overload]
    assert chunks[-1].finish_reason is not None and all(c.usage is None for c in chunks[:-1])
    assert plain.usage is not None and chunks[-1].usage is not None
    return plain.usage, chunks[-1].usage


def _close_to(streamed: Usage, plain: Usage) -> None:
    assert streamed.input_tokens == plain.input_tokens
    assert abs(streamed.output_tokens - plain.output_tokens) <= 1, (streamed, plain)
    assert streamed.total_tokens == streamed.input_tokens + streamed.output_tokens


@pytest.mark.parametrize(("prompt", "max_tokens"), STREAMED)
def test_a_stream_the_server_reports_no_usage_for_gets_it_counted(
    llama_base_url: str, prompt: str, max_tokens: int
) -> None:
    llm = create_llm("openai-compatible", model="smollm2", base_url=llama_base_url, temperature=0)
    plain, streamed = _streamed_usage(llm, prompt, max_tokens=max_tokens)
    _close_to(streamed, plain)
    assert streamed.counted and not plain.counted  # llama-cpp-python's server sends none in streams


def test_a_streamed_forced_tool_call_gets_its_usage_counted(llama_base_url: str) -> None:
    llm = create_llm("openai-compatible", model="smollm2", base_url=llama_base_url, temperature=0)
    plain, streamed = _streamed_usage(
        llm, "What is the weather in Paris?", tools=[WEATHER], tool_choice="get_weather", max_tokens=40
    )
    _close_to(streamed, plain)
    assert streamed.counted


@pytest.mark.parametrize(("prompt", "max_tokens"), STREAMED[:2])
def test_a_stream_llama_server_reports_usage_for_keeps_its_figures(
    cpp_server_url: str, prompt: str, max_tokens: int
) -> None:
    llm = create_llm("openai-compatible", model="smollm2", base_url=cpp_server_url, temperature=0)
    plain, streamed = _streamed_usage(llm, prompt, max_tokens=max_tokens)
    _close_to(streamed, plain)
    assert not streamed.counted


@pytest.mark.parametrize("server", ["llama-cpp-python", "llama-server"])
def test_count_tokens_is_the_input_tokens_the_call_reports(
    request: pytest.FixtureRequest, server: str
) -> None:
    base = request.getfixturevalue("llama_base_url" if server == "llama-cpp-python" else "cpp_server_url")
    llm = create_llm("openai-compatible", model="smollm2", base_url=base, temperature=0, max_tokens=4)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi \u00e9t\u00e9 \U0001f31e"},
    ]
    for kwargs in ({}, {"tools": [WEATHER], "tool_choice": "get_weather"}):
        try:
            usage = llm.generate(messages=messages, max_tokens=30, **kwargs).usage  # type: ignore[call-overload]
        except StructuredOutputError as cut:  # SmolLM2 may loop in a forced call's arguments: cut
            usage = cut.usage
        assert usage is not None
        assert llm.count_tokens(messages=messages, **kwargs) == usage.input_tokens


@pytest.fixture
def llm(llama_base_url: str) -> LLM:
    return create_llm("openai", model="smollm2", base_url=llama_base_url, max_tokens=12, temperature=0)


def test_generate_returns_real_text_and_usage(llm: LLM) -> None:
    r = llm.generate("What is the capital of France?")
    assert isinstance(r, GenerateResponse)
    assert r.content.strip()
    assert r.finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.input_tokens > 5 and 0 < r.usage.output_tokens <= 12
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_stream_yields_several_chunks_then_a_finish(llm: LLM) -> None:
    chunks = list(llm.stream("Tell me a story about a cat."))
    texts = [c.content for c in chunks if c.content]
    assert len(texts) >= 3
    assert chunks[-1].finish_reason in ("stop", "length")
    assert all(isinstance(c, StreamChunk) for c in chunks)


def test_generate_stream_true_is_the_same_iterator(llm: LLM) -> None:
    streamed = "".join(c.content for c in llm.generate("Say hello.", stream=True, seed=1))
    plain = llm.generate("Say hello.", seed=1).content
    assert streamed == plain


@pytest.mark.anyio
async def test_sync_and_async_calls_on_one_object(llm: LLM) -> None:
    a = await llm.agenerate("Name a colour.", max_tokens=6)
    s = llm.generate("Name a colour.", max_tokens=6)  # sync call inside a running loop
    assert a.content.strip() and s.content.strip()
    streamed = [c.content async for c in llm.astream("Count to five.", max_tokens=8)]
    assert len([t for t in streamed if t]) >= 2
    await llm.aclose()


@pytest.mark.anyio
async def test_twenty_concurrent_agenerate_calls(llm: LLM) -> None:
    results: list[GenerateResponse] = []

    async def one(i: int) -> None:
        results.append(await llm.agenerate(f"Say the number {i}.", max_tokens=4))

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(one, i)
    assert len(results) == 20
    assert all(r.usage is not None and r.usage.output_tokens > 0 for r in results)
    await llm.aclose()


def test_sync_call_inside_running_asyncio_loop(llm: LLM) -> None:
    async def notebook_cell() -> str:
        return llm.generate("Hello!", max_tokens=4).content  # Jupyter-style: loop is running

    assert asyncio.run(notebook_cell()).strip()


def test_sync_calls_from_several_threads(llm: LLM) -> None:
    with ThreadPoolExecutor(4) as pool:
        out = list(pool.map(lambda i: llm.generate(f"Say {i}.", max_tokens=4), range(8)))
    assert all(r.content.strip() for r in out)


def test_list_models_names_the_served_model(llm: LLM) -> None:
    models = llm.list_models()
    assert len(models) == 1 and models[0].endswith(".gguf")


def test_unload_then_reuse(llm: LLM) -> None:
    assert llm.generate("Hi", max_tokens=3).content
    llm.unload()
    assert llm.generate("Hi", max_tokens=3).content
