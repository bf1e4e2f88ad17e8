"""Thinking on real servers and the real model: llama.cpp's ``llama-server`` parsing it itself
(``reasoning_content``, with a Qwen3-style template), llama-cpp-python's server passing the
``<think>`` tags through (split by us), and the Ollama test server's ``think``.

SmolLM2 does not think of its own accord: the request's ``grammar`` (``extra_body``) makes it
write ``<think>…</think>`` and then its answer, tokens the servers parse like any model's.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from abstractcore import create_llm
from abstractcore.core.types import Message, ReasoningPart, ToolCall
from tests.servers.ollama_server import OllamaServer, thinking_of

pytestmark = pytest.mark.slow

#: Thinking with braces in it, then a short answer.
THINK = r'root ::= "<think>" [a-z {}:]{8,30} "</think>" [A-Z] [a-z ]{3,12}'
#: Thinking with braces, then a Person as JSON.
THINK_THEN_JSON = (
    r'root ::= "<think>" "{" [a-z ]{4,20} "}" "</think>" '
    r'"{\"name\": \"" [A-Z] [a-z]{1,8} "\", \"age\": " [1-9] [0-9] "}"'
)
ASK = {"temperature": 0, "max_tokens": 60}


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture(params=["llama-server", "llama-cpp-python"])
def served(request: pytest.FixtureRequest) -> Any:
    """The same model behind a server that parses thinking (llama-server with a reasoning
    template) and one that passes the tags through (llama-cpp-python)."""
    base = request.getfixturevalue(
        "reasoning_server_url" if request.param == "llama-server" else "llama_base_url"
    )
    return create_llm("openai-compatible", model="smollm2", base_url=base, **ASK)


def test_a_real_servers_thinking_is_kept_apart_streamed_or_not(served: Any) -> None:
    response = served.generate("Say hi.", extra_body={"grammar": THINK})
    assert response.reasoning and response.content
    assert "<think>" not in response.content and "</think>" not in response.content
    assert response.content[0].isupper()  # the answer starts where the grammar's answer does
    assert response.reasoning_parts == [ReasoningPart(response.reasoning, source="openai-compatible")]
    chunks = list(served.stream("Say hi.", extra_body={"grammar": THINK}))
    assert len([c for c in chunks if c.reasoning]) > 1  # thinking deltas, as generated
    thinking = "".join(c.reasoning for c in chunks).strip()
    answer = "".join(c.content for c in chunks)
    assert (thinking, answer) == (response.reasoning, response.content)  # greedy: the same tokens
    assert chunks[-1].reasoning_parts[0].text == thinking


def test_response_model_validates_the_answer_first_try_when_the_thinking_has_braces(served: Any) -> None:
    person = served.generate(
        "Ann is 31.",
        response_model=Person,
        structured_mode="prompt",
        max_retries=0,
        extra_body={"grammar": THINK_THEN_JSON},
    )
    assert isinstance(person, Person) and person.name[0].isupper() and 10 <= person.age <= 99


def test_llama_server_parses_it_itself(reasoning_server_url: str) -> None:
    llm = create_llm("openai-compatible", model="smollm2", base_url=reasoning_server_url, **ASK)
    response = llm.generate("Say hi.", extra_body={"grammar": THINK})
    assert response.raw["choices"][0]["message"]["reasoning_content"]  # the server's, not our tag split


def test_reasoning_false_switches_the_templates_thinking_off(reasoning_server_url: str) -> None:
    """llama-server passes ``chat_template_kwargs.enable_thinking`` to the template, which then
    closes an empty thinking block in the prompt (as Qwen3's does): more prompt tokens."""
    llm = create_llm(
        "openai-compatible", model="smollm2", base_url=reasoning_server_url, temperature=0, max_tokens=2
    )
    on = llm.generate("Say hi.").usage
    off = llm.generate("Say hi.", reasoning=False).usage
    assert on is not None and off is not None and off.input_tokens > on.input_tokens


def test_a_tool_turns_thinking_sent_back_is_taken_by_both_servers(served: Any) -> None:
    history = [
        Message("user", "Weather in Paris?"),
        Message(
            "assistant",
            "",
            tool_calls=[ToolCall("c1", "weather", {"city": "Paris"})],
            reasoning=[ReasoningPart("I should look it up", source="openai-compatible")],
        ),
        Message("tool", "sunny", tool_call_id="c1", name="weather"),
    ]
    assert served.generate(messages=history, max_tokens=4).finish_reason in ("stop", "length")


# -- Ollama (the test server, the real model answering) -------------------------------------------


def test_ollama_think_gives_the_thinking_field_streamed_or_not(ollama_test_server: OllamaServer) -> None:
    llm = create_llm(
        "ollama", model="qwen3:0.6b", base_url=ollama_test_server.url, temperature=0, max_tokens=6
    )
    expected = thinking_of([{"role": "user", "content": "Say hi."}])
    response = llm.generate("Say hi.", reasoning=True)
    assert ollama_test_server.requests[-1]["body"]["think"] is True
    assert (response.reasoning, response.reasoning_parts[0].source) == (expected, "ollama")
    assert response.content and "{" not in response.content
    chunks = list(llm.stream("Say hi.", reasoning_effort="high"))
    assert ollama_test_server.requests[-1]["body"]["think"] == "high"
    assert len([c for c in chunks if c.reasoning]) > 1
    assert "".join(c.reasoning for c in chunks) == expected
    assert "".join(c.content for c in chunks) == response.content


def test_ollama_tags_without_think_are_split_and_think_false_has_none(
    ollama_test_server: OllamaServer,
) -> None:
    llm = create_llm(
        "ollama", model="qwen3:0.6b", base_url=ollama_test_server.url, temperature=0, max_tokens=6
    )
    expected = thinking_of([{"role": "user", "content": "Say hi."}])
    tagged = llm.generate("Say hi.")
    assert tagged.reasoning == expected and "<think>" not in tagged.content
    chunks = list(llm.stream("Say hi."))
    assert "".join(c.reasoning for c in chunks) == expected
    assert "".join(c.content for c in chunks) == tagged.content
    plain = llm.generate("Say hi.", reasoning=False)
    assert plain.reasoning is None and plain.content == tagged.content


def test_ollama_response_model_ignores_braces_in_the_thinking(ollama_test_server: OllamaServer) -> None:
    llm = create_llm("ollama", model="qwen3:0.6b", base_url=ollama_test_server.url, temperature=0)
    before = len(ollama_test_server.requests)
    person = llm.generate("Ann is 31.", response_model=Person, reasoning=True, max_tokens=40)
    assert isinstance(person, Person)
    assert len(ollama_test_server.requests) == before + 1  # first try


def test_ollama_think_to_a_model_that_cannot_is_its_400(ollama_test_server: OllamaServer) -> None:
    from abstractcore import BadRequestError

    llm = create_llm("ollama", model="smollm2:135m", base_url=ollama_test_server.url, max_tokens=2)
    with pytest.raises(BadRequestError, match="does not support thinking"):
        llm.generate("hi", reasoning=True)
