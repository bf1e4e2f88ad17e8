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
"""

from __future__ import annotations

import ctypes
import logging
import threading
from types import TracebackType
from typing import Any

__all__ = ["LOGGER_NAME", "eog_ids", "prepare", "trained_context"]

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
        callback = llama_cpp.llama_log_callback(_LineLog())
        # Kept on the llama_cpp module itself: it must outlive every native object that may
        # still log while the interpreter shuts down (module globals of ours are cleared first).
        llama_cpp._abstractcore_log_callback = callback
        llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
        _prepared = True


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
