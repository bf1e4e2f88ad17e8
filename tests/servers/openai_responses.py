"""A small OpenAI Responses API server (``POST /v1/responses``) serving scripted replies.

It follows the published wire format: every response object and stream event it sends is
validated by the official ``openai`` SDK's types before it leaves (``Response``,
``ResponseStreamEvent``), so a client that reads it reads OpenAI. A test puts ``Reply``s in
``FakeResponses.script`` (one per request; with none it answers ``Reply.text("Hello.")``) and
reads the request bodies it received in ``requests``; a body with a field the SDK's parameters do
not have (or that the SDK's ``ResponseCreateParams`` rejects) is answered 400 as OpenAI would.
A reply is a list of output items (``message``, ``function_call``, ``reasoning`` with its summary
and ``encrypted_content``) plus usage,
answered whole or streamed in OpenAI's event order (``response.created`` → ``in_progress`` →
``output_item.added`` → ``content_part.added`` → ``output_text.delta``… → ``output_text.done`` →
``content_part.done`` → ``output_item.done`` → ``response.completed``); or an error status with
OpenAI's error body; or a stream that fails after some deltas (``response.failed`` or an
``error`` event).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from openai.types.responses import InputTokenCountResponse, Response, ResponseStreamEvent
from openai.types.responses.response_create_params import ResponseCreateParamsNonStreaming
from pydantic import TypeAdapter, ValidationError

from tests.servers.common import ThreadedServer

KEY = "sk-test-responses-key-0987654321"
_EVENT = TypeAdapter(ResponseStreamEvent)
_BODY = TypeAdapter(ResponseCreateParamsNonStreaming)
#: The fields a request body may have (the SDK's parameters).
FIELDS = frozenset(ResponseCreateParamsNonStreaming.__annotations__) | {"stream"}


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error body."""
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


def message_item(text: str, index: int = 0) -> dict[str, Any]:
    """An assistant ``message`` output item with one ``output_text`` part."""
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "type": "message",
        "id": f"msg_{index}",
        "role": "assistant",
        "status": "completed",
        "content": [part],
    }


