"""Continuous batching for GGUF models in process: one llama.cpp context serves many requests at once.

``LlamaCppBatchEngine`` runs the "huggingface" provider's GGUF models when ``parallel > 1``. It
owns one ``llama_context`` with ``parallel`` sequences and one scheduler thread, built on
llama-cpp-python's low-level API (``llama_batch``, ``llama_decode``, per-sequence KV-cache calls,
``llama_sampler`` chains):

- ``submit()`` (any thread) renders the prompt with the GGUF's chat template, tokenizes it and
  builds the request's sampler chain, then queues it and returns a ``Generation`` at once;
- between two decode steps the scheduler admits queued requests into free sequences, then
  decodes ONE batch per step: a token for every generating sequence and, within a budget of
  ``PREFILL_CHUNK`` tokens, chunks of the prompts still being read (chunked prefill);
- each sequence samples with its own chain (grammar, penalties, top-k/top-p/min-p,
  temperature, seed), cuts at its own stop strings and hands its text to its own callback.

Measured choices (``benchmarks/README.md``):

- The KV cache is split per sequence and every sequence gets the whole ``n_ctx``: a prompt
  that fits with ``parallel=1`` fits here, and a sequence's cells are laid out exactly as if it
  ran alone, so greedy output does not depend on what else is in the batch (with flash
  attention, llama.cpp's default on CPU). The price is memory: ``n_ctx x parallel`` cells.
- A finished request's tokens stay in its sequence (a prefix cache, as ``Llama`` and
  llama-server keep one): a later prompt sharing that prefix decodes only the rest.
- A prompt that shares ``MIN_SHARED_COPY`` tokens or more with a running request's gets them by
  copying that sequence's KV cells (``llama_memory_seq_cp``, a whole-stream copy, ~10 ms for
  90 MiB) instead of decoding them, and waits in the queue while that request is still
  decoding them. Every chat prompt begins with the template and the system prompt, so the
  first burst on a fresh model decoded that once per sequence: its gather of 8 was 1.05x
  sequential calls where later ones were 1.85x; it now decodes it once (``stats()`` counts
  ``prompt_tokens_decoded`` and ``prompt_tokens_copied``).
- Cancellation is checked every step. A step made only of cancelled sequences, ``unload()``
  and interpreter exit abort ``llama_decode`` itself, within one graph node, through
  llama.cpp's abort callback, which reads a flag byte without taking the GIL.

llama.cpp's log goes to the ``abstractcore.llamacpp`` logger (``llamacpp_native``).
"""

from __future__ import annotations

import codecs
import ctypes
import importlib
import logging
import os
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abstractcore.engines import llamacpp_native
from abstractcore.engines.base import (
    BatchEngine,
    ContextSizes,
    EngineClosed,
    GenerationSpec,
    Outcome,
    StopMatcher,
    check_context,
    collect_garbage,
    require,
)
from abstractcore.engines.embedding import GGUFEmbedder
from abstractcore.engines.host import register
from abstractcore.engines.llamacpp import DEFAULT_N_CTX, forced_tool, gguf_trained_context, template_switches
from abstractcore.engines.worker import EXIT_JOIN_SECONDS

__all__ = [
    "AUTO_KV_BUDGET",
    "DEFAULT_PARALLEL",
    "MAX_PARALLEL",
    "PREFILL_CHUNK",
    "EngineClosed",
    "Generation",
    "LlamaCppBatchEngine",
]

#: Sequences decoded together by default (see benchmarks/README.md for the measurements).
DEFAULT_PARALLEL = 4
#: Without an explicit ``parallel``, fewer sequences are made when 4 would take more KV cache.
AUTO_KV_BUDGET = 1 << 30
#: llama.cpp's LLAMA_MAX_SEQ.
MAX_PARALLEL = 256
#: Prompt tokens decoded per step, shared by the sequences still reading their prompt. A cancel
#: waits for the step in progress when other sequences share it, so this bounds that wait.
PREFILL_CHUNK = 64
#: A prompt sharing at least this many tokens with another sequence's (running or queued just
#: before it) gets them by copying that sequence's KV cells instead of decoding them again: the
#: chat template and system prompt of a burst of requests are decoded once, not once per sequence.
MIN_SHARED_COPY = 16

_log = logging.getLogger(__name__)
#: create_chat_completion's defaults, so that parallel=1 and parallel>1 sample alike.
_DEFAULTS = {"temperature": 0.2, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0}
_PENALTY_LAST_N = 64  # Llama's last_n_tokens_size
_BATCH = 512  # llama_batch capacity and n_batch / n_ubatch


