"""Continuous batching of the real SmolLM2-135M GGUF in process (``create_llm("huggingface", parallel=N)``).

Greedy output must not depend on the batch (each sequence has its own KV cells), so every text
produced concurrently is compared with the same prompt generated alone.
"""

from __future__ import annotations

import gc
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from abstractcore import (
    LLM,
    ConfigurationError,
    ContextLengthExceededError,
    GenerateResponse,
    ProviderTimeoutError,
    StreamChunk,
    create_llm,
)
from abstractcore.engines.llamacpp import LlamaCppEngine
from abstractcore.engines.llamacpp_batch import (
    DEFAULT_PARALLEL,
    MIN_SHARED_COPY,
    LlamaCppBatchEngine,
    auto_parallel,
    kv_bytes_per_token,
)

# today's one-at-a-time path (parallel=1), with the tests written for it
from tests.providers.test_llamacpp import (
    test_a_cancelled_agenerate_stops_the_model as test_serial_a_cancelled_agenerate_stops_the_model,
)
from tests.providers.test_llamacpp import (
    test_an_explicit_timeout_stops_a_long_generation_and_the_model_stays_usable as test_serial_timeout,
)
from tests.providers.test_llamacpp import (
    test_closing_an_async_stream_stops_generation as test_serial_closing_an_async_stream_stops_generation,
)
from tests.providers.test_llamacpp import (
    test_concurrent_agenerate_calls_queue_and_all_answer as test_serial_concurrent_calls_queue,
)
from tests.providers.test_llamacpp import (
    test_stream_yields_tokens_then_usage_on_the_last_chunk as test_serial_stream_yields_tokens,
)
from tests.support.local_models import rss_bytes, wait_until

PROMPTS = [
    "Write a haiku about the sea",
    "Explain what a CPU does in two sentences",
    "Give three tips for learning to cook",
    "What is the capital of France?",
    "Write a limerick about a cat",
    "Describe a sunrise in the mountains",
    "List four uses of a paperclip",
    "Why is the sky blue?",
]
LONG = "Write a long story about a dragon who learns to bake bread."
N_CTX = 1024  # per sequence: small, so that the tests' KV cache stays small (8 x 1024 cells)
TOKENS = 24

__all__ = [
    "test_serial_a_cancelled_agenerate_stops_the_model",
    "test_serial_closing_an_async_stream_stops_generation",
    "test_serial_concurrent_calls_queue",
    "test_serial_stream_yields_tokens",
    "test_serial_timeout",
]


@pytest.fixture
def anyio_backend() -> str:
    """asyncio here (the trio path is the same engine: one test covers it)."""
    return "asyncio"


@pytest.fixture(scope="module")
def llm(gguf_path: Path) -> Iterator[LLM]:
    """``parallel=1``: the tests imported from test_llamacpp run on today's path."""
    model = create_llm("huggingface", model=str(gguf_path), max_tokens=16, temperature=0, parallel=1)
    yield model
    model.unload()


@pytest.fixture(scope="module")
def batch(gguf_path: Path) -> Iterator[LLM]:
    model = create_llm(
        "huggingface", model=str(gguf_path), parallel=8, n_ctx=N_CTX, max_tokens=TOKENS, temperature=0
    )
    yield model
    model.unload()


@pytest.fixture(scope="module")
def alone(batch: LLM) -> dict[str, str]:
    """Each prompt's greedy answer, generated one at a time."""
    return {p: batch.generate(p).content for p in [*PROMPTS, LONG]}


def engine_of(llm: LLM) -> LlamaCppBatchEngine:
    engine = llm.provider._engine  # type: ignore[attr-defined]
    assert isinstance(engine, LlamaCppBatchEngine)
    return engine


def idle(llm: LLM, timeout: float = 10) -> bool:
    """True once the model has no request left (waits up to ``timeout`` s)."""
    return wait_until(lambda: not llm.provider.busy, timeout)  # type: ignore[attr-defined]


