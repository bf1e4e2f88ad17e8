"""HttpClient: one pool per event loop, the right transport per library, nothing leaked."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
import trio

from abstractcore import create_llm
from abstractcore.transport.aiohttp_transport import AiohttpTransport
from abstractcore.transport.error_mapping import parse_retry_after, redact
from abstractcore.transport.httpx_transport import HttpxTransport
from tests.servers.openai_fake import KEY, WORDS, FakeOpenAI, running_fake_openai


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running_fake_openai() as state:
        yield state


def test_each_event_loop_gets_its_own_pool_and_dead_loops_are_forgotten(fake: FakeOpenAI) -> None:
    llm = create_llm("openai", model="m", base_url=fake.base_url, api_key=KEY)
    http = llm.provider._http
    seen: list[object] = []

    async def on_asyncio() -> str:
        seen.append(http._transport())
        return (await llm.agenerate("hi")).content

    async def on_trio() -> str:
        seen.append(http._transport())
        return (await llm.agenerate("hi")).content

    for _ in range(3):
        assert asyncio.run(on_asyncio()) == "".join(WORDS)
        assert trio.run(on_trio) == "".join(WORDS)
    assert [type(t) for t in seen] == [AiohttpTransport, HttpxTransport] * 3
    assert len({id(t) for t in seen}) == 6
    seen.clear()
    gc.collect()
    assert llm.generate("hi").content == "".join(WORDS)  # the portal loop's pool
    live = [ref() for ref, _ in http._transports.values()]
    assert len([loop for loop in live if loop is not None]) <= 2


def test_sync_and_async_callers_never_share_a_pool(fake: FakeOpenAI) -> None:
    llm = create_llm("openai", model="m", base_url=fake.base_url, api_key=KEY)

    async def main() -> None:
        await llm.agenerate("hi")
        llm.generate("hi")  # runs on the background loop
        assert len(llm.provider._http._transports) == 2
        await llm.aclose()
        assert len(llm.provider._http._transports) == 1
        llm.close()
        assert len(llm.provider._http._transports) == 0

    asyncio.run(main())


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_redact_hides_secrets() -> None:
    assert redact("key sk-abc123 leaked", ["sk-abc123"]) == "key *** leaked"
    assert redact("short", ["ab"]) == "short"


@pytest.mark.parametrize("runner", ["asyncio", "trio"])
def test_proxy_from_the_environment_is_used(
    fake: FakeOpenAI, runner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = fake.base_url.removesuffix("/v1")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("http_proxy", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    fake.reset()
    # this host does not exist: only a proxy can answer
    llm = create_llm("openai", model="m", base_url="http://llm.invalid/v1", api_key=KEY)

    async def main() -> str:
        try:
            return (await llm.agenerate("hi")).content
        finally:
            await llm.aclose()

    out = asyncio.run(main()) if runner == "asyncio" else trio.run(main)
    assert out == "".join(WORDS)
    assert fake.requests[-1]["headers"]["Host"] == "llm.invalid"
