"""Interpreter-exit hooks that a second Ctrl-C does not turn into a traceback.

The package's exit hooks stop generation threads, free native models and close
connections, each with a bounded wait. A Ctrl-C landing in one of them (the
second of an impatient user, the first of a slow exit) printed "Exception
ignored in atexit callback ... KeyboardInterrupt" and skipped the rest of the
clean-up, which could leave a generation thread inside native code while the
library was torn down. So, once the first of them runs, Ctrl-C is ignored for
the rest of the exit (unless the program installed its own SIGINT handler):
the waits are bounded, so the exit still ends soon. A hook interrupted anyway
(a signal already pending when it started) runs again; its other failures are
dropped, the process is exiting anyway.

Nothing here imports at exit, for a second reason: CPython exits "killed by
SIGINT" (status 130 in a shell) after an unhandled ``KeyboardInterrupt`` only
if no code is ``exec``'d meanwhile, and importing a module for the first time
does that. The exit hook that imported ``transport/http.py`` turned every
Ctrl-C of a script using an in-process model into exit status 1.
"""

from __future__ import annotations

import atexit
import signal
import threading
from collections.abc import Callable
from types import FrameType

__all__ = ["CLOSE_ENGINES", "CLOSE_LOOPS", "STOP_GENERATIONS", "exit_hook", "ignore_further_interrupts"]

#: The exit stages, run in this order (lowest first) by one ``atexit`` handler: no generation thread
#: may still be inside native code when its model is freed, and no model may be freed (its native
#: log callback reaching Python) after the event loops that could still deliver its tokens are gone.
STOP_GENERATIONS = 0  # cancel every model call, join the threads (engines.host)
CLOSE_ENGINES = 10  # free every live engine (engines.host)
CLOSE_LOOPS = 100  # the sync face's background loop, open streams, connections (the default)

_hooks: list[tuple[int, int, Callable[[], object]]] = []


def exit_hook(fn: Callable[[], object], *, order: int = CLOSE_LOOPS) -> Callable[[], object]:
    """Register ``fn`` to run at interpreter exit, not cut short by Ctrl-C; returns ``fn``.

    Hooks run by ``order`` (``STOP_GENERATIONS``, then ``CLOSE_ENGINES``, then
    ``CLOSE_LOOPS``), those of one stage last registered first, as ``atexit``'s.
    ``fn`` must be idempotent and bound its own waits: a ``KeyboardInterrupt``
    that gets through runs it again; any other exception ends it quietly.
    """
    if not _hooks:
        atexit.register(_run_hooks)
    _hooks.append((order, -len(_hooks), fn))
    return fn


def _run_hooks() -> None:
    _quiet_exit()
    for _, _, fn in sorted(_hooks, key=lambda hook: hook[:2]):
        while True:
            try:
                fn()
                break
            except KeyboardInterrupt:  # pending before the handler changed: finish the clean-up
                continue
            except Exception:  # exiting anyway: never turn an exit into a traceback
                break


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A SIGINT handler that does nothing (a Python handler: unlike SIG_IGN, not inherited by children)."""


def _quiet_exit() -> None:
    """(exit hooks) Ignore Ctrl-C for the rest of the exit, unless the program has its own handler."""
    _replace_default_handler(_ignore)


def ignore_further_interrupts() -> None:
    """(the ``abstractcore`` commands, after catching Ctrl-C) Ignore Ctrl-C until the process ends.

    The process is exiting: another Ctrl-C must not print a traceback from the
    clean-up or the interpreter's shutdown, nor change the exit status (SIG_IGN
    holds to the very end, where a Python handler is reset to the default).
    """
    _replace_default_handler(signal.SIG_IGN)


def _replace_default_handler(handler: Callable[[int, FrameType | None], object] | signal.Handlers) -> None:
    # A SIGINT handler the program installed itself is left alone, and so is every thread but the
    # main one (only it can change signal handlers).
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):  # no signals here (an embedded interpreter)
        pass
