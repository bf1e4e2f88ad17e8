"""The pipeline below every provider's public methods: a built ``Request`` enters ``_send`` or
``_send_stream``, is bound to the provider (model, checked parameters over the instance defaults,
timeout) and answered by the strategies of ``features/`` (tools, structured output) over the
provider's hooks (``_complete``, ``_stream``, ``_structured_modes``, ...).

The public methods (``providers/base.py``'s ``AsyncProvider``) build the ``Request``; the router,
the tool loop, sessions, batches and the server build theirs and call ``_send`` directly.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import GENERATION_PARAMS, Timeout, validate_params
from abstractcore.core.errors import ConfigurationError
from abstractcore.core.retry import RetryConfig
from abstractcore.core.types import EmbeddingResponse, GenerateResponse, StreamChunk
from abstractcore.features.cost import PRICED_PROVIDERS, price_response, priced_stream
from abstractcore.features.request import Request
from abstractcore.features.telemetry import state as _telemetry

if TYPE_CHECKING:  # structured output and tools: imported by the first request that has them
    from abstractcore.features.structured import StructuredMode
    from abstractcore.features.tools.forced import ForcedKind

if TYPE_CHECKING:
    from abstractcore.providers.batches import BatchAPI

__all__ = ["BASE_OPTIONS", "ProviderPipeline"]

#: Options every provider accepts at construction (besides generation parameters).
BASE_OPTIONS = frozenset({"retry_config"})


class ProviderPipeline(abc.ABC):
    """What every provider shares below its public methods: its settings, the pipeline a built
    ``Request`` enters (``_send``/``_send_stream``) and the hooks a provider writes."""

    #: The name ``create_llm`` knows this provider by.
    name: ClassVar[str] = ""
    #: The model used when none is given (None: a model is required).
    default_model: ClassVar[str | None] = None
    #: Generation parameters this provider accepts beyond the common ones.
    extra_params: ClassVar[frozenset[str]] = frozenset()
    #: Construction options this provider accepts (api_key, base_url, ...).
    options: ClassVar[frozenset[str]] = frozenset()
    capabilities: Capabilities = Capabilities()
    #: The forced tool choices this provider's native tools honour ("required": some tool must be
    #: called; "named": that tool). One it does not honour gets prompted tools, the call under the
    #: provider's grammar; so does one the server is seen to ignore (an answer without a call).
    forced_choices: ClassVar[frozenset[ForcedKind]] = frozenset({"required", "named"})

    def __init__(self, model: str | None = None, **config: Any) -> None:
        params = self._params = GENERATION_PARAMS | self.extra_params
        validate_params(config, params | BASE_OPTIONS | self.options, where=f"create_llm({self.name!r})")
        model = model or self.default_model
        if not model:
            raise ConfigurationError(f"{self.name} needs a model: create_llm({self.name!r}, model='...').")
        if not isinstance(model, str):
            raise ConfigurationError(f"model must be a string; got {model!r}.")
        self.model: str = model
        retry = config.pop("retry_config", None)
        if retry is not None and not isinstance(retry, RetryConfig):
            raise ConfigurationError(f"retry_config must be a RetryConfig(...); got {type(retry).__name__}.")
        self.retry_config: RetryConfig = retry or RetryConfig()
        self.timeout: Timeout = Timeout.of(config.pop("timeout")) if "timeout" in config else Timeout()
        self.defaults: dict[str, Any] = {k: config.pop(k) for k in list(config) if k in params}
        self._live_capabilities: Capabilities | None = None
        #: Forced choices the server was seen to ignore (learned per instance, see ``_generate``).
        self._ignored_choices: set[ForcedKind] = set()
        self._configure(config)

    def _configure(self, options: dict[str, Any]) -> None:
        """Take the construction options (``self.options``). Called once by ``__init__``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"

    # -- the pipeline: every call, built once, enters here --------------------------------------

    async def _send(self, request: Request) -> Any:
        """Answer ``request``: a ``GenerateResponse``, or the validated value of its ``output``.

        The one entry point below the public methods: the router, the tool loop, sessions,
        batches and the server hand their built ``Request`` here. With tracing on
        (``abstractcore.instrument()``) the call is one span."""
        request = self._bind(request)
        tracing = _telemetry.active
        if tracing is not None:
            return await tracing.send(self, request, self._send_untraced)
        return await self._send_untraced(request)

    async def _send_untraced(self, request: Request) -> Any:
        """``_send`` of a bound ``request``, untraced."""
        output = request.output
        if output is None:
            if request.tools:
                from abstractcore.features.tools.strategy import generate

                response = await generate(self, request)
            else:
                response = await self._complete(request)
            if self.name in PRICED_PROVIDERS:
                price_response(response, self.name, response.model or request.model)
            return response
        from abstractcore.features.structured_strategy import (
            structured_answer,
            structured_request,
            structured_text,
        )

        request = structured_request(self, request, output, request.structured_mode)
        if request.output_as_text:  # the server's JSON answer: the text, with usage and finish
            return await structured_text(self, request, output, request.max_retries)
        return await structured_answer(self, request, output, request.max_retries)

    def _send_stream(self, request: Request) -> AsyncIterator[Any]:
        """Stream ``request`` (partial values of its ``output`` when it has one); bad arguments
        raise here, before the iterator is returned. With tracing on the stream is one span, from
        its first read to its end."""
        request = self._bind(request)
        tracing = _telemetry.active
        if tracing is not None:
            return tracing.stream(self, request, self._stream_untraced(request))
        return self._stream_untraced(request)

    def _stream_untraced(self, request: Request) -> AsyncIterator[Any]:
        """``_send_stream`` of a bound ``request``, untraced."""
        output = request.output
        if output is None:
            if request.tools:
                from abstractcore.features.tools.strategy import tool_stream

                chunks = tool_stream(self, request)
            else:
                chunks = self._stream(request)
            if self.name in PRICED_PROVIDERS:
                return priced_stream(chunks, self.name, request.model or self.model)
            return chunks
        from abstractcore.features.structured_strategy import (
            structured_request,
            structured_stream,
            structured_text_stream,
        )

        constrained = structured_request(self, request, output, request.structured_mode)
        if request.output_as_text:
            return structured_text_stream(self, constrained, output)
        return structured_stream(self, constrained, output)

    async def _count(self, request: Request) -> int:
        """``acount_tokens`` of a built ``request``: counted as it is sent (its structured-output
        constraint applied, its tools prompted where the model ignores them)."""
        request = await self._prepared(request)
        count = await self._count_tokens(request)
        if count is None:
            raise ConfigurationError(
                f"{self.name} (model {self.model!r}) cannot count tokens before answering; the "
                "answer's usage has the count."
            )
        return count

    async def _prepared(self, request: Request) -> Request:
        """``request`` as one attempt reaches the hooks: bound, its structured-output constraint
        applied, its tools prompted where the model ignores them (what ``_count`` counts and a
        provider batch sends per item)."""
        request = self._bind(request)
        if request.output is not None:
            from abstractcore.features.structured_strategy import structured_request

            request = structured_request(self, request, request.output, request.structured_mode)
        if request.tools:
            from abstractcore.features.tools.strategy import prompted_request, tools_prompted

            if await tools_prompted(self, request):
                request = prompted_request(self, request)
        return request

    def _batch_api(self) -> BatchAPI | None:
        """This provider's batch API (``providers/batches.py``); None: it has none."""
        return None

    def _bind(self, request: Request) -> Request:
        """``request`` for this provider: its model, the call's parameters checked against the
        ones it accepts and merged over its defaults, the timeout resolved. A bound request is
        returned as it is."""
        if request.bound:
            return request
        params = request.params
        if params:
            validate_params(params, self._params, where=f"{self.name}.generate()")
            merged = {**self.defaults, **{k: v for k, v in params.items() if v is not None}}
        else:
            merged = dict(self.defaults)
        merged.pop("timeout", None)
        # an explicit timeout=None on the call means "no limit", not "the default"
        timeout = Timeout.of(params["timeout"]) if "timeout" in params else self.timeout
        self._check_extras(request)
        return request.copy_with(model=self.model, params=merged, timeout=timeout)

    def _check_extras(self, request: Request) -> None:
        """Refuse ``extra_body``/``extra_headers``/``extra_query`` this provider cannot send
        (default: all are sent as they are)."""

    # -- provider hooks ---------------------------------------------------------

    @abc.abstractmethod
    async def acapabilities(self) -> Capabilities:
        """What this provider and its model can do (the public ``AsyncProvider.acapabilities``;
        the tool strategy reads it)."""

    @abc.abstractmethod
    async def _complete(self, request: Request) -> GenerateResponse:
        """Send ``request`` and return the whole answer."""

    @abc.abstractmethod
    def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """Send ``request`` and yield the answer as it is produced."""

    async def _count_tokens(self, request: Request) -> int | None:
        """The input tokens of ``request`` as the back end counts them (None: it cannot)."""
        return None

    async def _fetch_capabilities(self) -> Capabilities:
        """Ask the server what the model can do (the provider's defaults when it cannot say)."""
        return self.capabilities

    def _structured_modes(self, request: Request) -> tuple[StructuredMode, ...]:
        """The structured-output modes this provider can apply, the default first."""
        return ("prompt",)

    async def _embed(
        self, texts: list[str], *, dimensions: int | None, timeout: Timeout
    ) -> EmbeddingResponse:
        """The provider's embeddings (default: this provider has none)."""
        raise ConfigurationError(
            f"{self.name} has no embeddings API; use openai, ollama, lmstudio, vllm, an "
            "openai-compatible server with /v1/embeddings, or huggingface (in process)."
        )
