"""``HttpProvider``: what every HTTP provider shares (key, base URL, the pooled client)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from abstractcore.core.config import check_base_url
from abstractcore.core.errors import ConfigurationError
from abstractcore.providers.base import AsyncProvider
from abstractcore.transport.errors import ErrorMapper
from abstractcore.transport.http import HttpClient

__all__ = ["HttpProvider"]


class HttpProvider(AsyncProvider):
    """An ``AsyncProvider`` that talks HTTP through one ``HttpClient``."""

    options: ClassVar[frozenset[str]] = frozenset(
        {"api_key", "base_url", "headers", "max_connections", "http_client"})
    #: Environment variable holding the API key (None: no key used).
    api_key_env: ClassVar[str | None] = None
    #: Environment variable holding the base URL.
    base_url_env: ClassVar[str | None] = None
    #: Base URL when neither argument nor environment gives one (None: required).
    default_base_url: ClassVar[str | None] = None
    #: Scheme to assume for a base URL given as host:port.
    default_scheme: ClassVar[str | None] = None
    #: What to tell the user when the server cannot be reached (None: a generic hint).
    connect_hint: ClassVar[str | None] = None

    def _configure(self, options: dict[str, Any]) -> None:
        key = options.get("api_key")
        if key is None and self.api_key_env:
            key = os.environ.get(self.api_key_env) or None
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise ConfigurationError("api_key must be a non-empty string.")
        self._api_key: str | None = key
        url = options.get("base_url")
        if url is None and self.base_url_env:
            url = os.environ.get(self.base_url_env) or None
        url = url or self.default_base_url
        if url is None:
            env = f" or set {self.base_url_env}" if self.base_url_env else ""
            raise ConfigurationError(
                f"{self.name} needs a server: pass base_url='http://host:port/v1'{env}.")
        self.base_url: str = self._normalise_base_url(check_base_url(url, default_scheme=self.default_scheme))
        self._check_key()
        headers = options.get("headers") or {}
        if not isinstance(headers, dict):
            raise ConfigurationError("headers must be a dict of str to str.")
        max_connections = options.get("max_connections", 100)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ConfigurationError(f"max_connections must be an integer >= 1; got {max_connections!r}.")
        client = options.get("http_client")
        if client is not None:
            import httpx

            if not isinstance(client, httpx.AsyncClient):
                raise ConfigurationError("http_client must be an httpx.AsyncClient.")
        self._http = HttpClient(
            provider=self.name, base_url=self.base_url,
            headers={**self._default_headers(), **headers},
            secret_headers=self._auth_headers(self._api_key) if self._api_key else {},
            timeout=self.timeout, retry=self.retry_config, max_connections=max_connections,
            httpx_client=client, error_mapper=self._error_mapper(), connect_hint=self.connect_hint)

    def _normalise_base_url(self, url: str) -> str:
        """Adjust a validated base URL (e.g. add ``/v1``). Default: unchanged."""
        return url

    def _check_key(self) -> None:
        """Raise ``ConfigurationError`` when a key is required but missing. Default: never."""

    def _default_headers(self) -> dict[str, str]:
        return {}

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    def _error_mapper(self) -> ErrorMapper:
        return ErrorMapper(self.name, key_env=self.api_key_env)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Close the pooled connections opened on the running event loop."""
        await self._http.aclose()
