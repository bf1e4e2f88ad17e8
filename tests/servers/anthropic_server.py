"""A test server speaking Anthropic's Messages API, answering with the real SmolLM2 model.

No installable server exists for this protocol, so this one follows the
published wire format: ``x-api-key`` and ``anthropic-version`` headers, the
request validation and error bodies (``{"type": "error", "error": {"type",
"message"}, "request_id"}``), the non-streamed ``message`` object and the SSE
event sequence of a stream (``message_start``, ``content_block_start``,
``ping``, ``content_block_delta`` with ``text_delta`` / ``input_json_delta``,
``content_block_stop``, ``message_delta`` with stop reason and usage,
``message_stop``; ``error`` events), with extended thinking (``thinking`` and
``redacted_thinking`` blocks, ``thinking_delta`` / ``signature_delta``; its rules and the
signature checks of thinking sent back are in ``anthropic_thinking.py``), prompt caching
(``cache_control`` breakpoints, the cache fields of usage) and ``/v1/messages/count_tokens``
(``anthropic_caching.py``). A forced
``tool_choice`` is answered
with a ``tool_use`` block whose input the model generated under a JSON
grammar built from the tool's ``input_schema``.

It runs aiohttp.web on its own event loop in a background thread on a free
127.0.0.1 port, so it serves tests on asyncio and trio alike. Tests ask for
faults through ``AnthropicServer.script(...)``: the faults are used, one per
request, by requests carrying the script's ``x-test-script`` header.

The model, the threaded runner and the fault script are shared with the
Ollama server in ``tests/servers/common.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web

from tests.servers import anthropic_caching, anthropic_thinking
from tests.servers.anthropic_validation import Invalid, validate
from tests.servers.common import (
    Fault,
    Generation,
    LocalModel,
    ScriptedServer,
)

# -- the Anthropic protocol ----------------------------------------------------------------------

API_KEY = "sk-ant-api03-test-KEY-0123456789abcdefghij"
#: id -> (display name, created_at); aliases resolve to dated ids as on the real API.
MODELS = {
    "claude-haiku-4-5-20251001": ("Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
    "claude-sonnet-4-5-20250929": ("Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    "claude-3-5-haiku-20241022": ("Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
}
ALIASES = {
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}
MAX_OUTPUT_TOKENS = 8192
#: The output limits of the models with a larger one than ``MAX_OUTPUT_TOKENS``.
OUTPUT_LIMITS = {"claude-haiku-4-5-20251001": 64000, "claude-sonnet-4-5-20250929": 64000}


def _request_id() -> str:
    return "req_" + uuid.uuid4().hex[:24]


def error_body(kind: str, message: str, request_id: str) -> dict[str, Any]:
    """Anthropic's error body."""
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        kind = block.get("type")
        if kind == "text":
            parts.append(block["text"])
        elif kind == "tool_use":
            parts.append(f"[called {block['name']} with {json.dumps(block['input'])}]")
        elif kind == "tool_result":
            parts.append(f"[result of {block['tool_use_id']}: {_text_of(block.get('content'))}]")
    return "\n".join(parts)


