"""Anthropic's Message Batches API, client side, as pure functions.

``POST /v1/messages/batches`` takes ``{"requests": [{"custom_id", "params"}]}`` (``create_body``;
each ``params`` the very Messages body a live call sends, without ``stream``);
``GET /v1/messages/batches/{id}`` reads back as a ``BatchStatus`` (``status_of``:
``processing_status`` in_progress, canceling, ended; ``request_counts`` processing, succeeded,
errored, canceled, expired; ``results_url`` once ended). The results are JSONL, one
``{"custom_id", "result": {"type": ...}}`` per request (``result_line``: succeeded with its
``message``, errored with the error body the live API would answer, canceled, expired).
Limits (``LIMITS``): 100,000 requests or 256 MB per batch.
"""

from __future__ import annotations

import json
from typing import Any

from abstractcore.wire.batches import BatchLimits, BatchStatus, ResultLine, custom_id, index_of

__all__ = ["LIMITS", "create_body", "request_entry", "result_line", "status_of"]

#: Anthropic's published limits of one message batch.
LIMITS = BatchLimits(requests=100_000, bytes=256 * 1024 * 1024)

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def request_entry(index: int, params: dict[str, Any]) -> bytes:
    """The encoded entry of the job's item ``index`` (``stream`` is not allowed in a batch)."""
    body = {k: v for k, v in params.items() if k != "stream"}
    return _ENCODE({"custom_id": custom_id(index), "params": body}).encode()


def create_body(entries: list[bytes]) -> bytes:
    """The ``POST /v1/messages/batches`` JSON body of encoded ``request_entry``s."""
    return b'{"requests":[' + b",".join(entries) + b"]}"


def _count(counts: dict[str, Any], name: str) -> int:
    value = counts.get(name)
    return value if isinstance(value, int) else 0


def status_of(data: Any) -> BatchStatus:
    """A message batch read back (``ValueError`` when it is not one)."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or "processing_status" not in data:
        raise ValueError(f"not a message batch: {str(data)[:200]!r}")
    found = data.get("request_counts")
    counts: dict[str, Any] = found if isinstance(found, dict) else {}
    failed = sum(_count(counts, name) for name in ("errored", "canceled", "expired"))
    succeeded = _count(counts, "succeeded")
    status = str(data["processing_status"])
    return BatchStatus(
        id=data["id"],
        status=status,
        ended=status == "ended",
        total=succeeded + failed + _count(counts, "processing"),
        succeeded=succeeded,
        failed=failed,
        results=data.get("results_url") or None,
    )


def result_line(data: Any) -> ResultLine | None:
    """One line of a batch's results (None: not a line of this job)."""
    index = index_of(data.get("custom_id")) if isinstance(data, dict) else None
    if index is None:
        return None
    result = data.get("result")
    kind = result.get("type") if isinstance(result, dict) else None
    if kind == "succeeded" and isinstance(result, dict) and isinstance(result.get("message"), dict):
        return ResultLine(index, "succeeded", reply=result["message"])
    if kind in ("expired", "canceled"):
        return ResultLine(index, kind, message=f"the request was {kind} before it ran")
    error = result.get("error") if isinstance(result, dict) else None
    return ResultLine(index, "errored", error=error if error is not None else data, message="errored")