class Generation:
    """One submitted request. ``future`` resolves to its ``Outcome``; ``cancel()`` stops it."""

    def __init__(self, scheduler: _Scheduler, cancel: threading.Event, prompt_tokens: int) -> None:
        self.future: Future[Outcome] = Future()
        self.cancel_event = cancel
        self.prompt_tokens = prompt_tokens
        self._scheduler = scheduler

    def __repr__(self) -> str:
        return f"Generation(prompt_tokens={self.prompt_tokens}, done={self.future.done()})"

    def cancel(self) -> None:
        """Stop this request within a decode step (at once when it decodes alone)."""
        self.cancel_event.set()
        self._scheduler.poke()


# -- abort callback: a flag llama.cpp reads inside llama_decode, without Python ------------------


class _AbortFlag:
    """A flag byte for llama.cpp's abort callback (``bool (*)(void *)``), read without the GIL.

    libc's ``strlen`` on this two-byte buffer returns 1 while the first byte is set and 0 while it
    is NUL, which is exactly "abort now?". A Python callback would take the GIL at every graph
    node (~1,000 per step), competing with the event loop's thread each time.
    """

    def __init__(self, llama_cpp: Any) -> None:
        self._byte = ctypes.create_string_buffer(2)
        self.callback: Any = None
        try:
            libc = ctypes.cdll.msvcrt if os.name == "nt" else ctypes.CDLL(None)
            self.callback = llama_cpp.ggml_abort_callback(ctypes.cast(libc.strlen, ctypes.c_void_p).value)
        except (OSError, AttributeError, TypeError):  # no libc to borrow: steps end on their own
            pass

    def install(self, llama_cpp: Any, ctx: Any) -> None:
        """Make ``ctx``'s decode steps check this flag."""
        if self.callback is not None:
            llama_cpp.llama_set_abort_callback(ctx, self.callback, ctypes.cast(self._byte, ctypes.c_void_p))

    def set(self) -> None:
        """Abort the step in progress (and every step until ``clear``)."""
        self._byte[0] = b"\x01"

    def clear(self) -> None:
        """Let steps run."""
        self._byte[0] = b"\x00"

    def is_set(self) -> bool:
        """True while steps abort."""
        return self._byte.raw[0] != 0


_scheduler_thread = threading.local()
#: llama.cpp logs these as errors when a step is aborted; after an abort asked for, they are noise.
_ABORT_NOISE = (
    "graph_compute:",
    "process_ubatch: failed to compute graph",
    "decode: removing memory",
    "llama_decode: failed to decode, ret = 2",
)


