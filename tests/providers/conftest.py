"""Fixtures for provider tests: the fake OpenAI server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.openai_fake import FakeOpenAI, running_fake_openai


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
