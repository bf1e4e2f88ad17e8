"""``LlamaCppBatchEngine``: the ``BatchEngine`` facade over one ``Scheduler`` (and, for
``embed``, a separate embedding context)."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from abstractcore.engines import llamacpp_native
from abstractcore.engines.base import (
    BatchEngine,
    ContextSizes,
    EngineClosed,
    GenerationSpec,
    collect_garbage,
)
from abstractcore.engines.embedding import GGUFEmbedder
from abstractcore.engines.host import register
from abstractcore.engines.llamacpp import DEFAULT_N_CTX, gguf_trained_context
from abstractcore.engines.llamacpp_batch.loading import Options
from abstractcore.engines.llamacpp_batch.request import Generation
from abstractcore.engines.llamacpp_batch.scheduler import Scheduler
from abstractcore.engines.worker import EXIT_JOIN_SECONDS

__all__ = ["LlamaCppBatchEngine"]


class LlamaCppBatchEngine(BatchEngine):
    """A GGUF model served to up to ``parallel`` requests at once by continuous batching.

    ``n_ctx`` is the context of each sequence (default 4096, as ``LlamaCppEngine``); the KV cache
    holds ``n_ctx x parallel`` cells. ``parallel=None`` chooses ``DEFAULT_PARALLEL`` (4), or fewer
    when their KV cache would exceed ``AUTO_KV_BUDGET`` (1 GiB). ``n_threads`` (default: half the
    CPUs, as llama-cpp-python) is used for every step. Tools: the chat template receives them; a forced tool
    (``tool_choice`` naming it) is generated under a grammar of its parameters and returned in
    ``Outcome.tool_calls``; otherwise the text is returned as generated.
    """

    prefix_cache: ClassVar[bool] = True

    supports_tools = True
    extra_body_fields = frozenset({"grammar"})

    def __init__(
        self,
        path: Path,
        *,
        parallel: int | None = None,
        n_ctx: int | None = None,
        n_gpu_layers: int | None = None,
        n_threads: int | None = None,
        repack: bool | None = None,
    ) -> None:
        self.path = path
        self.repack = repack
        #: Sequences; None until loaded when chosen automatically (``auto_parallel``).
        self.parallel = parallel
        self._auto = parallel is None
        self.n_ctx = n_ctx or DEFAULT_N_CTX
        self.n_gpu_layers = n_gpu_layers
        self.n_threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        self._scheduler: Scheduler | None = None
        self._embedder: GGUFEmbedder | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LlamaCppBatchEngine({str(self.path)!r}, parallel={self.parallel})"

    @property
    def loaded(self) -> bool:
        """True while the model is in memory."""
        return self._scheduler is not None

    @property
    def busy(self) -> bool:
        """True while requests are queued or running."""
        scheduler = self._scheduler
        return scheduler is not None and scheduler.busy

    def load(self) -> None:
        """Load the GGUF and create the context and its scheduler thread."""
        llama_cpp = llamacpp_native.import_llama_cpp()
        llamacpp_native.prepare(llama_cpp)
        options = Options(
            self.n_ctx,
            None if self._auto else self.parallel,
            self.n_threads,
            self.n_gpu_layers,
            llamacpp_native.use_extra_buffers(llama_cpp, self.repack),
        )
        with self._lock:
            if self._scheduler is None:
                self._scheduler = Scheduler(llama_cpp, self.path, options)
                self.parallel = self._scheduler.n_seq
                register(self)

    def submit(
        self, spec: GenerationSpec, emit: Callable[[str], None] | None, cancel: threading.Event
    ) -> Generation:
        """Queue ``spec``; ``emit`` receives each piece of text on the scheduler thread (keep it
        quick, never block in it). Returns at once; ``EngineClosed`` when not loaded."""
        scheduler = self._scheduler
        if scheduler is None:
            raise EngineClosed("the model is not loaded")
        return scheduler.submit(spec, emit, cancel)

    def count_prompt(self, spec: GenerationSpec) -> int:
        """The prompt tokens of ``spec``, rendered and tokenized as ``submit`` does."""
        scheduler = self._scheduler
        if scheduler is None:
            raise EngineClosed("the model is not loaded")
        return len(scheduler.prompt_tokens(spec))

    def template_switches(self) -> frozenset[str]:
        """``enable_thinking`` when the GGUF's chat template reads it."""
        scheduler = self._scheduler
        if scheduler is None:
            raise EngineClosed("the model is not loaded")
        return scheduler.vocab.template_switches()

    def stats(self) -> dict[str, int]:
        """``pending``, ``active``, ``kv_tokens`` (cells in use), ``cached_tokens`` (idle caches), and
        since load ``steps`` (decode steps), ``prompt_tokens_decoded`` and ``prompt_tokens_copied``
        (prompt tokens obtained from another sequence's KV cells)."""
        scheduler = self._scheduler
        if scheduler is None:
            return {"pending": 0, "active": 0, "kv_tokens": 0, "cached_tokens": 0, "steps": 0}
        return scheduler.stats()

    def context_sizes(self) -> ContextSizes:
        """The GGUF's trained context (its metadata) and ``n_ctx``, what each sequence gets."""
        scheduler = self._scheduler
        if scheduler is not None:
            return ContextSizes(scheduler.n_ctx_train, scheduler.n_ctx_seq)
        return ContextSizes(gguf_trained_context(self.path), self.n_ctx)

    def embed(self, texts: Sequence[str], cancel: threading.Event) -> tuple[list[list[float]], int]:
        """Mean-pooled, normalised vectors from a separate context in embedding mode (``embedding``);
        generation goes on meanwhile."""
        with self._lock:
            if self._embedder is None:
                self._embedder = GGUFEmbedder(
                    self.path, n_threads=self.n_threads, n_gpu_layers=self.n_gpu_layers, repack=self.repack
                )
                register(self)
            embedder = self._embedder
        return embedder.embed(texts, cancel)

    def unload(self) -> None:
        """Cancel queued and running requests (they end "cancelled"), stop the scheduler thread
        and free the model and the contexts; ``load`` may be called again."""
        self._shutdown(timeout=None)

    def close_at_exit(self, workers_stopped: bool) -> None:
        """(interpreter exit) Stop the scheduler (aborting a step in progress, bounded) and free the
        model, whether or not the worker threads stopped: the scheduler is not one of them."""
        self._shutdown(timeout=EXIT_JOIN_SECONDS)

    def _shutdown(self, timeout: float | None) -> bool:
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
            embedder, self._embedder = self._embedder, None
        if embedder is not None:
            embedder.close()
        if scheduler is None:
            return True
        stopped = scheduler.close(timeout)
        ref = weakref.ref(scheduler)
        del scheduler
        collect_garbage(ref)
        return stopped
