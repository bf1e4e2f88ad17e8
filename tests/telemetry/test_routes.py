"""Parent spans of the apps: a routed call that falls back is one ``route`` span with an event
per attempt over each attempt's ``chat`` span; ``abatch``'s items are children of its span (two
fake OpenAI servers on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from opentelemetry.trace import StatusCode

from abstractcore import RetryConfig, create_llm
from tests.servers.openai_fake import KEY, FakeOpenAI, Fault, running_fake_openai
from tests.telemetry.conftest import Traced

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with ExitStack() as stack:
        yield stack.enter_context(running_fake_openai()), stack.enter_context(running_fake_openai())


def _on(server: FakeOpenAI, name: str) -> tuple[str, dict[str, object]]:
    config = {"base_url": server.base_url, "model": "gpt-fake", "api_key": KEY, "name": name}
    return ("openai-compatible", {**config, "retry_config": RetryConfig(max_attempts=1)})


async def test_a_fallback_is_a_route_span_with_attempt_events_over_both_calls(
    pair: tuple[FakeOpenAI, FakeOpenAI], traced: Traced
) -> None:
    first, second = pair
    first.reset()
    second.reset()
    first.script.append(Fault("status", 500))
    llm = create_llm("router", models=[_on(first, "x"), _on(second, "y")])
    try:
        await llm.agenerate("Hi")
    finally:
        await llm.aclose()
    route = traced.named("route")
    calls = sorted(
        (s for s in traced.spans() if s.parent is not None and s.parent.span_id == route.context.span_id),
        key=lambda s: s.start_time or 0,
    )
    assert [s.name for s in calls] == ["chat gpt-fake", "chat gpt-fake"]
    failed, served = calls
    assert dict(failed.attributes or {})["error.type"] == "ServerError"
    assert failed.status.status_code is StatusCode.ERROR
    assert "error.type" not in dict(served.attributes or {})
    assert dict(served.attributes or {})["server.port"] == int(
        second.base_url.rsplit(":", 1)[1].split("/")[0]
    )
    events = [dict(e.attributes or {}) for e in route.events if e.name == "abstractcore.router.attempt"]
    assert [(e["abstractcore.router.deployment"], e["abstractcore.router.outcome"]) for e in events][-1] == (
        "y",
        "ok",
    )
    assert events[0]["abstractcore.router.deployment"] == "x"
    assert events[0]["error.type"] == "ServerError"
    assert dict(route.attributes or {})["abstractcore.router.deployment"] == "y"


async def test_batch_items_are_children_of_the_batch_span(
    pair: tuple[FakeOpenAI, FakeOpenAI], traced: Traced
) -> None:
    server = pair[0]
    server.reset()
    llm = create_llm("openai", model="gpt-test", base_url=server.base_url, api_key=KEY)
    try:
        answers = await llm.abatch(["a", "b", "c"], concurrency=2)
    finally:
        await llm.aclose()
    assert len(answers) == 3
    batch = traced.named("batch")
    assert dict(batch.attributes or {})["abstractcore.batch.size"] == 3
    chats = [s for s in traced.spans() if s.name == "chat gpt-test"]
    assert len(chats) == 3
    assert all(s.parent is not None and s.parent.span_id == batch.context.span_id for s in chats)
    assert all(s.context.trace_id == batch.context.trace_id for s in chats)
