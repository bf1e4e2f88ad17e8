"""The thinking-tag splitter: thinking apart from the answer, however the text is cut."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abstractcore.features.reasoning import ThinkingSplitter, split_thinking


def _stream(pieces: list[str], *, opened: bool = False) -> tuple[str, str]:
    splitter = ThinkingSplitter(opened=opened)
    thinking, answer = [], []
    for piece in pieces:
        t, a = splitter.feed(piece)
        thinking.append(t)
        answer.append(a)
    t, a = splitter.close()
    return "".join(thinking) + t, "".join(answer) + a


@pytest.mark.parametrize(
    ("text", "opened", "expected"),
    [
        ("<think>2+2 is 4</think>\n\nThe answer is 4.", False, ("2+2 is 4", "The answer is 4.")),
        ("  \n<think>\nhmm\n</think>Four", False, ("hmm", "Four")),
        ("<thinking>a</thinking>b", False, ("a", "b")),
        ("<|begin_of_thought|>x<|end_of_thought|>y", False, ("x", "y")),
        ("Just an answer.", False, (None, "Just an answer.")),
        ("An answer that says <think> later.", False, (None, "An answer that says <think> later.")),
        # the template opened the block: only the closing marker is in the reply
        ("the model thinks</think>\nthe answer", False, ("the model thinks", "the answer")),
        ("the model thinks</think>the answer", True, ("the model thinks", "the answer")),
        # cut by max_tokens inside the thinking: all of it is thinking
        ("<think>still thinking about", False, ("still thinking about", "")),
        ("", False, (None, "")),
    ],
)
def test_whole_replies_are_split(text: str, opened: bool, expected: tuple[str | None, str]) -> None:
    assert split_thinking(text, opened=opened) == expected


def test_a_marker_split_across_tokens_is_still_a_marker() -> None:
    pieces = ["<", "th", "ink", ">", '{"a"', ": 1}", "</", "thi", "nk>", "\n", '{"b": 2}']
    assert _stream(pieces) == ('{"a": 1}', '{"b": 2}')


def test_thinking_deltas_come_out_as_they_arrive_not_at_the_end() -> None:
    splitter = ThinkingSplitter()
    assert splitter.feed("<think>first ") == ("first ", "")
    assert splitter.feed("second") == ("second", "")
    assert splitter.feed(" <") == (" ", "")  # a possible marker's beginning is held back
    assert splitter.feed("/think>Answer") == ("", "Answer")
    assert splitter.feed(" goes on") == ("", " goes on")
    assert splitter.close() == ("", "")


def test_an_answer_that_only_looks_like_a_marker_at_first_is_given_back() -> None:
    assert _stream(["<th", "ings to do>"]) == ("", "<things to do>")
    assert _stream(["<"]) == ("", "<")


text_pieces = st.sampled_from(["<think>", "</think>", "<", ">", "/", "think", "a", "{", "}", " ", "\n", "é"])


@given(st.lists(text_pieces, max_size=25), st.data())
def test_any_cut_of_the_text_gives_the_same_split(parts: list[str], data: st.DataObject) -> None:
    text = "".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    whole = ThinkingSplitter()
    expected = tuple(x + y for x, y in zip(whole.feed(text), whole.close()))
    assert _stream(pieces) == expected
