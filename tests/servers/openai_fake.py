"""A small OpenAI Chat Completions server that answers with chosen statuses and faults.

It runs aiohttp.web on its own loop in a background thread on 127.0.0.1, so it
serves tests on asyncio and trio alike. ``FakeOpenAI.script`` holds the faults
for the next requests (one entry is used per request); with no entry it
answers like OpenAI: a completion, or an SSE stream whose last chunk carries
usage only when ``stream_options.include_usage`` was asked for.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

WORDS = ["Hello", " from", " the", " fake", " server", "."]
KEY = "sk-test-secret-key-1234567890"


@dataclass
class Fault:
    """What to do with one request instead of answering normally."""

    #: status | html | invalid_json | delay | drop_stream | stream_error | delay_stream | reply | echo
    #: | thinking (``body`` = ``thinking_body(...)``: a thinking model's reply, streamed or not)
    kind: str
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    events: int = 2


def thinking_body(
    reasoning: str, content: str, *, field: str | None = "reasoning_content", reasoning_tokens: int = 0
) -> dict[str, Any]:
    """What a ``Fault("thinking")`` answers: ``reasoning`` in the message's (and each delta's)
    ``field`` ("reasoning_content": DeepSeek, vLLM, llama-server; "reasoning": OpenRouter, LM Studio),
    or with ``field=None`` inside ``<think>…</think>`` at the start of the content (a server without
    a reasoning parser), streamed 3 characters a delta so the markers are cut across deltas."""
    return {"reasoning": reasoning, "content": content, "field": field, "reasoning_tokens": reasoning_tokens}


def _thinking_usage(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_tokens": 7,
        "completion_tokens": 20,
        "total_tokens": 27,
        "completion_tokens_details": {"reasoning_tokens": spec["reasoning_tokens"]},
    }


def _thinking_deltas(spec: dict[str, Any]) -> list[dict[str, str]]:
    field, reasoning, content = spec["field"], spec["reasoning"], spec["content"]
    if field is None:
        text = f"<think>{reasoning}</think>\n{content}"
        return [{"content": text[i : i + 3]} for i in range(0, len(text), 3)]
    pieces = [{field: reasoning[i : i + 3]} for i in range(0, len(reasoning), 3)]
    return pieces + [{"content": content[i : i + 3]} for i in range(0, len(content), 3)]


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class FakeOpenAI:
    """The server's state: scripted faults and the requests it received."""

    def __init__(self) -> None:
        self.script: deque[Fault] = deque()
        self.requests: list[dict[str, Any]] = []
        self.require_key = True
        self.open_streams = 0
        self.base_url = ""

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()
        self.require_key = True

    # -- handlers -----------------------------------------------------------------

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response(
                _error("We could not parse the JSON body.", "invalid_request_error", None), status=400
            )
        self.requests.append({"headers": dict(request.headers), "body": body, "query": dict(request.query)})
        if self.require_key and request.headers.get("Authorization") != f"Bearer {KEY}":
            return web.json_response(
                _error(
                    "Incorrect API key provided: sk-wr***ey. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
                status=401,
                headers={"x-request-id": "req_auth"},
            )
        fault = self.script.popleft() if self.script else None
        if fault is not None:
            handled = await self._fault(fault, request, body)
            if handled is not None:
                return handled
        if body.get("model") == "missing-model":
            return web.json_response(
                _error(
                    "The model `missing-model` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    "model_not_found",
                ),
                status=404,
                headers={"x-request-id": "req_missing"},
            )
        if body.get("stream"):
            return await self._stream(request, body, fault)
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "".join(WORDS)},
                    }
                ],
                "usage": {
                    "prompt_tokens": 7,
                    "completion_tokens": len(WORDS),
                    "total_tokens": 7 + len(WORDS),
                },
            },
            headers={"x-request-id": "req_ok"},
        )

    async def _fault(self, fault: Fault, request: web.Request, body: Any) -> web.StreamResponse | None:
        if fault.kind == "status":
            payload = fault.body if fault.body is not None else _error("fault", "server_error", None)
            return web.json_response(payload, status=fault.status, headers=fault.headers)
        if fault.kind == "html":
            return web.Response(
                status=fault.status,
                content_type="text/html",
                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
        if fault.kind == "invalid_json":
            return web.Response(status=200, content_type="application/json", text="{not json")
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            return None
        if fault.kind == "broken_error_body":  # an error status whose body breaks off
            response = web.StreamResponse(
                status=fault.status or 500,
                headers={"content-type": "application/json", "content-length": "400"},
            )
            await response.prepare(request)
            await response.write(b'{"error": {"message": "upstream fail')
            assert request.transport is not None
            request.transport.abort()
            return response
        if fault.kind == "echo":  # answers with the last user message's text (tells replies apart)
            users = [m for m in body.get("messages", []) if m.get("role") == "user"]
            content = users[-1].get("content", "") if users else ""
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            fault = Fault("reply", body={"content": content})
        if fault.kind == "thinking" and not body.get("stream"):
            spec = fault.body
            message = {"role": "assistant", "content": spec["content"]}
            if spec["field"] is None:
                message["content"] = f"<think>{spec['reasoning']}</think>\n{spec['content']}"
            else:
                message[spec["field"]] = spec["reasoning"]
            return web.json_response(
                {
                    "id": "chatcmpl-4",
                    "object": "chat.completion",
                    "created": 1,
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                    "usage": _thinking_usage(spec),
                }
            )
        if fault.kind == "reply":  # a chosen answer: body = {"content": ..., "finish_reason": ...}
            return web.json_response(
                {
                    "id": "chatcmpl-3",
                    "object": "chat.completion",
                    "created": 1,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": fault.body.get("finish_reason", "stop"),
                            "message": {"role": "assistant", "content": fault.body["content"]},
                        }
                    ],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
                }
            )
        return None  # stream faults are applied while streaming

    async def _stream(self, request: web.Request, body: Any, fault: Fault | None) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "x-request-id": "req_stream"}
        )
        await response.prepare(request)
        self.open_streams += 1
        try:
            base = {
                "id": "chatcmpl-2",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body["model"],
            }
            if fault is not None and fault.kind == "thinking":
                for delta in _thinking_deltas(fault.body):
                    chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                done = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                usage = {**base, "choices": [], "usage": _thinking_usage(fault.body)}
                for event in (done, usage):
                    await response.write(f"data: {json.dumps(event)}\n\n".encode())
                await response.write(b"data: [DONE]\n\n")
                await response.write_eof()
                return response
            for index, word in enumerate(WORDS):
                if fault is not None and fault.kind == "drop_stream" and index == fault.events:
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                if fault is not None and fault.kind == "stream_error" and index == fault.events:
                    payload = {
                        "error": {
                            "message": "The server had an error while processing your request.",
                            "type": "server_error",
                        }
                    }
                    await response.write(f"data: {json.dumps(payload)}\n\n".encode())
                    return response
                chunk = {**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                if index == 0:
                    chunk["choices"][0]["delta"]["role"] = "assistant"
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                if fault is not None and fault.kind == "delay_stream":
                    await asyncio.sleep(fault.seconds)
            done = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            await response.write(f"data: {json.dumps(done)}\n\n".encode())
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {
                    **base,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": 7,
                        "completion_tokens": len(WORDS),
                        "total_tokens": 7 + len(WORDS),
                    },
                }
                await response.write(f"data: {json.dumps(usage)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        finally:
            self.open_streams -= 1

    async def models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": "gpt-fake", "object": "model", "owned_by": "tests"},
                    {"id": "gpt-fake-2", "object": "model", "owned_by": "tests"},
                ],
            }
        )


@contextmanager
def running_fake_openai() -> Iterator[FakeOpenAI]:
    """Start the server in a background thread; yield its state (``base_url`` set)."""
    state = FakeOpenAI()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    runner_box: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", state.chat)
        app.router.add_get("/v1/models", state.models)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        state.base_url = f"http://127.0.0.1:{port}/v1"
        runner_box.append(runner)
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-openai", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield state
    finally:
        asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
