"""The shared base of in-process providers ("huggingface", "mlx").

A provider here owns a ``ModelHost`` (``engines/host.py``: the engine, loaded
lazily in the worker thread on the first call and again after ``aunload()``,
its thread bridge and limiter, its batch queue, its exit) and only
translates: a ``Request`` into the engine's ``GenerationSpec``, the engine's
``Outcome`` back into responses. When the model's engine is a
``BatchEngine`` (``parallel`` not 1) calls are queued on it and run at once;
any other engine serves them one at a time.

Structured output is constrained in process: the schema of a
``response_model`` (or of a forced prompted tool call) reaches the engine as
``GenerationSpec.json_schema`` and as ``GenerationSpec.constraint``, a
``features.constrain.Grammar`` the engine calls with its own tokenizer. Every
engine applies that grammar (llguidance) to its logits: llama.cpp as a logits
processor, the batch engines on each sequence's logits, transformers and MLX
in their decode loops.
"""

from __future__ import annotations

import abc
import functools
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import Any, ClassVar

import anyio

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import AUTOMATIC_CACHE_PARAMS, Timeout
from abstractcore.core.errors import ConfigurationError, ProviderTimeoutError
from abstractcore.core.types import (
    EmbeddingResponse,
    GenerateResponse,
    ImagePart,
    Message,
    StreamChunk,
    ToolCall,
    Usage,
)
from abstractcore.engines.base import ContextSizes, Engine, GenerationSpec, Outcome
from abstractcore.engines.host import ModelHost
from abstractcore.engines.worker import Emit
from abstractcore.features.constrain import Grammar
from abstractcore.features.local_thinking import (
    REASONING_PARAMS,
    ThinkingSplit,
    check_engine,
    grammar_of,
    template_switches,
)
from abstractcore.features.structured import StructuredMode
from abstractcore.features.tools.accumulator import ToolCallAccumulator
from abstractcore.features.tools.forced import ForcedKind, cut_call_error
from abstractcore.features.tools.prompted import TOOL_CALL_OUTPUT
from abstractcore.providers.base import AsyncProvider, Request
from abstractcore.wire.openai_chat import (
    message_to_openai,
    parse_tool_calls,
    tool_call_deltas,
    tool_choice_to_openai,
    tools_to_openai,
)

__all__ = ["LOCAL_PARAMS", "LocalProvider"]

#: Generation parameters in-process providers accept beyond the common ones.
LOCAL_PARAMS = frozenset({"top_k", "min_p", "repeat_penalty"}) | REASONING_PARAMS | AUTOMATIC_CACHE_PARAMS
#: ``max_tokens`` of a grammar-constrained answer (``response_model``, a forced tool call) when the
#: call gives none: without it a model that loops (a list it never closes) runs to the end of
#: its context, minutes on a CPU, only to be refused as cut.
STRUCTURED_MAX_TOKENS = 1024
#: The repetition penalty of a grammar-constrained answer when the call gives no ``repeat_penalty``
#: (llama-cpp-python's server's default), applied by the constraint to the answer's own recent
#: tokens (``Constraint``), alike on every engine. The grammar always allows a list to close
#: (``]``), but a small model that has begun a pattern keeps choosing ``,``: SmolLM2-135M wrote
#: ``{"name":"Bo","age":21},{"name":"Bo","age":22},...`` to the end of its context, giving ``]``
#: 2-7% at each item. The penalty on what it has just written lets it close the list; a token
#: the grammar forces is chosen whatever its penalty. Not the prompt's tokens: a value copied
#: from the prompt (transformers' own penalty counts the whole prompt) is not pushed away.
STRUCTURED_REPEAT_PENALTY = 1.1


def _chat_messages(messages: Sequence[Message], provider: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message.content, str) and any(isinstance(p, ImagePart) for p in message.content):
            raise ConfigurationError(
                f"{provider} runs text-only models in process; images are not supported."
            )
        out.append({**message_to_openai(message), "content": message.text})
    return out


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


