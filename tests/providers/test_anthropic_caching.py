"""Prompt caching and token counting on Anthropic, through the public API.

Against the Messages API test server (tests/servers/anthropic_caching.py), which honours
``cache_control`` as the API publishes it: a prefix up to a breakpoint is written on first
sight and read afterwards, and usage splits the prompt into ``input_tokens``,
``cache_creation_input_tokens`` and ``cache_read_input_tokens``. Each test starts its
conversation with a system prompt of its own, so the server's cache holds nothing of it yet.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from abstractcore import ConfigurationError, Message, Session, TextPart, create_llm
from tests.servers.anthropic_server import API_KEY, AnthropicServer

pytestmark = pytest.mark.slow

SONNET = {"input": 3.0, "cache_write": 3.75, "cache_read": 0.30, "output": 15.0}  # USD per M tokens


def system_prompt() -> str:
    """A system prompt no other test sent (so its first sight writes the cache)."""
    rules = " ".join(f"Rule {i}: answer briefly and politely." for i in range(30))
    return f"You are assistant {uuid.uuid4().hex}. {rules}"


def make(server: AnthropicServer, **config: Any) -> tuple[Any, Any]:
    script = server.script()
    config = {"model": "claude-sonnet-4-5", "max_tokens": 8, "temperature": 0.0, **config}
    llm = create_llm("anthropic", base_url=server.url, api_key=API_KEY, headers=script.headers, **config)
    return llm, script


def breakpoints(body: dict[str, Any]) -> list[str]:
    """Where a request's cache_control breakpoints are: tools, system or messages.<i>."""
    found = [f"tools.{i}" for i, t in enumerate(body.get("tools") or []) if "cache_control" in t]
    system = body.get("system")
    found += ["system" for b in (system if isinstance(system, list) else []) if "cache_control" in b]
    for i, message in enumerate(body["messages"]):
        content = message["content"]
        if isinstance(content, list) and any("cache_control" in b for b in content):
            found.append(f"messages.{i}")
    return found


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


def test_a_six_turn_session_reads_the_cache_from_its_second_turn(
    anthropic_test_server: AnthropicServer,
) -> None:
    llm, script = make(anthropic_test_server)
    session = Session(llm, system_prompt=system_prompt(), cache=True)
    usages = [session.send(f"Question {turn}: name a colour.").usage for turn in range(6)]
    first, *later = usages
    assert first.cached_tokens == 0 and first.cache_write_tokens > 0
    read = [u.cached_tokens for u in later]
    assert all(r > 0 for r in read) and read == sorted(read) and len(set(read)) == 5  # growing
    for before, usage in zip(usages, later, strict=False):
        # what a turn reads is what the turn before wrote (and read): the previous request's prompt
        assert usage.cached_tokens == before.cached_tokens + before.cache_write_tokens
    for usage in usages:  # input_tokens counts the whole prompt, the cached parts among it
        assert usage.cached_tokens + usage.cache_write_tokens <= usage.input_tokens
        assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    bodies = [r["body"] for r in script.requests]
    assert breakpoints(bodies[0]) == ["system", "messages.0"]
    assert breakpoints(bodies[-1]) == ["system", "messages.8", "messages.10"]
    assert bodies[0]["system"][0]["cache_control"] == {"type": "ephemeral"}  # the 5-minute default
    assert session.usage.cached_tokens == sum(read)


def test_a_stream_reports_the_cache_once_equal_to_the_plain_answer(
    anthropic_test_server: AnthropicServer,
) -> None:
    llm, _script = make(anthropic_test_server, cache=True)
    history = [Message("user", "Name a fruit."), Message("assistant", "Apple."), Message("user", "Another?")]
    system = system_prompt()
    llm.generate(messages=history, system_prompt=system)  # writes the prefix
    chunks = list(llm.stream(messages=history, system_prompt=system))
    plain = llm.generate(messages=history, system_prompt=system).usage
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1]  # once, on the last chunk
    streamed = chunks[-1].usage
    assert streamed.cached_tokens > 0 and streamed.cache_write_tokens == 0
    assert streamed == plain  # the same figures, never summed over the events


def test_cache_ttl_one_hour_is_sent_and_other_lifetimes_are_refused(
    anthropic_test_server: AnthropicServer,
) -> None:
    llm, script = make(anthropic_test_server)
    response = llm.generate("Hello.", system_prompt=system_prompt(), cache=True, cache_ttl="1h")
    body = script.requests[0]["body"]
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert response.usage.cache_write_tokens > 0
    with pytest.raises(ConfigurationError, match="cache_ttl must be '5m' or '1h'"):
        llm.generate("Hello.", cache=True, cache_ttl="2h")
    assert len(script.requests) == 1  # refused before sending


