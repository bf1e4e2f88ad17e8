"""llama.cpp's process-wide settings, made safe once: its log goes to ``logging``, never to fd 1/2.

llama-cpp-python silences llama.cpp with ``verbose=False`` by redirecting
file descriptors 1 and 2 of the whole process while a model loads
(``suppress_stdout_stderr``). That is not thread-safe: output other threads
print meanwhile is lost, and two loads at once can leave stdout and stderr
closed for good. ``prepare()`` instead

- routes llama.cpp's (and ggml's) own log through ``llama_log_set`` into the
  ``abstractcore.llamacpp`` logger (DEBUG for its chatter, WARNING/ERROR as
  llama.cpp rates them), and
- replaces llama-cpp-python's descriptor-redirecting helper by a no-op in the
  modules that use it, so no file descriptor is ever touched. Nothing is lost
  by that: with the log callback in place there is nothing left for it to hide.

It also decides whether llama.cpp may *repack* weights into its extra CPU
buffer types (``use_extra_bufts``: the AMX tiles, the interleaved AVX2/NEON
layouts). A build that has AMX compiled in (``-march=native`` on a Xeon with
AMX) crashes in that path on such a CPU: ``llama_decode`` segfaults once a
prompt is longer than a few dozen tokens, and llama.cpp's own server dies at
start unless given ``--no-repack``. ``use_extra_buffers`` turns repacking off
exactly there, unless the caller asks for it (``repack=True``); a build too old
to turn it off raises ``ModelLoadError`` saying how to reinstall, never crashes.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from abstractcore.core.errors import ModelLoadError
from abstractcore.engines.base import require
from abstractcore.engines.gil import preload

__all__ = [
    "LOGGER_NAME",
    "build_features",
    "cpu_flags",
    "eog_ids",
    "import_llama_cpp",
    "prepare",
    "repack_is_safe",
    "trained_context",
    "use_extra_buffers",
]

LOGGER_NAME = "abstractcore.llamacpp"
logger = logging.getLogger(LOGGER_NAME)

# ggml.h's ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the line).
# (llama-cpp-python's _logger.py still documents an older order.) llama.cpp's INFO is chatter
# about every load: DEBUG here.
_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
_CONT = 5
#: Warnings caused by our own deliberate settings (mean pooling for embeddings): DEBUG here.
_EXPECTED = ("llama_init_from_model: model default pooling_type is",)
_lock = threading.Lock()
_prepared = False


class _NoRedirect:
    """Stands in for llama-cpp-python's ``suppress_stdout_stderr``: touches no file descriptor."""

    def __init__(self, disable: bool = True) -> None:
        self.disable = disable

    def __enter__(self) -> _NoRedirect:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        return None


class _LineLog:
    """Joins llama.cpp's log pieces into lines (it sends some lines in several calls)."""

    def __init__(self) -> None:
        self.level = logging.DEBUG
        self.pending = ""

    def __call__(self, level: int, text: bytes | None, _user_data: Any) -> None:
        try:
            if level != _CONT:
                self.level = _LEVELS.get(level, logging.DEBUG)
            if not logger.isEnabledFor(self.level):
                return
            self.pending += (text or b"").decode("utf-8", errors="replace")
            *lines, self.pending = self.pending.split("\n")
            for line in lines:
                if not line.strip():
                    continue
                level = logging.DEBUG if line.startswith(_EXPECTED) else self.level
                if logger.isEnabledFor(level):
                    logger.log(level, "%s", line.rstrip())
        except BaseException:
            pass


def import_llama_cpp(what: str = "Running GGUF models") -> Any:
    """``llama_cpp``, imported with its native libraries (and numpy's) opened first with the GIL
    released (``gil.preload``): an event loop waiting for a load is not stalled by ``dlopen``."""
    preload(("numpy", "llama_cpp"))
    return require("llama_cpp", "llamacpp", what)


def prepare(llama_cpp: Any) -> None:
    """Install the log callback and the no-op silencer (once per process)."""
    global _prepared
    if _prepared:
        return
    with _lock:
        if _prepared:
            return
        import importlib

        for name in ("llama_cpp.llama", "llama_cpp._internals", "llama_cpp.llama_chat_format"):
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            if hasattr(module, "suppress_stdout_stderr"):
                setattr(module, "suppress_stdout_stderr", _NoRedirect)  # noqa: B010
        try:
            _hook_default_params(importlib.import_module("llama_cpp.llama_cpp"))
        except ImportError:
            pass
        callback = llama_cpp.llama_log_callback(_LineLog())
        # Kept on the llama_cpp module itself: it must outlive every native object that may
        # still log while the interpreter shuts down (module globals of ours are cleared first).
        llama_cpp._abstractcore_log_callback = callback
        llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
        _prepared = True


# -- weight repacking (extra buffer types) -------------------------------------------------------

_REINSTALL = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir llama-cpp-python '
    "(a portable AVX2 build: no AMX kernels)"
)
_override = threading.local()


