"""What does tracing cost a call? Three modes side by side in one run.

    PYTHONPATH=src .venv/bin/python benchmarks/telemetry.py            # ~1-2 min
    PYTHONPATH=src .venv/bin/python benchmarks/telemetry.py --rounds 5 # fewer rounds

Reuses ``overhead.py``'s fake server (its own process, canned OpenAI Chat Completions bytes, a
short SSE stream of ``--chunks`` deltas) and measures, in this process, the per-call time of
``agenerate`` and of a whole ``astream`` read in three modes:

- **absent**: tracing off (``state.active`` is None, as when ``instrument()`` was never called;
  the request path is the same None check either way);
- **no provider**: ``abstractcore.instrument()`` with the OpenTelemetry API and no SDK provider
  set globally (the API's no-op tracer and meter: what a library user pays when the app did not
  configure OpenTelemetry);
- **SDK**: ``instrument(TracerProvider, MeterProvider)`` with a ``BatchSpanProcessor`` over an
  exporter that drops the spans and a ``MeterProvider`` with an ``InMemoryMetricReader`` (the
  instrumentation's and the SDK's cost, no exporter's).

- **SDK floor** (not a mode of a call): what the SDK itself charges for the data one call
  records, with no abstractcore code around it: ``tracer.start_span`` with a call's request
  attributes, ``set_attributes`` with its answer's, ``end``, and the three histogram records
  (duration, input and output tokens) with the calls' metric attributes; timed in each round
  beside the modes; and **traced, in process**: ``Tracing.send`` (the chat span and metrics of
  one call) around a canned answer, no network. Traced minus floor, paired per round, is what
  abstractcore's own code adds on top of the SDK (the end-to-end difference carries the
  loopback's noise, far larger than that).

The machine may be loaded: the modes are interleaved in rounds (the order rotated each round) and
each figure is the median over rounds of that round's mean; the ratios are to **absent**, the
medians of the paired per-round ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import ANSWER, API_KEY, MODEL, PROMPT, serve

MODES = ("absent", "no provider", "SDK")
TARGETS = {"no provider": 1.02, "SDK": 1.05}  # ratio to absent, at most


def _providers() -> tuple[Any, Any]:
    """The SDK tracer provider (batched, spans dropped) and meter provider (in-memory reader)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Drop()))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


def _floor(sdk: tuple[Any, Any], port: int) -> Callable[[], None]:
    """One call's worth of the SDK's own work (see the module docstring), with the attributes
    abstractcore records for a call to the fake server."""
    from opentelemetry.trace import SpanKind

    tracer = sdk[0].get_tracer("floor")
    meter = sdk[1].get_meter("floor")
    duration = meter.create_histogram("floor.duration", unit="s")
    tokens = meter.create_histogram("floor.tokens", unit="{token}")
    request = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": MODEL,
        "server.address": "127.0.0.1",
        "server.port": port,
    }
    answer = {
        "gen_ai.response.model": MODEL,
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 6,
    }
    labels = {**request, "gen_ai.response.model": MODEL}

    def call() -> None:
        span = tracer.start_span(f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=request)
        span.set_attributes(answer)
        span.end()
        duration.record(0.0005, labels)
        tokens.record(7, {**labels, "gen_ai.token.type": "input"})
        tokens.record(6, {**labels, "gen_ai.token.type": "output"})

    return call


def _traced(sdk: tuple[Any, Any], llm: Any) -> Callable[[], Any]:
    """``Tracing.send`` of one built request around a canned answer (no network)."""
    from abstractcore.core.types import GenerateResponse, Usage
    from abstractcore.features.request import build_request, pipeline_of
    from abstractcore.features.telemetry.tracing import Tracing

    tracing = Tracing(sdk[0], sdk[1], False)
    pipeline = pipeline_of(llm)
    request = pipeline._bind(build_request(prompt=PROMPT))
    response = GenerateResponse(
        content=ANSWER,
        usage=Usage(input_tokens=7, output_tokens=6),
        model=MODEL,
        finish_reason="stop",
        raw={"id": "chatcmpl-1"},
    )

    async def answer(_: Any) -> Any:
        return response

    def call() -> Any:
        return tracing.send(pipeline, request, answer)

    return call


def _switch(mode: str, sdk: tuple[Any, Any]) -> None:
    import abstractcore

    if mode == "absent":
        abstractcore.instrument(False)
    elif mode == "no provider":
        abstractcore.instrument()
    else:
        abstractcore.instrument(*sdk)


