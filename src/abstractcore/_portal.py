"""One shared background event loop for the blocking (sync) face.

The sync methods never call ``asyncio.run`` on the caller's thread: they hand
the coroutine to a daemon thread running an anyio ``BlockingPortal``. This
works in plain scripts, inside a running loop (Jupyter) and from many threads
at once. Async iterators are bridged by one pump task per stream feeding a
bounded memory object stream; closing the sync iterator cancels the pump.

Nothing waits on the background loop without bound from a finaliser or at
exit. A stream dropped without ``close()`` (``break`` out of ``for chunk in
llm.stream(...)``) is stopped by its finaliser, which waits for the stop at
most ``EXIT_SECONDS`` while the program runs, and only *schedules* it during
interpreter shutdown (the loop's daemon thread is frozen then: waiting for it
hung the process forever), on the loop's own thread and after the exit hook.
At exit, ``_close_at_exit`` stops the streams still open and closes the
connections, waiting at most ``EXIT_SECONDS``. The exit hook imports nothing
and a second Ctrl-C does not cut it short.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from abstractcore.transport.exiting import exit_hook

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import Future

    from anyio.from_thread import BlockingPortal

__all__ = ["call", "iterate", "portal"]

T = TypeVar("T")

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_loop: asyncio.AbstractEventLoop | None = None
#: ``asyncio.run_coroutine_threadsafe``, bound at start: a finaliser must not import.
_submit: Callable[[Coroutine[Any, Any, Any], asyncio.AbstractEventLoop], Future[Any]] | None = None
_thread: threading.Thread | None = None
_STREAM_BUFFER = 64
#: The longest the exit hook waits for open streams and connections to close.
EXIT_SECONDS = 2.0
#: Set by the exit hook: from then on nothing waits on the background loop.
_exiting = False
#: Pumps started and not finished: the exit hook stops them.
_pumps: weakref.WeakSet[_Pump] = weakref.WeakSet()
#: Stop tasks scheduled without waiting (asyncio keeps only weak references to tasks).
_tasks: set[asyncio.Task[Any]] = set()
#: A coroutine function started on the background loop by ``_soon``.
_Start = Callable[[], Coroutine[Any, Any, Any]]


def portal() -> BlockingPortal:
    """The shared portal, started on first use in a daemon thread."""
    global _portal
    if _portal is not None:
        return _portal
    with _lock:
        if _portal is None:
            _portal = _start()
    return _portal


def _running_loop() -> asyncio.AbstractEventLoop:
    portal()
    assert _loop is not None
    return _loop


def _start() -> BlockingPortal:
    import anyio
    from anyio.from_thread import BlockingPortal

    ready = threading.Event()
    holder: list[BlockingPortal] = []

    import asyncio

    async def main() -> None:
        global _loop, _submit
        _loop = asyncio.get_running_loop()
        _submit = asyncio.run_coroutine_threadsafe
        async with BlockingPortal() as p:
            holder.append(p)
            ready.set()
            await p.sleep_until_stopped()

    global _thread
    thread = _thread = threading.Thread(
        target=anyio.run, args=(main,), name="abstractcore-portal", daemon=True
    )
    thread.start()
    ready.wait()
    exit_hook(_close_at_exit)
    return holder[0]


def _may_wait() -> bool:
    """True when this thread may block on the background loop (not at exit, not on the loop)."""
    return not _exiting and not sys.is_finalizing() and threading.current_thread() is not _thread


def _soon(make: _Start) -> None:
    """Start ``make()`` as a task on the background loop without waiting; never raises, never blocks.

    Safe from a finaliser in any thread (the loop's own included) and during interpreter
    shutdown: it only queues a callback on the loop.
    """
    loop = _loop
    if loop is None or loop.is_closed():
        return
    try:
        loop.call_soon_threadsafe(_spawn, make)
    except RuntimeError:  # the loop closed in between: nothing left to stop
        pass


def _stop_within(make: _Start, seconds: float) -> None:
    """Run ``make()`` on the background loop and wait for it at most ``seconds``; never raises."""
    loop, submit = _loop, _submit
    if loop is None or submit is None or loop.is_closed():
        return
    try:
        submit(make(), loop).result(seconds)
    except BaseException:  # a finaliser: the stop goes on, on the loop, if it was not done in time
        pass


def _spawn(make: _Start) -> None:  # runs on the background loop
    assert _loop is not None
    task = _loop.create_task(make())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _shutdown(done: threading.Event) -> None:
    """(background loop) Stop every open stream, then close the connections opened on this loop."""
    try:
        pumps = list(_pumps)
        for pump in pumps:  # all at once: one slow source must not hold the others
            pump.cancel()
        for pump in pumps:
            await pump.stop()
        http = sys.modules.get("abstractcore.transport.http")  # never imported here: no client exists
        if http is not None:
            await http.close_clients_of_running_loop()
    finally:
        done.set()


class _Exit:
    """The exit hook's progress, so that running it again (after a Ctrl-C) resumes the same wait."""

    done: threading.Event | None = None
    deadline = 0.0


def _close_at_exit() -> None:
    """At exit: stop the open streams and close the connections, waiting at most ``EXIT_SECONDS``.

    Registered with ``exit_hook``: a second Ctrl-C does not cut the (bounded) wait short, and
    nothing is imported here (a second Ctrl-C landing in an import printed a traceback).
    """
    global _exiting
    _exiting = True  # nothing waits on the loop from now on (finalisers, close())
    loop = _loop
    if loop is None or loop.is_closed():
        return
    if _Exit.done is None:
        _Exit.done = done = threading.Event()
        _Exit.deadline = time.monotonic() + EXIT_SECONDS
        _soon(lambda: _shutdown(done))
    _Exit.done.wait(max(0.0, _Exit.deadline - time.monotonic()))


def call(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``fn(*args)`` on the background loop and wait for its result.

    If the result is an async iterator (``agenerate(stream=True)``), a blocking
    iterator over it is returned instead. Calling it from the background loop's
    own thread raises ``RuntimeError`` instead of deadlocking.
    """
    loop = _running_loop()
    if threading.current_thread() is _thread:
        raise RuntimeError(
            "abstractcore's blocking methods cannot be called from its own "
            "background event loop; use the async methods there."
        )

    async def run() -> T:
        return await fn(*args)

    import asyncio

    # run_coroutine_threadsafe costs half of BlockingPortal.call per call (measured: 39 vs
    # 78-96 us); anyio still works inside, the loop being anyio's asyncio loop.
    future = asyncio.run_coroutine_threadsafe(run(), loop)
    try:
        result = future.result()
    except BaseException:
        future.cancel()  # e.g. KeyboardInterrupt while waiting: stop the work too
        raise
    if isinstance(result, AsyncIterator):
        return iterate(result)  # type: ignore[return-value]
    return result


def iterate(source: AsyncIterator[T]) -> Iterator[T]:
    """A blocking iterator over ``source``, which runs on the background loop."""
    return _SyncStream(source)


class _SyncStream(Iterator[T]):
    """Blocking side of a pumped async iterator. Closing it (or ``break``) stops the producer."""

    def __init__(self, source: AsyncIterator[T]) -> None:
        self._source = source
        self._started = False
        self._closed = False
        self._buffer: list[T] = []
        self._state: _Pump | None = None

    def __iter__(self) -> _SyncStream[T]:
        return self

    def __next__(self) -> T:
        if self._buffer:
            return self._buffer.pop()
        if self._closed:
            raise StopIteration
        if self._state is None:
            self._state = portal().call(_new_pump, self._source)
            portal().start_task_soon(self._state.run)
        try:
            batch = portal().call(self._state.receive_batch)
        except Exception:
            self.close()
            raise
        except BaseException:  # Ctrl-C: stop the producer without waiting, so a second one lands in
            self._abandon()  # the caller's code, not here (the exit hook waits for the stop, bounded)
            raise
        if not batch:
            self.close()
            raise StopIteration
        batch.reverse()
        self._buffer = batch
        return self._buffer.pop()

    def close(self) -> None:
        """Stop the producer and release its connection; safe to call twice.

        Waits until the producer has stopped, except at interpreter exit and on the
        background loop's own thread, where the stop is only scheduled.
        """
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        stop = self._stopper()
        if stop is None:
            return
        if _may_wait():
            portal().call(stop)
        else:
            _soon(stop)

    def _abandon(self) -> None:
        """Mark closed and schedule the producer's stop without waiting (interrupts, finalisers)."""
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        stop = self._stopper()
        if stop is not None:
            _soon(stop)

    def _stopper(self) -> _Start | None:
        if self._state is not None:
            return self._state.stop
        aclose: _Start | None = getattr(self._source, "aclose", None)
        return aclose

    def __enter__(self) -> _SyncStream[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Waits (bounded) only while the program runs: ``break`` out of a loop over the stream
        # then releases its connection or model before the next line. At interpreter shutdown
        # the loop's daemon thread is frozen, and waiting for it there hung the process forever.
        if self._closed or self._state is None:
            return
        if not _may_wait():
            self._abandon()
            return
        self._closed = True
        self._buffer.clear()
        _stop_within(self._state.stop, EXIT_SECONDS)


async def _new_pump(source: AsyncIterator[Any]) -> _Pump:
    return _Pump(source)  # built on the portal loop: anyio primitives need a running loop


class _Pump:
    """Runs on the portal loop: iterates the source into a bounded memory stream."""

    def __init__(self, source: AsyncIterator[Any]) -> None:
        import anyio

        self._source = source
        self._send, self._receive = anyio.create_memory_object_stream[tuple[bool, Any]](_STREAM_BUFFER)
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._pending: BaseException | None = None
        self._started = False
        _pumps.add(self)

    async def run(self) -> None:
        import anyio

        self._started = True
        try:
            with self._scope:
                async with self._send:
                    try:
                        async for item in self._source:
                            await self._send.send((True, item))
                    except Exception as exc:  # handed to the consumer, never swallowed
                        await self._send.send((False, exc))
        finally:
            aclose = getattr(self._source, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()
            self._done.set()
            _pumps.discard(self)

    async def receive_batch(self) -> list[Any]:
        """The next items (at least one), ``[]`` at the end; raises the producer's error."""
        import anyio

        if self._pending is not None:
            error, self._pending = self._pending, None
            raise error
        try:
            ok, value = await self._receive.receive()
        except anyio.EndOfStream:
            return []
        items: list[Any] = []
        while True:
            if not ok:
                if not items:
                    raise value
                self._pending = value  # deliver the items first, the error next time
                break
            items.append(value)
            try:
                ok, value = self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
        return items

    def cancel(self) -> None:
        """Cancel the producer without waiting for it."""
        self._scope.cancel()

    async def stop(self) -> None:
        """Cancel the producer and wait until it has closed its source."""
        self._scope.cancel()
        if self._started:  # a pump never started has nothing to wait for (it starts cancelled)
            await self._done.wait()
        self._receive.close()
