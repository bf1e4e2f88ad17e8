"""What a router tells about a call and its deployments: ``RouteAttempt``s, the routed answers
that carry them, ``DeploymentHealth`` and ``NoDeploymentAvailableError``."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple, TypeVar

from abstractcore.core.errors import ProviderError
from abstractcore.core.types import EmbeddingResponse, GenerateResponse, StreamChunk

__all__ = [
    "DeploymentHealth",
    "NoDeploymentAvailableError",
    "RouteAttempt",
    "RoutedChunk",
    "RoutedEmbeddingResponse",
    "RoutedResponse",
    "describe",
    "with_attempts",
]

_T = TypeVar("_T")


class RouteAttempt(NamedTuple):
    """One step of routing a call: a deployment that served it, failed, or was passed over."""

    #: The deployment's name (``Deployment(name=...)``, else "provider/model").
    deployment: str
    model: str
    #: "ok" (it served the call), "failed" or "skipped" (passed over).
    outcome: str
    #: The failure, when ``outcome`` is "failed".
    error: BaseException | None = None
    #: Why it was passed over or left ("circuit open", "busy", "over its rpm budget", "takes no tools", ...).
    reason: str | None = None
    #: Seconds spent on it (for a stream: until its first chunk).
    seconds: float = 0.0


@dataclass(frozen=True)
class DeploymentHealth:
    """What ``router.health()`` says about one deployment."""

    name: str
    provider: str
    model: str
    #: "closed" (serving), "open" (failing: passed over) or "half_open" (the next call probes it).
    state: str
    #: Failures in a row within the failure window (the circuit opens at the threshold).
    failures: int
    in_flight: int
    #: Seconds until an open circuit lets a probe through (None unless open).
    retry_in: float | None
    requests: int
    errors: int
    #: Median of its recent latencies, seconds (None before its first answer).
    latency: float | None
    last_error: str | None


class NoDeploymentAvailableError(ProviderError):
    """Every deployment that could take the call is out (its circuit is open).

    ``retry_after`` is the number of seconds until the first of them lets a
    probe through; ``attempts`` lists the deployments passed over.
    """

    retry_after: float | None
    attempts: list[RouteAttempt]

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        attempts: list[RouteAttempt] | None = None,
        **fields: Any,
    ) -> None:
        fields.setdefault("provider", "router")
        super().__init__(message, retry_after=retry_after, attempts=attempts or [], **fields)


@dataclass(slots=True)
class RoutedResponse(GenerateResponse):
    """A ``GenerateResponse`` served by a router: ``attempts`` says what was tried."""

    attempts: list[RouteAttempt] = field(default_factory=list)


@dataclass(slots=True)
class RoutedChunk(StreamChunk):
    """The last ``StreamChunk`` of a routed stream: ``attempts`` says what was tried."""

    attempts: list[RouteAttempt] = field(default_factory=list)


@dataclass(slots=True)
class RoutedEmbeddingResponse(EmbeddingResponse):
    """An ``EmbeddingResponse`` served by a router: ``attempts`` says what was tried,
    ``deployment`` which deployment answered."""

    attempts: list[RouteAttempt] = field(default_factory=list)
    deployment: str | None = None


#: core type -> (its routed subclass, a getter of all its fields); None once the type has ``attempts``.
_ROUTED: dict[type[Any], tuple[type[Any], Callable[[Any], Any]] | None] = {
    base: None
    if "attempts" in {f.name for f in fields(base)}
    else (routed, operator.attrgetter(*(f.name for f in fields(base))))
    for base, routed in (
        (GenerateResponse, RoutedResponse),
        (StreamChunk, RoutedChunk),
        (EmbeddingResponse, RoutedEmbeddingResponse),
    )
}


def with_attempts(value: _T, attempts: list[RouteAttempt], deployment: str) -> _T:
    """``value`` carrying ``attempts`` and the ``deployment`` that answered (a routed copy while
    the core types have no ``attempts`` field)."""
    entry = _ROUTED.get(type(value))
    if entry is not None:
        routed, getter = entry
        copy: _T = routed(*getter(value), attempts=attempts)
        value = copy
    elif hasattr(value, "attempts"):  # the core field, or a routed copy from a nested router
        value.attempts = attempts
    value.deployment = deployment  # type: ignore[attr-defined]
    return value


def describe(error: BaseException) -> str:
    """An error as one line: its class and message."""
    return f"{type(error).__name__}: {error}"
