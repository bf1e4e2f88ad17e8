"""Every attribute and metric name this library emits outside its own ``abstractcore.*``
namespace is one the OpenTelemetry semantic conventions define: checked against the registry
that ships with the SDK (``opentelemetry-semantic-conventions``: the GenAI names as of
semantic-conventions v1.41.0, plus ``server.*``, ``error.*``, ``http.*``, ``url.*``)."""

from __future__ import annotations

import re
from pathlib import Path

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes import (
    error_attributes,
    http_attributes,
    server_attributes,
    url_attributes,
)

import abstractcore.features.telemetry as telemetry

_MODULES = (
    gen_ai_attributes,
    gen_ai_metrics,
    error_attributes,
    http_attributes,
    server_attributes,
    url_attributes,
)


def _emitted() -> set[str]:
    """The dotted names in the telemetry package's source (string literals)."""
    source = "".join(p.read_text() for p in Path(telemetry.__file__).parent.glob("*.py"))
    return set(re.findall(r'"((?:gen_ai|server|error|http|url)\.[a-z_.]+)"', source))


def test_every_name_emitted_is_in_the_conventions_registry() -> None:
    known = {value for module in _MODULES for value in vars(module).values() if isinstance(value, str)}
    emitted = _emitted()
    assert {"gen_ai.provider.name", "gen_ai.client.token.usage", "server.address"} <= emitted
    assert sorted(emitted - known) == []


def test_the_pre_1_37_provider_attribute_is_not_emitted() -> None:
    """``gen_ai.system`` was replaced by ``gen_ai.provider.name`` in semantic-conventions v1.37.0."""
    assert "gen_ai.system" not in _emitted()
    assert gen_ai_attributes.GEN_AI_PROVIDER_NAME == "gen_ai.provider.name"
