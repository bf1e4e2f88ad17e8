"""The contract of an in-process engine, and what every engine shares.

An engine is one back end (llama.cpp, transformers, MLX) driven by plain
blocking calls in a worker thread: it turns a ``GenerationSpec`` into text
deltas passed to ``emit`` and returns an ``Outcome`` (finish reason and token
counts from the real tokenizer). Engines know nothing of providers, features
or the event loop; a provider chooses one and hands it plain data (messages
as Chat Completions dicts) and plain callables.
"""

from __future__ import annotations

import abc
import ctypes
import gc
import importlib
import sys
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Protocol

from abstractcore.core.errors import BackendNotInstalledError, ContextLengthExceededError
from abstractcore.core.types import Usage

__all__ = [
    "BatchEngine",
    "BatchHandle",
    "ContextSizes",
    "Engine",
    "EngineClosed",
    "FollowingProcessor",
    "GenerationSpec",
    "Outcome",
    "StopMatcher",
    "check_context",
    "plain_transcript",
    "collect_garbage",
    "require",
]


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
    #: Constrained decoding, for engines that sample themselves (transformers, MLX): a factory
    #: called once per generation as ``constraint(tokenizer, eos_ids=..., vocab_size=...)`` with
    #: the engine's own tokenizer, every end-of-sequence id and the width of the logits. It
    #: returns a processor: ``processor(logits)`` gives the logits with disallowed tokens at -inf
    #: (torch/numpy in place, a new ``mx.array``), ``processor.advance(token)`` follows each
    #: sampled token but EOS, and ``processor.is_finished`` turns true once the output is
    #: complete (only EOS may follow: stop there). Built by the provider from ``json_schema``, or
    #: from the parameters of the tool ``tool_choice`` forces (engines with native tools).
    constraint: Callable[..., Any] | None = None
    #: Tools in the Chat Completions form, and the tool choice ("auto", or a forced tool).
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    #: False when nobody watches the text arrive (``generate``): an engine may then
    #: produce it in one piece if that is faster, still checking ``cancel`` every token.
    stream: bool = True
    #: Variables the chat template is rendered with besides the messages (``enable_thinking``),
    #: only names the engine's ``template_switches()`` lists.
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: Called with the rendered prompt before the first token (engines that render a chat
    #: template themselves): the provider reads whether it opens a thinking block.
    on_prompt: Callable[[str], None] | None = None


@dataclass(frozen=True)
class Outcome:
    """How a generation ended: ``finish_reason`` ("stop"/"length"/"tool_calls"/"cancelled").

    ``tool_calls`` are the calls in the Chat Completions form as the back end
    produced them (whole calls, or streamed fragments in order when
    ``tool_call_fragments`` is true); the provider assembles them.
    ``cached_tokens`` are the prompt tokens whose KV cells the engine reused from
    an earlier request (its prefix cache), among ``input_tokens``.
    """

    finish_reason: str
    input_tokens: int
    output_tokens: int
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_call_fragments: bool = False
    cached_tokens: int = 0

    @property
    def usage(self) -> Usage:
        """The counts as a ``Usage``."""
        return Usage.of(self.input_tokens, self.output_tokens, cached_tokens=self.cached_tokens)


class ContextSizes(NamedTuple):
    """A model's context, in tokens (``None``: not known)."""

    #: What the model was trained for, as its files say (GGUF metadata, ``config.json``).
    trained: int | None
    #: What one request gets from this engine (prompt plus answer): a longer prompt is refused.
    engine: int | None


class Engine(abc.ABC):
    """One in-process back end. All methods are blocking and run in the worker thread."""

    #: Whether ``generate`` honours ``spec.tools`` natively (and returns ``Outcome.tool_calls``).
    supports_tools: ClassVar[bool] = False
    #: The ``extra_body`` fields a call may give this engine (llama.cpp: ``grammar``, a GBNF
    #: grammar as llama-server takes it); any other is refused by the provider.
    extra_body_fields: ClassVar[frozenset[str]] = frozenset()
    #: Whether the engine reuses a repeated prompt prefix (KV cells kept from an earlier request)
    #: and says how many tokens in ``Outcome.cached_tokens``.
    prefix_cache: ClassVar[bool] = False

    @property
    @abc.abstractmethod
    def loaded(self) -> bool:
        """True while weights are in memory."""

    @abc.abstractmethod
    def load(self) -> None:
        """Load the weights (called before ``generate`` when not ``loaded``)."""

    @abc.abstractmethod
    def generate(self, spec: GenerationSpec, emit: Callable[[str], None], cancel: threading.Event) -> Outcome:
        """Generate, passing each text delta to ``emit`` as soon as it is decoded.

        Check ``cancel`` every token (and between chunks of the prompt) and
        return early once it is set. Raise ``ContextLengthExceededError``
        before any work when the prompt does not fit the context.
        """

    @abc.abstractmethod
    def unload(self) -> None:
        """Drop the weights and close native handles; ``load`` may be called again."""

    def close_at_exit(self, workers_stopped: bool) -> None:
        """(interpreter exit, ``engines.host``) Free the model while Python is whole.

        ``workers_stopped`` is False when a generation thread did not stop in time: it may still
        be inside native code, so by default the model is then left alone. Bound every wait.
        """
        if workers_stopped:
            self.unload()

    def context_sizes(self) -> ContextSizes:
        """The model's trained context and the one this engine gives a request, read from the
        model's files when the weights are not loaded (never loads them)."""
        return ContextSizes(None, None)

    def embed(self, texts: Sequence[str], cancel: threading.Event) -> tuple[list[list[float]], int]:
        """(one L2-normalised vector per text, tokens read); loads what it needs.

        Engines without embeddings raise ``ConfigurationError`` saying what to use.
        """
        from abstractcore.core.errors import ConfigurationError

        raise ConfigurationError(
            f"{type(self).__name__} has no embeddings; embed with a GGUF model (llama.cpp) or a "
            "transformers model in process, or an embedding server (Ollama, an OpenAI-compatible "
            "/v1/embeddings)."
        )

    def template_switches(self) -> frozenset[str]:
        """The variables of the model's chat template ``spec.template_kwargs`` may set
        (``enable_thinking`` where the template reads it: Qwen3, SmolLM3). Called loaded."""
        return frozenset()

    def count_prompt(self, spec: GenerationSpec) -> int | None:
        """The prompt tokens ``generate`` would read for ``spec`` (its chat template, its
        tokenizer), without generating; None when this engine cannot tell. Called loaded."""
        return None


class EngineClosed(RuntimeError):
    """The engine was unloaded (or is being unloaded): load it again and resubmit."""


class BatchHandle(Protocol):
    """One request submitted to a ``BatchEngine``."""

    #: Resolves to the request's ``Outcome`` (or its exception).
    future: Future[Outcome]

    def cancel(self) -> None:
        """Stop the request within a step (it ends "cancelled")."""


class BatchEngine(Engine):
    """An engine that serves several requests at once (continuous batching).

    ``submit`` queues a request and returns at once; ``emit`` receives each
    piece of text on the engine's own thread (keep it quick). The provider
    sends requests here directly instead of through its one-at-a-time worker.
    """

    @property
    @abc.abstractmethod
    def busy(self) -> bool:
        """True while requests are queued or running."""

    @abc.abstractmethod
    def submit(
        self, spec: GenerationSpec, emit: Callable[[str], None] | None, cancel: threading.Event
    ) -> BatchHandle:
        """Queue ``spec``; ``EngineClosed`` when the engine is not loaded."""

    def generate(self, spec: GenerationSpec, emit: Callable[[str], None], cancel: threading.Event) -> Outcome:
        """The blocking ``Engine`` contract: submit and wait (other requests run meanwhile)."""
        return self.submit(spec, emit, cancel).future.result()


def require(module: str, extra: str, what: str) -> Any:
    """Import an optional back end, or raise ``BackendNotInstalledError`` naming the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendNotInstalledError(
            f"{what} needs the {module.split('.')[0]!r} package, which is not installed: "
            f'pip install "abstractcore[{extra}]"'
        ) from exc


def check_context(prompt_tokens: int, context: int, *, engine: str) -> None:
    """Raise ``ContextLengthExceededError`` (with the numbers) when the prompt leaves no room."""
    if prompt_tokens >= context:
        raise ContextLengthExceededError(
            f"{engine}: the prompt has {prompt_tokens} tokens but the model's context holds "
            f"{context}; shorten the prompt, or load the model with a larger context (n_ctx=...).",
            prompt_tokens=prompt_tokens,
            context_length=context,
        )


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
            return buffer[: min(found)]
        hold = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), hold, -1):
                if buffer.endswith(stop[:size]):
                    hold = size
                    break
        self._pending = buffer[len(buffer) - hold :] if hold else ""
        return buffer[: len(buffer) - hold]

    def flush(self) -> str:
        """Whatever was held back, at the end of a generation that did not stop on a string."""
        pending, self._pending = self._pending, ""
        return pending


def plain_transcript(messages: Sequence[dict[str, Any]]) -> str:
    """A prompt for a base model without a chat template: ``Role: text`` lines, then ``Assistant:``."""
    lines = "".join(f"{str(m['role']).capitalize()}: {m.get('content') or ''}\n" for m in messages)
    return lines + "Assistant:"


class FollowingProcessor:
    """A constraint (``GenerationSpec.constraint``'s processor) in the ``(tokens, logits) -> logits``
    protocol of mlx-lm's ``logits_processors`` and llama-cpp-python's ``logits_processor``.

    Both pass the prompt plus the tokens sampled so far: the first call sees
    only the prompt, each later one the new token(s), which the constraint is
    advanced over. Once an end-of-sequence token has been sampled the calls
    that may still come (mlx-lm evaluates one step ahead) leave the logits alone.
    """

    def __init__(self, constraint: Any) -> None:
        self.constraint = constraint
        self.eos = frozenset(constraint.eos_ids)
        self.seen: int | None = None
        self.ended = False

    def __call__(self, tokens: Any, logits: Any) -> Any:
        if self.ended:
            return logits
        if self.seen is not None:
            for token in tokens[self.seen :].tolist():
                if int(token) in self.eos:
                    self.ended = True
                    return logits
                self.constraint.advance(int(token))
        self.seen = int(tokens.shape[0])
        return self.constraint(logits)
