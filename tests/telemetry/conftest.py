"""Tracing switched on for one test: the SDK's in-memory span exporter and metric reader."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import abstractcore


@dataclass
class Traced:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        """The finished spans, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, [s.name for s in self.spans()]
        return found[0]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for m in scope.metrics
            if m.name == metric
            for point in m.data.data_points
        ]


def _traced(capture_content: bool | None) -> Iterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    abstractcore.instrument(provider, MeterProvider(metric_readers=[reader]), capture_content=capture_content)
    try:
        yield Traced(exporter, reader)
    finally:
        abstractcore.instrument(False)


@pytest.fixture
def traced() -> Iterator[Traced]:
    """Tracing on (content not captured) for this test; off after it."""
    yield from _traced(False)


@pytest.fixture
def traced_content() -> Iterator[Traced]:
    """Tracing on with content capture."""
    yield from _traced(True)


@pytest.fixture
def anyio_backend() -> str:
    """asyncio: these tests read how the event loop finalises a stream that was left."""
    return "asyncio"
