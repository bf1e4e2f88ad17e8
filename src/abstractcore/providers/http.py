"""``HttpProvider``: what every HTTP provider shares (key, base URL, the pooled client).

The API key is held as a ``Secret`` (masked in every repr, str and ``vars()``)
and so is the header made of it: only the transport reveals it, per request. A provider whose hosted
service needs a key names the hosts (``key_required_hosts``); a missing key
for such a host fails in ``create_llm``, before any request.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar
from urllib.parse import urlsplit

from abstractcore.core.config import check_base_url
from abstractcore.core.errors import ConfigurationError
from abstractcore.core.secrets import Secret
from abstractcore.features.request import Request
from abstractcore.providers.base import AsyncProvider
from abstractcore.transport.error_mapping import ErrorMapper, ErrorTable
from abstractcore.transport.http import HttpClient, RequestExtras

__all__ = ["HttpProvider"]


class HttpProvider(AsyncProvider):
    """An ``AsyncProvider`` that talks HTTP through one ``HttpClient``."""

    options: ClassVar[frozenset[str]] = frozenset(
        {"api_key", "base_url", "headers", "max_connections", "http_client"}
    )
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
    #: Hosts (a host or a parent domain) whose service needs a key: missing, it fails at creation.
    key_required_hosts: ClassVar[tuple[str, ...]] = ()
    #: What a key looks like, for the message when it is missing (e.g. "sk-...").
    key_example: ClassVar[str] = "..."
    #: The service's name in messages.
    display_name: ClassVar[str] = ""
    #: How this provider's error replies map to the error tree (before the common rules).
    error_table: ClassVar[ErrorTable] = ()

    def _configure(self, options: dict[str, Any]) -> None:
        key = options.get("api_key")
        if key is None and self.api_key_env:
            key = os.environ.get(self.api_key_env) or None
        if isinstance(key, Secret):
            key = key.reveal()
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise ConfigurationError("api_key must be a non-empty string.")
        self._api_key: Secret | None = Secret(key) if key is not None else None
        url = options.get("base_url")
        if url is None and self.base_url_env:
            url = os.environ.get(self.base_url_env) or None
        url = url or self.default_base_url
        if url is None:
            env = f" or set {self.base_url_env}" if self.base_url_env else ""
            raise ConfigurationError(f"{self.name} needs a server: pass base_url='http://host:port/v1'{env}.")
        if isinstance(url, str) and url.strip():
            url = self._parse_base_url(url.strip())
        checked = check_base_url(url, default_scheme=self.default_scheme)
        self.base_url: str = self._normalise_base_url(checked)
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
            provider=self.name,
            base_url=self.base_url,
            headers={**self._default_headers(), **headers},
            secret_headers={
                name: Secret(value) for name, value in self._auth_headers(self._api_key.reveal()).items()
            }
            if self._api_key
            else {},
            secrets=(self._api_key,) if self._api_key else (),
            timeout=self.timeout,
            retry=self.retry_config,
            max_connections=max_connections,
            httpx_client=client,
            error_mapper=self._error_mapper(),
            connect_hint=self.connect_hint,
        )

    def _parse_base_url(self, raw: str) -> str:
        """Turn a provider-specific address form into a URL (Ollama's ``host:port``). Default: as is."""
        return raw

    def _normalise_base_url(self, url: str) -> str:
        """Adjust a validated base URL (e.g. add ``/v1``). Default: unchanged."""
        return url

    def _check_key(self) -> None:
        """Raise ``ConfigurationError`` when the server is one of ``key_required_hosts`` and no key is set."""
        if self._api_key is not None or not self.key_required_hosts:
            return
        host = (urlsplit(self.base_url).hostname or "").lower()
        if any(host == h or host.endswith("." + h) for h in self.key_required_hosts):
            env = f"set {self.api_key_env} or " if self.api_key_env else ""
            raise ConfigurationError(
                f"{self.display_name or self.name} needs an API key: {env}pass "
                f"api_key='{self.key_example}'. (A compatible server elsewhere needs "
                "base_url=... and may go without a key.)"
            )

    def _default_headers(self) -> dict[str, str]:
        return {}

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    def _error_mapper(self) -> ErrorMapper:
        return ErrorMapper(self.name, table=self.error_table, key_env=self.api_key_env)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    @staticmethod
    def _extras(request: Request) -> RequestExtras | None:
        """The call's ``extra_body``/``extra_headers``/``extra_query``, for the transport to merge."""
        if not (request.extra_body or request.extra_headers or request.extra_query):
            return None
        return RequestExtras(request.extra_body, request.extra_headers, request.extra_query)

    async def aclose(self) -> None:
        """Close the pooled connections opened on the running event loop."""
        await self._http.aclose()
