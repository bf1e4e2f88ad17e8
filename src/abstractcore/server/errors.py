"""Errors as each API writes them: one ``ApiError`` per failure, two wire shapes, the status for
every abstractcore error.

``from_exception`` decides the status (400 for a bad request, 404 for an unknown model, the back
end's own 429 / 5xx passed through, 502 for a back end that failed otherwise); ``openai_body`` and
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
    ConfigurationError,
    ContextLengthExceededError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderStatusError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
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


def _passed_through(exc: ProviderStatusError) -> ApiError:
    status = exc.status_code or 502
    if status == 429 or isinstance(exc, RateLimitError):
        return ApiError(429, exc.message, kind="rate_limit", retry_after=exc.retry_after)
    if status < 500:
        status = 502  # a 4xx the back end gave the server, not the client's fault: a bad gateway
    kind = "overloaded" if status in (503, 529) else "timeout" if status == 504 else "server"
    return ApiError(status, exc.message, kind=kind, retry_after=exc.retry_after)


def from_exception(exc: BaseException) -> ApiError:
    """The ``ApiError`` for anything a handler raised (unexpected ones are logged, not shown)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, FieldError):  # a request body field that is wrong or missing
        return ApiError.bad(exc.param, exc.detail)
    if isinstance(exc, ConfigurationError):  # an argument the back end refused before sending
        return ApiError(400, str(exc))
    if isinstance(exc, ContextLengthExceededError):
        return ApiError(400, exc.message, kind="context_length")
    if isinstance(exc, ModelNotFoundError):
        return ApiError(404, exc.message, kind="not_found")
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        log.warning("back end refused the server's credentials: %s", exc.message)
        return ApiError(502, f"The server's back end refused its credentials: {exc.message}", kind="server")
    if isinstance(exc, ProviderStatusError):
        if exc.status_code in (400, 413, 422):
            return ApiError(400, exc.message)
        return _passed_through(exc)
    if isinstance(exc, ProviderTimeoutError):
        return ApiError(504, exc.message, kind="timeout")
    if isinstance(exc, (ProviderConnectionError, ResponseFormatError)):
        return ApiError(502, exc.message, kind="server")
    if isinstance(exc, AbstractCoreError):
        log.warning("%s: %s", type(exc).__name__, exc.message)
        return ApiError(500, exc.message, kind="server")
    log.error("unexpected error while answering", exc_info=exc)
    return ApiError(500, "The server failed to answer this request (see its log).", kind="server")