def build_features(llama_cpp: Any) -> frozenset[str]:
    """The CPU features this llama.cpp build was compiled for (``AVX2``, ``AVX512``, ``AMX_INT8``...)."""
    try:
        info = llama_cpp.llama_print_system_info()
    except Exception:  # an old or unusual build: nothing known
        return frozenset()
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    features = set()
    for part in text.replace("|", "\n").splitlines():
        name, _, value = part.partition("=")
        if value.strip() == "1":
            features.add(name.strip().rsplit(" ", 1)[-1])
    return frozenset(features)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The running CPU's feature flags (Linux ``/proc/cpuinfo``); empty where unknown."""
    if not sys.platform.startswith("linux"):
        return frozenset()
    try:
        with cpuinfo.open() as lines:
            for line in lines:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def repack_is_safe(build: frozenset[str], cpu: frozenset[str]) -> bool:
    """False where repacking is known to crash: a build with AMX kernels on a CPU that has AMX.

    Seen on a Xeon (AVX-512 + AMX, in a VM) with llama-cpp-python 0.3.36 built by default
    (``GGML_NATIVE=ON``): SIGSEGV in ``llama_decode``; the same build runs with repacking off,
    and a ``GGML_NATIVE=OFF`` (AVX2) build runs with it on. AVX-512 without AMX runs either way.
    """
    return not ("AMX_INT8" in build and cpu & {"amx_int8", "amx_tile"})


def use_extra_buffers(llama_cpp: Any, requested: bool | None) -> bool:
    """Whether llama.cpp may repack weights on this machine: ``requested`` if given, else the safe default.

    Raises ``ModelLoadError`` when repacking would crash and this llama-cpp-python cannot turn it off.
    """
    if requested is not None:
        return requested
    if repack_is_safe(build_features(llama_cpp), cpu_flags()):
        return True
    fields = {name for name, *_ in getattr(llama_cpp.llama_model_params, "_fields_", ())}
    if "use_extra_bufts" not in fields:
        raise ModelLoadError(
            "this llama-cpp-python was built with AMX kernels, whose weight repacking crashes llama.cpp "
            f"on this CPU, and it is too old to turn repacking off. Reinstall it: {_REINSTALL}; "
            "or pass repack=True to try anyway."
        )
    logger.info(
        "llama.cpp weight repacking is off: this build's AMX path crashes on this CPU (repack=True to force)"
    )
    return False


def set_extra_buffers(params: Any, enabled: bool) -> None:
    """Apply ``use_extra_buffers``'s answer to a ``llama_model_params`` (a no-op where it is on)."""
    if not enabled and hasattr(params, "use_extra_bufts"):
        params.use_extra_bufts = False


@contextlib.contextmanager
def model_params(enabled: bool) -> Iterator[None]:
    """While active on this thread, the ``llama_model_params`` that ``llama_cpp.Llama`` builds get
    ``use_extra_bufts = enabled`` (``Llama`` takes no such argument; ``prepare`` installs the hook)."""
    previous = getattr(_override, "extra_buffers", None)
    _override.extra_buffers = enabled
    try:
        yield
    finally:
        _override.extra_buffers = previous


def _hook_default_params(bindings: Any) -> None:
    original = bindings.llama_model_default_params
    if getattr(original, "_abstractcore_hook", False):
        return

    def llama_model_default_params() -> Any:
        params = original()
        enabled = getattr(_override, "extra_buffers", None)
        if enabled is not None:
            set_extra_buffers(params, enabled)
        return params

    llama_model_default_params._abstractcore_hook = True  # type: ignore[attr-defined]
    bindings.llama_model_default_params = llama_model_default_params
    init_context = bindings.llama_init_from_model

    def llama_init_from_model(model: Any, params: Any) -> Any:
        if getattr(_override, "default_attention", False):
            params.flash_attn_type = bindings.LLAMA_FLASH_ATTN_TYPE_AUTO
        return init_context(model, params)

    bindings.llama_init_from_model = llama_init_from_model


@contextlib.contextmanager
def default_attention() -> Iterator[None]:
    """While active on this thread, a context ``llama_cpp.Llama`` creates gets llama.cpp's default
    attention (``LLAMA_FLASH_ATTN_TYPE_AUTO``: flash attention where the device has it, as the batch
    engine's context), not llama-cpp-python's ``flash_attn=False``.

    The two kernels round differently: 9 of 20 greedy answers (``benchmarks/local_models.py``,
    ``PROMPTS20``, 32 tokens) differed between ``parallel=1`` and ``parallel>1`` with the kernels
    apart, 0 of 20 with them alike. ``Llama(flash_attn=True)`` would insist on flash attention
    even where the device has none.
    """
    previous = getattr(_override, "default_attention", False)
    _override.default_attention = True
    try:
        yield
    finally:
        _override.default_attention = previous


def eog_ids(llama_cpp: Any, vocab: Any) -> frozenset[int]:
    """Every token id that ends a generation (``llama_vocab_is_eog``): EOS, EOT, ``<|im_end|>``, ..."""
    count = int(llama_cpp.llama_vocab_n_tokens(vocab))
    is_eog = llama_cpp.llama_vocab_is_eog
    return frozenset(token for token in range(count) if is_eog(vocab, token))


def trained_context(llama_cpp: Any, path: str) -> int | None:
    """The context length the GGUF at ``path`` was trained for (its ``<arch>.context_length``),
    read by llama.cpp itself with ``vocab_only`` (the metadata and the vocabulary, no weights;
    ~0.2 s for SmolLM2's 49k tokens)."""
    prepare(llama_cpp)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(path.encode(), params)
    if not model:
        return None
    try:  # with vocab_only the hyperparameters are not read (n_ctx_train is 0): the metadata is
        arch = _meta(llama_cpp, model, "general.architecture")
        found = _meta(llama_cpp, model, f"{arch}.context_length") if arch else None
    finally:
        llama_cpp.llama_model_free(model)
    return int(found) if found and found.isdigit() and int(found) > 0 else None


def _meta(llama_cpp: Any, model: Any, key: str) -> str | None:
    buffer = ctypes.create_string_buffer(256)
    n = int(llama_cpp.llama_model_meta_val_str(model, key.encode(), buffer, len(buffer)))
    return buffer.value.decode("utf-8", errors="replace") if n >= 0 else None
