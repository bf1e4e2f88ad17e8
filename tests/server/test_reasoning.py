"""Thinking through ``abstractcore serve``: the official SDKs read the in-process SmolLM2's
``<think>`` block (forced by a GBNF grammar) as ``reasoning_content`` (OpenAI) and as a signed
``thinking`` block (Anthropic), whole and streamed, and the Anthropic block is accepted back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import anthropic
import pytest

from abstractcore import LLM, GenerateResponse, StreamChunk
from abstractcore.providers.base import Request
from abstractcore.providers.huggingface import HuggingFaceProvider
from tests.server.support import MODEL, RunningServer, anthropic_client, openai_client, running_server

THINKING = 'root ::= "<think>" [a-z ]{5,40} "</think>" [A-Z][a-z]{2,10}'


class _Thinker(HuggingFaceProvider):
    """SmolLM2 made to think: every request gets the grammar (the server forwards no extra_body)."""

    async def _complete(self, request: Request) -> GenerateResponse:
        return await super()._complete(replace(request, extra_body={"grammar": THINKING}))

    def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        return super()._stream(replace(request, extra_body={"grammar": THINKING}))


@pytest.fixture(scope="module")
def thinking_server(gguf_path: Path) -> Iterator[RunningServer]:
    llm = LLM(_Thinker(str(gguf_path), temperature=0, parallel=1, max_tokens=60))
    with running_server({MODEL: llm}) as server:
        yield server
    llm.unload()


@pytest.mark.slow
def test_the_openai_endpoint_returns_reasoning_content(thinking_server: RunningServer) -> None:
    client = openai_client(thinking_server)
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "A country?"}])
    message = r.choices[0].message
    thinking = message.model_extra["reasoning_content"]  # type: ignore[index]
    assert thinking and "<think>" not in thinking
    assert message.content and message.content.isalpha()
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "A country?"}], stream=True
    )
    deltas = [c.choices[0].delta for c in stream if c.choices]
    streamed = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert streamed.strip() == thinking
    assert "".join(d.content or "" for d in deltas) == message.content


@pytest.mark.slow
def test_the_anthropic_endpoint_returns_signed_thinking_and_takes_it_back(
    thinking_server: RunningServer,
) -> None:
    client = anthropic_client(thinking_server)
    ask = [{"role": "user", "content": "A country?"}]
    r = client.messages.create(model=MODEL, max_tokens=60, messages=ask)  # type: ignore[arg-type]
    thinking, text = r.content
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature.startswith("ac1.")
    assert text.type == "text" and text.text.isalpha()

    with client.messages.stream(model=MODEL, max_tokens=60, messages=ask) as stream:  # type: ignore[arg-type]
        kinds = [(e.type, getattr(getattr(e, "delta", None), "type", None)) for e in stream]
        final = stream.get_final_message()
    deltas = [d for t, d in kinds if t == "content_block_delta"]
    assert deltas.index("signature_delta") == len([d for d in deltas if d == "thinking_delta"])
    assert final.content[0].type == "thinking" and final.content[0].thinking == thinking.thinking
    assert final.content[0].signature == thinking.signature

    turns = [*ask, {"role": "assistant", "content": [b.model_dump() for b in r.content]}]
    again = client.messages.create(  # type: ignore[call-overload]
        model=MODEL, max_tokens=60, messages=[*turns, {"role": "user", "content": "Another?"}]
    )
    assert again.content[-1].type == "text"
    changed = dict(turns[1]["content"][0], thinking="something else")  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError, match="changed after this server signed it"):
        client.messages.create(  # type: ignore[call-overload]
            model=MODEL,
            max_tokens=60,
            messages=[*ask, {"role": "assistant", "content": [changed]}, {"role": "user", "content": "?"}],
        )


@pytest.mark.slow
def test_the_responses_endpoint_returns_a_reasoning_item_whole_and_streamed(
    thinking_server: RunningServer,
) -> None:
    client = openai_client(thinking_server)
    r = client.responses.create(model=MODEL, input="A country?", store=False)
    reasoning = [item for item in r.output if item.type == "reasoning"]
    assert len(reasoning) == 1 and r.output[0].type == "reasoning"  # the thinking comes first
    summary = "".join(part.text for part in reasoning[0].summary)
    assert summary and "<think>" not in summary
    assert r.output_text.isalpha()
    with client.responses.stream(model=MODEL, input="A country?", store=False) as stream:
        events = list(stream)
        final = stream.get_final_response()
    streamed = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert streamed == summary
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == r.output_text
    assert final.output_text == r.output_text
