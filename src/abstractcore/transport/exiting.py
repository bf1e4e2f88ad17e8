"""Interpreter-exit hooks that a second Ctrl-C does not turn into a traceback.

The package's exit hooks stop generation threads, free native models and close
connections, each with a bounded wait. A Ctrl-C landing in one of them (the
second of an impatient user, the first of a slow exit) used to print "Exception
ignored in atexit callback ... KeyboardInterrupt" and skip the rest of the
clean-up, so a generation thread could still be inside native code while the
library was torn down. ``exit_hook`` registers a function that is run again
after an interrupt (every hook here is idempotent and bounded) and whose other
failures are dropped: the process is exiting anyway. This module imports only
the standard library, at import time, never at exit.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable

__all__ = ["exit_hook"]


def exit_hook(fn: Callable[[], object]) -> Callable[[], object]:
    """Register ``fn`` to run at interpreter exit, uninterruptible by Ctrl-C; returns ``fn``.

    ``fn`` must be idempotent and bound its own waits: a ``KeyboardInterrupt``
    runs it again from the start; any other exception ends it quietly.
    """

    def hook() -> None:
        while True:
            try:
                fn()
                return
            except KeyboardInterrupt:  # a second Ctrl-C: finish the bounded clean-up anyway
                continue
            except Exception:  # exiting anyway: never turn an exit into a traceback
                return

    hook.__name__ = hook.__qualname__ = getattr(fn, "__name__", "exit_hook")
    atexit.register(hook)
    return fn
