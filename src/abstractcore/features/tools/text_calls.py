"""Tool calls written as text by models that have no native tool calling, parsed back out.

Formats understood (what open models are trained to write):

- Hermes / Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``;
- Mistral: ``[TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]``;
- Llama 3.1: ``<|python_tag|>{"name": ..., "parameters": {...}}`` or the bare object;
- a bare JSON object (or list of objects) with ``name`` and ``arguments``/``parameters``
  when it is the whole answer (a grammar-constrained call is exactly that).

``parse_text_calls(text)`` splits a whole answer into its prose and its calls.
``TextCallStream`` does the same incrementally: prose streams out as it
arrives, anything that may be the start of a call is held back, and each call
is emitted whole once it is complete.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from abstractcore.core.types import ToolCall
from abstractcore.features.tools.accumulator import as_arguments

__all__ = ["TextCallStream", "parse_text_calls"]

_OPEN, _CLOSE = "<tool_call>", "</tool_call>"
_MISTRAL = "[TOOL_CALLS]"
_PYTHON_TAG = "<|python_tag|>"
_MARKERS = (_OPEN, _MISTRAL, _PYTHON_TAG)
_END_TOKENS = re.compile(r"<\|eom_id\|>|<\|eot_id\|>")


def _call_of(data: Any, index: int) -> ToolCall | None:
    if not isinstance(data, dict):
        return None
    inner = data.get("function")
    function: dict[str, Any] = inner if isinstance(inner, dict) else data
    name = function.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments = function.get("arguments", function.get("parameters", {}))
    return ToolCall(id=str(data.get("id") or f"call_{index}"), name=name, arguments=as_arguments(arguments))


def _calls_in(value: Any, start: int) -> list[ToolCall] | None:
    items = value if isinstance(value, list) else [value]
    calls = [_call_of(item, start + i) for i, item in enumerate(items)]
    if not calls or any(c is None for c in calls):
        return None
    return [c for c in calls if c is not None]


def _json_prefix(text: str) -> tuple[Any, int] | None:
    """The JSON value at the start of ``text`` (after spaces) and where it ends, or None."""
    stripped = len(text) - len(text.lstrip())
    try:
        value, end = json.JSONDecoder().raw_decode(text, stripped)
    except ValueError:
        return None
    return value, end


def parse_text_calls(text: str, *, first_index: int = 0) -> tuple[str, list[ToolCall]]:
    """(the prose of ``text``, the tool calls written in it), for every format above."""
    stream = TextCallStream(first_index=first_index)
    prose = stream.feed(text) + stream.finish()
    return prose, stream.calls


@dataclass
class TextCallStream:
    """Incremental ``parse_text_calls``: ``feed`` returns the prose safe to show now."""

    first_index: int = 0
    calls: list[ToolCall] = field(default_factory=list)
    _buffer: str = ""
    _emitted: int = 0  # calls handed out by ``take``
    _prose_seen: bool = False

    def feed(self, delta: str) -> str:
        """Add ``delta``; return the prose that can be shown now (calls are collected in ``calls``)."""
        self._buffer += delta
        return self._drain(final=False)

    def finish(self) -> str:
        """The end of the answer: flush held-back text (and a last call without its end marker)."""
        return self._drain(final=True)

    def take(self) -> list[ToolCall]:
        """The calls completed since the last ``take``."""
        new = self.calls[self._emitted :]
        self._emitted = len(self.calls)
        return new

    def _add(self, found: Iterable[ToolCall]) -> None:
        for call in found:
            index = self.first_index + len(self.calls)
            self.calls.append(
                ToolCall(
                    id=call.id if not call.id.startswith("call_") else f"call_{index}",
                    name=call.name,
                    arguments=call.arguments,
                )
            )

    def _drain(self, *, final: bool) -> str:
        out: list[str] = []
        while self._buffer:
            marker_at, marker = self._next_marker()
            if marker is None:
                # a bare JSON call is only recognised when it is the whole answer
                if not self._prose_seen and self._buffer.lstrip()[:1] in ("{", "["):
                    if not final:
                        break
                    parsed = _json_prefix(self._buffer)
                    calls = _calls_in(parsed[0], 0) if parsed else None
                    if parsed and calls and not self._buffer[parsed[1] :].strip():
                        self._add(calls)
                        self._buffer = ""
                        break
                hold = 0 if final else self._partial_marker_length()
                cut = len(self._buffer) - hold
                piece, self._buffer = self._buffer[:cut], self._buffer[cut:]
                if piece.strip():
                    self._prose_seen = True
                out.append(piece)
                break
            before, rest = self._buffer[:marker_at], self._buffer[marker_at:]
            if before.strip():
                self._prose_seen = True
            out.append(before)
            consumed = self._take_call(marker, rest, final=final)
            if consumed is None:  # the call is not complete yet
                self._buffer = rest
                break
            self._buffer = rest[consumed:]
        return _END_TOKENS.sub("", "".join(out))

    def _next_marker(self) -> tuple[int, str | None]:
        found = [(self._buffer.find(m), m) for m in _MARKERS if m in self._buffer]
        if not found:
            return -1, None
        return min(found)

    def _partial_marker_length(self) -> int:
        """How many trailing characters might begin a marker (held back until it is clear)."""
        for size in range(min(len(self._buffer), max(map(len, _MARKERS)) - 1), 0, -1):
            tail = self._buffer[-size:]
            if any(m.startswith(tail) for m in _MARKERS):
                return size
        return 0

    def _take_call(self, marker: str, rest: str, *, final: bool) -> int | None:
        """Characters of ``rest`` (which starts with ``marker``) consumed by one call; None: incomplete."""
        body = rest[len(marker) :]
        if marker == _OPEN:
            end = body.find(_CLOSE)
            if end < 0:
                if not final:
                    return None
                end = len(body)
            parsed = _json_prefix(body[:end])
            calls = _calls_in(parsed[0], 0) if parsed else None
            if calls:
                self._add(calls)
            return len(marker) + min(end + len(_CLOSE), len(body))
        parsed = _json_prefix(body)
        if parsed is None:
            if not final:
                return None
            return len(rest)  # a marker followed by no JSON: drop it
        calls = _calls_in(parsed[0], 0)
        if calls:
            self._add(calls)
        return len(marker) + parsed[1]
