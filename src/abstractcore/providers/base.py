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
from abstractcore.core.errors import ConfigurationError, ProviderError, StructuredOutputError
from abstractcore.core.retry import RetryConfig
from abstractcore.core.types import (
    EmbeddingResponse,
    GenerateResponse,
    Message,
    StreamChunk,
    Usage,
)
from abstractcore.features.cost import PRICED_PROVIDERS, cost_of
from abstractcore.features.request import CallKwargs, Request, build_request
from abstractcore.features.structured import (
    STRUCTURED_MODES,
    STRUCTURED_TOOL,
    OutputSpec,
    StructuredMode,
    ValidationFailure,
    reask_messages,
    structured_tool,
)
from abstractcore.features.tools.forced import ForcedKind, cut_call_error, forced_kind, no_call_error
from abstractcore.features.tools.prompted import TOOL_CALL_OUTPUT, call_schema, prompted_messages
from abstractcore.features.tools.text_calls import TextCallStream, parse_text_calls

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
            response = await self._generate(request)
            if self.name in PRICED_PROVIDERS:
                response.cost = cost_of(self.name, response.model or request.model, response.usage)
            return response
        request = self._structured_request(request, output, request.structured_mode)
        return await self._structured_answer(request, output, request.max_retries)

    def _send_stream(self, request: Request) -> AsyncIterator[Any]:
        """Stream ``request`` (partial values of its ``output`` when it has one); bad arguments
        raise here, before the iterator is returned."""
        request = self._bind(request)
        output = request.output
        if output is None:
            chunks = self._tool_stream(request) if request.tools else self._stream(request)
            if self.name in PRICED_PROVIDERS:
                return self._priced(chunks, request.model or self.model)
            return chunks
        return self._structured_stream(
            self._structured_request(request, output, request.structured_mode), output
        )

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
        request = self._bind(build_request(prompt, **kwargs))
        if await self._tools_prompted(request):
            request = self._prompted_request(request)
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

    # -- tools: native, or prompted for models that ignore them ------------------------------

    async def _tools_prompted(self, request: Request) -> bool:
        if not request.tools or request.tool_choice == "none":
            return False
        kind = forced_kind(request.tool_choice)
        if kind is not None and (kind not in self.forced_choices or kind in self._ignored_choices):
            return True
        return (await self.acapabilities()).tools is False

    def _prompted_request(self, request: Request) -> Request:
        """The request rewritten for prompted tools (the forced call constrained where possible)."""
        messages = prompted_messages(request.messages, request.tools, request.tool_choice)
        out = replace(
            request, messages=messages, tools=[], tool_choice=None, prompted_tools=list(request.tools)
        )
        schema = call_schema(request.tools, request.tool_choice)
        if schema is not None:
            modes = [m for m in self._structured_modes(out) if m in ("native", "grammar")]
            if modes:
                out = replace(
                    out, output=OutputSpec.from_schema(schema, TOOL_CALL_OUTPUT), structured_mode=modes[0]
                )
        return out

    @staticmethod
    def _strategy(request: Request) -> str:
        if not request.prompted_tools:
            return "native"
        return "prompted+grammar" if request.structured_mode in ("native", "grammar") else "prompted"

    async def _generate(self, request: Request, *, enforce: bool = True) -> GenerateResponse:
        """``_complete``, with tools prompted and parsed back for a model that ignores them.

        A forced choice answered natively without a call (the server ignored it) is asked again
        with prompted tools and the call under the grammar, and that strategy is kept for later
        calls. With ``enforce``, a forced choice that still has no whole call raises
        (``features.tools.forced``): a cut call, or prose, is never returned as the answer.
        """
        if not request.tools:
            return await self._complete(request)
        kind = forced_kind(request.tool_choice)
        ignored: GenerateResponse | None = None
        if not await self._tools_prompted(request):
            response = await self._complete(request)
            response.tool_strategy = "native"
            if kind is None or response.tool_calls:
                return self._forced_kept(request, response, constrained=True) if enforce else response
            self._ignored_choices.add(kind)  # prose to a forced choice: this server ignores it
            ignored = response
        prompted = self._prompted_request(request)
        response = await self._complete(prompted)
        prose, calls = parse_text_calls(response.content)
        if calls:
            response.content, response.tool_calls, response.finish_reason = prose.strip(), calls, "tool_calls"
        response.tool_strategy = self._strategy(prompted)
        if ignored is not None and ignored.usage and response.usage:
            response.usage = ignored.usage + response.usage
        if not enforce:
            return response
        return self._forced_kept(request, response, constrained=response.tool_strategy == "prompted+grammar")

    def _forced_kept(
        self, request: Request, response: GenerateResponse, *, constrained: bool
    ) -> GenerateResponse:
        """``response``, or the typed error when it breaks the promise of a forced choice."""
        if forced_kind(request.tool_choice) is None:
            return response
        if response.finish_reason == "length":
            text = response.content + "".join(c.arguments_json() for c in response.tool_calls)
            raise cut_call_error(request.tool_choice, text, response.usage)
        if not response.tool_calls:
            raise no_call_error(
                self.name,
                self.model,
                request.tool_choice,
                response.content,
                response.finish_reason,
                constrained,
            )
        return response

    async def _tool_stream(self, request: Request, *, enforce: bool = True) -> AsyncIterator[StreamChunk]:
        """``_stream`` with tools; prompted ones stream their prose and hand each call over whole.

        A forced choice streamed natively holds its text back until a call shows (a server that
        ignores the choice is then asked again prompted, as in ``_generate``); with ``enforce``,
        a forced choice that ends without a whole call raises after the last text.
        """
        if await self._tools_prompted(request):
            chunks = self._prompted_stream(request, enforce=enforce)
        elif forced_kind(request.tool_choice) is not None:
            chunks = self._forced_stream(request, enforce=enforce)
        else:
            chunks = self._stream(request)
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _prompted_stream(self, request: Request, *, enforce: bool) -> AsyncIterator[StreamChunk]:
        prompted = self._prompted_request(request)
        chunks = self._stream(prompted)
        parser = TextCallStream()
        written: list[str] = []
        try:
            async for chunk in chunks:
                written.append(chunk.content)
                if chunk.finish_reason is not None:
                    tail = parser.finish()
                    if tail:
                        yield StreamChunk(content=tail, model=chunk.model)
                    chunk.tool_calls = parser.take()
                    if chunk.tool_calls:
                        chunk.finish_reason = "tool_calls"
                    elif enforce:  # the text of the answer was handed on: now say what it lacks
                        answer = GenerateResponse(
                            content="".join(written), finish_reason=chunk.finish_reason, usage=chunk.usage
                        )
                        self._forced_kept(
                            request, answer, constrained=self._strategy(prompted) == "prompted+grammar"
                        )
                    yield chunk
                elif chunk.content:
                    text = parser.feed(chunk.content)
                    if text:
                        chunk.content = text
                        yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _forced_stream(self, request: Request, *, enforce: bool) -> AsyncIterator[StreamChunk]:
        held: list[StreamChunk] = []
        called = False
        arguments: list[str] = []
        chunks = self._stream(request)
        try:
            async for chunk in chunks:
                arguments += [d.arguments_fragment for d in chunk.tool_call_deltas]
                called = called or bool(chunk.tool_call_deltas or chunk.tool_calls)
                if not called:
                    held.append(chunk)
                    continue
                for earlier in held:
                    yield earlier
                held.clear()
                if enforce and chunk.finish_reason == "length":
                    raise cut_call_error(request.tool_choice, "".join(arguments), chunk.usage)
                yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        if called:
            return
        kind = forced_kind(request.tool_choice)
        assert kind is not None
        self._ignored_choices.add(kind)  # prose to a forced choice: this server ignores it
        again = self._prompted_stream(request, enforce=enforce)
        try:
            async for chunk in again:
                yield chunk
        finally:
            aclose = getattr(again, "aclose", None)
            if aclose is not None:
                await aclose()

    def _structured_modes(self, request: Request) -> tuple[StructuredMode, ...]:
        """The structured-output modes this provider can apply, the default first."""
        return ("prompt",)

    # -- structured output --------------------------------------------------------

    def _structured_request(
        self, request: Request, output: OutputSpec[Any], mode: StructuredMode | None
    ) -> Request:
        supported = self._structured_modes(request)
        if mode is None:
            mode = supported[0]
        elif mode not in STRUCTURED_MODES:
            raise ConfigurationError(
                f"structured_mode must be one of {', '.join(STRUCTURED_MODES)}; got {mode!r}."
            )
        elif mode not in supported:
            raise ConfigurationError(
                f"{self.name} (model {self.model!r}) cannot apply structured_mode={mode!r}; "
                f"it can: {', '.join(supported)}."
            )
        if mode == "tool":  # the answer comes as the arguments of a forced tool call
            tools = [*request.tools, structured_tool(output)]
            choice = STRUCTURED_TOOL if not request.tools else "required"
            return replace(request, tools=tools, tool_choice=choice, output=output, structured_mode=mode)
        messages = [Message("system", output.instruction), *request.messages]
        return replace(request, messages=messages, output=output, structured_mode=mode)

    async def _structured_answer(self, request: Request, output: OutputSpec[T], retries: int) -> T:
        answers: list[str] = []
        errors: list[Any] = []
        usage = Usage()
        messages = request.messages
        response = GenerateResponse()
        tool_mode = request.structured_mode == "tool"  # a forced call: prompted where tools are ignored
        for _ in range(retries + 1):
            attempt = replace(request, messages=messages)
            response = await (
                self._generate(attempt, enforce=False) if tool_mode else self._complete(attempt)
            )
            usage = usage + response.usage if response.usage else usage
            answer = _answer_text(response)
            answers.append(answer)
            if response.finish_reason == "length":
                break  # a cut answer: asking again with the same max_tokens cuts it again
            try:
                return output.parse(answer)
            except ValidationFailure as failure:
                errors = failure.errors
                reask = reask_messages(answer, failure.errors, cut=False)
                messages = [*messages, *(Message.from_dict(m) for m in reask)]
        raise _structured_error(output, answers, errors, response.finish_reason, usage)

    async def _structured_stream(self, request: Request, output: OutputSpec[T]) -> AsyncIterator[T]:
        text: list[str] = []
        last: Any = None
        finish: str | None = None
        usage: Usage | None = None
        chunks = (
            self._tool_stream(request, enforce=False)
            if request.structured_mode == "tool"
            else self._stream(request)
        )
        tool_index: int | None = None  # "tool" mode: the answer streams as the call's arguments
        try:
            async for chunk in chunks:
                piece = chunk.content
                for delta in chunk.tool_call_deltas:
                    if delta.name == STRUCTURED_TOOL:
                        tool_index = delta.index
                    if delta.index == tool_index:
                        piece += delta.arguments_fragment
                if not chunk.tool_call_deltas:
                    for call in chunk.tool_calls:  # delivered whole (no fragments were streamed)
                        if call.name == STRUCTURED_TOOL and not text:
                            piece += call.arguments_json()
                if piece:
                    text.append(piece)
                    value = output.partial("".join(text))
                    if value is not None and value != last:
                        last = value
                        yield value
                finish = chunk.finish_reason or finish
                usage = chunk.usage or usage
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        answer = "".join(text)
        if finish != "length":
            try:
                yield output.parse(answer)
                return
            except ValidationFailure as failure:
                raise _structured_error(output, [answer], failure.errors, finish, usage) from None
        raise _structured_error(output, [answer], [], finish, usage)


