"""``abstractcore serve --otel`` (and ``otel: true`` in a configuration file) switches tracing on
before the server starts; without the SDK, or with an exporter the OTEL_* variables name that is
not installed, it stops with one clear line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from abstractcore import ConfigurationError
from abstractcore.features.telemetry.environment import DEFAULTS
from abstractcore.server.cli import main
from abstractcore.server.config import load_config

_ARGS = ["--provider", "openai-compatible", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]


def test_otel_without_the_sdk_is_one_line_naming_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("opentelemetry.sdk", "opentelemetry.sdk._configuration", "opentelemetry.sdk.trace"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["--otel", *_ARGS]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("abstractcore serve: error: Tracing needs the OpenTelemetry SDK")
    assert "pip install" in line and "opentelemetry-sdk" in line


def test_otel_with_an_exporter_not_installed_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in DEFAULTS:  # the defaults it sets are undone after the test
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "nosuch")
    assert main(["--otel", *_ARGS]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("abstractcore serve: error: OpenTelemetry from the OTEL_* variables")
    assert "nosuch" in line


def test_a_configuration_file_switches_tracing_on(tmp_path: Path) -> None:
    path = tmp_path / "server.json"
    path.write_text('{"otel": true, "models": [{"provider": "ollama", "model": "m"}]}')
    assert load_config(path).otel is True
    path.write_text('{"otel": "yes", "models": [{"provider": "ollama", "model": "m"}]}')
    with pytest.raises(ConfigurationError, match="otel must be true or false"):
        load_config(path)
