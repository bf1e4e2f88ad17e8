"""Ollama's native API: ``POST /api/chat`` (NDJSON stream), ``GET /api/tags``.

Translation only, through ``wire.ollama_chat``: ``Message``s become Ollama chat messages,
generation parameters go
to ``options`` (``max_tokens`` is ``num_predict``), ``keep_alive`` and
``format`` (a JSON schema for ``response_model``) are top-level. Each NDJSON
line of a stream becomes a ``StreamChunk``; the ``done`` line carries the
finish reason and the token counts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import AUTOMATIC_CACHE_PARAMS, Timeout
from abstractcore.core.errors import (
    ModelNotFoundError,
    ProviderConnectionError,
    ResponseFormatError,
    ServerError,
)
from abstractcore.core.types import (
    EmbeddingResponse,
    GenerateResponse,
    StreamChunk,
    Usage,
)
from abstractcore.features.tools.forced import ForcedKind
from abstractcore.providers.base import Request
from abstractcore.providers.http import HttpProvider
from abstractcore.transport.error_mapping import ErrorRule, ErrorTable
from abstractcore.wire.ollama_chat import (
    DEFAULT_PORT,
    LineReader,
    chat_to_response,
    host_url,
    is_done_line,
    is_error_line,
    request_body,
    shown_capabilities,
    think,
)

if TYPE_CHECKING:
    from abstractcore.features.structured import StructuredMode

__all__ = ["OLLAMA_ERRORS", "OllamaProvider"]

logger = logging.getLogger("abstractcore.ollama")


#: Ollama answers ``{"error": "..."}``; a missing model says how to pull it.
OLLAMA_ERRORS: ErrorTable = (
    ErrorRule(
        ModelNotFoundError,
        message=r"model.*not found|not found.*model",
        advice="Download it with `ollama pull {model}` (`ollama list` shows the models this server has).",
    ),
    ErrorRule(
        ServerError,
        status=(500, 502, 503, 504),
        advice="Ollama failed. Requests are retried automatically (retry_config=); a stream "
        "that had started is not. Try again; `ollama ps` and the server log show "
        "what the runner is doing.",
    ),
)


class OllamaProvider(HttpProvider):
    """``create_llm("ollama", model="qwen2.5-coder:7b")``; server from ``OLLAMA_HOST``.

    ``base_url`` / ``OLLAMA_HOST`` may be a URL or Ollama's ``host:port`` form
    (default ``http://localhost:11434``). Extra parameters: ``num_ctx``,
    ``top_k`` (in ``options``) and ``keep_alive`` (how long the server keeps
    the model loaded). ``unload()`` asks the server to free the model now.
    Ollama has no ``tool_choice``: tools are offered and the model decides
    (``tool_choice="none"`` leaves them out); a forced choice gets prompted
    tools, the call constrained by ``format``.
    """

    name: ClassVar[str] = "ollama"
    extra_params: ClassVar[frozenset[str]] = (
        frozenset({"num_ctx", "top_k", "keep_alive", "reasoning_effort", "thinking_budget", "reasoning"})
        | AUTOMATIC_CACHE_PARAMS
    )
    base_url_env: ClassVar[str | None] = "OLLAMA_HOST"
    default_base_url: ClassVar[str | None] = f"http://localhost:{DEFAULT_PORT}"
    default_scheme: ClassVar[str | None] = "http"
    # tools and images depend on the model (Ollama answers 400 for a model without them)
    #: ``prompt_caching``: Ollama keeps a prompt prefix in its KV cache between requests, but its
    #: replies do not say how much was reused (``prompt_eval_count`` only): cached_tokens stays 0.
    capabilities: Capabilities = Capabilities(
        structured_output=True, stream_usage=True, local=True, prompt_caching=True
    )
    error_table: ClassVar[ErrorTable] = OLLAMA_ERRORS
    #: No tool_choice in Ollama's API: a forced call is prompted, under ``format`` (its grammar).
    forced_choices: ClassVar[frozenset[ForcedKind]] = frozenset()
    connect_hint: ClassVar[str | None] = (
        "Is Ollama running? Start it with `ollama serve`, or point base_url= / OLLAMA_HOST at "
        "the machine that runs it"
    )

    # -- configuration ------------------------------------------------------------

    def _structured_modes(self, request: Request) -> tuple[StructuredMode, ...]:
        """``format`` = the JSON schema (constrained by Ollama's grammar), or the prompt.

        (No "tool": Ollama has no ``tool_choice``, so a call cannot be forced.)
        """
        return ("native", "prompt")

    def _parse_base_url(self, raw: str) -> str:
        return host_url(raw)

    def _normalise_base_url(self, url: str) -> str:
        for suffix in ("/api", "/v1"):  # the native API lives under /api; /v1 is the OpenAI one
            if url.endswith(suffix):
                return url[: -len(suffix)]
        return url

    # -- request ------------------------------------------------------------------

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        return request_body(
            request.model,
            request.messages,
            request.params,
            tools=request.tools,
            tool_choice=request.tool_choice,
            json_schema=request.json_schema,
            stream=stream,
        )

    def _bind(self, request: Request) -> Request:
        """The bound request, its reasoning control (``think``) checked before anything is sent."""
        bound = super()._bind(request)
        think(bound.params, self.name)
        return bound

    # -- hooks --------------------------------------------------------------------

    async def _complete(self, request: Request) -> GenerateResponse:
        data = await self._http.request_json(
            "POST",
            "api/chat",
            self._body(request, stream=False),
            model=request.model,
            timeout=request.timeout,
            extras=self._extras(request),
        )
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise ResponseFormatError(
                f"{self.name} reply has no message: {str(data)[:200]!r}",
                provider=self.name,
                model=request.model,
            )
        return chat_to_response(data, provider=self.name, model=request.model)

    async def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        reader = LineReader(request.model)
        final: dict[str, Any] = {}
        events = self._http.events(
            "api/chat",
            self._body(request, stream=True),
            model=request.model,
            timeout=request.timeout,
            extras=self._extras(request),
            framing="ndjson",
            is_error=is_error_line,
            is_last=is_done_line,
            end_name="its done line",
        )
        try:
            async for batch in events:
                for line in batch:
                    chunk = reader.on_line(line)
                    if chunk is not None:
                        yield chunk
                    if line.get("done"):
                        final = line
        finally:
            await events.aclose()
        yield reader.last_chunk(final)

    # -- lifecycle ----------------------------------------------------------------

    async def aunload(self) -> None:
        """Ask the server to unload the model now (``keep_alive: 0``), then close the pool.

        Nothing to do when the server is down or never had the model. The
        object stays usable: the next call loads the model again.
        """
        try:
            await self._http.request_json(
                "POST", "api/chat", {"model": self.model, "messages": [], "keep_alive": 0}, model=self.model
            )
        except (ProviderConnectionError, ModelNotFoundError) as exc:
            logger.debug("ollama unload of %s: nothing to unload (%s)", self.model, type(exc).__name__)
        finally:
            await self.aclose()

    async def _embed(
        self, texts: list[str], *, dimensions: int | None, timeout: Timeout
    ) -> EmbeddingResponse:
        """``POST /api/embed`` (Ollama normalises the vectors), in batches."""
        vectors: list[list[float]] = []
        usage = Usage()
        for start in range(0, len(texts), 256):
            body: dict[str, Any] = {"model": self.model, "input": texts[start : start + 256]}
            if dimensions is not None:
                body["dimensions"] = dimensions
            data = await self._http.request_json("POST", "api/embed", body, model=self.model, timeout=timeout)
            rows = data.get("embeddings") if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise ResponseFormatError(
                    f"{self.name} embed reply has no embeddings: {str(data)[:200]!r}",
                    provider=self.name,
                    model=self.model,
                )
            vectors += [[float(x) for x in row] for row in rows]
            usage = usage + Usage.of(data.get("prompt_eval_count"), 0)
        return EmbeddingResponse(vectors, usage, self.model, self.name)

    async def _fetch_capabilities(self) -> Capabilities:
        """From ``POST /api/show``: the model's ``capabilities`` (tools, vision, embedding) and context."""
        data = await self._http.request_json("POST", "api/show", {"model": self.model}, model=self.model)
        return self.capabilities.merged(**shown_capabilities(data), source="server")

    async def alist_models(self) -> list[str]:
        """Model names from ``GET /api/tags``."""
        data = await self._http.request_json("GET", "api/tags", model=self.model)
        models = data.get("models") if isinstance(data, dict) else None
        return [
            str(m.get("name") or m.get("model"))
            for m in (models or [])
            if isinstance(m, dict) and (m.get("name") or m.get("model"))
        ]
