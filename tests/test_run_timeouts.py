"""Nothing in the tool loop hangs: ``tool_timeout=`` bounds each tool call, ``run_timeout=`` the
whole run, and a blocking tool abandoned by a cancelled run does not hold the interpreter's exit.

The model is the embedded SmolLM2 in process; ``tool_choice="hang"`` forces its first turn to
call the tool (grammar-constrained), so every run below reaches the tool.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from abstractcore import (
    LLM,
    ConfigurationError,
    RunTimeoutError,
    ToolLoopError,
    create_llm,
)
from tests.servers.openai_fake import KEY, FakeOpenAI

#: Released at the end of the module, so the threads of abandoned blocking tools end too.
release = threading.Event()
started = threading.Event()
#: Time for the model's forced call (load, prompt, a few grammar-constrained tokens) on a busy CPU.
MODEL_SECONDS = 60


def hang(seconds: int) -> str:
    """Waits for the given number of seconds.

    Args:
        seconds: how long to wait
    """
    started.set()
    release.wait(3600)
    return "finally done"


async def ahang(seconds: int) -> str:
    """Waits for the given number of seconds.

    Args:
        seconds: how long to wait
    """
    started.set()
    await anyio.sleep(3600)
    return "finally done"


@pytest.fixture(scope="module")
def llm(gguf_path: Path) -> Iterator[LLM]:
    model = create_llm("huggingface", model=str(gguf_path), temperature=0, max_tokens=24)
    model.generate("Hi", max_tokens=1)  # loaded: the timings below are the loop's, not the load's
    yield model
    release.set()
    model.unload()


@pytest.fixture(scope="module")
def deadline(llm: LLM) -> float:
    """A ``run_timeout`` that leaves the model's forced call time to finish, so the deadline falls
    inside the tool: four times what that call took here, 3 s at least (at most MODEL_SECONDS / 2).
    A fixed 30 s made each of the two tests below wait 30 s."""
    begin = time.monotonic()
    llm.generate("Wait an hour, please.", tools=[hang], tool_choice="hang")
    return min(MODEL_SECONDS / 2, max(3.0, 4 * (time.monotonic() - begin)))


@pytest.fixture(autouse=True)
def _not_started() -> None:
    started.clear()


def timed(fn: Any) -> tuple[Any, float]:
    begin = time.monotonic()
    try:
        return fn(), time.monotonic() - begin
    except ToolLoopError as error:  # max_turns reached: what ran is on the error
        return error, time.monotonic() - begin


def first_execution(outcome: Any) -> Any:
    return outcome.steps[0].executions[0]


@pytest.mark.slow
def test_a_blocking_tool_that_hangs_becomes_an_error_result_after_tool_timeout(llm: LLM) -> None:
    outcome, seconds = timed(
        lambda: llm.run(
            "Wait an hour, please.",
            tools=[hang],
            tool_choice="hang",
            timeout=MODEL_SECONDS,
            tool_timeout=1,
            max_turns=2,
        )
    )
    assert started.is_set()
    execution = first_execution(outcome)
    assert not execution.ok and "tool_timeout=1 s" in str(execution.error)
    assert 1 <= execution.seconds < 3
    assert execution.as_message().content.startswith("Error: The tool 'hang' timed out")  # the model sees it
    assert seconds < 1 + 2 * MODEL_SECONDS


@pytest.mark.slow
@pytest.mark.anyio
async def test_an_async_tool_that_hangs_becomes_an_error_result_after_tool_timeout(llm: LLM) -> None:
    begin = time.monotonic()
    try:
        outcome: Any = await llm.arun(
            "Wait an hour, please.",
            tools=[ahang],
            tool_choice="ahang",
            timeout=MODEL_SECONDS,
            tool_timeout=1,
            max_turns=2,
        )
    except ToolLoopError as error:
        outcome = error
    assert started.is_set()
    execution = first_execution(outcome)
    assert not execution.ok and "tool_timeout=1 s" in str(execution.error)
    assert time.monotonic() - begin < 1 + 2 * MODEL_SECONDS


@pytest.mark.slow
def test_run_timeout_bounds_the_whole_run_with_a_typed_error(llm: LLM, deadline: float) -> None:
    begin = time.monotonic()
    with pytest.raises(RunTimeoutError) as info:
        llm.run("Wait an hour, please.", tools=[hang], tool_choice="hang", run_timeout=deadline)
    seconds = time.monotonic() - begin
    assert started.is_set(), "the deadline should have cut the run inside the tool"
    assert deadline <= seconds < deadline + 2
    error = info.value
    assert isinstance(error, ToolLoopError) and f"run_timeout={deadline:g} s" in str(error)
    assert [m.role for m in error.messages] == ["user", "assistant"]  # the call that hung is there
    assert error.messages[1].tool_calls[0].name == "hang"


@pytest.mark.slow
def test_run_timeout_bounds_the_streaming_loop_too(llm: LLM, deadline: float) -> None:
    kinds: list[str] = []
    begin = time.monotonic()
    with pytest.raises(RunTimeoutError):
        for event in llm.stream_run(
            "Wait an hour, please.", tools=[hang], tool_choice="hang", run_timeout=deadline
        ):
            kinds.append(event.kind)
    assert deadline <= time.monotonic() - begin < deadline + 2
    assert started.is_set() and kinds[-1] == "tool_call"


@pytest.mark.slow
def test_a_session_applies_tool_timeout_to_its_turns(llm: LLM) -> None:
    chat = llm.session(tools=[hang], tool_timeout=1, max_turns=2, timeout=MODEL_SECONDS)
    outcome, _ = timed(lambda: chat.send("Wait an hour, please.", tool_choice="hang"))
    assert started.is_set()
    assert "tool_timeout=1 s" in str(first_execution(outcome).error)


@pytest.mark.parametrize(
    ("name", "value"),
    [("tool_timeout", 0), ("tool_timeout", -1), ("run_timeout", "5"), ("run_timeout", True)],
)
def test_a_bad_timeout_is_a_configuration_error_before_anything_is_sent(
    fake: FakeOpenAI, name: str, value: Any
) -> None:
    llm = create_llm("openai", model="gpt-fake", base_url=fake.base_url, api_key=KEY)
    with pytest.raises(ConfigurationError, match=name):
        llm.run("Hi", tools=[hang], **{name: value})
    assert fake.requests == []


@pytest.mark.slow
def test_a_run_cancelled_during_a_blocking_tool_does_not_hold_the_exit(gguf_path: Path) -> None:
    # The case: asyncio.wait_for cancels the run while a blocking tool sleeps; the run
    # returned at once but the process exited only when the tool's thread ended.
    code = textwrap.dedent(f"""
        import asyncio, threading, time
        from abstractcore import create_llm

        started = threading.Event()

        def hang(seconds: int) -> str:
            \"\"\"Waits for the given number of seconds.\"\"\"
            started.set()
            time.sleep(300)
            return "done"

        llm = create_llm("huggingface", model={str(gguf_path)!r}, temperature=0, max_tokens=24)

        async def main():
            run = asyncio.ensure_future(llm.arun("Wait.", tools=[hang], tool_choice="hang"))
            while not started.is_set() and not run.done():
                await asyncio.sleep(0.05)
            print("tool started" if started.is_set() else "no call", flush=True)
            try:
                await asyncio.wait_for(run, 1)
            except asyncio.TimeoutError:
                print("cancelled", flush=True)

        asyncio.run(main())
        print("end", flush=True)
    """)
    result = subprocess.run(  # the tool sleeps 300 s: waiting for its thread fails here
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=MODEL_SECONDS + 30
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == ["tool started", "cancelled", "end"], result.stderr[-3000:]
