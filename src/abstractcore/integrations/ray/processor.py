"""``build_llm_processor(config)``: the stage, shaped like ``ray.data.llm``'s processors.

``processor(ds)`` returns the lazy ``Dataset`` of ``ds`` with ``preprocess`` (a row function,
``Dataset.map``), the LLM stage (``Dataset.map_batches`` over an ``ActorPoolStrategy`` of
``config.concurrency`` actors, each running ``LLMWorker``) and ``postprocess`` applied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ray.data

from abstractcore.core.errors import ConfigurationError
from abstractcore.integrations.ray.config import LLMProcessorConfig
from abstractcore.integrations.ray.worker import LLMWorker

__all__ = ["LLMProcessor", "build_llm_processor"]

Row = dict[str, Any]


class LLMProcessor:
    """A Ray Data stage answering each row's prompt through one LLM per actor: ``processor(ds)``."""

    def __init__(
        self,
        config: LLMProcessorConfig,
        preprocess: Callable[[Row], Row] | None = None,
        postprocess: Callable[[Row], Row] | None = None,
        preprocess_map_kwargs: Mapping[str, Any] | None = None,
        postprocess_map_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(config, LLMProcessorConfig):
            raise ConfigurationError(
                f"build_llm_processor takes an LLMProcessorConfig; got {type(config).__name__}."
            )
        for name, fn in (("preprocess", preprocess), ("postprocess", postprocess)):
            if fn is not None and not callable(fn):
                raise ConfigurationError(f"{name} must be a function of a row (a dict); got {fn!r}.")
        # create_llm's checks on the driver: a bad provider, model or keyword fails here, before
        # any actor starts (nothing is loaded or connected: in-process models load on first call)
        config.build().unload()
        self.config = config
        self._preprocess = preprocess
        self._postprocess = postprocess
        self._pre_kwargs = dict(preprocess_map_kwargs or {})
        self._post_kwargs = dict(postprocess_map_kwargs or {})

    def __repr__(self) -> str:
        return f"LLMProcessor({self.config!r})"

    def __call__(self, ds: ray.data.Dataset) -> ray.data.Dataset:
        """``ds`` with the answer columns added (lazy: nothing runs until the dataset is read)."""
        if not isinstance(ds, ray.data.Dataset):
            raise ConfigurationError(f"A processor maps a ray.data.Dataset; got {type(ds).__name__}.")
        config = self.config
        if self._preprocess is not None:
            ds = ds.map(self._preprocess, **self._pre_kwargs)
        low, high = (
            (config.concurrency, config.concurrency)
            if isinstance(config.concurrency, int)
            else config.concurrency
        )
        ds = ds.map_batches(
            LLMWorker,
            fn_constructor_kwargs={"config": config},
            batch_format="pyarrow",
            batch_size=config.batch_size,
            compute=ray.data.ActorPoolStrategy(min_size=low, max_size=high),
            num_cpus=config.num_cpus,
        )
        if self._postprocess is not None:
            ds = ds.map(self._postprocess, **self._post_kwargs)
        return ds


def build_llm_processor(
    config: LLMProcessorConfig,
    preprocess: Callable[[Row], Row] | None = None,
    postprocess: Callable[[Row], Row] | None = None,
    preprocess_map_kwargs: Mapping[str, Any] | None = None,
    postprocess_map_kwargs: Mapping[str, Any] | None = None,
) -> LLMProcessor:
    """The stage of ``config``, with optional row functions before and after it (the shape of
    ``ray.data.llm.build_llm_processor``: ``preprocess`` makes the ``input_column``,
    ``postprocess`` picks what to keep; ``*_map_kwargs`` go to their ``Dataset.map``)."""
    return LLMProcessor(config, preprocess, postprocess, preprocess_map_kwargs, postprocess_map_kwargs)
