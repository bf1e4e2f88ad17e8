"""Anthropic's Messages API (``POST /v1/messages``), plain and streamed.

Translation only, through ``wire.anthropic_messages``: the request body (turns and
blocks), the reply as a ``GenerateResponse``, each server-sent event of a stream as
``StreamChunk``s (``MessagesStream``).
Retries (429, 5xx including 529 "overloaded"), timeouts and error bodies are
handled by the transport; ``ANTHROPIC_ERRORS`` only says which error ``type``
is which class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthExceededError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from abstractcore.core.types import (
    GenerateResponse,
    StreamChunk,
)
from abstractcore.features.hosted_models import hosted_capabilities
from abstractcore.providers.base import Request
from abstractcore.providers.batches import BatchAPI
from abstractcore.providers.http import HttpProvider
from abstractcore.transport.error_mapping import ErrorRule, ErrorTable
from abstractcore.wire.anthropic_messages import (
    MessagesStream,
    cache_ttl,
    check_thinking,
    count_body,
    is_error_event,
    is_message_stop,
    message_to_response,
    request_body,
    thinking_budget,
)
from abstractcore.wire.anthropic_messages import batch as messages_batch
from abstractcore.wire.batches import BatchStatus, ResultLine

if TYPE_CHECKING:
    from abstractcore.features.structured import StructuredMode

__all__ = ["ANTHROPIC_ERRORS", "AnthropicProvider"]

#: The API version this module speaks (sent as ``anthropic-version``).
API_VERSION = "2023-06-01"
#: Models with native JSON output (``output_format``, beta header below); others get a forced tool.
NATIVE_JSON_MODELS = ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1", "claude-opus-4-5")
STRUCTURED_OUTPUTS_BETA = "structured-outputs-2025-11-13"

_CONTEXT = r"prompt is too long|exceed context limit|context window|too many total text bytes"
_OVERLOADED = (
    "Anthropic is temporarily overloaded. Requests are retried automatically (raise "
    "retry_config=RetryConfig(max_attempts=...)); a stream that had started is not: "
    "try again in a moment."
)

#: Anthropic's error ``type`` -> class (the status alone cannot tell e.g. 529 "overloaded" from
#: 500), the same for an HTTP reply and for an ``error`` event inside a stream.
ANTHROPIC_ERRORS: ErrorTable = (
    ErrorRule(
        ContextLengthExceededError, type=("invalid_request_error", "request_too_large"), message=_CONTEXT
    ),
    ErrorRule(BadRequestError, type=("invalid_request_error", "request_too_large")),
    ErrorRule(AuthenticationError, type="authentication_error"),
    ErrorRule(
        PermissionDeniedError,
        type="billing_error",
        advice="Check the billing settings and credit balance of your Anthropic account.",
    ),
    ErrorRule(PermissionDeniedError, type="permission_error"),
    ErrorRule(
        ModelNotFoundError,
        type="not_found_error",
        message=r"model",
        advice="Check the model name {model!r} (e.g. 'claude-sonnet-4-5' or "
        "'claude-3-5-haiku-latest'); list_models() shows the models your key can use.",
    ),
    ErrorRule(RateLimitError, type="rate_limit_error"),
    ErrorRule(ServerError, type="overloaded_error", advice=_OVERLOADED),
    ErrorRule(ServerError, type=("api_error", "timeout_error")),
)


class AnthropicProvider(HttpProvider):
    """``create_llm("anthropic", model="claude-sonnet-4-5")``; key from ``ANTHROPIC_API_KEY``.

    ``base_url`` (or ``ANTHROPIC_BASE_URL``) may be given with or without the
    trailing ``/v1``; a server other than api.anthropic.com may go without a
    key. ``max_tokens`` defaults to 4096 (the API requires it). ``seed``,
    ``presence_penalty`` and ``frequency_penalty`` do not exist in this API and
    are not sent. ``response_model`` uses the native JSON output
    (``output_format`` with the structured-outputs beta header) on the models
    that have it (``NATIVE_JSON_MODELS``) and a forced tool call on the others.

    Extended thinking: ``reasoning_effort`` ("minimal" 1024, "low" 2048, "medium" 8192, "high"
    16384 tokens), ``thinking_budget=N`` or ``reasoning=True`` (medium) send ``thinking:
    {"type": "enabled", "budget_tokens": N}``, ``max_tokens`` then defaulting to N + 4096;
    ``reasoning=False`` / effort "none" send none. What the API refuses with thinking
    (``temperature`` other than 1, ``top_k``, a forced ``tool_choice``, a budget not below
    ``max_tokens``) is a ``ConfigurationError`` before sending; a ``response_model`` then uses
    native JSON output, or the prompt, never the forced tool. The thinking comes back in
    ``reasoning`` / ``reasoning_parts`` (streamed as ``StreamChunk.reasoning``) and is sent back,
    signatures unchanged, with the assistant turns of ``run``, ``Session`` and passed history.

    Prompt caching: ``cache=True`` places ``cache_control`` breakpoints on the last tool, the
    system prompt and the conversation (``wire.anthropic_messages.caching``), ``cache_ttl="1h"``
    for the one-hour cache ("5m" default). ``usage.input_tokens`` counts the whole prompt,
    ``usage.cached_tokens`` the part read from the cache and ``usage.cache_write_tokens`` the
    part written to it. ``count_tokens`` asks ``POST /v1/messages/count_tokens`` (exact).
    """

    name: ClassVar[str] = "anthropic"
    default_model: ClassVar[str | None] = "claude-haiku-4-5"
    extra_params: ClassVar[frozenset[str]] = frozenset(
        {"top_k", "reasoning_effort", "thinking_budget", "reasoning", "cache", "cache_ttl"}
    )
    key_required_hosts: ClassVar[tuple[str, ...]] = ("anthropic.com",)
    key_example: ClassVar[str] = "sk-ant-..."
    display_name: ClassVar[str] = "Anthropic"
    api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    base_url_env: ClassVar[str | None] = "ANTHROPIC_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://api.anthropic.com"
    capabilities: Capabilities = Capabilities(
        tools=True, structured_output=True, vision=True, stream_usage=True
    )
    error_table: ClassVar[ErrorTable] = ANTHROPIC_ERRORS

    # -- configuration ------------------------------------------------------------

    def _bind(self, request: Request) -> Request:
        """The bound request, refused here (before any I/O, also for a stream) when its thinking
        settings break a rule of the API."""
        bound = super()._bind(request)
        check_thinking(bound.model, bound.params, bound.tool_choice if bound.tools else None)
        cache_ttl(bound.params)
        return bound

    def _normalise_base_url(self, url: str) -> str:
        return url[:-3] if url.endswith("/v1") else url

    def _default_headers(self) -> dict[str, str]:
        return {"anthropic-version": API_VERSION}

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    # -- request ------------------------------------------------------------------

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        native = request.structured_mode == "native" and request.output is not None
        return request_body(
            request.model,
            request.messages,
            request.params,
            system=request.system,
            tools=request.tools,
            tool_choice=request.tool_choice,
            output_schema=request.output.strict_schema if native and request.output else None,
            stream=stream,
        )

    async def _fetch_capabilities(self) -> Capabilities:
        """From the table of hosted models (the Models API does not say what a model can do)."""
        return hosted_capabilities("anthropic", self.model, self.capabilities)

    def _structured_modes(self, request: Request) -> tuple[StructuredMode, ...]:
        """Native JSON output on the models that have it (and a schema it takes), else a forced
        tool; with thinking on (the API refuses a forced tool then) native output or the prompt."""
        native = request.model.startswith(NATIVE_JSON_MODELS) and (
            request.output is None or request.output.strict_schema is not None
        )
        modes: tuple[StructuredMode, ...] = ("native", "tool", "prompt") if native else ("tool", "prompt")
        if thinking_budget(request.params) is not None:
            modes = tuple(m for m in modes if m != "tool")
        return modes

    def _request_headers(self, request: Request) -> dict[str, str] | None:
        return {"anthropic-beta": STRUCTURED_OUTPUTS_BETA} if request.structured_mode == "native" else None

    # -- reply --------------------------------------------------------------------

    def _response(self, data: Any, request: Request) -> GenerateResponse:
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise ResponseFormatError(
                f"{self.name} reply has no content: {str(data)[:200]!r}",
                provider=self.name,
                model=request.model,
            )
        return message_to_response(data, provider=self.name, model=request.model)

    # -- hooks --------------------------------------------------------------------

    async def _complete(self, request: Request) -> GenerateResponse:
        data = await self._http.request_json(
            "POST",
            "v1/messages",
            self._body(request, stream=False),
            model=request.model,
            timeout=request.timeout,
            extras=self._extras(request),
            headers=self._request_headers(request),
        )
        return self._response(data, request)

    async def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        state = MessagesStream(request.model)
        events = self._http.events(
            "v1/messages",
            self._body(request, stream=True),
            model=request.model,
            timeout=request.timeout,
            extras=self._extras(request),
            is_error=is_error_event,
            is_last=is_message_stop,
            end_name="the message_stop event",
            headers=self._request_headers(request),
        )
        try:
            async for batch in events:
                for data in batch:
                    for chunk in state.on_event(data):
                        yield chunk
        finally:
            await events.aclose()
        yield state.last_chunk()

    async def _count_tokens(self, request: Request) -> int:
        """The prompt's tokens from ``POST /v1/messages/count_tokens`` (Anthropic's own count)."""
        data = await self._http.request_json(
            "POST",
            "v1/messages/count_tokens",
            count_body(self._body(request, stream=False)),
            model=request.model,
            timeout=request.timeout,
            extras=self._extras(request),
            headers=self._request_headers(request),
        )
        if not isinstance(data, dict) or not isinstance(data.get("input_tokens"), int):
            raise ResponseFormatError(
                f"{self.name} token count has no input_tokens: {str(data)[:200]!r}",
                provider=self.name,
                model=request.model,
            )
        return int(data["input_tokens"])

    def _batch_api(self) -> BatchAPI:
        """Anthropic's Message Batches API."""
        return AnthropicBatches(self)

    async def alist_models(self) -> list[str]:
        """Model ids from ``GET /v1/models``."""
        ids: list[str] = []
        path = "v1/models?limit=1000"
        while True:
            data = await self._http.request_json("GET", path, model=self.model)
            if not isinstance(data, dict):
                raise ResponseFormatError(
                    f"{self.name} model list is not an object: {str(data)[:200]!r}",
                    provider=self.name,
                    model=self.model,
                )
            ids += [str(m["id"]) for m in data.get("data") or [] if isinstance(m, dict) and m.get("id")]
            if not data.get("has_more") or not data.get("last_id"):
                return ids
            path = f"v1/models?limit=1000&after_id={quote(str(data['last_id']))}"