def _calls(outcome: Outcome) -> list[ToolCall]:
    """The engine's tool calls (Chat Completions dicts, whole or streamed fragments) as ``ToolCall``s.

    A forced call the engine generated whole but ``max_tokens`` cut raises ``cut_call_error``.
    """
    if not outcome.tool_calls:
        return []
    if not outcome.tool_call_fragments and outcome.finish_reason == "length":
        function = outcome.tool_calls[0].get("function") or {}
        choice, text = str(function.get("name")), str(function.get("arguments") or "")
        raise cut_call_error(choice, text, outcome.usage)
    if not outcome.tool_call_fragments:
        return parse_tool_calls(list(outcome.tool_calls))
    accumulator = ToolCallAccumulator()
    for delta in outcome.tool_calls:
        for fragment in tool_call_deltas({"tool_calls": [delta]}):
            accumulator.add(fragment)
    return accumulator.finish()


def _forced_call_grammar(tools: Sequence[dict[str, Any]], choice: Any) -> Grammar | None:
    """The grammar of the arguments of the tool ``choice`` forces (None unless it names one).

    Lenient: a keyword the grammar engine cannot enforce in a tool's schema is
    left to validation rather than refusing the call.
    """
    if not isinstance(choice, dict):
        return None
    name = (choice.get("function") or {}).get("name")
    for tool in tools:
        function = tool.get("function") or {}
        if function.get("name") == name:
            parameters = function.get("parameters") or {"type": "object"}
            return Grammar.json(parameters, lenient=True)
    return None


def _finish(outcome: Outcome, calls: list[ToolCall]) -> str:
    return "tool_calls" if calls else outcome.finish_reason


