"""The in-process runtime: one model's lifecycle, its threads, and the ordered exit of every engine.

A provider that runs a model in this process ("huggingface", "mlx") owns one
``ModelHost`` and only translates: a ``Request`` into a ``GenerationSpec``,
the engine's ``Outcome`` into responses. The host

- creates the engine on first use (``create``, in the worker thread) and loads
  it lazily; ``unload()`` frees it and the next call loads it again;
- runs blocking calls one at a time through a ``ModelWorker`` (``run``,
  ``stream``: the thread bridge and the per-model ``CapacityLimiter(1)``);
- sends requests to a ``BatchEngine`` directly (``open_batch``), rendering the
  prompts in one submission thread per event loop, when the engine batches;
- turns a back end's own exceptions into ``ModelLoadError`` /
  ``LocalBackendError`` naming the provider and the model (``guard``).

Interpreter exit: every engine registers itself (``register``) when it loads,
in ONE registry, and two stages of ``transport.exiting``'s ordered exit run
for all of them: ``STOP_GENERATIONS`` (no new call starts; every running call
is cancelled and its thread joined, bounded), then ``CLOSE_ENGINES`` (each
live engine's ``close_at_exit``, its models freed while Python is whole),
before ``CLOSE_LOOPS`` (the sync face's event loop). No thread is left inside
``llama_decode`` while the native libraries are torn down.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import Future
from contextlib import aclosing
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from abstractcore.core.errors import AbstractCoreError, LocalBackendError, ModelLoadError, ProviderError
from abstractcore.engines import warmup
from abstractcore.engines.base import BatchEngine, BatchHandle, Engine, EngineClosed, GenerationSpec, Outcome
from abstractcore.engines.gil import loading
from abstractcore.engines.worker import (
    Emit,
    LoopInbox,
    ModelWorker,
    StreamClosed,
    refuse_new_calls,
    stop_all_workers,
)
from abstractcore.transport.exiting import CLOSE_ENGINES, STOP_GENERATIONS, exit_hook

__all__ = ["BatchRun", "ModelHost", "register"]

R = TypeVar("R")
T = TypeVar("T")

#: How often a request is resubmitted when ``unload()`` keeps racing it.
_SUBMIT_ATTEMPTS = 3

# -- the one exit registry -------------------------------------------------------------------

_live: weakref.WeakSet[Engine] = weakref.WeakSet()


class _Exit:
    workers_stopped = True


def register(engine: Engine) -> None:
    """(an engine, when it loads) Have ``engine.close_at_exit`` run at interpreter exit."""
    _live.add(engine)


def _stop_generations() -> None:
    refuse_new_calls()
    _Exit.workers_stopped = stop_all_workers()


def _close_engines() -> None:
    for engine in list(_live):
        try:
            engine.close_at_exit(_Exit.workers_stopped)
        except Exception:  # exiting anyway: the next engine still gets freed
            pass


exit_hook(_stop_generations, order=STOP_GENERATIONS)
exit_hook(_close_engines, order=CLOSE_ENGINES)

# -- batch submission --------------------------------------------------------------------------

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


class BatchRun:
    """One request queued on a ``BatchEngine``: its text as it is decoded, then its ``Outcome``."""

    def __init__(self, host: ModelHost, handle: BatchHandle, inbox: LoopInbox[str | Future[Outcome]]) -> None:
        self._host = host
        self._handle = handle
        self._inbox = inbox
        handle.future.add_done_callback(_last(inbox))

    async def events(self) -> AsyncGenerator[str | Outcome, None]:
        """Each text delta (``str``), then the ``Outcome``; leaving early cancels the sequence."""
        try:
            async with aclosing(self._inbox.items()) as items:
                async for item in items:
                    if isinstance(item, str):
                        yield item
                        continue
                    outcome: Outcome = self._host.guard("generating", item.result)
                    yield outcome
                    return
        finally:
            self._handle.cancel()  # a no-op once finished; stops the sequence when the caller gave up
        raise LocalBackendError(  # the hand-off to this event loop ended without a result
            f"{self._host.name}: model {self._host.model!r} ended a generation without a result.",
            provider=self._host.name,
            model=self._host.model,
        )

    async def outcome(self) -> Outcome:
        """The ``Outcome`` once the generation ends (its text went to ``open_batch``'s ``emit``)."""
        async with aclosing(self.events()) as events:
            async for item in events:
                if not isinstance(item, str):
                    return item
        raise AssertionError("unreachable: events() ends with an Outcome or raises")


# -- one model ---------------------------------------------------------------------------------


class ModelHost:
    """One in-process model: its engine (created and loaded lazily), its worker, its batch queue.

    ``name`` and ``model`` (the provider's) appear in every error raised here.
    """

    def __init__(self, create: Callable[[], Engine], *, name: str, model: str, serial: bool = False) -> None:
        self.name = name
        self.model = model
        #: True: never hand requests to a batch engine (``parallel=1``).
        self.serial = serial
        self._create = create
        self.engine: Engine | None = None
        self.worker: ModelWorker[Any] = ModelWorker(name)
        warmup.start()  # the first call's imports, off the event loop (usually done by then)

    def __repr__(self) -> str:
        return f"ModelHost({self.name!r}, {self.model!r})"

    @property
    def loaded(self) -> bool:
        """True while the model's weights are in memory."""
        return self.engine is not None and self.engine.loaded

    @property
    def busy(self) -> bool:
        """True while the model is loading, generating (any request) or unloading."""
        engine = self.engine
        return self.worker.busy or (isinstance(engine, BatchEngine) and engine.busy)

    @property
    def batches(self) -> bool:
        """False when requests take the one-at-a-time path: ``serial``, or a created engine that
        does not batch (before the engine exists: True, ``open_batch`` finds out)."""
        engine = self.engine
        return not self.serial and (engine is None or isinstance(engine, BatchEngine))

    # -- the worker (one call at a time) ------------------------------------------------------

    async def run(self, fn: Callable[[threading.Event], R]) -> R:
        """``fn(cancel)`` in the model's worker thread (see ``ModelWorker.run``)."""
        return await self.worker.run(fn)

    def stream(self, fn: Callable[[Emit[T], threading.Event], None]) -> AsyncIterator[T]:
        """What ``fn(emit, cancel)`` emits on a producer thread (see ``ModelWorker.stream``)."""
        return self.worker.stream(fn)

    async def unload(self) -> None:
        """Free the model's weights and native handles (the next call loads it again)."""
        await self.worker.run(lambda cancel: self.unload_now())

    # -- lifecycle (worker thread) ------------------------------------------------------------

    def resolved(self) -> Engine:
        """The engine for this model, created (not loaded) on first use; in the worker thread."""
        if self.engine is None:
            with loading():
                self.engine = self.guard("loading", self._create, load=True)
        return self.engine

    def ready(self) -> Engine:
        """The loaded engine (called under the model lock, in the worker thread)."""
        engine = self.resolved()
        if not engine.loaded:
            with loading():  # the event loop keeps getting the GIL while this thread imports
                self.guard("loading", engine.load, load=True)
        return engine

    def unload_now(self) -> None:
        """(worker thread) Unload the engine if it is loaded."""
        engine = self.engine
        if engine is not None and engine.loaded:
            engine.unload()

    def guard(self, doing: str, fn: Callable[[], Any], *, load: bool = False) -> Any:
        """Call ``fn``; turn a back end's own exception into ``ModelLoadError``/``LocalBackendError``."""
        try:
            return fn()
        except ProviderError as exc:  # e.g. ContextLengthExceededError from the engine
            if exc.provider is None:
                exc.provider, exc.model = self.name, self.model
                exc._fields.update(provider=self.name, model=self.model)
            raise
        except (AbstractCoreError, StreamClosed):
            raise
        except MemoryError as exc:
            raise ModelLoadError(
                f"{self.name}: not enough memory for model {self.model!r}.",
                provider=self.name,
                model=self.model,
            ) from exc
        except Exception as exc:
            cls = ModelLoadError if load else LocalBackendError
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise cls(
                f"{self.name} failed {doing} model {self.model!r}: {detail}",
                provider=self.name,
                model=self.model,
            ) from exc

    # -- the batch engine (many at once) ------------------------------------------------------

    async def open_batch(
        self,
        spec: GenerationSpec,
        emit: Callable[[str], None] | None = None,
        ready: Callable[[], Engine] | None = None,
    ) -> BatchRun | None:
        """Queue ``spec`` on the batch engine, loading the model first if needed (``ready``, in the
        worker; the prompt is rendered and tokenized in the submission thread). None when the
        model's engine does not batch: the caller takes the one-at-a-time path.

        The text goes to ``emit`` on the engine's thread when given (a whole answer: no hop to
        the event loop per token), else through ``BatchRun.events()``.
        """
        await warmup.ready()
        cancel = threading.Event()
        inbox: LoopInbox[str | Future[Outcome]] = LoopInbox(cancel)
        load = ready or self.ready
        text = emit or inbox.put
        try:
            for _ in range(_SUBMIT_ATTEMPTS):
                engine = self.engine
                if not (isinstance(engine, BatchEngine) and engine.loaded):
                    loaded = await self.worker.run(lambda _cancel: load())
                    if not isinstance(loaded, BatchEngine):
                        return None
                    engine = loaded
                handle: BatchHandle | None = await anyio.to_thread.run_sync(
                    self.guard, "generating", _queue(engine, spec, text, cancel), limiter=_submitter()
                )
                if handle is not None:
                    return BatchRun(self, handle, inbox)
        except BaseException:
            cancel.set()  # cancelled while queueing: the engine drops the request at its next step
            raise
        raise LocalBackendError(
            f"{self.name}: model {self.model!r} was unloaded {_SUBMIT_ATTEMPTS} times while a request "
            "was being queued.",
            provider=self.name,
            model=self.model,
        )


def _queue(
    engine: BatchEngine, spec: GenerationSpec, emit: Callable[[str], None], cancel: threading.Event
) -> Callable[[], BatchHandle | None]:
    def queue() -> BatchHandle | None:
        try:
            return engine.submit(spec, emit, cancel)
        except EngineClosed:  # unloaded meanwhile: load again
            return None

    return queue