class AnthropicServer(ScriptedServer):
    """The server's state: its model, key, scripts and every request it received."""

    def __init__(self, model: LocalModel, *, api_key: str = API_KEY) -> None:
        self.model = model
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.cache = anthropic_caching.Cache(model.count_prompt_tokens, self._chat)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._wrap(self.messages))
        app.router.add_post("/v1/messages/count_tokens", self._wrap(self.count_tokens))
        app.router.add_get("/v1/models", self._wrap(self.list_models))
        app.router.add_route("*", "/{tail:.*}", self._wrap(self.not_found))
        self._serve(app)

    @property
    def url(self) -> str:
        """The base URL (without ``/v1``, like ``https://api.anthropic.com``)."""
        return self._server.url

    # -- plumbing ----------------------------------------------------------------

    def _wrap(
        self, handler: Callable[[web.Request, str], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            request_id = _request_id()
            key = request.headers.get("x-api-key")
            if key is None:
                return self._error(401, "authentication_error", "x-api-key header is required", request_id)
            if key != self.api_key:
                return self._error(401, "authentication_error", "invalid x-api-key", request_id)
            if "anthropic-version" not in request.headers:
                return self._error(
                    400, "invalid_request_error", "anthropic-version: header is required", request_id
                )
            return await handler(request, request_id)

        return wrapped

    @staticmethod
    def _error(
        status: int, kind: str, message: str, request_id: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(
            error_body(kind, message, request_id),
            status=status,
            headers={"request-id": request_id, **(headers or {})},
        )

    async def not_found(self, request: web.Request, request_id: str) -> web.StreamResponse:
        """Any other path: the API's JSON 404."""
        return self._error(404, "not_found_error", "Not Found", request_id)

    async def list_models(self, request: web.Request, request_id: str) -> web.StreamResponse:
        """``GET /v1/models`` with ``limit`` / ``after_id`` paging."""
        ids = list(MODELS)
        after = request.query.get("after_id")
        if after in ids:
            ids = ids[ids.index(after) + 1 :]
        limit = int(request.query.get("limit", "20"))
        page = ids[:limit]
        data = [
            {"type": "model", "id": i, "display_name": MODELS[i][0], "created_at": MODELS[i][1]} for i in page
        ]
        return web.json_response(
            {
                "data": data,
                "has_more": len(ids) > limit,
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            },
            headers={"request-id": request_id},
        )

    # -- POST /v1/messages -------------------------------------------------------------

    async def _body(self, request: web.Request, request_id: str) -> Any:
        """The JSON body (recorded), or the API's 400 reply."""
        if request.content_type != "application/json":
            return self._error(
                400, "invalid_request_error", "content-type: must be application/json", request_id
            )
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(
                400,
                "invalid_request_error",
                "There was an error parsing the body of your request as JSON",
                request_id,
            )
        self.requests.append({"headers": dict(request.headers), "body": body})
        return body

    async def count_tokens(self, request: web.Request, request_id: str) -> web.StreamResponse:
        """``POST /v1/messages/count_tokens``: the prompt's tokens, as ``messages`` counts them."""
        body = await self._body(request, request_id)
        if isinstance(body, web.Response):
            return body
        self.scripts.record(request, body)  # the script's faults are for its messages
        extra = next((name for name in body if name not in anthropic_caching.COUNT_FIELDS), None)
        try:
            if extra is not None:
                raise Invalid(f"{extra}: Extra inputs are not permitted")
            validate({**body, "max_tokens": 1})
        except Invalid as exc:
            return self._error(400, "invalid_request_error", str(exc), request_id)
        tokens = await asyncio.to_thread(self.model.count_prompt_tokens, self._chat(body))
        return web.json_response({"input_tokens": tokens}, headers={"request-id": request_id})

    async def messages(self, request: web.Request, request_id: str) -> web.StreamResponse:
        """``POST /v1/messages``: validate, apply a scripted fault, generate (streamed or not)."""
        body = await self._body(request, request_id)
        if isinstance(body, web.Response):
            return body
        fault = self.scripts.take(request, body)
        if fault is not None and fault.kind == "status":
            return self._error(fault.status, fault.type, fault.message, request_id, fault.headers)
        if fault is not None and fault.kind == "echo_key":
            return self._error(
                400,
                "invalid_request_error",
                f"proxy rejected the request sent with key {self.api_key}",
                request_id,
            )
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        model_id = ALIASES.get(body.get("model"), body.get("model"))
        thinking_error = anthropic_thinking.problem(body, str(model_id))
        if thinking_error is not None:
            return self._error(400, "invalid_request_error", thinking_error, request_id)
        thinking = anthropic_thinking.answer_blocks(body)
        if fault is not None and fault.kind == "tool_calls":
            return await self._scripted_calls(request, request_id, body, fault.calls, thinking)
        betas = {b.strip() for b in request.headers.get("anthropic-beta", "").split(",") if b.strip()}
        try:
            validate(body, betas)
            problem = anthropic_caching.breakpoint_problem(body)
            if problem is not None:
                raise Invalid(problem)
        except Invalid as exc:
            return self._error(400, "invalid_request_error", str(exc), request_id)
        model = ALIASES.get(body["model"], body["model"])
        if model not in MODELS:
            return self._error(404, "not_found_error", f"model: {body['model']}", request_id)
        limit = OUTPUT_LIMITS.get(model, MAX_OUTPUT_TOKENS)
        if body["max_tokens"] > limit:
            return self._error(
                400,
                "invalid_request_error",
                f"max_tokens: {body['max_tokens']} > {limit}, which is "
                f"the maximum allowed number of output tokens for {model}",
                request_id,
            )
        chat = self._chat(body)
        input_tokens = await asyncio.to_thread(self.model.count_prompt_tokens, chat)
        if input_tokens >= self.model.n_ctx:
            return self._error(
                400,
                "invalid_request_error",
                f"prompt is too long: {input_tokens} tokens > {self.model.n_ctx - 1} maximum",
                request_id,
            )
        prompt = await asyncio.to_thread(self.cache.usage, body, input_tokens)
        tool = self._forced_tool(body)
        json_output = (body.get("output_format") or {}).get("schema")
        # the thinking is written, not generated: the answer keeps max_tokens less the budget
        budget = (body.get("thinking") or {}).get("budget_tokens", 0) if thinking else 0
        thought = sum(len(b.get("thinking") or b.get("data") or "") // 4 for b in thinking)
        generation = self.model.generation(
            chat,
            max_tokens=body["max_tokens"] - budget,
            temperature=body.get("temperature", 1.0),
            top_p=body.get("top_p"),
            top_k=body.get("top_k"),
            stop=None if tool or json_output else body.get("stop_sequences"),
            schema=tool["input_schema"] if tool else json_output,
        )
        message_id = "msg_" + uuid.uuid4().hex[:24]
        if body.get("stream"):
            return await self._stream(
                request, request_id, message_id, model, prompt, generation, tool, fault, thinking
            )
        async with contextlib.aclosing(generation.run()) as pieces:
            async for _ in pieces:
                pass
        content, stop_reason = self._content(generation, tool)
        return web.json_response(
            {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": thinking + content,
                "stop_reason": stop_reason,
                "stop_sequence": generation.stop_sequence,
                "usage": {**prompt, "output_tokens": thought + generation.output_tokens},
            },
            headers={"request-id": request_id},
        )

    @staticmethod
    def _chat(body: dict[str, Any]) -> list[dict[str, str]]:
        chat = []
        system = body.get("system")
        if system:
            chat.append({"role": "system", "content": _text_of(system)})
        for message in body["messages"]:
            chat.append({"role": message["role"], "content": _text_of(message["content"])})
        return chat

    @staticmethod
    def _forced_tool(body: dict[str, Any]) -> dict[str, Any] | None:
        choice = body.get("tool_choice") or {}
        tools = body.get("tools") or []
        if choice.get("type") == "tool":
            return next(t for t in tools if t["name"] == choice["name"])
        if choice.get("type") == "any" and tools:
            return dict(tools[0])
        return None

    @staticmethod
    def _stop_reason(generation: Generation, tool: dict[str, Any] | None) -> str:
        if generation.finish_reason == "length":
            return "max_tokens"
        if tool is not None:
            return "tool_use"
        return "stop_sequence" if generation.finish_reason == "stop_sequence" else "end_turn"

    def _content(
        self, generation: Generation, tool: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], str]:
        stop_reason = self._stop_reason(generation, tool)
        if tool is None:
            return ([{"type": "text", "text": generation.text}] if generation.text else []), stop_reason
        try:
            arguments = json.loads(generation.text)
        except ValueError:
            arguments = {}
        return [
            {
                "type": "tool_use",
                "id": "toolu_" + uuid.uuid4().hex[:24],
                "name": tool["name"],
                "input": arguments,
            }
        ], stop_reason

    async def _scripted_calls(
        self,
        request: web.Request,
        request_id: str,
        body: dict[str, Any],
        calls: list[dict[str, Any]],
        thinking: list[dict[str, Any]],
    ) -> web.StreamResponse:
        """Answer with ``calls`` as ``tool_use`` blocks (the input streamed in two pieces), after
        the ``thinking`` blocks."""
        blocks = [
            {
                "type": "tool_use",
                "id": "toolu_" + uuid.uuid4().hex[:24],
                "name": c["name"],
                "input": c.get("arguments", {}),
            }
            for c in calls
        ]
        model = ALIASES.get(body.get("model", ""), body.get("model", ""))
        usage = {"input_tokens": 10, "output_tokens": 5 * len(blocks)}
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "msg_" + uuid.uuid4().hex[:24],
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": thinking + blocks,
                    "stop_reason": "tool_use",
                    "stop_sequence": None,
                    "usage": usage,
                },
                headers={"request-id": request_id},
            )
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream; charset=utf-8", "request-id": request_id}
        )
        await response.prepare(request)
        message = {
            "id": "msg_x",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        }
        await response.write(_sse("message_start", {"type": "message_start", "message": message}))
        first = await anthropic_thinking.write_thinking(response, thinking, _sse)
        for index, block in enumerate(blocks, start=first):
            start = {**block, "input": {}}
            await response.write(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start},
                )
            )
            text = json.dumps(block["input"])
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": piece}
                await response.write(
                    _sse(
                        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
                    )
                )
            await response.write(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        await response.write(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
            )
        )
        await response.write(_sse("message_stop", {"type": "message_stop"}))
        await response.write_eof()
        return response

    async def _stream(
        self,
        request: web.Request,
        request_id: str,
        message_id: str,
        model: str,
        prompt: dict[str, Any],
        generation: Generation,
        tool: dict[str, Any] | None,
        fault: Fault | None,
        thinking: list[dict[str, Any]],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "request-id": request_id,
            }
        )
        await response.prepare(request)
        await response.write(
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {**prompt, "output_tokens": 1},
                    },
                },
            )
        )
        index = await anthropic_thinking.write_thinking(response, thinking, _sse)
        thought = sum(len(b.get("thinking") or b.get("data") or "") // 4 for b in thinking)
        if tool is None:
            block: dict[str, Any] = {"type": "text", "text": ""}
        else:
            block = {
                "type": "tool_use",
                "id": "toolu_" + uuid.uuid4().hex[:24],
                "name": tool["name"],
                "input": {},
            }
        await response.write(
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        await response.write(_sse("ping", {"type": "ping"}))
        sent = 0
        async with contextlib.aclosing(generation.run()) as pieces:
            async for piece in pieces:
                if fault is not None and fault.kind in ("stream_error", "cut") and sent >= fault.after:
                    if fault.kind == "stream_error":
                        await response.write(_sse("error", error_body(fault.type, fault.message, request_id)))
                    await response.write_eof()
                    return response
                delta = (
                    {"type": "text_delta", "text": piece}
                    if tool is None
                    else {"type": "input_json_delta", "partial_json": piece}
                )
                await response.write(
                    _sse(
                        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
                    )
                )
                sent += 1
        await response.write(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        await response.write(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": self._stop_reason(generation, tool),
                        "stop_sequence": generation.stop_sequence,
                    },
                    # cumulative, the prompt's figures repeated (as the API now sends them)
                    "usage": {**prompt, "output_tokens": thought + generation.output_tokens},
                },
            )
        )
        await response.write(_sse("message_stop", {"type": "message_stop"}))
        await response.write_eof()
        return response


@contextlib.contextmanager
def anthropic_server(model: LocalModel) -> Iterator[AnthropicServer]:
    """A running ``AnthropicServer`` for the duration of the block."""
    server = AnthropicServer(model).start()
    try:
        yield server
    finally:
        server.stop()
