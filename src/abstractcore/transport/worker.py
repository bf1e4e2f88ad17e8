"""The thread bridge for in-process models (llama.cpp, transformers, MLX).

A loaded model is driven by blocking calls that take seconds. ``ModelWorker``
runs them in worker threads so the event loop never blocks, one call at a time
per model:

- ``run(fn)`` runs ``fn(cancel)`` through ``anyio.to_thread.run_sync`` under a
  per-model ``CapacityLimiter(1)``: concurrent calls queue on the event loop
  (cancellable, no thread held while queued).
- ``stream(fn)`` runs ``fn(emit, cancel)`` on a producer thread that hands
  each item to the event loop as soon as it exists, through a bounded memory
  object stream; the async side yields the items one by one. The hand-off
  never waits for the loop (``run_sync_soon``), so the thread computes the
  next token while the loop delivers this one; a semaphore bounds the items
  in flight.
- ``cancel`` is a ``threading.Event``. It is set when the awaiting task is
  cancelled or the stream's consumer stops (``aclose()``, ``break`` out of a
  sync stream); generation loops check it every token, and ``emit`` raises
  ``StreamClosed`` once it is set, so the thread stops within a token.

The limiter is per event loop (an anyio limiter belongs to one loop), so the
same model can be used from the sync face's background loop, an asyncio loop
and a trio loop; a ``threading.Lock`` taken inside the worker thread keeps
calls coming from different loops apart.

Why the stream producer is a thread of its own rather than a task running
``to_thread.run_sync``: that task would need a task group spanning the async
generator's ``yield``, which breaks when the generator is closed from another
task (asyncio's garbage-collection finaliser) and leaks the model lock when a
consumer just stops iterating. The producer thread needs no host task; it
reaches the loop through the event-loop token taken when the stream starts.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from itertools import count
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectSendStream

__all__ = ["Emit", "ModelWorker", "StreamClosed"]

T = TypeVar("T")
R = TypeVar("R")

#: Hands one item from the producer thread to the consumer (blocks while the buffer is full).
Emit = Callable[[T], None]

_ids = count(1)
_LOCK_POLL = 0.05  # seconds between cancel checks while waiting for the model


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


class ModelWorker(Generic[T]):
    """Runs the blocking calls of one loaded model in worker threads, one at a time.

    ``T`` is the type of the items a stream yields.
    """

    def __init__(self, name: str = "model", *, buffer: int = 32) -> None:
        self.name = name
        self._buffer = buffer
        self._lock = threading.Lock()
        self._limiter_var: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar(
            f"abstractcore-worker-{next(_ids)}")

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
        cancel = threading.Event()

        def job() -> R:
            if not self._acquire(cancel):
                raise StreamClosed("cancelled before the model was free")
            try:
                return fn(cancel)
            finally:
                self._lock.release()

        try:
            return await anyio.to_thread.run_sync(job, abandon_on_cancel=True,
                                                  limiter=self.limiter())
        except BaseException:
            cancel.set()
            raise

    # -- a stream of items --------------------------------------------------------

    async def stream(self, fn: Callable[[Emit[T], threading.Event], None]) -> AsyncIterator[T]:
        """Run ``fn(emit, cancel)`` on a producer thread; yield what it emits, as it emits it.

        An exception raised by ``fn`` is raised here after the items emitted
        before it. Closing the iterator (or cancelling the task iterating it)
        sets ``cancel``; ``emit`` then raises ``StreamClosed`` in the thread.
        """
        limiter = self.limiter()
        borrower = object()  # released from whichever task closes the generator
        await limiter.acquire_on_behalf_of(borrower)
        try:
            cancel = threading.Event()
            send, receive = anyio.create_memory_object_stream[Any](self._buffer + 1)
            channel = _Channel(send, anyio.lowlevel.current_token(), cancel, self._buffer)
            thread = threading.Thread(target=self._produce, args=(fn, channel, cancel),
                                      name=f"abstractcore-{self.name}", daemon=True)
            thread.start()
            try:
                while True:
                    try:
                        item = await receive.receive()
                    except anyio.EndOfStream:
                        return
                    channel.taken()
                    if isinstance(item, _Failure):
                        raise item.error
                    yield item
            finally:
                cancel.set()
                receive.close()
        finally:
            limiter.release_on_behalf_of(borrower)

    def _produce(self, fn: Callable[[Emit[T], threading.Event], None], channel: _Channel,
                 cancel: threading.Event) -> None:
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

    def _acquire(self, cancel: threading.Event) -> bool:
        """Take the model lock in this (worker) thread; False if cancelled while waiting."""
        while not self._lock.acquire(timeout=_LOCK_POLL):
            if cancel.is_set():
                return False
        if cancel.is_set():
            self._lock.release()
            return False
        return True


class _Channel:
    """Hands items from the producer thread to the event loop without waiting for the loop.

    ``put`` schedules the delivery on the loop (``run_sync_soon``) and returns
    at once, so the next token is computed while the loop delivers this one.
    A semaphore bounds the items in flight (back-pressure); the consumer
    releases a slot for every item it takes.
    """

    def __init__(self, send: MemoryObjectSendStream[Any], token: anyio.lowlevel.EventLoopToken,
                 cancel: threading.Event, size: int) -> None:
        self._send = send
        self._token = token
        self._cancel = cancel
        self._slots = threading.Semaphore(size)

    def put(self, item: Any) -> None:
        """(producer thread) Queue ``item`` for the consumer; ``StreamClosed`` once it is gone."""
        while not self._slots.acquire(timeout=_LOCK_POLL):
            if self._cancel.is_set():
                raise StreamClosed("the consumer stopped")
        if self._cancel.is_set():
            raise StreamClosed("the consumer stopped")
        self._soon(self._deliver, item)

    def fail(self, error: BaseException) -> None:
        """(producer thread) Queue an exception for the consumer (it has a slot of its own)."""
        self._soon(self._deliver, _Failure(error))

    def close(self) -> None:
        """(producer thread) Mark the end of the stream, after every queued item."""
        try:
            self._soon(self._send.close)
        except StreamClosed:
            pass

    def taken(self) -> None:
        """(event loop) The consumer took an item: free its slot."""
        self._slots.release()

    def _deliver(self, item: Any) -> None:  # runs on the event loop
        try:
            self._send.send_nowait(item)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._cancel.set()  # the consumer has gone: the producer stops at its next check

    def _soon(self, fn: Callable[..., object], *args: Any) -> None:
        try:
            self._token.backend_class.run_sync_soon(fn, args, self._token.native_token)
        except Exception as exc:  # the event loop has finished
            self._cancel.set()
            raise StreamClosed("the event loop is gone") from exc
