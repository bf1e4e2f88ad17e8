"""Thinking in process: ``<think>`` blocks written by the real SmolLM2-135M GGUF (forced by a GBNF
grammar in ``extra_body``) come out as ``reasoning``, the answer alone as ``content``, whole and
streamed, on both llama.cpp engines; the thinking controls are refused where nothing would change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from abstractcore import ConfigurationError, create_llm
from abstractcore.features.local_thinking import ThinkingSplit

#: Thinking, then a capitalised one-word answer.
THINKING = 'root ::= "<think>" [a-z ]{5,40} "</think>" [A-Z][a-z]{2,10}'


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 2])
def test_a_think_block_is_reasoning_and_the_rest_the_answer(gguf_path: Path, parallel: int) -> None:
    llm = create_llm("huggingface", model=str(gguf_path), parallel=parallel, temperature=0, max_tokens=60)
    r = llm.generate("Name a country.", extra_body={"grammar": THINKING})
    assert r.reasoning and "<think>" not in r.reasoning and "</think>" not in r.reasoning
    assert r.content.isalpha() and r.content[0].isupper() and "think" not in r.content
    assert [p.text for p in r.reasoning_parts] == [r.reasoning]
    assert r.message().reasoning == r.reasoning_parts

    chunks = list(llm.stream("Name a country.", extra_body={"grammar": THINKING}))
    thinking = "".join(c.reasoning for c in chunks)
    answer = "".join(c.content for c in chunks)
    assert thinking.strip() == r.reasoning and answer == r.content  # greedy: the same reply
    assert all("<" not in c.content and "<" not in c.reasoning for c in chunks)
    first_answer = next(i for i, c in enumerate(chunks) if c.content)
    assert not any(c.reasoning for c in chunks[first_answer:])  # thinking first, then the answer
    assert [p.text for p in chunks[-1].reasoning_parts] == [r.reasoning]
    llm.unload()


@pytest.mark.slow
def test_a_reply_without_thinking_is_unchanged(gguf_path: Path) -> None:
    llm = create_llm("huggingface", model=str(gguf_path), parallel=1, temperature=0, max_tokens=12)
    r = llm.generate("Say hello.")
    assert r.reasoning is None and r.reasoning_parts == [] and r.content
    llm.unload()


class Country(BaseModel):
    name: str


@pytest.mark.slow
def test_a_grammar_and_a_response_model_cannot_both_constrain(gguf_path: Path) -> None:
    llm = create_llm("huggingface", model=str(gguf_path), parallel=1)
    with pytest.raises(ConfigurationError, match="both constrain"):
        llm.generate("Name a country.", response_model=Country, extra_body={"grammar": THINKING})
    with pytest.raises(ConfigurationError, match="GBNF grammar"):
        llm.generate("Hi", extra_body={"grammar": 3})


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 2])
def test_a_template_without_a_thinking_switch_refuses_the_control(gguf_path: Path, parallel: int) -> None:
    llm = create_llm("huggingface", model=str(gguf_path), parallel=parallel, max_tokens=4)
    llm.generate("Hi")  # loaded: the batch engine then skips the loading path
    for control in ({"reasoning": True}, {"reasoning_effort": "none"}):
        with pytest.raises(ConfigurationError, match="no thinking switch"):
            llm.generate("Hi", **control)  # type: ignore[arg-type]
    llm.unload()


def test_a_thinking_budget_is_refused_in_process_before_loading(gguf_path: Path) -> None:
    llm = create_llm("huggingface", model=str(gguf_path))
    with pytest.raises(ConfigurationError, match="thinking_budget has no meaning in process"):
        llm.generate("Hi", thinking_budget=512)
    with pytest.raises(ConfigurationError, match="contradicts"):
        llm.generate("Hi", reasoning=False, reasoning_effort="high")
    assert not llm.loaded


def test_a_prompt_that_opens_the_block_makes_the_reply_start_as_thinking() -> None:
    split = ThinkingSplit("huggingface")
    split.see_prompt("<|im_start|>assistant\n<think>\n")
    assert split.opened
    pieces = [split.feed(t) for t in ("plan the ", "answer</th", "ink>\n\nParis")] + [split.close()]
    assert "".join(t for t, _ in pieces) == "plan the answer"
    assert "".join(a for _, a in pieces) == "Paris"
    closed = ThinkingSplit("huggingface")
    closed.see_prompt("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # enable_thinking=False
    assert not closed.opened and closed.whole("Paris") == (None, "Paris")
