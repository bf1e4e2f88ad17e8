"""The Responses API's stream, server side: ``StreamChunk``s -> the published typed events.

Each event is ``event: <type>`` + ``data: {...}`` with a ``sequence_number``, in the order
OpenAI publishes: ``response.created``, ``response.in_progress``; per output item
``response.output_item.added``, then for a message ``response.content_part.added``,
``response.output_text.delta``..., ``response.output_text.done``, ``response.content_part.done``;
for a function call ``response.function_call_arguments.delta``... and ``.done``; for thinking
``response.reasoning_summary_part.added``, ``response.reasoning_summary_text.delta``...,
``.done`` and ``response.reasoning_summary_part.done``; then ``response.output_item.done``; last
``response.completed`` (``response.incomplete`` when cut by ``max_output_tokens``) with usage.
A failure after the stream began is an ``error`` event and ``response.failed``.
"""

from __future__ import annotations

from typing import Any

from abstractcore.core.types import StreamChunk, Usage
from abstractcore.wire.encoding import new_id, sse_event
from abstractcore.wire.openai_responses.server import response_object
from abstractcore.wire.openai_responses.shapes import (
    function_call_item,
    message_item,
    output_text,
    reasoning_item,
    status_of,
    usage_body,
)

__all__ = ["ResponseStream"]


class _Item:
    """One output item being streamed: its kind, id, text so far (and a call's id and name)."""

    __slots__ = ("call_id", "item_id", "kind", "name", "parts")

    def __init__(self, kind: str, item_id: str, call_id: str = "", name: str = "") -> None:
        self.kind = kind
        self.item_id = item_id
        self.call_id = call_id
        self.name = name
        self.parts: list[str] = []

    def whole(self, status: str = "completed") -> dict[str, Any]:
        text = "".join(self.parts)
        if self.kind == "message":
            return message_item(self.item_id, text, status)
        if self.kind == "reasoning":
            return reasoning_item(self.item_id, text)
        return function_call_item(self.item_id, self.call_id, self.name, text or "{}", status)


