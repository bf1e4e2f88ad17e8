"""What the providers' batch APIs share, as plain data: a batch's status read back
(``BatchStatus``), one line of its results (``ResultLine``), the limits a job is split under
(``BatchLimits``) and the ``custom_id`` that carries an item's position in the job.

Pure (no I/O); ``wire/openai_chat/batch.py`` and ``wire/anthropic_messages/batch.py`` read their
API's objects into these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["BatchLimits", "BatchStatus", "ResultKind", "ResultLine", "custom_id", "index_of", "split"]

#: How a result line ended: answered, answered with an error, or never run.
ResultKind = Literal["succeeded", "errored", "expired", "canceled"]

_ID = re.compile(r"^item-(\d+)$")


def custom_id(index: int) -> str:
    """The ``custom_id`` of the item at ``index`` of a job (both APIs take ``[A-Za-z0-9_-]{1,64}``)."""
    return f"item-{index}"


def index_of(custom: Any) -> int | None:
    """The job position a ``custom_id`` carries (None: not one of ours)."""
    found = _ID.match(custom) if isinstance(custom, str) else None
    return int(found.group(1)) if found else None


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """What one provider batch may hold: ``requests`` lines and ``bytes`` of encoded requests."""

    requests: int
    bytes: int


def split(sizes: list[int], limits: BatchLimits) -> list[range]:
    """The ranges of consecutive items (of encoded ``sizes``) that each fit one batch."""
    parts: list[range] = []
    start, used = 0, 0
    for index, size in enumerate(sizes):
        if size > limits.bytes:
            raise ValueError(f"item {index} alone is {size} bytes, over the {limits.bytes}-byte limit")
        if index > start and (index - start >= limits.requests or used + size > limits.bytes):
            parts.append(range(start, index))
            start, used = index, 0
        used += size
    if sizes:
        parts.append(range(start, len(sizes)))
    return parts


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """One provider batch as its API reports it.

    ``status`` is the API's own word; ``ended`` says no more progress will come (results, if
    any, can be read); ``total`` / ``succeeded`` / ``failed`` are its request counts (``failed``
    counts errored, expired and canceled requests); ``results`` is where the answers are (an
    OpenAI output file id, an Anthropic ``results_url``), ``errors_file`` OpenAI's error file;
    ``failure`` why the whole batch was refused (OpenAI's ``errors``), else None.
    """

    id: str
    status: str
    ended: bool
    total: int
    succeeded: int
    failed: int
    results: str | None = None
    errors_file: str | None = None
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class ResultLine:
    """One line of a batch's results: the item's ``index`` in the job and how it ended.

    ``reply`` is the API's reply body (a Chat Completion, a Message) when it succeeded;
    ``status_code`` and ``error`` the error body (as the live API would answer it) when it
    errored; nothing more when it expired or was canceled (``message`` says which).
    """

    index: int
    kind: ResultKind
    reply: dict[str, Any] | None = None
    status_code: int | None = None
    error: Any = None
    message: str = ""
