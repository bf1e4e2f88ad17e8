"""The shared base of in-process providers ("huggingface", "mlx").

A provider here owns an ``Engine`` (one back end: llama.cpp, transformers or
MLX) and a ``ModelWorker`` (the thread bridge). The model is loaded lazily,
in the worker thread, on the first call; ``aunload()`` frees it and the next
call loads it again. Engines are plain blocking classes: they turn a
``GenerationSpec`` into text deltas passed to ``emit`` and return an
``Outcome`` (finish reason and token counts from the real tokenizer).
"""

from __future__ import annotations

import abc
import ctypes
import gc
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import anyio

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import Timeout
from abstractcore.core.errors import (
    AbstractCoreError,
    BackendNotInstalledError,
    ConfigurationError,
    LocalBackendError,
    ModelLoadError,
    ProviderTimeoutError,
)
from abstractcore.core.types import GenerateResponse, ImagePart, Message, StreamChunk, ToolCall, Usage
from abstractcore.openai_format import message_to_openai, tool_choice_to_openai, tools_to_openai
from abstractcore.providers.base import AsyncProvider, Request
from abstractcore.transport.worker import Emit, ModelWorker, StreamClosed

__all__ = [
    "Engine",
    "GenerationSpec",
    "LocalProvider",
    "Outcome",
    "StopMatcher",
    "collect_garbage",
    "require",
]

#: Generation parameters in-process providers accept beyond the common ones.
LOCAL_PARAMS = frozenset({"top_k", "min_p", "repeat_penalty"})


@dataclass(frozen=True)
class GenerationSpec:
    """What an engine is asked to generate (``None``: the back end's default)."""

    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repeat_penalty: float | None = None
    json_schema: dict[str, Any] | None = None
    #: Tools in the Chat Completions form, and the tool choice ("auto", or a forced tool).
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    #: False when nobody watches the text arrive (``generate``): an engine may then
    #: produce it in one piece if that is faster, still checking ``cancel`` every token.
    stream: bool = True


@dataclass(frozen=True)
class Outcome:
    """How a generation ended: ``finish_reason`` ("stop"/"length") and token counts."""

    finish_reason: str
    input_tokens: int
    output_tokens: int
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def usage(self) -> Usage:
        """The counts as a ``Usage``."""
        return Usage.of(self.input_tokens, self.output_tokens)


class Engine(abc.ABC):
    """One in-process back end. All methods are blocking and run in the worker thread."""

    #: Whether ``generate`` honours ``spec.tools`` (and returns ``Outcome.tool_calls``).
    supports_tools: ClassVar[bool] = False

    @property
    @abc.abstractmethod
    def loaded(self) -> bool:
        """True while weights are in memory."""

    @abc.abstractmethod
    def load(self) -> None:
        """Load the weights (called before ``generate`` when not ``loaded``)."""

    @abc.abstractmethod
    def generate(self, spec: GenerationSpec, emit: Callable[[str], None],
                 cancel: threading.Event) -> Outcome:
        """Generate, passing each text delta to ``emit`` as soon as it is decoded.

        Check ``cancel`` every token and return early once it is set.
        """

    @abc.abstractmethod
    def unload(self) -> None:
        """Drop the weights and close native handles; ``load`` may be called again."""


def require(module: str, extra: str, what: str) -> Any:
    """Import an optional back end, or raise ``BackendNotInstalledError`` naming the pip command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendNotInstalledError(
            f"{what} needs the {module.split('.')[0]!r} package, which is not installed: "
            f'pip install "abstractcore[{extra}]"') from exc


def collect_garbage(*dropped: weakref.ref[Any]) -> None:
    """Free what was just dropped, then ask glibc to hand freed heap pages back to the OS.

    ``dropped`` are weak references to the objects released: when they are all
    dead already (no reference cycles kept them), the full ``gc.collect()``,
    which takes ~0.2 s once torch and transformers are imported, is skipped.
    """
    if not dropped or any(ref() is not None for ref in dropped):
        gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


class StopMatcher:
    """Cuts streamed text at the first stop string, holding back a possible partial match."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._pending = ""
        self.hit = False

    def feed(self, text: str) -> str:
        """The part of ``text`` that is safe to emit now (``hit`` turns True at a stop)."""
        if not self._stops:
            return text
        buffer = self._pending + text
        found = [i for i in (buffer.find(s) for s in self._stops) if i >= 0]
        if found:
            self.hit = True
            self._pending = ""
            return buffer[:min(found)]
        hold = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), hold, -1):
                if buffer.endswith(stop[:size]):
                    hold = size
                    break
        self._pending = buffer[len(buffer) - hold:] if hold else ""
        return buffer[:len(buffer) - hold]

    def flush(self) -> str:
        """Whatever was held back, at the end of a generation that did not stop on a string."""
        pending, self._pending = self._pending, ""
        return pending


def _chat_messages(messages: Sequence[Message], provider: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message.content, str) and any(
                isinstance(p, ImagePart) for p in message.content):
            raise ConfigurationError(
                f"{provider} runs text-only models in process; images are not supported.")
        out.append({**message_to_openai(message), "content": message.text})
    return out


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