def _texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not texts or not all(isinstance(t, str) for t in texts):
        raise ConfigurationError(f"embed() takes a string or a non-empty list of strings; got {texts!r}.")
    return list(texts)


def _answer_text(response: GenerateResponse) -> str:
    """The answer to validate: the text, or the arguments of the structured-output tool call."""
    for call in response.tool_calls:
        if call.name == STRUCTURED_TOOL:
            return call.arguments_json()
    return response.content


def _structured_error(
    output: OutputSpec[Any], answers: list[str], errors: list[Any], finish: str | None, usage: Usage | None
) -> StructuredOutputError:
    cut = finish == "length"
    if cut:
        message = (
            f"The model's answer was cut by max_tokens before the {output.name} was complete "
            f"({len(answers[-1]) if answers else 0} characters); raise max_tokens."
        )
    else:
        tries = f" after {len(answers)} attempts" if len(answers) > 1 else ""
        message = (
            f"The model's answer is not a valid {output.name}{tries}: {errors[:3]!r}. Try a larger "
            "model, a lower temperature, a clearer prompt or a larger max_retries."
        )
    return StructuredOutputError(
        message,
        raw=answers[-1] if answers else None,
        attempts=answers,
        validation_errors=errors,
        finish_reason=finish,
        usage=usage,
    )
