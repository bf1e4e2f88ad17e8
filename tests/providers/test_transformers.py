"""The "huggingface" provider running SmolLM2-135M through transformers, in process.

The session model is the real GGUF, dequantised by transformers
(``backend="transformers"``); the unload test uses a model directory built
from the same GGUF (safetensors), which auto-selects transformers.
"""

from __future__ import annotations

import enum
import itertools
import json
from contextlib import aclosing
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import pytest
from pydantic import BaseModel, Field

from abstractcore import (
    LLM,
    ConfigurationError,
    GenerateResponse,
    ModelNotFoundError,
    StructuredOutputError,
    create_llm,
)
from tests.support.local_models import build_hf_dir, loop_lag_while, rss_bytes, wait_until

LONG = "Write a long story about a dragon who learns to bake bread."
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="session")
def tf(gguf_path: Path) -> LLM:
    return create_llm(
        "huggingface", model=str(gguf_path), backend="transformers", max_tokens=12, temperature=0
    )


@pytest.fixture(scope="session")
def hf_dir(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hf_dir(gguf_path, tmp_path_factory.getbasetemp() / "smollm2-fp16")


def assert_answer(r: GenerateResponse, max_tokens: int) -> None:
    assert r.content.strip()
    assert r.finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.input_tokens > 5
    assert 0 < r.usage.output_tokens <= max_tokens
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_generate_answers_from_the_dequantised_gguf(tf: LLM, gguf_path: Path) -> None:
    r = tf.generate(QUESTION)
    assert_answer(r, 12)
    assert "Paris" in r.content
    # the same chat template and tokenizer as llama.cpp reads from the GGUF
    llama = create_llm("huggingface", model=str(gguf_path), max_tokens=1)
    assert llama.generate(QUESTION).usage == type(r.usage)(
        r.usage.input_tokens,
        1,  # type: ignore[union-attr]
        r.usage.input_tokens + 1,
    )  # type: ignore[union-attr]
    llama.unload()


def test_stream_yields_tokens_then_usage_on_the_last_chunk(tf: LLM) -> None:
    chunks = list(tf.stream("Tell me a story about a cat.", max_tokens=16))
    texts = [c.content for c in chunks if c.content]
    assert len(texts) >= 3
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length") and last.usage is not None
    plain = tf.generate("Tell me a story about a cat.", max_tokens=16)
    assert "".join(texts) == plain.content
    assert plain.usage == last.usage


def test_seed_temperature_and_stop_are_honoured(tf: LLM) -> None:
    a = tf.generate("Tell me a joke.", temperature=0.9, top_p=0.9, seed=7, max_tokens=8)
    b = tf.generate("Tell me a joke.", temperature=0.9, top_p=0.9, seed=7, max_tokens=8)
    assert a.content == b.content
    others = {tf.generate("Tell me a joke.", temperature=1.5, seed=s, max_tokens=8).content for s in (1, 2)}
    assert len(others | {a.content}) > 1
    full = tf.generate(QUESTION).content
    stop = full.split()[2]  # whatever the model says, stop at its third word
    cut = tf.generate(QUESTION, stop=[stop])
    assert cut.finish_reason == "stop"
    assert cut.content == full[: full.index(stop)]


def test_breaking_out_of_a_sync_stream_stops_generation(tf: LLM) -> None:
    stream = tf.stream(LONG, max_tokens=300)
    for i, _ in enumerate(stream):
        if i == 1:
            break
    stream.close()  # type: ignore[attr-defined]
    assert wait_until(lambda: not tf.provider.busy, 10)
    assert_answer(tf.generate("Say hello.", max_tokens=4), 4)


@pytest.mark.anyio
async def test_closing_or_cancelling_async_calls_stops_generation(tf: LLM) -> None:
    async with aclosing(tf.astream(LONG, max_tokens=300)) as stream:
        async for _ in stream:
            break
    with anyio.move_on_after(0.5):
        await tf.agenerate(LONG, max_tokens=300)
    assert await anyio.to_thread.run_sync(wait_until, lambda: not tf.provider.busy, 10)
    assert_answer(await tf.agenerate("Say hello.", max_tokens=4), 4)


@pytest.mark.anyio
async def test_concurrent_agenerate_calls_queue_and_all_answer(tf: LLM) -> None:
    results: dict[int, GenerateResponse] = {}

    async def one(i: int) -> None:
        results[i] = await tf.agenerate(f"Say the number {i}.", max_tokens=4)

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(one, i)
    assert sorted(results) == [0, 1, 2]
    for r in results.values():
        assert_answer(r, 4)


@pytest.mark.anyio
async def test_the_event_loop_keeps_ticking_while_the_model_generates(tf: LLM) -> None:
    r, worst, took = await loop_lag_while(lambda: tf.agenerate(LONG, max_tokens=24))
    assert r.usage is not None and r.usage.output_tokens > 10
    assert worst < took / 4


def test_a_model_directory_runs_and_unload_gives_the_memory_back(hf_dir: Path) -> None:
    llm = create_llm(
        "huggingface", model=str(hf_dir), dtype="float32", device="cpu", max_tokens=6, temperature=0
    )
    first = llm.generate(QUESTION)
    assert_answer(first, 6)
    loaded = rss_bytes()
    llm.unload()
    assert not llm.provider.loaded
    freed = loaded - rss_bytes()
    assert freed > 250e6  # 135M float32 parameters are ~540 MB
    again = llm.generate(QUESTION)
    assert again.content == first.content
    llm.unload()


def test_missing_models_and_bad_options(tmp_path: Path) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match=r"config\.json") as info:
        create_llm("huggingface", model=str(empty)).generate("Hello")
    assert info.value.status_code is None
    with pytest.raises(ModelNotFoundError, match="HuggingFaceTB/SmolLM2-135M-Instruct"):
        create_llm(
            "huggingface", model="HuggingFaceTB/SmolLM2-135M-Instruct", cache_dir=str(tmp_path)
        ).generate("Hello")
    with pytest.raises(ConfigurationError, match="device"):
        create_llm("huggingface", device="tpu")
    with pytest.raises(ConfigurationError, match="dtype"):
        create_llm("huggingface", dtype="float8")


