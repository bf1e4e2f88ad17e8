"""Ctrl-C the way a user presses it: once, or again and again while the process exits.

Each case is a child process interrupted with SIGINT (``os.kill``) once it has started
answering. A script must die of SIGINT like any Python script (status 130 in a shell), print
only its own ``KeyboardInterrupt`` traceback and nothing from the package after it; the
``abstractcore`` command must print ``abstractcore: interrupted`` and nothing else and exit with
status 130. Every child is killed after a time limit: a hang fails instead of hanging the suite.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.servers.openai_fake import KEY, FakeOpenAI, Fault
from tests.support.llama_server import free_port
from tests.support.signals import as_from_a_terminal

#: Time for the child to import, load the model and start answering.
START_SECONDS = 120.0
#: Time for the child to exit once interrupted.
EXIT_SECONDS = 20.0
LONG = "Write a long story about a dragon who learns to bake bread."
#: How the "impatient user" presses Ctrl-C again: every 10 ms until the process has gone.
BURST_GAP = 0.01


@dataclass
class Outcome:
    returncode: int
    stderr: str

    def after_the_first_interrupt(self) -> str:
        """stderr after the script's own ``KeyboardInterrupt`` traceback."""
        _, sep, tail = self.stderr.partition("\nKeyboardInterrupt\n")
        assert sep, f"no KeyboardInterrupt traceback:\n{self.stderr[-3000:]}"
        return tail


