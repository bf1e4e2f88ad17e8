"""Usage in the streams of ``abstractcore serve``, read by the official SDKs: taken from the back
end where it reports it (the model in process, llama.cpp's C++ server), counted where it does
not (llama-cpp-python's server), and always the figures the same back end gives the same
request unstreamed: the prompt tokens exactly, the completion tokens within one. Anthropic's
``message_start`` carries the input tokens, ``message_delta`` both counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from abstractcore import create_llm
from tests.server.support import (
    MODEL,
    RunningServer,
    anthropic_client,
    openai_client,
    prompt_tokens,
    running_server,
)

pytestmark = pytest.mark.slow

SYSTEM = "You are a weather assistant."
#: (question, max_tokens): an answer cut by max_tokens, one the model ends, and one whose
#: characters span several tokens each.
ASKED = [
    ("What is the weather in Paris?", 8),
    ("Say hi.", 64),
    ("\u00c9cris un po\u00e8me sur l'\u00e9t\u00e9 \U0001f31e avec des \u00e9mojis", 24),
]
OPENAI_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ANTHROPIC_WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def cpp_server_backed(cpp_server_url: str) -> Iterator[RunningServer]:
    """The server in front of llama.cpp's C++ server (which reports usage in streams)."""
    llm = create_llm("openai-compatible", model=MODEL, base_url=cpp_server_url, temperature=0)
    with running_server({MODEL: llm}) as server:
        yield server


_BACK_ENDS = {
    "in-process": "local_server",
    "llama-cpp-python": "llama_server_backed",
    "llama-server": "cpp_server_backed",
}


@pytest.fixture(params=list(_BACK_ENDS))
def backed(request: pytest.FixtureRequest) -> RunningServer:
    """The server in front of the model in process, and of each of llama.cpp's two HTTP servers."""
    server: RunningServer = request.getfixturevalue(_BACK_ENDS[request.param])
    return server


def _openai_messages(question: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


@pytest.mark.parametrize(("question", "max_tokens"), ASKED)
def test_an_openai_sdk_stream_ends_with_the_usage_of_the_same_request_unstreamed(
    backed: RunningServer, question: str, max_tokens: int
) -> None:
    client = openai_client(backed)
    asked: dict[str, Any] = {"model": MODEL, "messages": _openai_messages(question), "max_tokens": max_tokens}
    # llama-server reuses a cached prompt, and a prefill in other batch sizes can change a greedy
    # answer: asked once first, the plain and the streamed request see the same cache
    client.chat.completions.create(**asked)
    plain = client.chat.completions.create(**asked)
    chunks = list(
        client.chat.completions.create(**asked, stream=True, stream_options={"include_usage": True})
    )
    usage = chunks[-1].usage
    assert plain.usage is not None and usage is not None, "the usage chunk carries no usage"
    assert chunks[-1].choices == [] and all(c.usage is None for c in chunks[:-1])
    assert usage.prompt_tokens == plain.usage.prompt_tokens
    assert abs(usage.completion_tokens - plain.usage.completion_tokens) <= 1, (usage, plain.usage)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_an_openai_sdk_stream_of_a_forced_tool_call_has_its_usage(backed: RunningServer) -> None:
    client = openai_client(backed)
    asked: dict[str, Any] = {
        "model": MODEL,
        "messages": _openai_messages("What is the weather in Paris?"),
        "max_tokens": 40,
        "tools": [OPENAI_WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    # llama-server reuses a cached prompt, and a prefill in other batch sizes can change a greedy
    # answer: asked once first, the plain and the streamed request see the same cache
    client.chat.completions.create(**asked)
    plain = client.chat.completions.create(**asked)
    chunks = list(
        client.chat.completions.create(**asked, stream=True, stream_options={"include_usage": True})
    )
    usage = chunks[-1].usage
    assert plain.usage is not None and usage is not None
    assert usage.prompt_tokens == plain.usage.prompt_tokens
    assert abs(usage.completion_tokens - plain.usage.completion_tokens) <= 1, (usage, plain.usage)


def _anthropic_stream(server: RunningServer, **asked: Any) -> tuple[Any, Any, Any, Any]:
    """(the message unstreamed, message_start's usage, message_delta's usage, the streamed message)."""
    client = anthropic_client(server)
    client.messages.create(model=MODEL, **asked)  # the same prompt cache for both (see above)
    plain = client.messages.create(model=MODEL, **asked)
    with client.messages.stream(model=MODEL, **asked) as stream:
        events = list(stream)
        final = stream.get_final_message()
    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    return plain, start.message.usage, delta.usage, final


@pytest.mark.parametrize(("question", "max_tokens"), ASKED)
def test_an_anthropic_sdk_stream_says_the_input_tokens_first_and_the_output_tokens_last(
    backed: RunningServer, question: str, max_tokens: int
) -> None:
    plain, start, delta, final = _anthropic_stream(
        backed, system=SYSTEM, messages=[{"role": "user", "content": question}], max_tokens=max_tokens
    )
    assert prompt_tokens(plain.usage) > 5
    assert prompt_tokens(start) == prompt_tokens(plain.usage)  # known before the first token
    assert prompt_tokens(delta) == prompt_tokens(plain.usage)
    assert abs(delta.output_tokens - plain.usage.output_tokens) <= 1, (delta, plain.usage)
    assert delta.output_tokens > 0
    assert (final.usage.input_tokens, final.usage.output_tokens) == (delta.input_tokens, delta.output_tokens)


def test_an_anthropic_sdk_stream_of_a_forced_tool_call_counts_the_tools_in_the_prompt(
    backed: RunningServer,
) -> None:
    plain, start, delta, _ = _anthropic_stream(
        backed,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[ANTHROPIC_WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        max_tokens=40,
    )
    assert prompt_tokens(start) == prompt_tokens(delta) == prompt_tokens(plain.usage)
    assert abs(delta.output_tokens - plain.usage.output_tokens) <= 1, (delta, plain.usage)
