"""``Call``: what one chat request asks of a model, in abstractcore's terms.

Both wire formats parse into a ``Call`` (messages, tools, the generation parameters the format
defines, nothing else: options a back end does not know are never forwarded), and the service
hands it to ``llm.agenerate`` / ``llm.astream`` as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from abstractcore.core.types import Message, ToolSpec
from abstractcore.features.tools.schema import TOOL_CHOICES, normalise_tool_choice, tool_definition_problem
from abstractcore.server.errors import ApiError

if TYPE_CHECKING:
    from abstractcore.server.structured import JsonAnswer

__all__ = ["Call", "check_tools", "checked_tool"]


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

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``agenerate`` / ``astream``."""
        kwargs: dict[str, Any] = {"messages": self.messages, **self.params}
        if self.tools:
            kwargs["tools"] = self.tools
            if self.tool_choice is not None:
                kwargs["tool_choice"] = self.tool_choice
        return kwargs


def checked_tool(spec: ToolSpec, *, name_param: str, schema_param: str) -> ToolSpec:
    """``spec``, or a 400 naming the field for what OpenAI and Anthropic refuse in a definition: a
    name outside ``[a-zA-Z0-9_-]{1,64}``, an unknown JSON Schema type, ``required`` naming an
    undeclared property (``tool_definition_problem``)."""
    problem = tool_definition_problem(spec.name, spec.parameters)
    if problem is None:
        return spec
    where, what = problem
    raise ApiError.bad(name_param if where == "name" else schema_param, what)


def check_tools(tools: list[ToolSpec], choice: Any, *, tools_param: str, choice_param: str) -> str | None:
    """``choice`` normalised ("auto", "none", "required" or a tool's name) after checking that the
    tool names are unique and not reserved words; a 400 naming the field otherwise."""
    seen: set[str] = set()
    for index, spec in enumerate(tools):
        if spec.name in seen:
            raise ApiError.bad(f"{tools_param}[{index}].name", f"the tool name {spec.name!r} is repeated")
        if spec.name in (*TOOL_CHOICES, "any"):
            raise ApiError.bad(f"{tools_param}[{index}].name", f"{spec.name!r} is a reserved word")
        seen.add(spec.name)
    if choice is None:
        return None
    try:
        return normalise_tool_choice(choice, tools)
    except ValueError as exc:
        raise ApiError.bad(choice_param, str(exc)) from None
