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
    │  │                └─ RunTimeoutError     run_timeout reached
    │  └─ MCPConnectionError (.server .stderr)  an MCP server failed to start or died
    └─ LocalBackendError ── ModelLoadError

``ModelNotFoundError`` is also raised by in-process back ends for a missing
file or unknown repository (``status_code`` is then ``None``). Cancellation and
other ``BaseException`` subclasses are never wrapped. All errors pickle.

What a failure means elsewhere is a property of its class, one table read by
all three places that act on it (``is_retryable``, ``failover_of`` and
``http_status_of`` apply it, with the status refinements below):

=========================== ========= ========= ============
class                       retryable failover  http_status
=========================== ========= ========= ============
AbstractCoreError (others)  no        raise     500
ConfigurationError          no        raise     400
BackendNotInstalledError    no        move      400
ProviderError               no        raise     500
ProviderConnectionError     yes       move      502
ProviderTimeoutError        yes       move      504
ProviderStatusError         (status)  (status)  passed through
BadRequestError             (status)  answered  passed through
ContextLengthExceededError  no        context   400
AuthenticationError         no        move      502
PermissionDeniedError       no        move      502
ModelNotFoundError          no        move      404
EndpointNotFoundError       no        move      passed through
RateLimitError              yes       move      passed through as 429
ServerError                 yes       move      passed through
ResponseFormatError         no        move      502
BatchItemError              no        raise     500
StructuredOutputError       no        answered  500
LocalBackendError           no        move      500
=========================== ========= ========= ============

- ``retryable``: the transport tries the request again (``transport/http.py``);
  a status error of any other class whose status is 408, 409 or 429 is retried too.
- ``failover``: what a router does with it: "move" to the next deployment,
  "context" (move only to a deployment with a larger context window),
  "answered" (raised at once; the deployment answered, so it counts as
  healthy: the request was wrong) or "raise" (raised at once, no verdict on
  the deployment). A status error whose status is 408, 409 or 5xx moves
  whatever its class.
- ``http_status``: the status abstractcore's server answers with. None: the
  back end's status passed through: 400, 413 and 422 answer 400; 429, or any
  other status of a ``RateLimitError``, answers 429; 5xx as it is; any other
  4xx, or none, is the server's back end failing: 502.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

__all__ = [
    "AbstractCoreError",
    "AuthenticationError",
    "BackendNotInstalledError",
    "BadRequestError",
    "BatchItemError",
    "ConfigurationError",
    "ContextLengthExceededError",
    "EndpointNotFoundError",
    "LocalBackendError",
    "MCPConnectionError",
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
    "Failover",
    "error_class_for_status",
    "failover_of",
    "http_status_of",
    "is_retryable",
]

#: What a router does with a failure (see the module docstring).
Failover = Literal["move", "context", "answered", "raise"]


class AbstractCoreError(Exception):
    """Base class of every error abstractcore raises."""

    #: Whether the transport tries the request again (see the module docstring's table).
    retryable: ClassVar[bool] = False
    #: What a router does with it: "move", "context", "answered" or "raise".
    failover: ClassVar[Failover] = "raise"
    #: The status abstractcore's server answers with (None: the back end's, passed through).
    http_status: ClassVar[int | None] = 500

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

    http_status: ClassVar[int | None] = 400


class BackendNotInstalledError(ConfigurationError, ImportError):
    """An optional back end is not installed; the message names the pip command."""

    failover: ClassVar[Failover] = "move"

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

    retryable: ClassVar[bool] = True
    failover: ClassVar[Failover] = "move"
    http_status: ClassVar[int | None] = 502


class ProviderTimeoutError(ProviderConnectionError):
    """The provider did not answer in time."""

    http_status: ClassVar[int | None] = 504


class ProviderStatusError(ProviderError):
    """The provider answered with an error status."""

    http_status: ClassVar[int | None] = None

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

    failover: ClassVar[Failover] = "answered"


class ContextLengthExceededError(BadRequestError):
    """The prompt plus requested output do not fit the model's context window.

    ``prompt_tokens`` and ``context_length`` hold the numbers where the
    provider says them (in-process models and llama.cpp's servers always do).
    """

    failover: ClassVar[Failover] = "context"
    http_status: ClassVar[int | None] = 400

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

    failover: ClassVar[Failover] = "move"
    http_status: ClassVar[int | None] = 502


