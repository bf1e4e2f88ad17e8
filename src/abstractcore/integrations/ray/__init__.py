"""Ray Data: answer a ``Dataset`` of prompts through any abstractcore model or router, one LLM
per Ray actor (``pip install "abstractcore[ray]"``; only this package imports ray).

    import ray
    from abstractcore.integrations.ray import LLMProcessorConfig, build_llm_processor

    config = LLMProcessorConfig(
        provider="router",
        llm_kwargs={"models": [{"provider": "vllm", "base_url": url, "model": "qwen"} for url in urls],
                    "strategy": "least_busy"},
        generate_kwargs={"max_tokens": 64},
        concurrency=4, batch_size=32, max_in_flight=16,
    )
    answers = build_llm_processor(config)(ray.data.from_items([{"id": 1, "prompt": "Hi"}]))

Every input column is kept; the stage adds ``content``, ``finish_reason``, ``input_tokens``,
``output_tokens``, ``cost``, ``model``, ``deployment`` (the router's deployment that answered),
``error_type`` and ``error_message`` (null unless the row failed), and ``parsed`` (one struct
column) with a ``response_model``. One module a job:

- ``config.py``: ``LLMProcessorConfig``, the plain, picklable config (secrets masked in its repr);
- ``columns.py``: the Arrow schema of the added columns, ``response_model`` typed;
- ``worker.py``: ``LLMWorker``, what each actor runs (one LLM, each block through ``abatch``);
- ``processor.py``: ``build_llm_processor`` / ``LLMProcessor``, the stage over ``map_batches``.
"""

from __future__ import annotations

try:
    import ray.data  # noqa: F401 - fail here, with the install line, not deep in a worker
except ImportError as error:  # pragma: no cover - the extra is installed wherever this is tested
    raise ImportError(
        'abstractcore.integrations.ray needs Ray Data: pip install "abstractcore[ray]"'
    ) from error

from abstractcore.integrations.ray.config import OUTPUT_COLUMNS, LLMProcessorConfig
from abstractcore.integrations.ray.processor import LLMProcessor, build_llm_processor
from abstractcore.integrations.ray.worker import LLMWorker

__all__ = ["OUTPUT_COLUMNS", "LLMProcessor", "LLMProcessorConfig", "LLMWorker", "build_llm_processor"]
