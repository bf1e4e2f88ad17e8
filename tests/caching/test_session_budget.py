"""``Session(max_history_tokens=N)`` counted by the back end: the prompt sent fits N as the back end
counts it (its ``input_tokens``), the oldest turns dropped first, the system prompt kept, a tool
call never parted from its result; on the model in process and llama-cpp-python's server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from abstractcore import LLM, Message, ToolCall, create_llm
from tests.server.support import MODEL

pytestmark = pytest.mark.slow

SYSTEM = "You are terse. Answer in a few words."
BUDGET = 160


@pytest.fixture(scope="module")
def in_process(gguf_path: Path) -> Iterator[LLM]:
    llm = create_llm("huggingface", model=str(gguf_path), temperature=0)
    yield llm
    llm.unload()


def _trims(llm: LLM) -> None:
    chat = llm.session(system_prompt=SYSTEM, max_history_tokens=BUDGET, max_tokens=8)
    for i in range(5):
        answer = chat.send(f"Turn {i}: tell me about the number {i} " + "please " * 10)
        assert answer.usage.input_tokens <= BUDGET
    assert len(chat.messages) == 10  # the session keeps everything; only what is sent is trimmed
    full = llm.count_tokens(messages=chat.messages[:-1], system_prompt=SYSTEM)
    assert full > BUDGET
    # what was sent: the newest turns, starting at a user turn, with the system prompt
    sent = [
        llm.count_tokens(messages=chat.messages[start:-1], system_prompt=SYSTEM) for start in range(0, 9, 2)
    ]
    assert answer.usage.input_tokens in sent
    first_kept = sent.index(answer.usage.input_tokens)
    assert first_kept > 0 and sent[first_kept - 1] > BUDGET  # the oldest turns went, no more


def test_in_process_the_budget_is_the_counted_prompt(in_process: LLM) -> None:
    _trims(in_process)


def test_llama_cpp_python_server_the_budget_is_the_counted_prompt(llama_base_url: str) -> None:
    llm = create_llm("openai-compatible", model=MODEL, base_url=llama_base_url, temperature=0)
    _trims(llm)


def test_a_tool_call_is_dropped_with_its_result(in_process: LLM) -> None:
    call = ToolCall(id="call_1", name="lookup", arguments={"q": "the weather " * 10})
    exchange = [
        Message("user", "What is the weather? " + "now " * 20),
        Message("assistant", "", tool_calls=[call]),
        Message("tool", "sunny " * 20, tool_call_id="call_1"),
        Message("assistant", "It is sunny."),
        Message("user", "And tomorrow?"),
        Message("assistant", "Rain."),
    ]
    newest = exchange[4:]
    budget = in_process.count_tokens(messages=[*newest, Message("user", "Thanks.")], system_prompt=SYSTEM) + 5
    chat = in_process.session(system_prompt=SYSTEM, max_history_tokens=budget, max_tokens=4)
    chat.messages = list(exchange)
    answer = chat.send("Thanks.")
    expected = in_process.count_tokens(messages=[*newest, Message("user", "Thanks.")], system_prompt=SYSTEM)
    assert answer.usage.input_tokens == expected  # the whole tool exchange went, not half of it
