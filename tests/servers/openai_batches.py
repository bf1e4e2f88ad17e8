"""OpenAI's Files + Batch API for Chat Completions, as a test server on 127.0.0.1.

Follows the published wire format: ``POST /v1/files`` (multipart, ``purpose=batch``),
``POST /v1/batches`` (``input_file_id``, ``endpoint``, ``completion_window``),
``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``, ``GET /v1/files/{id}/content``.
Each poll moves a batch one step: validating -> in_progress (``per_poll`` requests answered a
poll, ``request_counts`` growing) -> finalizing -> completed; ``expire_after`` ends it as
expired after that many answers (the rest written to the error file as ``batch_expired``); a
cancel goes cancelling -> cancelled (the rest ``batch_cancelled``); an input file that breaks the
format fails validation (``errors.data`` naming the line). Every answer is computed from its
request: the content echoes the last user message; a message containing "FAIL" gets the
400 error body the live API would send, written to the error file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.servers.common import ThreadedServer

KEY = "sk-batch-test-key-1234567890"
ENDPOINT = "/v1/chat/completions"
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def echo_of(messages: Any) -> str:
    """The text of the last user message (the answer the servers give)."""
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


@dataclass
class Batch:
    id: str
    input_file_id: str
    lines: list[dict[str, Any]]
    status: str = "validating"
    done: int = 0
    errors: list[dict[str, Any]] | None = None
    output: list[bytes] = field(default_factory=list)
    failed: list[bytes] = field(default_factory=list)
    completed: int = 0
    failures: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    history: list[str] = field(default_factory=list)


class OpenAIBatches:
    """The server's state: files, batches, and what the next batch should do."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, Batch] = {}
        self.per_poll = 2
        self.expire_after: int | None = None
        self.polls = 0
        app = web.Application()
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{id}/content", self.content)
        app.router.add_post("/v1/batches", self.create)
        app.router.add_get("/v1/batches/{id}", self.retrieve)
        app.router.add_post("/v1/batches/{id}/cancel", self.cancel)
        self.server = ThreadedServer(app)

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v1"

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {KEY}"

    @staticmethod
    def _error(status: int, message: str, type_: str = "invalid_request_error") -> web.Response:
        body = {"error": {"message": message, "type": type_, "param": None, "code": None}}
        return web.json_response(body, status=status)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._error(401, "Incorrect API key provided.", "invalid_request_error")
        form = await request.post()
        upload = form.get("file")
        if form.get("purpose") != "batch" or not isinstance(upload, web.FileField):
            return self._error(400, "A file and purpose='batch' are required.")
        data = upload.file.read()
        file_id = f"file-{len(self.files) + 1:06d}"
        self.files[file_id] = data
        return web.json_response(
            {
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": 1_700_000_000,
                "filename": upload.filename,
                "purpose": "batch",
            }
        )

    async def content(self, request: web.Request) -> web.StreamResponse:
        data = self.files.get(request.match_info["id"])
        if data is None:
            return self._error(404, "No such File object.")
        return web.Response(body=data, content_type="application/octet-stream")

    async def create(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._error(401, "Incorrect API key provided.")
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            return self._error(400, f"Invalid input_file_id {file_id!r}.")
        if body.get("endpoint") != ENDPOINT or body.get("completion_window") != "24h":
            return self._error(400, "endpoint must be /v1/chat/completions, completion_window '24h'.")
        lines = [json.loads(line) for line in self.files[file_id].splitlines() if line.strip()]
        batch = Batch(f"batch_{len(self.batches) + 1:06d}", file_id, lines)
        batch.errors = self._validate(lines)
        self.batches[batch.id] = batch
        return web.json_response(self._object(batch))

    @staticmethod
    def _validate(lines: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        seen: set[str] = set()
        for number, line in enumerate(lines, 1):
            custom = line.get("custom_id")
            body = line.get("body")
            problem = None
            if not isinstance(custom, str) or not _CUSTOM_ID.match(custom) or custom in seen:
                problem = "custom_id must be unique"
            elif line.get("method") != "POST" or line.get("url") != ENDPOINT:
                problem = "method must be POST and url the batch's endpoint"
            elif not isinstance(body, dict) or "model" not in body or "messages" not in body:
                problem = "body must hold model and messages"
            elif body.get("stream"):
                problem = "stream is not supported in a batch"
            if problem:
                return [{"code": "invalid_request", "message": problem, "param": None, "line": number}]
            seen.add(custom)
        return None

    def _object(self, batch: Batch) -> dict[str, Any]:
        # a batch refused at validation never counted its requests
        total = 0 if batch.status == "validating" or batch.errors else len(batch.lines)
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": 1_700_000_000,
            "request_counts": {"total": total, "completed": batch.completed, "failed": batch.failures},
            "metadata": None,
        }

    def _answer(self, line: dict[str, Any]) -> tuple[bool, bytes]:
        body = line["body"]
        text = echo_of(body.get("messages"))
        if "FAIL" in text:
            error = {
                "message": f"Refused: {text}",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            response = {"status_code": 400, "request_id": "req_x", "body": {"error": error}}
            row = {"id": "batch_req_x", "custom_id": line["custom_id"], "response": response, "error": None}
            return False, json.dumps(row).encode()
        words = len(text.split())
        completion = {
            "id": "chatcmpl-batch",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": words + 3, "completion_tokens": words, "total_tokens": 2 * words + 3},
        }
        response = {"status_code": 200, "request_id": "req_x", "body": completion}
        row = {"id": "batch_req_x", "custom_id": line["custom_id"], "response": response, "error": None}
        return True, json.dumps(row).encode()

    def _advance(self, batch: Batch) -> None:
        batch.history.append(batch.status)
        if batch.status == "validating":
            batch.status = "failed" if batch.errors else "in_progress"
        elif batch.status == "in_progress":
            for line in batch.lines[batch.done : batch.done + self.per_poll]:
                ok, row = self._answer(line)
                if ok:
                    batch.output.append(row)
                    batch.completed += 1
                else:
                    batch.failed.append(row)
                    batch.failures += 1
                batch.done += 1
                if self.expire_after is not None and batch.done >= self.expire_after:
                    self._end(
                        batch, "expired", "batch_expired", "could not be executed before the window expired"
                    )
                    return
            if batch.done == len(batch.lines):
                batch.status = "finalizing"
        elif batch.status == "finalizing":
            self._end(batch, "completed", "", "")
        elif batch.status == "cancelling":
            self._end(batch, "cancelled", "batch_cancelled", "was cancelled before it ran")

    def _end(self, batch: Batch, status: str, code: str, message: str) -> None:
        for line in batch.lines[batch.done :]:
            error = {"code": code, "message": f"This request {message}."}
            row = {"id": "batch_req_x", "custom_id": line["custom_id"], "response": None, "error": error}
            batch.failed.append(json.dumps(row).encode())
            batch.failures += 1
        batch.done = len(batch.lines)
        batch.status = status
        for rows, attr in ((batch.output, "output_file_id"), (batch.failed, "error_file_id")):
            if rows:
                file_id = f"file-{len(self.files) + 1:06d}"
                self.files[file_id] = b"\n".join(rows) + b"\n"
                setattr(batch, attr, file_id)

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return self._error(404, "No such batch.")
        self.polls += 1
        self._advance(batch)
        return web.json_response(self._object(batch))

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return self._error(404, "No such batch.")
        if batch.status in ("validating", "in_progress", "finalizing"):
            batch.status = "cancelling"
        return web.json_response(self._object(batch))
