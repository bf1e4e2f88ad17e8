"""OpenAI at api.openai.com or an OpenAI-style base URL: Chat Completions (the default) or, with
``api="responses"``, the Responses API (``POST /v1/responses``, through ``wire.openai_responses``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import AUTOMATIC_CACHE_PARAMS
from abstractcore.core.errors import (
    BadRequestError,
    ConfigurationError,
    ProviderStatusError,
    ResponseFormatError,
)
from abstractcore.core.types import GenerateResponse, StreamChunk
from abstractcore.features.hosted_models import hosted_capabilities
from abstractcore.features.request import Request
from abstractcore.providers.batches import BatchAPI
from abstractcore.providers.openai_compatible import (
    LLAMA_CPP_ERRORS,
    REASONING_PARAMS,
    OpenAICompatibleProvider,
)
from abstractcore.transport.error_mapping import ErrorRule, ErrorTable
from abstractcore.wire import openai_responses as responses
from abstractcore.wire.batches import BatchStatus, ResultLine
from abstractcore.wire.openai_chat import batch as chat_batch
from abstractcore.wire.openai_chat.reasoning import Dialect

__all__ = ["APIS", "RESPONSES_ERRORS", "RESPONSES_PARAMS", "OpenAIProvider"]

#: The APIs ``api=`` chooses from.
APIS = ("chat", "responses")
#: The call parameters only the Responses API takes.
RESPONSES_PARAMS = frozenset({"store", "previous_response_id"})
#: The ``code``s of a failed response (``response.failed``'s ``error``) that are the request's
#: fault: the rest (``server_error``, ...) are server errors, ``rate_limit_exceeded`` a rate limit.
_BAD_INPUT_CODES = (
    "invalid_prompt",
    "invalid_image",
    "invalid_image_format",
    "invalid_base64_image",
    "invalid_image_url",
    "image_too_large",
    "image_too_small",
    "image_parse_error",
    "image_content_policy_violation",
    "invalid_image_mode",
    "image_file_too_large",
    "unsupported_image_media_type",
    "empty_image_file",
    "failed_to_download_image",
    "image_file_not_found",
)
#: How a failed response's error or a stream's ``error`` event maps (before the common rules).
RESPONSES_ERRORS: ErrorTable = (ErrorRule(BadRequestError, code=_BAD_INPUT_CODES),)


class OpenAIProvider(OpenAICompatibleProvider):
    """``create_llm("openai", model="gpt-4o-mini")``; key from ``OPENAI_API_KEY``.

    ``api="responses"`` speaks the Responses API instead of Chat Completions: the same calls
    (tools, ``response_model``, streams, ``run``, sessions), plus the reasoning summaries of
    reasoning models in ``reasoning`` and their encrypted reasoning items sent back on the next
    turn (``store=False``, the default, keeps nothing on OpenAI's side); ``store=True`` and
    ``previous_response_id="resp_..."`` continue a stored response.
    """

    name: ClassVar[str] = "openai"
    default_model: ClassVar[str | None] = "gpt-4o-mini"
    key_required_hosts: ClassVar[tuple[str, ...]] = ("openai.com",)
    key_example: ClassVar[str] = "sk-..."
    display_name: ClassVar[str] = "OpenAI"
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    options: ClassVar[frozenset[str]] = OpenAICompatibleProvider.options | {"api"}
    extra_params: ClassVar[frozenset[str]] = REASONING_PARAMS | AUTOMATIC_CACHE_PARAMS | RESPONSES_PARAMS
    error_table: ClassVar[ErrorTable] = LLAMA_CPP_ERRORS + RESPONSES_ERRORS
    reasoning_dialect: ClassVar[Dialect] = "openai"
    #: OpenAI's models give no thinking text in Chat Completions: an answer starting "<think>" is the answer.
    think_tags: ClassVar[bool] = False
    echo_reasoning: ClassVar[bool] = False
    # OpenAI's reasoning models (o-series, GPT-5) refuse max_tokens; all its chat models take this
    max_tokens_field: ClassVar[str] = "max_completion_tokens"

    def _configure(self, options: dict[str, Any]) -> None:
        api = options.pop("api", "chat")
        if api not in APIS:
            raise ConfigurationError(
                f"api= must be one of {', '.join(map(repr, APIS))} (Chat Completions or the Responses "
                f"API); got {api!r}."
            )
        self.api: str = api
        super()._configure(options)
        if not self._is_openai():  # another server behind base_url: many know only max_tokens
            self._max_tokens_field = "max_tokens"

    def _is_openai(self) -> bool:
        host = (urlsplit(self.base_url).hostname or "").lower()
        return any(host == h or host.endswith("." + h) for h in self.key_required_hosts)

    def __repr__(self) -> str:
        api = ", api='responses'" if self.api == "responses" else ""
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r}{api})"

    capabilities: Capabilities = Capabilities(
        tools=True, structured_output=True, stream_usage=True, prompt_caching=True
    )

    async def _fetch_capabilities(self) -> Capabilities:
        """From the table of hosted models (OpenAI's ``/models`` does not say what a model can do)."""
        return hosted_capabilities("openai", self.model, self.capabilities)

    # -- the API chosen -------------------------------------------------------------------------

    def _bind(self, request: Request) -> Request:
        """The bound request; what the chosen API cannot send is refused here, before any I/O."""
        bound = super()._bind(request)
        if self.api == "responses":
            responses.check_params(bound.params, self.name)
            responses.reasoning_field(bound.params, self.name)
        else:
            given = sorted(name for name in RESPONSES_PARAMS if bound.params.get(name) is not None)
            if given:
                raise ConfigurationError(
                    f"{', '.join(given)} belong to the Responses API: create_llm('openai', "
                    "api='responses', ...) to use them."
                )
        return bound

    def _responses_body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        native = request.output is not None and request.structured_mode == "native"
        return responses.request_body(
            request.model,
            request.messages,
            request.params,
            instructions=request.system,
            tools=request.tools,
            tool_choice=request.tool_choice,
            output=request.output if native else None,
            stream=stream,
            provider=self.name,
        )

    def _failed(self, response: Any, request: Request) -> ProviderStatusError | None:
        failure = responses.failure_of(response)
        return self._http.errors.to_error(None, {}, failure, model=request.model) if failure else None

    async def _complete(self, request: Request) -> GenerateResponse:
        if self.api != "responses":
            return await super()._complete(request)
        data = await self._http.request_json(
            "POST",
            "responses",
            self._responses_body(request, stream=False),
            model=request.model,
            timeout=request.timeout,
            extras=self._extras(request),
        )
        error = self._failed(data, request)
        if error is not None:
            raise error
        return responses.reply_to_response(data, provider=self.name, model=request.model)

    def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        if self.api != "responses":
            return super()._stream(request)
        return self._responses_stream(request)

    async def _responses_stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        state = responses.ResponsesStream(request.model)
        events = self._http.events(
            "responses",
            self._responses_body(request, stream=True),
            model=request.model,
            timeout=request.timeout,
            extras=self._extras(request),
            is_error=responses.is_error_event,
            is_last=responses.is_last_event,
            end_name="the response.completed event",
        )
        try:
            async for batch in events:
                for data in batch:
                    for chunk in state.on_event(data):
                        yield chunk
        finally:
            await events.aclose()
        error = self._failed(state.response, request)
        if error is not None:
            raise error
        yield state.last_chunk()

    def _batch_api(self) -> BatchAPI:
        """OpenAI's Batch API over Chat Completions (files + batches)."""
        if self.api == "responses":
            raise ConfigurationError(
                "Provider batches send Chat Completions bodies: create_llm('openai', api='chat') for "
                "abatch(via='provider'), or abatch without via= on the Responses API."
            )
        return OpenAIBatches(self)

    async def _count_tokens(self, request: Request, *, ask: bool = False) -> int | None:
        """Chat Completions: as the compatible servers count. Responses: OpenAI's
        ``POST /v1/responses/input_tokens`` (None where the server has no such endpoint)."""
        if self.api != "responses":
            return await super()._count_tokens(request, ask=ask)
        body = self._responses_body(request, stream=False)
        counted = {key: body[key] for key in COUNT_FIELDS if key in body}
        try:
            data = await self._http.request_json(
                "POST", "responses/input_tokens", counted, model=request.model, timeout=request.timeout
            )
        except ProviderStatusError as exc:
            if exc.status_code in (404, 405, 501):
                return None
            raise
        found = data.get("input_tokens") if isinstance(data, dict) else None
        return found if isinstance(found, int) else None


#: The fields ``POST /v1/responses/input_tokens`` takes.
COUNT_FIELDS = (
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "reasoning",
    "previous_response_id",
)


class OpenAIBatches(BatchAPI):
    """OpenAI's Batch API: the JSONL input uploaded to ``/v1/files``, then ``/v1/batches``."""

    limits = chat_batch.LIMITS

    def encode(self, index: int, request: Request) -> bytes:
        return chat_batch.request_line(index, self.body(request))

    async def create(self, encoded: list[bytes], requests: Sequence[Request]) -> BatchStatus:
        form, content_type = chat_batch.upload_form(b"".join(encoded))
        model = self.provider.model
        uploaded = await self._http.request_json(
            "POST", "files", form, model=model, headers={"content-type": content_type}
        )
        file_id = uploaded.get("id") if isinstance(uploaded, dict) else None
        if not isinstance(file_id, str):
            raise ResponseFormatError(
                f"{self.provider.name} file upload reply has no id: {str(uploaded)[:200]!r}",
                provider=self.provider.name,
                model=model,
            )
        data = await self._http.request_json("POST", "batches", chat_batch.create_body(file_id), model=model)
        return self.checked(data, chat_batch.status_of)

    async def status(self, batch_id: str) -> BatchStatus:
        data = await self._http.request_json("GET", f"batches/{quote(batch_id)}", model=self.provider.model)
        return self.checked(data, chat_batch.status_of)

    async def cancel(self, batch_id: str) -> BatchStatus:
        path = f"batches/{quote(batch_id)}/cancel"
        data = await self._http.request_json("POST", path, model=self.provider.model)
        return self.checked(data, chat_batch.status_of)

    def result_urls(self, status: BatchStatus) -> list[str]:
        files = (status.results, status.errors_file)
        return [f"files/{quote(file)}/content" for file in files if file]

    def result_line(self, data: Any) -> ResultLine | None:
        return chat_batch.result_line(data)
