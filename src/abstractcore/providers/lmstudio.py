"""LM Studio's local server (OpenAI-compatible, no key)."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from abstractcore.core.capabilities import Capabilities
from abstractcore.providers.openai_compatible import OpenAICompatibleProvider, with_v1
from abstractcore.wire.openai_chat.reasoning import Dialect

__all__ = ["LMStudioProvider"]


class LMStudioProvider(OpenAICompatibleProvider):
    """``create_llm("lmstudio", model="qwen2.5-7b-instruct")``: http://localhost:1234/v1."""

    name: ClassVar[str] = "lmstudio"
    default_model: ClassVar[str | None] = "local-model"
    api_key_env: ClassVar[str | None] = None
    base_url_env: ClassVar[str | None] = "LMSTUDIO_BASE_URL"
    default_base_url: ClassVar[str | None] = "http://localhost:1234/v1"
    default_scheme: ClassVar[str | None] = "http"
    reasoning_dialect: ClassVar[Dialect] = "lmstudio"
    echo_reasoning: ClassVar[bool] = False
    connect_hint: ClassVar[str | None] = (
        "Start LM Studio's server (Developer tab, or `lms server start`) and load a model"
    )

    def _normalise_base_url(self, url: str) -> str:
        return with_v1(url)

    async def _fetch_capabilities(self) -> Capabilities:
        """From LM Studio's REST API: ``/api/v1/models`` (0.4+), else ``/api/v0/models/{model}``."""
        listing = await self._probe(f"{self._root}/api/v1/models")
        for e in _dicts(listing.get("models") if isinstance(listing, dict) else None):
            if self.model in (e.get("key"), *(e.get("variants") or [])):
                caps = e["capabilities"] if isinstance(e.get("capabilities"), dict) else {}
                return self._caps(caps.get("trained_for_tool_use"), caps.get("vision"), e, "embedding")
        e = await self._probe(f"{self._root}/api/v0/models/{quote(self.model, safe='')}")
        if isinstance(e, dict) and e.get("type"):
            listed = e["capabilities"] if isinstance(e.get("capabilities"), list) else []
            return self._caps("tool_use" in listed, e.get("type") == "vlm", e, "embeddings")
        return await self._models_entry_capabilities()

    def _caps(self, tools: Any, vision: Any, entry: dict[str, Any], embedding_type: str) -> Capabilities:
        embeddings = entry.get("type") == embedding_type
        return self.capabilities.merged(
            tools=tools,
            vision=vision,
            embeddings=embeddings,
            context_window=entry.get("max_context_length"),
            source="server",
        )


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [i for i in items or [] if isinstance(i, dict)]
