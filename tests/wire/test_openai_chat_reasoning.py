"""Chat Completions and Ollama, client side: thinking read from every shape servers send it in,
the one control written as each family takes it, and a tool-call turn's thinking sent back."""

from __future__ import annotations

from typing import Any

import pytest

from abstractcore import ConfigurationError
from abstractcore.core.types import Message, ReasoningPart, ToolCall
from abstractcore.wire.ollama_chat import LineReader, chat_to_response, think
from abstractcore.wire.ollama_chat import request_body as ollama_body
from abstractcore.wire.openai_chat import ChunkReader, reply_to_response, request_body
from abstractcore.wire.openai_chat.reasoning import reasoning_controls


def _reply(message: dict[str, Any], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"choices": [{"message": message, "finish_reason": "stop"}], "usage": usage, "model": "m"}


@pytest.mark.parametrize(
    "message",
    [
        {"content": "Four.", "reasoning_content": "2+2 {is} 4"},  # DeepSeek, vLLM, llama-server
        {"content": "Four.", "reasoning": "2+2 {is} 4"},  # OpenRouter, LM Studio
        {"content": "<think>2+2 {is} 4</think>\n\nFour."},  # a server without a reasoning parser
        {"content": "2+2 {is} 4</think>\nFour."},  # the template opened the block
    ],
)
def test_a_reply_keeps_its_thinking_apart_from_the_answer(message: dict[str, Any]) -> None:
    response = reply_to_response(_reply({"role": "assistant", **message}), provider="vllm", model="m")
    assert (response.reasoning, response.content) == ("2+2 {is} 4", "Four.")
    assert response.reasoning_parts == [ReasoningPart("2+2 {is} 4", source="vllm")]


def test_a_reply_without_thinking_is_left_as_it_is() -> None:
    response = reply_to_response(_reply({"content": "\n  Hi <think> there"}), provider="p", model="m")
    assert (response.reasoning, response.content, response.reasoning_parts) == (
        None,
        "\n  Hi <think> there",
        [],
    )


def test_tags_are_the_answer_where_the_provider_says_models_write_none() -> None:
    response = reply_to_response(
        _reply({"content": "<think>x</think>y"}), provider="openai", model="m", think_tags=False
    )
    assert (response.reasoning, response.content) == (None, "<think>x</think>y")


def test_reasoning_tokens_come_from_completion_tokens_details() -> None:
    usage = {
        "prompt_tokens": 5,
        "completion_tokens": 30,
        "completion_tokens_details": {"reasoning_tokens": 22},
    }
    response = reply_to_response(_reply({"content": "a"}, usage), provider="openai", model="m")
    assert response.usage is not None
    assert (response.usage.output_tokens, response.usage.reasoning_tokens, response.usage.total_tokens) == (
        30,
        22,
        35,
    )


def _events(deltas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"choices": [{"delta": d, "finish_reason": None}]} for d in deltas] + [
        {"choices": [{"delta": {}, "finish_reason": "stop"}]},
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 1,
                "completion_tokens": 9,
                "completion_tokens_details": {"reasoning_tokens": 6},
            },
        },
    ]


def _read(deltas: list[dict[str, Any]]) -> tuple[list[str], str, str, Any]:
    reader = ChunkReader("m", provider="openai-compatible")
    chunks = [c for event in _events(deltas) for c in reader.on_event(event)]
    chunks.append(reader.last_chunk(reader.usage))
    thinking = [c.reasoning for c in chunks if c.reasoning]
    return thinking, "".join(c.reasoning for c in chunks), "".join(c.content for c in chunks), chunks[-1]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_a_stream_gives_thinking_deltas_from_the_field_as_they_arrive(field: str) -> None:
    deltas = [
        {"role": "assistant", "content": None},
        {field: "let "},
        {field: "me {see}"},
        {"content": "Four"},
    ]
    pieces, thinking, answer, last = _read(deltas)
    assert pieces == ["let ", "me {see}"]
    assert (thinking, answer) == ("let me {see}", "Four")
    assert last.reasoning_parts == [ReasoningPart("let me {see}", source="openai-compatible")]
    assert last.usage.reasoning_tokens == 6


def test_a_stream_splits_think_tags_cut_across_deltas() -> None:
    text = "<think>let me {see}</think>\n\nFour"
    pieces, thinking, answer, last = _read([{"content": text[i : i + 2]} for i in range(0, len(text), 2)])
    assert len(pieces) > 1  # deltas, not one block at the end
    assert (thinking, answer) == ("let me {see}", "Four")
    assert last.reasoning_parts[0].text == "let me {see}"


def test_a_stream_without_thinking_keeps_its_leading_whitespace() -> None:
    assert _read([{"content": "\n"}, {"content": " Hi"}])[1:3] == ("", "\n Hi")


def _turn() -> list[Message]:
    call = ToolCall("c1", "add", {"a": 1})
    parts = [
        ReasoningPart("I should add", source="vllm"),
        ReasoningPart("other", source="anthropic", signature="s"),
    ]
    return [
        Message("user", "Add"),
        Message("assistant", "", tool_calls=[call], reasoning=parts),
        Message("tool", "1", tool_call_id="c1"),
        Message("assistant", "Done", reasoning=[ReasoningPart("plain", source="vllm")]),
    ]


