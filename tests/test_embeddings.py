"""Embeddings through the public API: llama.cpp's C++ server (OpenAI's /v1/embeddings), the
Ollama wire format (/api/embed) and the embedded model in process (llama.cpp and transformers),
all computing real SmolLM2 embeddings."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from abstractcore import (
    BadRequestError,
    ConfigurationError,
    ContextLengthExceededError,
    EmbeddingResponse,
    ProviderTimeoutError,
    create_llm,
)
from tests.servers.ollama_server import OllamaServer
from tests.support.cpp_llama_server import cpp_llama_server


@pytest.fixture(scope="module")
def embedding_server(gguf_path: Path) -> Iterator[str]:
    with cpp_llama_server(gguf_path, n_ctx=2048, embeddings=True) as url:
        yield url


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_llama_server_embeds_in_order_with_usage(embedding_server: str) -> None:
    llm = create_llm("openai-compatible", base_url=embedding_server)
    texts = ["The cat sat on the mat.", "A kitten rested on the rug.", "Stock markets fell sharply."]
    r = llm.embed(texts)
    assert isinstance(r, EmbeddingResponse) and len(r) == 3
    assert len(r[0]) == 576  # SmolLM2-135M's hidden size
    assert r.usage is not None and r.usage.input_tokens > 10
    assert cosine(r[0], r[1]) > cosine(r[0], r[2])  # real embeddings: meaning is closer
    assert llm.embed(texts[1]).vectors[0] == pytest.approx(r[1], rel=1e-4)


@pytest.mark.anyio
async def test_large_inputs_are_batched(embedding_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from abstractcore.providers import openai_compatible

    monkeypatch.setattr(openai_compatible, "EMBED_BATCH", 4)  # 9 texts: three requests
    llm = create_llm("openai-compatible", base_url=embedding_server)
    texts = [f"sentence number {i}" for i in range(openai_compatible.EMBED_BATCH + 5)]
    r = await llm.aembed(texts)
    assert len(r) == len(texts)
    assert r[-1] == pytest.approx((await llm.aembed(texts[-1])).vectors[0], rel=1e-4)
    await llm.aclose()


def test_a_server_that_cannot_embed_says_so(cpp_server_url: str) -> None:
    llm = create_llm("openai-compatible", base_url=cpp_server_url)  # started without --embeddings
    with pytest.raises(BadRequestError, match="--embeddings"):
        llm.embed("hello")


def test_ollama_embed(ollama_test_server: OllamaServer) -> None:
    llm = create_llm("ollama", model="smollm2:135m", base_url=ollama_test_server.url)
    r = llm.embed(["hello world", "goodbye"])
    assert len(r) == 2 and len(r[0]) == 576 and r.usage is not None and r.usage.input_tokens > 0
    assert sum(x * x for x in r[0]) == pytest.approx(1.0, rel=1e-3)  # Ollama normalises
    with pytest.raises(BadRequestError, match="does not support embeddings"):
        create_llm("ollama", model="qwen2.5-coder:7b", base_url=ollama_test_server.url).embed("x")


def test_bad_input_and_providers_without_embeddings() -> None:
    llm = create_llm("openai-compatible", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigurationError, match="non-empty list of strings"):
        llm.embed([])
    with pytest.raises(ConfigurationError, match="dimensions"):
        llm.embed("x", dimensions=0)
    with pytest.raises(ConfigurationError, match="no embeddings API"):
        create_llm("anthropic", api_key="k", base_url="http://127.0.0.1:9").embed("x")


# -- in process: llama.cpp's embedding mode and transformers' mean pooling, on the embedded model --


@pytest.mark.parametrize("parallel", [1, 4])  # the one-at-a-time engine and the batching engine
def test_in_process_gguf_embeds_like_llama_server(embedding_server: str, parallel: int) -> None:
    texts = ["The cat sat on the mat.", "A kitten rested on the rug.", "Stock markets fell sharply."]
    llm = create_llm("huggingface", parallel=parallel)
    r = llm.embed(texts)
    assert len(r) == 3 and len(r[0]) == 576 and r.provider == "huggingface"
    assert r.usage is not None and r.usage.input_tokens > 10
    assert all(sum(x * x for x in v) == pytest.approx(1.0, rel=1e-4) for v in r.vectors)
    assert cosine(r[0], r[1]) > cosine(r[0], r[2])
    served = create_llm("openai-compatible", base_url=embedding_server).embed(texts)
    assert [cosine(a, b) for a, b in zip(r.vectors, served.vectors)] == pytest.approx([1, 1, 1], abs=1e-3)
    assert llm.generate("Say hi", max_tokens=4).content  # the model still generates
    llm.unload()


@pytest.mark.slow
def test_in_process_embedding_errors_say_what_to_do() -> None:
    llm = create_llm("huggingface", parallel=1)
    with pytest.raises(ConfigurationError, match="Remove dimensions="):
        llm.embed("x", dimensions=64)
    with pytest.raises(ContextLengthExceededError, match="Text 1 has") as info:
        llm.embed(["short", "word " * 3000])
    assert info.value.context_length == 2048
    llm.unload()


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_timed_out_embedding_frees_the_model() -> None:
    llm = create_llm("huggingface", parallel=1)
    await llm.aembed("warm up")
    texts = [f"sentence {i} " * 40 for i in range(400)]
    with pytest.raises(ProviderTimeoutError):
        await llm.aembed(texts, timeout=0.3)
    with anyio.fail_after(30):  # stopped between groups of texts, not after all 400
        assert (await llm.agenerate("Hi", max_tokens=3)).content
    await llm.aclose()


@pytest.mark.slow
def test_transformers_mean_pooling_agrees_with_llama_cpp() -> None:
    texts = ["The cat sat on the mat.", "Stock markets fell sharply."]
    gguf = create_llm("huggingface", parallel=1).embed(texts)
    hf = create_llm("huggingface", backend="transformers").embed(texts)
    assert len(hf[0]) == 576
    assert all(sum(x * x for x in v) == pytest.approx(1.0, rel=1e-4) for v in hf.vectors)
    # the same weights (transformers dequantises the Q4_1 GGUF), the same pooling
    assert [cosine(a, b) for a, b in zip(gguf.vectors, hf.vectors)] == pytest.approx([1, 1], abs=0.02)
