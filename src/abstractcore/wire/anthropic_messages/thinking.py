"""Extended thinking on the Messages API, client side: the one control mapped to ``thinking``,
the rules the API imposes checked before sending, and thinking blocks read and sent back.

The control (``reasoning_effort`` / ``thinking_budget`` / ``reasoning``) becomes
``thinking: {"type": "enabled", "budget_tokens": N}``: ``thinking_budget`` is N exactly, an effort
picks N from ``EFFORT_BUDGETS``, ``reasoning=True`` is the ``DEFAULT_EFFORT``; ``reasoning=False``
or effort ``"none"`` sends no ``thinking`` field (thinking is off by default on this API) and
wins over the others, so a per-call ``reasoning=False`` turns off a configured budget.

``max_tokens`` counts the thinking too: when the caller set none, ``max_tokens_for`` sends the
budget plus ``DEFAULT_MAX_TOKENS``, so the answer keeps the room it has without thinking; a
``max_tokens`` the caller set is kept as given and must be above the budget (``check_thinking``
says so before sending rather than letting the API answer 400).

A ``thinking`` block becomes ``ReasoningPart(text, signature, source="anthropic")``, a
``redacted_thinking`` block ``ReasoningPart("", redacted=data, source="anthropic")``; sent back,
only parts whose source is "anthropic" and that carry what the API checks (a signature, or the
redacted data) are written, unchanged, as the first blocks of their assistant turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import ReasoningPart

__all__ = [
    "DEFAULT_EFFORT",
    "EFFORT_BUDGETS",
    "MIN_BUDGET",
    "SOURCE",
    "check_thinking",
    "joined_reasoning",
    "max_tokens_for",
    "reasoning_blocks",
    "reasoning_part",
    "thinking_budget",
    "thinking_field",
]

#: The ``source`` of the reasoning parts this API makes (and the only ones it is sent back).
SOURCE = "anthropic"
#: The API's smallest ``budget_tokens``.
MIN_BUDGET = 1024
#: ``reasoning_effort`` -> ``budget_tokens``. ``"high"`` plus the answer's default room (20,480
#: tokens in all) stays under the smallest output limit of the thinking models (Opus 4: 32,000).
EFFORT_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
#: The effort ``reasoning=True`` means.
DEFAULT_EFFORT = "medium"
#: Model prefixes without extended thinking (the API answers 400 when it is asked for).
NO_THINKING_MODELS = ("claude-3-5-", "claude-3-haiku", "claude-3-opus", "claude-3-sonnet", "claude-2")
_EFFORTS = ("none", *EFFORT_BUDGETS)
_DOCS = "https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking"


def thinking_budget(params: Mapping[str, Any]) -> int | None:
    """The ``budget_tokens`` the call's parameters ask for (None: thinking off).

    Bad values raise ``ConfigurationError`` (what is accepted, and what to do)."""
    reasoning = params.get("reasoning")
    effort = params.get("reasoning_effort")
    budget = params.get("thinking_budget")
    if reasoning is not None and not isinstance(reasoning, bool):
        raise ConfigurationError(f"reasoning must be True or False; got {reasoning!r}.")
    if effort is not None and effort not in _EFFORTS:
        raise ConfigurationError(
            f"reasoning_effort must be one of {', '.join(map(repr, _EFFORTS))}; got {effort!r}."
        )
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        raise ConfigurationError(f"thinking_budget must be a number of tokens (an int); got {budget!r}.")
    if reasoning is False or effort == "none":
        return None
    if budget is not None:
        if budget < MIN_BUDGET:
            raise ConfigurationError(
                f"thinking_budget={budget} is below Anthropic's minimum of {MIN_BUDGET} tokens: "
                f"give thinking_budget={MIN_BUDGET} or more (or reasoning=False for no thinking)."
            )
        return int(budget)
    if effort is not None:
        return EFFORT_BUDGETS[effort]
    return EFFORT_BUDGETS[DEFAULT_EFFORT] if reasoning else None


def thinking_field(budget: int) -> dict[str, Any]:
    """The request's ``thinking`` object for ``budget``."""
    return {"type": "enabled", "budget_tokens": budget}