async def stream_text(llm: LLM, prompt: str, arrivals: list[float] | None = None, **params: Any) -> str:
    """The streamed answer; ``arrivals`` gets the time of each text chunk."""
    parts: list[str] = []
    last: StreamChunk | None = None
    async for chunk in llm.astream(prompt, **params):
        if chunk.content:
            parts.append(chunk.content)
            if arrivals is not None:
                arrivals.append(time.perf_counter())
        last = chunk
    assert last is not None and last.finish_reason in ("stop", "length") and last.usage is not None
    assert last.usage.output_tokens >= len(parts) * 0.8  # about one chunk per token
    return "".join(parts)


async def lags_while(work: Callable[[], Awaitable[Any]]) -> tuple[Any, list[float]]:
    """(``work()``'s result, how late each 1 ms sleep of a ticker woke up, sorted)."""
    lags: list[float] = []
    done = anyio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await anyio.sleep(0.001)
            lags.append(time.perf_counter() - before - 0.001)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        result = await work()
        done.set()
    return result, sorted(lags)


# -- configuration ------------------------------------------------------------------------------


def test_parallel_is_validated_before_any_work() -> None:
    for bad in (0, -2, True, 2.5, "4", 257):
        with pytest.raises(ConfigurationError, match="parallel"):
            create_llm("huggingface", parallel=bad)


def test_parallel_chooses_the_engine(gguf_path: Path) -> None:
    default = create_llm("huggingface", model=str(gguf_path))
    serial = create_llm("huggingface", model=str(gguf_path), parallel=1)
    chosen = default.provider._create_engine()  # type: ignore[attr-defined]
    assert isinstance(chosen, LlamaCppBatchEngine) and chosen.parallel is None  # chosen at load
    chosen.load()
    assert chosen.parallel == DEFAULT_PARALLEL  # SmolLM2: 4 x 90 MiB of KV cache fits the budget
    chosen.unload()
    assert isinstance(serial.provider._create_engine(), LlamaCppEngine)  # type: ignore[attr-defined]


def test_the_automatic_parallel_keeps_the_kv_cache_under_its_budget() -> None:
    def model(layers: int, embd: int, heads: int, kv_heads: int) -> SimpleNamespace:
        return SimpleNamespace(
            llama_model_n_layer=lambda m: layers,
            llama_model_n_embd=lambda m: embd,
            llama_model_n_head=lambda m: heads,
            llama_model_n_head_kv=lambda m: kv_heads,
        )

    smollm2, llama3_8b, llama2_70b = model(30, 576, 9, 3), model(32, 4096, 32, 8), model(80, 8192, 64, 8)
    assert kv_bytes_per_token(smollm2, None) == 23040  # 22.5 KiB a token: 90 MiB per 4,096
    assert auto_parallel(smollm2, None, 4096) == DEFAULT_PARALLEL
    assert auto_parallel(llama3_8b, None, 4096) == 2  # 512 MiB a sequence
    assert auto_parallel(llama3_8b, None, 32768) == 1  # one sequence even over the budget
    assert auto_parallel(llama2_70b, None, 4096) == 1


# -- batching -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_eight_concurrent_streams_each_get_their_own_tokens(batch: LLM, alone: dict[str, str]) -> None:
    arrivals: list[list[float]] = [[] for _ in PROMPTS]
    texts: list[str] = [""] * len(PROMPTS)

    async def one(i: int) -> None:
        texts[i] = await stream_text(batch, PROMPTS[i], arrivals[i])

    async def all_of_them() -> None:
        async with anyio.create_task_group() as tg:
            for i in range(len(PROMPTS)):
                tg.start_soon(one, i)

    _, lags = await lags_while(all_of_them)
    assert texts == [alone[p] for p in PROMPTS]  # in order, and the same as alone
    # decoded together: every stream had started before any of them ended
    assert max(a[0] for a in arrivals) < min(a[-1] for a in arrivals)
    assert lags[int(len(lags) * 0.95)] < 0.005, lags[-20:]  # the event loop kept ticking


