"""A forced tool choice answered with prose where no grammar can constrain the call is a typed
error, never the prose returned as the answer.

No real component here lacks a grammar (both llama.cpp servers, Ollama and the in-process
engines constrain a call; OpenAI and Anthropic force it natively), so the provider is the
smallest custom one a user can write on the public base class: a model that always answers
prose, with tools and structured output only through the prompt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from abstractcore import ToolCallError
from abstractcore.core.capabilities import Capabilities
from abstractcore.core.types import GenerateResponse, StreamChunk
from abstractcore.providers.base import AsyncProvider, Request


class ProseOnly(AsyncProvider):
    """A model without tools or grammar that talks about the weather whatever it is asked."""

    name = "prose-only"
    default_model = "talker"
    capabilities = Capabilities(tools=False)

    async def _complete(self, request: Request) -> GenerateResponse:
        return GenerateResponse(content="It is sunny.", finish_reason="stop", model=self.model)

    async def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        yield StreamChunk(content="It is sunny.")
        yield StreamChunk(finish_reason="stop")


def get_weather(city: str) -> str:
    """Weather in a city."""
    return "sunny"


@pytest.mark.parametrize("choice", ["required", "get_weather"])
@pytest.mark.anyio
async def test_prose_to_a_forced_choice_without_a_grammar_is_a_tool_call_error(choice: str) -> None:
    llm = ProseOnly()
    with pytest.raises(ToolCallError, match="no grammar to constrain the call") as error:
        await llm.agenerate("Weather?", tools=[get_weather], tool_choice=choice)
    assert error.value.raw == "It is sunny."
    with pytest.raises(ToolCallError, match="answered without a tool call"):
        _ = [chunk async for chunk in llm.astream("Weather?", tools=[get_weather], tool_choice=choice)]
    r = await llm.agenerate("Weather?", tools=[get_weather], tool_choice="auto")
    assert r.content == "It is sunny." and r.tool_strategy == "prompted"  # "auto" may answer prose
