"""A pure, incremental NDJSON decoder (Ollama's stream format), and JSON parsing for streams. No I/O."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable
from typing import Any

from abstractcore.core.errors import ResponseFormatError

__all__ = ["NDJSONDecoder", "fast_json", "parse_json_data"]


class NDJSONDecoder:
    """Newline-delimited JSON: one object per line, split anywhere."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._buffer = ""

    def feed(self, chunk: bytes) -> list[Any]:
        """Decode ``chunk``; return the objects of the lines it completes."""
        try:
            self._buffer += self._utf8.decode(chunk)
        except UnicodeDecodeError as exc:
            raise ResponseFormatError(f"NDJSON stream is not valid UTF-8: {exc}") from None
        *lines, self._buffer = self._buffer.split("\n")
        return _parse_lines(lines)

    def feed_lines(self, chunk: bytes) -> list[str]:
        """Decode ``chunk``; return the (not yet parsed) non-blank lines it completes."""
        try:
            self._buffer += self._utf8.decode(chunk)
        except UnicodeDecodeError as exc:
            raise ResponseFormatError(f"NDJSON stream is not valid UTF-8: {exc}") from None
        *lines, self._buffer = self._buffer.split("\n")
        return [line for line in lines if line.strip()]

    def close(self) -> list[Any]:
        """Flush at end of stream: a last line without newline still counts."""
        try:
            self._buffer += self._utf8.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ResponseFormatError(f"NDJSON stream ends inside a UTF-8 character: {exc}") from None
        rest, self._buffer = self._buffer, ""
        return _parse_lines([rest])


def _parse_lines(lines: Iterable[str]) -> list[Any]:
    return [parse_json_data(line) for line in lines if line.strip()]


_scan = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009 - set in __init__, absent from the stubs


def fast_json(text: str) -> Any:
    """``json.loads`` for one JSON value without its wrapper overhead (~30% faster per stream event);
    anything unusual (surrounding whitespace, trailing data, an error) goes through ``parse_json_data``."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return parse_json_data(text)
    if end != len(text):
        return parse_json_data(text)
    return value


def parse_json_data(text: str) -> Any:
    """``json.loads`` that raises ``ResponseFormatError`` with a short excerpt."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        excerpt = text if len(text) <= 200 else text[:200] + "..."
        raise ResponseFormatError(f"expected JSON in the stream, got {excerpt!r}") from None
