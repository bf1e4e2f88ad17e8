"""Loading a GGUF for batching: the model, one context of per-sequence KV caches, and how many
sequences to make when the caller does not say (``auto_parallel``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abstractcore.engines import llamacpp_native

__all__ = [
    "AUTO_KV_BUDGET",
    "BATCH",
    "DEFAULT_PARALLEL",
    "MAX_PARALLEL",
    "Options",
    "auto_parallel",
    "kv_bytes_per_token",
    "load",
]

#: Sequences decoded together by default (see benchmarks/README.md for the measurements).
DEFAULT_PARALLEL = 4
#: Without an explicit ``parallel``, fewer sequences are made when 4 would take more KV cache.
AUTO_KV_BUDGET = 1 << 30
#: llama.cpp's LLAMA_MAX_SEQ.
MAX_PARALLEL = 256
#: llama_batch capacity and n_batch / n_ubatch.
BATCH = 512


@dataclass(frozen=True)
class Options:
    """How the context is built."""

    n_ctx: int  # per sequence
    n_seq: int | None  # None: chosen from the KV cache's size (``auto_parallel``)
    n_threads: int
    n_gpu_layers: int | None
    repack: bool = True  # llama.cpp's weight repacking (``llamacpp_native.use_extra_buffers``)


def load(llama_cpp: Any, path: Path, options: Options) -> tuple[Any, Any]:
    """The model and a context of ``n_seq`` sequences of ``n_ctx`` cells each (per-sequence KV)."""
    llama_cpp.llama_backend_init()
    mparams = llama_cpp.llama_model_default_params()
    llamacpp_native.set_extra_buffers(mparams, options.repack is not False)
    if options.n_gpu_layers is not None:
        mparams.n_gpu_layers = options.n_gpu_layers
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
    if not model:
        raise ValueError(f"llama.cpp could not load {path} (see the abstractcore.llamacpp log)")
    n_seq = options.n_seq or auto_parallel(llama_cpp, model, options.n_ctx)
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = options.n_ctx * n_seq
    cparams.n_batch = cparams.n_ubatch = BATCH
    cparams.n_seq_max = n_seq
    cparams.n_threads = cparams.n_threads_batch = options.n_threads
    cparams.kv_unified = False
    cparams.no_perf = True
    ctx = llama_cpp.llama_init_from_model(model, cparams)
    if not ctx:
        llama_cpp.llama_model_free(model)
        raise MemoryError(f"llama.cpp could not create a context of {n_seq} x {options.n_ctx} tokens")
    return model, ctx


def kv_bytes_per_token(llama_cpp: Any, model: Any) -> int:
    """Bytes of KV cache one token takes in every layer (f16 keys and values)."""
    layers = int(llama_cpp.llama_model_n_layer(model))
    heads = max(1, int(llama_cpp.llama_model_n_head(model)))
    kv_width = int(llama_cpp.llama_model_n_embd(model)) // heads * int(llama_cpp.llama_model_n_head_kv(model))
    return 2 * layers * 2 * kv_width


def auto_parallel(llama_cpp: Any, model: Any, n_ctx: int) -> int:
    """``DEFAULT_PARALLEL`` sequences, fewer when their KV cache would exceed ``AUTO_KV_BUDGET``.

    SmolLM2-135M: 90 MiB per 4,096-token sequence, so 4; an 8B model with 128 KiB per token:
    512 MiB per sequence, so 2; one sequence when a single one is over the budget.
    """
    per_sequence = kv_bytes_per_token(llama_cpp, model) * n_ctx
    return max(1, min(DEFAULT_PARALLEL, AUTO_KV_BUDGET // max(1, per_sequence)))
