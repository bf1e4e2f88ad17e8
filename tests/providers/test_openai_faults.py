"""The OpenAI provider against a server that answers with chosen statuses and faults."""

from __future__ import annotations

import time
from typing import Any

import pytest

from abstractcore import (
    LLM,
    AuthenticationError,
    BadRequestError,
    ContextLengthExceededError,
    ModelNotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    RetryConfig,
    ServerError,
    Timeout,
    create_llm,
)
from tests.servers.openai_fake import KEY, WORDS, FakeOpenAI, Fault

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryConfig(max_attempts=3, initial_delay=0.01, max_delay=0.05, jitter=False)


def make(fake: FakeOpenAI, **config: Any) -> LLM:
    config.setdefault("retry_config", FAST_RETRY)
    config.setdefault("api_key", KEY)
    return create_llm("openai", model=config.pop("model", "gpt-fake"), base_url=fake.base_url, **config)


async def test_generate_maps_reply(fake: FakeOpenAI) -> None:
    llm = make(fake)
    r = await llm.agenerate(
        "hi",
        temperature=0.2,
        max_tokens=5,
        top_p=0.9,
        stop=["x"],
        seed=3,
        presence_penalty=0.1,
        frequency_penalty=0.2,
    )
    assert r.content == "".join(WORDS)
    assert r.finish_reason == "stop"
    assert r.usage is not None and r.usage.input_tokens == 7 and r.usage.total_tokens == 13
    assert r.provider == "openai" and r.model == "gpt-fake"
    sent = fake.requests[-1]["body"]
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert {
        k: sent[k]
        for k in (
            "temperature",
            "max_tokens",
            "top_p",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
        )
    } == {
        "temperature": 0.2,
        "max_tokens": 5,
        "top_p": 0.9,
        "stop": ["x"],
        "seed": 3,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
    }
    assert fake.requests[-1]["headers"]["Authorization"] == f"Bearer {KEY}"
    await llm.aclose()


async def test_call_parameters_override_construction_defaults(fake: FakeOpenAI) -> None:
    llm = make(fake, temperature=0.7, max_tokens=50)
    await llm.agenerate("hi", max_tokens=3)
    sent = fake.requests[-1]["body"]
    assert sent["temperature"] == 0.7 and sent["max_tokens"] == 3
    await llm.agenerate("hi")
    assert fake.requests[-1]["body"]["max_tokens"] == 50
    await llm.aclose()


async def test_stream_usage_on_last_chunk_when_server_sends_it(fake: FakeOpenAI) -> None:
    llm = make(fake)
    chunks = [c async for c in llm.astream("hi")]
    assert "".join(c.content for c in chunks) == "".join(WORDS)
    assert len([c for c in chunks if c.content]) == len(WORDS)
    assert fake.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None and last.usage.output_tokens == len(WORDS)
    assert all(c.usage is None for c in chunks[:-1])
    await llm.aclose()


async def test_429_with_retry_after_is_honoured_then_succeeds(fake: FakeOpenAI) -> None:
    fake.script.append(
        Fault(
            "status",
            429,
            headers={"retry-after": "0.3"},
            body={
                "error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
            },
        )
    )
    llm = make(fake)
    start = time.monotonic()
    r = await llm.agenerate("hi")
    elapsed = time.monotonic() - start
    assert r.content == "".join(WORDS)
    assert len(fake.requests) == 2
    assert elapsed >= 0.29, "Retry-After must be waited, not the 10 ms backoff"
    await llm.aclose()


async def test_retry_after_ms_header_is_preferred(fake: FakeOpenAI) -> None:
    fake.script.append(Fault("status", 429, headers={"retry-after-ms": "250", "retry-after": "30"}))
    llm = make(fake)
    start = time.monotonic()
    await llm.agenerate("hi")
    assert 0.24 <= time.monotonic() - start < 5
    await llm.aclose()


async def test_retry_after_above_cap_is_raised_at_once_not_hammered(fake: FakeOpenAI) -> None:
    """A server that asks for an hour's pause is not retried after half a second."""
    fake.script.append(Fault("status", 429, headers={"retry-after": "3600"}))
    llm = make(fake)
    start = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await llm.agenerate("hi")
    assert time.monotonic() - start < 5
    assert info.value.retry_after == 3600
    assert len(fake.requests) == 1
    await llm.aclose()


