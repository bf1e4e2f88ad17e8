"""A test server speaking Ollama's native API, answering with the real SmolLM2 model.

No Ollama binary can be installed here, so this server follows the published
API (docs/api.md of ollama/ollama): ``POST /api/chat`` streaming NDJSON lines
(``{"model", "created_at", "message", "done": false}`` ... then a ``done``
line with ``done_reason``, ``prompt_eval_count``, ``eval_count`` and
durations in nanoseconds), ``"stream": false`` replies, ``options``,
``format`` (``"json"`` or a JSON schema, enforced with a grammar), ``tools``
(answered with ``tool_calls`` whose arguments the model generated under a
grammar; after a ``tool`` turn the model answers in text, as tool-capable models
do), ``keep_alive`` and the empty-``messages`` load / unload requests
(an unload really closes the model), ``GET /api/tags`` and Ollama's error
bodies (``{"error": "model \\"x\\" not found, try pulling it first"}`` with
404, ``{"error": "..."}`` lines mid-stream), and ``think``: a model with the
"thinking" capability (``qwen3:0.6b`` here) thinks before it answers, its
thinking in ``message.thinking`` (whole, or streamed in lines of their own
before the answer's) when ``think`` is true or a level, inside ``<think>…</think>``
at the start of the content when ``think`` is not given (the text passed through),
not at all for ``think: false``; ``think`` to a model without the capability is
HTTP 400 ``"... does not support thinking"``. The thinking is written by the
server (it holds braces, as JSON-minded thinking does); the answer is the model's.

Faults for tests come from ``OllamaServer.script(...)`` (see ``Fault``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from tests.servers.common import (
    Fault,
    Generation,
    LocalModel,
    ScriptedServer,
)

__all__ = ["MODELS", "OllamaServer", "ollama_server"]

#: The models this server "has pulled"; all are served by SmolLM2.
#: What ``/api/show`` says each model can do (SmolLM2's template has no tools).
CAPABILITIES = {
    "qwen2.5-coder:7b": ["completion", "tools", "insert"],
    "qwen3:0.6b": ["completion", "tools", "thinking"],
    "smollm2:135m": ["completion", "embedding"],
    "smollm2:latest": ["completion", "embedding"],
}
MODELS = {
    "smollm2:135m": "sha256:" + "a1" * 32,
    "smollm2:latest": "sha256:" + "a1" * 32,
    "qwen2.5-coder:7b": "sha256:" + "b2" * 32,
    "qwen3:0.6b": "sha256:" + "c3" * 32,
}


def thinking_of(messages: list[Any]) -> str:
    """The thinking a thinking model of this server writes for ``messages``."""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    asked = str(users[-1].get("content") or "")[:24] if users else ""
    return f'The user asks {{"about": {json.dumps(asked)}}}; I answer.'


def _thinks(name: str, think: Any) -> str | None:
    """How the model thinks for ``think``: "field", "tags" or None (not at all); BadRequest when
    the model cannot."""
    thinking = "thinking" in CAPABILITIES.get(_full_name(name), [])
    if think is not None and think is not False and not thinking:
        raise BadRequest(f'"{name}" does not support thinking')
    if not thinking or think is False:
        return None
    return "tags" if think is None else "field"


_ROLES = ("system", "user", "assistant", "tool")


class BadRequest(Exception):
    """A request Ollama answers with 400 ``{"error": ...}``."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _full_name(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _unloads(keep_alive: Any) -> bool:
    return keep_alive in (0, 0.0, "0", "0s", "0m")


