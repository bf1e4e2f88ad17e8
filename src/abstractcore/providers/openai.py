"""OpenAI (Chat Completions) at api.openai.com or an OpenAI-style base URL."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from abstractcore.core.errors import ConfigurationError
from abstractcore.providers.openai_compatible import OpenAICompatibleProvider

__all__ = ["OpenAIProvider"]


class OpenAIProvider(OpenAICompatibleProvider):
    """``create_llm("openai", model="gpt-4o-mini")``; key from ``OPENAI_API_KEY``."""

    name: ClassVar[str] = "openai"
    default_model: ClassVar[str | None] = "gpt-4o-mini"
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    extra_params: ClassVar[frozenset[str]] = frozenset()

    def _check_key(self) -> None:
        host = urlsplit(self.base_url).hostname or ""
        if self._api_key is None and host.endswith("openai.com"):
            raise ConfigurationError(
                "OpenAI needs an API key: set OPENAI_API_KEY or pass api_key='sk-...'. "
                "(A local OpenAI-style server needs base_url=... and no key.)")
