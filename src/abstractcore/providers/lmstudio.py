"""LM Studio's local server (OpenAI-compatible, no key)."""

from __future__ import annotations

from typing import ClassVar

from abstractcore.providers.openai_compatible import OpenAICompatibleProvider, with_v1

__all__ = ["LMStudioProvider"]


class LMStudioProvider(OpenAICompatibleProvider):
    """``create_llm("lmstudio", model="qwen2.5-7b-instruct")``: http://localhost:1234/v1."""

    name: ClassVar[str] = "lmstudio"
    default_model: ClassVar[str | None] = "local-model"
    api_key_env: ClassVar[str | None] = None
    base_url_env: ClassVar[str | None] = "LMSTUDIO_BASE_URL"
    default_base_url: ClassVar[str | None] = "http://localhost:1234/v1"
    default_scheme: ClassVar[str | None] = "http"
    connect_hint: ClassVar[str | None] = (
        "Start LM Studio's server (Developer tab, or `lms server start`) and load a model"
    )

    def _normalise_base_url(self, url: str) -> str:
        return with_v1(url)
