"""One span per model call, named and attributed by the GenAI conventions (the fake OpenAI server
on 127.0.0.1 answers; its failures are exact)."""

from __future__ import annotations

import asyncio
import gc
import socket

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import abstractcore
from abstractcore import AuthenticationError, ProviderConnectionError, RetryConfig, create_llm
from tests.servers.openai_fake import KEY, FakeOpenAI, Fault
from tests.telemetry.conftest import Traced

pytestmark = pytest.mark.anyio


def _port(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1].split("/")[0])


def test_a_plain_call_is_one_chat_span_with_the_conventions_attributes(
    fake: FakeOpenAI, traced: Traced
) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    llm.generate("Hi", temperature=0.25, max_tokens=20, top_p=0.5, seed=3, stop=["\n"])
    [span] = traced.spans()
    assert span.name == "chat gpt-test"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-test",
        "gen_ai.request.temperature": 0.25,
        "gen_ai.request.max_tokens": 20,
        "gen_ai.request.top_p": 0.5,
        "gen_ai.request.seed": 3,
        "gen_ai.request.stop_sequences": ("\n",),
        "server.address": "127.0.0.1",
        "server.port": _port(fake.base_url),
        "gen_ai.response.model": "gpt-test",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 6,
    }


def test_metrics_record_token_usage_by_type_and_the_duration(fake: FakeOpenAI, traced: Traced) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    llm.generate("Hi")
    tokens = {p.attributes["gen_ai.token.type"]: p for p in traced.points("gen_ai.client.token.usage")}
    assert (tokens["input"].sum, tokens["output"].sum) == (7, 6)
    assert tokens["input"].attributes["gen_ai.request.model"] == "gpt-test"
    [duration] = traced.points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert dict(duration.attributes)["gen_ai.provider.name"] == "openai"
    assert 0 < duration.sum < 10


def test_a_stream_read_whole_is_one_span_with_its_time_to_first_chunk(
    fake: FakeOpenAI, traced: Traced
) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    text = "".join(chunk.content for chunk in llm.stream("Hi"))
    assert text == "Hello from the fake server."
    [span] = traced.spans()
    attributes = dict(span.attributes or {})
    assert span.name == "chat gpt-test"
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.output_tokens"] == 6
    assert 0 < attributes["gen_ai.response.time_to_first_chunk"] < 10
    assert "abstractcore.stream.closed_early" not in attributes
    [first] = traced.points("gen_ai.client.operation.time_to_first_chunk")
    assert first.count == 1


async def test_a_stream_left_by_break_ends_its_span(fake: FakeOpenAI, traced: Traced) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    async for _chunk in llm.astream("Hi"):
        break
    for _ in range(5):  # the left generator is finalised by the event loop
        gc.collect()
        await asyncio.sleep(0.01)
    [span] = traced.spans()
    assert span.end_time is not None
    assert (span.attributes or {})["abstractcore.stream.closed_early"] is True
    await llm.aclose()


async def test_a_stream_closed_with_aclose_ends_its_span_at_once(fake: FakeOpenAI, traced: Traced) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    stream = llm.astream("Hi")
    await anext(stream)
    assert traced.spans() == []
    await stream.aclose()  # type: ignore[attr-defined]
    [span] = traced.spans()
    assert (span.attributes or {})["abstractcore.stream.closed_early"] is True
    await llm.aclose()


def test_a_stream_left_by_the_blocking_face_ends_its_one_span(fake: FakeOpenAI, traced: Traced) -> None:
    # the portal's pump may read this short stream to its end before it is told to stop
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    for _chunk in llm.stream("Hi"):
        break
    for _ in range(50):
        if traced.spans():
            break
        gc.collect()
        asyncio.run(asyncio.sleep(0.02))
    [span] = traced.spans()
    assert span.name == "chat gpt-test" and span.end_time is not None


async def test_a_cancelled_call_ends_its_span_marked_cancelled_not_failed(
    fake: FakeOpenAI, traced: Traced
) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    fake.script.append(Fault("delay", seconds=5))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(llm.agenerate("Hi"), 0.3)
    [span] = traced.spans()
    assert (span.attributes or {})["error.type"] == "CancelledError"
    assert span.status.status_code is StatusCode.UNSET
    await llm.aclose()


