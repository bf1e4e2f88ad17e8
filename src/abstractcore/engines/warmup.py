"""Importing, off the event loop, what an in-process model's first call imports on it.

The first ``ModelWorker`` call on an event loop is anyio's first there: anyio imports its
backend for that loop lazily (``anyio._backends._asyncio`` and, through it, its abc, socket,
stream and task modules: ~35 ms of pure Python here), on the loop's own thread, so the caller's
loop stalled that long before the model even started loading (``benchmarks/load_lag.py``'s
"worker start" phase).

``start()`` (a ``ModelHost`` is created: ``create_llm`` of an in-process provider, usually at
startup) imports those modules once per process in a daemon thread, the switch interval lowered
as during a load (``gil.loading``) so the loop gets the GIL back within 1 ms. ``ready()``, awaited
by the worker before its first anyio call, waits for that thread without blocking the loop
(asyncio's ``wrap_future``, trio's own ``to_thread``: neither needs anyio's backend), then returns
at once on every later call. HTTP providers never start it: ``import abstractcore`` and their
``create_llm`` stay as light as before.
"""

from __future__ import annotations

import importlib
import sys
import threading
from concurrent.futures import Future

from abstractcore.engines.gil import loading

__all__ = ["FIRST_CALL_MODULES", "ready", "start"]

#: What the worker's first call imports on the event loop, per async library (``anyio`` loads
#: the backend of the running loop on first use; the memory streams on the first ``stream``).
FIRST_CALL_MODULES: dict[str, tuple[str, ...]] = {
    "asyncio": ("anyio._backends._asyncio", "anyio.streams.memory"),
    "trio": ("anyio._backends._trio", "anyio.streams.memory"),
}

_lock = threading.Lock()
_imports: Future[None] | None = None
_finished = False


def _wanted() -> list[str]:
    """The modules still to import: asyncio's always, trio's when trio is in use already."""
    libraries = ["asyncio", *(["trio"] if "trio" in sys.modules else [])]
    names = dict.fromkeys(name for library in libraries for name in FIRST_CALL_MODULES[library])
    return [name for name in names if name not in sys.modules]


def _import(names: list[str], done: Future[None]) -> None:
    global _finished
    try:
        with loading():
            for name in names:
                try:
                    importlib.import_module(name)
                except ImportError:  # e.g. trio's backend without trio: the call imports what it needs
                    pass
    finally:
        _finished = True
        done.set_result(None)


def start() -> None:
    """Begin importing the first call's modules in a daemon thread (once per process; a no-op
    when they are imported already or the thread has been started)."""
    global _imports, _finished
    with _lock:
        if _imports is not None:
            return
        done: Future[None] = Future()
        _imports = done
    done.set_running_or_notify_cancel()  # a caller cancelled while waiting never cancels it
    names = _wanted()
    if not names:
        _finished = True
        done.set_result(None)
        return
    threading.Thread(target=_import, args=(names, done), name="abstractcore-warmup", daemon=True).start()


async def ready() -> None:
    """(the event loop) Wait, with the loop free, until ``start()``'s imports are done (starting
    them if nobody has); returns at once once they are."""
    if _finished:
        return
    start()
    done = _imports
    if done is None or done.done():
        return
    import sniffio

    if sniffio.current_async_library() == "trio":
        import trio

        await trio.to_thread.run_sync(done.result)
    else:
        import asyncio

        await asyncio.wrap_future(done)
