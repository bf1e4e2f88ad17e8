"""What a provider can do, so callers can check before asking."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Capabilities"]


@dataclass(frozen=True)
class Capabilities:
    """Features of a provider (and, where known, of its model)."""

    streaming: bool = True
    tools: bool = True
    structured_output: bool = True
    vision: bool = False
    stream_usage: bool = True
    local: bool = False
