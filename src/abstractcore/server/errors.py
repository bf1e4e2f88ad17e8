"""Errors as each API writes them: one ``ApiError`` per failure, two wire shapes, the status for
every abstractcore error.

``from_exception`` answers with the status the error's class names (``http_status_of``, the table
in ``core/errors.py``: 400 for a bad request, 404 for an unknown model, the back end's own
429 / 5xx passed through, 502 for a back end that failed otherwise); ``openai_body`` and
``anthropic_body`` write it the way each API does. Messages come from abstractcore's errors, which
the transport has already scrubbed of the back end's key; nothing else of an exception (its
traceback, its fields) reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from abstractcore.core.errors import (
    AbstractCoreError,
    AuthenticationError,
    ContextLengthExceededError,
    PermissionDeniedError,
    http_status_of,
)
from abstractcore.wire.fields import FieldError

__all__ = ["ApiError", "anthropic_body", "from_exception", "openai_body"]

log = logging.getLogger("abstractcore.server")

#: kind -> (OpenAI error type, OpenAI code, Anthropic error type)
_KINDS: dict[str, tuple[str, str | None, str]] = {
    "invalid_request": ("invalid_request_error", None, "invalid_request_error"),
    "authentication": ("invalid_request_error", "invalid_api_key", "authentication_error"),
    "permission": ("invalid_request_error", "permission_denied", "permission_error"),
    "not_found": ("invalid_request_error", "model_not_found", "not_found_error"),
    "response_not_found": ("invalid_request_error", "previous_response_not_found", "not_found_error"),
    "too_large": ("invalid_request_error", "request_too_large", "request_too_large"),
    "context_length": ("invalid_request_error", "context_length_exceeded", "invalid_request_error"),
    "rate_limit": ("rate_limit_error", "rate_limit_exceeded", "rate_limit_error"),
    "server": ("server_error", None, "api_error"),
    "overloaded": ("server_error", "overloaded", "overloaded_error"),
    "timeout": ("server_error", "timeout", "timeout_error"),
}


class ApiError(Exception):
    """A failure to answer with: HTTP ``status``, a ``kind`` (see ``_KINDS``), a message and,
    for a bad request, the ``param`` (the field) at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request",
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind if kind in _KINDS else "server"
        self.param = param
        self.retry_after = retry_after

    @classmethod
    def bad(cls, param: str | None, message: str) -> ApiError:
        """A 400 naming the field at fault (``param``) at the start of the message."""
        return cls(400, f"{param}: {message}" if param else message, param=param)

    def headers(self) -> dict[str, str]:
        """Headers to send with the error (``retry-after`` on a 429/503 that said when)."""
        if self.retry_after is None:
            return {}
        return {"retry-after": str(max(0, round(self.retry_after)))}


def openai_body(error: ApiError) -> dict[str, Any]:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    kind, code, _ = _KINDS[error.kind]
    return {"error": {"message": error.message, "type": kind, "param": error.param, "code": code}}


def anthropic_body(error: ApiError, request_id: str) -> dict[str, Any]:
    """Anthropic's error body: ``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
    return {
        "type": "error",
        "error": {"type": _KINDS[error.kind][2], "message": error.message},
        "request_id": request_id,
    }


#: The kind of each status abstractcore's errors answer with (any other: "server").
_STATUS_KINDS = {
    400: "invalid_request",
    404: "not_found",
    429: "rate_limit",
    503: "overloaded",
    529: "overloaded",
    504: "timeout",
}


def from_exception(exc: BaseException) -> ApiError:
    """The ``ApiError`` for anything a handler raised (unexpected ones are logged, not shown).

    The status is the error class's (``http_status_of``: the table in ``core/errors.py``)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, FieldError):  # a request body field that is wrong or missing
        return ApiError.bad(exc.param, exc.detail)
    if not isinstance(exc, AbstractCoreError):
        log.error("unexpected error while answering", exc_info=exc)
        return ApiError(500, "The server failed to answer this request (see its log).", kind="server")
    status = http_status_of(exc)
    if isinstance(exc, ContextLengthExceededError):
        return ApiError(status, exc.message, kind="context_length")
    kind = _STATUS_KINDS.get(status, "server")
    message = exc.message
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        log.warning("back end refused the server's credentials: %s", message)
        message = f"The server's back end refused its credentials: {message}"
    elif exc.http_status == 500:
        log.warning("%s: %s", type(exc).__name__, message)
    # the back end's own Retry-After goes with its status, passed through
    passed = exc.http_status is None and status != 400
    retry_after = getattr(exc, "retry_after", None) if passed else None
    return ApiError(status, message, kind=kind, retry_after=retry_after)
