"""Tracing configured by the environment, as ``abstractcore serve --otel`` does it: the
OpenTelemetry SDK's own configuration from the ``OTEL_*`` variables (exporters, endpoint,
protocol, headers, service name, sampler), then ``instrument()``.

Defaults where a variable is unset: ``OTEL_TRACES_EXPORTER`` and ``OTEL_METRICS_EXPORTER`` are
``otlp``, ``OTEL_EXPORTER_OTLP_PROTOCOL`` is ``http/protobuf`` (the endpoint the exporter's own
default, ``http://localhost:4318``), ``OTEL_SERVICE_NAME`` is ``abstractcore``. An SDK tracer
provider already set globally (the app or ``opentelemetry-instrument`` configured one) is used
as it is.
"""

from __future__ import annotations

import os

from abstractcore.core.errors import BackendNotInstalledError, ConfigurationError

__all__ = ["DEFAULTS", "instrument_from_environment"]

#: The variables set when unset, before the SDK reads its configuration.
DEFAULTS = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_SERVICE_NAME": "abstractcore",
}

_MISSING = (
    'Tracing needs the OpenTelemetry SDK and an exporter: pip install "abstractcore[otel]" '
    "opentelemetry-sdk opentelemetry-exporter-otlp-proto-http"
)


def instrument_from_environment() -> None:
    """Configure the OpenTelemetry SDK from the ``OTEL_*`` environment variables (see the module
    docstring) and switch tracing on. ``BackendNotInstalledError`` without the SDK;
    ``ConfigurationError`` when the variables name an exporter that is not installed."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk._configuration import _OTelSDKConfigurator
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError as error:
        raise BackendNotInstalledError(f"{_MISSING}.") from error
    from abstractcore.features.telemetry import instrument

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        for name, value in DEFAULTS.items():
            os.environ.setdefault(name, value)
        try:
            _OTelSDKConfigurator().configure()  # type: ignore[no-untyped-call]
        except (RuntimeError, ValueError) as error:  # an exporter or protocol it cannot find
            message = f"OpenTelemetry from the OTEL_* variables: {error} ({_MISSING})."
            raise ConfigurationError(message) from None
    instrument()
