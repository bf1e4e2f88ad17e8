"""One submitted request: the caller's handle (``Generation``) and the scheduler's state of it
(``Request``: its prompt, sampler, sequence, progress and text so far)."""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from abstractcore.engines.base import Outcome, StopMatcher

if TYPE_CHECKING:
    from abstractcore.engines.llamacpp_batch.scheduler import Scheduler

__all__ = ["Generation", "Request"]


class Generation:
    """One submitted request. ``future`` resolves to its ``Outcome``; ``cancel()`` stops it."""

    def __init__(self, scheduler: Scheduler, cancel: threading.Event, prompt_tokens: int) -> None:
        self.future: Future[Outcome] = Future()
        self.cancel_event = cancel
        self.prompt_tokens = prompt_tokens
        self._scheduler = scheduler

    def __repr__(self) -> str:
        return f"Generation(prompt_tokens={self.prompt_tokens}, done={self.future.done()})"

    def cancel(self) -> None:
        """Stop this request within a decode step (at once when it decodes alone)."""
        self.cancel_event.set()
        self._scheduler.poke()


@dataclass(eq=False)
class Request:
    """A submitted request; once queued, its mutable fields belong to the scheduler thread."""

    handle: Generation
    prompt: list[int]
    max_new: int
    sampler: Any  # llama_sampler_p, freed by the scheduler
    stops: StopMatcher
    emit: Callable[[str], None] | None
    #: The forced tool's name: the text is then that call's arguments (kept in ``text``), not emitted.
    tool: str | None = None
    #: Constrained decoding (``GenerationSpec.constraint``'s processor), or None.
    constraint: Any = None
    seq: int = -1
    cached: int = 0  # prompt tokens found in the sequence's KV cells at admission
    n_past: int = 0  # tokens of this sequence in the KV cache
    n_prompt_done: int = 0  # prompt tokens decoded so far
    next_token: int = -1  # sampled, not decoded yet
    completion: list[int] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
