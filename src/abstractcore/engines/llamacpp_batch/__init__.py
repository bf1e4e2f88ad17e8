"""Continuous batching for GGUF models in process: one llama.cpp context serves many requests at once.

``LlamaCppBatchEngine`` runs the "huggingface" provider's GGUF models when ``parallel > 1``. It
owns one ``llama_context`` with ``parallel`` sequences and one scheduler thread, built on
llama-cpp-python's low-level API (``llama_batch``, ``llama_decode``, per-sequence KV-cache calls,
``llama_sampler`` chains):

- ``submit()`` (any thread) renders the prompt with the GGUF's chat template, tokenizes it and
  builds the request's sampler chain, then queues it and returns a ``Generation`` at once;
- between two decode steps the scheduler admits queued requests into free sequences, then
  decodes ONE batch per step: a token for every generating sequence and, within a budget of
  ``PREFILL_CHUNK`` tokens, chunks of the prompts still being read (chunked prefill);
- each sequence samples with its own chain (grammar, penalties, top-k/top-p/min-p,
  temperature, seed), cuts at its own stop strings and hands its text to its own callback.

Measured choices (``benchmarks/README.md``):

- The KV cache is split per sequence and every sequence gets the whole ``n_ctx``: a prompt
  that fits with ``parallel=1`` fits here, and a sequence's cells are laid out exactly as if it
  ran alone, so greedy output does not depend on what else is in the batch (with flash
  attention, llama.cpp's default on CPU). The price is memory: ``n_ctx x parallel`` cells.
- A finished request's tokens stay in its sequence (a prefix cache, as ``Llama`` and
  llama-server keep one): a later prompt sharing that prefix decodes only the rest.
- A prompt that shares ``MIN_SHARED_COPY`` tokens or more with a running request's gets them by
  copying that sequence's KV cells (``llama_memory_seq_cp``, a whole-stream copy, ~10 ms for
  90 MiB) instead of decoding them, and waits in the queue while that request is still
  decoding them. Every chat prompt begins with the template and the system prompt, so the
  first burst on a fresh model decoded that once per sequence: its gather of 8 was 1.05x
  sequential calls where later ones were 1.85x; it now decodes it once (``stats()`` counts
  ``prompt_tokens_decoded`` and ``prompt_tokens_copied``).
- Cancellation is checked every step. A step made only of cancelled sequences, ``unload()``
  and interpreter exit abort ``llama_decode`` itself, within one graph node, through
  llama.cpp's abort callback, which reads a flag byte without taking the GIL.

llama.cpp's log goes to the ``abstractcore.llamacpp`` logger (``llamacpp_native``).

The modules, one job each: ``engine`` (``LlamaCppBatchEngine``, the facade), ``scheduler`` (the
thread, the queue and the decode loop), ``sequences`` (free sequences, prefix caches, copying a
donor's cells), ``request`` (``Generation`` and the scheduler's state of a request), ``vocab``
(chat template, tokenizing, token bytes), ``sampling`` (sampler chains), ``abort`` (the abort
flag) and ``loading`` (model, context, ``auto_parallel``).
"""

from __future__ import annotations

from abstractcore.engines.base import EngineClosed
from abstractcore.engines.llamacpp_batch.engine import LlamaCppBatchEngine
from abstractcore.engines.llamacpp_batch.loading import (
    AUTO_KV_BUDGET,
    DEFAULT_PARALLEL,
    MAX_PARALLEL,
    auto_parallel,
    kv_bytes_per_token,
)
from abstractcore.engines.llamacpp_batch.request import Generation
from abstractcore.engines.llamacpp_batch.scheduler import PREFILL_CHUNK
from abstractcore.engines.llamacpp_batch.sequences import MIN_SHARED_COPY

__all__ = [
    "AUTO_KV_BUDGET",
    "DEFAULT_PARALLEL",
    "MAX_PARALLEL",
    "MIN_SHARED_COPY",
    "PREFILL_CHUNK",
    "EngineClosed",
    "Generation",
    "LlamaCppBatchEngine",
    "auto_parallel",
    "kv_bytes_per_token",
]
