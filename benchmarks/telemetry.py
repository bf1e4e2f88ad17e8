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
from collections.abc import Sequence
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


def _switch(mode: str, sdk: tuple[Any, Any]) -> None:
    import abstractcore

    if mode == "absent":
        abstractcore.instrument(False)
    elif mode == "no provider":
        abstractcore.instrument()
    else:
        abstractcore.instrument(*sdk)


async def _measure(root: str, rounds: int, calls: int, streams: int, chunks: int) -> dict[str, Any]:
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
    _switch("absent", sdk)
    await llm.aclose()
    sdk[0].shutdown()
    sdk[1].shutdown()
    return times


def report(times: dict[str, dict[str, list[float]]], setup: str) -> str:
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
    lines += ["", setup]
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
        times = asyncio.run(_measure(root, args.rounds, args.calls, args.streams, args.chunks))
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
    print(report(times, setup))


if __name__ == "__main__":
    main()
