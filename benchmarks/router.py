"""What do the router and batch jobs cost on top of the bare provider?

    .venv/bin/python benchmarks/router.py            # ~1 min (5 rounds)
    .venv/bin/python benchmarks/router.py --quick    # fewer requests

Starts the cheap fake server of ``overhead.py`` (raw asyncio, canned OpenAI
Chat Completions replies) in a separate process, then measures in this one,
on asyncio, through the public API only (``create_llm``, ``agenerate``,
``abatch``):

- **router @100**: requests/s with 100 workers gathered over a fixed number
  of requests, the bare ``openai`` provider against
  ``create_llm("router", models=[that provider])`` (fallback; the same
  provider object, so the same pool) and against a round-robin router over
  two deployments of the same server. Target: router / bare >= 0.95.
- **batch**: 1,000 prompts at concurrency 100, ``llm.abatch(...)`` against
  the hand-written ``asyncio.gather`` over a ``Semaphore(100)``, on the
  same provider. Target: hand-written time / abatch time >= 0.95.

Rounds are interleaved (the clients take turns, the order alternating), each
ratio is taken within a round and the figures are medians over the rounds:
the machine may be loaded, and a ratio of neighbours is steadier than two
absolute rates. The client's CPU time per request (``time.process_time``) is
shown too: on a loaded machine it says what the router costs better than the
wall clock does. Results go to ``benchmarks/results/router-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from overhead import API_KEY, MODEL, serve  # noqa: E402  (the fake server of overhead.py)

TARGETS = {"router": 0.95, "round_robin": 0.95, "batch": 0.95}


async def _rate(call: Callable[[], Awaitable[Any]], total: int, concurrency: int) -> tuple[float, float]:
    """(requests/s, client CPU µs per request) of ``concurrency`` workers sharing ``total`` calls."""
    per_worker, extra = divmod(total, concurrency)

    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(per_worker + (i < extra)) for i in range(concurrency)))
    return total / (time.perf_counter() - start), (time.process_time() - cpu) / total * 1e6


async def _gathered(llm: Any, prompts: list[str], concurrency: int) -> float:
    """Seconds for the hand-written batch: asyncio.gather over a semaphore."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> Any:
        async with semaphore:
            return await llm.agenerate(prompt)

    gc.collect()
    start = time.perf_counter()
    results = await asyncio.gather(*(one(p) for p in prompts))
    elapsed = time.perf_counter() - start
    assert len(results) == len(prompts)
    return elapsed


async def _batched(llm: Any, prompts: list[str], concurrency: int) -> float:
    gc.collect()
    start = time.perf_counter()
    results = await llm.abatch(prompts, concurrency=concurrency, progress=False)
    elapsed = time.perf_counter() - start
    assert len(results) == len(prompts) and not any(isinstance(r, BaseException) for r in results)
    return elapsed