class OllamaServer(ScriptedServer):
    """The server's state: its model, scripts and the requests it received."""

    def __init__(self, model: LocalModel) -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.unload_requests = 0
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self.root)
        app.router.add_post("/api/chat", self.chat)
        app.router.add_get("/api/tags", self.tags)
        app.router.add_post("/api/show", self.show)
        app.router.add_post("/api/embed", self.embed)
        app.router.add_get("/api/version", self.version)
        self._serve(app)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (what ``OLLAMA_HOST`` would hold)."""
        return self._server.url

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the scheme-less form Ollama accepts."""
        return f"127.0.0.1:{self._server.port}"

    # -- small endpoints -----------------------------------------------------------------

    async def root(self, request: web.Request) -> web.StreamResponse:
        """``GET /``: Ollama's liveness text."""
        return web.Response(text="Ollama is running")

    async def version(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/version``."""
        return web.json_response({"version": "0.12.6"})

    async def embed(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/embed``: ``{"model", "input": str | [str]}`` -> ``{"embeddings": [[...]], ...}``."""
        body = json.loads(await request.read() or b"{}")
        self.requests.append({"headers": dict(request.headers), "body": body, "path": "/api/embed"})
        name = str(body.get("model") or "")
        if _full_name(name) not in MODELS:
            return web.json_response({"error": f'model "{name}" not found, try pulling it first'}, status=404)
        if "embedding" not in CAPABILITIES.get(_full_name(name), ["embedding"]):
            return web.json_response({"error": f'"{name}" does not support embeddings'}, status=400)
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return web.json_response({"error": "invalid input type"}, status=400)
        vectors, tokens = await asyncio.to_thread(self.model.embed, texts)
        return web.json_response(
            {
                "model": name,
                "embeddings": vectors,
                "total_duration": 1,
                "load_duration": 0,
                "prompt_eval_count": tokens,
            }
        )

    async def show(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/show``: a model's details, ``model_info`` and ``capabilities``."""
        body = json.loads(await request.read() or b"{}")
        self.requests.append({"headers": dict(request.headers), "body": body, "path": "/api/show"})
        name = str(body.get("model") or body.get("name") or "")
        if _full_name(name) not in MODELS:
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        return web.json_response(
            {
                "modelfile": f"FROM {name}",
                "parameters": 'stop "<|im_end|>"',
                "template": "{{ .Prompt }}",
                "details": {
                    "format": "gguf",
                    "family": "llama",
                    "parameter_size": "135M",
                    "quantization_level": "Q4_1",
                },
                "model_info": {"general.architecture": "llama", "llama.context_length": self.model.n_ctx},
                "capabilities": CAPABILITIES.get(_full_name(name), ["completion"]),
            }
        )

    async def tags(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/tags``: the "pulled" models."""
        size = self.model.path.stat().st_size
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": "2025-06-01T10:00:00.000000000Z",
                "size": size,
                "digest": digest.split(":", 1)[1],
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "llama",
                    "families": ["llama"],
                    "parameter_size": "134.52M",
                    "quantization_level": "Q4_1",
                },
            }
            for name, digest in MODELS.items()
        ]
        return web.json_response({"models": models})

    # -- POST /api/chat ----------------------------------------------------------------------

    @staticmethod
    async def _scripted_calls(
        request: web.Request, body: dict[str, Any], calls: list[dict[str, Any]]
    ) -> web.StreamResponse:
        """Answer with ``calls`` as Ollama's ``message.tool_calls`` (arguments as objects)."""
        message = {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": f"call_{i}",
                    "function": {"index": i, "name": c["name"], "arguments": c.get("arguments", {})},
                }
                for i, c in enumerate(calls)
            ],
        }
        final = {
            "model": body.get("model"),
            "created_at": "2026-12-02T00:00:00Z",
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 10,
            "eval_count": 5,
        }
        if body.get("stream") is False:
            return web.json_response({**final, "message": message})
        response = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        await response.prepare(request)
        first = {
            "model": body.get("model"),
            "created_at": final["created_at"],
            "message": message,
            "done": False,
        }
        await response.write((json.dumps(first) + "\n").encode())
        await response.write(
            (json.dumps({**final, "message": {"role": "assistant", "content": ""}}) + "\n").encode()
        )
        await response.write_eof()
        return response

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/chat``: load / unload, or a generation (NDJSON stream by default)."""
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            return web.json_response({"error": f"invalid character in request body: {exc}"}, status=400)
        self.requests.append({"headers": dict(request.headers), "body": body})
        fault = self.scripts.take(request, body)
        if fault is not None and fault.kind == "status":
            return web.json_response({"error": fault.message}, status=fault.status, headers=fault.headers)
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        if fault is not None and fault.kind == "tool_calls":
            return await self._scripted_calls(request, body, fault.calls)
        if not isinstance(body, dict) or not body.get("model"):
            return web.json_response({"error": "model is required"}, status=400)
        name = body["model"]
        if _full_name(name) not in MODELS:
            return web.json_response({"error": f'model "{name}" not found, try pulling it first'}, status=404)
        messages = body.get("messages") or []
        keep_alive = body.get("keep_alive")
        if not messages:
            return await self._load_or_unload(name, keep_alive)
        try:
            chat, options, schema, tools = self._parse(body)
            thinks = _thinks(name, body.get("think"))
        except BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        # A tool-capable model calls a tool for a user's turn and answers in text once it has the
        # results (the usual behaviour, made deterministic): after a tool turn, no grammar.
        if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
            tools = []
        load_start = time.perf_counter_ns()
        was_loaded = self.model.loaded
        prompt_tokens = await asyncio.to_thread(self.model.count_prompt_tokens, chat)
        load_ns = 0 if was_loaded else time.perf_counter_ns() - load_start
        num_predict = options.get("num_predict")
        generation = self.model.generation(
            chat,
            max_tokens=num_predict if isinstance(num_predict, int) and num_predict > 0 else None,
            temperature=options.get("temperature", 0.8),
            top_p=options.get("top_p", 0.9),
            top_k=options.get("top_k", 40),
            seed=options.get("seed"),
            stop=None if tools else options.get("stop"),
            schema=self._tools_schema(tools) if tools else schema,
        )
        stats = {
            "thinks": thinks,
            "thinking": thinking_of(messages),
            "name": name,
            "prompt_tokens": prompt_tokens,
            "load_ns": load_ns,
            "start": time.perf_counter_ns(),
        }
        try:
            if body.get("stream", True):
                return await self._stream(request, generation, stats, bool(tools), fault)
            async with contextlib.aclosing(generation.run()) as pieces:
                async for _ in pieces:
                    pass
            message = self._message(generation, bool(tools))
            if thinks == "field":
                message["thinking"] = stats["thinking"]
            elif thinks == "tags":
                message["content"] = f"<think>{stats['thinking']}</think>\n\n{message['content']}"
            return web.json_response(
                {
                    "model": name,
                    "created_at": _now(),
                    "message": message,
                    **self._final(generation, stats, bool(tools)),
                }
            )
        finally:
            if _unloads(keep_alive):
                await asyncio.to_thread(self.model.unload)

    async def _load_or_unload(self, name: str, keep_alive: Any) -> web.StreamResponse:
        if _unloads(keep_alive):
            self.unload_requests += 1
            await asyncio.to_thread(self.model.unload)
            reason = "unload"
        else:
            await asyncio.to_thread(self.model.load)
            reason = "load"
        return web.json_response(
            {
                "model": name,
                "created_at": _now(),
                "message": {"role": "assistant", "content": ""},
                "done_reason": reason,
                "done": True,
            }
        )

    @staticmethod
    def _parse(
        body: dict[str, Any],
    ) -> tuple[list[dict[str, str]], dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
        chat = []
        for message in body["messages"]:
            role = message.get("role")
            if role not in _ROLES:
                raise BadRequest(f"invalid role: {role!r}")
            content = message.get("content") or ""
            if not isinstance(content, str):
                raise BadRequest(
                    "json: cannot unmarshal array into Go struct field "
                    "Message.messages.content of type string"
                )
            for image in message.get("images") or []:
                try:
                    base64.b64decode(image, validate=True)
                except (binascii.Error, ValueError, TypeError):
                    raise BadRequest("illegal base64 data at input byte 0") from None
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                if not isinstance(function.get("arguments"), dict):
                    raise BadRequest(
                        "json: cannot unmarshal string into Go struct field "
                        "ToolCallFunction.messages.tool_calls.function.arguments"
                    )
                content += f"\n[called {function.get('name')} with {json.dumps(function['arguments'])}]"
            chat.append({"role": role, "content": content})
        options = body.get("options") or {}
        fmt = body.get("format")
        schema: dict[str, Any] | None = None
        if fmt == "json":
            schema = {"type": "object"}
        elif isinstance(fmt, dict):
            schema = fmt
        elif fmt not in (None, ""):
            raise BadRequest(f'invalid format: {json.dumps(fmt)}; expected "json" or a valid JSON Schema')
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
        for tool in tools:
            if tool.get("type") != "function" or not (tool.get("function") or {}).get("name"):
                raise BadRequest("invalid tool definition")
        return chat, options, schema, tools

    @staticmethod
    def _tools_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
        """A call of one of ``tools``: {"name": ..., "arguments": {...}}."""
        return {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "name": {"const": t["function"]["name"]},
                        "arguments": t["function"].get("parameters") or {"type": "object"},
                    },
                    "required": ["name", "arguments"],
                }
                for t in tools
            ]
        }

    @staticmethod
    def _calls(text: str) -> list[dict[str, Any]]:
        try:
            call = json.loads(text)
        except ValueError:
            return []
        return [
            {
                "id": "call_" + uuid.uuid4().hex[:8],
                "function": {"index": 0, "name": call["name"], "arguments": call["arguments"]},
            }
        ]

    def _message(self, generation: Generation, with_tools: bool) -> dict[str, Any]:
        if with_tools:
            calls = self._calls(generation.text)
            if calls:
                return {"role": "assistant", "content": "", "tool_calls": calls}
        return {"role": "assistant", "content": generation.text}

    @staticmethod
    def _final(generation: Generation, stats: dict[str, Any], with_tools: bool) -> dict[str, Any]:
        eval_ns = time.perf_counter_ns() - stats["start"]
        reason = "length" if generation.finish_reason == "length" else "stop"
        return {
            "done_reason": reason,
            "done": True,
            "total_duration": eval_ns + stats["load_ns"],
            "load_duration": stats["load_ns"],
            "prompt_eval_count": stats["prompt_tokens"],
            "prompt_eval_duration": max(1, eval_ns // 10),
            "eval_count": generation.output_tokens,
            "eval_duration": eval_ns,
        }

    async def _stream(
        self,
        request: web.Request,
        generation: Generation,
        stats: dict[str, Any],
        with_tools: bool,
        fault: Fault | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        await response.prepare(request)
        name = stats["name"]

        async def line(data: dict[str, Any]) -> None:
            await response.write(json.dumps(data).encode() + b"\n")

        thinking = stats["thinking"]
        if stats["thinks"] == "field":
            for start in range(0, len(thinking), 4):
                message = {"role": "assistant", "content": "", "thinking": thinking[start : start + 4]}
                await line({"model": name, "created_at": _now(), "message": message, "done": False})
        elif stats["thinks"] == "tags":  # the markers cut across lines, as tokens cut them
            text = f"<think>{thinking}</think>\n\n"
            for start in range(0, len(text), 3):
                message = {"role": "assistant", "content": text[start : start + 3]}
                await line({"model": name, "created_at": _now(), "message": message, "done": False})
        sent = 0
        async with contextlib.aclosing(generation.run()) as pieces:
            async for piece in pieces:
                if fault is not None and fault.kind in ("stream_error", "cut") and sent >= fault.after:
                    if fault.kind == "stream_error":
                        await line({"error": fault.message})
                    await response.write_eof()
                    return response
                if not with_tools:  # a tool call is sent whole once parsed, as Ollama does
                    await line(
                        {
                            "model": name,
                            "created_at": _now(),
                            "message": {"role": "assistant", "content": piece},
                            "done": False,
                        }
                    )
                sent += 1
        if with_tools:
            message = self._message(generation, True)
            await line({"model": name, "created_at": _now(), "message": message, "done": False})
        await line(
            {
                "model": name,
                "created_at": _now(),
                "message": {"role": "assistant", "content": ""},
                **self._final(generation, stats, with_tools),
            }
        )
        await response.write_eof()
        return response


@contextlib.contextmanager
def ollama_server(model: LocalModel) -> Iterator[OllamaServer]:
    """A running ``OllamaServer`` for the duration of the block."""
    server = OllamaServer(model).start()
    try:
        yield server
    finally:
        server.stop()
