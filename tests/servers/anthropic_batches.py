"""Anthropic's Message Batches API as a test server on 127.0.0.1.

Follows the published wire format: ``POST /v1/messages/batches`` (``requests`` of
``custom_id`` + ``params``; ``x-api-key`` and ``anthropic-version`` required),
``GET /v1/messages/batches/{id}`` (``processing_status`` in_progress, canceling, ended;
``request_counts``; ``results_url`` once ended), ``POST .../cancel`` and the results as JSONL
(in an order of their own, as the API warns: here the reverse of the input). Each poll answers
``per_poll`` requests; ``expire_after`` ends the batch after that many, the rest ``expired``; a
cancel ends it at the next poll, the rest ``canceled``. Every answer is computed from its
request: the text echoes the last user message (as a forced tool's input when the request
forces one, parsed as JSON); a message containing "FAIL" is ``errored`` with the error body
the live API would send.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.servers.common import ThreadedServer
from tests.servers.openai_batches import echo_of

KEY = "sk-ant-batch-test-key-123456"
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class MessageBatch:
    id: str
    requests: list[dict[str, Any]]
    beta: str | None
    status: str = "in_progress"
    results: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class AnthropicBatches:
    """The server's state: the batches and what the next ones should do."""

    def __init__(self) -> None:
        self.batches: dict[str, MessageBatch] = {}
        self.per_poll = 2
        self.expire_after: int | None = None
        app = web.Application()
        app.router.add_post("/v1/messages/batches", self.create)
        app.router.add_get("/v1/messages/batches/{id}", self.retrieve)
        app.router.add_post("/v1/messages/batches/{id}/cancel", self.cancel)
        app.router.add_get("/v1/messages/batches/{id}/results", self.results)
        self.server = ThreadedServer(app)

    @property
    def url(self) -> str:
        return self.server.url

    @staticmethod
    def _error(status: int, type_: str, message: str) -> web.Response:
        body = {"type": "error", "error": {"type": type_, "message": message}}
        return web.json_response(body, status=status, headers={"request-id": "req_batch"})

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-api-key") != KEY:
            return self._error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return self._error(400, "invalid_request_error", "anthropic-version header is required")
        return None

    async def create(self, request: web.Request) -> web.StreamResponse:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        entries = body.get("requests")
        if not isinstance(entries, list) or not entries:
            return self._error(400, "invalid_request_error", "requests: at least one request is required")
        seen: set[str] = set()
        for n, entry in enumerate(entries):
            custom, params = entry.get("custom_id"), entry.get("params")
            if not isinstance(custom, str) or not _CUSTOM_ID.match(custom) or custom in seen:
                return self._error(400, "invalid_request_error", f"requests.{n}.custom_id: must be unique")
            if not isinstance(params, dict) or not {"model", "max_tokens", "messages"} <= params.keys():
                return self._error(
                    400,
                    "invalid_request_error",
                    f"requests.{n}.params: model, max_tokens and messages are required",
                )
            if "stream" in params:
                return self._error(400, "invalid_request_error", f"requests.{n}.params.stream: not allowed")
            seen.add(custom)
        batch = MessageBatch(
            f"msgbatch_{len(self.batches) + 1:06d}", entries, request.headers.get("anthropic-beta")
        )
        self.batches[batch.id] = batch
        return web.json_response(self._object(batch))

    def _object(self, batch: MessageBatch) -> dict[str, Any]:
        counts = {name: batch.counts.get(name, 0) for name in ("succeeded", "errored", "canceled", "expired")}
        ended = batch.status == "ended"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": {"processing": len(batch.requests) - len(batch.results), **counts},
            "ended_at": "2026-12-07T00:00:00Z" if ended else None,
            "created_at": "2026-12-07T00:00:00Z",
            "expires_at": "2026-12-08T00:00:00Z",
            "archived_at": None,
            "cancel_initiated_at": "2026-12-07T00:00:00Z" if batch.status == "canceling" else None,
            "results_url": f"{self.url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    @staticmethod
    def _answer(entry: dict[str, Any]) -> dict[str, Any]:
        params = entry["params"]
        text = echo_of(params["messages"])
        if "FAIL" in text:
            error = {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": f"Refused: {text}"},
            }
            return {"type": "errored", "error": error}
        choice = params.get("tool_choice") or {}
        if choice.get("type") == "tool":
            content = [
                {"type": "tool_use", "id": "toolu_batch", "name": choice["name"], "input": json.loads(text)}
            ]
            stop = "tool_use"
        else:
            content, stop = [{"type": "text", "text": text}], "end_turn"
        words = len(text.split())
        message = {
            "id": "msg_batch",
            "type": "message",
            "role": "assistant",
            "model": params["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": words + 3, "output_tokens": words},
        }
        return {"type": "succeeded", "message": message}

    def _record(self, batch: MessageBatch, entry: dict[str, Any], result: dict[str, Any]) -> None:
        batch.results.append({"custom_id": entry["custom_id"], "result": result})
        batch.counts[result["type"]] = batch.counts.get(result["type"], 0) + 1

    def _advance(self, batch: MessageBatch) -> None:
        done = len(batch.results)
        if batch.status == "canceling":
            for entry in batch.requests[done:]:
                self._record(batch, entry, {"type": "canceled"})
            batch.status = "ended"
        elif batch.status == "in_progress":
            for entry in batch.requests[done : done + self.per_poll]:
                if self.expire_after is not None and len(batch.results) >= self.expire_after:
                    break
                self._record(batch, entry, self._answer(entry))
            if self.expire_after is not None and len(batch.results) >= self.expire_after:
                for entry in batch.requests[len(batch.results) :]:
                    self._record(batch, entry, {"type": "expired"})
            if len(batch.results) == len(batch.requests):
                batch.status = "ended"

    def _batch_of(self, request: web.Request) -> MessageBatch | web.StreamResponse:
        """The batch ``request`` names, or the error response (a bad key, an unknown id)."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return self._error(404, "not_found_error", "No such message batch.")
        return batch

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        batch = self._batch_of(request)
        if not isinstance(batch, MessageBatch):
            return batch
        self._advance(batch)
        return web.json_response(self._object(batch))

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        batch = self._batch_of(request)
        if not isinstance(batch, MessageBatch):
            return batch
        if batch.status == "in_progress":
            batch.status = "canceling"
        return web.json_response(self._object(batch))

    async def results(self, request: web.Request) -> web.StreamResponse:
        batch = self._batch_of(request)
        if not isinstance(batch, MessageBatch):
            return batch
        if batch.status != "ended":
            return self._error(404, "not_found_error", "No results for this batch yet.")
        body = b"".join(json.dumps(row).encode() + b"\n" for row in reversed(batch.results))
        return web.Response(body=body, content_type="application/binary")
