"""JSON answers of ``abstractcore serve`` (OpenAI's ``response_format`` json_schema, Anthropic's
``output_config``), read by the official SDKs: the library's own structured output behind them,
so the answer is JSON under the schema on each back end (the grammar in process, json_schema on
llama-cpp-python's server, through a router per deployment), for a schema whose root is not an
object too, and streamed as text deltas as it arrives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from abstractcore import LLM, create_llm
from tests.server.support import (
    MODEL,
    RunningServer,
    anthropic_client,
    openai_client,
    prompt_tokens,
    running_server,
)

pytestmark = pytest.mark.slow

COLOURS = {"type": "string", "enum": ["red", "green", "blue"]}
NAMES = {
    "type": "array",
    "items": {"type": "string", "maxLength": 12},
    "minItems": 1,
    "maxItems": 3,
}
ASK_COLOUR = [{"role": "user", "content": "What colour is the sky on a clear day: red, green or blue?"}]
ASK_NAMES = [{"role": "user", "content": "Give the names of three fruits."}]


def _format(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def _streamed(client: Any, **asked: Any) -> tuple[list[str], list[str]]:
    """The content deltas and the finish reasons of a streamed completion."""
    chunks = list(client.chat.completions.create(**asked, stream=True))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    return deltas, finishes


@pytest.fixture(scope="module")
def routed_server(local_llm: LLM) -> Iterator[RunningServer]:
    """The server in front of a router whose one deployment is the model in process."""
    router = create_llm("router", models=[local_llm])
    with running_server({MODEL: router}) as server:
        yield server


def test_an_array_schema_gives_a_json_array_plain_and_streamed(served: RunningServer) -> None:
    client = openai_client(served)
    asked: dict[str, Any] = {
        "model": MODEL,
        "messages": ASK_NAMES,
        "response_format": _format(NAMES, "fruits"),
        "max_tokens": 80,
    }
    r = client.chat.completions.create(**asked)
    assert r.choices[0].finish_reason == "stop" and not r.choices[0].message.tool_calls
    deltas, finishes = _streamed(client, **asked)
    assert finishes == ["stop"] and len(deltas) > 1  # as it arrives, not whole at the end
    for text in (r.choices[0].message.content or "", "".join(deltas)):
        names = json.loads(text)
        assert isinstance(names, list) and 1 <= len(names) <= 3
        assert all(isinstance(n, str) and len(n) <= 12 for n in names)


def test_a_string_enum_schema_gives_one_of_its_values(served: RunningServer) -> None:
    client = openai_client(served)
    asked: dict[str, Any] = {
        "model": MODEL,
        "messages": ASK_COLOUR,
        "response_format": _format(COLOURS, "colour"),
        "max_tokens": 20,
    }
    r = client.chat.completions.create(**asked)
    assert json.loads(r.choices[0].message.content or "") in COLOURS["enum"]
    assert r.choices[0].finish_reason == "stop"
    deltas, finishes = _streamed(client, **asked)
    assert json.loads("".join(deltas)) in COLOURS["enum"] and finishes == ["stop"]


def test_a_json_answer_cut_by_max_tokens_ends_with_length(local_server: RunningServer) -> None:
    client = openai_client(local_server)
    asked: dict[str, Any] = {
        "model": MODEL,
        "messages": ASK_NAMES,
        "response_format": _format(NAMES, "fruits"),
        "max_tokens": 8,
    }
    r = client.chat.completions.create(**asked)
    text = r.choices[0].message.content or ""
    assert r.choices[0].finish_reason == "length" and text.lstrip().startswith("[")
    deltas, finishes = _streamed(client, **asked)
    assert finishes == ["length"] and "".join(deltas) == text  # the wrapper never shows


def test_an_anthropic_output_config_array_schema_plain_and_streamed(local_server: RunningServer) -> None:
    client = anthropic_client(local_server)
    asked: dict[str, Any] = {
        "model": MODEL,
        "messages": ASK_NAMES,
        "max_tokens": 80,
        "extra_body": {"output_config": {"format": {"type": "json_schema", "schema": NAMES}}},
    }
    m = client.messages.create(**asked)
    assert m.content[0].type == "text" and m.stop_reason == "end_turn"
    names = json.loads(m.content[0].text)
    assert isinstance(names, list) and 1 <= len(names) <= 3
    with client.messages.stream(**asked) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert json.loads(text) == names and final.stop_reason == "end_turn"
    assert prompt_tokens(final.usage) == prompt_tokens(m.usage)  # message_start counts the same request


def test_a_router_applies_the_schema_on_its_deployment(routed_server: RunningServer) -> None:
    client = openai_client(routed_server)
    asked: dict[str, Any] = {
        "model": MODEL,
        "messages": ASK_COLOUR,
        "response_format": _format(COLOURS, "colour"),
        "max_tokens": 20,
    }
    r = client.chat.completions.create(**asked)
    assert json.loads(r.choices[0].message.content or "") in COLOURS["enum"]
    deltas, finishes = _streamed(client, **asked)
    assert json.loads("".join(deltas)) in COLOURS["enum"] and finishes == ["stop"]
    with anthropic_client(routed_server).messages.stream(
        model=MODEL, messages=ASK_COLOUR, max_tokens=5
    ) as stream:
        start = next(e for e in stream if e.type == "message_start")
        final = stream.get_final_message()
    # the router counts the input tokens for message_start now (through its deployment)
    assert prompt_tokens(start.message.usage) == prompt_tokens(final.usage) > 5