async def run(root: str, rounds: int, total: int, batch_items: int) -> dict[str, Any]:
    from abstractcore import create_llm

    def provider() -> Any:
        return create_llm("openai", model=MODEL, base_url=f"{root}/v1", api_key=API_KEY)

    bare = provider()
    router = create_llm("router", models=[bare])
    pair = create_llm("router", models=[provider(), provider()], strategy="round_robin")
    clients = {"bare": bare, "router": router, "round_robin": pair}
    for llm in clients.values():  # warm up: connections open, caches filled
        await _rate(lambda llm=llm: llm.agenerate("hi"), 300, 100)
    rates: dict[str, list[float]] = {name: [] for name in clients}
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    ratios: dict[str, list[float]] = {"router": [], "round_robin": []}
    cpu_ratios: dict[str, list[float]] = {"router": [], "round_robin": []}
    batch: dict[str, list[float]] = {"gather": [], "abatch": []}
    prompts = [f"prompt {i}" for i in range(batch_items)]
    for index in range(rounds):
        order = list(clients) if index % 2 == 0 else list(reversed(clients))
        got, used = {}, {}
        for name in order:
            llm = clients[name]
            got[name], used[name] = await _rate(lambda llm=llm: llm.agenerate("hi"), total, 100)
            rates[name].append(got[name])
            cpu[name].append(used[name])
        for name in ("router", "round_robin"):
            ratios[name].append(got[name] / got["bare"])
            cpu_ratios[name].append(used["bare"] / used[name])
        pair_order = ("gather", "abatch") if index % 2 == 0 else ("abatch", "gather")
        for name in pair_order:
            measure = _gathered if name == "gather" else _batched
            batch[name].append(await measure(bare, prompts, 100))
        print(
            f"round {index + 1}: bare {got['bare']:,.0f} req/s ({used['bare']:.0f} µs CPU), router "
            f"{got['router']:,.0f} ({ratios['router'][-1]:.3f}x; {used['router']:.0f} µs), round-robin "
            f"{got['round_robin']:,.0f} ({ratios['round_robin'][-1]:.3f}x; {used['round_robin']:.0f} µs); "
            f"batch of {batch_items}: gather {batch['gather'][-1]:.3f}s, "
            f"abatch {batch['abatch'][-1]:.3f}s ({batch['gather'][-1] / batch['abatch'][-1]:.3f}x)",
            flush=True,
        )
    for llm in clients.values():
        await llm.aclose()
    batch_ratios = [g / a for g, a in zip(batch["gather"], batch["abatch"])]
    return {
        "rates": {name: statistics.median(values) for name, values in rates.items()},
        "cpu_us": {name: statistics.median(values) for name, values in cpu.items()},
        "cpu_ratios": {name: statistics.median(values) for name, values in cpu_ratios.items()},
        "ratios": {
            "router": statistics.median(ratios["router"]),
            "round_robin": statistics.median(ratios["round_robin"]),
            "batch": statistics.median(batch_ratios),
        },
        "batch_seconds": {name: statistics.median(values) for name, values in batch.items()},
        "raw": {"rates": rates, "cpu_us": cpu, "router_ratios": ratios, "batch": batch},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (smoke run)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client to separate CPUs")
    parser.add_argument(
        "--json", default=None, help="results file (default benchmarks/results/router-*.json)"
    )
    args = parser.parse_args()
    total, batch_items = (1000, 1000) if args.quick else (2000, 1000)

    pin = not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    server_cpu = None
    if pin:
        cpus = sorted(os.sched_getaffinity(0))
        server_cpu = cpus[-1]
        os.sched_setaffinity(0, {cpus[0]})
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    server = ctx.Process(target=serve, args=(child, 10, server_cpu), daemon=True)
    server.start()
    try:
        if not parent.poll(30):
            raise SystemExit("fake server did not start")
        root = f"http://127.0.0.1:{parent.recv()}"
        print(f"fake server pid {server.pid} at {root}; {args.rounds} rounds of {total} requests", flush=True)
        result = asyncio.run(run(root, max(1, args.rounds), total, batch_items))
    finally:
        server.terminate()
        server.join(5)

    rates, ratios = result["rates"], result["ratios"]
    print()
    print("| measurement | figure | ratio | target |")
    print("|---|---|---|---|")
    print(f"| bare provider @100 | {rates['bare']:,.0f} req/s | 1.000x | |")
    for name, label in (("router", "router (1 deployment)"), ("round_robin", "router (round-robin over 2)")):
        verdict = "ok" if ratios[name] >= TARGETS[name] else "MISSED"
        print(
            f"| {label} @100 | {rates[name]:,.0f} req/s | {ratios[name]:.3f}x | ≥ {TARGETS[name]} {verdict} |"
        )
    seconds = result["batch_seconds"]
    verdict = "ok" if ratios["batch"] >= TARGETS["batch"] else "MISSED"
    print(f"| gather + Semaphore(100), {batch_items} items | {seconds['gather']:.3f} s | 1.000x | |")
    print(
        f"| abatch(concurrency=100), {batch_items} items | {seconds['abatch']:.3f} s | "
        f"{ratios['batch']:.3f}x | ≥ {TARGETS['batch']} {verdict} |"
    )
    out = Path(args.json) if args.json else HERE / "results" / f"router-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"total": total, "rounds": args.rounds, **result}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
