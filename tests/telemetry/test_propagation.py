"""``instrument(propagate=True)``: every HTTP request to a provider carries the call's W3C
``traceparent``, so the server behind it can continue the trace. The fake OpenAI server on
127.0.0.1 records the headers it received."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import abstractcore
from abstractcore import ConfigurationError, create_llm
from tests.servers.openai_fake import KEY, FakeOpenAI

_PROVIDERS: dict[int, TracerProvider] = {}


def _provider_of(exporter: InMemorySpanExporter) -> TracerProvider:
    return _PROVIDERS[id(exporter)]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _PROVIDERS[id(exporter)] = provider
    abstractcore.instrument(provider, propagate=True)
    try:
        yield exporter
    finally:
        abstractcore.instrument(False)
        del _PROVIDERS[id(exporter)]


def _traceparent_of(span: ReadableSpan) -> str:
    context = span.context
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def test_a_call_and_a_stream_send_their_own_spans_traceparent(
    fake: FakeOpenAI, exporter: InMemorySpanExporter
) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    llm.generate("Hi")
    "".join(chunk.content for chunk in llm.stream("Hi"))
    called, streamed = exporter.get_finished_spans()
    sent = [request["headers"].get("traceparent") for request in fake.requests]
    assert sent == [_traceparent_of(called), _traceparent_of(streamed)]
    assert called.context.trace_id != streamed.context.trace_id  # two calls, two traces


def test_a_call_inside_the_apps_span_sends_that_trace_with_its_chat_span_as_parent(
    fake: FakeOpenAI, exporter: InMemorySpanExporter
) -> None:
    from opentelemetry import trace

    tracer = trace.get_tracer("app", tracer_provider=_provider_of(exporter))
    llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
    with tracer.start_as_current_span("handle request"):
        llm.generate("Hi")
    chat, app = exporter.get_finished_spans()
    assert chat.parent is not None and chat.parent.span_id == app.context.span_id
    assert fake.requests[-1]["headers"]["traceparent"] == _traceparent_of(chat)
    assert chat.context.trace_id == app.context.trace_id


def test_without_propagate_no_traceparent_is_sent(fake: FakeOpenAI) -> None:
    abstractcore.instrument(TracerProvider())
    try:
        llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
        llm.generate("Hi")
    finally:
        abstractcore.instrument(False)
    assert "traceparent" not in fake.requests[-1]["headers"]
    with pytest.raises(ConfigurationError, match="propagate"):
        abstractcore.instrument(TracerProvider(), propagate="yes")  # type: ignore[arg-type]
