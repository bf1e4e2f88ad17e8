"""Turning an HTTP error reply (or an error event of a stream) into one class of the error tree.

Declarative: a provider declares an ``ErrorTable`` of ``ErrorRule``s (which
error ``type`` / ``code`` / status / message pattern is which class, and what
to advise); ``ErrorMapper.to_error`` parses the body, applies the first rule
that matches (the provider's own, then the common ones, then the class of the
status) and adds the advice of the rule or of the class. Servers that report
errors only as text (llama.cpp's) get message patterns in their table, next
to the provider that talks to them, each tested against a captured body.

Bodies understood: OpenAI's and Anthropic's ``{"error": {"type", "code",
"message"}}``, Ollama's ``{"error": "..."}``, FastAPI's ``{"detail": ...}``,
an HTML page from a proxy, plain text. Secrets given to the mapper are
scrubbed from every message and body.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from abstractcore.core.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthExceededError,
    EndpointNotFoundError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderStatusError,
    RateLimitError,
    ServerError,
    error_class_for_status,
)
from abstractcore.core.secrets import MASK, Secret

__all__ = [
    "COMMON_RULES",
    "ErrorDetail",
    "ErrorMapper",
    "ErrorRule",
    "ErrorTable",
    "parse_error_body",
    "parse_retry_after",
    "redact",
]

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "cf-ray")


@dataclass(frozen=True)
class ErrorDetail:
    """What was understood of an error body."""

    status: int | None
    message: str
    type: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class ErrorRule:
    """One row of an error table: what it matches and what it becomes.

    Every given condition must hold: ``status`` (one or several), ``type`` /
    ``code`` (one of, compared lower-case), ``message`` (a case-insensitive
    regular expression searched in the message). ``advice`` replaces the
    class's advice; it may use ``{model}``, ``{key_hint}`` and ``{url}``.
    """

    cls: type[ProviderStatusError]
    status: int | tuple[int, ...] | None = None
    type: str | tuple[str, ...] | None = None
    code: str | tuple[str, ...] | None = None
    message: str | None = None
    advice: str | None = None
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.message is not None:
            object.__setattr__(self, "_pattern", re.compile(self.message, re.IGNORECASE | re.DOTALL))

    def matches(self, detail: ErrorDetail) -> bool:
        """True when every condition of this rule holds for ``detail``."""
        if self.status is not None and detail.status not in _tuple(self.status):
            return False
        if self.type is not None and (detail.type or "").lower() not in _tuple(self.type):
            return False
        if self.code is not None and (detail.code or "").lower() not in _tuple(self.code):
            return False
        return self._pattern is None or self._pattern.search(detail.message) is not None


def _tuple(value: Any) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)


#: A provider's rules, tried in order before the common ones.
ErrorTable = tuple[ErrorRule, ...]

#: The advice of each class, when no rule gives one.
_CLASS_ADVICE: tuple[tuple[type[ProviderStatusError], str], ...] = (
    (AuthenticationError, "The API key was rejected: {key_hint} with a valid key."),
    (PermissionDeniedError, "Your key is not allowed to do this; check its permissions or project."),
    (ModelNotFoundError, "Check the model name {model!r}; list_models() shows what this server offers."),
    (EndpointNotFoundError, "The server has no such endpoint ({url}): check base_url{v1_hint}."),
    (ContextLengthExceededError, "Shorten the prompt or lower max_tokens."),
    (RateLimitError, "Slow down, or raise retry_config=RetryConfig(max_attempts=...)."),
    (
        ServerError,
        "The provider failed. Requests are retried automatically (retry_config=); "
        "a stream that had already started is not. Try again later.",
    ),
    (BadRequestError, "Check the request parameters."),
)

#: Rules every provider shares: OpenAI's error codes (which most servers copy) and 404s.
COMMON_RULES: ErrorTable = (
    ErrorRule(ContextLengthExceededError, code="context_length_exceeded"),
    ErrorRule(ContextLengthExceededError, message=r"context length|maximum context|context window"),
    ErrorRule(ModelNotFoundError, code="model_not_found"),
    ErrorRule(AuthenticationError, code="invalid_api_key"),
    ErrorRule(AuthenticationError, type=("authentication_error", "invalid_api_key")),
    ErrorRule(PermissionDeniedError, type="permission_error"),
    ErrorRule(RateLimitError, code="rate_limit_exceeded"),
    ErrorRule(RateLimitError, type=("rate_limit_error", "rate_limit_exceeded")),
    ErrorRule(ModelNotFoundError, status=404, message=r"\bmodel"),
    ErrorRule(EndpointNotFoundError, status=404),
)


def redact(text: str, secrets: Iterable[Secret | str]) -> str:
    """``text`` with every secret (of 4+ characters) replaced by ``***``."""
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
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
    import email.utils  # an HTTP date: rare, and email.utils costs ~10 ms to import

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_error_body(status: int | None, body: bytes | str | Mapping[str, Any]) -> ErrorDetail:
    """The message, type and code of an error body (bytes, text or an already parsed event)."""
    if isinstance(body, Mapping):
        return _from_data(status, dict(body), json.dumps(body)[:500])
    text = (body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body).strip()
    lowered = text[:200].lower()
    if lowered.startswith("<!doctype html") or lowered.startswith("<html"):
        return ErrorDetail(
            status,
            f"the server answered with an HTML page (HTTP {status}), "
            "not an API error: a proxy or gateway in between failed, "
            "or base_url points at a web page",
        )
    try:
        data: Any = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        return _from_data(status, data, text)
    return ErrorDetail(status, text[:500] or f"HTTP {status} with an empty body")


def _from_data(status: int | None, data: dict[str, Any], text: str) -> ErrorDetail:
    err = data.get("error", data)
    if isinstance(err, str):
        return ErrorDetail(status, err)
    if isinstance(err, dict):
        message = err.get("message") or err.get("detail") or data.get("detail") or text
        return ErrorDetail(status, str(message), _str(err.get("type")), _str(err.get("code")))
    return ErrorDetail(status, text[:500])


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


class ErrorMapper:
    """Maps one provider's error replies with its ``table`` (then the common rules)."""

    def __init__(
        self,
        provider: str,
        *,
        table: ErrorTable = (),
        key_env: str | None = None,
        secrets: Iterable[Secret | str] = (),
    ) -> None:
        self.provider = provider
        self.table = table
        self.key_env = key_env
        self.secrets = tuple(s for s in secrets if s)

    def classify(self, detail: ErrorDetail) -> tuple[type[ProviderStatusError], str | None]:
        """The class for ``detail`` and the advice of the rule that chose it (if any)."""
        for rule in (*self.table, *COMMON_RULES):
            if rule.matches(detail):
                return rule.cls, rule.advice
        if detail.status is None:
            return ServerError, None
        return error_class_for_status(detail.status), None

    def advice(
        self, cls: type[ProviderStatusError], template: str | None, *, model: str | None, url: str | None
    ) -> str:
        """The sentence saying what to do, filled in."""
        if template is None:
            template = next((text for base, text in _CLASS_ADVICE if issubclass(cls, base)), "")
        key_hint = f"set {self.key_env} or pass api_key=..." if self.key_env else "pass api_key=..."
        where = url or "that URL"
        v1_hint = (
            "; most servers expect it to end in /v1"
            if url and "/v1/" not in url and not url.rstrip("/").endswith("/v1")
            else ""
        )
        return template.format(model=model, key_hint=key_hint, url=where, v1_hint=v1_hint)

    def to_error(
        self,
        status: int | None,
        headers: Mapping[str, str],
        body: bytes | str | Mapping[str, Any],
        *,
        model: str | None,
        url: str | None = None,
    ) -> ProviderStatusError:
        """The error to raise for this reply (``status`` None: an error event inside a stream)."""
        detail = parse_error_body(status, body)
        cls, template = self.classify(detail)
        advice = self.advice(cls, template, model=model, url=url)
        where = f"HTTP {status}" if status is not None else "an error in the stream"
        message = f"{self.provider} returned {where}: {detail.message}"
        if advice:
            message = f"{message} — {advice}"
        request_id = next((headers[h] for h in _REQUEST_ID_HEADERS if h in headers), None)
        if isinstance(body, Mapping):
            body_text = json.dumps(body)
        else:
            body_text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        extra = _context_numbers(detail) if issubclass(cls, ContextLengthExceededError) else {}
        return cls(
            redact(message, self.secrets),
            provider=self.provider,
            model=model,
            status_code=status,
            request_id=request_id,
            retry_after=parse_retry_after(headers),
            body=redact(body_text[:4000], self.secrets),
            error_code=detail.code,
            error_type=detail.type,
            **extra,
        )


_CONTEXT_NUMBERS = (
    # llama-server: "request (6030 tokens) exceeds the available context size (4096 tokens)"
    (re.compile(r"\((\d+) tokens\) exceeds the available context size \((\d+) tokens\)"), 1, 2),
    # OpenAI: "maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens"
    (re.compile(r"maximum context length is (\d+) tokens.*?resulted in (\d+) tokens", re.DOTALL), 2, 1),
)


def _context_numbers(detail: ErrorDetail) -> dict[str, int]:
    """``prompt_tokens`` and ``context_length`` of a context error, where the server says them."""
    for pattern, prompt, context in _CONTEXT_NUMBERS:
        found = pattern.search(detail.message)
        if found:
            return {"prompt_tokens": int(found.group(prompt)), "context_length": int(found.group(context))}
    return {}
