"""``AsyncProvider``: the public methods of every provider.

Each method turns its arguments into a ``Request`` (``build_request``, from the one
declaration of the keywords, ``CallKwargs``) and hands it to the pipeline below
(``providers/pipeline.py``: bind, strategies, the provider's hooks). The blocking twins
(``generate``, ``stream``, ...) are generated from this file by ``scripts/gen_sync.py`` into
``_sync.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import Timeout, validate_params
from abstractcore.core.errors import ConfigurationError, ProviderError
from abstractcore.core.types import EmbeddingResponse, GenerateResponse, StreamChunk
from abstractcore.features.cost import PRICED_PROVIDERS, cost_of
from abstractcore.features.request import CallKwargs, Request, build_request
from abstractcore.features.telemetry import state as _telemetry
from abstractcore.providers.pipeline import BASE_OPTIONS, ProviderPipeline

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["BASE_OPTIONS", "AsyncProvider", "Request"]

T = TypeVar("T")


class AsyncProvider(ProviderPipeline):
    """Base of every provider. Subclasses write ``_complete`` and ``_stream`` (``ProviderPipeline``
    lists the hooks)."""

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
        tracing = _telemetry.active
        if tracing is not None:
            return await tracing.embed(self, batch, lambda: self._embed_priced(batch, dimensions, timeout))  # type: ignore[no-any-return]
        return await self._embed_priced(batch, dimensions, timeout)

    async def _embed_priced(
        self, batch: list[str], dimensions: int | None, timeout: Timeout
    ) -> EmbeddingResponse:
        response = await self._embed(batch, dimensions=dimensions, timeout=timeout)
        if self.name in PRICED_PROVIDERS:
            response.cost = cost_of(self.name, response.model or self.model, response.usage)
        return response

    async def acount_tokens(self, prompt: str | None = None, **kwargs: Unpack[CallKwargs]) -> int:
        """The input tokens this call would take, counted by the back end itself (its chat
        template and tokenizer): the ``input_tokens`` the same call reports.

        Takes ``agenerate``'s arguments; tools a model ignores are counted as they are
        prompted to it. ``ConfigurationError`` when this back end cannot count without
        answering (its API has no tokenizer).
        """
        return await self._count(build_request(prompt, **kwargs))

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


def _texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not texts or not all(isinstance(t, str) for t in texts):
        raise ConfigurationError(f"embed() takes a string or a non-empty list of strings; got {texts!r}.")
    return list(texts)