def test_a_tool_call_turns_own_thinking_goes_back_as_reasoning_content_and_nothing_else() -> None:
    sent = request_body("m", _turn(), {}, reasoning_source="vllm")["messages"]
    assert sent[1]["reasoning_content"] == "I should add"  # the other provider's part is dropped
    assert "reasoning_content" not in sent[3]  # DeepSeek ignores it on plain turns: not sent
    assert all("reasoning_content" not in m for m in request_body("m", _turn(), {})["messages"])


@pytest.mark.parametrize(
    ("dialect", "params", "body"),
    [
        ("openai", {"reasoning_effort": "high"}, {"reasoning_effort": "high"}),
        ("openai", {"reasoning": False}, {"reasoning_effort": "none"}),
        ("openai", {"reasoning": True}, {}),
        ("openrouter", {"reasoning_effort": "low"}, {"reasoning": {"effort": "low"}}),
        ("openrouter", {"thinking_budget": 2000}, {"reasoning": {"max_tokens": 2000}}),
        ("openrouter", {"reasoning": False}, {"reasoning": {"enabled": False}}),
        ("openrouter", {"reasoning": True}, {"reasoning": {"enabled": True}}),
        ("server", {"reasoning_effort": "medium"}, {"reasoning_effort": "medium"}),
        ("server", {"reasoning": False}, {"chat_template_kwargs": {"enable_thinking": False}}),
        ("server", {"reasoning_effort": "none"}, {"chat_template_kwargs": {"enable_thinking": False}}),
        (
            "server",
            {"reasoning": True, "reasoning_effort": "low"},
            {"chat_template_kwargs": {"enable_thinking": True}, "reasoning_effort": "low"},
        ),
        ("lmstudio", {"reasoning_effort": "high"}, {"reasoning_effort": "high"}),
        ("server", {}, {}),
    ],
)
def test_the_one_control_is_written_as_each_family_takes_it(
    dialect: Any, params: dict[str, Any], body: dict[str, Any]
) -> None:
    assert reasoning_controls(params, dialect, "p") == body


@pytest.mark.parametrize(
    ("dialect", "params", "says"),
    [
        ("openai", {"thinking_budget": 1000}, "reasoning_effort='low'"),
        ("openai", {"reasoning_effort": "extreme"}, "'minimal'"),
        ("openai", {"reasoning": False, "reasoning_effort": "high"}, "pass one of them"),
        ("openrouter", {"thinking_budget": 100, "reasoning_effort": "low"}, "not both"),
        ("server", {"thinking_budget": 100}, "--reasoning-budget"),
        ("lmstudio", {"reasoning": False}, "reasoning_effort='low'"),
    ],
)
def test_a_value_the_family_does_not_take_is_refused_saying_what_to_pass(
    dialect: Any, params: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigurationError, match=says.replace("(", r"\(")):
        reasoning_controls(params, dialect, "p")


# -- Ollama ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "value"),
    [
        ({"reasoning": True}, True),
        ({"reasoning": False}, False),
        ({"reasoning_effort": "high"}, "high"),
        ({"reasoning_effort": "none"}, False),
        ({}, None),
    ],
)
def test_ollama_think_is_the_control(params: dict[str, Any], value: Any) -> None:
    assert think(params) == value
    assert ollama_body("m", [Message("user", "hi")], params).get("think") == value


@pytest.mark.parametrize(
    ("params", "says"),
    [({"thinking_budget": 10}, "no thinking token budget"), ({"reasoning_effort": "minimal"}, "'low'")],
)
def test_ollama_refuses_what_think_cannot_say(params: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        think(params)


def test_ollama_thinking_field_and_tags_are_thinking() -> None:
    done = {"done": True, "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 4}
    field = chat_to_response(
        {"message": {"content": "A", "thinking": "t {1}"}, **done}, provider="ollama", model="m"
    )
    tags = chat_to_response(
        {"message": {"content": "<think>t {1}</think>A"}, **done}, provider="ollama", model="m"
    )
    for response in (field, tags):
        assert (response.reasoning, response.content) == ("t {1}", "A")
        assert response.reasoning_parts == [ReasoningPart("t {1}", source="ollama")]


def test_ollama_stream_lines_give_thinking_deltas_and_the_whole_on_the_last_chunk() -> None:
    reader = LineReader("m")
    lines = [{"message": {"content": "", "thinking": p}} for p in ("a ", "{b}")] + [
        {"message": {"content": "A"}}
    ]
    chunks = [c for line in lines if (c := reader.on_line(line)) is not None]
    last = reader.last_chunk({"done": True, "done_reason": "stop", "eval_count": 3})
    assert [c.reasoning for c in chunks] == ["a ", "{b}", ""] and chunks[-1].content == "A"
    assert last.reasoning_parts == [ReasoningPart("a {b}", source="ollama")]


def test_ollama_sends_its_own_thinking_back_on_the_assistant_turn() -> None:
    turn = Message(
        "assistant",
        "A",
        reasoning=[ReasoningPart("mine", source="ollama"), ReasoningPart("x", source="vllm")],
    )
    sent = ollama_body("m", [Message("user", "q"), turn, Message("user", "again")], {})["messages"]
    assert sent[1]["thinking"] == "mine" and "thinking" not in sent[0]
