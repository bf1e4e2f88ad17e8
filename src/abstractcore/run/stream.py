"""``astream_run``'s loop: each turn streamed, its text and reasoning deltas, each tool call and
result as a ``RunEvent``, then the ``RunResult``; the run's deadline held by one cancel scope per
await (a scope must not span a ``yield``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from abstractcore.core.types import GenerateResponse, StreamChunk, ToolCall
from abstractcore.features.request import pipeline_of
from abstractcore.run.loop import Loop
from abstractcore.run.results import Approve, RunEvent

__all__ = ["stream_run"]


async def stream_run(
    llm: Any,
    prompt: str | Sequence[Any] | None = None,
    *,
    tools: Sequence[Any] | None = None,
    messages: Sequence[Any] | None = None,
    system_prompt: str | None = None,
    tool_choice: Any = None,
    max_turns: int = 10,
    approve: Approve | None = None,
    response_model: Any = None,
    tool_timeout: float | None = None,
    run_timeout: float | None = None,
    **params: Any,
) -> AsyncIterator[RunEvent]:
    """The tool loop as it happens: text deltas, each call, each result, then the ``RunResult``."""
    import anyio

    pipeline = pipeline_of(llm)
    loop = Loop(
        tools,
        max_turns,
        prompt,
        messages,
        system_prompt,
        tool_choice,
        tool_timeout,
        run_timeout,
        response_model,
        params,
    )
    deadline = loop.deadline()
    # A cancel scope must not span a ``yield``: each await gets its own scope, all with the run's deadline.
    for _ in range(max_turns):
        response = GenerateResponse()
        texts: list[str] = []
        thinking: list[str] = []
        calls: list[ToolCall] = []
        stream = pipeline._send_stream(await loop.turn())
        try:
            while True:
                with anyio.CancelScope(deadline=deadline) as scope:
                    try:
                        chunk = await anext(stream)
                    except StopAsyncIteration:
                        break
                if scope.cancelled_caught:
                    raise loop.timed_out()
                assert isinstance(chunk, StreamChunk)
                if chunk.reasoning:
                    thinking.append(chunk.reasoning)
                    yield RunEvent("reasoning", text=chunk.reasoning)
                if chunk.content:
                    texts.append(chunk.content)
                    yield RunEvent("text", text=chunk.content)
                calls.extend(chunk.tool_calls)
                if chunk.finish_reason is not None:
                    response = GenerateResponse(
                        finish_reason=chunk.finish_reason,
                        usage=chunk.usage,
                        model=chunk.model,
                        cost=chunk.cost,
                        reasoning_parts=list(chunk.reasoning_parts),
                    )
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        response.content, response.tool_calls = "".join(texts), calls
        response.reasoning = "".join(thinking) or None
        step = loop.record(response)
        if not response.tool_calls:
            with anyio.CancelScope(deadline=deadline) as scope:
                result = await loop.result(pipeline, response)
            if scope.cancelled_caught:
                raise loop.timed_out()
            yield RunEvent("done", result=result)
            return
        for call in response.tool_calls:
            yield RunEvent("tool_call", call=call)
        with anyio.CancelScope(deadline=deadline) as scope:
            await loop.execute(pipeline, step, approve)
        if scope.cancelled_caught:
            raise loop.timed_out()
        for execution in step.executions:
            yield RunEvent("tool_result", execution=execution)
    raise loop.exhausted()
