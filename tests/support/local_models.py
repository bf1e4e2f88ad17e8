"""Model files the in-process provider tests build for themselves, and helpers they share."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def build_hf_dir(gguf: Path, out: Path) -> Path:
    """A transformers/MLX model directory (fp16 safetensors + tokenizer) made from ``gguf``.

    A GGUF-loaded model refuses ``save_pretrained``, so the model is rebuilt
    from its config (without ``quantization_config``) and given the weights.
    Built once per test session; later calls return the cached directory.
    """
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(type(loaded.config).from_dict(config), dtype=torch.float16)
    model.load_state_dict(loaded.state_dict())
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    os.replace(partial, out)
    return out


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def rss_bytes() -> int:
    """This process's resident set size."""
    import psutil

    return int(psutil.Process().memory_info().rss)


async def loop_lag_while(work: Callable[[], Awaitable[T]], *, tick: float = 0.005) -> tuple[T, float, float]:
    """Run ``work()`` while a ticker measures the event loop's worst lag.

    Returns (the result, the worst lag in seconds, how long ``work`` took).
    """
    import anyio

    worst = 0.0

    async def ticker() -> None:
        nonlocal worst
        while True:
            before = time.perf_counter()
            await anyio.sleep(tick)
            worst = max(worst, time.perf_counter() - before - tick)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        start = time.perf_counter()
        result = await work()
        took = time.perf_counter() - start
        tg.cancel_scope.cancel()
    return result, worst, took
