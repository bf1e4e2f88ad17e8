"""Provider batch jobs (``abatch(via="provider")``, ``submit_batch`` / ``resume_batch`` /
``cancel_batch``) against test servers that follow OpenAI's files + batches lifecycle and
Anthropic's message-batch lifecycle: results in input order, errored, expired and canceled
items, ``response_model``, progress, splitting under the limits, a process killed between
submit and results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from abstractcore import (
    LLM,
    BadRequestError,
    BatchError,
    BatchItemError,
    BatchJob,
    BatchLimits,
    ConfigurationError,
    GenerateResponse,
    RetryConfig,
    StructuredOutputError,
    create_llm,
)
from tests.servers.anthropic_batches import KEY as ANTHROPIC_KEY
from tests.servers.anthropic_batches import AnthropicBatches
from tests.servers.openai_batches import KEY as OPENAI_KEY
from tests.servers.openai_batches import OpenAIBatches
from tests.servers.openai_fake import KEY as FAKE_KEY
from tests.servers.openai_fake import FakeOpenAI

FAST = RetryConfig(max_attempts=1)
ROOT = Path(__file__).resolve().parents[1]


class Person(BaseModel):
    name: str
    age: int


BatchServer = TypeVar("BatchServer", OpenAIBatches, AnthropicBatches)


def _running(state: BatchServer) -> Iterator[BatchServer]:
    """``state``'s server, started for a module's tests and stopped after them."""
    state.server.start()
    yield state
    state.server.stop()


def _reset(state: BatchServer) -> BatchServer:
    """``state`` as each test expects it: a batch ends after two polls, nothing expires."""
    state.per_poll, state.expire_after = 2, None
    return state


@pytest.fixture(scope="module")
def _openai_server() -> Iterator[OpenAIBatches]:
    yield from _running(OpenAIBatches())


@pytest.fixture
def openai_batches(_openai_server: OpenAIBatches) -> OpenAIBatches:
    return _reset(_openai_server)


@pytest.fixture(scope="module")
def _anthropic_server() -> Iterator[AnthropicBatches]:
    yield from _running(AnthropicBatches())


@pytest.fixture
def anthropic_batches(_anthropic_server: AnthropicBatches) -> AnthropicBatches:
    return _reset(_anthropic_server)


def openai_llm(server: OpenAIBatches) -> LLM:
    return create_llm("openai", base_url=server.base_url, api_key=OPENAI_KEY, retry_config=FAST)


def anthropic_llm(server: AnthropicBatches, model: str = "claude-haiku-4-5") -> LLM:
    return create_llm("anthropic", model=model, base_url=server.url, api_key=ANTHROPIC_KEY, retry_config=FAST)


def lines_of(server: OpenAIBatches, job: BatchJob) -> list[dict[str, Any]]:
    return [line for batch_id in job.batch_ids for line in server.batches[batch_id].lines]


# -- OpenAI --------------------------------------------------------------------------------------


def test_openai_results_come_back_in_input_order_with_the_failed_item_carrying_its_error(
    openai_batches: OpenAIBatches,
) -> None:
    items = [f"prompt number {i}" for i in range(7)]
    items[4] = "please FAIL here"
    results = openai_llm(openai_batches).batch(items, via="provider", poll_interval=0.01, max_tokens=20)
    assert [type(r) for r in results] == [GenerateResponse] * 4 + [BadRequestError] + [GenerateResponse] * 2
    assert [r.content for i, r in enumerate(results) if i != 4] == [p for i, p in enumerate(items) if i != 4]
    assert "Refused: please FAIL here" in str(results[4])
    assert results[0].usage.output_tokens == 3 and results[0].finish_reason == "stop"
    (batch,) = [
        b
        for b in openai_batches.batches.values()
        if b.lines[0]["body"]["messages"][-1]["content"] == items[0]
    ]
    assert batch.history[:2] == ["validating", "in_progress"] and "finalizing" in batch.history
    assert batch.status == "completed" and batch.error_file_id and batch.output_file_id


def test_a_batch_line_is_the_body_a_live_call_sends(openai_batches: OpenAIBatches, fake: FakeOpenAI) -> None:
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    call: dict[str, Any] = dict(
        system_prompt="Be brief.", temperature=0.2, max_tokens=30, tools=[weather], extra_body={"user": "u1"}
    )
    live = create_llm("openai", base_url=fake.base_url, api_key=FAKE_KEY, retry_config=FAST)
    live.generate("Weather in Paris?", **call)
    with pytest.raises(StructuredOutputError):
        live.generate("Ann, 31", response_model=Person, max_retries=0)
    llm = openai_llm(openai_batches)
    job = llm.submit_batch(["Weather in Paris?", {"prompt": "Ann, 31", "response_model": Person}], **call)
    sent = [line["body"] for line in lines_of(openai_batches, job)]
    compact = lambda body: json.dumps(body, separators=(",", ":"), ensure_ascii=False)  # noqa: E731
    assert compact(sent[0]) == compact(fake.requests[0]["body"])
    person_call = {k: v for k, v in sent[1].items()}
    assert person_call["response_format"] == fake.requests[1]["body"]["response_format"]
    assert person_call["response_format"]["type"] == "json_schema"
    llm.cancel_batch(job.id)


def test_expired_items_carry_a_batch_item_error_and_the_answered_ones_their_answers(
    openai_batches: OpenAIBatches,
) -> None:
    openai_batches.expire_after = 3
    results = openai_llm(openai_batches).batch(
        [f"expiring {i}" for i in range(5)], via="provider", poll_interval=0.01
    )
    assert [r.content for r in results[:3]] == ["expiring 0", "expiring 1", "expiring 2"]
    assert all(isinstance(r, BatchItemError) and r.reason == "expired" for r in results[3:])
    assert results[3].custom_id == "item-3" and "window" in str(results[3])


def test_cancel_then_resume_gives_what_finished_and_the_rest_as_canceled(
    openai_batches: OpenAIBatches,
) -> None:
    llm = openai_llm(openai_batches)
    job = llm.submit_batch([f"cancel me {i}" for i in range(6)])
    assert job.id.startswith("openai:batch_") and job.total == 6
    batch = openai_batches.batches[job.batch_ids[0]]
    llm.cancel_batch(job.id)
    assert batch.status == "cancelling"
    results = llm.resume_batch(job.id, poll_interval=0.01)
    assert batch.status == "cancelled"
    assert all(isinstance(r, BatchItemError) and r.reason == "canceled" for r in results)


def test_response_model_validates_each_item_also_when_resumed_elsewhere(
    openai_batches: OpenAIBatches,
) -> None:
    items = ['{"name": "Ann", "age": 31}', '{"name": "Bob"}', '{"name": "Cy", "age": "40"}']
    results = openai_llm(openai_batches).batch(
        items, via="provider", response_model=Person, poll_interval=0.01
    )
    assert results[0] == Person(name="Ann", age=31) and results[2] == Person(name="Cy", age=40)
    assert isinstance(results[1], StructuredOutputError) and results[1].raw == items[1]
    job = openai_llm(openai_batches).submit_batch(items, response_model=Person)
    again = openai_llm(openai_batches).resume_batch(job.id, response_model=Person, poll_interval=0.01)
    assert again[0] == results[0] and isinstance(again[1], StructuredOutputError)
    plain = openai_llm(openai_batches).resume_batch(job.id, poll_interval=0.01)
    assert plain[1].content == items[1]  # without response_model: the responses themselves


def test_the_progress_bar_follows_the_providers_counts(
    openai_batches: OpenAIBatches, capsys: pytest.CaptureFixture[str]
) -> None:
    items = ["a b", "FAIL c", "d e", "f g"]
    # polls further apart than tqdm's refresh interval (0.1 s): every count is drawn
    openai_llm(openai_batches).batch(items, via="provider", progress=True, poll_interval=0.12)
    err = capsys.readouterr().err
    assert "2/4" in err and "4/4" in err and "1 failed" in err


def test_a_large_job_is_split_under_the_limits_and_comes_back_whole(openai_batches: OpenAIBatches) -> None:
    openai_batches.per_poll = 10
    llm = openai_llm(openai_batches)
    items = [f"split {i}" for i in range(7)]
    by_count = llm.submit_batch(items, limits=BatchLimits(requests=3, bytes=10**6))
    assert len(by_count.batch_ids) == 3
    assert [len(openai_batches.batches[b].lines) for b in by_count.batch_ids] == [3, 3, 1]
    assert [r.content for r in llm.resume_batch(by_count.id, poll_interval=0.01)] == items
    size = len(json.dumps(lines_of(openai_batches, by_count)[0]).encode())
    by_size = llm.submit_batch(items, limits=BatchLimits(requests=100, bytes=2 * size + 10))
    assert len(by_size.batch_ids) == 4
    assert [r.content for r in llm.resume_batch(by_size, poll_interval=0.01)] == items
    with pytest.raises(ConfigurationError, match="too large"):
        llm.submit_batch(["x" * 500], limits=BatchLimits(requests=10, bytes=100))


def test_the_first_failure_raises_with_return_exceptions_false(openai_batches: OpenAIBatches) -> None:
    with pytest.raises(BatchError) as caught:
        openai_llm(openai_batches).batch(
            ["ok 1", "FAIL 2", "ok 3"], via="provider", return_exceptions=False, poll_interval=0.01
        )
    assert (
        caught.value.index == 1
        and caught.value.results[0].content == "ok 1"
        and caught.value.results[1] is None
    )
    assert isinstance(caught.value.__cause__, BadRequestError)


def test_a_process_killed_between_submit_and_results_loses_nothing(openai_batches: OpenAIBatches) -> None:
    script = (
        "import sys, time\n"
        "from abstractcore import create_llm\n"
        "llm = create_llm('openai', base_url=sys.argv[1], api_key=sys.argv[2])\n"
        "job = llm.submit_batch([f'survivor {i}' for i in range(6)], max_tokens=10)\n"
        "print(job.id, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", script, openai_batches.base_url, OPENAI_KEY], stdout=subprocess.PIPE, env=env
    )
    try:
        assert child.stdout is not None
        job_id = child.stdout.readline().decode().strip()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL and job_id.startswith("openai:")
    results = openai_llm(openai_batches).resume_batch(job_id, poll_interval=0.01)
    assert [r.content for r in results] == [f"survivor {i}" for i in range(6)]


@pytest.mark.anyio
async def test_the_async_face_on_both_loops(openai_batches: OpenAIBatches) -> None:
    llm = openai_llm(openai_batches)
    job = await llm.asubmit_batch(["one", "two"])
    results = await llm.aresume_batch(job, poll_interval=0.01)
    assert [r.content for r in results] == ["one", "two"]
    assert [r.content for r in await llm.abatch(["three"], via="provider", poll_interval=0.01)] == ["three"]


# -- refusals --------------------------------------------------------------------------------


def test_a_provider_without_a_batch_api_says_so_before_sending() -> None:
    local = create_llm("openai-compatible", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigurationError, match=r"no batch API.*abatch\(items\).*ray"):
        local.batch(["hi"], via="provider")
    with pytest.raises(ConfigurationError, match="no batch API"):
        local.submit_batch(["hi"])
    responses = create_llm("openai", api="responses", base_url="http://127.0.0.1:9/v1", api_key="sk-x")
    with pytest.raises(ConfigurationError, match="api='chat'"):
        responses.submit_batch(["hi"])
    with pytest.raises(ConfigurationError, match="via="):
        local.batch(["hi"], via="cluster")  # type: ignore[arg-type]


def test_a_job_id_is_checked_against_the_provider(openai_batches: OpenAIBatches) -> None:
    llm = openai_llm(openai_batches)
    with pytest.raises(ConfigurationError, match="belongs to anthropic"):
        llm.resume_batch("anthropic:msgbatch_1=3")
    with pytest.raises(ConfigurationError, match="Not a batch job id"):
        llm.resume_batch("batch_without_provider")
    with pytest.raises(ConfigurationError, match="Not a batch job id"):
        llm.resume_batch("openai:batch_1")  # without its item count


# -- Anthropic -------------------------------------------------------------------------------


def test_anthropic_results_in_input_order_with_errored_and_expired_items(
    anthropic_batches: AnthropicBatches,
) -> None:
    anthropic_batches.expire_after = 5
    items = [f"message {i}" for i in range(7)]
    items[2] = "FAIL this one"
    results = anthropic_llm(anthropic_batches).batch(items, via="provider", poll_interval=0.01, max_tokens=50)
    assert [r.content for r in results[:2] + results[3:5]] == [items[0], items[1], items[3], items[4]]
    assert isinstance(results[2], BadRequestError) and "Refused: FAIL this one" in str(results[2])
    assert all(isinstance(r, BatchItemError) and r.reason == "expired" for r in results[5:])
    (batch,) = [
        b
        for b in anthropic_batches.batches.values()
        if b.requests[0]["params"]["messages"][-1]["content"] == items[0]
    ]
    assert batch.requests[0]["params"]["max_tokens"] == 50 and batch.requests[0]["custom_id"] == "item-0"


def test_anthropic_cancel_and_resume(anthropic_batches: AnthropicBatches) -> None:
    anthropic_batches.per_poll = 1
    llm = anthropic_llm(anthropic_batches)
    job = llm.submit_batch([f"to cancel {i}" for i in range(4)])
    assert job.id.startswith("anthropic:msgbatch_")
    llm.cancel_batch(job)
    results = anthropic_llm(anthropic_batches).resume_batch(job.id, poll_interval=0.01)
    assert all(isinstance(r, BatchItemError) and r.reason == "canceled" for r in results)
    assert anthropic_batches.batches[job.batch_ids[0]].status == "ended"


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "claude-3-5-haiku-latest"])
def test_anthropic_response_model_native_and_by_forced_tool(
    anthropic_batches: AnthropicBatches, model: str
) -> None:
    items = ['{"name": "Ann", "age": 31}', '{"name": "Bob", "age": "x"}']
    llm = anthropic_llm(anthropic_batches, model)
    job = llm.submit_batch(items, response_model=Person)
    results = llm.resume_batch(job, response_model=Person, poll_interval=0.01)
    assert results[0] == Person(name="Ann", age=31) and isinstance(results[1], StructuredOutputError)
    batch = anthropic_batches.batches[job.batch_ids[0]]
    params = batch.requests[0]["params"]
    if model == "claude-haiku-4-5":  # native JSON output: its beta header on the batch
        assert "output_format" in params and batch.beta and "structured-outputs" in batch.beta
    else:
        assert params["tool_choice"]["type"] == "tool" and batch.beta is None


def test_anthropic_split_under_the_limits(anthropic_batches: AnthropicBatches) -> None:
    anthropic_batches.per_poll = 10
    llm = anthropic_llm(anthropic_batches)
    items = [f"part {i}" for i in range(5)]
    job = llm.submit_batch(items, limits=BatchLimits(requests=2, bytes=10**6))
    assert len(job.batch_ids) == 3
    assert [r.content for r in llm.resume_batch(job.id, poll_interval=0.01)] == items


def test_a_batch_the_provider_refuses_gives_every_item_the_reason(openai_batches: OpenAIBatches) -> None:
    # stream=True smuggled into the bodies: OpenAI's validation fails the whole input file
    results = openai_llm(openai_batches).batch(
        ["one", "two"], via="provider", extra_body={"stream": True}, poll_interval=0.01
    )
    assert all(isinstance(r, BatchItemError) and r.reason == "failed" for r in results)
    assert "stream is not supported in a batch (line 1)" in str(results[0])