class LocalProvider(AsyncProvider):
    """Base of providers that run the model in this process."""

    extra_params: ClassVar[frozenset[str]] = LOCAL_PARAMS
    capabilities: Capabilities = Capabilities(tools=True, structured_output=True, vision=False,
                                              stream_usage=True, local=True)

    def __init__(self, model: str | None = None, **config: Any) -> None:
        self._engine: Engine | None = None
        given = "timeout" in config
        super().__init__(model, **config)
        if not given:  # the network default (600 s) would cut a long CPU generation
            self.timeout = Timeout.of(None)
        self._worker: ModelWorker[StreamChunk] = ModelWorker(self.name)

    @abc.abstractmethod
    def _create_engine(self) -> Engine:
        """Resolve the model and build the engine for it (blocking; runs in the worker thread).

        Raise ``ModelNotFoundError`` when the model is not on this machine.
        """

    @property
    def loaded(self) -> bool:
        """True while the model's weights are in memory."""
        return self._engine is not None and self._engine.loaded

    @property
    def busy(self) -> bool:
        """True while the model is loading, generating or unloading."""
        return self._worker.busy

    # -- hooks ------------------------------------------------------------------

    def _spec(self, request: Request) -> GenerationSpec:
        if request.tools and not self.capabilities.tools:
            raise ConfigurationError(
                f"{self.name} has no tool calling; use a GGUF model with the 'huggingface' "
                "provider, or an OpenAI-compatible server.")
        params = request.params
        stop = params.get("stop")
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        return GenerationSpec(
            messages=_chat_messages(request.messages, self.name),
            max_tokens=_integer(params.get("max_tokens")),
            temperature=_number(params.get("temperature")), top_p=_number(params.get("top_p")),
            top_k=_integer(params.get("top_k")), min_p=_number(params.get("min_p")), stop=stops,
            seed=_integer(params.get("seed")),
            presence_penalty=_number(params.get("presence_penalty")),
            frequency_penalty=_number(params.get("frequency_penalty")),
            repeat_penalty=_number(params.get("repeat_penalty")),
            json_schema=request.json_schema, tools=tuple(tools_to_openai(request.tools)),
            tool_choice=tool_choice_to_openai(request.tool_choice) if request.tools else None)

    async def _complete(self, request: Request) -> GenerateResponse:
        spec = replace(self._spec(request), stream=False)

        def job(cancel: threading.Event) -> GenerateResponse:
            engine = self._ready_engine(spec)
            parts: list[str] = []
            outcome = self._guard("generating", lambda: engine.generate(spec, parts.append, cancel))
            return GenerateResponse(content="".join(parts), usage=outcome.usage,
                                    tool_calls=list(outcome.tool_calls),
                                    finish_reason=outcome.finish_reason, model=self.model,
                                    provider=self.name)

        total = request.timeout.total
        if total is None:
            return await self._worker.run(job)
        try:
            with anyio.fail_after(total):  # cancelling sets the flag: generation stops
                return await self._worker.run(job)
        except TimeoutError:
            raise ProviderTimeoutError(
                f"{self.name} did not finish within timeout={total:g} s (model {self.model!r}); "
                "raise timeout= or lower max_tokens.", provider=self.name,
                model=self.model) from None

    def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        spec = self._spec(request)  # bad arguments raise here, before any work
        model = self.model

        def job(emit: Emit[StreamChunk], cancel: threading.Event) -> None:
            engine = self._ready_engine(spec)

            def text(delta: str) -> None:
                if delta:
                    emit(StreamChunk(content=delta, model=model))

            outcome = self._guard("generating", lambda: engine.generate(spec, text, cancel))
            if not cancel.is_set():
                emit(StreamChunk(finish_reason=outcome.finish_reason, usage=outcome.usage,
                                 tool_calls=list(outcome.tool_calls), model=model))

        return self._worker.stream(job)

    async def aunload(self) -> None:
        """Free the model's weights and native handles (the next call loads it again)."""
        await self._worker.run(lambda cancel: self._unload_now())
        await super().aunload()

    # -- helpers (worker thread) --------------------------------------------------

    def _ready_engine(self, spec: GenerationSpec) -> Engine:
        """The loaded engine (called under the model lock, in the worker thread)."""
        if self._engine is None:
            self._engine = self._guard("loading", self._create_engine, load=True)
        engine = self._engine
        if spec.tools and not engine.supports_tools:
            raise ConfigurationError(
                f"{self.name}: tools need a GGUF model run by llama.cpp in process; "
                f"{type(engine).__name__} has no tool calling. Use a GGUF model, or an "
                "OpenAI-compatible server for tool calling.")
        if not engine.loaded:
            self._guard("loading", engine.load, load=True)
        return engine

    def _unload_now(self) -> None:
        engine = self._engine
        if engine is not None and engine.loaded:
            engine.unload()

    def _guard(self, doing: str, fn: Callable[[], Any], *, load: bool = False) -> Any:
        """Call ``fn``; turn a back end's own exception into ``ModelLoadError``/``LocalBackendError``."""
        try:
            return fn()
        except (AbstractCoreError, StreamClosed):
            raise
        except MemoryError as exc:
            raise ModelLoadError(f"{self.name}: not enough memory for model {self.model!r}.",
                                 provider=self.name, model=self.model) from exc
        except Exception as exc:
            cls = ModelLoadError if load else LocalBackendError
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise cls(f"{self.name} failed {doing} model {self.model!r}: {detail}",
                      provider=self.name, model=self.model) from exc
