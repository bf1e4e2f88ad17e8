"""Loading a model in a worker thread without stalling the caller's event loop.

A model loads in its worker thread, yet the event loop that waits for it still stalls whenever
that thread holds the GIL for long. Two kinds of stretch did (``benchmarks/local_models.py
--only-load-lag``):

- native libraries opened by an import: a C extension (numpy's ``_multiarray_umath`` and the
  OpenBLAS it links) or ``ctypes.CDLL`` (llama-cpp-python's ``libllama`` and its ggml
  libraries). CPython holds the GIL through ``dlopen`` and the libraries' constructors: 5-20 ms
  at a time here. ``preload`` opens those files first by calling libc's ``dlopen`` through
  ctypes, which releases the GIL; the import then finds them loaded.
- pure-Python work (importing llama_cpp, numpy and jinja2, compiling the chat template): a
  thread waiting for the GIL gets it only after the switch interval, 5 ms by default.
  ``loading()`` lowers it to ``LOAD_SWITCH_INTERVAL`` while a load runs, and puts the previous
  value back after the last of concurrent loads (unless someone changed it meanwhile).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

__all__ = ["LOAD_SWITCH_INTERVAL", "library_files", "loading", "preload"]

#: The switch interval (seconds) while a model loads: how long the event loop waits at most for
#: the GIL while the loading thread runs Python.
LOAD_SWITCH_INTERVAL = 0.001

#: Native files each package's import opens, relative to the package's directory.
_LIBRARIES: dict[str, tuple[str, ...]] = {
    "numpy": ("_core/_multiarray_umath.", "core/_multiarray_umath.", "linalg/_umath_linalg."),
    "llama_cpp": ("lib/libllama.",),
}

_lock = threading.Lock()
_loads = 0
_saved: float | None = None
_ours: float | None = None
_opened: set[str] = set()


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """While active (in any thread), the interpreter's switch interval is at most
    ``LOAD_SWITCH_INTERVAL``; nested and concurrent loads share one window."""
    global _loads, _saved, _ours
    with _lock:
        if _loads == 0:
            _saved = sys.getswitchinterval()
            if _saved > LOAD_SWITCH_INTERVAL:
                sys.setswitchinterval(LOAD_SWITCH_INTERVAL)
            _ours = sys.getswitchinterval()
        _loads += 1
    try:
        yield
    finally:
        with _lock:
            _loads -= 1
            if _loads == 0 and _saved is not None and sys.getswitchinterval() == _ours:
                sys.setswitchinterval(_saved)


def library_files(package: str) -> list[Path]:
    """The native files importing ``package`` opens (``_LIBRARIES``), found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    found: list[Path] = []
    for location in spec.submodule_search_locations:
        root = Path(location)
        for prefix in _LIBRARIES.get(package, ()):
            folder, _, stem = (root / prefix).as_posix().rpartition("/")
            found.extend(sorted(p for p in Path(folder).glob(stem + "*") if p.suffix in (".so", ".dylib")))
    return found


def _dlopen() -> Callable[[bytes, int], int | None] | None:
    """libc's ``dlopen`` as a ctypes function (which releases the GIL while it runs)."""
    if not sys.platform.startswith(("linux", "darwin")):
        return None
    try:
        function = ctypes.CDLL(None).dlopen
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_char_p, ctypes.c_int]
    function.restype = ctypes.c_void_p
    opened: Callable[[bytes, int], int | None] = function
    return opened


def preload(packages: Sequence[str]) -> None:
    """Open the native libraries of ``packages`` with the GIL released, ahead of their import
    (a no-op for a package already imported, where ``dlopen`` cannot be called, or on error:
    the import then opens them itself). The libraries stay loaded, as the import would keep them."""
    missing = [package for package in packages if package not in sys.modules]
    dlopen = _dlopen() if missing else None
    if dlopen is None:
        return
    flags = sys.getdlopenflags()
    for package in missing:
        if package == "llama_cpp" and os.environ.get("LLAMA_CPP_LIB_PATH"):
            continue  # llama-cpp-python opens its library from there: never load a second copy
        mode = os.RTLD_NOW if package == "llama_cpp" else flags  # as ctypes.CDLL / the import do
        for path in library_files(package):
            key = str(path)
            with _lock:
                if key in _opened:
                    continue
                _opened.add(key)
            dlopen(os.fsencode(path), mode)
