"""Servers for the server tests: in front of the embedded model in process, of the real
llama-cpp-python server, of llama.cpp's C++ server with embeddings, and of the test servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from abstractcore import LLM, create_llm
from tests.server.support import MODEL, RunningServer, running_server
from tests.support.cpp_llama_server import cpp_llama_server


@pytest.fixture(scope="session")
def local_llm(gguf_path: Path) -> Iterator[LLM]:
    """SmolLM2 in process (llama.cpp), greedy."""
    llm = create_llm("huggingface", model=str(gguf_path), temperature=0)
    yield llm
    llm.unload()


@pytest.fixture(scope="session")
def local_server(local_llm: LLM) -> Iterator[RunningServer]:
    """The server in front of the in-process model, with a key."""
    with running_server({MODEL: local_llm}) as server:
        yield server


@pytest.fixture(scope="session")
def llama_server_backed(llama_base_url: str) -> Iterator[RunningServer]:
    """The server in front of the real llama-cpp-python server (OpenAI-compatible), with a key."""
    llm = create_llm("openai-compatible", model=MODEL, base_url=llama_base_url, temperature=0)
    with running_server({MODEL: llm}) as server:
        yield server


@pytest.fixture(params=["in-process", "llama-cpp-server"])
def served(request: pytest.FixtureRequest) -> RunningServer:
    """Each of the two chat back ends in turn."""
    name = "local_server" if request.param == "in-process" else "llama_server_backed"
    server: RunningServer = request.getfixturevalue(name)
    return server


@pytest.fixture(scope="session")
def embedding_server(gguf_path: Path) -> Iterator[tuple[RunningServer, LLM]]:
    """The server in front of llama.cpp's C++ server started with --embeddings; and that back end."""
    with cpp_llama_server(gguf_path, n_ctx=2048, embeddings=True) as base:
        llm = create_llm("openai-compatible", model="smollm2-embed", base_url=base)
        with running_server({"embed": llm}) as server:
            yield server, llm
