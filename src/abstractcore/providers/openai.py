"""OpenAI (Chat Completions) at api.openai.com or an OpenAI-style base URL."""

from __future__ import annotations

from typing import ClassVar

from abstractcore.core.capabilities import Capabilities
from abstractcore.features.hosted_models import hosted_capabilities
from abstractcore.providers.openai_compatible import OpenAICompatibleProvider

__all__ = ["OpenAIProvider"]


class OpenAIProvider(OpenAICompatibleProvider):
    """``create_llm("openai", model="gpt-4o-mini")``; key from ``OPENAI_API_KEY``."""

    name: ClassVar[str] = "openai"
    default_model: ClassVar[str | None] = "gpt-4o-mini"
    key_required_hosts: ClassVar[tuple[str, ...]] = ("openai.com",)
    key_example: ClassVar[str] = "sk-..."
    display_name: ClassVar[str] = "OpenAI"
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    extra_params: ClassVar[frozenset[str]] = frozenset()
    capabilities: Capabilities = Capabilities(tools=True, structured_output=True, stream_usage=True)

    async def _fetch_capabilities(self) -> Capabilities:
        """From the table of hosted models (OpenAI's ``/models`` does not say what a model can do)."""
        return hosted_capabilities("openai", self.model, self.capabilities)
