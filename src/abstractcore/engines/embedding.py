"""Embeddings in process: llama.cpp's embedding mode for GGUF files, mean pooling for transformers.

Both give one L2-normalised vector per text (cosine similarity is then a dot
product), the mean of the last hidden states over the text's tokens. That is
what llama.cpp's ``--pooling mean`` and sentence-transformers' default do; a
chat model such as SmolLM2 declares no pooling of its own, so mean pooling is
set explicitly. A text longer than the embedding context raises
``ContextLengthExceededError`` (nothing is cut silently). Texts are embedded
in groups of about ``GROUP_TOKENS`` tokens with the cancel flag checked
between groups (a cancelled or timed-out call frees the model within one
group: ~1-5 s of prompt processing on a 2-core CPU for a 135M model).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from abstractcore.core.errors import ContextLengthExceededError
from abstractcore.engines import llamacpp_native
from abstractcore.engines.base import collect_garbage

__all__ = ["EMBED_CONTEXT", "GROUP_TOKENS", "GGUFEmbedder", "check_embed_context", "close_llama", "in_groups"]

#: Tokens per text the GGUF embedding context holds (the batch is as large, one text per decode).
EMBED_CONTEXT = 2048
#: Tokens embedded between two checks of the cancel flag (a longer text is a group of its own).
GROUP_TOKENS = 256


def check_embed_context(index: int, tokens: int, context: int) -> None:
    """Raise ``ContextLengthExceededError`` naming text ``index`` when it has more tokens than fit."""
    if tokens > context:
        raise ContextLengthExceededError(
            f"Text {index} has {tokens} tokens; the embedding context holds {context}. "
            "Split the text into shorter pieces.",
            prompt_tokens=tokens,
            context_length=context,
        )


def in_groups(
    texts: Sequence[str],
    counts: Sequence[int],
    context: int,
    cancel: threading.Event,
    embed_group: Callable[[list[str]], list[list[float]]],
) -> tuple[list[list[float]], int]:
    """Check every text's token count against ``context``, then run ``embed_group`` over groups of
    about ``GROUP_TOKENS`` tokens; returns (vectors, tokens).

    Once ``cancel`` is set (the caller was cancelled or timed out and has already
    gone) it stops and returns what it has; nobody reads that result.
    """
    for index, count in enumerate(counts):
        check_embed_context(index, count, context)
    vectors: list[list[float]] = []
    group: list[str] = []
    size = 0
    for text, count in zip(texts, counts):
        if group and size + count > GROUP_TOKENS:
            if cancel.is_set():
                return vectors, sum(counts)
            vectors += embed_group(group)
            group, size = [], 0
        group.append(text)
        size += count
    if group and not cancel.is_set():
        vectors += embed_group(group)
    return vectors, sum(counts)


class GGUFEmbedder:
    """A second llama.cpp context on a GGUF file, in embedding mode with mean pooling.

    Loaded on the first ``embed`` (the weights are memory-mapped, so the page
    cache shares them with the generating context); ``close`` frees it.
    """

    def __init__(
        self,
        path: Path,
        *,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        repack: bool | None = None,
    ) -> None:
        self.path = path
        self.n_threads = n_threads
        self.n_gpu_layers = n_gpu_layers
        self.repack = repack
        self._llama: Any = None

    def _load(self) -> Any:
        if self._llama is None:
            llama_cpp = llamacpp_native.import_llama_cpp("Embedding with GGUF models")
            llamacpp_native.prepare(llama_cpp)
            kwargs: dict[str, Any] = {
                "model_path": str(self.path),
                "embedding": True,
                "pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                "n_ctx": EMBED_CONTEXT,
                "n_batch": EMBED_CONTEXT,
                "n_ubatch": EMBED_CONTEXT,
                "verbose": False,
            }
            if self.n_threads is not None:
                kwargs["n_threads"] = self.n_threads
            if self.n_gpu_layers is not None:
                kwargs["n_gpu_layers"] = self.n_gpu_layers
            with llamacpp_native.model_params(llamacpp_native.use_extra_buffers(llama_cpp, self.repack)):
                self._llama = llama_cpp.Llama(**kwargs)
        return self._llama

    def embed(self, texts: Sequence[str], cancel: threading.Event) -> tuple[list[list[float]], int]:
        """(one normalised vector per text, the number of tokens read)."""
        llama = self._load()
        counts = [len(llama.tokenize(t.encode("utf-8"), add_bos=True, special=False)) for t in texts]

        def group(batch: list[str]) -> list[list[float]]:
            vectors = llama.embed(batch, normalize=True, truncate=False)
            return [[float(x) for x in v] for v in vectors]

        return in_groups(texts, counts, EMBED_CONTEXT, cancel, group)

    def close(self) -> None:
        """Free the embedding context (``embed`` loads it again)."""
        llama, self._llama = self._llama, None
        close_llama(llama)


def close_llama(llama: Any) -> None:
    """Close a ``llama_cpp.Llama`` (model and context) and collect it, so its memory goes back now."""
    if llama is None:
        return
    llama.close()
    ref = weakref.ref(llama)
    del llama
    collect_garbage(ref)
