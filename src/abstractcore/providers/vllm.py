"""vLLM's OpenAI-compatible server: the path from one machine to a GPU cluster."""

from __future__ import annotations

from typing import ClassVar

from abstractcore.core.config import AUTOMATIC_CACHE_PARAMS
from abstractcore.providers.openai_compatible import REASONING_PARAMS, OpenAICompatibleProvider, with_v1

__all__ = ["VLLMProvider"]


class VLLMProvider(OpenAICompatibleProvider):
    """``create_llm("vllm", model="Qwen/Qwen2.5-7B-Instruct")``: http://localhost:8000/v1.

    A key is optional (``VLLM_API_KEY``, for servers started with ``--api-key``).
    """

    name: ClassVar[str] = "vllm"
    default_model: ClassVar[str | None] = None
    api_key_env: ClassVar[str | None] = "VLLM_API_KEY"
    base_url_env: ClassVar[str | None] = "VLLM_BASE_URL"
    default_base_url: ClassVar[str | None] = "http://localhost:8000/v1"
    default_scheme: ClassVar[str | None] = "http"
    extra_params: ClassVar[frozenset[str]] = frozenset({"top_k"}) | REASONING_PARAMS | AUTOMATIC_CACHE_PARAMS
    connect_hint: ClassVar[str | None] = "Start it with `vllm serve <model>` or check VLLM_BASE_URL"

    def _normalise_base_url(self, url: str) -> str:
        return with_v1(url)