@pytest.mark.anyio
async def test_a_cancel_and_a_timeout_leave_the_others_running_and_a_newcomer_is_served(
    batch: LLM, alone: dict[str, str]
) -> None:
    a, b, c, late = PROMPTS[:4]
    texts: dict[str, str] = {}
    arrivals: dict[str, list[float]] = {b: [], late: []}
    timed: list[float] = []

    async def cancelled() -> None:
        async with aclosing(batch.astream(a, max_tokens=400)) as stream:
            async for i, _ in _numbered(stream):
                if i == 2:
                    break  # closes the stream: its sequence is cancelled mid-batch

    async def timed_out() -> None:
        start = time.perf_counter()
        with pytest.raises(ProviderTimeoutError):
            await batch.agenerate(LONG, max_tokens=400, timeout=1.0)
        timed.append(time.perf_counter() - start)

    async def watched(prompt: str) -> None:
        texts[prompt] = await stream_text(batch, prompt, arrivals.get(prompt))

    async with anyio.create_task_group() as tg:
        for job in (cancelled, timed_out):
            tg.start_soon(job)
        for prompt in (b, c):
            tg.start_soon(watched, prompt)
        await anyio.sleep(0.5)
        tg.start_soon(watched, late)  # admitted while the others run
    assert texts == {b: alone[b], c: alone[c], late: alone[late]}
    assert arrivals[late][0] < arrivals[b][-1]  # it joined the running batch
    assert timed and timed[0] < 3
    assert await anyio.to_thread.run_sync(idle, batch)


async def _numbered(chunks: Any) -> Any:
    i = 0
    async for chunk in chunks:
        yield i, chunk
        i += 1


@pytest.mark.anyio
async def test_a_lone_cancel_stops_a_long_prompt_at_once(batch: LLM) -> None:
    prompt = " ".join(f"word{i}" for i in range(200))  # ~800 tokens: ~10 s of prompt processing here
    with anyio.move_on_after(0.5) as scope:
        await batch.agenerate(prompt, max_tokens=4)
    assert scope.cancelled_caught
    start = time.perf_counter()
    assert await anyio.to_thread.run_sync(idle, batch, 5)
    assert time.perf_counter() - start < 1.5  # the step in progress was aborted, not waited for


class Person(BaseModel):
    name: str
    age: int


@pytest.mark.anyio
async def test_structured_output_and_plain_text_in_one_batch(batch: LLM, alone: dict[str, str]) -> None:
    seeded = {"temperature": 0.9, "seed": 7, "max_tokens": 16}
    lone_sample = (await batch.agenerate(LONG, **seeded)).content
    results: dict[str, Any] = {}

    async def person() -> None:
        results["person"] = await batch.agenerate(
            "Ann is 31 years old. Give her name and age.", response_model=Person, max_tokens=48
        )

    async def plain(prompt: str) -> None:
        results[prompt] = await stream_text(batch, prompt)

    async def sample() -> None:
        results["sample"] = (await batch.agenerate(LONG, **seeded)).content

    async with anyio.create_task_group() as tg:
        tg.start_soon(person)
        tg.start_soon(sample)
        for prompt in PROMPTS[4:7]:
            tg.start_soon(plain, prompt)
    assert isinstance(results["person"], Person)
    assert all(results[p] == alone[p] for p in PROMPTS[4:7])
    assert results["sample"] == lone_sample  # a seeded sample does not depend on the batch either


@pytest.mark.anyio
async def test_a_dropped_stream_cancels_its_sequence(batch: LLM) -> None:
    stream = batch.astream(LONG, max_tokens=400)
    async for _ in stream:
        break
    del stream
    gc.collect()
    assert await anyio.to_thread.run_sync(idle, batch, 5)


def test_usage_is_exact_and_a_long_prompt_is_refused_before_any_work(batch: LLM) -> None:
    r = batch.generate(PROMPTS[3], max_tokens=5)
    tokens = engine_of(batch)._scheduler.prompt_tokens(_spec(PROMPTS[3]))  # type: ignore[union-attr]
    assert r.usage is not None and r.usage.input_tokens == len(tokens)
    assert r.usage.output_tokens == 5 and r.finish_reason == "length"
    too_long = " ".join(f"word{i}" for i in range(400))  # ~1,500 tokens
    for call in (lambda: batch.generate(too_long), lambda: list(batch.stream(too_long))):
        start = time.perf_counter()
        with pytest.raises(ContextLengthExceededError) as info:
            call()
        assert time.perf_counter() - start < 5
        assert info.value.context_length == N_CTX and info.value.provider == "huggingface"
        assert info.value.prompt_tokens is not None and info.value.prompt_tokens > N_CTX