def max_tokens_for(params: Mapping[str, Any], budget: int | None, default: int) -> int:
    """The ``max_tokens`` to send: the caller's, else ``default`` plus the thinking budget."""
    given = params.get("max_tokens")
    if given is not None:
        return int(given)
    return default + (budget or 0)


def check_thinking(model: str, params: Mapping[str, Any], tool_choice: str | None) -> None:
    """Refuse, before sending, what the API rejects when thinking is on (``ConfigurationError``
    saying what to do): a model without thinking, a budget not below ``max_tokens``,
    ``temperature`` other than 1, ``top_k``, ``top_p`` below 0.95, a forced ``tool_choice``."""
    budget = thinking_budget(params)
    if budget is None:
        return
    off = "or turn thinking off with reasoning=False"
    if model.startswith(NO_THINKING_MODELS):
        raise ConfigurationError(
            f"{model!r} has no extended thinking: use a Claude 3.7, 4 or 4.5 model "
            f"(e.g. 'claude-sonnet-4-5'), {off}."
        )
    max_tokens = params.get("max_tokens")
    if max_tokens is not None and budget >= max_tokens:
        raise ConfigurationError(
            f"max_tokens={max_tokens} must be above the thinking budget ({budget} tokens; thinking "
            f"counts toward max_tokens): raise max_tokens (e.g. max_tokens={budget + 4096}), give a "
            f"smaller thinking_budget (at least {MIN_BUDGET}), leave max_tokens unset (the budget "
            f"plus 4096 is sent), {off}."
        )
    temperature = params.get("temperature")
    if temperature is not None and temperature != 1:
        raise ConfigurationError(
            f"temperature={temperature} cannot be used with Anthropic's extended thinking (only 1, "
            f"its default): leave temperature unset, {off}. See {_DOCS}."
        )
    if params.get("top_k") is not None:
        raise ConfigurationError(
            f"top_k cannot be used with Anthropic's extended thinking: leave it unset, {off}."
        )
    top_p = params.get("top_p")
    if top_p is not None and not 0.95 <= top_p <= 1:
        raise ConfigurationError(
            f"top_p={top_p} cannot be used with Anthropic's extended thinking (only 0.95 to 1): "
            f"leave it unset, {off}."
        )
    if tool_choice is not None and tool_choice not in ("auto", "none"):
        raise ConfigurationError(
            f"tool_choice={tool_choice!r} forces a tool call, which Anthropic rejects with "
            f"extended thinking: use tool_choice='auto' (and say in the prompt which tool to "
            f"call), {off}."
        )


def reasoning_part(block: Mapping[str, Any]) -> ReasoningPart | None:
    """A ``thinking`` / ``redacted_thinking`` block as a ``ReasoningPart`` (None for others)."""
    kind = block.get("type")
    if kind == "thinking":
        signature = block.get("signature")
        return ReasoningPart(str(block.get("thinking") or ""), signature=signature or None, source=SOURCE)
    if kind == "redacted_thinking":
        return ReasoningPart("", redacted=str(block.get("data") or ""), source=SOURCE)
    return None


def joined_reasoning(parts: Sequence[ReasoningPart]) -> str | None:
    """The thinking text of ``parts``, blocks apart by a blank line (None when there is none)."""
    return "\n\n".join(p.text for p in parts if p.text) or None


def reasoning_blocks(parts: Sequence[ReasoningPart]) -> list[dict[str, Any]]:
    """The blocks to send back for ``parts``: Anthropic's own, unchanged; others are dropped."""
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if part.source != SOURCE:
            continue  # another provider's thinking: the API would reject its shape or signature
        if part.redacted is not None:
            blocks.append({"type": "redacted_thinking", "data": part.redacted})
        elif part.signature:
            blocks.append({"type": "thinking", "thinking": part.text, "signature": part.signature})
    return blocks
