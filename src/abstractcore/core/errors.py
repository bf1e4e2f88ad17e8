"""The abstractcore error tree.

Every failure a user can meet is one of these classes, never text in a reply::

    AbstractCoreError
    ├─ ConfigurationError (ValueError)        bad argument, unknown provider, missing key
    │  └─ BackendNotInstalledError (ImportError)
    ├─ ProviderError (.provider .model)
    │  ├─ ProviderConnectionError ── ProviderTimeoutError
    │  ├─ ProviderStatusError (.status_code .request_id .retry_after .body)
    │  │  ├─ BadRequestError ── ContextLengthExceededError
    │  │  ├─ AuthenticationError · PermissionDeniedError · ModelNotFoundError
    │  │  ├─ EndpointNotFoundError             a 404 on the path: base_url is wrong
    │  │  └─ RateLimitError · ServerError
    │  └─ ResponseFormatError                 malformed reply / stream
    ├─ StructuredOutputError (.raw .validation_errors)
    ├─ ToolCallError ── ToolLoopError          max_turns reached; carries the transcript
    │                   └─ RunTimeoutError     run_timeout reached
    └─ LocalBackendError ── ModelLoadError

``ModelNotFoundError`` is also raised by in-process back ends for a missing
file or unknown repository (``status_code`` is then ``None``). Cancellation and
other ``BaseException`` subclasses are never wrapped. All errors pickle.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AbstractCoreError",
    "AuthenticationError",
    "BackendNotInstalledError",
    "BadRequestError",
    "ConfigurationError",
    "ContextLengthExceededError",
    "EndpointNotFoundError",
    "LocalBackendError",
    "ModelLoadError",
    "ModelNotFoundError",
    "PermissionDeniedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderStatusError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseFormatError",
    "RunTimeoutError",
    "ServerError",
    "StructuredOutputError",
    "ToolCallError",
    "ToolLoopError",
    "error_class_for_status",
]


class AbstractCoreError(Exception):
    """Base class of every error abstractcore raises."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self._fields = fields
        for key, value in fields.items():
            setattr(self, key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self._fields))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[AbstractCoreError], message: str, fields: dict[str, Any]) -> AbstractCoreError:
    return cls(message, **fields)


class ConfigurationError(AbstractCoreError, ValueError):
    """A bad argument, an unknown provider or a missing key; raised before any request."""


class BackendNotInstalledError(ConfigurationError, ImportError):
    """An optional back end is not installed; the message names the pip command."""

    def __init__(self, message: str, **fields: Any) -> None:
        AbstractCoreError.__init__(self, message, **fields)


class ProviderError(AbstractCoreError):
    """A failure talking to a provider. Carries ``provider`` and ``model``."""

    provider: str | None
    model: str | None

    def __init__(
        self, message: str, *, provider: str | None = None, model: str | None = None, **fields: Any
    ) -> None:
        super().__init__(message, provider=provider, model=model, **fields)


class ProviderConnectionError(ProviderError):
    """The provider could not be reached, or the connection broke."""


class ProviderTimeoutError(ProviderConnectionError):
    """The provider did not answer in time."""


class ProviderStatusError(ProviderError):
    """The provider answered with an error status."""

    status_code: int | None
    request_id: str | None
    retry_after: float | None
    body: str | None

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: str | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(
            message,
            provider=provider,
            model=model,
            status_code=status_code,
            request_id=request_id,
            retry_after=retry_after,
            body=body,
            **fields,
        )


class BadRequestError(ProviderStatusError):
    """The request was rejected as invalid (400/422)."""


class ContextLengthExceededError(BadRequestError):
    """The prompt plus requested output do not fit the model's context window.

    ``prompt_tokens`` and ``context_length`` hold the numbers where the
    provider says them (in-process models and llama.cpp's servers always do).
    """

    prompt_tokens: int | None
    context_length: int | None

    def __init__(
        self,
        message: str,
        *,
        prompt_tokens: int | None = None,
        context_length: int | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message, prompt_tokens=prompt_tokens, context_length=context_length, **fields)


class AuthenticationError(ProviderStatusError):
    """The API key is missing or wrong (401)."""


class PermissionDeniedError(ProviderStatusError):
    """The key is valid but not allowed to do this (403)."""


class ModelNotFoundError(ProviderStatusError):
    """The model does not exist on this provider (or the local file is missing)."""


class EndpointNotFoundError(ProviderStatusError):
    """The server answered 404 for the endpoint itself, not for a model: ``base_url`` is wrong."""


class RateLimitError(ProviderStatusError):
    """Too many requests (429); ``retry_after`` says how long the server asked to wait."""


class ServerError(ProviderStatusError):
    """The provider failed (5xx)."""


class ResponseFormatError(ProviderError):
    """The reply or stream was malformed (invalid JSON, unexpected shape, HTML)."""


class StructuredOutputError(AbstractCoreError):
    """The model's answer could not be validated into the requested ``response_model``.

    ``raw`` is the last answer and ``attempts`` every answer (one per re-ask);
    ``validation_errors`` are pydantic's errors of the last one;
    ``finish_reason`` is "length" when the answer was cut by ``max_tokens``;
    ``usage`` sums the tokens of every attempt.
    """

    raw: str | None
    attempts: list[str]
    validation_errors: list[Any]
    finish_reason: str | None
    usage: Any

    def __init__(
        self,
        message: str,
        *,
        raw: str | None = None,
        attempts: list[str] | None = None,
        validation_errors: list[Any] | None = None,
        finish_reason: str | None = None,
        usage: Any = None,
        **fields: Any,
    ) -> None:
        if attempts is None:
            attempts = [raw] if raw is not None else []
        super().__init__(
            message,
            raw=raw,
            attempts=attempts,
            validation_errors=validation_errors or [],
            finish_reason=finish_reason,
            usage=usage,
            **fields,
        )


class ToolCallError(AbstractCoreError):
    """A tool definition or a tool call from the model is invalid."""


class ToolLoopError(ToolCallError):
    """The tool loop stopped before a final answer (``max_turns`` reached).

    It carries what happened so far: ``messages`` (the transcript), ``steps``
    and ``usage``, as on ``RunResult``.
    """

    messages: list[Any]
    steps: list[Any]
    usage: Any


class RunTimeoutError(ToolLoopError):
    """The tool loop did not finish within its ``run_timeout``; carries the transcript so far."""


class LocalBackendError(AbstractCoreError):
    """An in-process back end (llama.cpp, transformers, MLX) failed."""


class ModelLoadError(LocalBackendError):
    """An in-process model could not be loaded."""


_STATUS_CLASSES: dict[int, type[ProviderStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: ModelNotFoundError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_class_for_status(status: int) -> type[ProviderStatusError]:
    """The error class for an HTTP status (before any provider-specific refinement)."""
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return BadRequestError
    return ProviderStatusError
