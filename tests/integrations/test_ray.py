"""The Ray Data stage on a local Ray cluster (2 CPUs) over two llama.cpp C++ servers (SmolLM2)
behind the router: every row answered or carrying its error, ids kept, a server stopped mid-job
and its rows answered by the other, typed ``response_model`` columns, actors unloading their LLM.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import pyarrow as pa
import pytest
import ray
from pydantic import BaseModel

from abstractcore.integrations.ray import LLMProcessorConfig, LLMWorker, build_llm_processor
from tests.support.cpp_llama_server import cpp_llama_server

pytestmark = pytest.mark.slow  # a Ray cluster and llama.cpp servers throughout


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def second_server_url(gguf_path: Path) -> Iterator[str]:
    """A second llama-server, started as ``cpp_server_url`` is."""
    with cpp_llama_server(gguf_path, n_ctx=4096, parallel=1) as base:
        yield base


def _deployment(url: str, name: str) -> dict[str, Any]:
    return {"provider": "openai-compatible", "base_url": url, "model": "smollm2", "name": name}


def _config(urls: dict[str, str], **options: Any) -> LLMProcessorConfig:
    options.setdefault("generate_kwargs", {"max_tokens": 4})
    return LLMProcessorConfig(
        provider="router",
        llm_kwargs={"models": [_deployment(u, n) for n, u in urls.items()], "strategy": "round_robin"},
        concurrency=options.pop("concurrency", 2),
        num_cpus=0.5,
        **options,
    )


def test_200_prompts_over_two_servers_every_row_answered_with_its_id(
    cluster: None, cpp_server_url: str, second_server_url: str
) -> None:
    config = _config({"a": cpp_server_url, "b": second_server_url}, batch_size=20, max_in_flight=4)
    ds = ray.data.from_items([{"id": i, "prompt": f"Count to {i}."} for i in range(200)])
    rows = build_llm_processor(config)(ds).take_all()
    assert sorted(r["id"] for r in rows) == list(range(200))
    assert all(r["prompt"] == f"Count to {r['id']}." for r in rows)  # input columns carried over
    assert [r for r in rows if r["error_type"] is not None] == []
    assert all(r["content"] and 0 < r["output_tokens"] <= 4 and r["input_tokens"] > 0 for r in rows)
    assert {r["finish_reason"] for r in rows} <= {"length", "stop"}
    served = Counter(r["deployment"] for r in rows)
    assert set(served) == {"a", "b"}, served  # the router spread the rows over both servers


def test_a_server_stopped_mid_job_has_its_rows_answered_by_the_other(
    cluster: None, cpp_server_url: str, gguf_path: Path
) -> None:
    with ExitStack() as doomed:
        url = doomed.enter_context(cpp_llama_server(gguf_path, n_ctx=4096, parallel=1))
        config = _config({"a": cpp_server_url, "c": url}, batch_size=5, max_in_flight=2)
        ds = ray.data.from_items([{"id": i, "prompt": f"Name a colour ({i})."} for i in range(80)])
        rows: list[dict[str, Any]] = []
        for row in build_llm_processor(config)(ds).iter_rows():
            rows.append(row)
            if len(rows) == 1:
                doomed.close()  # llama-server terminated while most rows are still to come
    assert sorted(r["id"] for r in rows) == list(range(80))
    assert [r for r in rows if r["error_type"] is not None] == []
    served = Counter(r["deployment"] for r in rows)
    assert served["c"] >= 1, served  # it did serve before it stopped
    assert served["a"] > 40, served  # round robin would give it half; it took c's share too


def test_a_failed_row_carries_its_error_and_the_others_are_answered(
    cluster: None, cpp_server_url: str, second_server_url: str
) -> None:
    config = _config({"a": cpp_server_url, "b": second_server_url}, concurrency=1)
    prompts: list[str | None] = ["Hi.", "word " * 6000, None, "Bye."]  # over the context; no input
    ds = ray.data.from_items([{"id": i, "prompt": p} for i, p in enumerate(prompts)])
    rows = {r["id"]: r for r in build_llm_processor(config)(ds).take_all()}
    assert rows[0]["content"] and rows[3]["content"] and rows[0]["error_type"] is None
    # the router refuses it before sending: no deployment has the context for it
    assert rows[1]["content"] is None and rows[1]["error_type"] == "ConfigurationError"
    assert "4,096-token context window" in rows[1]["error_message"]
    assert rows[2]["error_type"] == "ConfigurationError" and "NoneType" in rows[2]["error_message"]

    strict = build_llm_processor(_config({"a": cpp_server_url}, concurrency=1, fail_on_error=True))
    with pytest.raises(Exception, match="context window"):
        strict(ray.data.from_items([{"id": 0, "prompt": "word " * 6000}])).take_all()


def test_message_lists_are_conversations(cluster: None, cpp_server_url: str) -> None:
    config = _config({"a": cpp_server_url}, concurrency=1, input_column="messages")
    ds = ray.data.from_items(
        [
            {
                "id": 0,
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            },
            {"id": 1, "messages": [{"role": "user", "content": "Hello", "name": "ann"}]},
        ]
    )
    rows = build_llm_processor(config)(ds).take_all()
    assert sorted(r["id"] for r in rows) == [0, 1]
    assert all(r["error_type"] is None and r["content"] for r in rows), rows


def test_response_model_fills_a_typed_struct_column(cluster: None, cpp_server_url: str) -> None:
    config = _config(
        {"a": cpp_server_url}, concurrency=1, response_model=Person, generate_kwargs={"max_tokens": 60}
    )
    ds = ray.data.from_items(
        [{"id": i, "prompt": f"Ann is {30 + i}. Give her name and age."} for i in range(4)]
    )
    out = build_llm_processor(config)(ds).materialize()
    assert out.schema().base_schema.field("parsed").type == pa.struct(
        [pa.field("name", pa.string()), pa.field("age", pa.int64())]
    )
    rows = out.take_all()
    assert [r for r in rows if r["error_type"] is not None] == []
    for row in rows:  # grammar-constrained: valid Persons, and the JSON text kept usage with it
        assert Person.model_validate(row["parsed"]) == Person.model_validate_json(row["content"])
        assert row["output_tokens"] > 0 and row["finish_reason"] == "stop"


def _connections_to(url: str) -> int:
    port = urlparse(url).port
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def test_a_worker_dropped_by_its_pool_unloads_its_llm(cpp_server_url: str) -> None:
    # what Ray Data does when the pool shuts down: it drops the worker (``__del__``)
    worker = LLMWorker(_config({"a": cpp_server_url}))
    block = worker(pa.table({"id": [1, 2], "prompt": ["Hi", "Yo"]}))
    assert block.column("id").to_pylist() == [1, 2] and block.column("error_type").null_count == 2
    assert _connections_to(cpp_server_url) >= 1  # the pool kept its connection for the next block
    del worker
    gc.collect()
    assert _connections_to(cpp_server_url) == 0
