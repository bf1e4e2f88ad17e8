"""Turning an HTTP error reply into one class of the error tree.

``ErrorMapper`` parses the common error body shapes (OpenAI's and
Anthropic's ``{"error": {"type", "code", "message"}}``, Ollama's
``{"error": "..."}``, HTML from a proxy, plain text), picks the class from the
status, lets a provider refine it (``refine``) and appends what to do
(``advice``). Secrets given to it are scrubbed from every message and body.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from abstractcore.core.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthExceededError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderStatusError,
    RateLimitError,
    ServerError,
    error_class_for_status,
)

__all__ = ["ErrorDetail", "ErrorMapper", "parse_retry_after", "redact"]

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "cf-ray")


@dataclass(frozen=True)
class ErrorDetail:
    """What was understood of an error body."""

    status: int
    message: str
    type: str | None = None
    code: str | None = None


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (of 4+ characters) replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms``, or ``retry-after`` as seconds or an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _parse_body(status: int, body: bytes) -> ErrorDetail:
    text = body.decode("utf-8", errors="replace").strip()
    lowered = text[:200].lower()
    if lowered.startswith("<!doctype html") or lowered.startswith("<html"):
        return ErrorDetail(status, f"the server answered with an HTML page (HTTP {status}), "
                                   "not an API error: a proxy or gateway in between failed, "
                                   "or base_url points at a web page")
    try:
        data: Any = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, str):
            return ErrorDetail(status, err)
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail") or data.get("detail") or text
            code = err.get("code")
            return ErrorDetail(status, str(message), _str(err.get("type")), _str(code))
    return ErrorDetail(status, text[:500] or f"HTTP {status} with an empty body")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


class ErrorMapper:
    """Maps one provider's error replies. Subclass and override ``refine`` / ``advice``."""

    def __init__(self, provider: str, *, key_env: str | None = None,
                 secrets: Iterable[str] = ()) -> None:
        self.provider = provider
        self.key_env = key_env
        self.secrets = tuple(s for s in secrets if s)

    def refine(self, detail: ErrorDetail, default: type[ProviderStatusError]) -> type[ProviderStatusError]:
        """The class for ``detail``; by default the one for its status, refined by common codes."""
        code = f"{detail.code or ''} {detail.type or ''}".lower()
        message = detail.message.lower()
        if "context_length" in code or "context length" in message or "maximum context" in message:
            return ContextLengthExceededError
        if "model_not_found" in code or (detail.status == 404 and "model" in message):
            return ModelNotFoundError
        if "invalid_api_key" in code or "authentication" in code:
            return AuthenticationError
        if "permission" in code:
            return PermissionDeniedError
        if "rate_limit" in code:
            return RateLimitError
        return default

    def advice(self, cls: type[ProviderStatusError], detail: ErrorDetail, model: str | None) -> str:
        """A sentence saying what the user can do about it."""
        if issubclass(cls, AuthenticationError):
            where = f"set {self.key_env} or pass api_key=..." if self.key_env else "pass api_key=..."
            return f"The API key was rejected: {where} with a valid key."
        if issubclass(cls, PermissionDeniedError):
            return "Your key is not allowed to do this; check its permissions or project."
        if issubclass(cls, ModelNotFoundError):
            return f"Check the model name {model!r}; list_models() shows what this server offers."
        if issubclass(cls, ContextLengthExceededError):
            return "Shorten the prompt or lower max_tokens."
        if issubclass(cls, RateLimitError):
            return "Slow down, or raise retry_config=RetryConfig(max_attempts=...)."
        if issubclass(cls, ServerError):
            return ("The provider failed. Requests are retried automatically (retry_config); "
                    "a stream that had already started is not. Try again later.")
        if issubclass(cls, BadRequestError):
            return "Check the request parameters."
        return ""

    def to_error(self, status: int, headers: Mapping[str, str], body: bytes,
                 *, model: str | None) -> ProviderStatusError:
        """The error to raise for this reply."""
        detail = _parse_body(status, body)
        cls = self.refine(detail, error_class_for_status(status))
        advice = self.advice(cls, detail, model)
        message = f"{self.provider} returned HTTP {status}: {detail.message}"
        if advice:
            message = f"{message} — {advice}"
        request_id = next((headers[h] for h in _REQUEST_ID_HEADERS if h in headers), None)
        body_text = body.decode("utf-8", errors="replace")[:4000]
        return cls(redact(message, self.secrets), provider=self.provider, model=model,
                   status_code=status, request_id=request_id,
                   retry_after=parse_retry_after(headers),
                   body=redact(body_text, self.secrets), error_code=detail.code, error_type=detail.type)
