"""What is done to a span besides starting and ending it: the router's attempts as its events, a
failure's ``error.type`` and status, the current trace context as request headers; and an
iterator closed even while the task is cancelled. Imported by ``tracing.py``."""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import Span, Status, StatusCode

from abstractcore.features.telemetry.attributes import error_type

__all__ = ["attempts", "close", "fail", "trace_headers"]


def attempts(span: Span, tried: Any) -> None:
    """The router's attempts (``RouteAttempt``s) as events of its span: which deployment, and why
    the call moved on; the deployment that served it as an attribute."""
    if not isinstance(tried, list):
        return
    for attempt in tried:
        event: dict[str, Any] = {
            "abstractcore.router.deployment": attempt.deployment,
            "gen_ai.request.model": attempt.model,
            "abstractcore.router.outcome": attempt.outcome,
        }
        if attempt.reason:
            event["abstractcore.router.reason"] = attempt.reason
        if attempt.error is not None:
            event["error.type"] = error_type(attempt.error)
        span.add_event("abstractcore.router.attempt", event)
        if attempt.outcome == "ok":
            span.set_attribute("abstractcore.router.deployment", attempt.deployment)


def trace_headers() -> dict[str, str]:
    """The current trace context as request headers (``traceparent``, by the global propagator)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def fail(span: Span, error: BaseException) -> None:
    attempts(span, getattr(error, "attempts", None))
    span.set_attribute("error.type", error_type(error))
    if isinstance(error, Exception):  # a cancellation is no error of the call
        span.set_status(Status(StatusCode.ERROR, str(error)[:500]))


async def close(iterator: Any) -> None:
    """Close ``iterator`` even while the calling task is being cancelled."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    import anyio

    with anyio.CancelScope(shield=True):
        await aclose()