class _QuietAbort(logging.Filter):
    """Drops llama.cpp's error lines about a step this engine aborted on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        abort: _AbortFlag | None = getattr(_scheduler_thread, "abort", None)
        return not (abort is not None and abort.is_set() and record.getMessage().startswith(_ABORT_NOISE))


logging.getLogger(llamacpp_native.LOGGER_NAME).addFilter(_QuietAbort())


# -- one request --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Request:
    """A submitted request; once queued, its mutable fields belong to the scheduler thread."""

    handle: Generation
    prompt: list[int]
    max_new: int
    sampler: Any  # llama_sampler_p, freed by the scheduler
    stops: StopMatcher
    emit: Callable[[str], None] | None
    #: The forced tool's name: the text is then that call's arguments (kept in ``text``), not emitted.
    tool: str | None = None
    #: Constrained decoding (``GenerationSpec.constraint``'s processor), or None.
    constraint: Any = None
    seq: int = -1
    cached: int = 0  # prompt tokens found in the sequence's KV cells at admission
    n_past: int = 0  # tokens of this sequence in the KV cache
    n_prompt_done: int = 0  # prompt tokens decoded so far
    next_token: int = -1  # sampled, not decoded yet
    completion: list[int] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )


@dataclass(frozen=True)
class _Options:
    """How the context is built."""

    n_ctx: int  # per sequence
    n_seq: int | None  # None: chosen from the KV cache's size (``auto_parallel``)
    n_threads: int
    n_gpu_layers: int | None
    repack: bool = True  # llama.cpp's weight repacking (``llamacpp_native.use_extra_buffers``)


# -- the scheduler: model, context, thread ------------------------------------------------------


class _Scheduler:
    """One loaded model: its context, its batch, its scheduler thread and the queued requests."""

    def __init__(self, llama_cpp: Any, path: Path, options: _Options) -> None:
        self._ll = llama_cpp
        self._model, self._ctx = _load(llama_cpp, path, options)
        self.n_seq = int(llama_cpp.llama_n_seq_max(self._ctx))
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        #: Every token id that ends a generation.
        self.eog_ids = llamacpp_native.eog_ids(llama_cpp, self._vocab)
        self._np = importlib.import_module("numpy")  # a dependency of llama-cpp-python
        #: The most tokens one sequence holds: its context.
        self.n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(self._ctx))
        #: The context the model was trained for (its GGUF metadata), None when it does not say.
        self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(self._model)) or None
        self._batch = llama_cpp.llama_batch_init(_BATCH, 0, 1)
        self._piece = ctypes.create_string_buffer(256)
        self._formatter: Any = None
        self._abort = _AbortFlag(llama_cpp)
        self._abort.install(llama_cpp, self._ctx)
        self._native = threading.Lock()  # held while other threads use the model (submit) or free it
        self._freed = False
        self._cond = threading.Condition()
        self._pending: deque[_Request] = deque()
        self._calls: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._closing = False
        # scheduler-thread state
        self._free = list(range(self.n_seq))
        self._slot_cache: dict[int, list[int]] = {}  # free sequence -> the tokens its KV cells hold
        self._active: list[_Request] = []
        self._in_step: list[_Request] = []
        self._counts = {"prompt_tokens_decoded": 0, "prompt_tokens_copied": 0, "steps": 0}
        self._thread = threading.Thread(target=self._run, name="abstractcore-llamacpp-batch", daemon=True)
        self._thread.start()

    # -- any thread -----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while requests are queued or running."""
        with self._cond:
            return bool(self._pending or self._active)

    def submit(
        self, spec: GenerationSpec, emit: Callable[[str], None] | None, cancel: threading.Event
    ) -> Generation:
        """Prepare ``spec`` on this thread and queue it; ``ContextLengthExceededError`` first if it
        does not fit a sequence, ``EngineClosed`` once ``close()`` began."""
        with self._native:
            if self._freed or self._closing:
                raise EngineClosed("the model was unloaded")
            request = self._prepare(spec, emit, cancel)
            with self._cond:
                if self._closing:
                    self._ll.llama_sampler_free(request.sampler)
                    raise EngineClosed("the model was unloaded")
                self._pending.append(request)
                self._cond.notify()
        return request.handle

    def poke(self) -> None:
        """A request was cancelled: wake the scheduler, and abort the running step when every
        sequence in it is cancelled (nobody waits for its result)."""
        with self._cond:
            if self._in_step and all(r.handle.cancel_event.is_set() for r in self._in_step):
                self._abort.set()
            self._cond.notify()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the scheduler thread between two steps and return its result."""
        future: Future[Any] = Future()
        with self._cond:
            if self._closing:
                raise EngineClosed("the model was unloaded")
            self._calls.append((fn, future))
            self._cond.notify()
        return future.result()

    def stats(self) -> dict[str, int]:
        """Requests queued and running, KV cells in use, and those held by idle sequences' caches."""
        result: dict[str, int] = self.call(
            lambda: {
                "pending": len(self._pending),
                "active": len(self._active),
                "kv_tokens": self._kv_tokens(),
                "cached_tokens": sum(len(t) for t in self._slot_cache.values()),
                **self._counts,
            }
        )
        return result

    def close(self, timeout: float | None = None) -> bool:
        """Stop the thread (queued and running requests end "cancelled") and free the model.

        Returns False, leaving the native objects alone, if the thread did not stop in time.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("unload() was called from a token callback of the same model")
        with self._cond:
            self._closing = True
            self._abort.set()
            self._cond.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            _log.warning("the llama.cpp batch scheduler did not stop; its model stays in memory")
            return False
        with self._native:
            if not self._freed:
                self._freed = True
                self._ll.llama_batch_free(self._batch)
                self._ll.llama_free(self._ctx)
                self._ll.llama_model_free(self._model)
        return True

    # -- preparing a request (the submitting thread; the vocabulary is read-only) ---------------

    def _prepare(
        self, spec: GenerationSpec, emit: Callable[[str], None] | None, cancel: threading.Event
    ) -> _Request:
        tool = forced_tool(spec)
        prompt = self._prompt_tokens(spec)
        check_context(len(prompt), self.n_ctx_seq, engine="llama.cpp")
        room = self.n_ctx_seq - len(prompt)
        max_new = room if not spec.max_tokens or spec.max_tokens <= 0 else min(spec.max_tokens, room)
        constraint = None
        if spec.constraint is not None:  # compiled here, off the scheduler thread
            constraint = spec.constraint(self, eos_ids=self.eog_ids, vocab_size=self._n_vocab)
        sampler = self._sampler(spec)
        return _Request(
            handle=Generation(self, cancel, len(prompt)),
            prompt=prompt,
            max_new=max_new,
            sampler=sampler,
            stops=StopMatcher(spec.stop),
            emit=emit,
            tool=None if tool is None else str(tool["function"]["name"]),
            constraint=constraint,
        )

    def _prompt_tokens(self, spec: GenerationSpec) -> list[int]:
        """The chat template's prompt, tokenized as ``create_chat_completion`` does."""
        tools = list(spec.tools) or None
        choice = spec.tool_choice if tools else None
        rendered = self._chat_formatter()(
            messages=spec.messages, tools=tools, tool_choice=choice, **spec.template_kwargs
        )
        if spec.on_prompt is not None:
            spec.on_prompt(str(rendered.prompt))
        return self._tokenize(str(rendered.prompt), add_special=not rendered.added_special)

    def _chat_formatter(self) -> Any:
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            raw = self._ll.llama_model_chat_template(self._model, None)
            if not raw:
                raise ValueError("the GGUF has no chat template (tokenizer.chat_template)")
            bos, eos = self._ll.llama_vocab_bos(self._vocab), self._ll.llama_vocab_eos(self._vocab)
            self._formatter = Jinja2ChatFormatter(
                template=raw.decode("utf-8"),
                bos_token=self._token_text(bos),
                eos_token=self._token_text(eos),
                add_generation_prompt=True,
            )
        return self._formatter

    def _token_text(self, token: int) -> str:
        raw = self._ll.llama_vocab_get_text(self._vocab, token) if token >= 0 else b""
        return raw.decode("utf-8", errors="replace") if raw else ""

    def _tokenize(self, text: str, *, add_special: bool) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 8
        while True:
            buf = (self._ll.llama_token * size)()
            n = self._ll.llama_tokenize(self._vocab, data, len(data), buf, size, add_special, True)
            if n >= 0:
                return list(buf[:n])
            size = -n

    @property
    def llama_vocab(self) -> Any:
        """llama.cpp's vocabulary pointer (what ``features.constrain`` builds its tokenizer from)."""
        return self._vocab

    def _sampler(self, spec: GenerationSpec) -> Any:
        """The request's own chain (the chain owns the samplers added to it)."""
        ll = self._ll
        chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        for stage in self._stages(spec):
            ll.llama_sampler_chain_add(chain, stage)
        return chain

    def _stages(self, spec: GenerationSpec) -> list[Any]:
        ll = self._ll

        def pick(name: str) -> Any:
            value = getattr(spec, name)
            return _DEFAULTS[name] if value is None else value

        stages = []
        repeat, presence, frequency = pick("repeat_penalty"), spec.presence_penalty, spec.frequency_penalty
        if repeat != 1.0 or presence or frequency:
            stages.append(
                ll.llama_sampler_init_penalties(
                    self._n_vocab, _PENALTY_LAST_N, repeat, frequency or 0.0, presence or 0.0
                )
            )
        temperature = pick("temperature")
        if temperature <= 0:
            return [*stages, ll.llama_sampler_init_greedy()]
        if pick("top_k") > 0:
            stages.append(ll.llama_sampler_init_top_k(pick("top_k")))
        if pick("top_p") < 1.0:
            stages.append(ll.llama_sampler_init_top_p(pick("top_p"), 1))
        if pick("min_p") > 0.0:
            stages.append(ll.llama_sampler_init_min_p(pick("min_p"), 1))
        seed = ll.LLAMA_DEFAULT_SEED if spec.seed is None else spec.seed & 0xFFFFFFFF
        return [*stages, ll.llama_sampler_init_temp(temperature), ll.llama_sampler_init_dist(seed)]

    # -- the scheduler thread -------------------------------------------------------------------

    def _run(self) -> None:
        _scheduler_thread.abort = self._abort
        try:
            while self._next_round():
                try:
                    self._step()
                except Exception as exc:  # keep serving: fail what was running, reset the cache
                    _log.exception("llama.cpp batch step failed")
                    for request in list(self._active):
                        self._finish(request, "cancelled", error=exc)
                    self._slot_cache.clear()
                    self._ll.llama_memory_clear(self._mem, True)
        finally:
            self._cancel_everything()

    def _next_round(self) -> bool:
        """Wait for work; run queued calls. False once closing."""
        with self._cond:
            while not (self._closing or self._pending or self._active or self._calls):
                self._cond.wait()
            if self._closing:
                return False
            calls = list(self._calls)
            self._calls.clear()
        for fn, future in calls:
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)
        return True

    def _cancel_everything(self) -> None:
        with self._cond:
            pending = list(self._pending)
            self._pending.clear()
            calls = list(self._calls)
            self._calls.clear()
        for request in [*self._active, *pending]:
            self._finish(request, "cancelled")
        for _fn, future in calls:
            future.set_exception(EngineClosed("the model was unloaded"))

    def _step(self) -> None:
        """Drop cancelled requests, admit queued ones, decode one batch, sample."""
        self._drop_cancelled()
        self._admit()
        plan = self._fill_batch()
        if not plan:
            return
        with self._cond:
            self._in_step = [request for request, _, _ in plan]
            if not self._closing:
                self._abort.clear()
        rc = self._ll.llama_decode(self._ctx, self._batch)
        with self._cond:
            self._in_step = []
        if rc == 0:
            self._advance(plan)
        elif rc == 2:  # aborted: undo what the finished ubatches wrote; the next step retries
            for request, _, _ in plan:
                self._ll.llama_memory_seq_rm(self._mem, request.seq, request.n_past, -1)
        elif rc == 1:  # no KV cells left (not expected: each sequence owns its cells)
            self._out_of_cells()
        else:
            raise RuntimeError(f"llama_decode returned {rc}")

    def _drop_cancelled(self) -> None:
        with self._cond:
            queued = [r for r in self._pending if r.handle.cancel_event.is_set()]
            for request in queued:
                self._pending.remove(request)
        for request in [*queued, *(r for r in self._active if r.handle.cancel_event.is_set())]:
            self._finish(request, "cancelled")

    def _admit(self) -> None:
        """Move queued requests into free sequences, first come first served; one whose prompt
        begins like a running request's waits until that one has decoded the shared part."""
        with self._cond:
            queued = list(self._pending)
        for request in queued:
            if not self._free:
                break
            if self._awaits_donor(request):
                continue
            with self._cond:
                self._pending.remove(request)
            self._place(request)
            self._active.append(request)

    def _shared_cache(self, request: _Request) -> tuple[int, int]:
        """(free sequence, prompt tokens its cached cells share): the longest, else the lowest id
        (consecutive ids batch best) with 0."""
        best, shared = min(self._free), 0
        for seq, cached in self._slot_cache.items():
            n = _common_prefix(cached, request.prompt)
            if n > shared:
                best, shared = seq, n
        return best, shared

    def _awaits_donor(self, request: _Request) -> bool:
        """True while a running request whose prompt shares ``MIN_SHARED_COPY`` tokens or more
        with this one's has not decoded them yet (and no free sequence holds them)."""
        _, cached = self._shared_cache(request)
        for other in self._active:
            n = min(_common_prefix(other.prompt, request.prompt), len(request.prompt) - 1)
            if n >= MIN_SHARED_COPY and n > cached and other.n_past < n:
                return True
        return False

    def _donor(self, request: _Request) -> tuple[_Request | None, int]:
        """The running request whose decoded cells share the longest prompt prefix, and how long."""
        donor, shared = None, 0
        for other in self._active:
            decoded = (other.prompt + other.completion)[: other.n_past]
            n = _common_prefix(decoded, request.prompt)
            if n > shared:
                donor, shared = other, n
        return donor, shared

    def _place(self, request: _Request) -> None:
        """Give ``request`` the free sequence whose cached tokens share the longest prefix with
        its prompt and keep that prefix; or, when a running sequence shares ``MIN_SHARED_COPY``
        more tokens, copy that sequence's cells (a whole-stream copy: the KV cache is split per
        sequence) and keep the shared part."""
        best, shared = self._shared_cache(request)
        donor, lent = self._donor(request)
        last = len(request.prompt) - 1  # decode at least one token: its logits are needed
        self._free.remove(best)
        request.seq = best
        if donor is not None and min(lent, last) >= max(MIN_SHARED_COPY, min(shared, last) + MIN_SHARED_COPY):
            self._slot_cache.pop(best, None)
            keep = min(lent, last)
            self._ll.llama_memory_seq_cp(self._mem, donor.seq, best, -1, -1)  # done before the next step
            self._ll.llama_memory_seq_rm(self._mem, best, keep, -1)
            self._counts["prompt_tokens_copied"] += keep
            request.cached = request.n_past = request.n_prompt_done = keep
            return
        keep = min(shared, last)
        if self._slot_cache.pop(best, None) is not None and not self._ll.llama_memory_seq_rm(
            self._mem, best, keep, -1
        ):
            self._ll.llama_memory_seq_rm(self._mem, best, -1, -1)  # cannot trim: start over
            keep = 0
        request.cached = request.n_past = request.n_prompt_done = keep

    def _fill_batch(self) -> list[tuple[_Request, int, int]]:
        """Write this step's tokens into the batch; return (request, tokens, output index or -1)."""
        plan: list[tuple[_Request, int, int]] = []
        n = 0
        generating = sorted((r for r in self._active if r.next_token >= 0), key=lambda r: r.seq)
        for request in generating:  # one token each
            self._put(n, request.next_token, request.n_past, request.seq, True)
            plan.append((request, 1, n))
            n += 1
        budget = min(PREFILL_CHUNK, _BATCH - n)
        for request in self._active:  # prompt chunks, in admission order
            if request.next_token >= 0 or budget <= 0:
                continue
            start = request.n_prompt_done
            count = min(len(request.prompt) - start, budget)
            last = start + count == len(request.prompt)
            for i in range(count):
                self._put(n + i, request.prompt[start + i], start + i, request.seq, last and i == count - 1)
            plan.append((request, count, n + count - 1 if last else -1))
            n += count
            budget -= count
        self._batch.n_tokens = n
        return plan

    def _put(self, i: int, token: int, pos: int, seq: int, logits: bool) -> None:
        batch = self._batch
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
        batch.logits[i] = logits

    def _advance(self, plan: list[tuple[_Request, int, int]]) -> None:
        """The step is in the cache: move every planned request on, sample where logits came."""
        self._counts["steps"] += 1
        for request, n_tokens, out_index in plan:
            request.n_past += n_tokens
            if request.next_token >= 0:
                request.next_token = -1
            else:
                request.n_prompt_done += n_tokens
                self._counts["prompt_tokens_decoded"] += n_tokens
            if out_index >= 0:
                self._sample(request, out_index)

    def _out_of_cells(self) -> None:
        if self._slot_cache:
            for seq in list(self._slot_cache):
                self._ll.llama_memory_seq_rm(self._mem, seq, -1, -1)
            self._slot_cache.clear()
            return
        youngest = self._active[-1]
        _log.warning("llama.cpp KV cache full: a request ends with 'length'")
        self._finish(youngest, "length")

    def _sample(self, request: _Request, out_index: int) -> None:
        """Sample the next token of ``request`` (``llama_sampler_sample`` also accepts it)."""
        if request.max_new <= 0:
            self._finish(request, "length")
            return
        constraint = request.constraint
        if constraint is not None:  # disallowed tokens -> -inf in the logits row the sampler reads
            row = self._ll.llama_get_logits_ith(self._ctx, out_index)
            constraint(self._np.ctypeslib.as_array(row, shape=(self._n_vocab,)))
        token = self._ll.llama_sampler_sample(request.sampler, self._ctx, out_index)
        if self._ll.llama_vocab_is_eog(self._vocab, token):
            self._finish(request, "stop")
            return
        if constraint is not None:
            try:
                constraint.advance(token)
            except Exception as exc:  # the grammar engine failed: end this request only
                self._finish(request, "cancelled", error=exc)
                return
        request.completion.append(token)
        text = request.stops.feed(request.decoder.decode(self._token_bytes(token)))
        if text and not self._emit(request, text):
            return
        if request.stops.hit:
            self._finish(request, "stop", flush=False)
        elif constraint is not None and constraint.is_finished:  # complete: no step spent on EOS
            self._finish(request, "stop")
        elif len(request.completion) >= request.max_new or request.n_past + 1 >= self.n_ctx_seq:
            self._finish(request, "length")
        else:
            request.next_token = token

    def _token_bytes(self, token: int) -> bytes:
        ll = self._ll
        n = ll.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, False)
        if n < 0:
            self._piece = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, False)
        return self._piece.raw[:n]

    def _emit(self, request: _Request, text: str) -> bool:
        """Hand ``text`` on (a forced tool's arguments are kept instead); False, and the request
        ended, when the callback raised."""
        if request.tool is not None:
            request.text.append(text)
            return True
        if request.emit is None:
            return True
        try:
            request.emit(text)
        except Exception as exc:  # the consumer went away (or its callback failed)
            cancelled = request.handle.cancel_event.is_set()
            self._finish(request, "cancelled", error=None if cancelled else exc)
            return False
        return True

    def _finish(
        self, request: _Request, reason: str, *, error: BaseException | None = None, flush: bool = True
    ) -> None:
        """End ``request``: flush its text, free or cache its KV cells, free its sampler, resolve it."""
        if request in self._active:
            self._active.remove(request)
            self._release(request, keep=error is None)
        if flush and error is None and reason != "cancelled":
            # bytes still in the decoder are an incomplete character (cut by max_tokens): dropped,
            # not decoded to U+FFFD
            request.decoder.reset()
            tail = request.stops.flush()
            if tail and not self._emit(request, tail):
                return
        if request.sampler is not None:
            self._ll.llama_sampler_free(request.sampler)
            request.sampler = None
        future = request.handle.future
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
            return
        calls: tuple[dict[str, Any], ...] = ()
        if request.tool is not None and reason != "cancelled":
            arguments = "".join(request.text)
            function = {"name": request.tool, "arguments": arguments}
            calls = ({"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function", "function": function},)
        future.set_result(Outcome(reason, len(request.prompt), len(request.completion), calls))

    def _release(self, request: _Request, *, keep: bool) -> None:
        """Free the request's sequence; with ``keep``, its cells stay as a prefix cache."""
        seq = request.seq
        self._ll.llama_memory_seq_rm(self._mem, seq, request.n_past, -1)  # anything past our state
        if keep and request.n_past > 0:
            self._slot_cache[seq] = (request.prompt + request.completion)[: request.n_past]
        else:
            self._ll.llama_memory_seq_rm(self._mem, seq, -1, -1)
        self._free.append(seq)

    def _kv_tokens(self) -> int:
        total = 0
        for seq in range(self.n_seq):
            hi = self._ll.llama_memory_seq_pos_max(self._mem, seq)
            if hi >= 0:
                total += hi - self._ll.llama_memory_seq_pos_min(self._mem, seq) + 1
        return total


