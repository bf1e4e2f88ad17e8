"""``AsyncProvider``: the one implementation behind every provider.

``agenerate`` / ``astream`` normalise input (prompt, messages, system prompt,
media, tools, parameters merged over the instance defaults), apply the
structured-output strategy and call the provider's two hooks, ``_complete``
and ``_stream``. The blocking twins (``generate``, ``stream``, ...) are
generated from this file by ``scripts/gen_sync.py`` into ``_sync.py``.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal, TypeVar, overload

from typing_extensions import Unpack

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import GENERATION_PARAMS, Timeout, validate_params
from abstractcore.core.errors import ConfigurationError, ProviderError
from abstractcore.core.retry import RetryConfig
from abstractcore.core.types import (
    EmbeddingResponse,
    GenerateResponse,
    StreamChunk,
)
from abstractcore.features.cost import PRICED_PROVIDERS, cost_of
from abstractcore.features.request import CallKwargs, Request, build_request
from abstractcore.features.structured import (
    StructuredMode,
)
from abstractcore.features.structured_strategy import (
    structured_answer,
    structured_request,
    structured_stream,
    structured_text,
    structured_text_stream,
)
from abstractcore.features.tools.forced import ForcedKind
from abstractcore.features.tools.strategy import generate, prompted_request, tool_stream, tools_prompted

__all__ = ["AsyncProvider", "Request"]

T = TypeVar("T")

#: Options every provider accepts at construction (besides generation parameters).
BASE_OPTIONS = frozenset({"retry_config"})


class AsyncProvider(abc.ABC):
    """Base of every provider. Subclasses write ``_complete`` and ``_stream``."""

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

    # -- public API (the sync twins are generated from these) -------------------

    @overload
    async def agenerate(
        self,
        prompt: str | None = None,
        *,
        response_model: None = None,
        stream: Literal[False] = False,
        **kwargs: Unpack[CallKwargs],
    ) -> GenerateResponse: ...

    @overload
    async def agenerate(
        self,
        prompt: str | None = None,
        *,
        response_model: type[T],
        stream: Literal[False] = False,
        **kwargs: Unpack[CallKwargs],
    ) -> T: ...

    @overload
    async def agenerate(
        self,
        prompt: str | None = None,
        *,
        response_model: None = None,
        stream: Literal[True],
        **kwargs: Unpack[CallKwargs],
    ) -> AsyncIterator[StreamChunk]: ...

    @overload
    async def agenerate(
        self,
        prompt: str | None = None,
        *,
        response_model: Any = None,
        stream: bool = False,
        **kwargs: Unpack[CallKwargs],
    ) -> Any: ...

    async def agenerate(
        self,
        prompt: str | None = None,
        *,
        response_model: Any = None,
        stream: bool = False,
        **kwargs: Unpack[CallKwargs],
    ) -> Any:
        """Generate an answer.

        Give a ``prompt`` or ``messages`` (dicts or ``Message``), optionally a
        ``system_prompt``, ``media`` (image paths, bytes or URLs) and ``tools``
        (functions, dicts or ``ToolSpec``). Parameters such as
        ``temperature``, ``max_tokens``, ``top_p``, ``stop``, ``seed`` and
        ``timeout`` override the defaults given to ``create_llm`` for this call;
        ``extra_body``, ``extra_headers`` and ``extra_query`` reach the server
        as they are (``CallKwargs`` lists every keyword).

        ``response_model`` (a pydantic model, dataclass, TypedDict,
        ``list[Model]``, ``Literal``/``Enum`` or a primitive type) returns a
        validated value of that type. The constraint is chosen per provider
        (``structured_mode`` overrides it: "native", "tool", "grammar",
        "prompt"); an invalid answer is repaired when it is near-JSON, else the
        model is asked again with the validation errors, up to ``max_retries``
        times (default 2), then ``StructuredOutputError``.

        Returns a ``GenerateResponse``; a value of ``response_model`` when one
        is given; an async iterator of ``StreamChunk`` when ``stream=True``.
        """
        if stream:
            if response_model is not None:
                raise ConfigurationError(
                    "response_model with stream=True: use astream(..., response_model=...) "
                    "for partial objects as the JSON arrives."
                )
            return self._send_stream(build_request(prompt, stream=True, **kwargs))
        return await self._send(build_request(prompt, response_model=response_model, **kwargs))

    @overload
    def astream(
        self,
        prompt: str | None = None,
        *,
        response_model: None = None,
        **kwargs: Unpack[CallKwargs],
    ) -> AsyncIterator[StreamChunk]: ...

    @overload
    def astream(
        self,
        prompt: str | None = None,
        *,
        response_model: type[T],
        **kwargs: Unpack[CallKwargs],
    ) -> AsyncIterator[T]: ...

    @overload
    def astream(
        self,
        prompt: str | None = None,
        *,
        response_model: Any = None,
        **kwargs: Unpack[CallKwargs],
    ) -> AsyncIterator[Any]: ...

    def astream(
        self,
        prompt: str | None = None,
        *,
        response_model: Any = None,
        **kwargs: Unpack[CallKwargs],
    ) -> AsyncIterator[Any]:
        """Stream an answer as ``StreamChunk``s (text deltas; usage on the last chunk).

        Takes the same arguments as ``agenerate``. Bad arguments raise here,
        before anything is sent. Leaving the loop early closes the stream.

        With ``response_model``, yields partial values as the JSON arrives
        (strings grow, list items appear one by one; fields not received yet
        are None) and, last, the fully validated value.
        """
        return self._send_stream(build_request(prompt, response_model=response_model, stream=True, **kwargs))

    # -- the pipeline: every call, built once, enters here --------------------------------------

    async def _send(self, request: Request) -> Any:
        """Answer ``request``: a ``GenerateResponse``, or the validated value of its ``output``.

        The one entry point below the public methods: the router, the tool loop, sessions,
        batches and the server hand their built ``Request`` here."""
        request = self._bind(request)
        output = request.output
        if output is None:
            response = await generate(self, request)
            if self.name in PRICED_PROVIDERS:
                response.cost = cost_of(self.name, response.model or request.model, response.usage)
            return response
        request = structured_request(self, request, output, request.structured_mode)
        if request.output_as_text:
            return await structured_text(self, request, output, request.max_retries)
        return await structured_answer(self, request, output, request.max_retries)

    def _send_stream(self, request: Request) -> AsyncIterator[Any]:
        """Stream ``request`` (partial values of its ``output`` when it has one); bad arguments
        raise here, before the iterator is returned."""
        request = self._bind(request)
        output = request.output
        if output is None:
            chunks = tool_stream(self, request) if request.tools else self._stream(request)
            if self.name in PRICED_PROVIDERS:
                return self._priced(chunks, request.model or self.model)
            return chunks
        constrained = structured_request(self, request, output, request.structured_mode)
        if request.output_as_text:
            return structured_text_stream(self, constrained, output)
        return structured_stream(self, constrained, output)

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
        return replace(request, model=self.model, params=merged, timeout=timeout)

    def _check_extras(self, request: Request) -> None:
        """Refuse ``extra_body``/``extra_headers``/``extra_query`` this provider cannot send
        (default: all are sent as they are)."""

    async def _priced(self, chunks: AsyncIterator[StreamChunk], model: str) -> AsyncIterator[StreamChunk]:
        """``chunks`` with the answer's cost on the last one."""
        try:
            async for chunk in chunks:
                if chunk.finish_reason is not None:
                    chunk.cost = cost_of(self.name, chunk.model or model, chunk.usage)
                yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def aembed(
        self, texts: str | Sequence[str], *, dimensions: int | None = None, **params: Any
    ) -> EmbeddingResponse:
        """Embed ``texts`` (one string or a list): one vector per text, in order, with usage.

        Large inputs are sent in batches under the provider's limits.
        ``dimensions`` shortens the vectors where the model supports it
        (OpenAI's text-embedding-3). A model or server that cannot embed
        raises ``BadRequestError`` / ``ConfigurationError`` saying so.
        """
        batch = _texts(texts)
        if dimensions is not None and (
            isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions <= 0
        ):
            raise ConfigurationError(f"dimensions must be a positive integer; got {dimensions!r}.")
        if params:
            validate_params(params, {"timeout"}, where=f"{self.name}.embed()")
        timeout = Timeout.of(params["timeout"]) if "timeout" in params else self.timeout
        response = await self._embed(batch, dimensions=dimensions, timeout=timeout)
        if self.name in PRICED_PROVIDERS:
            response.cost = cost_of(self.name, response.model or self.model, response.usage)
        return response

    async def _embed(
        self, texts: list[str], *, dimensions: int | None, timeout: Timeout
    ) -> EmbeddingResponse:
        """The provider's embeddings (default: this provider has none)."""
        raise ConfigurationError(
            f"{self.name} has no embeddings API; use openai, ollama, lmstudio, vllm, an "
            "openai-compatible server with /v1/embeddings, or huggingface (in process)."
        )

    async def acount_tokens(self, prompt: str | None = None, **kwargs: Unpack[CallKwargs]) -> int:
        """The input tokens this call would take, counted by the back end itself (its chat
        template and tokenizer): the ``input_tokens`` the same call reports.

        Takes ``agenerate``'s arguments; tools a model ignores are counted as they are
        prompted to it. ``ConfigurationError`` when this back end cannot count without
        answering (its API has no tokenizer).
        """
        return await self._count(build_request(prompt, **kwargs))

    async def _count(self, request: Request) -> int:
        """``acount_tokens`` of a built ``request``: counted as it is sent (its structured-output
        constraint applied, its tools prompted where the model ignores them)."""
        request = self._bind(request)
        if request.output is not None:
            request = structured_request(self, request, request.output, request.structured_mode)
        if await tools_prompted(self, request):
            request = prompted_request(self, request)
        count = await self._count_tokens(request)
        if count is None:
            raise ConfigurationError(
                f"{self.name} (model {self.model!r}) cannot count tokens before answering; the "
                "answer's usage has the count."
            )
        return count

    async def acapabilities(self) -> Capabilities:
        """What this provider and its model can do, asked from the server where it says.

        Context window, output limit, tools, vision, structured output,
        embeddings and usage in streams: from Ollama's ``/api/show``, llama.cpp's
        ``/props``, LM Studio's ``/api/v0/models``, vLLM's ``max_model_len``,
        OpenRouter's ``/models``, the in-process engine, or a table of hosted
        models. Asked once per model and cached; when the server cannot be
        asked, the provider's defaults (``capabilities``) come back.
        """
        if self._live_capabilities is not None:
            return self._live_capabilities
        try:
            found = await self._fetch_capabilities()
        except ProviderError:  # the server cannot say now: defaults, and ask again next time
            return self.capabilities
        self._live_capabilities = found
        return found

    async def aunload(self) -> None:
        """Free what this provider holds (local weights, pooled connections).

        The object stays usable: the next call reloads or reconnects.
        """
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections of the event loop this runs on.

        The blocking ``close()`` runs on the background loop of the blocking
        methods, so it closes theirs; ``await aclose()`` closes your loop's.
        """

    async def alist_models(self) -> list[str]:
        """The models this provider offers."""
        return [self.model]

    # -- provider hooks ---------------------------------------------------------

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


def _texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not texts or not all(isinstance(t, str) for t in texts):
        raise ConfigurationError(f"embed() takes a string or a non-empty list of strings; got {texts!r}.")
    return list(texts)