class PermissionDeniedError(ProviderStatusError):
    """The key is valid but not allowed to do this (403)."""

    failover: ClassVar[Failover] = "move"
    http_status: ClassVar[int | None] = 502


class ModelNotFoundError(ProviderStatusError):
    """The model does not exist on this provider (or the local file is missing)."""

    failover: ClassVar[Failover] = "move"
    http_status: ClassVar[int | None] = 404


class EndpointNotFoundError(ProviderStatusError):
    """The server answered 404 for the endpoint itself, not for a model: ``base_url`` is wrong."""

    failover: ClassVar[Failover] = "move"


class RateLimitError(ProviderStatusError):
    """Too many requests (429); ``retry_after`` says how long the server asked to wait."""

    retryable: ClassVar[bool] = True
    failover: ClassVar[Failover] = "move"


class ServerError(ProviderStatusError):
    """The provider failed (5xx)."""

    retryable: ClassVar[bool] = True
    failover: ClassVar[Failover] = "move"


class ResponseFormatError(ProviderError):
    """The reply or stream was malformed (invalid JSON, unexpected shape, HTML)."""

    failover: ClassVar[Failover] = "move"
    http_status: ClassVar[int | None] = 502


class BatchItemError(ProviderError):
    """An item of a provider batch job that got no answer: ``reason`` is "expired" (the batch's
    completion window passed first), "canceled" (the job was cancelled first) or "failed" (the
    provider refused the whole batch; ``message`` says why). An item the provider answered with
    an error carries that error's own class instead (``BadRequestError``, ...)."""

    reason: str
    custom_id: str | None

    def __init__(
        self, message: str, *, reason: str = "failed", custom_id: str | None = None, **fields: Any
    ) -> None:
        super().__init__(message, reason=reason, custom_id=custom_id, **fields)


class StructuredOutputError(AbstractCoreError):
    """The model's answer could not be validated into the requested ``response_model``.

    ``raw`` is the last answer and ``attempts`` every answer (one per re-ask);
    ``validation_errors`` are pydantic's errors of the last one;
    ``finish_reason`` is "length" when the answer was cut by ``max_tokens``;
    ``usage`` sums the tokens of every attempt.
    """

    failover: ClassVar[Failover] = "answered"

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


class MCPConnectionError(ToolCallError):
    """An MCP server could not be reached, failed to start or died.

    ``server`` names it (its command or URL); ``stderr`` holds the last lines it wrote to
    stderr (a stdio server's; empty for HTTP). It ends a tool loop: the server's tools are gone.
    """

    server: str
    stderr: str


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

    failover: ClassVar[Failover] = "move"


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


#: Statuses retried whatever the error's class.
RETRY_STATUSES = frozenset({408, 409, 429})
#: Statuses (besides 5xx) that move a router call on whatever the error's class.
MOVE_STATUSES = frozenset({408, 409})
#: Statuses of the back end passed through as the client's own bad request (400).
BAD_REQUEST_STATUSES = frozenset({400, 413, 422})


def is_retryable(error: BaseException) -> bool:
    """Whether the transport may send the request again after ``error``."""
    if not isinstance(error, AbstractCoreError):
        return False
    if error.retryable:
        return True
    return isinstance(error, ProviderStatusError) and error.status_code in RETRY_STATUSES


def failover_of(error: BaseException) -> Failover:
    """What a router does with ``error``: "move", "context", "answered" or "raise"."""
    if not isinstance(error, AbstractCoreError):
        return "raise"
    verdict = error.failover
    if verdict in ("move", "context") or not isinstance(error, ProviderStatusError):
        return verdict
    status = error.status_code
    if status is not None and (status in MOVE_STATUSES or status >= 500):
        return "move"
    return verdict


def http_status_of(error: BaseException) -> int:
    """The HTTP status abstractcore's server answers ``error`` with."""
    if not isinstance(error, AbstractCoreError):
        return 500
    status = error.http_status
    if status is not None:
        return status
    passed = getattr(error, "status_code", None) or 502
    if passed in BAD_REQUEST_STATUSES:
        return 400
    if passed == 429 or isinstance(error, RateLimitError):
        return 429
    return passed if passed >= 500 else 502
