"""Tools: specs from callables, and assembling streamed tool calls."""

from abstractcore.features.tools.accumulator import ToolCallAccumulator
from abstractcore.features.tools.schema import to_tool_spec, to_tool_specs, tool

__all__ = ["ToolCallAccumulator", "to_tool_spec", "to_tool_specs", "tool"]
