"""OpenTelemetry tracing and metrics, by the GenAI semantic conventions: ``abstractcore.instrument()``.

Off until ``instrument()`` is called; then every model call on the request pipeline
(``providers/pipeline.py``) is one span, and ``run``, the router, ``abatch`` and the server add
their parent spans. ``opentelemetry-api`` is the optional extra ``abstractcore[otel]``: nothing of
it is imported before ``instrument()``.
"""

from __future__ import annotations

import os
from typing import Any

from abstractcore.core.errors import BackendNotInstalledError, ConfigurationError
from abstractcore.features.telemetry import state
from abstractcore.transport import propagation

__all__ = ["CAPTURE_CONTENT_ENV", "instrument"]

#: The conventions' switch for recording prompts, answers and tool arguments ("true" to record).
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

_ON = frozenset({"true", "1", "yes", "span_only", "span_and_event"})


def instrument(
    tracer_provider: Any = None,
    meter_provider: Any = None,
    capture_content: bool | None = None,
    *,
    propagate: bool = False,
) -> None:
    """Trace every call with OpenTelemetry (spans and metrics by the GenAI semantic conventions).

    ``instrument()`` uses the globally configured providers (``opentelemetry.trace`` /
    ``opentelemetry.metrics``); pass a ``tracer_provider`` / ``meter_provider`` to use others.
    Prompts, answers and tool arguments are recorded only when ``capture_content=True`` or, when
    it is None, the environment variable ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
    is "true". API keys are never recorded. ``propagate=True`` sends the call's trace context
    (the W3C ``traceparent``, by the globally set propagator) in the headers of every HTTP
    request to a provider, so a traced server behind it continues the trace.
    ``instrument(False)`` switches tracing off again.
    Needs ``pip install "abstractcore[otel]"``.
    """
    if tracer_provider is False:
        state.active = None
        propagation.outgoing = None
        return
    if not isinstance(propagate, bool):
        raise ConfigurationError(f"propagate must be True or False; got {propagate!r}.")
    if capture_content is not None and not isinstance(capture_content, bool):
        raise ConfigurationError(f"capture_content must be True, False or None; got {capture_content!r}.")
    if capture_content is None:
        capture_content = os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _ON
    try:
        from abstractcore.features.telemetry.tracing import Tracing, trace_headers
    except ImportError as error:
        raise BackendNotInstalledError(
            'Tracing needs OpenTelemetry: pip install "abstractcore[otel]" '
            "(and opentelemetry-sdk plus an exporter to send the spans somewhere)."
        ) from error
    provider = None if tracer_provider is True else tracer_provider
    state.active = Tracing(provider, meter_provider, capture_content)
    propagation.outgoing = trace_headers if propagate else None
