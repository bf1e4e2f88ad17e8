"""Batch jobs (``llm.batch`` / ``await llm.abatch``) over the fake OpenAI server, a router and an
in-process model; the progress bar only on a terminal (a child process under a pseudo-terminal)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from abstractcore import (
    LLM,
    BatchError,
    ConfigurationError,
    GenerateResponse,
    RetryConfig,
    StructuredOutputError,
    create_llm,
)
from abstractcore.batch import abatch
from abstractcore.features.request import Request, pipeline_of
from tests.servers.openai_fake import KEY, FakeOpenAI, Fault

FAST = RetryConfig(max_attempts=1)
FAILING = {3, 11, 26, 27, 49}


class Person(BaseModel):
    name: str
    age: int


def make(fake: FakeOpenAI, **config: Any) -> LLM:
    return create_llm(
        "openai-compatible",
        model="gpt-fake",
        base_url=fake.base_url,
        api_key=KEY,
        retry_config=FAST,
        **config,
    )


def items_with_failures() -> list[Any]:
    """50 prompts; 5 of them ask for a Person, which the echoed prompt is not: they fail."""
    return [
        {"prompt": f"item {i}", "response_model": Person, "max_retries": 0} if i in FAILING else f"item {i}"
        for i in range(50)
    ]


def check_in_order(results: list[Any]) -> None:
    assert len(results) == 50
    for i, result in enumerate(results):
        if i in FAILING:
            assert isinstance(result, StructuredOutputError) and result.raw == f"item {i}"
        else:
            assert isinstance(result, GenerateResponse) and result.content == f"item {i}"


def test_a_batch_of_50_with_5_failures_keeps_every_result_in_order(fake: FakeOpenAI) -> None:
    fake.script.extend([Fault("echo")] * 50)
    llm = make(fake)
    check_in_order(llm.batch(items_with_failures(), concurrency=8))
    assert len(fake.requests) == 50
    llm.close()


@pytest.mark.anyio
async def test_abatch_on_both_loops(fake: FakeOpenAI) -> None:
    fake.script.extend([Fault("echo")] * 50)
    async with make(fake) as llm:
        check_in_order(await llm.abatch(items_with_failures(), concurrency=16))


def test_the_first_failure_stops_the_batch_and_carries_the_finished_results(fake: FakeOpenAI) -> None:
    fake.script.extend([Fault("echo")] * 10)
    llm = make(fake)
    items: list[Any] = [f"item {i}" for i in range(10)]
    items[3] = {"prompt": "item 3", "response_model": Person, "max_retries": 0}
    with pytest.raises(BatchError) as caught:
        llm.batch(items, concurrency=1, return_exceptions=False)
    error = caught.value
    assert error.index == 3 and isinstance(error.__cause__, StructuredOutputError)
    assert [r.content for r in error.results[:3]] == ["item 0", "item 1", "item 2"]
    assert error.results[3:] == [None] * 7
    assert len(fake.requests) == 4  # nothing started after the failure
    llm.close()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_concurrency_is_bounded(fake: FakeOpenAI) -> None:
    fake.script.extend([Fault("delay", seconds=0.05)] * 20)
    llm = make(fake)

    class Counting:
        """The real model's pipeline, counting the calls in flight."""

        now = peak = 0

        async def _send(self, request: Request) -> Any:
            self.now += 1
            self.peak = max(self.peak, self.now)
            try:
                return await pipeline_of(llm)._send(request)
            finally:
                self.now -= 1

        def _send_stream(self, request: Request) -> Any:
            raise AssertionError("a batch collects whole answers")

    counting = Counting()
    results = await abatch(counting, [f"item {i}" for i in range(20)], concurrency=4, progress=False)
    assert counting.peak == 4 and all(isinstance(r, GenerateResponse) for r in results)
    await llm.aclose()


def test_defaults_per_batch_and_per_item(fake: FakeOpenAI) -> None:
    llm = make(fake)
    llm.batch(
        ["a", {"prompt": "b", "max_tokens": 7}, {"messages": [{"role": "user", "content": "c"}]}],
        max_tokens=5,
    )
    sent = sorted((r["body"]["messages"][-1]["content"], r["body"]["max_tokens"]) for r in fake.requests)
    assert sent == [("a", 5), ("b", 7), ("c", 5)]
    assert llm.batch([]) == []
    llm.close()


