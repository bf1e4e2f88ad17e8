"""Running the tool calls of one step: each validated, approved, run (async functions awaited,
blocking ones in daemon threads, parallel calls concurrently) within ``tool_timeout``, its error
turned into a result the model sees; with tracing on each execution is an ``execute_tool`` span."""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from typing import Any

from abstractcore.core.errors import MCPConnectionError, ToolCallError
from abstractcore.core.types import ToolCall
from abstractcore.features.telemetry import state as _telemetry
from abstractcore.features.tools.schema import Tool
from abstractcore.run.results import Approve, ToolExecution

__all__ = ["execute_all"]


async def _execute(
    call: ToolCall, tools: dict[str, Tool], approve: Approve | None, timeout: float | None = None
) -> ToolExecution:
    tracing = _telemetry.active
    if tracing is None:
        return await _execute_untraced(call, tools, approve, timeout)
    found = tools.get(call.name)
    with tracing.tool(call, found.spec.description if found is not None else None) as span:
        execution = await _execute_untraced(call, tools, approve, timeout)
        tracing.tool_result(span, execution.error, execution.result)
    return execution


async def _execute_untraced(
    call: ToolCall, tools: dict[str, Tool], approve: Approve | None, timeout: float | None = None
) -> ToolExecution:
    start = time.perf_counter()
    execution = ToolExecution(call)
    try:
        found = tools.get(call.name)
        if found is None:
            names = ", ".join(sorted(tools)) or "none"
            raise ToolCallError(f"There is no tool named {call.name!r}; the tools are: {names}.")
        kwargs = found.validate(call.arguments)
        if approve is not None:
            verdict = approve(call)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if not verdict:
                raise ToolCallError("The user did not approve this call; do not repeat it.")
        if found.function is None:
            execution.result = kwargs["value"] if list(kwargs) == ["value"] else kwargs
        else:
            execution.result = await _call_tool(found, kwargs, timeout)
    except MCPConnectionError as exc:  # the server is gone: the run ends with this error
        execution.error, execution.fatal = str(exc), exc
    except Exception as exc:  # the model sees the error; the loop goes on
        execution.error = str(exc) if isinstance(exc, ToolCallError) else f"{type(exc).__name__}: {exc}"
    execution.seconds = time.perf_counter() - start
    return execution


async def _call_tool(found: Tool, kwargs: dict[str, Any], timeout: float | None) -> Any:
    """Run the tool's function: async ones awaited, blocking ones in a daemon thread; at most
    ``timeout`` seconds, after which it is cancelled (a blocking one abandoned) and fails."""
    import anyio  # imported on first use: ``import abstractcore`` stays light

    from abstractcore.transport.threads import run_in_daemon_thread

    function = found.function
    assert function is not None
    result: Any = None
    with anyio.move_on_after(timeout) as scope:
        if inspect.iscoroutinefunction(function):
            result = await function(**kwargs)
        else:
            result = await run_in_daemon_thread(
                lambda: function(**kwargs), name=f"abstractcore-tool-{found.name}"
            )
            if inspect.isawaitable(result):
                result = await result
    if scope.cancelled_caught:
        raise ToolCallError(
            f"The tool {found.name!r} timed out: it did not finish within tool_timeout={timeout:g} s."
        )
    return result


async def execute_all(
    calls: Sequence[ToolCall], tools: dict[str, Tool], approve: Approve | None, timeout: float | None = None
) -> list[ToolExecution]:
    if len(calls) == 1:
        return [await _execute(calls[0], tools, approve, timeout)]
    results: list[ToolExecution | None] = [None] * len(calls)

    async def one(index: int, call: ToolCall) -> None:
        results[index] = await _execute(call, tools, approve, timeout)

    import anyio

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(one, index, call)
    return [r for r in results if r is not None]
