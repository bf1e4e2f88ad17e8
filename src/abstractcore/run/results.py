"""What the tool loop hands back: ``RunResult``, its ``RunStep``s and ``ToolExecution``s, the
``RunEvent``s of ``astream_run``, and ``as_text`` (a result as the text a model reads)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from abstractcore.core.types import GenerateResponse, Message, ToolCall, Usage
from abstractcore.features.tools.results import image_parts, tool_content

__all__ = ["Approve", "RunEvent", "RunResult", "RunStep", "ToolExecution", "as_text"]

#: ``approve(call)``: True to run the call, False to refuse it (the model is told).
Approve = Callable[[ToolCall], "bool | Awaitable[bool]"]


@dataclass(slots=True)
class ToolExecution:
    """One tool call of a step: the call, its result (or error) as the model saw it, its duration."""

    call: ToolCall
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    #: An error that ends the run (an MCP server died), raised once every call of the step is done.
    fatal: Exception | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when the tool ran and returned."""
        return self.error is None

    def as_message(self, *, images: bool = True) -> Message:
        """The ``tool`` turn that hands this result back to the model (a result's images only
        when ``images``: the model takes them; a note in their place otherwise)."""
        parts = image_parts(self.result) if self.error is None else None
        content: str | list[Any]
        if parts is not None:
            content = tool_content(parts, images=images)
        else:
            content = f"Error: {self.error}" if self.error is not None else as_text(self.result)
        return Message("tool", content, tool_call_id=self.call.id, name=self.call.name)


@dataclass(slots=True)
class RunStep:
    """One model call of the loop and the tool calls it asked for."""

    response: GenerateResponse
    executions: list[ToolExecution] = field(default_factory=list)


@dataclass(slots=True)
class RunResult:
    """What ``arun`` returns: the final answer, every step, the whole transcript and the summed usage.

    ``messages`` is the transcript (the input, every assistant turn and tool
    result, the final answer), reusable as the next call's ``messages``.
    ``output`` is the final text, or the validated ``response_model`` value.
    """

    output: Any
    response: GenerateResponse
    messages: list[Message]
    steps: list[RunStep]
    usage: Usage

    @property
    def content(self) -> str:
        """The final answer's text."""
        return self.response.content

    @property
    def cost(self) -> float | None:
        """USD summed over the steps (None when no step's price is known: local or unpriced models)."""
        known = [s.response.cost for s in self.steps if s.response.cost is not None]
        return sum(known) if known else None

    def __str__(self) -> str:
        return self.response.content


@dataclass(slots=True)
class RunEvent:
    """One event of ``astream_run``.

    ``kind`` is "text" (``text`` holds a delta of the model's answer),
    "reasoning" (a delta of its thinking), "tool_call" (``call`` is about to
    run), "tool_result" (``execution`` finished) or "done" (``result`` is the
    ``RunResult``).
    """

    kind: str
    text: str = ""
    call: ToolCall | None = None
    execution: ToolExecution | None = None
    result: RunResult | None = None


def as_text(value: Any) -> str:
    """A tool result or answer as the text a model reads (str as is, pydantic as JSON, else JSON)."""
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