def _load(llama_cpp: Any, path: Path, options: _Options) -> tuple[Any, Any]:
    """The model and a context of ``n_seq`` sequences of ``n_ctx`` cells each (per-sequence KV)."""
    llama_cpp.llama_backend_init()
    mparams = llama_cpp.llama_model_default_params()
    llamacpp_native.set_extra_buffers(mparams, options.repack is not False)
    if options.n_gpu_layers is not None:
        mparams.n_gpu_layers = options.n_gpu_layers
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
    if not model:
        raise ValueError(f"llama.cpp could not load {path} (see the abstractcore.llamacpp log)")
    n_seq = options.n_seq or auto_parallel(llama_cpp, model, options.n_ctx)
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = options.n_ctx * n_seq
    cparams.n_batch = cparams.n_ubatch = _BATCH
    cparams.n_seq_max = n_seq
    cparams.n_threads = cparams.n_threads_batch = options.n_threads
    cparams.kv_unified = False
    cparams.no_perf = True
    ctx = llama_cpp.llama_init_from_model(model, cparams)
    if not ctx:
        llama_cpp.llama_model_free(model)
        raise MemoryError(f"llama.cpp could not create a context of {n_seq} x {options.n_ctx} tokens")
    return model, ctx


def kv_bytes_per_token(llama_cpp: Any, model: Any) -> int:
    """Bytes of KV cache one token takes in every layer (f16 keys and values)."""
    layers = int(llama_cpp.llama_model_n_layer(model))
    heads = max(1, int(llama_cpp.llama_model_n_head(model)))
    kv_width = int(llama_cpp.llama_model_n_embd(model)) // heads * int(llama_cpp.llama_model_n_head_kv(model))
    return 2 * layers * 2 * kv_width