class LocalProvider(AsyncProvider):
    """Base of providers that run the model in this process."""

    extra_params: ClassVar[frozenset[str]] = LOCAL_PARAMS
    #: ``tools`` depends on the engine the model needs (``acapabilities()`` says).
    capabilities: Capabilities = Capabilities(
        tools=None, structured_output=True, vision=False, stream_usage=True, local=True
    )
    #: The llama.cpp engines force a named tool under its grammar; llama-cpp-python's chat handler
    #: ignores "required", which gets prompted tools and the grammar of a call to any of them.
    forced_choices: ClassVar[frozenset[ForcedKind]] = frozenset({"named"})

    #: How many requests the engine decodes together; 1: one at a time (set by ``_configure``).
    parallel: int | None = None

    def __init__(self, model: str | None = None, **config: Any) -> None:
        given = "timeout" in config
        super().__init__(model, **config)
        if not given:  # the network default (600 s) would cut a long CPU generation
            self.timeout = Timeout.of(None)
        self._host = ModelHost(
            self._create_engine, name=self.name, model=self.model, serial=self.parallel == 1
        )

    @abc.abstractmethod
    def _create_engine(self) -> Engine:
        """Resolve the model and build the engine for it (blocking; runs in the worker thread).

        Raise ``ModelNotFoundError`` when the model is not on this machine.
        """

    @property
    def _engine(self) -> Engine | None:
        """The engine, once created (not necessarily loaded)."""
        return self._host.engine

    @property
    def loaded(self) -> bool:
        """True while the model's weights are in memory."""
        return self._host.loaded

    @property
    def busy(self) -> bool:
        """True while the model is loading, generating (any request) or unloading."""
        return self._host.busy

    # -- hooks ------------------------------------------------------------------

    def _structured_modes(self, request: Request) -> tuple[StructuredMode, ...]:
        """A grammar built from the schema constrains decoding in process (or the prompt only)."""
        return ("grammar", "prompt")

    def _check_extras(self, request: Request) -> None:
        """In process there is no wire: ``extra_headers``/``extra_query`` are refused, and so is an
        ``extra_body`` field but ``grammar`` (a GBNF grammar, which the llama.cpp engines take as
        llama-server does; the engine in use is checked once resolved, ``check_engine``)."""
        for name in ("extra_headers", "extra_query"):
            if getattr(request, name):
                raise ConfigurationError(
                    f"{name} is for HTTP providers; {self.name} runs the model in process."
                )
        unknown = sorted(set(request.extra_body) - {"grammar"})
        if unknown:
            raise ConfigurationError(
                f"{self.name} runs the model in process, and its engine knows no extra_body field "
                f"({', '.join(unknown)}); pass generation parameters by name "
                f"({', '.join(sorted(self._params - {'timeout'}))})."
            )

    def _spec(self, request: Request) -> GenerationSpec:
        if request.tools and self.capabilities.tools is False:
            raise ConfigurationError(
                f"{self.name} has no tool calling; use a GGUF model with the 'huggingface' "
                "provider, or an OpenAI-compatible server."
            )
        params = request.params
        stop = params.get("stop")
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        schema = request.json_schema
        tools = tuple(tools_to_openai(request.tools))
        choice = tool_choice_to_openai(request.tool_choice) if request.tools else None
        # a prompted tool call's grammar is lenient, as a forced tool's arguments are: a keyword
        # the grammar engine cannot enforce in a tool's schema is left to validation
        lenient = request.output is not None and request.output.name == TOOL_CALL_OUTPUT
        grammar = (
            Grammar.json(schema, lenient=lenient)
            if schema is not None
            else _forced_call_grammar(tools, choice)
        )
        constraint: Callable[..., Any] | None = grammar
        gbnf = grammar_of(request.extra_body, self.name, constrained=grammar is not None)
        if gbnf is not None:  # the caller's own grammar: its bounds are the caller's too
            constraint = Grammar.gbnf(gbnf)
        elif grammar is not None:  # bounded, and able to end a list (see STRUCTURED_REPEAT_PENALTY)
            if params.get("max_tokens") is None:
                params = {**params, "max_tokens": STRUCTURED_MAX_TOKENS}
            if params.get("repeat_penalty") is None:  # asked for: the engine's own penalty instead
                constraint = functools.partial(grammar, repeat_penalty=STRUCTURED_REPEAT_PENALTY)
        return GenerationSpec(
            messages=_chat_messages(request.messages, self.name),
            max_tokens=_integer(params.get("max_tokens")),
            temperature=_number(params.get("temperature")),
            top_p=_number(params.get("top_p")),
            top_k=_integer(params.get("top_k")),
            min_p=_number(params.get("min_p")),
            stop=stops,
            seed=_integer(params.get("seed")),
            presence_penalty=_number(params.get("presence_penalty")),
            frequency_penalty=_number(params.get("frequency_penalty")),
            repeat_penalty=_number(params.get("repeat_penalty")),
            json_schema=schema,
            constraint=constraint,
            tools=tools,
            tool_choice=choice,
            template_kwargs=template_switches(params, self.name),
        )

    async def _complete(self, request: Request) -> GenerateResponse:
        split = ThinkingSplit(self.name)
        spec = replace(self._spec(request), stream=False, on_prompt=split.see_prompt)
        extras = tuple(request.extra_body)
        total = request.timeout.total
        try:
            with anyio.fail_after(total):  # cancelling sets the flag: generation stops
                if self._host.batches:
                    self._check_loaded(spec, extras)
                    parts: list[str] = []
                    ready = functools.partial(self._ready_engine, spec, extras)
                    run = await self._host.open_batch(spec, parts.append, ready)
                    if run is not None:
                        outcome = await run.outcome()  # before the text is joined: it ends with it
                        return self._answer("".join(parts), outcome, split)
                job = functools.partial(self._generate_whole, spec, extras, split)
                return await self._host.run(job)
        except TimeoutError:
            raise self._timeout_error(total) from None

    def _generate_whole(
        self, spec: GenerationSpec, extras: tuple[str, ...], split: ThinkingSplit, cancel: threading.Event
    ) -> GenerateResponse:
        """(worker thread) One whole generation, the model held throughout."""
        engine = self._ready_engine(spec, extras)
        parts: list[str] = []
        outcome: Outcome = self._host.guard("generating", lambda: engine.generate(spec, parts.append, cancel))
        return self._answer("".join(parts), outcome, split)

    def _answer(self, text: str, outcome: Outcome, split: ThinkingSplit) -> GenerateResponse:
        """The response of a finished generation: its answer and thinking, tool calls, usage and
        finish reason."""
        calls = _calls(outcome)
        reasoning, content = split.whole(text)
        return GenerateResponse(
            content=content,
            usage=outcome.usage,
            tool_calls=calls,
            finish_reason=_finish(outcome, calls),
            model=self.model,
            provider=self.name,
            reasoning=reasoning,
            reasoning_parts=split.parts(),
        )

    def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        split = ThinkingSplit(self.name)
        spec = replace(self._spec(request), on_prompt=split.see_prompt)  # bad arguments raise here
        extras = tuple(request.extra_body)
        if self._host.batches:
            return self._batch_stream(spec, extras, split)
        return self._serial_stream(spec, extras, split)

    async def _batch_stream(
        self, spec: GenerationSpec, extras: tuple[str, ...], split: ThinkingSplit
    ) -> AsyncIterator[StreamChunk]:
        self._check_loaded(spec, extras)
        run = await self._host.open_batch(spec, ready=functools.partial(self._ready_engine, spec, extras))
        # None: the model's engine does not batch, one generation at a time
        chunks = (
            self._serial_stream(spec, extras, split) if run is None else self._chunks(run.events(), split)
        )
        async with aclosing(chunks) as items:  # type: ignore[type-var]
            async for chunk in items:
                yield chunk

    async def _chunks(
        self, events: AsyncGenerator[str | Outcome, None], split: ThinkingSplit
    ) -> AsyncIterator[StreamChunk]:
        """A batched request's text deltas (split into thinking and answer) and ``Outcome`` as chunks."""
        async with aclosing(events) as items:
            async for item in items:
                if isinstance(item, str):
                    chunk = self._delta(*split.feed(item))
                    if chunk is not None:
                        yield chunk
                    continue
                for chunk in self._last(item, split):
                    yield chunk

    def _delta(self, reasoning: str, content: str) -> StreamChunk | None:
        if not reasoning and not content:
            return None
        return StreamChunk(content=content, reasoning=reasoning, model=self.model)

    def _last(self, outcome: Outcome, split: ThinkingSplit) -> list[StreamChunk]:
        """The held-back text (a marker's possible beginning), then the chunk that ends the stream."""
        held = self._delta(*split.close())
        calls = _calls(outcome)
        last = StreamChunk(
            finish_reason=_finish(outcome, calls),
            usage=outcome.usage,
            tool_calls=calls,
            model=self.model,
            reasoning_parts=split.parts(),
        )
        return [last] if held is None else [held, last]

    def _serial_stream(
        self, spec: GenerationSpec, extras: tuple[str, ...], split: ThinkingSplit
    ) -> AsyncIterator[StreamChunk]:
        def job(emit: Emit[StreamChunk], cancel: threading.Event) -> None:
            engine = self._ready_engine(spec, extras)

            def text(delta: str) -> None:
                chunk = self._delta(*split.feed(delta)) if delta else None
                if chunk is not None:
                    emit(chunk)

            outcome: Outcome = self._host.guard("generating", lambda: engine.generate(spec, text, cancel))
            if not cancel.is_set():
                for chunk in self._last(outcome, split):
                    emit(chunk)

        return self._host.stream(job)

    async def _count_tokens(self, request: Request) -> int | None:
        """The prompt tokens of ``request`` as the engine renders and tokenizes it (loads the
        model when it is not loaded; nothing is generated)."""
        spec = self._spec(request)

        def job(cancel: threading.Event) -> int | None:
            engine = self._ready_engine(spec)
            count: int | None = self._host.guard("counting tokens with", lambda: engine.count_prompt(spec))
            return count

        return await self._host.run(job)

    async def _fetch_capabilities(self) -> Capabilities:
        """The defaults, with ``tools`` and the context as the engine that runs this model says
        (read from the model's files; no weights loaded).

        llama.cpp calls tools natively; transformers and MLX do not (tools are
        then prompted, and a forced call is constrained by its grammar).
        Structured output is constrained by every engine. ``context_window`` is
        what a request gets from the engine (llama.cpp: ``n_ctx``, the limit a
        prompt is checked against, as llama-server's ``/props`` reports it);
        ``trained_context_window`` what the model's file says it was trained for.
        """

        def read(cancel: threading.Event) -> tuple[Engine, ContextSizes]:
            engine = self._host.resolved()
            sizes: ContextSizes = self._host.guard("reading", engine.context_sizes, load=True)
            return engine, sizes

        engine, sizes = await self._host.run(read)
        known = sizes.engine is not None or sizes.trained is not None
        return self.capabilities.merged(
            tools=type(engine).supports_tools,
            prompt_caching=type(engine).prefix_cache,
            structured_output=True,
            context_window=sizes.engine,
            trained_context_window=sizes.trained,
            source="model file" if known else None,
        )

    async def _embed(
        self, texts: list[str], *, dimensions: int | None, timeout: Timeout
    ) -> EmbeddingResponse:
        """Mean-pooled, L2-normalised vectors from the model itself (``engines.embedding``)."""
        if dimensions is not None:
            raise ConfigurationError(
                f"{self.name}: dimensions= is for models trained to shorten their vectors (OpenAI's "
                "text-embedding-3); this model's vectors have their own size. Remove dimensions=."
            )

        def job(cancel: threading.Event) -> tuple[list[list[float]], int]:
            engine = self._host.resolved()
            result: tuple[list[list[float]], int] = self._host.guard(
                "embedding with", lambda: engine.embed(texts, cancel), load=not engine.loaded
            )
            return result

        total = timeout.total
        try:
            with anyio.fail_after(total):  # cancelling sets the flag: embedding stops between groups
                vectors, tokens = await self._host.run(job)
        except TimeoutError:
            raise ProviderTimeoutError(
                f"{self.name} did not finish embedding within timeout={total:g} s (model {self.model!r}).",
                provider=self.name,
                model=self.model,
            ) from None
        return EmbeddingResponse(vectors, Usage.of(tokens, 0), self.model, self.name)

    async def aunload(self) -> None:
        """Free the model's weights and native handles (the next call loads it again)."""
        await self._host.unload()
        await super().aunload()

    # -- helpers (worker thread) --------------------------------------------------

    def _ready_engine(self, spec: GenerationSpec, extras: tuple[str, ...] = ()) -> Engine:
        """The loaded engine, refusing tools it cannot call, ``extra_body`` fields it does not know
        and template switches the model's template lacks (called in the worker thread)."""
        engine = self._host.resolved()
        if spec.tools and not engine.supports_tools:
            raise ConfigurationError(
                f"{self.name}: tools need a GGUF model run by llama.cpp in process; "
                f"{type(engine).__name__} has no tool calling. Use a GGUF model, or an "
                "OpenAI-compatible server for tool calling."
            )
        ready = self._host.ready()
        if extras or spec.template_kwargs:
            check_engine(ready, extras, spec.template_kwargs, self.name)
        return ready

    def _check_loaded(self, spec: GenerationSpec, extras: tuple[str, ...]) -> None:
        """``check_engine`` when the batch engine is loaded already (``open_batch`` then submits
        without calling ``_ready_engine``)."""
        engine = self._host.engine
        if engine is not None and engine.loaded and (extras or spec.template_kwargs):
            check_engine(engine, extras, spec.template_kwargs, self.name)

    def _timeout_error(self, total: float | None) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"{self.name} did not finish within timeout={total:g} s (model {self.model!r}); "
            "raise timeout= or lower max_tokens.",
            provider=self.name,
            model=self.model,
        )
