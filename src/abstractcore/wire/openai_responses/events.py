"""The Responses API's stream, client side: its typed server-sent events read into
``StreamChunk``s (``ResponsesStream``).

``response.output_text.delta`` is answer text, ``response.reasoning_summary_text.delta`` (and
``response.reasoning_text.delta``, open models' raw thinking) a thinking delta;
``response.output_item.added`` opens a function call (its ``name`` and ``call_id``),
``response.function_call_arguments.delta`` carries its arguments and
``response.output_item.done`` delivers it whole. The stream ends with ``response.completed``
(usage), ``response.incomplete`` (cut: finish reason "length") or ``response.failed`` (its
``response.error`` is raised by the provider as the error class it maps to); an ``error``
event is raised by the transport (``is_error_event``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from abstractcore.core.types import ReasoningPart, StreamChunk, ToolCall, ToolCallDelta, Usage
from abstractcore.wire.openai_responses.client import reasoning_parts, tool_call
from abstractcore.wire.openai_responses.shapes import finish_reason, usage_of

__all__ = ["END_EVENTS", "ResponsesStream", "failure_of", "is_error_event", "is_last_event"]

#: The events that end a stream (the response object in its final state).
END_EVENTS = ("response.completed", "response.incomplete", "response.failed")
_TEXT_DELTAS = ("response.output_text.delta", "response.refusal.delta")
_REASONING_DELTAS = ("response.reasoning_summary_text.delta", "response.reasoning_text.delta")


def is_error_event(data: Any) -> bool:
    """True for an ``error`` event (or anything that is not an event object)."""
    return not isinstance(data, dict) or data.get("type") == "error"


def is_last_event(data: Any) -> bool:
    """True for the event that ends the stream."""
    return isinstance(data, dict) and data.get("type") in END_EVENTS


def failure_of(response: Any) -> dict[str, Any] | None:
    """The ``error`` object of a failed response (``{"code", "message"}``), else None."""
    if not isinstance(response, Mapping) or response.get("status") != "failed":
        return None
    error = response.get("error")
    if isinstance(error, Mapping):
        return {"error": dict(error)}
    return {"error": {"code": "server_error", "message": "the response failed (no error given)"}}


class ResponsesStream:
    """Turns the events of one Responses stream into ``StreamChunk``s.

    After the last event: ``response`` is the final response object (None when the stream
    ended early), ``failure`` the error of a ``response.failed``."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.response: dict[str, Any] | None = None
        self.failure: dict[str, Any] | None = None
        self._calls: dict[int, int] = {}  # output_index -> tool call position
        self._delivered: list[ToolCall] = []
        self._items: dict[int, dict[str, Any]] = {}  # output_index -> the item as done
        self._summaries: set[tuple[int, int]] = set()  # (output_index, summary_index) begun
        self._reasoned = False

    def on_event(self, data: dict[str, Any]) -> list[StreamChunk]:
        """The chunks one event yields (events with nothing for the caller yield none)."""
        kind = data.get("type")
        if kind in _TEXT_DELTAS:
            delta = data.get("delta")
            return [StreamChunk(content=delta, model=self.model, raw=data)] if delta else []
        if kind in _REASONING_DELTAS:
            return self._thought(data)
        if kind == "response.function_call_arguments.delta":
            position = self._calls.get(int(data.get("output_index", 0)))
            fragment = str(data.get("delta") or "")
            if position is None or not fragment:
                return []
            delta = ToolCallDelta(index=position, arguments_fragment=fragment)
            return [StreamChunk(tool_call_deltas=[delta], model=self.model, raw=data)]
        if kind == "response.output_item.added":
            return self._item_added(int(data.get("output_index", 0)), data.get("item") or {}, data)
        if kind == "response.output_item.done":
            return self._item_done(int(data.get("output_index", 0)), data.get("item") or {}, data)
        if kind in ("response.created", "response.in_progress"):
            response = data.get("response")
            if isinstance(response, Mapping):
                self.model = str(response.get("model") or self.model)
        elif kind in END_EVENTS:
            response = data.get("response")
            self.response = dict(response) if isinstance(response, Mapping) else {"status": "completed"}
            self.model = str(self.response.get("model") or self.model)
            self.failure = failure_of(self.response)
        return []

    def _item_added(self, index: int, item: Mapping[str, Any], data: dict[str, Any]) -> list[StreamChunk]:
        if item.get("type") != "function_call":
            return []
        position = len(self._calls)
        self._calls[index] = position
        delta = ToolCallDelta(index=position, id=item.get("call_id"), name=item.get("name"))
        return [StreamChunk(tool_call_deltas=[delta], model=self.model, raw=data)]

    def _item_done(self, index: int, item: Mapping[str, Any], data: dict[str, Any]) -> list[StreamChunk]:
        self._items[index] = dict(item)
        if item.get("type") != "function_call":
            return []
        call = tool_call(item, len(self._delivered))
        self._delivered.append(call)
        return [StreamChunk(tool_calls=[call], model=self.model, raw=data)]

    def _thought(self, data: dict[str, Any]) -> list[StreamChunk]:
        """A thinking delta; a later summary part's first text set apart by a blank line."""
        text = str(data.get("delta") or "")
        if not text:
            return []
        key = (int(data.get("output_index", 0)), int(data.get("summary_index", data.get("content_index", 0))))
        apart = "\n\n" if key not in self._summaries and self._reasoned else ""
        self._summaries.add(key)
        self._reasoned = True
        return [StreamChunk(reasoning=apart + text, model=self.model, raw=data)]

    def _output(self) -> list[Any]:
        final = self.response.get("output") if self.response else None
        if isinstance(final, list) and final:
            return final
        return [self._items[i] for i in sorted(self._items)]

    def reasoning_parts(self) -> list[ReasoningPart]:
        """The reasoning items, whole (summary, id, ``encrypted_content``), in order."""
        return reasoning_parts(self._output())

    def last_chunk(self) -> StreamChunk:
        """The closing chunk: finish reason, usage, the calls not delivered yet (none when every
        ``output_item.done`` came) and the reasoning items to send back. Its ``raw`` is the final
        response object (``raw["id"]`` for ``previous_response_id``)."""
        response = self.response or {}
        missing = [
            tool_call(item, i)
            for i, item in enumerate(self._output())
            if isinstance(item, Mapping) and item.get("type") == "function_call"
        ][len(self._delivered) :]
        usage: Usage | None = usage_of(response.get("usage"))
        return StreamChunk(
            finish_reason=finish_reason(response, bool(self._delivered or missing)),
            usage=usage,
            tool_calls=missing,
            model=self.model,
            raw=self.response,
            reasoning_parts=self.reasoning_parts(),
        )
