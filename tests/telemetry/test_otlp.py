"""Spans reach a collector over OTLP/HTTP: the SDK's exporter posts protobuf to a local receiver
(aiohttp on 127.0.0.1, ``/v1/traces``), which decodes it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import abstractcore
from abstractcore import create_llm
from tests.server.support import KEY as SERVER_KEY
from tests.server.support import wait_until
from tests.servers.openai_fake import KEY, FakeOpenAI
from tests.support.llama_server import free_port

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


def test_serve_with_otel_exports_the_served_trace_configured_by_the_otel_variables(
    fake: FakeOpenAI, receiver: Receiver
) -> None:
    """``abstractcore serve --otel``: the SDK configured from OTEL_* alone (endpoint, protocol,
    service name) sends the server span, continuing the caller's traceparent, and its chat span."""
    port = free_port()
    trace_id, caller = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7
    env = {
        **os.environ,
        "ABSTRACTCORE_SERVER_API_KEY": SERVER_KEY,
        "OPENAI_COMPATIBLE_API_KEY": KEY,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "served-by-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    args = ["--otel", "--provider", "openai-compatible", "--base-url", fake.base_url, "--model", "gpt-fake"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "abstractcore.server", *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _up(url, proc), 30) is not None, "the server did not start"
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "openai-compatible/gpt-fake", "messages": [{"role": "user", "content": "Hi"}]},
            headers={
                "authorization": f"Bearer {SERVER_KEY}",
                "traceparent": f"00-{trace_id:032x}-{caller:016x}-01",
            },
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        names = lambda: {s.name for s, _ in _spans(receiver)}  # noqa: E731
        assert wait_until(lambda: {"POST /v1/chat/completions", "chat gpt-fake"} <= names(), 15)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    spans = {span.name: (span, service) for span, service in _spans(receiver)}
    served, service = spans["POST /v1/chat/completions"]
    chat, _ = spans["chat gpt-fake"]
    assert service == "served-by-test"
    assert served.trace_id == chat.trace_id == trace_id.to_bytes(16, "big")
    assert served.parent_span_id == caller.to_bytes(8, "big")
    assert chat.parent_span_id == served.span_id
    assert SERVER_KEY not in str(receiver.received) and KEY not in str(receiver.received)


def _up(url: str, proc: subprocess.Popen[str]) -> bool:
    assert proc.poll() is None, proc.communicate()
    try:
        httpx.get(f"{url}/health", timeout=1)
    except httpx.TransportError:
        return False
    return True


def _spans(receiver: Receiver) -> list[tuple[Any, str]]:
    """Each span received, with its resource's ``service.name``."""
    found = []
    for message in list(receiver.received):
        for resource in message.resource_spans:
            service = next(
                (a.value.string_value for a in resource.resource.attributes if a.key == "service.name"), ""
            )
            found += [(span, service) for scope in resource.scope_spans for span in scope.spans]
    return found
