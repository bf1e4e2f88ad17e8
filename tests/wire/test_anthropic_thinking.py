"""Claude's thinking blocks, read from a reply and from any cut of a stream, come out the same,
and go back in the next request exactly as they came."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from abstractcore.core.types import Message, ToolCall
from abstractcore.wire import anthropic_messages
from tests.wire.strategies import split, texts

blocks = st.lists(
    st.one_of(
        st.builds(
            lambda t, s: {"type": "thinking", "thinking": t, "signature": s}, texts, texts.filter(bool)
        ),
        st.builds(lambda d: {"type": "redacted_thinking", "data": d}, texts.filter(bool)),
    ),
    min_size=1,
    max_size=3,
)


def events(thinking: list[dict[str, Any]], answer: str, cuts: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"type": "message_start", "message": {"usage": {"input_tokens": 3}}}]
    for i, block in enumerate(thinking):
        start = block if block["type"] == "redacted_thinking" else {**block, "thinking": "", "signature": ""}
        out.append({"type": "content_block_start", "index": i, "content_block": start})
        if block["type"] == "thinking":
            for piece in cuts(block["thinking"]):
                delta = {"type": "thinking_delta", "thinking": piece}
                out.append({"type": "content_block_delta", "index": i, "delta": delta})
            for piece in cuts(block["signature"]):
                delta = {"type": "signature_delta", "signature": piece}
                out.append({"type": "content_block_delta", "index": i, "delta": delta})
        out.append({"type": "content_block_stop", "index": i})
    i = len(thinking)
    out.append({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})
    out.append({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": answer}})
    out.append({"type": "content_block_stop", "index": i})
    out.append({"type": "message_stop"})
    return out


@given(blocks, texts, st.data())
def test_a_stream_cut_anywhere_reads_as_the_reply_and_goes_back_unchanged(
    thinking: list[dict[str, Any]], answer: str, data: st.DataObject
) -> None:
    reply = anthropic_messages.message_to_response(
        {"content": [*thinking, {"type": "text", "text": answer}]}, provider="anthropic", model="m"
    )
    assert reply.content == answer
    state = anthropic_messages.MessagesStream("m")
    chunks = [
        c
        for e in events(
            thinking, answer, lambda t: split(t, data.draw(st.lists(st.integers(0, 60), max_size=4)))
        )
        for c in state.on_event(e)
    ]
    chunks.append(state.last_chunk())
    assert "".join(c.reasoning for c in chunks) == (reply.reasoning or "")
    assert "".join(c.content for c in chunks) == answer
    assert chunks[-1].reasoning_parts == reply.reasoning_parts
    turn = Message("assistant", answer, tool_calls=[ToolCall("t1", "f", {})], reasoning=reply.reasoning_parts)
    body = anthropic_messages.request_body(
        "m", [Message("user", "q"), turn], {"thinking_budget": 1024, "max_tokens": 2000}
    )
    sent = body["messages"][1]["content"]
    assert sent[: len(thinking)] == thinking  # first, byte for byte
    off = anthropic_messages.request_body("m", [Message("user", "q"), turn], {"max_tokens": 2000})
    assert "thinking" not in off and all(
        b["type"] not in ("thinking", "redacted_thinking") for b in off["messages"][1]["content"]
    )
