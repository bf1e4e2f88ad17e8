"""Local providers whose engine batches requests: calls go to the engine's queue, not one at a time.

``BatchingLocalProvider`` is the base of the in-process providers that can
serve several requests at once (``huggingface`` GGUF models through
``LlamaCppBatchEngine``, ``mlx`` through ``MLXBatchEngine``). When the
engine created for the model is a ``BatchEngine`` and ``parallel`` is not 1,
``agenerate`` / ``astream`` submit to it directly (prompts are rendered in
one submission thread per event loop) and wait for their own results; any
other engine takes ``LocalProvider``'s one-at-a-time path. A cancelled,
timed-out or dropped call cancels its request in the engine.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from abstractcore.core.errors import LocalBackendError, ProviderTimeoutError
from abstractcore.core.types import GenerateResponse, StreamChunk
from abstractcore.engines.base import BatchEngine, BatchHandle, EngineClosed, GenerationSpec, Outcome
from abstractcore.providers.base import Request
from abstractcore.providers.local import LocalProvider, _calls, _finish
from abstractcore.transport.worker import LoopInbox, StreamClosed

__all__ = ["BatchingLocalProvider"]

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


class BatchingLocalProvider(LocalProvider):
    """A ``LocalProvider`` that hands calls to a ``BatchEngine`` when its model has one.

    Subclasses set ``parallel`` in ``_configure`` (1: one at a time) and
    create the engine in ``_create_engine``.
    """

    parallel: int | None = None

    @property
    def busy(self) -> bool:
        """True while the model is loading, generating (any request) or unloading."""
        engine = self._engine
        return self._worker.busy or (isinstance(engine, BatchEngine) and engine.busy)

    # Requests go to the batch engine directly, not through the worker's one-at-a-time lock; the
    # worker still loads and unloads the model. A model whose engine does not batch takes
    # LocalProvider's path.

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
        if outcome is None:  # the model's engine does not batch: one generation at a time
            return await super()._complete(request)
        return self._answer("".join(parts), outcome)

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
            chunks = super()._stream(request)  # the model's engine does not batch: one generation at a time
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
    ) -> BatchHandle | None:
        """Queue ``spec`` on the batch engine, loading the model first if needed (in a thread:
        the prompt is rendered and tokenized there). None when the model's engine does not batch."""
        try:
            for _ in range(_SUBMIT_ATTEMPTS):
                engine = self._engine
                if not (isinstance(engine, BatchEngine) and engine.loaded):
                    loaded = await self._worker.run(lambda _cancel: self._ready_engine(spec))
                    if not isinstance(loaded, BatchEngine):
                        return None
                    engine = loaded
                handle: BatchHandle | None = await anyio.to_thread.run_sync(
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
        engine: BatchEngine,
        spec: GenerationSpec,
        emit: Callable[[str], None],
        cancel: threading.Event,
    ) -> Callable[[], BatchHandle | None]:
        def queue() -> BatchHandle | None:
            try:
                return engine.submit(spec, emit, cancel)
            except EngineClosed:  # unloaded meanwhile: load again
                return None

        return queue

    def _serial(self) -> bool:
        """True when requests take LocalProvider's one-at-a-time path: ``parallel=1``, or a loaded
        model whose engine does not batch."""
        engine = self._engine
        return self.parallel == 1 or (engine is not None and not isinstance(engine, BatchEngine))

    def _timeout_error(self, total: float | None) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"{self.name} did not finish within timeout={total:g} s (model {self.model!r}); "
            "raise timeout= or lower max_tokens.",
            provider=self.name,
            model=self.model,
        )
