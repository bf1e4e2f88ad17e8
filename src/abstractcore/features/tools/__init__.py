"""Tools: definitions through pydantic, streamed-call assembly, calls parsed from text."""

from __future__ import annotations

from abstractcore._lazy import lazy_exports as _lazy_exports

TYPE_CHECKING = False
if TYPE_CHECKING:
    from abstractcore.features.tools.accumulator import ToolCallAccumulator
    from abstractcore.features.tools.schema import (
        Tool,
        ToolArgumentsError,
        to_tool,
        to_tool_spec,
        to_tool_specs,
        tool,
    )
del TYPE_CHECKING

# imported on first use: ``import`` of the package loads none of its modules
__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "abstractcore.features.tools.accumulator": ("ToolCallAccumulator",),
        "abstractcore.features.tools.schema": (
            "Tool",
            "ToolArgumentsError",
            "to_tool",
            "to_tool_spec",
            "to_tool_specs",
            "tool",
        ),
    },
)

__all__ = [
    "Tool",
    "ToolArgumentsError",
    "ToolCallAccumulator",
    "to_tool",
    "to_tool_spec",
    "to_tool_specs",
    "tool",
]
