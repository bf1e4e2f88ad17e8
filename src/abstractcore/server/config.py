"""What a server runs with: where it listens, its key, CORS, limits and the models it serves.

``ServerConfig`` is built from the command line or from a configuration file, JSON (``.json``) or
YAML (``.yaml`` / ``.yml``, needs PyYAML: ``pip install "abstractcore[server]"``)::

    host: 127.0.0.1            # the default: only this machine can connect
    port: 8000
    api_key_env: MY_SERVER_KEY # clients must send this key (Authorization: Bearer / x-api-key)
    cors_origins: [http://localhost:5173]
    max_request_bytes: 33554432
    responses_store_size: 1000 # responses kept for previous_response_id (0: none)
    responses_store_ttl: 3600  # seconds each is kept
    models:
      - provider: huggingface               # served as "huggingface/smollm2-135m-instruct"
      - provider: ollama
        model: qwen2.5-coder:7b
        name: coder                         # served as "coder"
        aliases: [gpt-4o-mini]              # also answers to these names
        options: {base_url: "http://localhost:11434", temperature: 0.2}

Every entry's ``options`` go to ``create_llm``, which validates them.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abstractcore.core.errors import BackendNotInstalledError, ConfigurationError
from abstractcore.core.secrets import Secret

__all__ = ["API_KEY_ENV", "DEFAULT_MAX_REQUEST_BYTES", "ModelEntry", "ServerConfig", "load_config"]

#: The environment variable the server's own key is read from when none is given.
API_KEY_ENV = "ABSTRACTCORE_SERVER_API_KEY"
#: 32 MiB, Anthropic's own limit for a Messages request (images travel as base64).
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024

_SERVER_KEYS = (
    "host",
    "port",
    "api_key",
    "api_key_env",
    "cors_origins",
    "max_request_bytes",
    "responses_store_size",
    "responses_store_ttl",
    "otel",
    "models",
)
_MODEL_KEYS = ("provider", "model", "name", "aliases", "options")


@dataclass(frozen=True)
class ModelEntry:
    """One back end: ``create_llm(provider, model, **options)``, served as ``name`` (default
    ``provider/model``) and its ``aliases``."""

    provider: str
    model: str | None = None
    name: str | None = None
    aliases: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerConfig:
    """Where the server listens and what it accepts.

    ``api_key`` (optional) is the key clients must send; ``cors_origins`` the browser origins
    allowed to call it (none: CORS off); ``max_request_bytes`` the largest request body;
    ``responses_store_size`` and ``responses_store_ttl`` bound the responses kept in memory for
    ``previous_response_id`` (how many, the least recently used dropped first; for how many
    seconds each). ``otel`` switches tracing on when the server starts (``abstractcore serve
    --otel``): the OpenTelemetry SDK configured from the ``OTEL_*`` environment variables, see
    ``docs/tracing.md``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: Secret | None = None
    cors_origins: tuple[str, ...] = ()
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    models: tuple[ModelEntry, ...] = ()
    responses_store_size: int = 1000
    responses_store_ttl: float = 3600.0
    otel: bool = False

    def __post_init__(self) -> None:
        size, ttl = self.responses_store_size, self.responses_store_ttl
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ConfigurationError(f"responses_store_size must be an integer >= 0; got {size!r}.")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
            raise ConfigurationError(f"responses_store_ttl must be a number of seconds > 0; got {ttl!r}.")
        if not isinstance(self.otel, bool):
            raise ConfigurationError(f"otel must be true or false; got {self.otel!r}.")
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port must be an integer 0-65535; got {self.port!r}.")
        if not isinstance(self.max_request_bytes, int) or self.max_request_bytes < 1024:
            raise ConfigurationError(
                f"max_request_bytes must be an integer >= 1024; got {self.max_request_bytes!r}."
            )
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"cors_origins: {origin!r} is not an origin such as https://app.example."
                )


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read the server configuration {str(path)!r}: {exc.strerror}."
        ) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{path}: not valid JSON: {exc}.") from None
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigurationError(f"{path}: the configuration must be a .json, .yaml or .yml file.")
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError:
        raise BackendNotInstalledError(
            'Reading a YAML configuration needs PyYAML: pip install "abstractcore[server]" (or use JSON).'
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from None


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {unknown}; the keys are {', '.join(allowed)}.")


def _entry(data: Any, where: str) -> ModelEntry:
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where} must be a mapping with at least a 'provider'.")
    _check_keys(data, _MODEL_KEYS, where)
    provider, model, name = data.get("provider"), data.get("model"), data.get("name")
    if not isinstance(provider, str) or not provider:
        raise ConfigurationError(f"{where}.provider is required (a provider name such as 'ollama').")
    for key, value in (("model", model), ("name", name)):
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{where}.{key} must be a string; got {value!r}.")
    aliases = data.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a for a in aliases):
        raise ConfigurationError(f"{where}.aliases must be a list of names.")
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigurationError(f"{where}.options must be a mapping of create_llm options.")
    return ModelEntry(provider, model, name, tuple(aliases), dict(options))


def _api_key(data: Mapping[str, Any], where: str) -> Secret | None:
    key, env = data.get("api_key"), data.get("api_key_env")
    if env is not None:
        if not isinstance(env, str) or not os.environ.get(env):
            raise ConfigurationError(
                f"{where}: api_key_env names {env!r}, which is not set in the environment."
            )
        key = os.environ[env]
    if key is None:
        return None
    if not isinstance(key, str) or not key:
        raise ConfigurationError(f"{where}: api_key must be a non-empty string.")
    return Secret(key)


def load_config(path: str | os.PathLike[str]) -> ServerConfig:
    """Read a configuration file (JSON or YAML); ``ConfigurationError`` naming what is wrong."""
    where = str(path)
    data = _read(Path(path))
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where}: the configuration must be a mapping (host, port, models, ...).")
    _check_keys(data, _SERVER_KEYS, where)
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise ConfigurationError(f"{where}: 'models' must list at least one back end ({{provider: ...}}).")
    origins = data.get("cors_origins") or []
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise ConfigurationError(f"{where}: cors_origins must be a list of origins.")
    return ServerConfig(
        host=str(data.get("host", "127.0.0.1")),
        port=data.get("port", 8000),
        api_key=_api_key(data, where),
        cors_origins=tuple(origins),
        max_request_bytes=data.get("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES),
        responses_store_size=data.get("responses_store_size", 1000),
        responses_store_ttl=data.get("responses_store_ttl", 3600.0),
        otel=data.get("otel", False),
        models=tuple(_entry(m, f"{where}: models[{i}]") for i, m in enumerate(models)),
    )
