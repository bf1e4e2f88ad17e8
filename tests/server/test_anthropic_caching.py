"""Prompt caching through ``abstractcore serve``'s Anthropic endpoint, with the official SDK.

The server's back end is the Anthropic test server (which honours ``cache_control``): the
request's ``cache_control`` reaches it as ``cache=True``, and the usage comes back in
Anthropic's fields, ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` (plain and
streamed: ``message_delta`` carries the figures); a back end that caches by itself is sent no
``cache`` it would refuse.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from abstractcore import LLM, create_llm
from tests.server.support import MODEL, RunningServer, anthropic_client, running_server
from tests.servers.anthropic_server import API_KEY as ANTHROPIC_KEY
from tests.servers.anthropic_server import AnthropicServer

pytestmark = pytest.mark.slow


def anthropic_backend(server: AnthropicServer) -> tuple[LLM, Any]:
    """A back end on the Anthropic test server, and the script recording what it was sent."""
    script = server.script()
    llm = create_llm(
        "anthropic",
        model="claude-haiku-4-5",
        base_url=server.url,
        api_key=ANTHROPIC_KEY,
        headers=script.headers,
    )
    return llm, script


def _system() -> list[dict[str, Any]]:
    text = f"You are assistant {uuid.uuid4().hex}. " + "Answer briefly. " * 60
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]


def test_cache_control_is_honoured_and_the_cached_tokens_reported(
    anthropic_test_server: AnthropicServer,
) -> None:
    backend, script = anthropic_backend(anthropic_test_server)
    system = _system()
    messages: Any = [{"role": "user", "content": "Name a colour."}]
    with running_server({"claude": backend}) as server:
        client = anthropic_client(server)
        first = client.messages.create(model="claude", max_tokens=8, system=system, messages=messages)
        second = client.messages.create(model="claude", max_tokens=8, system=system, messages=messages)
        with client.messages.stream(model="claude", max_tokens=8, system=system, messages=messages) as s:
            streamed = s.get_final_message()
    assert first.usage.cache_creation_input_tokens and not first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens and second.usage.cache_read_input_tokens > 0
    assert streamed.usage.cache_read_input_tokens == second.usage.cache_read_input_tokens
    assert streamed.usage.input_tokens == second.usage.input_tokens  # the uncached rest, as Anthropic says
    total = first.usage.input_tokens + first.usage.cache_creation_input_tokens
    assert (
        second.usage.input_tokens
        + second.usage.cache_read_input_tokens
        + (second.usage.cache_creation_input_tokens or 0)
        == total
    )
    sent = [r["body"] for r in script.requests if r["path"] == "/v1/messages"]
    assert all(b["system"][-1]["cache_control"] == {"type": "ephemeral"} for b in sent)


def test_a_one_hour_breakpoint_asks_the_back_end_for_the_hour(anthropic_test_server: AnthropicServer) -> None:
    backend, script = anthropic_backend(anthropic_test_server)
    system = _system()
    system[-1]["cache_control"]["ttl"] = "1h"
    with running_server({"claude": backend}) as server:
        client = anthropic_client(server)
        client.messages.create(
            model="claude", max_tokens=4, system=system, messages=[{"role": "user", "content": "Hi."}]
        )
    [body] = [r["body"] for r in script.requests if r["path"] == "/v1/messages"]
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


def test_cache_control_on_a_back_end_that_caches_by_itself_is_accepted(
    local_server: RunningServer,
) -> None:
    client = anthropic_client(local_server)
    reply = client.messages.create(
        model=MODEL, max_tokens=4, system=_system(), messages=[{"role": "user", "content": "Hi."}]
    )
    assert reply.usage.output_tokens > 0
    assert reply.usage.cache_read_input_tokens is not None  # the field is there, 0 or what was reused


def test_a_clients_breakpoint_reaches_the_back_end_on_the_same_block(
    anthropic_test_server: AnthropicServer,
) -> None:
    backend, script = anthropic_backend(anthropic_test_server)
    document = f"Manual {uuid.uuid4().hex}. " + "Aisle rules apply. " * 60
    content: Any = [
        {"type": "text", "text": document, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "What is in aisle 2?"},
    ]
    with running_server({"claude": backend}) as server:
        anthropic_client(server).messages.create(
            model="claude", max_tokens=4, messages=[{"role": "user", "content": content}]
        )
    [body] = [r["body"] for r in script.requests if r["path"] == "/v1/messages"]
    sent = body["messages"][0]["content"]
    assert sent[0] == {"type": "text", "text": document, "cache_control": {"type": "ephemeral"}}
    assert sent[1]["text"] == "What is in aisle 2?"
