"""The thread bridge for in-process models (llama.cpp, transformers, MLX), under ``engines.host``.

A loaded model is driven by blocking calls that take seconds. ``ModelWorker``
runs them in worker threads so the event loop never blocks, one call at a time
per model:

- ``run(fn)`` runs ``fn(cancel)`` through ``anyio.to_thread.run_sync`` under a
  per-model ``CapacityLimiter(1)``: concurrent calls queue on the event loop
  (cancellable, no thread held while queued).
- ``stream(fn)`` runs ``fn(emit, cancel)`` on a producer thread that hands
  each item to the event loop as soon as it exists. The hand-off never waits
  for the loop or the consumer (``call_soon_threadsafe`` on asyncio,
  ``TrioToken.run_sync_soon`` on trio): the producer owns the model only for
  as long as its own generation lasts, never for as long as somebody holds the
  iterator. A stream the caller stopped reading (left in a variable after a
  ``break``) therefore finishes its generation into memory (a generation is
  bounded by ``max_tokens`` or the context) and frees the model; once the
  iterator is closed or garbage-collected, the generation stops at once.
- ``cancel`` is a ``threading.Event``. It is set when the awaiting task is
  cancelled or the stream's consumer goes away (``aclose()``, ``break`` out of
  a sync stream, garbage collection); generation loops check it every token,
  and ``emit`` raises ``StreamClosed`` once it is set.

Every worker thread is registered while it runs. At interpreter exit
(``engines.host``'s exit stages) every cancel flag is set and the threads are
joined (bounded wait) before any model is freed, so no thread is still inside
native code (``llama_decode``) while the interpreter and the native libraries
are torn down: that was a segfault at exit.

The limiter is per event loop (an anyio limiter belongs to one loop), so the
same model can be used from the sync face's background loop, an asyncio loop
and a trio loop; a ``threading.Lock`` taken inside the worker thread keeps
calls coming from different loops apart.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from itertools import count
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from abstractcore.engines import warmup
from abstractcore.transport.threads import CallSoon, LoopGone, call_soon_on_this_loop

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectSendStream

__all__ = [
    "EXIT_JOIN_SECONDS",
    "Emit",
    "LoopInbox",
    "ModelWorker",
    "StreamClosed",
    "refuse_new_calls",
    "stop_all_workers",
]

T = TypeVar("T")
R = TypeVar("R")

#: Hands one item from the producer thread to the consumer (never blocks).
Emit = Callable[[T], None]

_ids = count(1)
_LOCK_POLL = 0.05  # seconds between cancel checks while waiting for the model
#: How long interpreter exit waits for generation threads to notice their cancel flag.
EXIT_JOIN_SECONDS = 10.0


class StreamClosed(Exception):
    """Raised in the producer thread when the consumer went away or the call was cancelled.

    Generation loops let it propagate (or stop when ``cancel`` is set); the
    worker swallows it.
    """


class _Failure:
    """An exception travelling from the producer thread to the consumer."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Job:
    """One running worker call: its cancel flag and a flag set when its thread is done."""

    __slots__ = ("cancel", "done")

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self.done = threading.Event()


_jobs: set[_Job] = set()
_jobs_lock = threading.Lock()
_exiting = False


def _register(cancel: threading.Event) -> _Job:
    job = _Job(cancel)
    with _jobs_lock:
        if _exiting:
            cancel.set()
        _jobs.add(job)
    return job


def _unregister(job: _Job) -> None:
    with _jobs_lock:
        _jobs.discard(job)
    job.done.set()


def stop_all_workers(timeout: float = EXIT_JOIN_SECONDS) -> bool:
    """Cancel every running model call and wait (up to ``timeout`` s) for their threads.

    Runs at interpreter exit (``engines.host``'s first exit stage), before any
    model is freed; returns True when every thread stopped in time.
    """
    with _jobs_lock:
        jobs = list(_jobs)
    for job in jobs:
        job.cancel.set()
    deadline = time.monotonic() + timeout
    return all(job.done.wait(max(0.0, deadline - time.monotonic())) for job in jobs)


def refuse_new_calls() -> None:
    """(interpreter exit) Cancel every call that starts from now on, at once."""
    global _exiting
    with _jobs_lock:
        _exiting = True


