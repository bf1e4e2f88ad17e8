"""The responses the server keeps for ``previous_response_id`` and ``GET /v1/responses/{id}``.

A ``ResponseStore`` holds, per response created with ``store`` true (the API's default), its
``response`` object and the conversation it ended (the input turns after the instructions, the
history it continued, and its output), in memory: at most ``size`` responses (the least recently
used goes first) for at most ``ttl`` seconds each since it was made. Nothing survives a restart;
``store: false`` keeps nothing. Both bounds are ``ServerConfig`` fields
(``responses_store_size``, ``responses_store_ttl``); ``size`` 0 keeps nothing at all.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from abstractcore.core.types import Message
from abstractcore.server.errors import ApiError

__all__ = ["ResponseStore", "kept_after"]


@dataclass(frozen=True, slots=True)
class _Kept:
    body: dict[str, Any]
    conversation: list[Message]
    made: float


class ResponseStore:
    """Responses kept for continuation: LRU by count (``size``), each for ``ttl`` seconds."""

    def __init__(
        self, size: int = 1000, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self.ttl = ttl
        self._clock = clock
        self._kept: OrderedDict[str, _Kept] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def put(self, response_id: str, body: dict[str, Any], conversation: list[Message]) -> None:
        """Keep ``body`` and the ``conversation`` it ended (dropping the oldest over ``size``)."""
        if self.size <= 0:
            return
        self._kept[response_id] = _Kept(body, list(conversation), self._clock())
        self._kept.move_to_end(response_id)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def _get(self, response_id: str, param: str | None) -> _Kept:
        kept = self._kept.get(response_id)
        if kept is not None and self._clock() - kept.made > self.ttl:
            del self._kept[response_id]
            kept = None
        if kept is None:
            raise ApiError(
                404,
                f"Response with id {response_id!r} not found (this server keeps responses made with "
                f"store true for {self.ttl:g} seconds, the last {self.size} of them).",
                kind="response_not_found",
                param=param,
            )
        self._kept.move_to_end(response_id)
        return kept

    def conversation(self, response_id: str | None) -> list[Message]:
        """The conversation ``response_id`` ended ([] for None; a 404 ``ApiError`` when unknown
        or expired)."""
        if response_id is None:
            return []
        return list(self._get(response_id, "previous_response_id").conversation)

    def body(self, response_id: str) -> dict[str, Any]:
        """The ``response`` object of ``response_id`` (a 404 ``ApiError`` when unknown or expired)."""
        return self._get(response_id, None).body


async def kept_after(
    events: AsyncGenerator[bytes, None], keep: Callable[[], None]
) -> AsyncGenerator[bytes, None]:
    """``events``, then ``keep()`` once the stream was sent to its end (not when cut off)."""
    try:
        async for data in events:
            yield data
    finally:
        await events.aclose()
    keep()
