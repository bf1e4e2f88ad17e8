"""OpenAI's Batch API for Chat Completions, client side, as pure functions.

A job is a JSONL file, one line per request (``request_line``: ``custom_id``, ``method``,
``url``, and as ``body`` the very Chat Completions body a live call sends), uploaded as
``POST /v1/files`` with ``purpose=batch`` (``upload_form``: a multipart form), then
``POST /v1/batches`` (``create_body``: ``input_file_id``, ``endpoint``, ``completion_window``).
``GET /v1/batches/{id}`` reads back as a ``BatchStatus`` (``status_of``: validating, in_progress,
finalizing, then completed, expired, failed or cancelled after cancelling); each line of the
output file (``output_file_id``) and of the error file (``error_file_id``) as a ``ResultLine``
(``result_line``). Limits (``LIMITS``): 50,000 requests and 200 MB per input file.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from abstractcore.wire.batches import BatchLimits, BatchStatus, ResultLine, custom_id, index_of

__all__ = ["ENDPOINT", "LIMITS", "create_body", "request_line", "result_line", "status_of", "upload_form"]

#: The endpoint every line of the job calls.
ENDPOINT = "/v1/chat/completions"
#: OpenAI's published limits of one batch's input file.
LIMITS = BatchLimits(requests=50_000, bytes=200 * 1024 * 1024)
#: Statuses after which a batch makes no more progress.
ENDED = frozenset({"completed", "expired", "failed", "cancelled"})

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def request_line(index: int, body: dict[str, Any]) -> bytes:
    """The JSONL line of the job's item ``index`` (newline included)."""
    line = {"custom_id": custom_id(index), "method": "POST", "url": ENDPOINT, "body": body}
    return _ENCODE(line).encode() + b"\n"


def upload_form(jsonl: bytes, filename: str = "batch.jsonl") -> tuple[bytes, str]:
    """The ``POST /v1/files`` multipart body (``purpose=batch`` and the file) and its content type."""
    boundary = "abstractcore-" + secrets.token_hex(12)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    ).encode()
    return head + jsonl + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def create_body(input_file_id: str) -> dict[str, Any]:
    """The ``POST /v1/batches`` body for an uploaded input file."""
    return {"input_file_id": input_file_id, "endpoint": ENDPOINT, "completion_window": "24h"}


def _count(counts: dict[str, Any], name: str) -> int:
    value = counts.get(name)
    return value if isinstance(value, int) else 0


def status_of(data: Any) -> BatchStatus:
    """A batch object read back (``ValueError`` when it is not one)."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or "status" not in data:
        raise ValueError(f"not a batch object: {str(data)[:200]!r}")
    found = data.get("request_counts")
    counts: dict[str, Any] = found if isinstance(found, dict) else {}
    errors = data.get("errors")
    failure = None
    if isinstance(errors, dict) and errors.get("data"):
        failure = "; ".join(
            f"{e.get('code')}: {e.get('message')}" + (f" (line {e['line']})" if e.get("line") else "")
            for e in errors["data"]
            if isinstance(e, dict)
        )
    status = str(data["status"])
    return BatchStatus(
        id=data["id"],
        status=status,
        ended=status in ENDED,
        total=_count(counts, "total"),
        succeeded=_count(counts, "completed"),
        failed=_count(counts, "failed"),
        results=data.get("output_file_id") or None,
        errors_file=data.get("error_file_id") or None,
        failure=failure,
    )


def result_line(data: Any) -> ResultLine | None:
    """One line of an output or error file (None: not a line of this job).

    A line whose ``response.status_code`` is 200 holds the Chat Completion in ``response.body``;
    another status holds the error body the live API would have answered; a line with no
    response has an ``error`` (``batch_expired``, ``batch_cancelled``, ...).
    """
    index = index_of(data.get("custom_id")) if isinstance(data, dict) else None
    if index is None:
        return None
    response = data.get("response")
    if isinstance(response, dict):
        status = response.get("status_code")
        body = response.get("body")
        if status == 200 and isinstance(body, dict):
            return ResultLine(index, "succeeded", reply=body)
        return ResultLine(
            index, "errored", status_code=status if isinstance(status, int) else None, error=body
        )
    error = data.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    message = str(error.get("message") or code) if isinstance(error, dict) else "no response"
    if code == "batch_expired":
        return ResultLine(index, "expired", message=message)
    if code == "batch_cancelled":
        return ResultLine(index, "canceled", message=message)
    return ResultLine(
        index, "errored", error={"error": error} if isinstance(error, dict) else error, message=message
    )
