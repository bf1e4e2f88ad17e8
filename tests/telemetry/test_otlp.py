"""Spans reach a collector over OTLP/HTTP: the SDK's exporter posts protobuf to a local receiver
(aiohttp on 127.0.0.1, ``/v1/traces``), which decodes it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import abstractcore
from abstractcore import create_llm
from tests.servers.openai_fake import KEY, FakeOpenAI

pytestmark = pytest.mark.slow


class Receiver:
    """An OTLP/HTTP trace receiver in its own thread: the decoded requests it got."""

    def __init__(self) -> None:
        self.received: list[ExportTraceServiceRequest] = []
        self.url = ""
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def traces(self, request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        self.received.append(message)
        return web.Response(body=b"", content_type="application/x-protobuf")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        self.runner = web.AppRunner(app)
        self._loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1/traces"
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def test_a_call_span_arrives_at_an_otlp_http_collector(fake: FakeOpenAI, receiver: Receiver) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.url, timeout=10)))
    abstractcore.instrument(provider)
    try:
        llm = create_llm("openai", model="gpt-test", base_url=fake.base_url, api_key=KEY)
        llm.generate("Hi")
        llm.close()
    finally:
        abstractcore.instrument(False)
        provider.shutdown()
    spans = [
        span
        for message in receiver.received
        for resource in message.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert [span.name for span in spans] == ["chat gpt-test"]
    attributes = {a.key: a.value for a in spans[0].attributes}
    assert attributes["gen_ai.provider.name"].string_value == "openai"
    assert attributes["gen_ai.usage.output_tokens"].int_value == 6
    assert KEY not in str(receiver.received)  # the API key never leaves in a span