async def test_a_cancelled_stream_ends_its_one_span(fake: FakeOpenAI, traced: Traced) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    fake.script.append(Fault("delay", seconds=5))

    async def read() -> None:
        async for _chunk in llm.astream("Hi"):
            pass

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read(), 0.3)
    [span] = traced.spans()
    assert (span.attributes or {})["error.type"] == "CancelledError"
    await llm.aclose()


def test_a_401_sets_error_type_and_status_and_records_no_key(fake: FakeOpenAI, traced: Traced) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key="sk-wrong-key-0123456789")
    with pytest.raises(AuthenticationError):
        llm.generate("Hi")
    [span] = traced.spans()
    assert (span.attributes or {})["error.type"] == "AuthenticationError"
    assert span.status.status_code is StatusCode.ERROR
    recorded = repr(span.to_json())
    assert "sk-wrong-key" not in recorded and KEY not in recorded
    [duration] = traced.points("gen_ai.client.operation.duration")
    assert dict(duration.attributes)["error.type"] == "AuthenticationError"
    assert traced.points("gen_ai.client.token.usage") == []


def test_connection_refused_is_a_failed_span(traced: Traced) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    llm = create_llm(
        "openai", model="gpt-test", base_url=url, api_key=KEY, retry_config=RetryConfig(max_attempts=1)
    )
    with pytest.raises(ProviderConnectionError):
        llm.generate("Hi")
    [span] = traced.spans()
    assert (span.attributes or {})["error.type"] == "ProviderConnectionError"
    assert (span.attributes or {})["server.port"] == port
    assert span.status.status_code is StatusCode.ERROR


def test_content_is_recorded_only_when_asked(fake: FakeOpenAI, traced_content: Traced) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    llm.generate("Say hello", system_prompt="Be brief.")
    [span] = traced_content.spans()
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.system_instructions"] == '[{"type": "text", "content": "Be brief."}]'
    assert attributes["gen_ai.input.messages"] == (
        '[{"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}]'
    )
    assert '"content": "Hello from the fake server."' in attributes["gen_ai.output.messages"]
    assert KEY not in repr(span.to_json())


def test_content_is_not_recorded_by_default(fake: FakeOpenAI, traced: Traced) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    llm.generate("Say hello", system_prompt="Be brief.")
    [span] = traced.spans()
    assert not any(
        k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system")) for k in span.attributes or {}
    )


def test_metrics_carry_their_attributes_without_a_tracer_provider(fake: FakeOpenAI) -> None:
    """A meter provider alone (the global tracer is the API's no-op one): the histograms still
    carry the request's and the answer's attributes, for a call, a stream and a failure."""
    reader = InMemoryMetricReader()
    abstractcore.instrument(None, MeterProvider(metric_readers=[reader]))
    try:
        llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
        llm.generate("Hi")
        "".join(chunk.content for chunk in llm.stream("Hi"))
        wrong = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key="sk-wrong-0123")
        with pytest.raises(AuthenticationError):
            wrong.generate("Hi")
    finally:
        abstractcore.instrument(False)
    traced = Traced(InMemorySpanExporter(), reader)
    assert traced.spans() == []
    expected = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-test",
        "server.address": "127.0.0.1",
        "server.port": _port(fake.base_url),
    }
    durations = sorted(
        (dict(p.attributes) for p in traced.points("gen_ai.client.operation.duration")), key=len
    )
    answered = {**expected, "gen_ai.response.model": "gpt-test"}
    assert durations == [answered, {**expected, "error.type": "AuthenticationError"}]
    assert [p.count for p in traced.points("gen_ai.client.operation.duration")] == [2, 1]
    tokens = traced.points("gen_ai.client.token.usage")
    assert {p.attributes["gen_ai.token.type"]: p.sum for p in tokens} == {"input": 14, "output": 12}
    for point in tokens:
        kind = point.attributes["gen_ai.token.type"]
        assert dict(point.attributes) == {**answered, "gen_ai.token.type": kind}
    [first] = traced.points("gen_ai.client.operation.time_to_first_chunk")
    assert dict(first.attributes) == expected
