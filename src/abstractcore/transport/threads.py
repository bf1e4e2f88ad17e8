"""Reaching an event loop from a thread without blocking either, and a daemon thread for user code.

Used by the in-process models' thread bridge (``engines.worker``) and by the
tool loop (``run.py``, a user's blocking tool). Pure loop plumbing: no model,
no provider.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import sniffio

__all__ = ["CallSoon", "LoopGone", "call_soon_on_this_loop", "run_in_daemon_thread"]

R = TypeVar("R")


async def run_in_daemon_thread(fn: Callable[[], R], name: str = "abstractcore-call") -> R:
    """Run the blocking ``fn()`` in a new daemon thread and return its result (or raise its error).

    For user code that may never return (a tool): cancelling the awaiting task returns at
    once and abandons the thread, whose result is dropped. Being a daemon, an abandoned
    thread never holds the interpreter's exit (anyio's worker threads are not daemons: a
    cancelled run waited for its blocking tool before the process could exit). The caller's
    context variables are visible in the thread, as with ``anyio.to_thread.run_sync``.
    """
    soon = call_soon_on_this_loop()
    finished = anyio.Event()
    outcome: list[tuple[bool, Any]] = []
    context = contextvars.copy_context()

    def body() -> None:
        try:
            outcome.append((True, context.run(fn)))
        except BaseException as exc:  # handed to the awaiting task
            outcome.append((False, exc))
        try:
            soon(finished.set)
        except LoopGone:  # the awaiting side has gone with its loop
            pass

    threading.Thread(target=body, name=name, daemon=True).start()
    await finished.wait()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


#: Schedules ``fn(*args)`` on an event loop from another thread, without waiting.
CallSoon = Callable[..., None]


class LoopGone(Exception):
    """The event loop a thread wanted to reach has finished."""


def call_soon_on_this_loop() -> CallSoon:
    """A thread-safe, non-blocking "run this soon" for the running event loop.

    Built on the loops' own public APIs (asyncio's ``call_soon_threadsafe``,
    trio's ``TrioToken.run_sync_soon``): anyio has no public non-blocking
    equivalent in the versions this package supports.
    """
    library = sniffio.current_async_library()
    if library == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()

        def trio_soon(fn: Callable[..., object], *args: Any) -> None:
            try:
                token.run_sync_soon(fn, *args)
            except trio.RunFinishedError as exc:
                raise LoopGone("the trio run has finished") from exc

        return trio_soon
    import asyncio

    loop = asyncio.get_running_loop()

    def asyncio_soon(fn: Callable[..., object], *args: Any) -> None:
        if loop.is_closed():
            raise LoopGone("the event loop is closed")
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError as exc:  # closed between the check and the call
            raise LoopGone(str(exc)) from exc

    return asyncio_soon
