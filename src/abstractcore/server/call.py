"""``Call``: what one chat request asks of a model, in abstractcore's terms.

Both wire formats parse a request into a ``ParsedCall`` (``wire/``: messages, tools, the
generation parameters the format defines, nothing else: options a back end does not know are
never forwarded); ``Call.of`` adds the server's JSON answer to it, and the service hands it to
``llm.agenerate`` / ``llm.astream`` as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from abstractcore.core.types import Message, ToolSpec
from abstractcore.wire.fields import ParsedCall

if TYPE_CHECKING:
    from abstractcore.server.structured import JsonAnswer

__all__ = ["Call"]


@dataclass(slots=True)
class Call:
    """One chat request: the model's name as the client sent it, and the call's arguments."""

    model: str
    messages: list[Message]
    params: dict[str, Any] = field(default_factory=dict)
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    stream: bool = False
    #: The JSON answer asked for (``response_format`` / ``output_config``), applied by the service.
    answer: JsonAnswer | None = None

    @classmethod
    def of(cls, parsed: ParsedCall) -> Call:
        """The call a wire module parsed, its JSON answer (if it asks for one) made a ``JsonAnswer``."""
        from abstractcore.server.structured import JsonAnswer  # structured.py imports this module

        answer = parsed.answer
        return cls(
            model=parsed.model,
            messages=parsed.messages,
            params=parsed.params,
            tools=parsed.tools,
            tool_choice=parsed.tool_choice,
            stream=parsed.stream,
            answer=JsonAnswer(answer.schema, answer.name) if answer is not None else None,
        )

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``agenerate`` / ``astream``."""
        kwargs: dict[str, Any] = {"messages": self.messages, **self.params}
        if self.tools:
            kwargs["tools"] = self.tools
            if self.tool_choice is not None:
                kwargs["tool_choice"] = self.tool_choice
        return kwargs