class ModelWorker(Generic[T]):
    """Runs the blocking calls of one loaded model in worker threads, one at a time.

    ``T`` is the type of the items a stream yields.
    """

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._limiter_var: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar(
            f"abstractcore-worker-{next(_ids)}"
        )

    def __repr__(self) -> str:
        return f"ModelWorker({self.name!r})"

    @property
    def busy(self) -> bool:
        """True while a call holds the model."""
        return self._lock.locked()

    def limiter(self) -> anyio.CapacityLimiter:
        """This model's ``CapacityLimiter(1)`` on the running event loop."""
        try:
            return self._limiter_var.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(1)
            self._limiter_var.set(limiter)
            return limiter

    # -- one blocking call --------------------------------------------------------

    async def run(self, fn: Callable[[threading.Event], R]) -> R:
        """Run ``fn(cancel)`` in a worker thread and return its result.

        If the awaiting task is cancelled, ``cancel`` is set and the task
        returns at once; the thread stops at its next check and releases the
        model (the next call waits for that).
        """
        await warmup.ready()  # anyio's backend imported off the loop, before its first use here
        cancel = threading.Event()

        def job() -> R:
            registered = _register(cancel)
            try:
                if not self._acquire(cancel):
                    raise StreamClosed("cancelled before the model was free")
                try:
                    return fn(cancel)
                finally:
                    self._lock.release()
            finally:
                _unregister(registered)

        try:
            return await anyio.to_thread.run_sync(job, abandon_on_cancel=True, limiter=self.limiter())
        except BaseException:
            cancel.set()
            raise

    # -- a stream of items --------------------------------------------------------

    async def stream(self, fn: Callable[[Emit[T], threading.Event], None]) -> AsyncIterator[T]:
        """Run ``fn(emit, cancel)`` on a producer thread; yield what it emits, as it emits it.

        An exception raised by ``fn`` is raised here after the items emitted
        before it. Closing the iterator (or cancelling the task iterating it,
        or dropping it) sets ``cancel``; ``emit`` then raises ``StreamClosed``
        in the thread.
        """
        await warmup.ready()
        cancel = threading.Event()
        send, receive = anyio.create_memory_object_stream[Any](math.inf)
        channel = _Channel(send, call_soon_on_this_loop(), cancel)
        job = _register(cancel)
        thread = threading.Thread(
            target=self._produce,
            args=(fn, channel, cancel, job),
            name=f"abstractcore-{self.name}",
            daemon=True,
        )
        try:
            thread.start()
        except BaseException:
            _unregister(job)
            raise
        try:
            while True:
                try:
                    item = await receive.receive()
                except anyio.EndOfStream:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            cancel.set()
            receive.close()

    def _produce(
        self,
        fn: Callable[[Emit[T], threading.Event], None],
        channel: _Channel,
        cancel: threading.Event,
        job: _Job,
    ) -> None:
        """Producer thread body: take the model, run ``fn``, hand items and errors over."""
        try:
            if not self._acquire(cancel):
                return
            try:
                fn(channel.put, cancel)
            finally:
                self._lock.release()
        except StreamClosed:
            pass
        except BaseException as exc:
            if not cancel.is_set():
                channel.fail(exc)
        finally:
            channel.close()
            _unregister(job)

    def _acquire(self, cancel: threading.Event) -> bool:
        """Take the model lock in this (worker) thread; False if cancelled while waiting."""
        while not self._lock.acquire(timeout=_LOCK_POLL):
            if cancel.is_set():
                return False
        if cancel.is_set():
            self._lock.release()
            return False
        return True


class LoopInbox(Generic[T]):
    """Items handed from any thread to the event loop that created the inbox, never blocking the sender.

    For producers that are not ``ModelWorker`` threads (a scheduler serving many requests at
    once). Create it on the event loop that will read it (asyncio or trio); from any thread,
    ``put`` an item (``StreamClosed`` once ``cancel`` is set: the reader went away or its loop
    ended) and ``close`` after the last one. ``items()`` yields them in order on the loop; leaving
    it sets ``cancel``.
    """

    def __init__(self, cancel: threading.Event) -> None:
        send, self._receive = anyio.create_memory_object_stream[Any](math.inf)
        self._channel = _Channel(send, call_soon_on_this_loop(), cancel)
        self._cancel = cancel

    def put(self, item: T) -> None:
        """(any thread) Queue ``item`` for the reader; raises ``StreamClosed`` once it is gone."""
        self._channel.put(item)

    def close(self) -> None:
        """(any thread) End ``items()`` after the items already put; never raises."""
        self._channel.close()

    async def items(self) -> AsyncGenerator[T, None]:
        """(the event loop) The items as they arrive, until ``close``."""
        try:
            while True:
                try:
                    item = await self._receive.receive()
                except anyio.EndOfStream:
                    return
                yield item
        finally:
            self._cancel.set()
            self._receive.close()


class _Channel:
    """Hands items from the producer thread to the event loop without waiting for the loop.

    ``put`` schedules the delivery on the loop and returns at once, so the
    next token is computed while the loop delivers this one, and a consumer
    that stops reading never holds the producer (and so the model) up.
    """

    def __init__(self, send: MemoryObjectSendStream[Any], soon: CallSoon, cancel: threading.Event) -> None:
        self._send = send
        self._soon_on_loop = soon
        self._cancel = cancel

    def put(self, item: Any) -> None:
        """(producer thread) Queue ``item`` for the consumer; ``StreamClosed`` once it is gone."""
        if self._cancel.is_set():
            raise StreamClosed("the consumer stopped")
        self._soon(self._deliver, item)

    def fail(self, error: BaseException) -> None:
        """(producer thread) Queue an exception for the consumer."""
        self._soon(self._deliver, _Failure(error))

    def close(self) -> None:
        """(producer thread) Mark the end of the stream, after every queued item."""
        try:
            self._soon(self._send.close)
        except StreamClosed:
            pass

    def _deliver(self, item: Any) -> None:  # runs on the event loop
        try:
            self._send.send_nowait(item)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._cancel.set()  # the consumer has gone: the producer stops at its next check

    def _soon(self, fn: Callable[..., object], *args: Any) -> None:
        try:
            self._soon_on_loop(fn, *args)
        except LoopGone as exc:
            self._cancel.set()
            raise StreamClosed("the event loop is gone") from exc