async def test_500_twice_then_success(fake: FakeOpenAI) -> None:
    fake.script.extend([Fault("status", 500), Fault("status", 503)])
    llm = make(fake)
    r = await llm.agenerate("hi")
    assert r.content == "".join(WORDS)
    assert len(fake.requests) == 3
    await llm.aclose()


async def test_500_beyond_max_attempts_raises_server_error(fake: FakeOpenAI) -> None:
    fake.script.extend([Fault("status", 500)] * 3)
    llm = make(fake)
    with pytest.raises(ServerError) as info:
        await llm.agenerate("hi")
    assert info.value.status_code == 500
    assert len(fake.requests) == 3
    await llm.aclose()


async def test_401_is_attempted_exactly_once_and_says_what_to_do(fake: FakeOpenAI) -> None:
    llm = make(fake, api_key="sk-wrong-key-abcdefgh")
    with pytest.raises(AuthenticationError) as info:
        await llm.agenerate("hi")
    assert len(fake.requests) == 1
    err = info.value
    assert err.status_code == 401 and err.provider == "openai" and err.model == "gpt-fake"
    assert err.request_id == "req_auth"
    assert "OPENAI_API_KEY" in str(err)
    for text in (str(err), repr(err), err.body or "", repr(llm)):
        assert "sk-wrong-key-abcdefgh" not in text
    await llm.aclose()


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_client_errors_are_never_retried(fake: FakeOpenAI, status: int) -> None:
    fake.script.append(
        Fault("status", status, body={"error": {"message": "no", "type": "invalid_request_error"}})
    )
    llm = make(fake)
    with pytest.raises(ProviderError) as info:
        await llm.agenerate("hi")
    assert getattr(info.value, "status_code", None) == status
    assert len(fake.requests) == 1
    await llm.aclose()


async def test_unknown_model(fake: FakeOpenAI) -> None:
    llm = make(fake, model="missing-model")
    with pytest.raises(ModelNotFoundError) as info:
        await llm.agenerate("hi")
    assert "missing-model" in str(info.value) and "list_models()" in str(info.value)
    assert len(fake.requests) == 1
    await llm.aclose()


