"""Tool sources: objects that hold tools (an ``MCPTools``), expanded where tools are normalised.

A tool source goes into ``tools=[...]`` beside functions; ``to_tools`` replaces it by the
tools it holds now, and the tool loop refreshes it before each model call (a server whose
tool list changed is listed again).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from abstractcore.features.tools.schema import Tool

__all__ = ["ToolSource", "expand_sources", "has_sources", "refresh_sources"]


@runtime_checkable
class ToolSource(Protocol):
    """Something that holds tools (an ``MCPTools``): ``to_tools`` expands it into its ``Tool``s.

    ``__abstractcore_refresh__`` brings its list up to date (a server said its tools changed)
    and says whether it changed; the tool loop awaits it before each model call.
    """

    def __abstractcore_tools__(self) -> list[Tool]: ...

    async def __abstractcore_refresh__(self) -> bool: ...


def expand_sources(values: Iterable[Any] | None) -> list[Any]:
    """``values`` with every ``ToolSource`` replaced by the tools it holds now."""
    out: list[Any] = []
    for value in values or []:
        if isinstance(value, ToolSource) and not isinstance(value, type):
            out.extend(value.__abstractcore_tools__())
        else:
            out.append(value)
    return out


async def refresh_sources(values: Iterable[Any] | None) -> bool:
    """Bring every ``ToolSource`` in ``values`` up to date; True when a list changed."""
    changed = False
    for value in values or []:
        if isinstance(value, ToolSource) and not isinstance(value, type):
            changed = await value.__abstractcore_refresh__() or changed
    return changed


def has_sources(values: Iterable[Any] | None) -> bool:
    """True when ``values`` holds a ``ToolSource``."""
    return any(isinstance(v, ToolSource) and not isinstance(v, type) for v in values or [])
