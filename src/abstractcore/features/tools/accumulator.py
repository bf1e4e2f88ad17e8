"""Assemble streamed tool-call fragments into whole calls, losing no argument."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from abstractcore.core.errors import ToolCallError
from abstractcore.core.types import ToolCall, ToolCallDelta

__all__ = ["ToolCallAccumulator", "as_arguments"]


def as_arguments(value: Any) -> dict[str, Any]:
    """A tool call's arguments as a JSON object: a JSON string is parsed; a non-object value is
    wrapped as ``{"value": ...}`` (some models answer a one-argument tool with a bare value)."""
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except ValueError:
            return {"value": value}
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"value": value}


@dataclass
class _Partial:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallAccumulator:
    """Collects ``ToolCallDelta``s by index; ``finish()`` returns the whole calls."""

    def __init__(self) -> None:
        self._calls: dict[int, _Partial] = {}

    def add(self, delta: ToolCallDelta) -> None:
        """Merge one fragment."""
        partial = self._calls.setdefault(delta.index, _Partial())
        if delta.id:
            partial.id = delta.id
        if delta.name:
            partial.name += delta.name if partial.name != delta.name else ""
        if delta.arguments_fragment:
            partial.arguments.append(delta.arguments_fragment)

    def __bool__(self) -> bool:
        return bool(self._calls)

    def finish(self) -> list[ToolCall]:
        """The assembled calls in index order; ``ToolCallError`` for arguments that are not JSON."""
        calls = []
        for index in sorted(self._calls):
            partial = self._calls[index]
            text = "".join(partial.arguments).strip() or "{}"
            try:
                arguments = json.loads(text)
            except ValueError:
                raise ToolCallError(
                    f"The model's call to tool {partial.name!r} has arguments that are not JSON: "
                    f"{text[:200]!r}"
                ) from None
            calls.append(
                ToolCall(
                    id=partial.id or f"call_{index}", name=partial.name, arguments=as_arguments(arguments)
                )
            )
        self._calls.clear()
        return calls
