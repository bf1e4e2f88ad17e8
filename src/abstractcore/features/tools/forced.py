"""A forced tool choice ("required", or a tool's name) is a promise: the answer is a call.

Servers and models break it in two ways, both seen here: a server ignores the
choice and answers prose (llama-cpp-python's server with SmolLM2's template,
for "required"; Ollama has no ``tool_choice`` at all), or the call is cut by
``max_tokens`` before it is complete. The pipeline (``providers/base.py``)
answers the first by asking again with prompted tools and the call under the
provider's grammar; what is left of either becomes a typed error here, never
prose handed back as if it were the answer.
"""

from __future__ import annotations

from typing import Any, Literal

from abstractcore.core.errors import StructuredOutputError, ToolCallError

__all__ = ["ForcedKind", "cut_call_error", "forced_kind", "no_call_error"]

#: "required": one of the tools must be called; "named": that tool must be called.
ForcedKind = Literal["required", "named"]


def forced_kind(choice: str | None) -> ForcedKind | None:
    """Which promise a normalised ``tool_choice`` makes (None for "auto", "none" or no choice)."""
    if choice in (None, "auto", "none"):
        return None
    return "required" if choice == "required" else "named"


def _forcing(choice: str | None) -> str:
    return "tool_choice='required'" if choice == "required" else f"tool_choice={choice!r}"


def cut_call_error(choice: str | None, text: str, usage: Any) -> StructuredOutputError:
    """The error for a forced call cut by ``max_tokens`` (what structured output raises for a cut
    answer); ``raw`` is what the model wrote of the call."""
    which = f" ({_forcing(choice)})" if choice is not None else ""
    return StructuredOutputError(
        f"The model's tool call{which} was cut by max_tokens before it was complete "
        f"({len(text)} characters); raise max_tokens.",
        raw=text,
        finish_reason="length",
        usage=usage,
    )


def no_call_error(
    provider: str, model: str, choice: str | None, text: str, finish: str | None, constrained: bool
) -> ToolCallError:
    """The error for an answer without a call to a forced choice."""
    why = (
        "even under the grammar of the call"
        if constrained
        else f"and {provider} has no grammar to constrain the call with"
    )
    return ToolCallError(
        f"{provider} (model {model!r}) answered without a tool call although {_forcing(choice)} "
        f"forces one, {why}. Use a model or server with tool calling (or one that constrains "
        "output to a JSON schema), or tool_choice='auto'.",
        raw=text,
        finish_reason=finish,
    )
