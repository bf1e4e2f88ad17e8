"""The "mlx" provider: mlx-lm running SmolLM2-135M on the CPU, in process.

The MLX model directory is built once per session from the real GGUF. MLX on
a Linux CPU makes 2-3 tokens/s with this model, so generations stay short.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from contextlib import aclosing
from pathlib import Path

import anyio
import pytest
from pydantic import BaseModel

from abstractcore import LLM, GenerateResponse, ModelNotFoundError, StructuredOutputError, create_llm
from tests.support.local_models import build_hf_dir, wait_until

SYSTEM = "Be brief."  # replaces SmolLM2's longer default system prompt: less to prefill


@pytest.fixture(scope="session")
def hf_dir(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hf_dir(gguf_path, tmp_path_factory.getbasetemp() / "smollm2-fp16")


@pytest.fixture(scope="session")
def mlx(hf_dir: Path) -> LLM:
    return create_llm("mlx", model=str(hf_dir), max_tokens=3, temperature=0)


class Person(BaseModel):
    name: str
    age: int


def assert_answer(r: GenerateResponse, max_tokens: int) -> None:
    assert r.content.strip()
    assert r.provider == "mlx"
    assert r.finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.input_tokens > 3
    assert 0 < r.usage.output_tokens <= max_tokens
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_generate_answers_with_usage(mlx: LLM) -> None:
    r = mlx.generate("What is the capital of France?", system_prompt=SYSTEM)
    assert_answer(r, 3)


def test_stream_yields_tokens_then_usage_on_the_last_chunk(mlx: LLM) -> None:
    chunks = list(
        mlx.stream("Tell me a story.", system_prompt=SYSTEM, max_tokens=4, temperature=0.7, top_p=0.9, seed=3)
    )
    texts = [c.content for c in chunks if c.content]
    assert len(texts) >= 2
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length")
    assert last.usage is not None and 0 < last.usage.output_tokens <= 4
    assert last.usage.output_tokens >= len(texts)


def test_breaking_out_of_a_sync_stream_stops_generation(mlx: LLM) -> None:
    for _ in mlx.stream("Write a long story.", system_prompt=SYSTEM, max_tokens=200):
        break  # the dropped iterator closes the stream
    assert wait_until(lambda: not mlx.provider.busy, 20)  # 200 tokens would take over a minute
    assert_answer(mlx.generate("Say hello.", system_prompt=SYSTEM, max_tokens=2), 2)


@pytest.mark.anyio
async def test_closing_an_async_stream_stops_generation(mlx: LLM) -> None:
    async with aclosing(mlx.astream("Write a long story.", system_prompt=SYSTEM, max_tokens=200)) as stream:
        async for _ in stream:
            break
    assert await anyio.to_thread.run_sync(wait_until, lambda: not mlx.provider.busy, 20)
    assert_answer(await mlx.agenerate("Say hello.", system_prompt=SYSTEM, max_tokens=1), 1)


@pytest.mark.anyio
async def test_concurrent_agenerate_calls_queue_and_all_answer(mlx: LLM) -> None:
    results: dict[int, GenerateResponse] = {}

    async def one(i: int) -> None:
        results[i] = await mlx.agenerate(f"Say {i}.", system_prompt=SYSTEM, max_tokens=2)

    async with anyio.create_task_group() as tg:
        for i in range(2):
            tg.start_soon(one, i)
    assert sorted(results) == [0, 1]
    for r in results.values():
        assert_answer(r, 2)


def test_unload_then_the_next_call_reloads(mlx: LLM) -> None:
    mlx.generate("Hi.", system_prompt=SYSTEM, max_tokens=1)
    assert mlx.provider.loaded
    mlx.unload()
    assert not mlx.provider.loaded
    assert_answer(mlx.generate("Hi.", system_prompt=SYSTEM, max_tokens=2), 2)


def test_missing_models_are_model_not_found(tmp_path: Path, gguf_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        create_llm("mlx", model=str(tmp_path / "no-such-model")).generate("Hi")
    assert info.value.status_code is None
    with pytest.raises(ModelNotFoundError, match="hf download mlx-community/SmolLM2-135M"):
        create_llm("mlx", model="mlx-community/SmolLM2-135M", cache_dir=str(tmp_path)).generate("Hi")
    with pytest.raises(ModelNotFoundError, match="MLX model directory"):
        create_llm("mlx", model=str(gguf_path)).generate("Hi")


def test_tools_are_prompted_and_structured_output_constrained() -> None:
    llm = create_llm("mlx", model="/nonexistent-mlx-dir")
    assert llm.capabilities.tools is False  # tools reach the model through the system prompt
    assert llm.capabilities.structured_output is True  # response_model is constrained (llguidance)
    with pytest.raises(ModelNotFoundError):
        llm.generate("Weather?", tools=[{"name": "weather", "parameters": {"type": "object"}}])


@pytest.mark.slow
def test_the_guarantee_comes_from_the_constraint(mlx: LLM) -> None:
    # the same prompt, greedy, the same token budget: only the constraint differs
    ask = "Ann is 31. Give her name and age as JSON."
    with pytest.raises(StructuredOutputError) as info:
        mlx.generate(
            ask,
            system_prompt=SYSTEM,
            response_model=Person,
            structured_mode="prompt",
            max_retries=0,
            max_tokens=12,
        )
    assert info.value.raw and not info.value.raw.lstrip().startswith('{"name":')
    person = mlx.generate(ask, system_prompt=SYSTEM, response_model=Person, max_tokens=12)
    assert isinstance(person, Person) and person.name == "Ann"


# -- continuous batching (parallel > 1): mlx-lm's BatchGenerator ----------------------------------


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_batched_requests_each_get_their_own_answer(mlx: LLM, hf_dir: Path) -> None:
    """Greedy texts are the same batched as alone; a constrained request shares the batch with
    plain ones; a cancelled one leaves the others running."""
    batched = create_llm("mlx", model=str(hf_dir), parallel=4, temperature=0)
    prompts = ["Count to 3.", "Name a colour.", "Say hello."]
    alone = [(await mlx.agenerate(p, system_prompt=SYSTEM, max_tokens=4)).content for p in prompts]

    async def cancelled() -> None:
        with anyio.move_on_after(1.5):
            async with aclosing(batched.astream("Write a long essay.", max_tokens=200)) as stream:
                async for _ in stream:
                    pass

    results: dict[str, object] = {}

    async def plain(prompt: str) -> None:
        results[prompt] = await batched.agenerate(prompt, system_prompt=SYSTEM, max_tokens=4)

    async def structured() -> None:
        results["json"] = await batched.agenerate(
            "Ann is 31 years old. Give her name and age as JSON.", response_model=Person, max_tokens=30
        )

    async with anyio.create_task_group() as group:
        group.start_soon(cancelled)
        for prompt in prompts:
            group.start_soon(plain, prompt)
        group.start_soon(structured)
    texts = [results[p].content for p in prompts]  # type: ignore[attr-defined]
    assert texts == alone
    assert results["json"] == Person(name="Ann", age=31)
    assert batched.provider.busy is False  # the cancelled stream was dropped from the batch
    await batched.aunload()


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 2])
def test_no_crash_at_exit_while_a_request_runs(hf_dir: Path, parallel: int) -> None:
    """MLX arrays alive at interpreter teardown aborted the process (exit 134): freed at exit now."""
    code = f"""
        import threading, time
        from abstractcore import create_llm
        llm = create_llm("mlx", model={str(hf_dir)!r}, parallel={parallel})
        llm.generate("Hi", max_tokens=1)
        story = lambda: llm.generate("Tell a long story.", max_tokens=300)
        threading.Thread(target=story, daemon=True).start()
        time.sleep(2)
        print("exiting", flush=True)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "exiting"


@pytest.mark.slow
def test_capabilities_give_the_context_of_the_models_config(hf_dir: Path) -> None:
    llm = create_llm("mlx", model=str(hf_dir))
    caps = llm.fetch_capabilities()
    assert not llm.provider.loaded  # config.json alone, no weights
    stated = json.loads((hf_dir / "config.json").read_text())["max_position_embeddings"]
    assert (caps.context_window, caps.trained_context_window, caps.source) == (stated, stated, "model file")


@pytest.mark.slow
def test_an_answer_cut_by_max_tokens_drops_a_split_character(mlx: LLM) -> None:
    from tests.providers.test_llamacpp import assert_cut_answers_hold_whole_characters

    # greedy, the fp16 model says "Repeat exactly: 🐱..." and its 5th token is half of the cat
    assert_cut_answers_hold_whole_characters(mlx, (5, 6), system_prompt=SYSTEM)
