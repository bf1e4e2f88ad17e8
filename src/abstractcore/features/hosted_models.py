"""What hosted models can do, where their API does not say: a small table, matched by name prefix.

Figures from the providers' model pages (context window, most output
tokens, images in). A model not in the table gets only the provider's
defaults. Longest prefix wins, so "gpt-4o-mini" is not read as "gpt-4o".
"""

from __future__ import annotations

from abstractcore.core.capabilities import Capabilities

__all__ = ["HOSTED_MODELS", "hosted_capabilities"]

#: provider -> model-name prefix -> (context window, max output tokens, vision)
HOSTED_MODELS: dict[str, dict[str, tuple[int, int, bool]]] = {
    "openai": {
        "gpt-4o-mini": (128_000, 16_384, True),
        "gpt-4o": (128_000, 16_384, True),
        "gpt-4.1": (1_047_576, 32_768, True),
        "gpt-4-turbo": (128_000, 4_096, True),
        "gpt-3.5-turbo": (16_385, 4_096, False),
        "gpt-5": (400_000, 128_000, True),
        "o1": (200_000, 100_000, True),
        "o3": (200_000, 100_000, True),
        "o4-mini": (200_000, 100_000, True),
    },
    "anthropic": {
        "claude-3-5-haiku": (200_000, 8_192, True),
        "claude-3-5-sonnet": (200_000, 8_192, True),
        "claude-3-7-sonnet": (200_000, 64_000, True),
        "claude-haiku-4-5": (200_000, 64_000, True),
        "claude-sonnet-4": (200_000, 64_000, True),
        "claude-opus-4": (200_000, 32_000, True),
    },
}


def hosted_capabilities(provider: str, model: str, defaults: Capabilities) -> Capabilities:
    """``defaults`` with the table's figures for ``model`` (unchanged when it is not listed)."""
    table = HOSTED_MODELS.get(provider, {})
    matches = [prefix for prefix in table if model.startswith(prefix)]
    if not matches:
        return defaults
    context, output, vision = table[max(matches, key=len)]
    return defaults.merged(context_window=context, max_output_tokens=output, vision=vision, source="table")