def _spec(prompt: str) -> Any:
    from abstractcore.engines.base import GenerationSpec

    return GenerationSpec(messages=[{"role": "user", "content": prompt}])


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_trio_and_asyncio_streams_are_batched_too(
    batch: LLM, alone: dict[str, str], anyio_backend: str
) -> None:
    texts: dict[str, str] = {}

    async def one(prompt: str) -> None:
        texts[prompt] = await stream_text(batch, prompt, max_tokens=12)

    async with anyio.create_task_group() as tg:
        for prompt in PROMPTS[:3]:
            tg.start_soon(one, prompt)
    assert all(alone[p].startswith(texts[p]) for p in PROMPTS[:3])


# -- lifetimes ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_unload_cancels_the_requests_in_flight_and_the_next_call_reloads(
    batch: LLM, alone: dict[str, str]
) -> None:
    finishes: list[str | None] = []

    async def one(prompt: str) -> None:
        last = None
        async for chunk in batch.astream(prompt, max_tokens=400):
            last = chunk
        finishes.append(last.finish_reason if last else None)

    async with anyio.create_task_group() as tg:
        for prompt in PROMPTS[:2]:
            tg.start_soon(one, prompt)
        assert await anyio.to_thread.run_sync(lambda: wait_until(lambda: engine_of(batch).busy, 10))
        await anyio.sleep(0.5)
        start = time.perf_counter()
        await batch.aunload()
        took = time.perf_counter() - start
    assert finishes == ["cancelled", "cancelled"]
    assert not batch.provider.loaded  # type: ignore[attr-defined]
    assert took < 3  # the step in progress is aborted
    assert (await batch.agenerate(PROMPTS[0])).content == alone[PROMPTS[0]]