def auto_parallel(llama_cpp: Any, model: Any, n_ctx: int) -> int:
    """``DEFAULT_PARALLEL`` sequences, fewer when their KV cache would exceed ``AUTO_KV_BUDGET``.

    SmolLM2-135M: 90 MiB per 4,096-token sequence, so 4; an 8B model with 128 KiB per token:
    512 MiB per sequence, so 2; one sequence when a single one is over the budget.
    """
    per_sequence = kv_bytes_per_token(llama_cpp, model) * n_ctx
    return max(1, min(DEFAULT_PARALLEL, AUTO_KV_BUDGET // max(1, per_sequence)))


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


# -- the engine ---------------------------------------------------------------------------------


class LlamaCppBatchEngine(BatchEngine):
    """A GGUF model served to up to ``parallel`` requests at once by continuous batching.

    ``n_ctx`` is the context of each sequence (default 4096, as ``LlamaCppEngine``); the KV cache
    holds ``n_ctx x parallel`` cells. ``parallel=None`` chooses ``DEFAULT_PARALLEL`` (4), or fewer
    when their KV cache would exceed ``AUTO_KV_BUDGET`` (1 GiB). ``n_threads`` (default: half the
    CPUs, as llama-cpp-python) is used for every step. Tools: the chat template receives them; a forced tool
    (``tool_choice`` naming it) is generated under a grammar of its parameters and returned in
    ``Outcome.tool_calls``; otherwise the text is returned as generated.
    """

    supports_tools = True
    extra_body_fields = frozenset({"grammar"})

    def __init__(
        self,
        path: Path,
        *,
        parallel: int | None = None,
        n_ctx: int | None = None,
        n_gpu_layers: int | None = None,
        n_threads: int | None = None,
        repack: bool | None = None,
    ) -> None:
        self.path = path
        self.repack = repack
        #: Sequences; None until loaded when chosen automatically (``auto_parallel``).
        self.parallel = parallel
        self._auto = parallel is None
        self.n_ctx = n_ctx or DEFAULT_N_CTX
        self.n_gpu_layers = n_gpu_layers
        self.n_threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        self._scheduler: _Scheduler | None = None
        self._embedder: GGUFEmbedder | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LlamaCppBatchEngine({str(self.path)!r}, parallel={self.parallel})"

    @property
    def loaded(self) -> bool:
        """True while the model is in memory."""
        return self._scheduler is not None

    @property
    def busy(self) -> bool:
        """True while requests are queued or running."""
        scheduler = self._scheduler
        return scheduler is not None and scheduler.busy

    def load(self) -> None:
        """Load the GGUF and create the context and its scheduler thread."""
        llama_cpp = require("llama_cpp", "llamacpp", "Running GGUF models")
        llamacpp_native.prepare(llama_cpp)
        options = _Options(
            self.n_ctx,
            None if self._auto else self.parallel,
            self.n_threads,
            self.n_gpu_layers,
            llamacpp_native.use_extra_buffers(llama_cpp, self.repack),
        )
        with self._lock:
            if self._scheduler is None:
                self._scheduler = _Scheduler(llama_cpp, self.path, options)
                self.parallel = self._scheduler.n_seq
                register(self)

    def submit(
        self, spec: GenerationSpec, emit: Callable[[str], None] | None, cancel: threading.Event
    ) -> Generation:
        """Queue ``spec``; ``emit`` receives each piece of text on the scheduler thread (keep it
        quick, never block in it). Returns at once; ``EngineClosed`` when not loaded."""
        scheduler = self._scheduler
        if scheduler is None:
            raise EngineClosed("the model is not loaded")
        return scheduler.submit(spec, emit, cancel)

    def count_prompt(self, spec: GenerationSpec) -> int:
        """The prompt tokens of ``spec``, rendered and tokenized as ``submit`` does."""
        scheduler = self._scheduler
        if scheduler is None:
            raise EngineClosed("the model is not loaded")
        return len(scheduler._prompt_tokens(spec))

    def template_switches(self) -> frozenset[str]:
        """``enable_thinking`` when the GGUF's chat template reads it."""
        scheduler = self._scheduler
        if scheduler is None:
            raise EngineClosed("the model is not loaded")
        return template_switches(str(scheduler._chat_formatter().template))

    def stats(self) -> dict[str, int]:
        """``pending``, ``active``, ``kv_tokens`` (cells in use), ``cached_tokens`` (idle caches), and
        since load ``steps`` (decode steps), ``prompt_tokens_decoded`` and ``prompt_tokens_copied``
        (prompt tokens obtained from another sequence's KV cells)."""
        scheduler = self._scheduler
        if scheduler is None:
            return {"pending": 0, "active": 0, "kv_tokens": 0, "cached_tokens": 0, "steps": 0}
        return scheduler.stats()

    def context_sizes(self) -> ContextSizes:
        """The GGUF's trained context (its metadata) and ``n_ctx``, what each sequence gets."""
        scheduler = self._scheduler
        if scheduler is not None:
            return ContextSizes(scheduler.n_ctx_train, scheduler.n_ctx_seq)
        return ContextSizes(gguf_trained_context(self.path), self.n_ctx)

    def embed(self, texts: Sequence[str], cancel: threading.Event) -> tuple[list[list[float]], int]:
        """Mean-pooled, normalised vectors from a separate context in embedding mode (``embedding``);
        generation goes on meanwhile."""
        with self._lock:
            if self._embedder is None:
                self._embedder = GGUFEmbedder(
                    self.path, n_threads=self.n_threads, n_gpu_layers=self.n_gpu_layers, repack=self.repack
                )
                register(self)
            embedder = self._embedder
        return embedder.embed(texts, cancel)

    def unload(self) -> None:
        """Cancel queued and running requests (they end "cancelled"), stop the scheduler thread
        and free the model and the contexts; ``load`` may be called again."""
        self._shutdown(timeout=None)

    def close_at_exit(self, workers_stopped: bool) -> None:
        """(interpreter exit) Stop the scheduler (aborting a step in progress, bounded) and free the
        model, whether or not the worker threads stopped: the scheduler is not one of them."""
        self._shutdown(timeout=EXIT_JOIN_SECONDS)

    def _shutdown(self, timeout: float | None) -> bool:
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
            embedder, self._embedder = self._embedder, None
        if embedder is not None:
            embedder.close()
        if scheduler is None:
            return True
        stopped = scheduler.close(timeout)
        ref = weakref.ref(scheduler)
        del scheduler
        collect_garbage(ref)
        return stopped
