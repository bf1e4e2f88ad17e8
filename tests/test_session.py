"""Sessions: a conversation that keeps its history, runs tools, saves and loads as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from abstractcore import ConfigurationError, RunResult, Session, create_llm
from tests.servers.anthropic_server import API_KEY, AnthropicServer
from tests.servers.common import Fault


def lookup(word: str) -> str:
    """Look a word up in the dictionary."""
    return f"{word}: a small domesticated feline"


def make(server: AnthropicServer, *faults: Fault) -> tuple[Any, Any]:
    script = server.script(*faults)
    llm = create_llm(
        "anthropic",
        model="claude-3-5-haiku-latest",
        base_url=server.url,
        api_key=API_KEY,
        headers=script.headers,
        max_tokens=12,
        temperature=0,
    )
    return llm, script


def test_the_history_grows_and_is_sent_each_turn(anthropic_test_server: AnthropicServer) -> None:
    llm, script = make(anthropic_test_server)
    chat = llm.session(system_prompt="You are terse.")
    first = chat.send("My name is Ann.")
    chat.send("What is my name?")
    assert [m.role for m in chat.messages] == ["user", "assistant", "user", "assistant"]
    assert chat.messages[1].content == first.content
    sent = script.requests[1]["body"]
    assert sent["system"] == "You are terse."
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert chat.usage.input_tokens > 0


def test_a_session_with_tools_runs_the_loop(anthropic_test_server: AnthropicServer) -> None:
    llm, script = make(
        anthropic_test_server, Fault("tool_calls", calls=[{"name": "lookup", "arguments": {"word": "cat"}}])
    )
    chat = llm.session(tools=[lookup])
    result = chat.send("What is a cat?")
    assert isinstance(result, RunResult)
    assert [m.role for m in chat.messages] == ["user", "assistant", "tool", "assistant"]
    assert "feline" in chat.messages[2].content
    chat.send("Thanks.")
    assert len(script.requests[-1]["body"]["messages"]) == 5  # the whole exchange went back


@pytest.mark.anyio
async def test_asend_is_the_async_twin(anthropic_test_server: AnthropicServer) -> None:
    llm, _ = make(anthropic_test_server)
    chat = llm.session()
    answer = await chat.asend("Hello!")
    assert chat.messages[-1].content == answer.content


def test_save_and_load_round_trip(anthropic_test_server: AnthropicServer, tmp_path: Path) -> None:
    llm, script = make(
        anthropic_test_server, Fault("tool_calls", calls=[{"name": "lookup", "arguments": {"word": "cat"}}])
    )
    chat = llm.session(system_prompt="Be kind.", tools=[lookup])
    chat.send("What is a cat?")
    path = chat.save(tmp_path / "chat.json")
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["system_prompt"] == "Be kind."
    again = Session.load(path, llm, tools=[lookup])
    assert [m.role for m in again.messages] == [m.role for m in chat.messages]
    assert again.messages[1].tool_calls == chat.messages[1].tool_calls
    again.send("And a dog?")  # the reloaded history is accepted by the API
    assert script.requests[-1]["body"]["messages"][2]["content"][0]["type"] == "tool_result"


def test_a_newer_or_broken_file_is_refused(tmp_path: Path) -> None:
    llm = create_llm("anthropic", api_key="k", base_url="http://127.0.0.1:9")
    (tmp_path / "new.json").write_text(json.dumps({"version": 99, "messages": []}))
    with pytest.raises(ConfigurationError, match="version 99"):
        Session.load(tmp_path / "new.json", llm)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ConfigurationError, match="Cannot read"):
        Session.load(tmp_path / "bad.json", llm)


def test_the_token_budget_drops_the_oldest_turns_first(anthropic_test_server: AnthropicServer) -> None:
    llm, script = make(anthropic_test_server)
    chat = llm.session(max_history_tokens=60)
    for i in range(4):
        chat.send(f"Turn {i}: " + "words " * 20)
    sent = script.requests[-1]["body"]["messages"]
    assert sent[0]["role"] == "user" and "Turn 3" in json.dumps(sent[-1])
    assert "Turn 0" not in json.dumps(sent)  # dropped from what was sent
    assert len(chat.messages) == 8  # ... but kept in the session's own history
