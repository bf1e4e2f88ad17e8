"""Continuous batching for MLX models: mlx-lm's ``BatchGenerator`` behind the ``BatchEngine`` API.

``MLXBatchEngine`` runs the "mlx" provider's model when ``parallel > 1``. One
scheduler thread owns mlx-lm's ``BatchGenerator``: between two steps it
inserts the requests queued since (each with its own sampler, penalties and
constraint), removes the ones cancelled, then calls ``next()``, which
decodes one token for every running sequence (and prompt chunks for new
ones). Each token is turned into text per request (no split characters),
cut at the request's stop strings and handed to its own callback.

What differs from one-at-a-time MLX: ``seed=`` sets MLX's global generator
when the request is admitted, so a seeded sampled request is reproducible
only when it runs alone; greedy requests are unaffected.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abstractcore.engines.base import (
    BatchEngine,
    EngineClosed,
    FollowingProcessor,
    GenerationSpec,
    Outcome,
    StopMatcher,
    require,
)
from abstractcore.engines.host import register
from abstractcore.engines.mlx import MLXEngine
from abstractcore.engines.transformers import IncrementalDecoder
from abstractcore.engines.worker import EXIT_JOIN_SECONDS

__all__ = ["MLXBatchEngine"]

_WHAT = "Running MLX models"
_log = logging.getLogger(__name__)


class _Handle:
    """One submitted request: ``future`` resolves to its ``Outcome``; ``cancel()`` stops it."""

    def __init__(self, engine: MLXBatchEngine, cancel: threading.Event) -> None:
        self.future: Future[Outcome] = Future()
        self.cancel_event = cancel
        self._engine = engine

    def cancel(self) -> None:
        """Stop the request within a step."""
        self.cancel_event.set()
        self._engine._poke()


@dataclass
class _Request:
    handle: _Handle
    prompt: list[int]
    limit: int
    sampler: Any
    processors: list[Any]
    constraint: FollowingProcessor | None
    stops: StopMatcher
    decoder: IncrementalDecoder
    emit: Callable[[str], None] | None
    seed: int | None
    produced: int = 0
    uid: int = -1
    ended: bool = field(default=False)


class MLXBatchEngine(BatchEngine, MLXEngine):
    """An MLX model served to up to ``parallel`` requests at once (mlx-lm's ``BatchGenerator``)."""

    def __init__(self, path: Path, *, parallel: int) -> None:
        MLXEngine.__init__(self, path)
        self.parallel = parallel
        self._cond = threading.Condition()
        self._pending: deque[_Request] = deque()
        self._active: dict[int, _Request] = {}
        self._closing = False
        self._generator: Any = None
        self._thread: threading.Thread | None = None
        self._exiting = False

    def __repr__(self) -> str:
        return f"MLXBatchEngine({str(self.path)!r}, parallel={self.parallel})"

    @property
    def busy(self) -> bool:
        """True while requests are queued or running."""
        with self._cond:
            return bool(self._pending or self._active)

    def load(self) -> None:
        """Load the model and start the scheduler thread."""
        generate = require("mlx_lm.generate", "mlx", _WHAT)
        if not hasattr(generate, "BatchGenerator"):
            raise RuntimeError("this mlx-lm has no BatchGenerator (mlx-lm >= 0.26); use parallel=1")
        MLXEngine.load(self)
        eos = sorted(int(e) for e in self._tokenizer.eos_token_ids)
        self._generator = generate.BatchGenerator(
            self._model,
            stop_tokens=[[e] for e in eos],
            completion_batch_size=self.parallel,
            prefill_batch_size=self.parallel,
        )
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="abstractcore-mlx-batch", daemon=True)
        self._thread.start()
        register(self)

    def close_at_exit(self, workers_stopped: bool) -> None:
        """(interpreter exit) End the scheduler thread (waiting at most ``EXIT_JOIN_SECONDS``) before
        MLX is torn down, then free the model."""
        self._exiting = True
        self.unload()

    def unload(self) -> None:
        """Cancel queued and running requests (they end "cancelled"), stop the thread, drop the model."""
        if not self._stop(EXIT_JOIN_SECONDS if self._exiting else None):
            _log.warning("the MLX batch scheduler did not stop; its model stays in memory")
            return
        generator, self._generator = self._generator, None
        if generator is not None:
            close = getattr(generator, "close", None)
            if close is not None:
                close()
        MLXEngine.unload(self)

    def _stop(self, timeout: float | None) -> bool:
        """End the scheduler thread; False when it is still running after ``timeout``."""
        thread = self._thread
        with self._cond:
            self._closing = True
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                return False
        self._thread = None
        return True

    # -- submitting (any thread) ---------------------------------------------------------------

    def submit(
        self, spec: GenerationSpec, emit: Callable[[str], None] | None, cancel: threading.Event
    ) -> _Handle:
        """Queue ``spec``; ``emit`` receives its text on the scheduler thread."""
        if self._generator is None or self._closing:
            raise EngineClosed("the model is not loaded")
        request = self._prepare(spec, emit, cancel)
        with self._cond:
            if self._closing:
                raise EngineClosed("the model was unloaded")
            self._pending.append(request)
            self._cond.notify()
        return request.handle

    def _prepare(
        self, spec: GenerationSpec, emit: Callable[[str], None] | None, cancel: threading.Event
    ) -> _Request:
        tokenizer = self._tokenizer
        prompt = self._prompt(spec)
        sampler, processors, constraint = self._sampling(spec)
        return _Request(
            handle=_Handle(self, cancel),
            prompt=prompt,
            limit=spec.max_tokens or max(1, self._context() - len(prompt)),
            sampler=sampler,
            processors=processors,
            constraint=constraint,
            stops=StopMatcher(spec.stop),
            decoder=IncrementalDecoder(getattr(tokenizer, "_tokenizer", tokenizer)),
            emit=emit,
            seed=spec.seed,
        )

    def _poke(self) -> None:
        with self._cond:
            self._cond.notify()

    # -- the scheduler thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._closing and not self._pending and not self._active:
                        self._cond.wait()
                    if self._closing:
                        break
                    new = list(self._pending)
                    self._pending.clear()
                self._admit(new)
                self._drop_cancelled()
                if self._active:
                    self._step()
        finally:
            with self._cond:
                left = [*self._pending, *self._active.values()]
                self._pending.clear()
                self._active.clear()
            for request in left:
                self._resolve(request, "cancelled")

    def _admit(self, requests: list[_Request]) -> None:
        mx = require("mlx.core", "mlx", _WHAT)
        for request in requests:
            if request.handle.cancel_event.is_set():
                self._resolve(request, "cancelled")
                continue
            if request.seed is not None:
                mx.random.seed(request.seed)
            [uid] = self._generator.insert(
                [request.prompt],
                max_tokens=[request.limit],
                samplers=[request.sampler],
                logits_processors=[request.processors],
            )
            request.uid = int(uid)
            with self._cond:
                self._active[request.uid] = request

    def _drop_cancelled(self) -> None:
        gone = [uid for uid, r in self._active.items() if r.handle.cancel_event.is_set()]
        if gone:
            self._remove(gone, "cancelled")

    def _remove(self, uids: list[int], reason: str) -> None:
        self._generator.remove(uids)
        for uid in uids:
            with self._cond:
                request = self._active.pop(uid, None)
            if request is not None:
                self._resolve(request, reason)

    def _step(self) -> None:
        try:
            _, responses = self._generator.next()
        except Exception as exc:  # the whole batch failed: every running request gets the error
            _log.warning("mlx batch step failed: %s", exc)
            with self._cond:
                failed = list(self._active.values())
                self._active.clear()
            self._generator.remove([r.uid for r in failed])
            for request in failed:
                if not request.handle.future.done():
                    request.handle.future.set_exception(exc)
            return
        for response in responses:
            running = self._active.get(int(response.uid))
            if running is not None:
                self._on_token(running, response)

    def _on_token(self, request: _Request, response: Any) -> None:
        finish = response.finish_reason
        if finish == "stop":  # an end-of-sequence token: not part of the answer
            self._forget(request)
            self._resolve(request, "stop")
            return
        request.produced += 1
        text = request.stops.feed(request.decoder.add(int(response.token)))
        if text and not self._emit(request, text):
            return
        if request.stops.hit:
            self._remove([request.uid], "stop")
        elif request.constraint is not None and request.constraint.constraint.is_finished:
            self._remove([request.uid], "stop")  # complete: no step spent on the end token
        elif finish:
            self._forget(request)
            self._resolve(request, "length" if finish == "length" else str(finish))

    def _forget(self, request: _Request) -> None:
        """Drop a request the generator finished itself."""
        with self._cond:
            self._active.pop(request.uid, None)

    def _emit(self, request: _Request, text: str) -> bool:
        if request.emit is None:
            return True
        try:
            request.emit(text)
        except Exception as exc:  # the consumer went away (or its callback failed)
            with self._cond:
                self._active.pop(request.uid, None)
            self._generator.remove([request.uid])
            cancelled = request.handle.cancel_event.is_set()
            if not request.handle.future.done():
                if cancelled:
                    request.handle.future.set_result(
                        Outcome("cancelled", len(request.prompt), request.produced)
                    )
                else:
                    request.handle.future.set_exception(exc)
            return False
        return True

    def _resolve(self, request: _Request, reason: str) -> None:
        if request.ended:
            return
        request.ended = True
        if reason not in ("cancelled",) and not request.stops.hit:
            tail = request.stops.feed(request.decoder.flush()) + request.stops.flush()
            if tail and request.emit is not None:
                try:
                    request.emit(tail)
                except Exception:  # the consumer is gone: the outcome still stands
                    pass
        if not request.handle.future.done():
            request.handle.future.set_result(Outcome(reason, len(request.prompt), request.produced))