def _model_threads() -> list[str]:
    """Scheduler threads (one per loaded batch engine) and ModelWorker producer threads."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("abstractcore-"))


@pytest.mark.slow
@pytest.mark.anyio
async def test_stress_fifty_requests_with_random_cancellations(batch: LLM, alone: dict[str, str]) -> None:
    rng = random.Random(12)

    async def one(i: int, limit: anyio.CapacityLimiter, outcomes: list[str]) -> None:
        prompt = PROMPTS[i % len(PROMPTS)]
        kind = rng.choice(["plain", "plain", "stream", "break", "cancel", "timeout", "json"])
        async with limit:
            outcomes.append(await _request(batch, kind, prompt, rng, alone))

    async def round_of(n: int) -> list[str]:
        outcomes: list[str] = []
        limit = anyio.CapacityLimiter(16)
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i, limit, outcomes)
        return outcomes

    await round_of(16)  # warm-up: every code path, the allocator's steady state
    assert await anyio.to_thread.run_sync(idle, batch)
    gc.collect()
    threads, rss = _model_threads(), rss_bytes()
    outcomes = await round_of(50)
    assert len(outcomes) == 50 and set(outcomes) == {"ok", "cancelled"}, outcomes
    assert await anyio.to_thread.run_sync(idle, batch)
    gc.collect()
    stats = engine_of(batch).stats()
    assert stats["pending"] == stats["active"] == 0
    assert stats["kv_tokens"] == stats["cached_tokens"]  # only idle sequences' prefix caches
    assert _model_threads() == threads
    assert abs(rss_bytes() - rss) < 8e6, (rss_bytes() - rss) / 1e6
    assert (await batch.agenerate(PROMPTS[0])).content == alone[PROMPTS[0]]


async def _request(llm: LLM, kind: str, prompt: str, rng: random.Random, alone: dict[str, str]) -> str:
    """One stress request of ``kind``; "ok" when it answered as it must, "cancelled" otherwise."""
    if kind == "break":
        stop_at = rng.randint(0, 6)
        async with aclosing(llm.astream(prompt, max_tokens=64)) as stream:
            async for i, _ in _numbered(stream):
                if i == stop_at:
                    break
        return "cancelled"
    if kind == "cancel":
        with anyio.move_on_after(rng.uniform(0.05, 2.0)):
            r = await llm.agenerate(prompt, max_tokens=rng.choice([8, 64]))
            return "ok" if isinstance(r, GenerateResponse) else "bad"
        return "cancelled"
    if kind == "timeout":
        try:
            await llm.agenerate(prompt, max_tokens=64, timeout=rng.uniform(0.1, 1.5))
        except ProviderTimeoutError:
            return "cancelled"
        return "ok"
    if kind == "json":
        value = await llm.agenerate("Ann is 31 years old. Give her name and age.", response_model=Person)
        return "ok" if isinstance(value, Person) else "bad"
    if kind == "stream":
        return "ok" if await stream_text(llm, prompt) == alone[prompt] else "bad"
    r = await llm.agenerate(prompt)
    assert r.usage is not None and r.usage.output_tokens <= TOKENS
    return "ok" if r.content == alone[prompt] else "bad"


def test_no_crash_at_exit_while_sequences_are_decoding(gguf_path: Path) -> None:
    code = f"""
        import threading, time
        from abstractcore import create_llm
        llm = create_llm("huggingface", model={str(gguf_path)!r}, parallel=2, n_ctx=2048)
        llm.generate("Hi", max_tokens=1)
        prompt = " ".join(f"word{{i}}" for i in range(400))
        for p in (prompt, "Tell a long story."):
            threading.Thread(target=lambda p=p: list(llm.stream(p, max_tokens=500)), daemon=True).start()
        time.sleep(1.5)
        print("exiting", flush=True)
    """
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "exiting"
    assert time.perf_counter() - start < 60


@pytest.mark.anyio
async def test_a_burst_of_requests_is_queued_through_one_thread(batch: LLM) -> None:
    """Eight requests at once are rendered by one submission thread: anyio does not start a thread
    per request (each start stalls the event loop ~1.4 ms)."""
    await batch.agenerate("Warm up", max_tokens=1)

    def workers() -> set[int]:
        return {t.ident or 0 for t in threading.enumerate() if t.name.startswith("AnyIO worker")}

    before = workers()
    async with anyio.create_task_group() as tg:
        for prompt in PROMPTS[:8]:
            tg.start_soon(stream_text, batch, prompt)
    assert len(workers() - before) <= 1


def test_constrained_decoding_raises_no_warning_per_token(batch: LLM) -> None:
    """llguidance's own llama.cpp bridge calls a deprecated function once per vocabulary entry."""
    import warnings

    fresh = create_llm("huggingface", model=str(batch.provider.model), parallel=2, temperature=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        person = fresh.generate("Ann is 31 years old. Give her name and age.", response_model=Person)
    assert isinstance(person, Person)
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]
    fresh.unload()


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_first_burst_decodes_the_prompts_shared_beginning_once(
    gguf_path: Path, alone: dict[str, str]
) -> None:
    # a one-shot script: load, gather once; every prompt starts with the chat template and
    # SmolLM2's default system prompt, which each of the eight sequences decoded for itself
    llm = create_llm(
        "huggingface", model=str(gguf_path), parallel=8, n_ctx=N_CTX, max_tokens=4, temperature=0
    )
    replies: dict[str, GenerateResponse] = {}

    async def one(prompt: str) -> None:
        replies[prompt] = await llm.agenerate(prompt)

    async with anyio.create_task_group() as tg:
        for prompt in PROMPTS:
            tg.start_soon(one, prompt)
    stats = engine_of(llm).stats()
    prompt_tokens = sum(r.usage.input_tokens for r in replies.values() if r.usage is not None)
    # decoded once, copied (KV cells) into the seven other sequences
    assert stats["prompt_tokens_copied"] >= 7 * MIN_SHARED_COPY
    assert stats["prompt_tokens_decoded"] + stats["prompt_tokens_copied"] == prompt_tokens
    for prompt, reply in replies.items():  # the same greedy answers as alone
        assert alone[prompt].startswith(reply.content)
    llm.unload()
