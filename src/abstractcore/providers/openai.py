"""OpenAI (Chat Completions) at api.openai.com or an OpenAI-style base URL."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import AUTOMATIC_CACHE_PARAMS
from abstractcore.features.hosted_models import hosted_capabilities
from abstractcore.providers.openai_compatible import REASONING_PARAMS, OpenAICompatibleProvider
from abstractcore.wire.openai_chat.reasoning import Dialect

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
    extra_params: ClassVar[frozenset[str]] = REASONING_PARAMS | AUTOMATIC_CACHE_PARAMS
    reasoning_dialect: ClassVar[Dialect] = "openai"
    #: OpenAI's models give no thinking text in Chat Completions: an answer starting "<think>" is the answer.
    think_tags: ClassVar[bool] = False
    echo_reasoning: ClassVar[bool] = False
    # OpenAI's reasoning models (o-series, GPT-5) refuse max_tokens; all its chat models take this
    max_tokens_field: ClassVar[str] = "max_completion_tokens"

    def _configure(self, options: dict[str, Any]) -> None:
        super()._configure(options)
        if not self._is_openai():  # another server behind base_url: many know only max_tokens
            self._max_tokens_field = "max_tokens"

    def _is_openai(self) -> bool:
        host = (urlsplit(self.base_url).hostname or "").lower()
        return any(host == h or host.endswith("." + h) for h in self.key_required_hosts)

    capabilities: Capabilities = Capabilities(
        tools=True, structured_output=True, stream_usage=True, prompt_caching=True
    )

    async def _fetch_capabilities(self) -> Capabilities:
        """From the table of hosted models (OpenAI's ``/models`` does not say what a model can do)."""
        return hosted_capabilities("openai", self.model, self.capabilities)
