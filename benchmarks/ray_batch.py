"""Rows per second of the Ray Data stage with 1 and 2 actors against the in-process ``abatch``,
on the same two llama.cpp C++ servers (SmolLM2-135M, ``-np 2`` each) behind a round-robin router.

Interleaved rounds (abatch, Ray x1, Ray x2, then again), median of ``--rounds``; each Ray run is a
new Dataset, so its figure includes starting the actor pool (what a job pays once). In flight:
``abatch`` 8 calls, each actor ``--in-flight`` (default 4: two actors match ``abatch``'s 8).

    PYTHONPATH=src python benchmarks/ray_batch.py [--rows 120] [--rounds 3] [--tokens 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import ray

from abstractcore import create_llm
from abstractcore.integrations.ray import LLMProcessorConfig, build_llm_processor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from tests.support.cpp_llama_server import cpp_llama_server  # noqa: E402

from local_models import gguf_path  # noqa: E402


def _router_kwargs(urls: list[str]) -> dict[str, Any]:
    models = [
        {"provider": "openai-compatible", "base_url": u, "model": "smollm2", "name": f"s{i}"}
        for i, u in enumerate(urls)
    ]
    return {"models": models, "strategy": "round_robin"}


def _prompts(n: int, tag: str) -> list[str]:
    return [f"[{tag}] Write a word about the number {i}." for i in range(n)]  # tagged: no prompt cache hits


def in_process(urls: list[str], n: int, tokens: int, tag: str) -> float:
    llm = create_llm("router", **_router_kwargs(urls))
    start = time.perf_counter()
    results = llm.batch(_prompts(n, tag), concurrency=8, max_tokens=tokens, progress=False)
    elapsed = time.perf_counter() - start
    llm.unload()
    assert not [r for r in results if isinstance(r, Exception)], results
    return n / elapsed


def with_ray(urls: list[str], n: int, tokens: int, actors: int, in_flight: int, tag: str) -> float:
    config = LLMProcessorConfig(
        provider="router",
        llm_kwargs=_router_kwargs(urls),
        generate_kwargs={"max_tokens": tokens},
        concurrency=actors,
        batch_size=max(1, n // (actors * 4)),
        max_in_flight=in_flight,
        num_cpus=0.5,
    )
    ds = ray.data.from_items([{"id": i, "prompt": p} for i, p in enumerate(_prompts(n, tag))])
    start = time.perf_counter()
    rows = build_llm_processor(config)(ds).take_all()
    elapsed = time.perf_counter() - start
    assert len(rows) == n and not [r for r in rows if r["error_type"]], [r for r in rows if r["error_type"]][
        :3
    ]
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=4)
    args = parser.parse_args()
    with ExitStack() as stack:
        urls = [stack.enter_context(cpp_llama_server(gguf_path(), parallel=2)) for _ in range(2)]
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        stack.callback(ray.shutdown)
        ray.data.DataContext.get_current().enable_progress_bars = False
        figures: dict[str, list[float]] = {"abatch (in process)": [], "ray, 1 actor": [], "ray, 2 actors": []}
        for r in range(args.rounds):
            figures["abatch (in process)"].append(in_process(urls, args.rows, args.tokens, f"a{r}"))
            figures["ray, 1 actor"].append(
                with_ray(urls, args.rows, args.tokens, 1, args.in_flight, f"r1{r}")
            )
            figures["ray, 2 actors"].append(
                with_ray(urls, args.rows, args.tokens, 2, args.in_flight, f"r2{r}")
            )
        base = statistics.median(figures["abatch (in process)"])
        print(f"{args.rows} rows x {args.tokens} tokens, median of {args.rounds} interleaved rounds")
        for name, values in figures.items():
            med = statistics.median(values)
            runs = ", ".join(f"{v:.1f}" for v in values)
            print(f"  {name:22s} {med:6.1f} rows/s  ({med / base:.2f}x abatch; runs {runs})")


if __name__ == "__main__":
    main()
