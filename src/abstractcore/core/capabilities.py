"""What a provider can do for its model, so callers can check before asking.

Every field is true only where this provider really does it for the model:
``None`` means "depends on the model and is not known yet" (a generic
OpenAI-compatible server may or may not take images), never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Capabilities"]


@dataclass(frozen=True)
class Capabilities:
    """Features of a provider and, where known, of its model (``None``: not known)."""

    #: Answers stream token by token.
    streaming: bool = True
    #: Tool definitions reach the model and its calls come back as ``tool_calls``.
    tools: bool | None = None
    #: ``response_model`` is constrained by the provider (not only asked for in the prompt).
    structured_output: bool | None = None
    #: Images in messages reach the model.
    vision: bool | None = None
    #: The last chunk of a stream carries token usage.
    stream_usage: bool | None = None
    #: The model runs on this machine.
    local: bool = False
