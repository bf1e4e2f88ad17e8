"""The "mlx" provider: MLX models run in this process by mlx-lm (Apple silicon, or CPU).

``create_llm("mlx", model="mlx-community/...")`` takes a model directory
(safetensors + config + tokenizer) or a repository id already in the local
Hugging Face cache; weights are never downloaded. The engine is
``engines/mlx.py``; with ``parallel=N`` (N > 1) concurrent calls are batched by
mlx-lm's ``BatchGenerator`` (``engines/mlx_batch.py``). The default is 1: a
seeded sampled request is then reproducible whatever else runs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.errors import ConfigurationError, ModelNotFoundError
from abstractcore.engines.base import Engine
from abstractcore.engines.mlx import MLXEngine
from abstractcore.engines.mlx_batch import MLXBatchEngine
from abstractcore.engines.model_files import locate
from abstractcore.providers.local import LocalProvider

__all__ = ["MLXProvider"]


class MLXProvider(LocalProvider):
    """MLX models (a local directory or a cached ``mlx-community/...`` repository)."""

    name: ClassVar[str] = "mlx"
    options: ClassVar[frozenset[str]] = frozenset({"cache_dir", "parallel"})
    capabilities: Capabilities = Capabilities(
        tools=False, structured_output=True, vision=False, stream_usage=True, local=True
    )

    def _configure(self, options: dict[str, Any]) -> None:
        self.cache_dir: str | None = options.get("cache_dir")
        parallel = options.get("parallel", 1)
        if isinstance(parallel, bool) or not isinstance(parallel, int) or not 1 <= parallel <= 256:
            raise ConfigurationError(f"parallel must be an integer between 1 and 256; got {parallel!r}.")
        self.parallel = parallel
        self._parallel: int = parallel

    def _create_engine(self) -> Engine:
        where = locate(self.model, provider=self.name, cache_dir=self.cache_dir)
        if not where.is_dir() or not (where / "config.json").is_file():
            raise ModelNotFoundError(
                f"{self.model!r} is not an MLX model directory (it needs config.json and "
                f"*.safetensors); convert a model with `mlx_lm.convert` or get one from "
                f"mlx-community with `hf download`.",
                provider=self.name,
                model=self.model,
                status_code=None,
            )
        return MLXBatchEngine(where, parallel=self._parallel) if self._parallel > 1 else MLXEngine(where)