# -- constrained decoding (features/constrain.py) -----------------------------------------------


class Person(BaseModel):
    name: str
    age: int


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


ANN = "Ann is 31 years old. Give her name and age as JSON."


@pytest.mark.slow
def test_the_guarantee_comes_from_the_constraint(tf: LLM) -> None:
    # the same prompt, the same greedy decoding, the same token budget: only the constraint differs
    try:
        unconstrained: Any = tf.generate(
            ANN, response_model=Person, structured_mode="prompt", max_retries=0, max_tokens=24
        )
    except StructuredOutputError as exc:  # what a 135M model does when only asked
        assert exc.raw is not None and exc.raw.strip()
        unconstrained = exc.raw
    person = tf.generate(ANN, response_model=Person, max_tokens=24)
    assert person == Person(name="Ann", age=31)
    assert unconstrained != person
    caps = tf.fetch_capabilities()
    assert caps.structured_output is True and caps.tools is False  # tools are prompted here


@pytest.mark.slow
def test_output_types_come_back_typed(tf: LLM) -> None:
    two = Annotated[list[Person], Field(max_length=2)]  # maxItems: the 135M model repeats items forever
    people = tf.generate("List two people: Ann (31) and Bob (40).", response_model=two, max_tokens=40)
    assert people == [Person(name="Ann", age=31), Person(name="Bob", age=40)]  # sent as {"value": [...]}
    answer = tf.generate("Is the sky blue? Answer yes or no.", response_model=Literal["yes", "no"])
    assert answer in ("yes", "no")
    assert isinstance(tf.generate("What colour is grass?", response_model=Colour), Colour)


@pytest.mark.slow
def test_a_forced_tool_call_is_constrained_and_the_tool_loop_completes(tf: LLM) -> None:
    cities: list[str] = []

    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        cities.append(city)
        return f"It is sunny and 22 C in {city}."

    r = tf.generate("Weather in Paris?", tools=[get_weather], tool_choice="get_weather", max_tokens=20)
    assert r.tool_strategy == "prompted+grammar" and r.finish_reason == "tool_calls"
    [call] = r.tool_calls
    assert call.name == "get_weather" and call.arguments == {"city": "Paris"}
    assert not cities  # generate only asks
    result = tf.run("Weather in Paris?", tools=[get_weather], tool_choice="get_weather", max_tokens=20)
    assert result.steps[0].response.tool_calls[0].arguments == {"city": "Paris"}
    assert cities == ["Paris"]  # the real function ran once, then the model answered
    assert not result.response.tool_calls and result.content


@pytest.mark.slow
def test_a_streamed_response_model_grows_then_validates(tf: LLM) -> None:
    values = list(tf.stream(ANN, response_model=Person, max_tokens=24))
    assert len(values) >= 3
    *partials, final = values
    assert type(final) is Person and final == Person(name="Ann", age=31)
    names = [p.name for p in partials if getattr(p, "name", None) is not None]
    assert names and all(a == b[: len(a)] for a, b in itertools.pairwise(names))  # strings only grow
    assert any(getattr(p, "age", None) is None for p in partials)  # fields appear as they arrive


@pytest.mark.slow
def test_capabilities_give_the_context_of_the_models_config(gguf_path: Path, hf_dir: Path) -> None:
    from tests.providers.test_llamacpp import gguf_context_length

    stated = json.loads((hf_dir / "config.json").read_text())["max_position_embeddings"]
    assert stated == gguf_context_length(gguf_path)
    directory = create_llm("huggingface", model=str(hf_dir))
    dequantised = create_llm("huggingface", model=str(gguf_path), backend="transformers")
    for llm in (directory, dequantised):
        caps = llm.fetch_capabilities()
        assert not llm.provider.loaded  # the config alone, no weights
        # transformers refuses a prompt beyond max_position_embeddings: trained = what a request gets
        found = (caps.context_window, caps.trained_context_window, caps.source)
        assert found == (stated, stated, "model file")


@pytest.mark.slow
def test_an_answer_cut_by_max_tokens_drops_a_split_character(tf: LLM) -> None:
    from tests.providers.test_llamacpp import assert_cut_answers_hold_whole_characters

    assert_cut_answers_hold_whole_characters(tf, range(1, 9))