async def _measure(
    root: str, rounds: int, calls: int, streams: int, chunks: int
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    from abstractcore import create_llm
    from abstractcore.features.telemetry import state

    llm = create_llm("openai", model=MODEL, base_url=f"{root}/v1", api_key=API_KEY)
    sdk = _providers()

    async def generate() -> None:
        assert (await llm.agenerate(PROMPT)).content == ANSWER

    async def stream() -> None:
        n = 0
        async for chunk in llm.astream(PROMPT):
            n += bool(chunk.content)
        assert n == chunks, n

    for mode in MODES:  # warm every path (connections, imports, the SDK's first span)
        _switch(mode, sdk)
        for _ in range(50):
            await generate()
        for _ in range(10):
            await stream()
    assert state.active is not None
    times: dict[str, dict[str, list[float]]] = {m: {"generate": [], "stream": []} for m in MODES}
    floor = _floor(sdk, int(root.rsplit(":", 1)[1]))
    traced = _traced(sdk, llm)
    micro: dict[str, list[float]] = {"SDK floor": [], "traced": []}
    for r in range(rounds):
        order = MODES[r % 3 :] + MODES[: r % 3]
        for mode in order:
            _switch(mode, sdk)
            gc.collect()
            start = time.perf_counter()
            for _ in range(calls):
                await generate()
            times[mode]["generate"].append((time.perf_counter() - start) / calls * 1e6)
            gc.collect()
            start = time.perf_counter()
            for _ in range(streams):
                await stream()
            times[mode]["stream"].append((time.perf_counter() - start) / streams * 1e6)
        for what in ("SDK floor", "traced") if r % 2 else ("traced", "SDK floor"):
            gc.collect()
            start = time.perf_counter()
            if what == "traced":
                for _ in range(calls):
                    await traced()
            else:
                for _ in range(calls):
                    floor()
            micro[what].append((time.perf_counter() - start) / calls * 1e6)
    _switch("absent", sdk)
    await llm.aclose()
    sdk[0].shutdown()
    sdk[1].shutdown()
    return times, micro


def report(times: dict[str, dict[str, list[float]]], micro: dict[str, list[float]], setup: str) -> str:
    base = times["absent"]
    lines = [
        "| mode | µs/generate | ratio | µs/stream | ratio | target |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        cells = []
        for what in ("generate", "stream"):
            values = times[mode][what]
            ratio = statistics.median(v / b for v, b in zip(values, base[what], strict=True))
            cells += [f"{statistics.median(values):,.0f}", f"{ratio:.3f}x"]
        target = f"≤ {TARGETS[mode]:.2f}x" if mode in TARGETS else "-"
        lines.append(f"| {mode} | " + " | ".join(cells) + f" | {target} |")
    floor, traced = micro["SDK floor"], micro["traced"]
    above = statistics.median(t - f for t, f in zip(traced, floor, strict=True))
    lines += [
        "",
        "| in process, no network | µs/call |",
        "|---|---:|",
        f"| SDK floor (span start with attributes, set_attributes, end; 3 histogram records) "
        f"| {statistics.median(floor):,.1f} |",
        f"| `Tracing.send` around a canned answer (floor + abstractcore's code) "
        f"| {statistics.median(traced):,.1f} |",
        f"| abstractcore's own code above the floor (paired per round) | {above:,.1f} |",
        "",
        setup,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds of the three modes (median)")
    parser.add_argument("--calls", type=int, default=300, help="agenerate calls per mode per round")
    parser.add_argument("--streams", type=int, default=60, help="streams per mode per round")
    parser.add_argument("--chunks", type=int, default=50, help="text deltas per stream")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client to separate CPUs")
    args = parser.parse_args()

    pin = not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    server_cpu = None
    if pin:
        cpus = sorted(os.sched_getaffinity(0))
        server_cpu = cpus[-1]
        os.sched_setaffinity(0, {cpus[0]})
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    server = ctx.Process(target=serve, args=(child, args.chunks, server_cpu), daemon=True)
    server.start()
    try:
        if not parent.poll(30):
            raise SystemExit("fake server did not start")
        root = f"http://127.0.0.1:{parent.recv()}"
        started = time.perf_counter()
        times, micro = asyncio.run(_measure(root, args.rounds, args.calls, args.streams, args.chunks))
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.join(5)

    from importlib.metadata import version

    import abstractcore

    setup = (
        f"{args.rounds} rounds in {elapsed:.0f} s, modes interleaved (order rotated); per mode and "
        f"round {args.calls} sequential `agenerate` calls and {args.streams} `astream` reads of "
        f"{args.chunks} deltas; median of the rounds, ratios = median of paired per-round ratios; "
        f"abstractcore from {Path(abstractcore.__file__).parent}; opentelemetry-api "
        f"{version('opentelemetry-api')}, -sdk {version('opentelemetry-sdk')}; "
        f"{'client and server pinned to separate CPUs; ' if pin else ''}{os.cpu_count()} CPUs."
    )
    print(report(times, micro, setup))


if __name__ == "__main__":
    main()