async def test_context_length_exceeded(fake: FakeOpenAI) -> None:
    fake.script.append(
        Fault(
            "status",
            400,
            body={
                "error": {
                    "message": "This model's maximum context length is 8192 tokens.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
        )
    )
    llm = make(fake)
    with pytest.raises(ContextLengthExceededError) as info:
        await llm.agenerate("hi")
    assert isinstance(info.value, BadRequestError)
    assert "Shorten the prompt" in str(info.value)
    await llm.aclose()


async def test_rate_limit_exhausted_keeps_retry_after(fake: FakeOpenAI) -> None:
    fake.script.extend([Fault("status", 429, headers={"retry-after": "0"})] * 3)
    llm = make(fake)
    with pytest.raises(RateLimitError) as info:
        await llm.agenerate("hi")
    assert info.value.retry_after == 0
    assert len(fake.requests) == 3
    await llm.aclose()


async def test_connection_dropped_mid_stream_raises_quickly(fake: FakeOpenAI) -> None:
    fake.script.append(Fault("drop_stream", events=2))
    llm = make(fake)
    got: list[str] = []
    start = time.monotonic()
    with pytest.raises(ProviderConnectionError):
        async for chunk in llm.astream("hi"):
            got.append(chunk.content)
    assert time.monotonic() - start < 5
    assert "".join(got) == "".join(WORDS[:2])
    assert len(fake.requests) == 1, "a stream must not be retried once chunks reached the caller"
    await llm.aclose()


async def test_error_event_in_stream_raises_mapped_error(fake: FakeOpenAI) -> None:
    fake.script.append(Fault("stream_error", events=1))
    llm = make(fake)
    with pytest.raises(ServerError):
        async for _ in llm.astream("hi"):
            pass
    await llm.aclose()


async def test_invalid_json_reply(fake: FakeOpenAI) -> None:
    fake.script.append(Fault("invalid_json"))
    llm = make(fake)
    with pytest.raises(ResponseFormatError) as info:
        await llm.agenerate("hi")
    assert "not JSON" in str(info.value)
    await llm.aclose()


async def test_html_502_from_a_proxy(fake: FakeOpenAI) -> None:
    fake.script.extend([Fault("html", 502)] * 3)
    llm = make(fake)
    with pytest.raises(ServerError) as info:
        await llm.agenerate("hi")
    assert "HTML" in str(info.value) and "<html>" not in str(info.value)
    assert len(fake.requests) == 3
    await llm.aclose()


async def test_read_timeout(fake: FakeOpenAI) -> None:
    fake.script.append(Fault("delay", seconds=3))
    llm = make(fake, timeout=0.5, retry_config=RetryConfig(max_attempts=1))
    start = time.monotonic()
    with pytest.raises(ProviderTimeoutError) as info:
        await llm.agenerate("hi")
    assert time.monotonic() - start < 2.5
    assert "timed out" in str(info.value)
    await llm.aclose()


async def test_timeout_is_retried(fake: FakeOpenAI) -> None:
    fake.script.append(Fault("delay", seconds=2))
    llm = make(fake, timeout=Timeout(connect=1, read=0.4, total=0.4))
    r = await llm.agenerate("hi")
    assert r.content == "".join(WORDS) and len(fake.requests) == 2
    await llm.aclose()


async def test_connection_refused_is_typed_and_retried() -> None:
    from tests.support.llama_server import free_port

    llm = create_llm(
        "openai", base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", retry_config=FAST_RETRY
    )
    with pytest.raises(ProviderConnectionError) as info:
        await llm.agenerate("hi")
    assert "running" in str(info.value)
    await llm.aclose()


async def test_list_models(fake: FakeOpenAI) -> None:
    llm = make(fake)
    assert await llm.alist_models() == ["gpt-fake", "gpt-fake-2"]
    await llm.aclose()


async def test_user_supplied_httpx_client_is_used_and_left_open(fake: FakeOpenAI) -> None:
    import httpx

    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(str(request.url))

    async with httpx.AsyncClient(event_hooks={"request": [hook]}) as client:
        llm = make(fake, http_client=client)
        r = await llm.agenerate("hi")
        assert r.content == "".join(WORDS)
        await llm.aclose()
        assert seen == [f"{fake.base_url}/chat/completions"]
        assert not client.is_closed


async def test_api_key_never_reaches_a_log_record(fake: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    fake.script.extend([Fault("status", 500), Fault("status", 429, headers={"retry-after": "0"})])
    llm = make(fake)
    await llm.agenerate("hi")
    bad = make(fake, api_key="sk-never-log-me-12345")
    with pytest.raises(AuthenticationError):
        await bad.agenerate("hi")
    retries = [r for r in caplog.records if r.name == "abstractcore.http"]
    assert len(retries) == 2, "each retry is logged"
    for record in caplog.records:
        text = record.getMessage()
        assert KEY not in text and "sk-never-log-me-12345" not in text
    await llm.aclose()
    await bad.aclose()


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_error_body_that_breaks_off_is_a_typed_error(fake: FakeOpenAI, streamed: bool) -> None:
    llm = make(fake, retry_config=RetryConfig(max_attempts=1))
    fake.script.append(Fault("broken_error_body", status=500))
    with pytest.raises(ProviderConnectionError) as info:
        if streamed:
            async for _ in llm.astream("hi"):
                pass
        else:
            await llm.agenerate("hi")
    assert info.value.provider == "openai" and info.value.model == "gpt-fake"
    await llm.aclose()


async def test_a_404_on_the_path_says_base_url_not_model(fake: FakeOpenAI) -> None:
    from abstractcore import EndpointNotFoundError

    root = fake.base_url.removesuffix("/v1")
    llm = create_llm("openai-compatible", base_url=root, api_key=KEY, retry_config=FAST_RETRY)
    for call in (lambda: llm.agenerate("hi"), lambda: _drain(llm.astream("hi"))):
        with pytest.raises(EndpointNotFoundError) as info:
            await call()
        message = str(info.value)
        assert "base_url" in message and "/v1" in message and f"{root}/chat/completions" in message
        assert not isinstance(info.value, ModelNotFoundError)
    assert len(fake.requests) == 0  # nothing reached the chat endpoint, and 404 was not retried
    await llm.aclose()


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass
