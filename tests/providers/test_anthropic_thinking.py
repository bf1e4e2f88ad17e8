"""Claude's extended thinking through the public API, against the Messages API test server.

The server (tests/servers/anthropic_thinking.py) answers a request with thinking enabled with a
signed ``thinking`` block (and a ``redacted_thinking`` one on Anthropic's trigger string), and
rejects what the real API rejects: a tool-result turn whose assistant turn lost its thinking, a
changed signature or redacted data, the thinking rules. So these tests fail when the thinking
is not sent back unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from abstractcore import (
    BadRequestError,
    ConfigurationError,
    Message,
    RetryConfig,
    create_llm,
)
from abstractcore.core.types import ReasoningPart
from tests.servers.anthropic_server import API_KEY, AnthropicServer
from tests.servers.anthropic_thinking import REDACTED_TRIGGER
from tests.servers.common import Fault, Script
from tests.servers.openai_fake import KEY, running_fake_openai

pytestmark = pytest.mark.slow

FAST = RetryConfig(initial_delay=0.01, max_delay=0.05, jitter=False)
#: The budget plus the answer's few tokens (the server's model writes the answer only).
THINKING = {"thinking_budget": 1024, "max_tokens": 1024 + 16}


def make(server: AnthropicServer, *faults: Fault, **config: Any) -> tuple[Any, Script]:
    script = server.script(*faults)
    config = {"model": "claude-sonnet-4-5", **THINKING, **config}
    llm = create_llm(
        "anthropic", base_url=server.url, api_key=API_KEY, headers=script.headers, retry_config=FAST, **config
    )
    return llm, script


def calls(*cities: str) -> list[Fault]:
    return [Fault("tool_calls", calls=[{"name": "get_weather", "arguments": {"city": c}}]) for c in cities]


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


def first_blocks(body: dict[str, Any]) -> list[str]:
    """The first block type of each assistant turn of a request."""
    return [m["content"][0]["type"] for m in body["messages"] if m["role"] == "assistant"]


# -- separated, streamed ------------------------------------------------------------------------


def test_generate_keeps_the_thinking_apart_with_its_signature(anthropic_test_server: AnthropicServer) -> None:
    llm, script = make(anthropic_test_server)
    response = llm.generate("Say hello.")
    assert response.reasoning is not None and "Say hello." in response.reasoning
    assert "draft" not in response.content  # the answer never holds the thinking
    [part] = response.reasoning_parts
    assert part.text == response.reasoning and part.signature and part.source == "anthropic"
    body = script.requests[0]["body"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["max_tokens"] == 1040 and "temperature" not in body
    assert response.usage.reasoning_tokens == 0  # Anthropic reports none apart: billed as output
    assert response.usage.output_tokens > len(part.text) // 4


def test_stream_delivers_thinking_deltas_and_the_signed_blocks_last(
    anthropic_test_server: AnthropicServer,
) -> None:
    llm, _ = make(anthropic_test_server)
    chunks = list(llm.stream("Say hello."))
    deltas = [c.reasoning for c in chunks if c.reasoning]
    assert len(deltas) >= 2  # as they arrive, not at the end
    assert all(not c.content for c in chunks if c.reasoning)
    [part] = chunks[-1].reasoning_parts
    assert part.text == "".join(deltas) and part.signature and part.source == "anthropic"
    assert "draft" not in "".join(c.content for c in chunks)


def test_the_effort_maps_to_a_budget_and_max_tokens_makes_room(
    anthropic_test_server: AnthropicServer,
) -> None:
    llm, script = make(anthropic_test_server, *calls("Paris"), thinking_budget=None, max_tokens=None)
    llm.generate("Weather in Paris?", tools=[get_weather], reasoning_effort="low")
    body = script.requests[0]["body"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 2048 + 4096  # unset: the answer keeps its default room
    llm.generate("Hi", reasoning=False, max_tokens=8)  # off for one call: no thinking field
    assert "thinking" not in script.requests[1]["body"]


# -- sent back ----------------------------------------------------------------------------------------


def test_a_tool_loop_with_thinking_sends_each_turns_thinking_back(
    anthropic_test_server: AnthropicServer,
) -> None:
    llm, script = make(anthropic_test_server, *calls("Paris", "Rome"))
    result = llm.run("Weather in Paris, then in Rome?", tools=[get_weather])
    assert [len(s.executions) for s in result.steps] == [1, 1, 0]
    assert [first_blocks(r["body"]) for r in script.requests] == [[], ["thinking"], ["thinking", "thinking"]]
    turn = result.messages[1]
    sent = script.requests[1]["body"]["messages"][1]["content"][0]
    assert sent == {
        "type": "thinking",
        "thinking": turn.reasoning[0].text,
        "signature": turn.reasoning[0].signature,
    }
    # without the send-back the same history is what the API rejects
    stripped = [
        Message(m.role, m.content, tool_calls=m.tool_calls, tool_call_id=m.tool_call_id)
        for m in result.messages[:3]
    ]
    with pytest.raises(BadRequestError, match="must start with a thinking block"):
        llm.generate(messages=stripped, tools=[get_weather])


def test_the_streamed_tool_loop_sends_the_thinking_back(anthropic_test_server: AnthropicServer) -> None:
    llm, script = make(anthropic_test_server, *calls("Paris"))
    events = list(llm.stream_run("Weather in Paris?", tools=[get_weather]))
    assert any(e.kind == "reasoning" for e in events)
    assert first_blocks(script.requests[1]["body"]) == ["thinking"]


def test_a_session_keeps_the_thinking_across_turns(anthropic_test_server: AnthropicServer) -> None:
    llm, script = make(anthropic_test_server, *calls("Paris", "Rome"))
    chat = llm.session(tools=[get_weather])
    chat.send("Weather in Paris?")
    chat.send("And in Rome?")
    assert chat.messages[1].reasoning and chat.messages[1].reasoning[0].signature
    assert first_blocks(script.requests[-2]["body"]) == ["thinking", "thinking"]


def test_history_passed_back_as_dicts_or_messages_works(anthropic_test_server: AnthropicServer) -> None:
    llm, script = make(anthropic_test_server, *calls("Paris"))
    first = llm.generate("Weather in Paris?", tools=[get_weather])
    call = first.tool_calls[0]
    turn = first.message()
    as_dict = {
        "role": "assistant",
        "content": turn.content,
        "tool_calls": [{"id": call.id, "name": call.name, "arguments": call.arguments}],
        "reasoning": [{"text": p.text, "signature": p.signature, "source": p.source} for p in turn.reasoning],
    }
    result = {"role": "tool", "content": "sunny", "tool_call_id": call.id}
    for history in (
        [{"role": "user", "content": "Weather in Paris?"}, turn, result],
        [{"role": "user", "content": "Weather in Paris?"}, as_dict, result],
    ):
        answer = llm.generate(messages=history, tools=[get_weather])
        assert answer.reasoning
    assert first_blocks(script.requests[-1]["body"]) == ["thinking"]


def test_a_redacted_block_goes_back_unchanged(anthropic_test_server: AnthropicServer) -> None:
    llm, script = make(anthropic_test_server, *calls("Paris"))
    result = llm.run(f"{REDACTED_TRIGGER} Weather in Paris?", tools=[get_weather])
    redacted, thought = result.messages[1].reasoning
    assert redacted.redacted and not redacted.text and thought.signature
    sent = script.requests[1]["body"]["messages"][1]["content"]
    assert sent[0] == {"type": "redacted_thinking", "data": redacted.redacted}
    assert sent[1]["type"] == "thinking"
    assert result.steps[0].response.reasoning == thought.text  # redacted data is no text


def test_a_changed_signature_is_rejected_and_other_sources_are_dropped(
    anthropic_test_server: AnthropicServer,
) -> None:
    llm, script = make(anthropic_test_server, *calls("Paris"))
    first = llm.generate("Weather in Paris?", tools=[get_weather])
    call = first.tool_calls[0]
    part = first.reasoning_parts[0]
    forged = ReasoningPart(part.text + " (edited)", signature=part.signature, source="anthropic")
    history: list[Any] = [
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=[call], reasoning=[forged]),
        Message("tool", "sunny", tool_call_id=call.id),
    ]
    with pytest.raises(BadRequestError, match="Invalid `signature`"):
        llm.generate(messages=history, tools=[get_weather])
    # another provider's thinking is never sent to Anthropic (here: nothing to start the turn)
    history[1] = Message("assistant", "", tool_calls=[call], reasoning=[ReasoningPart("hm", source="openai")])
    with pytest.raises(BadRequestError, match="must start with a thinking block"):
        llm.generate(messages=history, tools=[get_weather])
    assert "hm" not in str(script.requests[-1]["body"])


# -- the rules, before sending ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "call", "match"),
    [
        ({}, {"temperature": 0.2}, "temperature=0.2 cannot be used"),
        ({}, {"top_k": 5}, "top_k cannot be used"),
        ({}, {"tool_choice": "required"}, "use tool_choice='auto'"),
        ({}, {"tool_choice": "get_weather"}, "forces a tool call"),
        ({"thinking_budget": 500}, {}, "below Anthropic's minimum of 1024"),
        ({"max_tokens": 1024}, {}, "must be above the thinking budget"),
        ({"model": "claude-3-5-haiku-latest"}, {}, "has no extended thinking"),
        ({"thinking_budget": None}, {"reasoning_effort": "extreme"}, "reasoning_effort must be one of"),
    ],
)
def test_what_the_api_refuses_is_a_configuration_error_before_sending(
    anthropic_test_server: AnthropicServer, config: dict[str, Any], call: dict[str, Any], match: str
) -> None:
    llm, script = make(anthropic_test_server, **config)
    with pytest.raises(ConfigurationError, match=match):
        llm.generate("Weather in Paris?", tools=[get_weather], **call)
    with pytest.raises(ConfigurationError, match=match):
        llm.stream("Weather in Paris?", tools=[get_weather], **call)  # at the call, not on iteration
    assert script.requests == []


class Answer(BaseModel):
    city: str
    sunny: bool


def test_a_response_model_validates_first_time_though_the_thinking_has_braces(
    anthropic_test_server: AnthropicServer,
) -> None:
    # native JSON output (the default here; the forced tool is refused under thinking): the
    # reply opens with thinking holding '{"draft": true, "steps": [1, 2}', then the JSON
    llm, script = make(anthropic_test_server, max_tokens=1024 + 64)
    value = llm.generate("Paris is sunny. Answer as JSON.", response_model=Answer)
    assert isinstance(value, Answer)
    assert len(script.requests) == 1  # the first answer parsed: the thinking's braces never read
    body = script.requests[0]["body"]
    assert "output_format" in body and "tool_choice" not in body


def test_structured_tool_mode_is_refused_under_thinking(anthropic_test_server: AnthropicServer) -> None:
    llm, script = make(anthropic_test_server)
    with pytest.raises(ConfigurationError, match="structured_mode='tool'"):
        llm.generate("Paris?", response_model=Answer, structured_mode="tool")
    assert script.requests == []


# -- another provider ---------------------------------------------------------------------------------


def test_a_router_falling_back_to_openai_sends_it_no_thinking(anthropic_test_server: AnthropicServer) -> None:
    claude, _ = make(anthropic_test_server, *calls("Paris"))
    first = claude.generate("Weather in Paris?", tools=[get_weather])
    call = first.tool_calls[0]
    history = [
        Message("user", "Weather in Paris?"),
        first.message(),
        Message("tool", "sunny", tool_call_id=call.id),
    ]
    script = anthropic_test_server.script(Fault("status", 529, type="overloaded_error", message="Overloaded"))
    with running_fake_openai() as fake:
        router = create_llm(
            "router",
            models=[
                (
                    "anthropic",
                    {
                        "model": "claude-sonnet-4-5",
                        "api_key": API_KEY,
                        "base_url": anthropic_test_server.url,
                        "headers": script.headers,
                        "retry_config": RetryConfig(max_attempts=1),
                        **THINKING,
                    },
                ),
                ("openai", {"model": "gpt-4o-mini", "api_key": KEY, "base_url": fake.base_url}),
            ],
        )
        answer = router.generate(messages=history, tools=[get_weather])
        assert answer.content
        sent_to_claude = script.requests[0]["body"]
        assert first_blocks(sent_to_claude) == ["thinking"]  # its own thinking went to Claude
        body = str(fake.requests[-1]["body"])
        assert first.reasoning_parts[0].signature not in body
        assert first.reasoning_parts[0].text not in body
        router.close()
