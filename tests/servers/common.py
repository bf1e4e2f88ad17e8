"""What the Anthropic and Ollama test servers share: the real model, the threaded runner, faults.

``LocalModel`` runs SmolLM2 through ``llama_cpp.Llama`` (one generation at a
time, stoppable within a token); ``ThreadedServer`` runs an aiohttp app on its
own loop in a background thread on a free 127.0.0.1 port; ``Script`` /
``Scripts`` / ``Fault`` let a test ask for faults on its next requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from typing_extensions import Self

# -- the real model, in process --------------------------------------------------------


class LocalModel:
    """SmolLM2 through ``llama_cpp.Llama``: streamed generation, one at a time.

    Generations run in a worker thread (the server's event loop stays
    responsive) under one lock; a consumer that stops early stops the
    generation within a token. ``unload()`` really closes the model; the next
    generation loads it again.
    """

    def __init__(self, path: Path, *, n_ctx: int = 2048) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self._llm: Any = None
        self._lock = threading.Lock()
        self.loads = 0
        self.last_load_seconds = 0.0
        #: The most tokens one answer may have whatever the request asks (None: no limit). The docs
        #: run sets it: the 135M stand-in rambles to the end of its context where the 7B models the
        #: pages name stop by themselves, and a README example made three such calls in 84 s.
        self.longest_answer: int | None = None

    @property
    def loaded(self) -> bool:
        """Whether the weights are in memory."""
        return self._llm is not None

    def _ensure(self) -> Any:
        if self._llm is None:
            import llama_cpp

            start = time.perf_counter()
            # one thread: on a shared 2-core machine a second one mostly waits at barriers
            # (measured here under load: 32 tokens in 0.7 s with one thread, 3.9 s with two)
            self._llm = llama_cpp.Llama(
                model_path=str(self.path), n_ctx=self.n_ctx, verbose=False, n_threads=1, n_threads_batch=1
            )
            self.last_load_seconds = time.perf_counter() - start
            self.loads += 1
        return self._llm

    def load(self) -> None:
        """Load the weights now (no-op when loaded)."""
        with self._lock:
            self._ensure()

    def unload(self) -> None:
        """Close the model and free its memory."""
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Mean-pooled, L2-normalised embeddings of ``texts`` (an embedding-mode context of the same
        GGUF, loaded on first use) and the number of tokens read."""
        import llama_cpp

        with self._lock:
            if getattr(self, "_embedder", None) is None:
                self._embedder = llama_cpp.Llama(
                    model_path=str(self.path),
                    embedding=True,
                    n_ctx=512,
                    pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                    verbose=False,
                    n_threads=1,
                )
            embedder = self._embedder
            vectors, tokens = [], 0
            for text in texts:
                tokens += len(embedder.tokenize(text.encode()))
                vector = embedder.embed(text, normalize=True)
                vectors.append([float(x) for x in vector])
            return vectors, tokens

    def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        """Tokens of the prompt the chat template makes of ``messages``."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        with self._lock:
            llm = self._ensure()
            template = llm.metadata["tokenizer.chat_template"]
            eos = llm._model.token_get_text(llm.token_eos())
            bos = llm._model.token_get_text(llm.token_bos())
            prompt = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)(messages=messages).prompt
            return len(llm.tokenize(prompt.encode(), add_bos=False, special=True))

    def generation(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Generation:
        """A generation to iterate (``async for text in g.run()``)."""
        kwargs: dict[str, Any] = {
            "messages": messages,
            "stream": True,
            "max_tokens": max_tokens if max_tokens and max_tokens > 0 else None,
        }
        if self.longest_answer is not None:
            asked = kwargs["max_tokens"]
            kwargs["max_tokens"] = self.longest_answer if asked is None else min(asked, self.longest_answer)
        for name, value in (("temperature", temperature), ("top_p", top_p), ("top_k", top_k), ("seed", seed)):
            if value is not None:
                kwargs[name] = value
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        return Generation(self, kwargs, list(stop or []))

    def _produce(
        self, kwargs: dict[str, Any], cancel: threading.Event, put: Callable[[tuple[Any, ...]], None]
    ) -> None:
        try:
            with self._lock:
                llm = self._ensure()
                stream = llm.create_chat_completion(**kwargs)
                reason = "stop"
                try:
                    for chunk in stream:
                        if cancel.is_set():
                            break
                        choice = chunk["choices"][0]
                        text = choice.get("delta", {}).get("content")
                        if text:
                            put(("text", text))
                        if choice.get("finish_reason"):
                            reason = choice["finish_reason"]
                finally:
                    stream.close()
            put(("end", reason))
        except Exception as exc:  # handed to the async side
            put(("error", exc))


class Generation:
    """One streamed generation. After ``run()`` ends: ``finish_reason`` ("stop",
    "length" or "stop_sequence"), ``stop_sequence`` and ``output_tokens``."""

    def __init__(self, model: LocalModel, kwargs: dict[str, Any], stop: list[str]) -> None:
        self._model = model
        self._kwargs = kwargs
        self._stop = [s for s in stop if s]
        self.finish_reason = "stop"
        self.stop_sequence: str | None = None
        self.output_tokens = 0
        self.text = ""

    async def _pieces(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: tuple[Any, ...]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens
                loop.call_soon_threadsafe(queue.put_nowait, item)

        worker = threading.Thread(target=self._model._produce, args=(self._kwargs, cancel, put), daemon=True)
        worker.start()
        try:
            while True:
                item = await queue.get()
                if item[0] == "text":
                    self.output_tokens += 1
                    yield item[1]
                elif item[0] == "end":
                    self.finish_reason = item[1]
                    return
                else:
                    raise item[1]
        finally:
            cancel.set()

    async def run(self) -> AsyncIterator[str]:
        """The text as it is generated, with stop sequences applied (held back while
        the text may still turn into one, cut where one appears)."""
        pending = ""
        pieces = self._pieces()
        try:
            async for piece in pieces:
                pending += piece
                hits = [(pending.find(s), s) for s in self._stop if s in pending]
                if hits:
                    at, sequence = min(hits)
                    if pending[:at]:
                        self.text += pending[:at]
                        yield pending[:at]
                    self.finish_reason, self.stop_sequence = "stop_sequence", sequence
                    return
                keep = max(
                    (k for s in self._stop for k in range(1, len(s)) if pending.endswith(s[:k])), default=0
                )
                ready, pending = pending[: len(pending) - keep], pending[len(pending) - keep :]
                if ready:
                    self.text += ready
                    yield ready
            if pending:
                self.text += pending
                yield pending
        finally:
            await pieces.aclose()


# -- running an aiohttp app in a thread ------------------------------------------------------


class ThreadedServer:
    """An aiohttp application served from its own loop in a daemon thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadedServer:
        """Start serving on a free port; returns once it accepts connections."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def setup() -> None:
            self._runner = web.AppRunner(self.app, shutdown_timeout=0.5, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = int(self._runner.addresses[0][1])

        def run() -> None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            try:
                loop.run_until_complete(setup())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="test-server", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close every connection and stop the thread."""
        if self.loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(10)


