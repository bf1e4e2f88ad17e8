"""LM Studio, vLLM, OpenRouter and any OpenAI-compatible server behind the same API.

Each is run against the real llama-cpp-python server (SmolLM2-135M); usage in
streams and error bodies against the scripted fake server.
"""

from __future__ import annotations

from typing import Any

import pytest

from abstractcore import (
    LLM,
    ConfigurationError,
    ModelNotFoundError,
    ProviderConnectionError,
    RetryConfig,
    create_llm,
)
from tests.servers.openai_fake import KEY, WORDS, FakeOpenAI
from tests.support.llama_server import free_port

FAMILY = ["lmstudio", "vllm", "openai-compatible", "openrouter"]


def make(provider: str, base_url: str, **config: Any) -> LLM:
    if provider == "openrouter":
        config.setdefault("api_key", KEY)
    return create_llm(provider, model=config.pop("model", "smollm2"), base_url=base_url, **config)


@pytest.mark.parametrize("provider", FAMILY)
def test_generate_and_stream_on_the_real_server(provider: str, llama_base_url: str) -> None:
    llm = make(provider, llama_base_url, max_tokens=10, temperature=0)
    r = llm.generate("What is the capital of France?")
    assert r.content.strip() and r.provider == provider
    assert r.usage is not None and r.usage.output_tokens > 0
    chunks = list(llm.stream("Tell me about cats."))
    assert len([c for c in chunks if c.content]) >= 3
    assert chunks[-1].finish_reason in ("stop", "length")


@pytest.mark.parametrize("provider", FAMILY)
@pytest.mark.anyio
async def test_async_sync_in_loop_unload_and_reuse(provider: str, llama_base_url: str) -> None:
    llm = make(provider, llama_base_url, max_tokens=4)
    assert (await llm.agenerate("Hi")).content
    assert llm.generate("Hi").content  # a blocking call inside a running loop
    await llm.aunload()
    assert (await llm.agenerate("Hi")).content  # reconnects after unload
    llm.unload()
    assert llm.generate("Hi").content
    await llm.aclose()


@pytest.mark.parametrize("provider", ["lmstudio", "vllm"])
def test_base_url_with_or_without_v1(provider: str, llama_base_url: str) -> None:
    root = llama_base_url.removesuffix("/v1")
    for url in (root, root + "/", llama_base_url):
        llm = make(provider, url, max_tokens=3)
        assert llm.provider.base_url == llama_base_url
        assert llm.generate("Hi").content


def test_lmstudio_host_port_without_scheme_and_env(
    monkeypatch: pytest.MonkeyPatch, llama_base_url: str
) -> None:
    hostport = llama_base_url.removeprefix("http://").removesuffix("/v1")
    monkeypatch.setenv("LMSTUDIO_BASE_URL", hostport)
    llm = create_llm("lmstudio", max_tokens=3)
    assert llm.provider.base_url == llama_base_url
    assert llm.generate("Hi").content


def test_vllm_environment(monkeypatch: pytest.MonkeyPatch, llama_base_url: str) -> None:
    monkeypatch.setenv("VLLM_BASE_URL", llama_base_url)
    assert create_llm("vllm", model="m", max_tokens=3).generate("Hi").content


@pytest.mark.parametrize("provider", FAMILY)
@pytest.mark.anyio
async def test_stream_usage_on_last_chunk(provider: str, fake: FakeOpenAI) -> None:
    llm = make(provider, fake.base_url, api_key=KEY, model="gpt-fake")
    chunks = [c async for c in llm.astream("hi")]
    assert "".join(c.content for c in chunks) == "".join(WORDS)
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == len(WORDS)
    await llm.aclose()


@pytest.mark.parametrize("provider", FAMILY)
@pytest.mark.anyio
async def test_model_not_found_is_typed(provider: str, fake: FakeOpenAI) -> None:
    llm = make(provider, fake.base_url, api_key=KEY, model="missing-model")
    with pytest.raises(ModelNotFoundError) as info:
        await llm.agenerate("hi")
    assert info.value.provider == provider and info.value.model == "missing-model"
    await llm.aclose()


@pytest.mark.parametrize(
    ("provider", "advice"),
    [("lmstudio", "lms server start"), ("vllm", "vllm serve"), ("openai-compatible", "server is running")],
)
@pytest.mark.anyio
async def test_server_down_says_what_to_do(provider: str, advice: str) -> None:
    llm = make(
        provider,
        f"http://127.0.0.1:{free_port()}/v1",
        retry_config=RetryConfig(max_attempts=2, initial_delay=0.01),
    )
    with pytest.raises(ProviderConnectionError) as info:
        await llm.agenerate("hi")
    assert advice in str(info.value)
    await llm.aclose()


def test_openai_compatible_needs_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_COMPATIBLE_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="base_url"):
        create_llm("openai-compatible", model="m")


def test_openrouter_key_and_attribution_headers(monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENROUTER_API_KEY"):
        create_llm("openrouter")
    llm = create_llm(
        "openrouter",
        model="gpt-fake",
        base_url=fake.base_url,
        api_key=KEY,
        app_url="https://example.test/app",
        app_name="My App",
    )
    assert llm.generate("hi").content == "".join(WORDS)
    headers = fake.requests[-1]["headers"]
    assert headers["HTTP-Referer"] == "https://example.test/app"
    assert headers["X-Title"] == "My App"
    assert headers["Authorization"] == f"Bearer {KEY}"


def test_a_base_url_without_v1_is_named_as_the_problem(llama_base_url: str) -> None:
    from abstractcore import EndpointNotFoundError

    root = llama_base_url.removesuffix("/v1")
    llm = create_llm("openai-compatible", base_url=root, max_tokens=3)
    for call in (lambda: llm.generate("Hi"), lambda: list(llm.stream("Hi"))):
        with pytest.raises(EndpointNotFoundError) as info:
            call()
        assert not isinstance(info.value, ModelNotFoundError)
        assert "check base_url" in str(info.value) and "/v1" in str(info.value)