@pytest.mark.parametrize(
    ("items", "options", "message"),
    [
        ("one prompt", {}, "list of prompts"),
        (["a", 3], {}, "items[1] is a int"),
        ([{"prompt": "a", "stream": True}], {}, "remove 'stream'"),
        (["a"], {"stream": True}, "stream= is not accepted"),
        (["a"], {"concurrency": 0}, "concurrency must be"),
    ],
)
def test_bad_batches_fail_before_anything_is_sent(
    fake: FakeOpenAI, items: Any, options: dict[str, Any], message: str
) -> None:
    llm = make(fake)
    with pytest.raises(ConfigurationError) as caught:
        llm.batch(items, **options)
    assert message in str(caught.value)
    assert fake.requests == []
    llm.close()


def test_a_batch_over_a_router_and_over_an_in_process_model(fake: FakeOpenAI, gguf_path: Path) -> None:
    fake.script.extend([Fault("echo")] * 10)
    router = create_llm(
        "router",
        models=[
            ("openai-compatible", {"base_url": "http://127.0.0.1:9/v1", "model": "m", "retry_config": FAST}),
            ("openai-compatible", {"base_url": fake.base_url, "model": "gpt-fake", "api_key": KEY}),
        ],
    )
    results = router.batch([f"item {i}" for i in range(10)], concurrency=5)
    assert [r.content for r in results] == [f"item {i}" for i in range(10)]
    assert all(r.attempts[-1].outcome == "ok" for r in results)
    router.close()
    local = create_llm("huggingface", model=str(gguf_path), max_tokens=3, temperature=0)
    answers = local.batch(["Hello", "Paris is", "One, two,"], concurrency=2)
    assert all(isinstance(a, GenerateResponse) and a.usage and a.usage.output_tokens > 0 for a in answers)
    local.unload()


# -- the progress bar: on a terminal only -----------------------------------------------------------

CHILD = """
import sys
from abstractcore import RetryConfig, create_llm
llm = create_llm("openai-compatible", model="gpt-fake", base_url=sys.argv[1], api_key=sys.argv[2],
                 retry_config=RetryConfig(max_attempts=1))
progress = {"auto": None, "on": True, "off": False}[sys.argv[3]]
results = llm.batch([f"item {i}" for i in range(20)], concurrency=4, progress=progress)
print("finished", len(results))
"""


def run_child(fake: FakeOpenAI, mode: str, *, terminal: bool, sized: bool = True) -> tuple[str, str]:
    """(stdout, stderr) of the child; on a terminal both are the terminal (returned as stdout)."""
    args = [sys.executable, "-c", CHILD, fake.base_url, KEY, mode]
    env = dict(os.environ)
    if not terminal:
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env, check=True)
        return done.stdout, done.stderr
    main, secondary = pty.openpty()
    if sized:
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100x24 terminal
    child = subprocess.Popen(args, stdin=secondary, stdout=secondary, stderr=secondary, env=env)
    os.close(secondary)
    out = bytearray()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:  # until EIO: the child exited and closed the terminal
            ready, _, _ = select.select([main], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(main, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
    finally:
        os.close(main)
        assert child.wait(timeout=30) == 0, out.decode(errors="replace")
    return out.decode(errors="replace"), ""


def test_the_progress_bar_shows_on_a_terminal_only(fake: FakeOpenAI) -> None:
    on_terminal, _ = run_child(fake, "auto", terminal=True)
    assert "finished 20" in on_terminal
    assert "batch" in on_terminal and "20/20" in on_terminal
    out, err = run_child(fake, "auto", terminal=False)
    assert out.strip() == "finished 20" and err == ""
    forced, _ = run_child(fake, "off", terminal=True)
    assert "20/20" not in forced and "finished 20" in forced
    _, err = run_child(fake, "on", terminal=False)
    assert "20/20" in err


def test_the_bar_shows_on_a_terminal_that_reports_no_size(fake: FakeOpenAI) -> None:
    """Some containers' terminals say 0x0; tqdm would then hide the bar entirely."""
    on_terminal, _ = run_child(fake, "auto", terminal=True, sized=False)
    assert "20/20" in on_terminal and "finished 20" in on_terminal


def test_the_sync_twin_is_generated() -> None:
    assert LLM.batch.__doc__ == LLM.abatch.__doc__
