"""``run`` with an MCP server's tools over an HTTP provider (llama.cpp's C++ server, SmolLM2:
the prompted path with the forced call), the MCP server over streamable HTTP; the approval hook
sees MCP calls like any other."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from abstractcore import MCPTools, RunResult, ToolCall, create_llm
from tests.support.mcp_servers.running import http_mcp_server

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with http_mcp_server() as (url, _):
        yield url


async def ask_capital(base_url: str, mcp_url: str, question: str, **options: Any) -> RunResult:
    """``arun`` over llama-server with the MCP server's ``capital`` tool, its call forced."""
    llm = create_llm("openai-compatible", model="smollm2", base_url=base_url, temperature=0)
    async with MCPTools.http(mcp_url, filter=["capital"]) as geography:
        return await llm.arun(
            question, tools=[geography], tool_choice="capital", max_turns=2, max_tokens=40, **options
        )


async def test_run_over_llama_server_calls_the_mcp_tool_and_the_model_reads_its_answer(
    cpp_server_url: str, mcp_url: str
) -> None:
    result = await ask_capital(cpp_server_url, mcp_url, "What is the capital of France?")
    [execution] = [e for step in result.steps for e in step.executions][:1]
    assert execution.call.name == "capital" and execution.ok
    assert isinstance(execution.call.arguments.get("country"), str)  # valid by the forced call's grammar
    # what the server answered (a str tool's structured content is {"result": ...} in mcp 2.x)
    assert execution.result in ({"result": "Paris"}, {"result": "Rome"}, {"result": "Atlantis"})
    tool_turns = [m for m in result.messages if m.role == "tool"]
    assert tool_turns and execution.result["result"] in tool_turns[0].text  # it went back to the model
    assert result.response.content.strip()


async def test_the_approval_hook_sees_and_can_refuse_an_mcp_call(cpp_server_url: str, mcp_url: str) -> None:
    seen: list[ToolCall] = []

    def approve(call: ToolCall) -> bool:
        seen.append(call)
        return False

    result = await ask_capital(cpp_server_url, mcp_url, "Capital of Italy?", approve=approve)
    assert [c.name for c in seen] == ["capital"]
    [execution] = [e for step in result.steps for e in step.executions][:1]
    assert not execution.ok and execution.error
