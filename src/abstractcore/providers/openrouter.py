"""OpenRouter: many hosted models behind one OpenAI-compatible gateway."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import AUTOMATIC_CACHE_PARAMS
from abstractcore.providers.openai_compatible import REASONING_PARAMS, OpenAICompatibleProvider
from abstractcore.wire.openai_chat.reasoning import Dialect

__all__ = ["OpenRouterProvider"]


class OpenRouterProvider(OpenAICompatibleProvider):
    """``create_llm("openrouter", model="anthropic/claude-3.5-haiku")``; key from ``OPENROUTER_API_KEY``.

    Attribution headers (``HTTP-Referer``, ``X-Title``) come from ``app_url`` /
    ``app_name`` or ``OPENROUTER_APP_URL`` / ``OPENROUTER_APP_NAME``.
    """

    name: ClassVar[str] = "openrouter"
    default_model: ClassVar[str | None] = "openai/gpt-4o-mini"
    key_required_hosts: ClassVar[tuple[str, ...]] = ("openrouter.ai",)
    key_example: ClassVar[str] = "sk-or-..."
    display_name: ClassVar[str] = "OpenRouter"
    api_key_env: ClassVar[str | None] = "OPENROUTER_API_KEY"
    base_url_env: ClassVar[str | None] = "OPENROUTER_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://openrouter.ai/api/v1"
    options: ClassVar[frozenset[str]] = OpenAICompatibleProvider.options | {"app_url", "app_name"}
    extra_params: ClassVar[frozenset[str]] = frozenset({"top_k"}) | REASONING_PARAMS | AUTOMATIC_CACHE_PARAMS
    reasoning_dialect: ClassVar[Dialect] = "openrouter"
    # its thinking comes back in ``reasoning``; continuing it takes ``reasoning_details`` verbatim
    echo_reasoning: ClassVar[bool] = False

    def _configure(self, options: dict[str, Any]) -> None:
        self._app_url = options.get("app_url") or os.environ.get("OPENROUTER_APP_URL")
        self._app_name = options.get("app_name") or os.environ.get("OPENROUTER_APP_NAME") or "abstractcore"
        super()._configure(options)

    async def _fetch_capabilities(self) -> Capabilities:
        """From OpenRouter's ``/models``: context, output limit, input modalities, supported parameters."""
        data = await self._probe("models")
        for entry in (data.get("data") or []) if isinstance(data, dict) else []:
            if isinstance(entry, dict) and entry.get("id") == self.model:
                architecture = entry.get("architecture") or {}
                top = entry.get("top_provider") or {}
                supported = entry.get("supported_parameters") or []
                return self.capabilities.merged(
                    context_window=entry.get("context_length"),
                    max_output_tokens=top.get("max_completion_tokens"),
                    vision="image" in (architecture.get("input_modalities") or []),
                    tools="tools" in supported,
                    structured_output="response_format" in supported or "structured_outputs" in supported,
                    source="server",
                )
        return self.capabilities

    def _default_headers(self) -> dict[str, str]:
        headers = {"X-Title": str(self._app_name)}
        if self._app_url:
            headers["HTTP-Referer"] = str(self._app_url)
        return headers
