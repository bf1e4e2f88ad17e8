"""What a provider can do for its model, so callers (and the router) can check before asking.

Every field is true only where this provider really does it for the model:
``None`` means "depends on the model and is not known yet", never a guess.
``llm.capabilities`` holds what is known without asking (the provider's
defaults, a table of hosted models); ``await llm.acapabilities()`` asks the
server where it says (Ollama ``/api/show``, llama.cpp's ``/props``, LM
Studio ``/api/v0/models``, vLLM's ``max_model_len``, OpenRouter ``/models``,
the engine that runs the model in process: the GGUF's metadata or the model's config), once per model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

__all__ = ["Capabilities"]


@dataclass(frozen=True)
class Capabilities:
    """Features of a provider and, where known, of its model (``None``: not known)."""

    #: Answers stream token by token.
    streaming: bool = True
    #: Tool definitions reach the model natively and its calls come back as ``tool_calls``
    #: (False: abstractcore falls back to prompted tools).
    tools: bool | None = None
    #: ``response_model`` is constrained by the provider (not only asked for in the prompt).
    structured_output: bool | None = None
    #: Images in messages reach the model.
    vision: bool | None = None
    #: ``embed()`` works with this model.
    embeddings: bool | None = None
    #: The last chunk of a stream carries token usage.
    stream_usage: bool | None = None
    #: Tokens of prompt plus answer one request may use (for a model run in process: the
    #: context the engine was loaded with, ``n_ctx``; a longer prompt is refused).
    context_window: int | None = None
    #: Tokens the model was trained for, as its own files say (GGUF ``context_length``,
    #: ``max_position_embeddings``); may exceed ``context_window`` when loaded smaller.
    trained_context_window: int | None = None
    #: Most tokens one answer may have.
    max_output_tokens: int | None = None
    #: The back end reuses a repeated prompt prefix from its cache (automatically, or with
    #: ``cache=True`` where the provider needs breakpoints); False: it cannot cache at all.
    prompt_caching: bool | None = None
    #: The model runs on this machine.
    local: bool = False
    #: Where these figures come from: "defaults", "table", "server" or "model file".
    source: str = "defaults"

    def merged(self, **known: object) -> Capabilities:
        """These capabilities with the fields given (None values ignored) replaced."""
        names = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in known.items() if v is not None and k in names})  # type: ignore[arg-type]
