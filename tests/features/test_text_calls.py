"""Tool calls written as text (Hermes, Mistral, Llama 3.1, bare JSON), whole and streamed."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from abstractcore.features.tools.text_calls import TextCallStream, parse_text_calls

CALL = {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}
OTHER = {"name": "get_time", "arguments": {"city": "Tokyo"}}


def test_hermes_calls_between_prose() -> None:
    text = (
        f"Let me check.<tool_call>{json.dumps(CALL)}</tool_call>\n<tool_call>{json.dumps(OTHER)}</tool_call>"
    )
    prose, calls = parse_text_calls(text)
    assert prose.strip() == "Let me check."
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", CALL["arguments"]),
        ("get_time", {"city": "Tokyo"}),
    ]
    assert [c.id for c in calls] == ["call_0", "call_1"]


def test_mistral_list() -> None:
    prose, calls = parse_text_calls(f"[TOOL_CALLS] {json.dumps([CALL, OTHER])}")
    assert prose.strip() == "" and [c.name for c in calls] == ["get_weather", "get_time"]


def test_llama_python_tag_and_parameters() -> None:
    text = '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}<|eom_id|>'
    prose, calls = parse_text_calls(text)
    assert prose == "" and calls[0].arguments == {"city": "Paris"}


def test_a_bare_json_call_only_when_it_is_the_whole_answer() -> None:
    _, calls = parse_text_calls(json.dumps(CALL))
    assert [c.name for c in calls] == ["get_weather"]
    prose, calls = parse_text_calls(f"The JSON is {json.dumps(CALL)}")
    assert calls == [] and "get_weather" in prose
    prose, calls = parse_text_calls('{"answer": 42}')
    assert calls == [] and prose == '{"answer": 42}'


def test_plain_prose_passes_through() -> None:
    assert parse_text_calls("Paris is sunny.") == ("Paris is sunny.", [])


def _render(kind: str, prefix: str, calls: list[dict[str, Any]]) -> str:
    if kind == "hermes":
        return prefix + "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls)
    if kind == "mistral":
        return prefix + "[TOOL_CALLS] " + json.dumps(calls)
    if kind == "llama":
        return prefix + "<|python_tag|>" + json.dumps(calls[0])
    return json.dumps(calls[0])  # bare


prose_text = st.text(
    alphabet=st.characters(blacklist_characters="<[{", blacklist_categories=("Cs",)), max_size=30
)
arguments = st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=5), max_size=3)
calls_strategy = st.lists(
    st.builds(
        lambda n, a: {"name": n, "arguments": a}, st.sampled_from(["f", "get_weather", "lookup"]), arguments
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=250, deadline=None)
@given(
    st.sampled_from(["hermes", "mistral", "llama", "bare"]),
    prose_text,
    calls_strategy,
    st.lists(st.integers(min_value=0), max_size=10),
)
def test_any_chunking_parses_to_the_same_calls_and_prose(
    kind: str, prefix: str, calls: list[dict[str, Any]], cuts: list[int]
) -> None:
    if kind in ("llama", "bare"):
        calls = calls[:1]
    if kind == "bare":
        prefix = ""
    text = _render(kind, prefix, calls)
    whole_prose, whole_calls = parse_text_calls(text)
    assert [(c.name, c.arguments) for c in whole_calls] == [(c["name"], c["arguments"]) for c in calls]
    assert whole_prose.strip() == prefix.strip()
    positions = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *positions], [*positions, len(text)])]
    stream = TextCallStream()
    shown = "".join(stream.feed(p) for p in pieces) + stream.finish()
    assert shown == whole_prose
    assert [(c.name, c.arguments) for c in stream.calls] == [(c.name, c.arguments) for c in whole_calls]
    assert "<tool_call" not in shown and "[TOOL_CALLS" not in shown


def test_prose_before_a_call_streams_before_the_call_completes() -> None:
    stream = TextCallStream()
    assert stream.feed("Checking the weather") == "Checking the weather"
    assert stream.feed(" now.<tool_") == " now."  # a possible marker is held back
    assert stream.feed('call>{"name": "f", "argu') == ""
    assert stream.take() == []
    stream.feed('ments": {}}</tool_call>')
    assert [c.name for c in stream.take()] == ["f"]