def call_item(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    """A ``function_call`` output item."""
    return {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(arguments),
        "status": "completed",
    }


def reasoning_item(summary: str | list[str], encrypted: str, item_id: str = "rs_1") -> dict[str, Any]:
    """A ``reasoning`` output item with its summary parts and its ``encrypted_content``."""
    texts = [summary] if isinstance(summary, str) else summary
    return {
        "type": "reasoning",
        "id": item_id,
        "summary": [{"type": "summary_text", "text": text} for text in texts],
        "encrypted_content": encrypted,
    }


def usage(
    input_tokens: int = 11, output_tokens: int = 5, *, cached: int = 0, reasoning: int = 0
) -> dict[str, Any]:
    """A response's ``usage`` with its details."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


@dataclass
class Reply:
    """What the server answers one request with."""

    output: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=usage)
    status: int = 200
    body: dict[str, Any] | None = None  # an error status's body
    headers: dict[str, str] = field(default_factory=dict)
    #: a stream that fails after this many text deltas: "failed" (response.failed), "error" (an
    #: ``error`` event) or "drop" (the connection closed with no closing event)
    fail: str | None = None
    fail_after: int = 2
    fail_code: str = "server_error"
    #: cut short: ``status: "incomplete"`` with this ``incomplete_details.reason``
    incomplete: str | None = None

    @classmethod
    def text(cls, text: str, **kw: Any) -> Reply:
        return cls(output=[message_item(text)], **kw)

    @classmethod
    def error(cls, status: int, body: dict[str, Any], **headers: str) -> Reply:
        return cls(status=status, body=body, headers=headers)


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


class FakeResponses:
    """The server's state: the scripted replies and the request bodies received."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.counted: list[dict[str, Any]] = []  # the bodies of POST /v1/responses/input_tokens
        self.base_url = ""
        self._seq = 0

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()
        self.counted.clear()

    def _response(self, body: dict[str, Any], reply: Reply, status: str, output: list[Any]) -> dict[str, Any]:
        done = status in ("completed", "failed", "incomplete")
        data = {
            "id": f"resp_{len(self.requests)}",
            "object": "response",
            "created_at": 1_700_000_000,
            "model": body.get("model", "gpt-test"),
            "status": status,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "store": body.get("store", True),
            "previous_response_id": body.get("previous_response_id"),
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "usage": reply.usage if status in ("completed", "incomplete") else None,
        }
        if status == "incomplete":
            data["incomplete_details"] = {"reason": reply.incomplete}
        if done and status == "failed":
            data["error"] = {"code": reply.fail_code, "message": "The model failed midway."}
        Response.model_validate(data)  # the published shape
        return data

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        self.requests.append(body)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return web.json_response(
                error_body(
                    "Incorrect API key provided: sk-wr***ng.", "invalid_request_error", "invalid_api_key"
                ),
                status=401,
            )
        refused = _refusal(body)
        if refused is not None:  # a body OpenAI would refuse (a client bug): 400 as it answers
            return web.json_response(refused, status=400)
        reply = self.script.popleft() if self.script else Reply.text("Hello.")
        if reply.status != 200:
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        if not body.get("stream"):
            if reply.fail == "failed":  # a 200 whose response failed
                return web.json_response(self._response(body, reply, "failed", []))
            return web.json_response(self._response(body, reply, _final(reply), reply.output))
        return await self._stream(request, body, reply)

    async def input_tokens(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/responses/input_tokens``: a stand-in count, one token per 4 characters of
        the JSON of ``input`` and ``instructions``."""
        body = json.loads(await request.read())
        self.counted.append(body)
        counted = json.dumps([body.get("input"), body.get("instructions")])
        reply = InputTokenCountResponse(object="response.input_tokens", input_tokens=len(counted) // 4)
        return web.json_response(reply.model_dump())

    # -- the stream --------------------------------------------------------------------------

    async def _stream(self, request: web.Request, body: dict[str, Any], reply: Reply) -> web.StreamResponse:
        out = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await out.prepare(request)
        self._seq = 0
        for kind in ("response.created", "response.in_progress"):
            await self._send(out, kind, response=self._response(body, reply, "in_progress", []))
        deltas = 0
        for index, item in enumerate(reply.output):
            await self._send(out, "response.output_item.added", output_index=index, item=_opened(item))
            for event in _item_events(index, item):
                if event["type"] == "response.output_text.delta":
                    if reply.fail is not None and deltas == reply.fail_after:
                        await self._fail(out, body, reply)
                        return out
                    deltas += 1
                kind = event.pop("type")
                await self._send(out, kind, **event)
            await self._send(out, "response.output_item.done", output_index=index, item=item)
        final = self._response(body, reply, _final(reply), reply.output)
        await self._send(out, f"response.{_final(reply)}", response=final)
        await out.write_eof()
        return out

    async def _fail(self, out: web.StreamResponse, body: dict[str, Any], reply: Reply) -> None:
        if reply.fail == "drop":
            await out.write_eof()
            return
        if reply.fail == "failed":
            await self._send(out, "response.failed", response=self._response(body, reply, "failed", []))
        else:
            await self._send(
                out, "error", code=reply.fail_code, message="The server had an error.", param=None
            )
        await out.write_eof()

    async def _send(self, out: web.StreamResponse, kind: str, **fields: Any) -> None:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        _EVENT.validate_python(event)  # the published shape
        await out.write(f"event: {kind}\ndata: {json.dumps(event)}\n\n".encode())


def _refusal(body: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's 400 body for a request body the published parameters do not allow, else None."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return error_body(f"Unknown parameter: '{unknown[0]}'.", "invalid_request_error", None, unknown[0])
    try:
        _BODY.validate_python({k: v for k, v in body.items() if k != "stream"})
    except ValidationError as exc:
        return error_body(f"Invalid body: {exc}", "invalid_request_error", "invalid_value")
    return None


def _final(reply: Reply) -> str:
    return "incomplete" if reply.incomplete else "completed"


def _opened(item: dict[str, Any]) -> dict[str, Any]:
    """An item as ``output_item.added`` shows it: in progress, nothing generated yet."""
    if item["type"] == "message":
        return {**item, "status": "in_progress", "content": []}
    if item["type"] == "function_call":
        return {**item, "status": "in_progress", "arguments": ""}
    return {**item, "summary": []}


def _item_events(index: int, item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The events between an item's ``output_item.added`` and ``output_item.done``."""
    at: dict[str, Any] = {"output_index": index, "item_id": item["id"]}
    if item["type"] == "message":
        part = item["content"][0]
        empty = {**part, "text": ""}
        yield {"type": "response.content_part.added", **at, "content_index": 0, "part": empty}
        for word in _words(part["text"]):
            yield {
                "type": "response.output_text.delta",
                **at,
                "content_index": 0,
                "delta": word,
                "logprobs": [],
            }
        yield {
            "type": "response.output_text.done",
            **at,
            "content_index": 0,
            "text": part["text"],
            "logprobs": [],
        }
        yield {"type": "response.content_part.done", **at, "content_index": 0, "part": part}
    elif item["type"] == "function_call":
        arguments = item["arguments"]
        for start in range(0, len(arguments), 4):
            yield {
                "type": "response.function_call_arguments.delta",
                **at,
                "delta": arguments[start : start + 4],
            }
        yield {
            "type": "response.function_call_arguments.done",
            **at,
            "name": item["name"],
            "arguments": arguments,
        }
    else:
        for s, summary in enumerate(item["summary"]):
            text = summary["text"]
            at_s = {**at, "summary_index": s}
            yield {"type": "response.reasoning_summary_part.added", **at_s, "part": {**summary, "text": ""}}
            for word in _words(text):
                yield {"type": "response.reasoning_summary_text.delta", **at_s, "delta": word}
            yield {"type": "response.reasoning_summary_text.done", **at_s, "text": text}
            yield {"type": "response.reasoning_summary_part.done", **at_s, "part": summary}


@contextmanager
def running_fake_responses() -> Iterator[FakeResponses]:
    """Serve in a background thread on 127.0.0.1; yield the state (``base_url`` set)."""
    state = FakeResponses()
    app = web.Application()
    app.router.add_post("/v1/responses", state.responses)
    app.router.add_post("/v1/responses/input_tokens", state.input_tokens)
    server = ThreadedServer(app).start()
    state.base_url = f"{server.url}/v1"
    try:
        yield state
    finally:
        server.stop()
