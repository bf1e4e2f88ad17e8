"""``LLMWorker``: the callable class Ray Data runs in each actor of the stage's pool.

Built once per actor from the config (``LLMProcessorConfig.build``: one LLM, its connection
pool kept across blocks), it takes a block as an Arrow table and returns it with the answer
columns added, every input column carried over (ids included). The block goes through
``abatch`` on the sync face's background loop (``_portal.call``), ``max_in_flight`` calls at
once. A row whose input is neither a prompt nor a list of messages, or whose call failed,
carries the error's class and message; with ``fail_on_error`` the first failure raises
``BatchError`` and Ray fails the job. When the pool shuts down, Ray Data drops the worker
(``__del__``) and the worker unloads its LLM (connections closed, local weights freed).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from abstractcore import _portal
from abstractcore.batch import abatch
from abstractcore.core.errors import ConfigurationError
from abstractcore.features.request import Request, pipeline_of
from abstractcore.integrations.ray.columns import answer_columns, output_schema
from abstractcore.integrations.ray.config import LLMProcessorConfig

__all__ = ["LLMWorker"]


class _JsonAnswers:
    """A pipeline asking for a ``response_model``'s answer as its JSON text (``output_as_text``):
    the answer then keeps its usage, cost and finish reason, and the worker validates the text
    into the ``parsed`` column. Every other call passes through unchanged."""

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline

    def __getattr__(self, name: str) -> Any:  # name, model: what tracing reads of a pipeline
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._pipeline, name)

    async def _send(self, request: Request) -> Any:
        if request.output is not None:
            request = request.copy_with(output_as_text=True)
        return await self._pipeline._send(request)

    def _send_stream(self, request: Request) -> Any:
        return self._pipeline._send_stream(request)

    async def _count(self, request: Request) -> int:
        count: int = await self._pipeline._count(request)
        return count


def _item(value: Any) -> dict[str, Any] | ConfigurationError:
    """The ``abatch`` item of one row's input, or the error that row gets instead of a call."""
    if isinstance(value, str):
        return {"prompt": value}
    if isinstance(value, (list, tuple)) and value and all(isinstance(m, Mapping) for m in value):
        # Arrow fills the keys one message lacks and another has with None: drop them
        return {"messages": [{k: v for k, v in m.items() if v is not None} for m in value]}
    return ConfigurationError(
        f"The row's input is a {type(value).__name__}; a row's input is a prompt "
        "(a string) or a non-empty list of messages ({'role': ..., 'content': ...})."
    )


class LLMWorker:
    """One actor's LLM and how it answers a block (see the module)."""

    def __init__(self, config: LLMProcessorConfig) -> None:
        self._config = config
        self._llm: Any = config.build()
        pipeline = pipeline_of(self._llm)
        self._pipeline = _JsonAnswers(pipeline) if config.response_model is not None else pipeline

    def __call__(self, block: pa.Table) -> pa.Table:
        config = self._config
        if config.input_column not in block.column_names:
            raise ConfigurationError(
                f"The dataset has no column {config.input_column!r} (its columns: "
                f"{', '.join(block.column_names)}); set LLMProcessorConfig(input_column=...)."
            )
        taken = set(block.column_names) & set(output_schema(config.response_model).names)
        if taken:
            raise ConfigurationError(
                f"The dataset already has the column(s) {', '.join(sorted(taken))} the stage writes; "
                "rename them first (ds.rename_columns) or drop them."
            )
        inputs = [_item(v) for v in block.column(config.input_column).to_pylist()]
        calls = [i for i, item in enumerate(inputs) if isinstance(item, dict)]
        items: list[dict[str, Any]] = [item for item in inputs if isinstance(item, dict)]
        if config.fail_on_error and len(calls) < len(inputs):
            raise next(item for item in inputs if isinstance(item, ConfigurationError))
        params = dict(config.generate_kwargs)
        if config.response_model is not None:
            params["response_model"] = config.response_model
        answers = _portal.call(
            functools.partial(
                abatch,
                self._pipeline,
                items,
                concurrency=config.max_in_flight,
                return_exceptions=not config.fail_on_error,
                progress=False,
                **params,
            )
        )
        results: list[Any] = list(inputs)
        for index, answer in zip(calls, answers):
            results[index] = answer
        for name, column in answer_columns(results, config.response_model).items():
            block = block.append_column(name, column)
        return block

    def close(self) -> None:
        """Unload the LLM (connections closed, local weights freed); safe to call twice."""
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.unload()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # a finaliser never raises; the process is going away
            pass
