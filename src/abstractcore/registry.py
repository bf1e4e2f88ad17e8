"""The provider registry: names to classes, imported only when asked for."""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Any

from abstractcore.core.errors import ConfigurationError

if TYPE_CHECKING:
    from abstractcore.providers.base import AsyncProvider

__all__ = ["PROVIDERS", "create_provider", "provider_class"]

PROVIDERS: dict[str, str] = {
    "anthropic": "anthropic:AnthropicProvider",
    "ollama": "ollama:OllamaProvider",
    "openai": "openai:OpenAIProvider",
    "huggingface": "huggingface:HuggingFaceProvider",
    "mlx": "mlx:MLXProvider",
    "openai-compatible": "openai_compatible:OpenAICompatibleProvider",
    "lmstudio": "lmstudio:LMStudioProvider",
    "vllm": "vllm:VLLMProvider",
    "openrouter": "openrouter:OpenRouterProvider",
    "router": "abstractcore.router:Router",
}
"""The provider names ``create_llm`` takes, each to ``"module:Class"`` under
``abstractcore.providers`` (or a full module path); the class is imported only when asked for."""

_ALIASES = {"openai_compatible": "openai-compatible", "lm-studio": "lmstudio", "hf": "huggingface"}


def provider_class(name: str) -> type[AsyncProvider]:
    """The class registered under ``name`` (``ConfigurationError`` with the closest name if none)."""
    if not isinstance(name, str):
        raise ConfigurationError(f"provider must be a string such as 'openai'; got {name!r}.")
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    target = PROVIDERS.get(key)
    if target is None:
        close = difflib.get_close_matches(key, PROVIDERS, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(
            f"Unknown provider {name!r}.{hint} Valid providers: {', '.join(sorted(PROVIDERS))}."
        )
    module_name, _, class_name = target.partition(":")
    path = module_name if "." in module_name else f"abstractcore.providers.{module_name}"
    module = importlib.import_module(path)
    cls: type[AsyncProvider] = getattr(module, class_name)
    return cls


def create_provider(name: str, model: str | None = None, **config: Any) -> AsyncProvider:
    """Instantiate the provider ``name`` with ``model`` and ``config`` (validated).

    A router builds its ``(provider, config)`` deployments with this function.
    """
    cls = provider_class(name)
    if cls.name == "router":
        config.setdefault("factory", create_provider)
    return cls(model, **config)