class ResponseStream:
    """The events of one streamed response (``start`` / ``chunk`` / ``end`` / ``error``, the
    server's stream protocol). ``final`` is the finished ``response`` object once ``end`` or
    ``error`` ran (the server stores it for ``previous_response_id``)."""

    def __init__(self, response_id: str, model: str, echo: dict[str, Any]) -> None:
        self.response_id = response_id
        self._model = model
        self._echo = echo
        self._seq = 0
        self._done: list[dict[str, Any]] = []
        self._open: _Item | None = None
        self._calls: dict[int, _Item] = {}  # the back end's call index -> its item
        self._fragments = False
        self._finish: str | None = None
        self._usage: Usage | None = None
        self.final: dict[str, Any] | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return sse_event(kind, data)

    def _where(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open.item_id, "output_index": len(self._done)}

    def _snapshot(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(
            self.response_id, self._model, self._echo, list(self._done), status=status, **extra
        )

    def start(self) -> bytes:
        """``response.created`` and ``response.in_progress``."""
        snapshot = self._snapshot("in_progress")
        return self._event("response.created", response=snapshot) + self._event(
            "response.in_progress", response=snapshot
        )

    def _begin(self, item: _Item) -> bytes:
        out = self._close()
        self._open = item
        where = {"output_index": len(self._done)}
        if item.kind == "message":
            added = message_item(item.item_id, None, "in_progress")
            out += self._event("response.output_item.added", item=added, **where)
            part = output_text("")
            return out + self._event(
                "response.content_part.added", content_index=0, part=part, **self._where()
            )
        if item.kind == "reasoning":
            out += self._event("response.output_item.added", item=reasoning_item(item.item_id, None), **where)
            part = {"type": "summary_text", "text": ""}
            return out + self._event(
                "response.reasoning_summary_part.added", summary_index=0, part=part, **self._where()
            )
        added = function_call_item(item.item_id, item.call_id, item.name, "", "in_progress")
        return out + self._event("response.output_item.added", item=added, **where)

    def _close(self) -> bytes:
        item = self._open
        if item is None:
            return b""
        text, where = "".join(item.parts), self._where()
        if item.kind == "message":
            out = self._event("response.output_text.done", content_index=0, text=text, logprobs=[], **where)
            part = output_text(text)
            out += self._event("response.content_part.done", content_index=0, part=part, **where)
        elif item.kind == "reasoning":
            out = self._event("response.reasoning_summary_text.done", summary_index=0, text=text, **where)
            part = {"type": "summary_text", "text": text}
            out += self._event("response.reasoning_summary_part.done", summary_index=0, part=part, **where)
        else:
            out = self._event(
                "response.function_call_arguments.done", name=item.name, arguments=text or "{}", **where
            )
        whole = item.whole()
        out += self._event("response.output_item.done", item=whole, output_index=where["output_index"])
        self._done.append(whole)
        self._open = None
        return out

    def _add(self, kind: str, text: str) -> bytes:
        out = b""
        if self._open is None or self._open.kind != kind:
            out = self._begin(_Item(kind, new_id("rs_" if kind == "reasoning" else "msg_")))
        assert self._open is not None
        self._open.parts.append(text)
        if kind == "message":
            return out + self._event(
                "response.output_text.delta", content_index=0, delta=text, logprobs=[], **self._where()
            )
        return out + self._event(
            "response.reasoning_summary_text.delta", summary_index=0, delta=text, **self._where()
        )

    def chunk(self, chunk: StreamChunk) -> bytes:
        """The events of one chunk of the answer (finish and usage are kept for ``end``)."""
        out = b""
        if chunk.reasoning:
            out += self._add("reasoning", chunk.reasoning)
        if chunk.content:
            out += self._add("message", chunk.content)
        for delta in chunk.tool_call_deltas:
            self._fragments = True
            item = self._calls.get(delta.index)
            if item is None:
                item = _Item("function_call", new_id("fc_"), delta.id or new_id("call_"), delta.name or "")
                self._calls[delta.index] = item
                out += self._begin(item)
            if delta.arguments_fragment and item is self._open:  # a call already closed takes no more
                item.parts.append(delta.arguments_fragment)
                out += self._event(
                    "response.function_call_arguments.delta", delta=delta.arguments_fragment, **self._where()
                )
        if not self._fragments:  # the back end hands calls over whole
            for call in chunk.tool_calls:
                arguments = call.arguments_json()
                out += self._begin(_Item("function_call", new_id("fc_"), call.id, call.name))
                assert self._open is not None
                self._open.parts.append(arguments)
                out += self._event("response.function_call_arguments.delta", delta=arguments, **self._where())
        if chunk.finish_reason is not None:
            self._finish = chunk.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        return out

    def end(self) -> bytes:
        """The last item closed, then ``response.completed`` (or ``response.incomplete``)."""
        out = self._close()
        if not self._done:  # an empty answer is still a message, as the whole reply has it
            out += self._begin(_Item("message", new_id("msg_"))) + self._close()
        status, incomplete = status_of(self._finish)
        self.final = self._snapshot(status, usage=usage_body(self._usage), incomplete=incomplete)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._event(kind, response=self.final)

    def error(self, body: dict[str, Any]) -> bytes:
        """A failure after the stream began: an ``error`` event (OpenAI's error ``body``'s
        message and code) and ``response.failed`` holding the items so far."""
        error = body.get("error") or {}
        code = error.get("code") or error.get("type") or "server_error"
        message = str(error.get("message") or "The response failed.")
        out = self._event("error", code=code, message=message, param=error.get("param"))
        failed = self._snapshot("failed", error={"code": code, "message": message})
        self.final = None  # a failed response is not kept
        return out + self._event("response.failed", response=failed)
