"""Child processes that get Ctrl-C the way a program started from a terminal does."""

from __future__ import annotations

import signal

__all__ = ["as_from_a_terminal"]


def as_from_a_terminal() -> None:
    """``preexec_fn``: SIGINT back to its default in the child.

    A process started in the background by a non-interactive shell (``cmd &``), as a CI runner
    may start the tests, has SIGINT ignored, and its children inherit that: Python then installs
    no KeyboardInterrupt handler and a Ctrl-C sent to the child does nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
