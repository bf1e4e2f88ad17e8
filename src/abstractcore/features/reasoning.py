"""A thinking model's thinking kept apart from its answer, when it comes inside the text.

Models served without a reasoning parser (in process, a server that passes the text through)
write their thinking into the answer between markers: ``<think>…</think>`` (DeepSeek-R1 and
its distills, Qwen3, SmolLM3), ``<thinking>…</thinking>``, ``<|begin_of_thought|>…``. Some chat
templates open the block themselves (the generation prompt ends with ``<think>``), so the reply
starts inside it and only the closing marker is seen: ``opened=True``.

``ThinkingSplitter`` does it incrementally, for streams: text goes in as it arrives (a marker may
be split across chunks or tokens), and each piece comes out as a thinking delta and an answer
delta. ``split_thinking`` does it on a whole text. Only a block at the start of the reply
(leading whitespace aside) is thinking: a marker in the middle of an answer is the answer's text.

Written by hand rather than with a parser library: it is a three-state scan over a few fixed
markers, on the hot path of every stream.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MARKERS", "ThinkingSplitter", "split_thinking"]

#: (opening, closing) markers of a thinking block, as models write them.
MARKERS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
)

_START, _THINKING, _ANSWER = 0, 1, 2


def _held_back(text: str, marker: str) -> int:
    """How many characters at the end of ``text`` could be the beginning of ``marker``."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0


class ThinkingSplitter:
    """Splits text that arrives in pieces into (thinking, answer) deltas.

    ``feed(text)`` returns the ``(reasoning, content)`` deltas it can decide now; ``close()``
    returns what was held back (a possible marker's beginning) once the text has ended. A
    thinking block that never closes (the answer was cut by ``max_tokens``) is all thinking.
    """

    __slots__ = ("_answer_started", "_close", "_markers", "_pending", "_state", "reasoning")

    def __init__(self, *, opened: bool = False, markers: Sequence[tuple[str, str]] = MARKERS) -> None:
        self._markers = tuple(markers)
        self._state = _THINKING if opened else _START
        self._close = self._markers[0][1] if opened else ""
        self._pending = ""
        self._answer_started = False
        #: Whether any thinking was seen (a block opened, or ``opened``).
        self.reasoning = opened

    def feed(self, text: str) -> tuple[str, str]:
        """The (thinking, answer) deltas of ``text``, the next piece of the reply."""
        if self._state == _ANSWER:
            return "", self._answer(text)
        pending = self._pending + text
        self._pending = ""
        if self._state == _START:
            stripped = pending.lstrip()
            for opening, closing in self._markers:
                if stripped.startswith(opening):
                    self._state, self._close, self.reasoning = _THINKING, closing, True
                    pending = stripped[len(opening) :]
                    break
            else:
                if not stripped or any(opening.startswith(stripped) for opening, _ in self._markers):
                    self._pending = pending  # whitespace, or maybe a marker's beginning: wait
                    return "", ""
                self._state = _ANSWER
                return "", self._answer(pending)
        end = pending.find(self._close)
        if end >= 0:
            self._state = _ANSWER
            return pending[:end], self._answer(pending[end + len(self._close) :])
        keep = _held_back(pending, self._close)
        if keep:
            self._pending = pending[-keep:]
            return pending[:-keep], ""
        return pending, ""

    def close(self) -> tuple[str, str]:
        """The (thinking, answer) held back, at the end of the reply."""
        pending, self._pending = self._pending, ""
        if self._state == _THINKING:
            return pending, ""
        if self._state == _START:
            self._state = _ANSWER
            return "", self._answer(pending)
        return "", pending

    @property
    def passing_through(self) -> bool:
        """Whether the rest of the reply is all answer, as it comes (a stream reader may then
        stop feeding the splitter: ``close()`` would give nothing)."""
        return self._state == _ANSWER and (self._answer_started or not self.reasoning)

    def _answer(self, text: str) -> str:
        # the whitespace after a thinking block parts it from the answer; without one it is the answer's
        if not self._answer_started and self.reasoning:
            text = text.lstrip()
            self._answer_started = bool(text)
        return text


def split_thinking(text: str, *, opened: bool = False) -> tuple[str | None, str]:
    """``(thinking, answer)`` of a whole reply; thinking is None when there is none.

    A reply with a closing marker but no opening one (its template opened the block) is split at
    the closing marker too, ``opened`` or not."""
    if not opened and not text.lstrip().startswith(tuple(o for o, _ in MARKERS)):
        closing = next((c for _, c in MARKERS if c in text), None)
        if closing is None:
            return None, text
        opened = True
        splitter = ThinkingSplitter(opened=True, markers=[m for m in MARKERS if m[1] == closing])
    else:
        splitter = ThinkingSplitter(opened=opened)
    thinking, answer = splitter.feed(text)
    rest_thinking, rest_answer = splitter.close()
    thinking = (thinking + rest_thinking).strip()
    return (thinking if splitter.reasoning else None), answer + rest_answer
