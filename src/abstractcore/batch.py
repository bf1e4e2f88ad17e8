"""Batch jobs: ``await llm.abatch(items, concurrency=8)`` (and its blocking twin ``llm.batch``).

Each item is a prompt or a dict of ``generate`` keyword arguments; keyword
arguments given to ``abatch`` are defaults for every item. At most
``concurrency`` calls run at once (a fixed set of workers takes the next item
when one finishes). Results come back in input order:

- ``return_exceptions=True`` (the default): a failed item holds its
  exception object in its slot; nothing is lost and nothing is raised;
- ``return_exceptions=False``: the first failure stops the job (calls in
  flight are cancelled, no new ones start) and raises ``BatchError``, whose
  ``results`` holds what finished (``None`` for the items that did not run)
  and whose ``__cause__`` is the failure.

A progress bar (tqdm, on stderr) is shown when stderr is a terminal and never
when it is not; ``progress=True`` / ``False`` forces it. Each item becomes one
``Request`` (``build_request``, in the worker that sends it, so a batch's images
are not all loaded at once) handed to the pipeline's entry point
(``pipeline_of(llm)._send``), so it runs over every provider, a router and
in-process models included.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from abstractcore.core.errors import AbstractCoreError, ConfigurationError

if TYPE_CHECKING:
    import anyio

__all__ = ["BatchError", "abatch"]


class BatchError(AbstractCoreError):
    """A batch stopped at a failure (``return_exceptions=False``).

    ``results`` holds one entry per item, in input order: the result of each
    item that finished, ``None`` for the others; ``index`` is the failed
    item's position and ``__cause__`` its exception.
    """

    results: list[Any]
    index: int

    def __init__(
        self, message: str, *, results: list[Any] | None = None, index: int = -1, **fields: Any
    ) -> None:
        super().__init__(message, results=results if results is not None else [], index=index, **fields)


def _calls(items: Any, params: Mapping[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(prompt, keyword arguments) of each item, checked before anything is sent."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise ConfigurationError(
            "batch() takes a list of prompts or of dicts of generate() arguments; "
            f"got {type(items).__name__}."
        )
    if "stream" in params:
        raise ConfigurationError("batch() collects whole answers: stream= is not accepted.")
    calls: list[tuple[str | None, dict[str, Any]]] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            calls.append((item, dict(params)))
        elif isinstance(item, Mapping):
            if "stream" in item:
                raise ConfigurationError(f"items[{index}]: batch() collects whole answers; remove 'stream'.")
            kwargs = {**params, **item}
            prompt = kwargs.pop("prompt", None)
            calls.append((prompt, kwargs))
        else:
            raise ConfigurationError(
                f"items[{index}] is a {type(item).__name__}; an item is a prompt string or a dict of "
                "generate() arguments such as {'prompt': 'Hi', 'max_tokens': 20}."
            )
    return calls


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _columns() -> int:
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


class _Bar:
    """A tqdm bar on stderr, or nothing."""

    def __init__(self, total: int, show: bool) -> None:
        self._bar: Any = None
        self.errors = 0
        if show:
            from tqdm import tqdm

            # a terminal that reports no size (some containers' ttys) would hide the bar
            sized = _columns() > 0
            self._bar = tqdm(
                total=total,
                desc="batch",
                unit="item",
                file=sys.stderr,
                dynamic_ncols=sized,
                ncols=None if sized else 80,
                nrows=None if sized else 24,
            )

    def step(self, failed: bool) -> None:
        if self._bar is None:
            return
        if failed:
            self.errors += 1
            self._bar.set_postfix_str(f"{self.errors} failed", refresh=False)
        self._bar.update(1)

    def to(self, done: int, failed: int) -> None:
        """Move to ``done`` items, ``failed`` of them failed (a provider batch's counts)."""
        if self._bar is None:
            return
        if failed != self.errors:
            self.errors = failed
            self._bar.set_postfix_str(f"{failed} failed", refresh=False)
        if done > self._bar.n:
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


async def abatch(
    llm: Any,
    items: Sequence[str | Mapping[str, Any]],
    *,
    concurrency: int = 8,
    return_exceptions: bool = True,
    progress: bool | None = None,
    **params: Any,
) -> list[Any]:
    """Run ``llm.agenerate`` over ``items`` with at most ``concurrency`` calls at once; see the module."""
    import anyio  # imported on first use: ``import abstractcore`` stays light

    from abstractcore.features.request import build_request, pipeline_of

    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be an integer >= 1; got {concurrency!r}.")
    calls = _calls(items, params)
    pipeline = pipeline_of(llm)
    results: list[Any] = [None] * len(calls)
    if not calls:
        return results
    bar = _Bar(len(calls), _show_progress(progress))
    next_index = iter(range(len(calls)))
    failure: list[tuple[int, Exception]] = []

    async def worker(scope: anyio.CancelScope) -> None:
        for index in next_index:
            prompt, kwargs = calls[index]
            try:
                results[index] = await pipeline._send(build_request(prompt, **kwargs))
            except Exception as error:
                bar.step(True)
                if return_exceptions:
                    results[index] = error
                    continue
                failure.append((index, error))
                scope.cancel()
                return
            bar.step(False)

    from contextlib import nullcontext

    from abstractcore.features.telemetry import state as telemetry

    tracing = telemetry.active
    try:
        with tracing.batch(pipeline, len(calls)) if tracing is not None else nullcontext():
            async with anyio.create_task_group() as group:
                for _ in range(min(concurrency, len(calls))):
                    group.start_soon(worker, group.cancel_scope)
    finally:
        bar.close()
    if failure:
        index, error = failure[0]
        done = sum(1 for r in results if r is not None)
        raise BatchError(
            f"Item {index} of {len(calls)} failed ({type(error).__name__}: {error}); the batch stopped. "
            f"{done} finished results are in .results (None for the rest); "
            "return_exceptions=True keeps going and puts each error in its slot.",
            results=results,
            index=index,
        ) from error
    return results
