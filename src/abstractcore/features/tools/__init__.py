"""Tools: definitions through pydantic, streamed-call assembly, calls parsed from text."""

from abstractcore.features.tools.accumulator import ToolCallAccumulator
from abstractcore.features.tools.schema import (
    Tool,
    ToolArgumentsError,
    to_tool,
    to_tool_spec,
    to_tool_specs,
    tool,
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
