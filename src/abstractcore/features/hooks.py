"""``ProviderHooks``: what the strategies in features need of a provider.

The tool strategy (``features.tools.strategy``) and the structured-output strategy
(``features.structured_strategy``) are functions over this protocol rather than methods of
``AsyncProvider``: features sit below providers and never import them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.types import GenerateResponse, StreamChunk

if TYPE_CHECKING:
    from abstractcore.features.request import Request
    from abstractcore.features.structured import StructuredMode
    from abstractcore.features.tools.forced import ForcedKind

__all__ = ["ProviderHooks"]


class ProviderHooks(Protocol):
    """A provider as the strategies see it: its names, what it can do, and its two hooks."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def forced_choices(self) -> frozenset[ForcedKind]:
        """The forced tool choices its native tools honour."""
        ...

    #: Forced choices its server was seen to ignore (learned per instance).
    _ignored_choices: set[ForcedKind]

    async def acapabilities(self) -> Capabilities: ...

    async def _complete(self, request: Request) -> GenerateResponse: ...

    def _stream(self, request: Request) -> AsyncIterator[StreamChunk]: ...

    def _structured_modes(self, request: Request) -> tuple[StructuredMode, ...]: ...