class AnthropicBatches(BatchAPI):
    """Anthropic's Message Batches API: ``/v1/messages/batches``, results as JSONL."""

    limits = messages_batch.LIMITS

    def encode(self, index: int, request: Request) -> bytes:
        return messages_batch.request_entry(index, self.body(request))

    async def create(self, encoded: list[bytes], requests: Sequence[Request]) -> BatchStatus:
        # native JSON output needs its beta header: one header for the whole batch
        native = any(r.structured_mode == "native" and r.output is not None for r in requests)
        data = await self._http.request_json(
            "POST",
            "v1/messages/batches",
            messages_batch.create_body(encoded),
            model=self.provider.model,
            headers={"anthropic-beta": STRUCTURED_OUTPUTS_BETA} if native else None,
        )
        return self.checked(data, messages_batch.status_of)

    async def status(self, batch_id: str) -> BatchStatus:
        path = f"v1/messages/batches/{quote(batch_id)}"
        data = await self._http.request_json("GET", path, model=self.provider.model)
        return self.checked(data, messages_batch.status_of)

    async def cancel(self, batch_id: str) -> BatchStatus:
        path = f"v1/messages/batches/{quote(batch_id)}/cancel"
        data = await self._http.request_json("POST", path, model=self.provider.model)
        return self.checked(data, messages_batch.status_of)

    def result_urls(self, status: BatchStatus) -> list[str]:
        return [status.results] if status.results else []

    def result_line(self, data: Any) -> ResultLine | None:
        return messages_batch.result_line(data)
