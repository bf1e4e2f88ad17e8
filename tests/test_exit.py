"""The interpreter exits promptly and cleanly while a stream left early is still referenced.

Each case is a child process (``sys.executable``) that reads a few chunks of a long stream,
stops reading, keeps the stream (in a local, a global, a list, or a local of a thread still
running at exit), makes one more call and ends. It must exit within ``EXIT_SECONDS`` of its
last line with status 0 and nothing on stderr that points at the package. A regression fails
here instead of hanging the suite: the child is killed after the time limit.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from typing import IO

import pytest

from tests.servers.openai_fake import KEY, FakeOpenAI, Fault

#: The issue's bound: exit within 5 s of the script's end.
EXIT_SECONDS = 5.0
#: Time to import, load the model and read the first chunks before the script's last line.
START_SECONDS = 120.0

SYNC_HOLDERS = {
    "local": """
        def use():
            s = llm.stream(PROMPT, max_tokens=200)
            read_three(iter(s))
            print(llm.generate("hi", max_tokens=8).content is not None, flush=True)
        use()
    """,
    "global": """
        s = llm.stream(PROMPT, max_tokens=200)
        read_three(iter(s))
        print(llm.generate("hi", max_tokens=8).content is not None, flush=True)
    """,
    "list": """
        held = [llm.stream(PROMPT, max_tokens=200)]
        read_three(iter(held[0]))
        print(llm.generate("hi", max_tokens=8).content is not None, flush=True)
    """,
    "thread": """
        import threading
        ready = threading.Event()
        def hold():
            s = llm.stream(PROMPT, max_tokens=200)
            read_three(iter(s))
            ready.set()
            threading.Event().wait()  # still holding s when the interpreter exits
        threading.Thread(target=hold, daemon=True).start()
        ready.wait()
        print(llm.generate("hi", max_tokens=8).content is not None, flush=True)
    """,
}

ASYNC_HOLDERS = {
    "local": """
        async def main():
            s = llm.astream(PROMPT, max_tokens=200)
            await read_three(s)
            print((await llm.agenerate("hi", max_tokens=8)).content is not None, flush=True)
        asyncio.run(main())
    """,
    "global": """
        async def main():
            global s
            s = llm.astream(PROMPT, max_tokens=200)
            await read_three(s)
            print((await llm.agenerate("hi", max_tokens=8)).content is not None, flush=True)
        asyncio.run(main())
    """,
    "list": """
        held = []
        async def main():
            held.append(llm.astream(PROMPT, max_tokens=200))
            await read_three(held[0])
            print((await llm.agenerate("hi", max_tokens=8)).content is not None, flush=True)
        asyncio.run(main())
    """,
}

PRELUDE = """
    import asyncio
    from abstractcore import create_llm
    PROMPT = "Write a long story"
    llm = {make}

    def read_three(it):
        for _ in range(3):
            next(it)

    async def read_three_async(it):
        for _ in range(3):
            await it.__anext__()
"""


def script(make: str, body: str, is_async: bool) -> str:
    prelude = textwrap.dedent(PRELUDE).format(make=make)
    if is_async:
        prelude += "read_three = read_three_async\n"
    return prelude + textwrap.dedent(body) + 'print("end", flush=True)\n'


def exits_promptly(code: str) -> None:
    """Run ``code``; it must print "end", then exit within ``EXIT_SECONDS`` with status 0."""
    with tempfile.TemporaryFile("w+") as stderr:  # a file, not a pipe: nothing blocks on it
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=stderr)
        assert proc.stdout is not None
        try:
            lines = _lines_until_end(proc.stdout, time.monotonic() + START_SECONDS)
            ended = time.monotonic()
            try:
                proc.wait(timeout=EXIT_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                stderr.seek(0)
                pytest.fail(f"still running {EXIT_SECONDS} s after its end:\n{stderr.read()[-3000:]}")
            waited = time.monotonic() - ended
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        stderr.seek(0)
        err = stderr.read()
    assert lines == ["True", "end"], (lines, err[-3000:])
    assert proc.returncode == 0, (proc.returncode, err[-3000:])
    assert waited < EXIT_SECONDS
    for noise in ("Traceback", "Exception ignored", "Task was destroyed", "Unclosed"):
        assert noise not in err, err[-3000:]


def _lines_until_end(stdout: IO[bytes], deadline: float) -> list[str]:
    """The lines the child printed, up to "end" (or its exit), read straight from the pipe."""
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while b"end\n" not in data:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the script did not reach its end in {START_SECONDS} s: {data!r}"
            if not selector.select(remaining):
                continue
            chunk = os.read(stdout.fileno(), 65536)  # unbuffered: select() sees every byte
            if not chunk:
                break  # exited early: the asserts on lines and status say why
            data += chunk
    return data.decode(errors="replace").splitlines()


@pytest.fixture
def slow_stream_server(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The fake OpenAI server whose next stream sends a word every 0.5 s (still running at exit)."""
    fake.script.append(Fault("delay_stream", seconds=0.5))
    yield fake


def http_llm(fake: FakeOpenAI) -> str:
    return f"create_llm('openai', model='gpt-fake', base_url={fake.base_url!r}, api_key={KEY!r})"


@pytest.mark.parametrize("holder", sorted(SYNC_HOLDERS))
def test_a_held_sync_stream_over_http_does_not_hold_the_exit(
    slow_stream_server: FakeOpenAI, holder: str
) -> None:
    exits_promptly(script(http_llm(slow_stream_server), SYNC_HOLDERS[holder], is_async=False))


@pytest.mark.parametrize("holder", sorted(ASYNC_HOLDERS))
def test_a_held_async_stream_over_http_does_not_hold_the_exit(
    slow_stream_server: FakeOpenAI, holder: str
) -> None:
    exits_promptly(script(http_llm(slow_stream_server), ASYNC_HOLDERS[holder], is_async=True))


IN_PROCESS = "create_llm('huggingface', temperature=0)"


@pytest.mark.slow
@pytest.mark.parametrize("holder", sorted(SYNC_HOLDERS))
def test_a_held_sync_stream_in_process_does_not_hold_the_exit(holder: str) -> None:
    exits_promptly(script(IN_PROCESS, SYNC_HOLDERS[holder], is_async=False))


@pytest.mark.slow
@pytest.mark.parametrize("holder", sorted(ASYNC_HOLDERS))
def test_a_held_async_stream_in_process_does_not_hold_the_exit(holder: str) -> None:
    exits_promptly(script(IN_PROCESS, ASYNC_HOLDERS[holder], is_async=True))
