"""What was cached, in ``usage.cached_tokens``, on the back ends that cache by themselves: the
model in process (llama.cpp's prefix cache, one sequence and batched), llama.cpp's C++ server
(``prompt_tokens_details.cached_tokens``) and, through ``abstractcore serve``, on the OpenAI
endpoint. A repeated long prefix is read from the cache the second time; a stream reports the
same figures as the plain call, once, on its last chunk; ``cache=True`` is accepted and changes
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from abstractcore import LLM, Usage, create_llm
from tests.server.support import MODEL, openai_client, running_server

pytestmark = pytest.mark.slow

#: A system prompt of about 600 tokens: the stable prefix every call below repeats.
SYSTEM = "You are a helpful assistant. " + " ".join(f"Rule {i}: be concise and exact." for i in range(60))


def _last_usage(llm: LLM, question: str, **kwargs: object) -> Usage:
    usages = [c.usage for c in llm.stream(question, system_prompt=SYSTEM, **kwargs) if c.usage is not None]
    assert len(usages) == 1  # once, on the last chunk
    return usages[0]


def _repeated(llm: LLM) -> None:
    """The prefix read from the cache the second time, streamed as plain, ``cache=True`` a no-op."""
    first = llm.generate("Say hi.", system_prompt=SYSTEM, max_tokens=4, cache=True)
    assert first.usage is not None
    second = llm.generate("Say hello.", system_prompt=SYSTEM, max_tokens=4, cache=True)
    assert second.usage is not None
    assert 500 < second.usage.cached_tokens < second.usage.input_tokens  # among input_tokens
    again = llm.generate("Say hello.", system_prompt=SYSTEM, max_tokens=4)
    streamed = _last_usage(llm, "Say hello.", max_tokens=4)
    assert again.usage is not None
    assert streamed.input_tokens == again.usage.input_tokens
    assert streamed.cached_tokens == again.usage.cached_tokens > 500


@pytest.fixture(scope="module")
def in_process(gguf_path: Path) -> Iterator[LLM]:
    llm = create_llm("huggingface", model=str(gguf_path), temperature=0)
    yield llm
    llm.unload()


def test_in_process_the_prefix_cache_reports_what_it_reused(in_process: LLM) -> None:
    _repeated(in_process)
    assert in_process.fetch_capabilities().prompt_caching is True


def test_in_process_a_new_prompt_reads_nothing_from_the_cache(in_process: LLM) -> None:
    response = in_process.generate("Name a colour.", system_prompt="Answer in one word.", max_tokens=3)
    assert response.usage is not None and response.usage.cached_tokens < 10


def test_the_batch_engine_reports_the_cells_it_reused(gguf_path: Path) -> None:
    llm = create_llm("huggingface", model=str(gguf_path), temperature=0, parallel=2)
    try:
        _repeated(llm)
    finally:
        llm.unload()


def test_llama_server_reports_its_cached_tokens(cpp_server_url: str) -> None:
    llm = create_llm("openai-compatible", model=MODEL, base_url=cpp_server_url, temperature=0)
    _repeated(llm)
    assert llm.fetch_capabilities().prompt_caching is True


def test_llama_cpp_python_server_reports_none_and_accepts_cache(llama_base_url: str) -> None:
    """llama-cpp-python's server reuses its prefix but its replies do not say so: 0."""
    llm = create_llm("openai-compatible", model=MODEL, base_url=llama_base_url, temperature=0)
    for _ in range(2):
        response = llm.generate("Say hi.", system_prompt=SYSTEM, max_tokens=2, cache=True)
        assert response.usage is not None and response.usage.cached_tokens == 0


def test_serve_reports_cached_tokens_on_the_openai_endpoint(in_process: LLM) -> None:
    with running_server({MODEL: in_process}) as server:
        client = openai_client(server)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Say hi."}]
        client.chat.completions.create(model=MODEL, messages=messages, max_tokens=3)  # type: ignore[arg-type]
        reply = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=3)  # type: ignore[arg-type]
        assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
        cached = reply.usage.prompt_tokens_details.cached_tokens
        assert cached is not None and 500 < cached < reply.usage.prompt_tokens
        stream = client.chat.completions.create(
            model=MODEL,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
        usages = [event.usage for event in stream if event.usage is not None]
        assert len(usages) == 1 and usages[0].prompt_tokens_details is not None
        assert usages[0].prompt_tokens_details.cached_tokens == cached
