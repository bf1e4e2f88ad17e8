"""A two-turn tool loop through ``arun`` is one ``invoke_agent`` trace: the first turn's ``chat``
span, the tool's ``execute_tool`` span, the second turn's ``chat`` span, in that order (a local
aiohttp server on 127.0.0.1 asks for the tool, then answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from abstractcore import create_llm
from tests.telemetry.conftest import Traced

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def _answer(turn: int, model: str) -> dict[str, Any]:
    if turn == 0:
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    else:
        message, finish = {"role": "assistant", "content": "It is sunny in Paris."}, "stop"
    return {
        "id": f"chatcmpl-{turn}",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


@pytest.fixture
async def tool_server() -> AsyncIterator[str]:
    turns: list[int] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        turns.append(len(turns))
        return web.json_response(_answer(turns[-1], body["model"]))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def test_a_tool_loop_is_an_agent_span_over_its_turns_and_tool_in_order(
    tool_server: str, traced: Traced
) -> None:
    llm = create_llm("openai", model="gpt-test", base_url=tool_server, api_key="sk-test")
    try:
        result = await llm.arun("Weather in Paris?", tools=[get_weather])
    finally:
        await llm.aclose()
    assert result.content == "It is sunny in Paris."
    agent = traced.named("invoke_agent")
    children = sorted(
        (s for s in traced.spans() if s.parent is not None and s.parent.span_id == agent.context.span_id),
        key=lambda s: s.start_time or 0,
    )
    assert [s.name for s in children] == ["chat gpt-test", "execute_tool get_weather", "chat gpt-test"]
    first, tool, second = children
    assert all(s.context.trace_id == agent.context.trace_id for s in children)
    assert dict(first.attributes or {})["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert dict(second.attributes or {})["gen_ai.response.finish_reasons"] == ("stop",)
    attributes = dict(tool.attributes or {})
    assert attributes["gen_ai.tool.name"] == "get_weather"
    assert attributes["gen_ai.tool.call.id"] == "call_1"
    assert attributes["gen_ai.tool.description"] == "The weather in a city."
    assert "gen_ai.tool.call.arguments" not in attributes  # content not captured
    assert (first.end_time or 0) <= (tool.start_time or 0) <= (tool.end_time or 0) <= (second.start_time or 0)
