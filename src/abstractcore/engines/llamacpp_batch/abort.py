"""Aborting a decode step: a flag llama.cpp reads inside ``llama_decode``, without Python.

A step made only of cancelled sequences, ``unload()`` and interpreter exit abort ``llama_decode``
itself, within one graph node, through llama.cpp's abort callback. llama.cpp then logs the
aborted step as errors; on the scheduler thread, after an abort asked for, those lines are dropped.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from typing import Any

from abstractcore.engines import llamacpp_native

__all__ = ["AbortFlag", "quiet_aborts_on_this_thread"]


class AbortFlag:
    """A flag byte for llama.cpp's abort callback (``bool (*)(void *)``), read without the GIL.

    libc's ``strlen`` on this two-byte buffer returns 1 while the first byte is set and 0 while it
    is NUL, which is exactly "abort now?". A Python callback would take the GIL at every graph
    node (~1,000 per step), competing with the event loop's thread each time.
    """

    def __init__(self, llama_cpp: Any) -> None:
        self._byte = ctypes.create_string_buffer(2)
        self.callback: Any = None
        try:
            libc = ctypes.cdll.msvcrt if os.name == "nt" else ctypes.CDLL(None)
            self.callback = llama_cpp.ggml_abort_callback(ctypes.cast(libc.strlen, ctypes.c_void_p).value)
        except (OSError, AttributeError, TypeError):  # no libc to borrow: steps end on their own
            pass

    def install(self, llama_cpp: Any, ctx: Any) -> None:
        """Make ``ctx``'s decode steps check this flag."""
        if self.callback is not None:
            llama_cpp.llama_set_abort_callback(ctx, self.callback, ctypes.cast(self._byte, ctypes.c_void_p))

    def set(self) -> None:
        """Abort the step in progress (and every step until ``clear``)."""
        self._byte[0] = b"\x01"

    def clear(self) -> None:
        """Let steps run."""
        self._byte[0] = b"\x00"

    def is_set(self) -> bool:
        """True while steps abort."""
        return self._byte.raw[0] != 0


_scheduler_thread = threading.local()
#: llama.cpp logs these as errors when a step is aborted; after an abort asked for, they are noise.
_ABORT_NOISE = (
    "graph_compute:",
    "process_ubatch: failed to compute graph",
    "decode: removing memory",
    "llama_decode: failed to decode, ret = 2",
)


def quiet_aborts_on_this_thread(abort: AbortFlag) -> None:
    """While ``abort`` is set, drop llama.cpp's error lines about aborted steps logged on this
    thread (the scheduler's)."""
    _scheduler_thread.abort = abort


class _QuietAbort(logging.Filter):
    """Drops llama.cpp's error lines about a step this engine aborted on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        abort: AbortFlag | None = getattr(_scheduler_thread, "abort", None)
        return not (abort is not None and abort.is_set() and record.getMessage().startswith(_ABORT_NOISE))


logging.getLogger(llamacpp_native.LOGGER_NAME).addFilter(_QuietAbort())