def test_without_cache_no_breakpoint_is_sent(anthropic_test_server: AnthropicServer) -> None:
    llm, script = make(anthropic_test_server)
    response = llm.generate("Hello.", system_prompt=system_prompt())
    body = script.requests[0]["body"]
    assert breakpoints(body) == [] and isinstance(body["system"], str)
    assert response.usage.cached_tokens == 0 and response.usage.cache_write_tokens == 0


def test_the_tools_system_and_conversation_get_at_most_four_breakpoints(
    anthropic_test_server: AnthropicServer,
) -> None:
    llm, script = make(anthropic_test_server, cache=True, max_tokens=32)
    history = [Message("user", "Weather?"), Message("assistant", "Where?"), Message("user", "In Paris.")]
    llm.generate(messages=history, system_prompt=system_prompt(), tools=[get_weather])
    body = script.requests[0]["body"]
    assert breakpoints(body) == ["tools.0", "system", "messages.0", "messages.2"]
    assert body["tools"][-1]["name"] == "get_weather"


def test_count_tokens_equals_the_answers_input_tokens(anthropic_test_server: AnthropicServer) -> None:
    llm, script = make(anthropic_test_server, cache=True)
    system = system_prompt()
    history = [Message("user", "Name a fruit."), Message("assistant", "Apple."), Message("user", "Another?")]
    counted = llm.count_tokens(messages=history, system_prompt=system)
    first = llm.generate(messages=history, system_prompt=system).usage
    again = llm.generate(messages=history, system_prompt=system).usage
    assert counted == first.input_tokens == again.input_tokens  # cached or not, the whole prompt
    assert again.cached_tokens > 0
    request = script.requests[0]
    assert request["path"] == "/v1/messages/count_tokens" and "max_tokens" not in request["body"]


@pytest.mark.anyio
async def test_acount_tokens_is_the_async_twin(anthropic_test_server: AnthropicServer) -> None:
    llm, _script = make(anthropic_test_server)
    system = system_prompt()
    counted = await llm.acount_tokens("Hello there.", system_prompt=system)
    answer = await llm.agenerate("Hello there.", system_prompt=system)
    assert counted == answer.usage.input_tokens


def test_a_cached_turn_costs_the_published_cache_rates(anthropic_test_server: AnthropicServer) -> None:
    llm, _script = make(anthropic_test_server, cache=True)
    session = Session(llm, system_prompt=system_prompt())
    session.send("Name a colour.")
    response = session.send("Another one?")
    usage = response.usage
    assert usage.cached_tokens > 0 and usage.cache_write_tokens > 0
    uncached = usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens
    expected = (
        uncached * SONNET["input"]
        + usage.cache_write_tokens * SONNET["cache_write"]
        + usage.cached_tokens * SONNET["cache_read"]
        + usage.output_tokens * SONNET["output"]
    ) / 1_000_000
    assert response.cost == pytest.approx(expected, rel=1e-9)
    full = (usage.input_tokens * SONNET["input"] + usage.output_tokens * SONNET["output"]) / 1_000_000
    assert response.cost != pytest.approx(full)


def test_explicit_cache_control_on_parts_is_sent_unchanged_where_it_was_put(
    anthropic_test_server: AnthropicServer,
) -> None:
    llm, script = make(anthropic_test_server)  # no cache=True: only the caller's breakpoints
    document = "The shop's manual. " + "Aisle rules apply. " * 80
    system = Message("system", [TextPart(system_prompt(), cache_control={"type": "ephemeral", "ttl": "1h"})])
    messages: list[Any] = [
        system,
        {
            "role": "user",
            "content": [{"type": "text", "text": document, "cache_control": {"type": "ephemeral"}}],
        },
        {"role": "assistant", "content": "Read."},
        {"role": "user", "content": "What is in aisle 2?", "cache_control": {"type": "ephemeral"}},
    ]
    first = llm.generate(messages=messages).usage
    second = llm.generate(messages=messages).usage
    body = script.requests[0]["body"]
    assert breakpoints(body) == ["system", "messages.0", "messages.2"]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][2]["content"] == [
        {"type": "text", "text": "What is in aisle 2?", "cache_control": {"type": "ephemeral"}}
    ]
    assert first.cache_write_tokens > 0 and first.cached_tokens == 0
    assert second.cached_tokens == first.cache_write_tokens and second.cache_write_tokens == 0


def test_a_cache_control_that_is_not_a_breakpoint_is_refused_before_sending(
    anthropic_test_server: AnthropicServer,
) -> None:
    llm, script = make(anthropic_test_server)
    with pytest.raises(ConfigurationError, match="cache_control must be a dict like"):
        llm.generate(messages=[{"role": "user", "content": "Hi", "cache_control": "yes"}])
    assert script.requests == []
