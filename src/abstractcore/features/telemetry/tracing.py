"""``Tracing``: the spans and metrics of one ``abstractcore.instrument()`` call.

Imported by ``instrument()`` only (it imports opentelemetry). One span per model call, started on
the request pipeline: ``send`` around ``ProviderPipeline._send``, ``stream`` around the iterator of
``_send_stream`` (the span starts when the stream is first read and ends when it ends, is left,
fails or is cancelled), ``embed`` around ``aembed``. ``parent`` and ``parent_stream`` are the spans
the apps open around their calls (``invoke_agent``, the router, a batch), ``tool`` one tool
execution, ``server`` one served request continuing the caller's ``traceparent``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from time import perf_counter
from typing import Any

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from abstractcore._version import __version__
from abstractcore.core.types import EmbeddingResponse, GenerateResponse, StreamChunk, ToolCall
from abstractcore.features.telemetry.attributes import (
    content_of,
    error_type,
    output_messages,
    param_attributes,
    request_attributes,
    response_attributes,
    server_of,
    usage_attributes,
)
from abstractcore.features.telemetry.spans import attempts, close, fail, trace_headers

__all__ = ["Tracing", "attempts", "trace_headers"]  # the last two from ``spans.py``

#: The request attributes the metrics carry (the response model and ``error.type`` are added).
_REQUEST_LABELS = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "server.address",
    "server.port",
)
#: A call's span name, kind, request attributes (without parameters) and metric attributes.
_Base = tuple[str, SpanKind, dict[str, Any], dict[str, Any]]
_TOKEN_BUCKETS = [4.0**n for n in range(14)]
_SECONDS_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]


class Tracing:
    """The tracer, the meter's histograms and the content switch (see the module docstring)."""

    def __init__(self, tracer_provider: Any, meter_provider: Any, capture_content: bool) -> None:
        self.capture_content = capture_content
        #: (operation, provider, base_url, model) -> what every call of theirs starts with.
        self._bases: dict[tuple[str, str, Any, str], _Base] = {}
        self.tracer = trace.get_tracer("abstractcore", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("abstractcore", __version__, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        )

    # -- model calls --------------------------------------------------------------------------

    def _start(
        self, operation: str, provider: Any, model: str, params: Mapping[str, Any], extra: Mapping[str, Any]
    ) -> tuple[Span, dict[str, Any]]:
        """The call's span, started with every attribute known before it is sent, and the metric
        attributes: built from the same values, never read back from the span (which records
        nothing without an SDK tracer provider). What depends on the provider and model only is
        built once per provider and model."""
        key = (operation, provider.name, getattr(provider, "base_url", None), model)
        base = self._bases.get(key)
        if base is None:
            base = self._base(operation, provider, model)
            if len(self._bases) < 1024:
                self._bases[key] = base
        name, kind, attributes, labels = base
        if params or extra:
            attributes = {**attributes, **param_attributes(params), **extra}
        return self.tracer.start_span(name, kind=kind, attributes=attributes), labels

    @staticmethod
    def _base(operation: str, provider: Any, model: str) -> _Base:
        server = server_of(provider)
        attributes = request_attributes(operation, provider.name, model, {}, server)
        labels = {k: attributes[k] for k in _REQUEST_LABELS if k in attributes}
        kind = SpanKind.CLIENT if server is not None else SpanKind.INTERNAL
        return f"{operation} {model}", kind, attributes, labels

    def _record(
        self, labels: dict[str, Any], seconds: float, answer: Any, error: BaseException | None
    ) -> None:
        """The call's duration and, when it answered, its token usage (by token type). ``labels``
        is shared by the calls of one provider and model: never changed, new dicts are recorded."""
        model = getattr(answer, "model", None)
        if error is not None:
            self.duration.record(seconds, {**labels, "error.type": error_type(error)})
            return
        if model:
            labels = {**labels, "gen_ai.response.model": model}
        self.duration.record(seconds, labels)
        usage = getattr(answer, "usage", None)
        if usage is not None:
            self.tokens.record(usage.input_tokens, {**labels, "gen_ai.token.type": "input"})
            self.tokens.record(usage.output_tokens, {**labels, "gen_ai.token.type": "output"})

    async def send(self, provider: Any, request: Any, answer: Callable[[Any], Awaitable[Any]]) -> Any:
        """``answer(request)`` (the pipeline's ``_send`` of a bound request) in its ``chat`` span."""
        extra = content_of(request.messages) if self.capture_content else None
        span, labels = self._start("chat", provider, request.model, request.params, extra or {})
        start = perf_counter()
        result: Any = None
        failure: BaseException | None = None
        try:
            if span.is_recording() or span.get_span_context().is_valid:
                token = context.attach(trace.set_span_in_context(span))
                try:
                    result = await answer(request)
                finally:
                    context.detach(token)
            else:  # the API's no-op tracer and no parent: nothing to carry to the calls inside
                result = await answer(request)
            if isinstance(result, GenerateResponse) and span.is_recording():
                attributes = response_attributes(result)
                if self.capture_content:
                    attributes["gen_ai.output.messages"] = output_messages(
                        result.content, result.tool_calls, result.finish_reason
                    )
                span.set_attributes(attributes)
            return result
        except BaseException as error:
            failure = error
            fail(span, error)
            raise
        finally:
            self._record(labels, perf_counter() - start, result, failure)
            span.end()

    async def stream(self, provider: Any, request: Any, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """``chunks`` in one ``chat`` span, from the first read to the end of the stream."""
        extra: dict[str, Any] = {"gen_ai.request.stream": True}
        if self.capture_content:
            extra.update(content_of(request.messages))
        span, labels = self._start("chat", provider, request.model, request.params, extra)
        start = perf_counter()
        first = True
        last: StreamChunk | None = None
        failure: BaseException | None = None
        texts: list[str] = []
        calls: list[ToolCall] = []
        # current while the first read sends the request (its retries too): the context propagated
        # in its headers, and any HTTP client instrumentation's spans its children
        current = trace.set_span_in_context(span) if span.get_span_context().is_valid else None
        try:
            while True:
                token = context.attach(current) if first and current is not None else None
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    if token is not None:
                        context.detach(token)
                if first:
                    first = False
                    seconds = perf_counter() - start
                    span.set_attribute("gen_ai.response.time_to_first_chunk", seconds)
                    self.first_chunk.record(seconds, labels)
                if isinstance(chunk, StreamChunk):
                    if self.capture_content:
                        texts.append(chunk.content)
                        calls.extend(chunk.tool_calls)
                    if chunk.finish_reason is not None:
                        last = chunk
                yield chunk
        except GeneratorExit:  # the consumer left early (``aclose``, a ``break``, garbage collection)
            span.set_attribute("abstractcore.stream.closed_early", True)
            raise
        except BaseException as error:
            failure = error
            fail(span, error)
            raise
        finally:
            try:
                await close(chunks)
            finally:
                attributes = response_attributes(last) if last is not None else {}
                if self.capture_content and (texts or calls):
                    reason = last.finish_reason if last is not None else None
                    attributes["gen_ai.output.messages"] = output_messages("".join(texts), calls, reason)
                if attributes:
                    span.set_attributes(attributes)
                self._record(labels, perf_counter() - start, last, failure)
                span.end()

    async def embed(self, provider: Any, texts: list[str], answer: Callable[[], Awaitable[Any]]) -> Any:
        """``answer()`` (the provider's embeddings of ``texts``) in its ``embeddings`` span."""
        span, labels = self._start("embeddings", provider, provider.model, {}, {})
        start = perf_counter()
        result: Any = None
        failure: BaseException | None = None
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                result = await answer()
            if isinstance(result, EmbeddingResponse):
                attributes = response_attributes(_as_answer(result))
                if result.vectors:
                    attributes["gen_ai.embeddings.dimension.count"] = len(result.vectors[0])
                span.set_attributes(attributes)
            return result
        except BaseException as error:
            failure = error
            fail(span, error)
            raise
        finally:
            self._record(labels, perf_counter() - start, result, failure)
            span.end()

    # -- the apps' parent spans ---------------------------------------------------------------

    @contextmanager
    def parent(self, name: str, attributes: Mapping[str, Any]) -> Iterator[Span]:
        """A span around a coroutine's work (no ``yield`` of a generator inside), current while it
        runs so the calls inside are its children."""
        with self.tracer.start_as_current_span(
            name, attributes=dict(attributes), record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield span
            except BaseException as error:
                fail(span, error)
                raise

    async def parent_stream(
        self,
        name: str,
        attributes: Mapping[str, Any],
        inner: AsyncIterator[Any],
        last: Callable[[Span, Any], None],
    ) -> AsyncIterator[Any]:
        """``inner`` in one span, current during each read of ``inner`` (never across a ``yield``),
        so the calls ``inner`` makes are its children; ``last(span, item)`` sees every item."""
        span = self.tracer.start_span(name, attributes=dict(attributes))
        parent = trace.set_span_in_context(span)
        try:
            while True:
                token = context.attach(parent)
                try:
                    item = await inner.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    context.detach(token)
                last(span, item)
                yield item
        except GeneratorExit:
            span.set_attribute("abstractcore.stream.closed_early", True)
            raise
        except BaseException as error:
            fail(span, error)
            raise
        finally:
            try:
                await close(inner)
            finally:
                span.end()

    def _agent_attributes(self, pipeline: Any) -> dict[str, Any]:
        return {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": pipeline.name,
            "gen_ai.request.model": pipeline.model,
        }

    def agent(self, pipeline: Any) -> Any:
        """The ``invoke_agent`` span of a ``run``: its model turns and tool executions inside."""
        return self.parent("invoke_agent", self._agent_attributes(pipeline))

    def agent_stream(self, pipeline: Any, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """``astream_run``'s events in one ``invoke_agent`` span."""

        def last(span: Span, event: Any) -> None:
            result = getattr(event, "result", None)
            if result is not None:
                span.set_attributes(usage_attributes(result.usage))

        return self.parent_stream("invoke_agent", self._agent_attributes(pipeline), events, last)

    def batch(self, pipeline: Any, size: int) -> Any:
        """The span of one ``abatch``: each item's call is its child."""
        attributes = {
            "gen_ai.provider.name": pipeline.name,
            "gen_ai.request.model": pipeline.model,
            "abstractcore.batch.size": size,
        }
        return self.parent("batch", attributes)

    def tool_result(self, span: Span, error: str | None, result: Any) -> None:
        """What a tool execution ended with: its error (the model sees it), or its result."""
        if error is not None:
            span.set_attribute("error.type", "ToolError")
            span.set_status(Status(StatusCode.ERROR, error[:500]))
        elif self.capture_content:
            span.set_attribute("gen_ai.tool.call.result", _text(result))

    @contextmanager
    def tool(self, call: ToolCall, description: str | None) -> Iterator[Span]:
        """The ``execute_tool {name}`` span of one tool execution."""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.id,
            "gen_ai.tool.type": "function",
        }
        if description:
            attributes["gen_ai.tool.description"] = description
        if self.capture_content:
            attributes["gen_ai.tool.call.arguments"] = call.arguments_json()
        with self.parent(f"execute_tool {call.name}", attributes) as span:
            yield span

    @contextmanager
    def server(self, method: str, path: str, headers: Mapping[str, str]) -> Iterator[Span]:
        """The server span of one request, continuing the caller's W3C ``traceparent``."""
        parent = propagate.extract(headers)
        attributes = {"http.request.method": method, "url.path": path}
        with self.tracer.start_as_current_span(
            f"{method} {path}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as error:
                fail(span, error)
                raise


def _text(value: Any) -> str:
    import json

    try:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _as_answer(response: EmbeddingResponse) -> GenerateResponse:
    return GenerateResponse(usage=response.usage, model=response.model, cost=response.cost)
