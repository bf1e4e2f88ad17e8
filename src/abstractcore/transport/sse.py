"""A pure, incremental Server-Sent Events decoder. No I/O.

``SSEDecoder`` follows the WHATWG event-stream rules: lines end in CRLF, LF or
CR (also when a CRLF is split between two chunks), ``:`` starts a comment,
``data`` lines of one event are joined with ``\\n``, one leading space after
the colon is dropped, an event is dispatched on a blank line, and bytes may be
split anywhere (inside a UTF-8 character too). Malformed input raises
``ResponseFormatError`` and nothing else.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from abstractcore.core.errors import ResponseFormatError

__all__ = ["SSEDecoder", "SSEEvent"]


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event. ``event`` defaults to ``"message"``."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed bytes as they arrive; get back the events they complete."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._buffer = ""
        self._skip_lf = False
        self._first = True
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode ``chunk`` and return the events it completes, in order."""
        try:
            text = self._utf8.decode(chunk)
        except UnicodeDecodeError as exc:
            raise ResponseFormatError(f"event stream is not valid UTF-8: {exc}") from None
        return self._consume(text)

    def feed_data(self, chunk: bytes) -> list[str]:
        """Like ``feed``, but only the ``data`` of each event (what a JSON stream needs), faster.

        Fast path, when the text holds no CR and no event is half-read: split on
        blank lines and take the data of one-line ``data:`` blocks and two-line
        ``event:`` / ``data:`` blocks directly; anything else goes through the
        full WHATWG line parser. Same results as ``feed``.
        """
        try:
            text = self._utf8.decode(chunk)
        except UnicodeDecodeError as exc:
            raise ResponseFormatError(f"event stream is not valid UTF-8: {exc}") from None
        if self._first or self._skip_lf or self._data or self._event or "\r" in text:
            return [event.data for event in self._consume(text)]
        blocks = (self._buffer + text).split("\n\n")
        tail = blocks.pop()
        self._buffer = ""  # the slow path below must not see the tail
        out: list[str] = []
        for block in blocks:
            if block.startswith("data: ") and "\n" not in block:
                out.append(block[6:])
                continue
            if block.startswith("event:") and block.count("\n") == 1:
                data = block.partition("\n")[2]
                if data.startswith("data: "):
                    out.append(data[6:])
                    continue
            if block:
                out.extend(e.data for e in self._consume(block + "\n\n"))
        self._buffer = tail
        return out

    def close(self) -> list[SSEEvent]:
        """Flush at end of stream. A trailing event without a blank line is dropped (WHATWG)."""
        try:
            text = self._utf8.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ResponseFormatError(f"event stream ends inside a UTF-8 character: {exc}") from None
        return self._consume(text)

    def _consume(self, text: str) -> list[SSEEvent]:
        if self._first and text:
            if text.startswith("\ufeff"):
                text = text[1:]
            self._first = False
        if self._skip_lf and text:
            if text[0] == "\n":
                text = text[1:]
            self._skip_lf = False
        buffer = self._buffer + text
        events: list[SSEEvent] = []
        if "\r" not in buffer:  # the common case (no CR at all): one split, no rescans
            *lines, self._buffer = buffer.split("\n")
            for line in lines:
                event = self._line(line)
                if event is not None:
                    events.append(event)
            return events
        start = 0
        length = len(buffer)
        while True:
            cr = buffer.find("\r", start)
            lf = buffer.find("\n", start)
            if cr < 0 and lf < 0:
                break
            end = lf if cr < 0 or (0 <= lf < cr) else cr
            line = buffer[start:end]
            if buffer[end] == "\r":
                if end + 1 < length:
                    start = end + 2 if buffer[end + 1] == "\n" else end + 1
                else:
                    start = end + 1
                    self._skip_lf = True
            else:
                start = end + 1
            event = self._line(line)
            if event is not None:
                events.append(event)
        self._buffer = buffer[start:]
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if line.startswith("data:"):  # fast path for the line that matters
            self._data.append(line[6:] if line.startswith("data: ") else line[5:])
            return None
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event, retry = self._data, self._event, self._retry
        self._data, self._event, self._retry = [], "", None
        if not data:
            return None
        return SSEEvent(data="\n".join(data), event=event or "message", id=self._last_id, retry=retry)
