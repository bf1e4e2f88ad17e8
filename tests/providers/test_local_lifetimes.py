"""In-process models the way users actually hold them: streams left in variables, timeouts,
long prompts, output printed while a model loads, exit right after a cancelled call.

Every test runs the real SmolLM2-135M GGUF through llama.cpp (the embedded default model).
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import anyio
import pytest

from abstractcore import LLM, ContextLengthExceededError, ProviderTimeoutError, create_llm
from tests.support.local_models import wait_until
from tests.support.signals import as_from_a_terminal

pytestmark = pytest.mark.slow  # the real model or a server process throughout

LONG = "Write a long story about a dragon who learns to bake bread."
#: About 3,800 prompt tokens for SmolLM2's tokenizer (measured), within a 4,096 context.
LONG_PROMPT = " ".join(f"word{i}" for i in range(900))
#: About 8,300 tokens: more than the context holds.
TOO_LONG_PROMPT = " ".join(f"word{i}" for i in range(2000))


@pytest.fixture
def llm(gguf_path: Path) -> LLM:
    model = create_llm("huggingface", model=str(gguf_path), max_tokens=16, temperature=0)
    yield model
    model.unload()


def finishes_within(seconds: float, fn: object) -> object:
    """Run ``fn()`` in a thread; fail (instead of hanging the suite) if it takes longer."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)  # type: ignore[operator]
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s: the model is held"
    return result[0]


def test_a_sync_stream_left_in_a_variable_does_not_hold_the_model(llm: LLM) -> None:
    stream = llm.stream(LONG, max_tokens=120)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    answer = finishes_within(60, lambda: llm.generate("Say hi."))
    assert answer.content.strip()  # type: ignore[attr-defined]
    del stream


def test_a_dropped_sync_stream_stops_its_generation_when_collected(llm: LLM) -> None:
    stream = llm.stream(LONG, max_tokens=3000)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    del stream
    gc.collect()
    assert wait_until(lambda: not llm.provider.busy, 10)  # long before 3,000 tokens


@pytest.mark.anyio
async def test_an_async_stream_left_in_a_variable_does_not_hold_the_model(llm: LLM) -> None:
    stream = llm.astream(LONG, max_tokens=120)
    async for _ in stream:
        break
    with anyio.fail_after(60):
        answer = await llm.agenerate("Say hi.")
    assert answer.content.strip()
    await stream.aclose()  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_dropped_async_stream_stops_its_generation(llm: LLM) -> None:
    stream = llm.astream(LONG, max_tokens=3000)
    async for _ in stream:
        break
    del stream
    gc.collect()
    assert await anyio.to_thread.run_sync(wait_until, lambda: not llm.provider.busy, 10)


def test_a_timeout_also_stops_the_prompt_processing(llm: LLM) -> None:
    llm.generate("Warm up.", max_tokens=1)
    start = time.perf_counter()
    with pytest.raises(ProviderTimeoutError):
        llm.generate(LONG_PROMPT, timeout=1, max_tokens=4)
    assert time.perf_counter() - start < 3
    # the prompt (~4,000 tokens, ~20 s of work here) was abandoned within a chunk
    assert wait_until(lambda: not llm.provider.busy, 5)
    answer = finishes_within(30, lambda: llm.generate("Say hi.", max_tokens=4))
    assert answer.content.strip()  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_cancelled_call_also_stops_the_prompt_processing(llm: LLM) -> None:
    await llm.agenerate("Warm up.", max_tokens=1)
    with anyio.move_on_after(0.5) as scope:
        await llm.agenerate(LONG_PROMPT, max_tokens=4)
    assert scope.cancelled_caught
    assert await anyio.to_thread.run_sync(wait_until, lambda: not llm.provider.busy, 5)


def test_a_prompt_longer_than_the_context_is_context_length_exceeded(llm: LLM) -> None:
    for call in (lambda: llm.generate(TOO_LONG_PROMPT), lambda: list(llm.stream(TOO_LONG_PROMPT))):
        start = time.perf_counter()
        with pytest.raises(ContextLengthExceededError) as info:
            call()
        assert time.perf_counter() - start < 5  # before any prompt processing
        error = info.value
        assert error.provider == "huggingface" and error.model == llm.model
        assert error.context_length == 4096
        assert error.prompt_tokens is not None and error.prompt_tokens > 4096
        assert "4096" in str(error) and str(error.prompt_tokens) in str(error)  # type: ignore[attr-defined]


def _python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )


def test_output_printed_while_models_load_is_never_lost(gguf_path: Path) -> None:
    result = _python(f"""
        import logging, sys, threading, time
        from abstractcore import create_llm
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(message)s")
        def printer():
            for i in range(200):
                print(f"line {{i}}", flush=True)
                time.sleep(0.002)
        llms = [create_llm("huggingface", model={str(gguf_path)!r}, n_ctx=512 + 256 * k, max_tokens=1)
                for k in range(2)]
        t = threading.Thread(target=printer)
        loads = [threading.Thread(target=m.generate, args=("Hi",)) for m in llms]
        t.start()
        for load in loads: load.start()
        for thread in (t, *loads): thread.join()
        print("after", flush=True)
        print("stderr after", file=sys.stderr, flush=True)
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("line ")] == [f"line {i}" for i in range(200)]
    assert lines[-1] == "after"
    assert "stderr after" in result.stderr.splitlines()
    # llama.cpp's own log went to the logging module, not to the file descriptors
    assert "abstractcore.llamacpp" in result.stderr


def test_no_crash_at_exit_right_after_a_timed_out_call() -> None:
    code = f"""
        from abstractcore import create_llm, ProviderTimeoutError
        llm = create_llm("huggingface", max_tokens=2000)
        llm.generate("Hi", max_tokens=1)
        try:
            llm.generate({LONG_PROMPT!r}, timeout=0.5)
        except ProviderTimeoutError:
            print("timed out", flush=True)
    """
    for _ in range(3):
        result = _python(code)
        assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
        assert result.stdout.strip() == "timed out"


def test_ctrl_c_in_the_command_exits_cleanly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "abstractcore.cli", "--max-tokens", "500", LONG],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=as_from_a_terminal,
    )
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), True)
    first = proc.stdout.read(1)  # the answer has started streaming
    assert first
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err.decode(errors="replace")[-2000:])
    assert b"interrupted" in err and b"Traceback" not in err
