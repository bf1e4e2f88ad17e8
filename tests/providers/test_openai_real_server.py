"""The OpenAI provider against the real llama-cpp-python server running SmolLM2-135M."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from abstractcore import LLM, GenerateResponse, StreamChunk, create_llm

pytestmark = pytest.mark.slow  # the real model or a server process throughout


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
    # llama-cpp-python's server sends no usage in streams even when asked (FIELD-NOTES)
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
