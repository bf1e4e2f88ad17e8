"""The scheduler: one loaded model, its context and batch, the queue of requests and the thread
that decodes them.

- ``submit()`` (any thread) renders the prompt with the GGUF's chat template, tokenizes it and
  builds the request's sampler chain, then queues it and returns a ``Generation`` at once;
- between two decode steps the scheduler admits queued requests into free sequences
  (``Sequences``: prefix caches and copies), then decodes ONE batch per step: a token for every
  generating sequence and, within a budget of ``PREFILL_CHUNK`` tokens, chunks of the prompts
  still being read (chunked prefill);
- each sequence samples with its own chain, cuts at its own stop strings and hands its text to
  its own callback;
- cancellation is checked every step; a step made only of cancelled sequences is aborted
  (``AbortFlag``).
"""

from __future__ import annotations

import importlib
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from abstractcore.engines.base import (
    EngineClosed,
    GenerationSpec,
    Outcome,
    StopMatcher,
    check_context,
)
from abstractcore.engines.llamacpp import forced_tool
from abstractcore.engines.llamacpp_batch.abort import AbortFlag, quiet_aborts_on_this_thread
from abstractcore.engines.llamacpp_batch.loading import BATCH, Options, load
from abstractcore.engines.llamacpp_batch.request import Generation, Request
from abstractcore.engines.llamacpp_batch.sampling import sampler_chain
from abstractcore.engines.llamacpp_batch.sequences import Sequences
from abstractcore.engines.llamacpp_batch.vocab import Vocab

__all__ = ["PREFILL_CHUNK", "Scheduler"]

#: Prompt tokens decoded per step, shared by the sequences still reading their prompt. A cancel
#: waits for the step in progress when other sequences share it, so this bounds that wait.
PREFILL_CHUNK = 64

_log = logging.getLogger(__name__)


class Scheduler:
    """One loaded model: its context, its batch, its scheduler thread and the queued requests."""

    def __init__(self, llama_cpp: Any, path: Path, options: Options) -> None:
        self._ll = llama_cpp
        self._model, self._ctx = load(llama_cpp, path, options)
        self.n_seq = int(llama_cpp.llama_n_seq_max(self._ctx))
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self.vocab = Vocab(llama_cpp, self._model)
        self.vocab.compile_template()  # in the load (gil.loading), not in the first request
        self._vocab = self.vocab.pointer
        self._n_vocab = self.vocab.n_tokens
        #: Every token id that ends a generation.
        self.eog_ids = self.vocab.eog_ids
        self._np = importlib.import_module("numpy")  # a dependency of llama-cpp-python
        #: The most tokens one sequence holds: its context.
        self.n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(self._ctx))
        #: The context the model was trained for (its GGUF metadata), None when it does not say.
        self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(self._model)) or None
        self._batch = llama_cpp.llama_batch_init(BATCH, 0, 1)
        self._abort = AbortFlag(llama_cpp)
        self._abort.install(llama_cpp, self._ctx)
        self._native = threading.Lock()  # held while other threads use the model (submit) or free it
        self._freed = False
        self._cond = threading.Condition()
        self._pending: deque[Request] = deque()
        self._calls: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._closing = False
        # scheduler-thread state
        self._seqs = Sequences(llama_cpp, self._mem, self.n_seq)
        self._active: list[Request] = []
        self._in_step: list[Request] = []
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
                "kv_tokens": self._seqs.kv_tokens(),
                "cached_tokens": self._seqs.cached_tokens(),
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
    ) -> Request:
        tool = forced_tool(spec)
        prompt = self.vocab.prompt_tokens(spec)
        check_context(len(prompt), self.n_ctx_seq, engine="llama.cpp")
        room = self.n_ctx_seq - len(prompt)
        max_new = room if not spec.max_tokens or spec.max_tokens <= 0 else min(spec.max_tokens, room)
        constraint = None
        if spec.constraint is not None:  # compiled here, off the scheduler thread
            constraint = spec.constraint(self, eos_ids=self.eog_ids, vocab_size=self._n_vocab)
        sampler = sampler_chain(self._ll, spec, self._n_vocab)
        return Request(
            handle=Generation(self, cancel, len(prompt)),
            prompt=prompt,
            max_new=max_new,
            sampler=sampler,
            stops=StopMatcher(spec.stop),
            emit=emit,
            tool=None if tool is None else str(tool["function"]["name"]),
            constraint=constraint,
        )

    def prompt_tokens(self, spec: GenerationSpec) -> list[int]:
        """The chat template's prompt, tokenized as ``submit`` does (any thread)."""
        return self.vocab.prompt_tokens(spec)

    @property
    def llama_vocab(self) -> Any:
        """llama.cpp's vocabulary pointer (what ``features.constrain`` builds its tokenizer from)."""
        return self._vocab

    # -- the scheduler thread -------------------------------------------------------------------

    def _run(self) -> None:
        quiet_aborts_on_this_thread(self._abort)
        try:
            while self._next_round():
                try:
                    self._step()
                except Exception as exc:  # keep serving: fail what was running, reset the cache
                    _log.exception("llama.cpp batch step failed")
                    for request in list(self._active):
                        self._finish(request, "cancelled", error=exc)
                    self._seqs.clear()
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
            if not self._seqs.free:
                break
            if self._seqs.awaits_donor(request, self._active):
                continue
            with self._cond:
                self._pending.remove(request)
            self._counts["prompt_tokens_copied"] += self._seqs.place(request, self._active)
            self._active.append(request)

    def _fill_batch(self) -> list[tuple[Request, int, int]]:
        """Write this step's tokens into the batch; return (request, tokens, output index or -1)."""
        plan: list[tuple[Request, int, int]] = []
        n = 0
        generating = sorted((r for r in self._active if r.next_token >= 0), key=lambda r: r.seq)
        for request in generating:  # one token each
            self._put(n, request.next_token, request.n_past, request.seq, True)
            plan.append((request, 1, n))
            n += 1
        budget = min(PREFILL_CHUNK, BATCH - n)
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

    def _advance(self, plan: list[tuple[Request, int, int]]) -> None:
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
        if self._seqs.drop_caches():
            return
        youngest = self._active[-1]
        _log.warning("llama.cpp KV cache full: a request ends with 'length'")
        self._finish(youngest, "length")

    def _sample(self, request: Request, out_index: int) -> None:
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
        text = request.stops.feed(request.decoder.decode(self.vocab.token_bytes(token)))
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

    def _emit(self, request: Request, text: str) -> bool:
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
        self, request: Request, reason: str, *, error: BaseException | None = None, flush: bool = True
    ) -> None:
        """End ``request``: flush its text, free or cache its KV cells, free its sampler, resolve it."""
        if request in self._active:
            self._active.remove(request)
            self._seqs.release(request, keep=error is None)
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
        future.set_result(
            Outcome(reason, len(request.prompt), len(request.completion), calls, cached_tokens=request.cached)
        )