def interrupt(
    args: list[str], *, started: bytes = b"", again: bool, ready: Callable[[], bool] | None = None
) -> Outcome:
    """Run ``python args``; once ``started`` is on its stdout (or ``ready()`` is true), send SIGINT
    (then, with ``again``, every ``BURST_GAP`` s until it exits); return its status and stderr."""
    with tempfile.TemporaryFile() as stderr:  # a file: the child never blocks on it
        proc = subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, stderr=stderr, preexec_fn=as_from_a_terminal
        )
        assert proc.stdout is not None
        try:
            if ready is None:
                _wait_for(proc, started)
            else:
                _poll(proc, ready)
            proc.send_signal(signal.SIGINT)
            deadline = time.monotonic() + EXIT_SECONDS
            while proc.poll() is None and time.monotonic() < deadline:
                if again:
                    time.sleep(BURST_GAP)
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGINT)
                else:
                    time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                stderr.seek(0)
                pytest.fail(f"still running {EXIT_SECONDS} s after Ctrl-C:\n{stderr.read().decode()[-3000:]}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        stderr.seek(0)
        return Outcome(proc.returncode, stderr.read().decode(errors="replace"))


def _wait_for(proc: subprocess.Popen[bytes], marker: bytes) -> None:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + START_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while not seen or marker not in seen:  # b"": any output
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"the child did not start answering in {START_SECONDS} s: {seen[-500:]!r}"
            if selector.select(remaining):
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, f"the child exited before answering (status {proc.wait()})"
                seen += chunk


def _poll(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not ready():
        assert proc.poll() is None, f"the child exited early (status {proc.returncode})"
        assert time.monotonic() < deadline, f"the child was not ready in {START_SECONDS} s"
        time.sleep(0.1)


def script(make: str, body: str) -> list[str]:
    return ["-c", f"from abstractcore import create_llm\nllm = {make}\n" + textwrap.dedent(body)]


STREAM = f"""
    for i, chunk in enumerate(llm.stream({LONG!r}, max_tokens=2000)):
        if i == 0:
            print("first chunk", flush=True)
"""
GENERATE = f"""
    llm.generate("Hi", max_tokens=1)  # loaded: the interrupt lands in the long call below
    print("generating", flush=True)
    llm.generate({LONG!r}, max_tokens=2000)
"""
IN_PROCESS = "create_llm('huggingface', temperature=0)"


@pytest.fixture
def slow_stream(fake: FakeOpenAI) -> Iterator[str]:
    """``create_llm(...)`` for the fake OpenAI server, whose next stream sends a word every 2 s."""
    fake.script.append(Fault("delay_stream", seconds=2))
    yield f"create_llm('openai', model='gpt-fake', base_url={fake.base_url!r}, api_key={KEY!r})"


def dies_of_sigint(outcome: Outcome) -> None:
    assert outcome.returncode == -signal.SIGINT, (outcome.returncode, outcome.stderr[-3000:])
    assert "Exception ignored" not in outcome.stderr, outcome.stderr[-3000:]
    assert outcome.stderr.count("Traceback (most recent call last)") == 1, outcome.stderr[-3000:]
    assert outcome.stderr.endswith("\nKeyboardInterrupt\n"), outcome.stderr[-3000:]


# -- one Ctrl-C: a script dies of SIGINT, as a plain Python script does --------------------


@pytest.mark.slow
def test_ctrl_c_in_generate_in_process_kills_the_script_with_sigint() -> None:
    dies_of_sigint(interrupt(script(IN_PROCESS, GENERATE), started=b"generating", again=False))


@pytest.mark.slow
def test_ctrl_c_in_a_stream_in_process_kills_the_script_with_sigint() -> None:
    dies_of_sigint(interrupt(script(IN_PROCESS, STREAM), started=b"first chunk", again=False))


def test_ctrl_c_in_a_stream_over_http_kills_the_script_with_sigint(slow_stream: str) -> None:
    dies_of_sigint(interrupt(script(slow_stream, STREAM), started=b"first chunk", again=False))


# -- Ctrl-C again while the script exits: nothing from the package --------------------------


@pytest.mark.slow
def test_repeated_ctrl_c_in_a_stream_in_process_prints_nothing_from_the_package() -> None:
    outcome = interrupt(script(IN_PROCESS, STREAM), started=b"first chunk", again=True)
    assert "abstractcore" not in outcome.after_the_first_interrupt(), outcome.stderr[-3000:]
    assert outcome.returncode == -signal.SIGINT, (outcome.returncode, outcome.stderr[-3000:])


def test_repeated_ctrl_c_in_a_stream_over_http_prints_nothing_from_the_package(slow_stream: str) -> None:
    outcome = interrupt(script(slow_stream, STREAM), started=b"first chunk", again=True)
    assert "abstractcore" not in outcome.after_the_first_interrupt(), outcome.stderr[-3000:]
    assert outcome.returncode == -signal.SIGINT, (outcome.returncode, outcome.stderr[-3000:])


def test_a_ctrl_c_while_the_exit_hook_waits_does_not_cut_it_short(slow_stream: str) -> None:
    # The exit hook waits (bounded) for the background loop to close the open stream. Keep that
    # loop busy for 1.5 s at exit and press Ctrl-C 0.5 s into the wait: the hook must finish its
    # wait quietly ("Exception ignored in atexit callback ... KeyboardInterrupt" before).
    body = """
        import os, signal, threading, time
        from abstractcore import _portal as portal
        stream = llm.stream("Hi")
        next(stream)  # open, and held at exit
        portal._loop.call_soon_threadsafe(time.sleep, 1.5)  # the loop is busy when the hook runs
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
        timer.daemon = True
        timer.start()
        print("end", flush=True)
    """
    result = subprocess.run(
        [sys.executable, *script(slow_stream, body)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "end\n" and result.stderr == "", result.stderr[-3000:]


# -- the command: one line, status 130 -----------------------------------------------------


def command(*args: str) -> list[str]:
    return ["-m", "abstractcore.cli", *args]


@pytest.mark.slow
@pytest.mark.parametrize("again", [False, True], ids=["once", "repeatedly"])
def test_ctrl_c_in_the_command_in_process_prints_one_line_and_exits_130(again: bool) -> None:
    outcome = interrupt(command("--max-tokens", "2000", LONG), started=b"", again=again)
    assert outcome.stderr == "abstractcore: interrupted\n"
    assert outcome.returncode == 130


@pytest.mark.parametrize("again", [False, True], ids=["once", "repeatedly"])
def test_ctrl_c_in_the_command_over_http_prints_one_line_and_exits_130(
    fake: FakeOpenAI, again: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.script.append(Fault("delay_stream", seconds=2))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # inherited by the child
    outcome = interrupt(
        command("--provider", "openai", "--model", "gpt-fake", "--base-url", fake.base_url, "Hi"),
        started=b"Hello",
        again=again,
    )
    assert outcome.stderr == "abstractcore: interrupted\n"
    assert outcome.returncode == 130


@pytest.mark.slow
@pytest.mark.parametrize("again", [False, True], ids=["once", "repeatedly"])
def test_ctrl_c_stops_the_server_quietly_with_status_0(again: bool) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def answered() -> bool:  # the embedded model is loaded: the exit has a model to free
        try:
            body = {
                "model": "huggingface/smollm2-135m-instruct",
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 2,
            }
            return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30).status_code == 200
        except httpx.TransportError:
            return False

    outcome = interrupt(command("serve", "--port", str(port)), ready=answered, again=again)
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    assert "Traceback" not in outcome.stderr and "Exception ignored" not in outcome.stderr, outcome.stderr
