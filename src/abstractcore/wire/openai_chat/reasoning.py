"""Chat Completions, client side: a thinking model's thinking, both ways.

In: the thinking of a reply comes in a field of the message (and of each stream delta),
``reasoning_content`` (DeepSeek, vLLM, llama.cpp's ``llama-server --reasoning-format deepseek``)
or ``reasoning`` (OpenRouter, newer vLLM, LM Studio); a server without a reasoning parser
leaves ``<think>…</think>`` in the content, split off by ``features/reasoning``. Out: the one
control (``reasoning_effort``, ``thinking_budget``, ``reasoning``) as each server family takes
it, or a ``ConfigurationError`` before sending for a value it is known not to take; and the
thinking of an earlier tool-call turn sent back as ``reasoning_content`` where the server asks
for it (DeepSeek's thinking mode answers 400 without it).
"""

from __future__ import annotations

from typing import Any, Literal

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import Message

__all__ = ["EFFORTS", "Dialect", "checked_effort", "echoed_reasoning", "reasoning_controls", "reasoning_of"]

#: ``reasoning_effort`` values the OpenAI API takes ("none": GPT-5.1+; "xhigh": after
#: gpt-5.1-codex-max; "minimal": GPT-5); OpenRouter takes the same set.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")

#: How a server family takes the control: "openai" (``reasoning_effort``), "openrouter"
#: (``reasoning: {...}``), "server" (vLLM, llama.cpp's servers: ``reasoning_effort`` and the chat
#: template's ``enable_thinking``), "lmstudio" (``reasoning_effort`` only).
Dialect = Literal["openai", "openrouter", "server", "lmstudio"]

#: The message and delta fields that carry thinking, the first present wins (vLLM sends both).
FIELDS = ("reasoning_content", "reasoning")


def reasoning_of(message: Any) -> str | None:
    """The thinking a reply's message or a stream delta carries in a field (None: no field)."""
    if not isinstance(message, dict):
        return None
    for name in FIELDS:
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def checked_effort(params: dict[str, Any], provider: str, allowed: tuple[str, ...] = EFFORTS) -> str | None:
    """``reasoning_effort`` of ``params`` when it is one of ``allowed`` (ConfigurationError if not)."""
    effort = params.get("reasoning_effort")
    if effort is None:
        return None
    if effort not in allowed:
        raise ConfigurationError(
            f"{provider} takes reasoning_effort= one of {', '.join(map(repr, allowed))}; got {effort!r}."
        )
    return str(effort)


def _switch(params: dict[str, Any], effort: str | None, provider: str) -> bool | None:
    """``reasoning`` (True/False/None), refusing ``reasoning=False`` with an effort above "none"."""
    switch = params.get("reasoning")
    if switch is not None and not isinstance(switch, bool):
        raise ConfigurationError(f"reasoning= must be True or False; got {switch!r}.")
    if switch is False and effort not in (None, "none"):
        raise ConfigurationError(
            f"{provider}: reasoning=False turns thinking off, reasoning_effort={effort!r} asks for it; "
            "pass one of them."
        )
    return switch


def _no_budget(params: dict[str, Any], provider: str, instead: str) -> None:
    if params.get("thinking_budget") is not None:
        raise ConfigurationError(f"{provider} takes no thinking token budget (thinking_budget=): {instead}.")


def reasoning_controls(params: dict[str, Any], dialect: Dialect, provider: str) -> dict[str, Any]:
    """The body fields of the call's reasoning control for ``dialect`` (empty when none is set).

    ``ConfigurationError`` for a value that family is known not to take, saying what to pass."""
    if dialect == "openrouter":
        return _openrouter(params, provider)
    effort = checked_effort(params, provider)
    switch = _switch(params, effort, provider)
    if dialect == "openai":
        _no_budget(
            params,
            provider,
            "use reasoning_effort='low' | 'medium' | 'high' (max_tokens caps thinking and answer together)",
        )
        effort = "none" if switch is False else effort
        return {"reasoning_effort": effort} if effort else {}
    if dialect == "lmstudio":
        _no_budget(params, provider, "use reasoning_effort='low' | 'medium' | 'high'")
        if switch is False or effort == "none":
            raise ConfigurationError(
                f"{provider} has no per-request switch to turn thinking off: use reasoning_effort='low', "
                "or a model (or LM Studio setting) without thinking."
            )
        return {"reasoning_effort": effort} if effort else {}
    _no_budget(
        params,
        provider,
        "use reasoning_effort= or reasoning=False (llama-server caps thinking with --reasoning-budget "
        "at start)",
    )
    body: dict[str, Any] = {}
    if switch is False or effort == "none":
        body["chat_template_kwargs"] = {"enable_thinking": False}
    elif switch is True:
        body["chat_template_kwargs"] = {"enable_thinking": True}
    if effort is not None and effort != "none":
        body["reasoning_effort"] = effort
    return body


def _openrouter(params: dict[str, Any], provider: str) -> dict[str, Any]:
    """OpenRouter's ``reasoning: {effort | max_tokens | enabled}`` (effort or budget, not both)."""
    effort = checked_effort(params, provider)
    switch = _switch(params, effort, provider)
    budget = params.get("thinking_budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise ConfigurationError(f"thinking_budget= must be a positive number of tokens; got {budget!r}.")
    if budget is not None and (effort is not None or switch is False):
        raise ConfigurationError(
            f"{provider} takes reasoning_effort= or thinking_budget= (reasoning.effort or "
            "reasoning.max_tokens), not both; reasoning=False with neither."
        )
    if switch is False:
        return {"reasoning": {"enabled": False}}
    if effort is not None:
        return {"reasoning": {"effort": effort}}
    if budget is not None:
        return {"reasoning": {"max_tokens": budget}}
    if switch is True:
        return {"reasoning": {"enabled": True}}
    return {}


def echoed_reasoning(message: Message, source: str) -> str | None:
    """The thinking to send back on ``message`` as ``reasoning_content``: an assistant turn with
    tool calls, its parts made by ``source`` (DeepSeek's thinking mode requires it there and
    ignores it elsewhere; llama-server and vLLM read it). Other providers' parts are dropped."""
    if message.role != "assistant" or not message.tool_calls:
        return None
    text = "".join(part.text for part in message.reasoning if part.source == source and part.text)
    return text or None
