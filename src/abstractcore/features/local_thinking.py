"""Thinking in process: the control mapped to the chat template, the output split from the answer.

A model run in process writes its thinking into its text (``<think>…</think>``, see
``features/reasoning.py``). ``ThinkingSplit`` is one generation's splitter: the engine reports
the rendered prompt before the first token (``GenerationSpec.on_prompt``), and a prompt that
ends inside an opened block (a template that writes ``<think>`` into its generation prompt)
makes the reply start as thinking. The split happens here, below the strategies, so a
``response_model`` or a prompted tool call only ever parses the answer.

The control: ``reasoning`` / ``reasoning_effort`` set the chat template's ``enable_thinking``
switch (Qwen3, SmolLM3 read it); a model whose template has no switch refuses them, since
nothing would change. A template takes no effort level: every effort but "none" turns
thinking on. ``thinking_budget`` is refused in process (see ``template_switches``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import ReasoningPart
from abstractcore.engines.base import Engine
from abstractcore.features.reasoning import MARKERS, ThinkingSplitter

__all__ = ["REASONING_PARAMS", "ThinkingSplit", "check_engine", "grammar_of", "template_switches"]

#: The thinking controls in-process providers accept.
REASONING_PARAMS = frozenset({"reasoning_effort", "thinking_budget", "reasoning"})
_EFFORTS = ("none", "minimal", "low", "medium", "high")


def template_switches(params: Mapping[str, Any], provider: str) -> dict[str, Any]:
    """The chat-template variables the call's thinking controls set (``enable_thinking``).

    ``thinking_budget`` is a ``ConfigurationError``: a chat template has no budget, and ending
    the thinking by forcing ``</think>`` after N tokens cuts it mid-thought (the answer then
    starts from a half-made plan); ``max_tokens`` bounds the whole reply instead.
    """
    if params.get("thinking_budget") is not None:
        raise ConfigurationError(
            f"{provider}: thinking_budget has no meaning in process (a chat template takes no "
            "budget); bound the whole reply with max_tokens, or turn thinking off with reasoning=False."
        )
    effort, enabled = params.get("reasoning_effort"), params.get("reasoning")
    if effort is not None and effort not in _EFFORTS:
        raise ConfigurationError(f"reasoning_effort must be one of {', '.join(_EFFORTS)}; got {effort!r}.")
    if enabled is not None and not isinstance(enabled, bool):
        raise ConfigurationError(f"reasoning must be True or False; got {enabled!r}.")
    if effort is None and enabled is None:
        return {}
    on = bool(enabled) if enabled is not None else effort != "none"
    if effort is not None and enabled is not None and on != (effort != "none"):
        raise ConfigurationError(f"reasoning={enabled} contradicts reasoning_effort={effort!r}; give one.")
    return {"enable_thinking": on}


def grammar_of(extra_body: Mapping[str, Any], provider: str, *, constrained: bool) -> str | None:
    """The GBNF grammar of ``extra_body={"grammar": ...}`` (llama-server's field), or None.

    ``constrained``: the call already has a grammar (a ``response_model``, a forced tool call);
    two grammars cannot both constrain one reply.
    """
    grammar = extra_body.get("grammar")
    if grammar is None:
        return None
    if not isinstance(grammar, str) or not grammar.strip():
        raise ConfigurationError(f"{provider}: extra_body grammar must be a GBNF grammar (a string).")
    if constrained:
        raise ConfigurationError(
            f"{provider}: extra_body grammar and a response_model or forced tool call both "
            "constrain the reply; give one."
        )
    return grammar


def check_engine(engine: Engine, extras: Collection[str], switches: Mapping[str, Any], provider: str) -> None:
    """(worker thread, loaded) Refuse what this engine or this model's template cannot take."""
    unknown = sorted(set(extras) - engine.extra_body_fields)
    if unknown:
        known = ", ".join(sorted(engine.extra_body_fields)) or "none"
        raise ConfigurationError(
            f"{provider} runs the model in process with {type(engine).__name__}, which knows no "
            f"extra_body field {', '.join(unknown)} (it takes: {known}); pass generation parameters by name."
        )
    missing = sorted(set(switches) - engine.template_switches())
    if missing:
        raise ConfigurationError(
            f"{provider}: the model's chat template has no thinking switch ({', '.join(missing)}), "
            "so reasoning= / reasoning_effort= would change nothing; remove them (a model that "
            "always thinks still has its thinking in response.reasoning)."
        )


class ThinkingSplit:
    """One generation's thinking/answer split (the prompt is seen first, through ``see_prompt``)."""

    __slots__ = ("_splitter", "opened", "reasoning", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.opened = False
        self._splitter: ThinkingSplitter | None = None
        #: The thinking so far.
        self.reasoning = ""

    def see_prompt(self, prompt: str) -> None:
        """(engine) The rendered prompt: does its generation prompt open a thinking block?"""
        tail = prompt.rstrip()
        self.opened = any(tail.endswith(opening) for opening, _ in MARKERS)

    def feed(self, text: str) -> tuple[str, str]:
        """The (thinking, answer) deltas of the next piece of text."""
        if self._splitter is None:
            self._splitter = ThinkingSplitter(opened=self.opened)
        thinking, answer = self._splitter.feed(text)
        self.reasoning += thinking
        return thinking, answer

    def close(self) -> tuple[str, str]:
        """The (thinking, answer) held back, once the text has ended."""
        if self._splitter is None:
            return "", ""
        thinking, answer = self._splitter.close()
        self.reasoning += thinking
        return thinking, answer

    def whole(self, text: str) -> tuple[str | None, str]:
        """(thinking or None, answer) of a whole reply."""
        answer = self.feed(text)[1] + self.close()[1]
        return self.text(), answer

    def text(self) -> str | None:
        """The whole thinking, stripped (None when the reply had none)."""
        seen = self._splitter is not None and self._splitter.reasoning
        return self.reasoning.strip() if seen else None

    def parts(self) -> list[ReasoningPart]:
        """The thinking as the part kept on the assistant message."""
        text = self.text()
        return [] if text is None else [ReasoningPart(text, source=self.source)]
