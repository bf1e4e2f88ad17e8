"""The generated blocking face: freshness, threads, loops, and stream shutdown."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from abstractcore import LLM, AuthenticationError, ProviderConnectionError, RetryConfig, create_llm
from tests.servers.openai_fake import KEY, WORDS, FakeOpenAI, Fault, running_fake_openai

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server() -> Any:
    with running_fake_openai() as state:
        yield state


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


def make(fake: FakeOpenAI, **config: Any) -> LLM:
    return create_llm(
        "openai",
        model="gpt-fake",
        base_url=fake.base_url,
        api_key=KEY,
        retry_config=RetryConfig(max_attempts=1),
        **config,
    )


def test_generated_file_is_fresh() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_sync.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_sync", ROOT / "scripts" / "gen_sync.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    sys.modules["gen_sync"] = gen  # its dataclasses look their module up
    spec.loader.exec_module(gen)
    return gen


def test_check_fails_when_a_generated_file_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _generator()
    texts = gen.render()
    assert set(texts) == {"_sync.py", "_sync_session.py"}
    monkeypatch.setattr(gen, "OUT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["gen_sync.py", "--check"])
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    assert gen.main() == 0
    for name, old, new in (
        ("_sync.py", "def generate(", "def generate_old("),
        ("_sync_session.py", "def send(", "def sent("),
    ):
        (tmp_path / name).write_text(texts[name].replace(old, new, 1))
        assert gen.main() == 1, f"a renamed twin in {name} passed the check"
        (tmp_path / name).write_text(texts[name] + "\n# extra line\n")
        assert gen.main() == 1, f"an extra line in {name} passed the check"
        (tmp_path / name).unlink()
        assert gen.main() == 1, f"a missing {name} passed the check"
        (tmp_path / name).write_text(texts[name])
    assert gen.main() == 0


def _source_methods(cls: type) -> dict[str, Any]:
    """The public ``a…`` methods of ``cls``: coroutine functions, and methods returning an async iterator."""
    found = {}
    for name in dir(cls):
        if not name.startswith("a") or name.startswith("_"):
            continue
        method = getattr(cls, name)
        if not callable(method):
            continue
        returns = str(inspect.signature(method).return_annotation)
        if (
            inspect.iscoroutinefunction(method)
            or inspect.isasyncgenfunction(method)
            or "AsyncIter" in returns
        ):
            found[name] = method
    return found


def _blocking(signature: inspect.Signature) -> list[tuple[str, Any, Any, Any]]:
    """A signature as its blocking twin must have it (``AsyncIterator[X]`` -> ``Iterator[X]``)."""

    def sync(annotation: Any) -> Any:
        return annotation.replace("AsyncIterator", "Iterator") if isinstance(annotation, str) else annotation

    params = [(p.name, p.kind, p.default, sync(p.annotation)) for p in signature.parameters.values()]
    return [*params, ("return", None, None, sync(signature.return_annotation))]


def twin_problems(async_classes: list[type], sync_class: type, *, exact: bool = True) -> list[str]:
    """What is wrong with the blocking twins on ``sync_class`` of the async methods of ``async_classes``:
    a twin missing, not blocking, or (``exact``) with another signature or docstring than its method."""
    gen = _generator()
    problems = []
    names = {name for cls in async_classes for name in _source_methods(cls)}
    for cls in async_classes:
        for name, method in _source_methods(cls).items():
            twin = getattr(sync_class, gen._twin_name(name), None)
            where = f"{cls.__name__}.{name} -> {sync_class.__name__}.{gen._twin_name(name)}"
            if twin is None or not callable(twin):
                problems.append(f"{where}: missing")
                continue
            if inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin):
                problems.append(f"{where}: not blocking")
            asked, given = inspect.signature(method), inspect.signature(twin)
            if exact and _blocking(asked) != _blocking(given):
                problems.append(f"{where}: signature {given} differs from {asked}")
            elif [(p.name, p.kind) for p in asked.parameters.values()] != [
                (p.name, p.kind) for p in given.parameters.values()
            ]:
                problems.append(f"{where}: parameters {given} differ from {asked}")
            doc = inspect.getdoc(method)
            if not doc or not twin.__doc__:
                problems.append(f"{where}: no docstring")
            elif exact and inspect.getdoc(twin) != gen._sync_doc(doc, names):
                problems.append(f"{where}: docstring differs from the async method's")
    return problems


def _generated_pairs() -> list[tuple[list[type], type]]:
    """(the async classes the generator reads, the class it writes), for every generated module."""
    import abstractcore
    from abstractcore._llm_base import LLMBase
    from abstractcore.providers.base import AsyncProvider
    from abstractcore.session import AsyncSession

    pairs = [([AsyncProvider, LLMBase], LLM), ([AsyncSession], abstractcore.Session)]
    read = {(s.cls, f.cls) for f in _generator().FACES for s in f.sources}
    assert read == {(a.__name__, c.__name__) for classes, c in pairs for a in classes}
    return pairs


def test_every_async_method_has_a_blocking_twin_with_its_signature_and_docstring() -> None:
    """Derived from the async classes: a new ``a…`` method of ``AsyncProvider``, of the apps on
    ``LLMBase`` or of ``AsyncSession`` fails here without a twin, and so does a twin that drifted."""
    pairs = _generated_pairs()
    for async_classes, sync_class in pairs:
        assert twin_problems(async_classes, sync_class) == []
    from abstractcore.providers.base import AsyncProvider

    for name, method in _source_methods(AsyncProvider).items():
        delegate = getattr(LLM, name)
        assert inspect.signature(delegate) == inspect.signature(method), name
        assert inspect.getdoc(delegate) == inspect.getdoc(method), name
    seen = {name for classes, _ in pairs for cls in classes for name in _source_methods(cls)}
    assert {
        "agenerate",
        "astream",
        "aembed",
        "acapabilities",
        "arun",
        "astream_run",
        "abatch",
        "asend",
    } <= seen


def test_every_registered_provider_s_async_methods_have_twins_on_llm() -> None:
    """A provider (the router included) adding an ``a…`` method of its own fails without a twin."""
    from abstractcore.registry import PROVIDERS, provider_class

    providers = [provider_class(name) for name in PROVIDERS]
    assert twin_problems(providers, LLM, exact=False) == []


def test_the_twin_check_fails_for_a_missing_or_drifted_twin() -> None:
    from abstractcore.providers.base import AsyncProvider
    from abstractcore.session import AsyncSession

    class WithANewMethod(AsyncProvider):
        async def asummarise(self, text: str) -> str:
            """A method the generator has not seen."""
            return text

        def astream_words(self, text: str) -> AsyncIterator[str]:
            """An async iterator too."""
            raise NotImplementedError

    assert sorted(twin_problems([WithANewMethod], LLM)) == [
        "WithANewMethod.astream_words -> LLM.stream_words: missing",
        "WithANewMethod.asummarise -> LLM.summarise: missing",
    ]

    class Drifted(AsyncSession):
        def send(self, prompt: str, *, temperature: float = 0.0) -> Any:
            """Send."""

    problems = twin_problems([AsyncSession], Drifted)
    assert len(problems) == 2, problems
    assert problems[0].startswith("AsyncSession.asend -> Drifted.send: signature")
    assert problems[1] == "AsyncSession.asend -> Drifted.send: docstring differs from the async method's"


def test_session_send_is_the_generated_blocking_twin(fake: FakeOpenAI) -> None:
    import abstractcore
    from abstractcore.session import AsyncSession

    llm = make(fake)
    chat = llm.session(system_prompt="Be brief.")
    assert type(chat) is abstractcore.Session and isinstance(chat, AsyncSession)
    assert type(chat).send.__module__ == "abstractcore._sync_session"
    assert chat.send("hi").content == "".join(WORDS)
    assert [m.role for m in chat.messages] == ["user", "assistant"]


def test_plain_script_generate_and_errors_keep_their_type(fake: FakeOpenAI) -> None:
    llm = make(fake)
    assert llm.generate("hi").content == "".join(WORDS)
    bad = create_llm("openai", model="gpt-fake", base_url=fake.base_url, api_key="sk-bad-key-123")
    with pytest.raises(AuthenticationError):
        bad.generate("hi")


def test_generate_stream_true_returns_an_iterator(fake: FakeOpenAI) -> None:
    llm = make(fake)
    out = llm.generate("hi", stream=True)
    assert "".join(c.content for c in out) == "".join(WORDS)


@pytest.mark.anyio
async def test_agenerate_stream_true_returns_an_async_iterator(fake: FakeOpenAI) -> None:
    llm = make(fake)
    out = await llm.agenerate("hi", stream=True)
    assert isinstance(out, AsyncIterator)
    assert "".join([c.content async for c in out]) == "".join(WORDS)
    await llm.aclose()


def test_many_threads_at_once(fake: FakeOpenAI) -> None:
    llm = make(fake)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: llm.generate("hi").content, range(32)))
    assert results == ["".join(WORDS)] * 32
    with ThreadPoolExecutor(4) as pool:
        streams = list(pool.map(lambda _: "".join(c.content for c in llm.stream("hi")), range(8)))
    assert streams == ["".join(WORDS)] * 8


def test_breaking_out_of_a_sync_stream_stops_the_producer(fake: FakeOpenAI) -> None:
    fake.script.append(Fault("delay_stream", seconds=0.5))
    llm = make(fake)
    start = time.monotonic()
    for chunk in llm.stream("hi"):
        assert chunk.content == WORDS[0]
        break
    deadline = time.monotonic() + 3
    while fake.open_streams and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.open_streams == 0, "the server still streams: the connection was not released"
    assert time.monotonic() - start < 2, "breaking out must not wait for the whole stream"
    assert llm.generate("hi").content == "".join(WORDS)


def test_error_mid_stream_reaches_the_sync_caller_after_the_chunks_before_it(fake: FakeOpenAI) -> None:
    fake.script.append(Fault("drop_stream", events=3))
    llm = make(fake)
    got: list[str] = []
    with pytest.raises(ProviderConnectionError):
        for chunk in llm.stream("hi"):
            got.append(chunk.content)
    assert "".join(got) == "".join(WORDS[:3])


def test_bad_arguments_raise_at_call_time_not_on_iteration(fake: FakeOpenAI) -> None:
    from abstractcore import ConfigurationError

    llm = make(fake)
    with pytest.raises(ConfigurationError):
        llm.stream("hi", temperature=-1)
    assert fake.requests == []


def test_context_managers_close(fake: FakeOpenAI) -> None:
    with make(fake) as llm:
        assert llm.generate("hi").content


def test_sync_call_from_the_portal_thread_raises_instead_of_deadlocking(fake: FakeOpenAI) -> None:
    from abstractcore import _portal

    llm = make(fake)
    llm.generate("hi")

    async def inside() -> None:
        llm.generate("hi")

    with pytest.raises(RuntimeError):
        _portal.portal().call(inside)


def test_script_exits_cleanly_without_close(fake: FakeOpenAI) -> None:
    code = (
        "from abstractcore import create_llm\n"
        f"llm = create_llm('openai', model='m', base_url={fake.base_url!r}, api_key={KEY!r})\n"
        "print(llm.generate('hi').content)\n"
        "import asyncio\n"
        "async def main():\n"
        "    print((await llm.agenerate('hi')).content)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["".join(WORDS)] * 2
    assert "Unclosed" not in result.stderr and "Traceback" not in result.stderr
