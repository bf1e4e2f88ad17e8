"""The server run in this process on its own event loop in a background thread, on a free
127.0.0.1 port (the same runner ``abstractcore serve`` uses)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import anthropic
import openai

from abstractcore import LLM, RetryConfig
from abstractcore.core.secrets import Secret
from abstractcore.server import ServerConfig, create_app, start

#: The key clients of the test servers send.
KEY = "sk-abstractcore-server-test-0123456789"
#: The name the chat test servers serve their model as.
MODEL = "smollm2"


class RunningServer:
    """A started server: ``url`` (no ``/v1``) and ``openai_url`` (with it)."""

    def __init__(self, models: Mapping[str, LLM], config: ServerConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self._runner: Any = None
        self.port = 0
        ready = threading.Event()
        failure: list[BaseException] = []

        async def setup() -> None:
            self._runner = await start(create_app(models, config), "127.0.0.1", 0)
            self.port = int(self._runner.addresses[0][1])

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(setup())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="abstractcore-server", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def running_server(models: Mapping[str, LLM], **options: Any) -> Iterator[RunningServer]:
    """A server for ``models`` while the block runs; ``options`` are ``ServerConfig`` fields
    (``api_key`` as a plain string)."""
    key = options.pop("api_key", KEY)
    config = ServerConfig(port=0, api_key=Secret(key) if key else None, **options)
    server = RunningServer(models, config)
    try:
        yield server
    finally:
        server.stop()


def wait_until(condition: Callable[[], bool], seconds: float) -> float | None:
    """Seconds until ``condition()`` held (polled every 5 ms), or None after ``seconds``."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if condition():
            return time.monotonic() - start
        time.sleep(0.005)
    return None


def openai_client(server: RunningServer, key: str = KEY) -> openai.OpenAI:
    """The official OpenAI SDK pointed at ``server`` (no retries: a status is seen as it is)."""
    return openai.OpenAI(base_url=server.openai_url, api_key=key, max_retries=0, timeout=120)


def async_openai_client(server: RunningServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_url, api_key=KEY, max_retries=0, timeout=120)


def anthropic_client(server: RunningServer, key: str = KEY) -> anthropic.Anthropic:
    """The official Anthropic SDK pointed at ``server``."""
    return anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0, timeout=120)


def async_anthropic_client(server: RunningServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.url, api_key=KEY, max_retries=0, timeout=120)


#: For back ends whose faults a test scripts: one attempt, so a scripted status comes back as it is.
NO_RETRY = RetryConfig(max_attempts=1)


def prompt_tokens(usage: Any) -> int:
    """All the prompt's tokens of an Anthropic usage: ``input_tokens`` excludes what the cache
    read or wrote, and message_start cannot know that split yet (a counted total, cache 0)."""
    return (
        int(usage.input_tokens or 0)
        + int(usage.cache_read_input_tokens or 0)
        + int(usage.cache_creation_input_tokens or 0)
    )