# -- scripted faults ---------------------------------------------------------------------------


@dataclass
class Fault:
    """What to do with one request instead of answering normally.

    kinds: ``status`` (an error reply: ``status``, ``type``, ``message``,
    ``headers``), ``stream_error`` (an error in the stream after ``after``
    deltas), ``cut`` (the connection closes after ``after`` deltas),
    ``echo_key`` (a 400 whose message repeats the API key, as a leaky proxy
    might), ``delay`` (wait ``seconds`` before answering normally),
    ``tool_calls`` (answer with the scripted ``calls``, each ``{"name": ...,
    "arguments": {...}}``, in the API's own format, streamed or not, instead
    of generating: for multi-turn tool conversations with parallel calls).
    """

    kind: str
    status: int = 500
    type: str = "api_error"
    message: str = "Internal server error"
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 2
    seconds: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Script:
    """Faults for the requests that carry ``headers``; what those requests were."""

    faults: deque[Fault]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        """Pass these to ``create_llm(..., headers=...)``."""
        return {"x-test-script": self.id}


class Scripts:
    """The scripts of one server, looked up by the ``x-test-script`` header."""

    def __init__(self) -> None:
        self._scripts: dict[str, Script] = {}

    def new(self, *faults: Fault) -> Script:
        """A new script holding ``faults``."""
        script = Script(deque(faults))
        self._scripts[script.id] = script
        return script

    def take(self, request: web.Request, body: Any) -> Fault | None:
        """Record ``request`` in its script; the script's next fault, if any."""
        script = self.record(request, body)
        if script is None:
            return None
        return script.faults.popleft() if script.faults else None

    def record(self, request: web.Request, body: Any) -> Script | None:
        """Record ``request`` in its script (its faults kept for the requests they are for)."""
        script = self._scripts.get(request.headers.get("x-test-script", ""))
        if script is not None:
            script.requests.append({"path": request.path, "headers": dict(request.headers), "body": body})
        return script


class ScriptedServer:
    """Base of the protocol servers: a ``ThreadedServer`` plus the fault ``Scripts``.

    Subclasses build their aiohttp app and hand it to ``_serve``.
    """

    scripts: Scripts
    _server: ThreadedServer

    def _serve(self, app: web.Application) -> None:
        self.scripts = Scripts()
        self._server = ThreadedServer(app)

    def start(self) -> Self:
        """Start serving."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def script(self, *faults: Fault) -> Script:
        """Faults for the next requests made with ``script.headers``."""
        return self.scripts.new(*faults)
