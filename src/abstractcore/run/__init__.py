"""The tool loop: ``await llm.arun(prompt, tools=[...])`` (and its blocking twin ``llm.run``).

The model is called with the tools; every call it asks for is run (async
functions awaited, blocking ones in worker threads, parallel calls
concurrently), the results go back to it in each provider's native shape, and
this repeats until the model answers without calls. Built on the public async
API only (``agenerate`` / ``astream``), so it runs over every provider, a
router included.

- A tool that raises, a call with invalid arguments (validated by pydantic),
  an unknown tool or a call refused by ``approve=`` becomes an error result
  the model sees; the loop never crashes on it.
- ``max_turns`` bounds the model calls; reaching it raises ``ToolLoopError``
  carrying the transcript and steps so far (a loop that did not finish is an
  error, not an answer).
- ``tool_timeout`` bounds each tool call (seconds): a call still running then
  becomes an error result the model sees. ``run_timeout`` bounds the whole
  run, model calls and tools alike: reaching it raises ``RunTimeoutError`` (a
  ``ToolLoopError``, with the transcript so far). ``timeout`` still bounds
  each model call.
- Cancelling the run (or a timeout) cancels the running tools: async ones at
  once; a blocking function runs in a daemon thread that is abandoned (its
  result dropped), so it never holds the caller, nor the interpreter's exit.
- ``response_model=`` applies to the final answer: a final text that already
  validates is used; otherwise one more structured call over the transcript.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import nullcontext
from typing import Any

from abstractcore.core.errors import RunTimeoutError, ToolLoopError
from abstractcore.features.request import pipeline_of
from abstractcore.features.telemetry import state as _telemetry
from abstractcore.run.loop import Loop
from abstractcore.run.results import Approve, RunEvent, RunResult, RunStep, ToolExecution, as_text
from abstractcore.run.stream import stream_run

__all__ = [
    "Approve",
    "RunEvent",
    "RunResult",
    "RunStep",
    "RunTimeoutError",
    "ToolExecution",
    "ToolLoopError",
    "arun",
    "as_text",
    "astream_run",
    "pipeline_of",
]


async def arun(
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
) -> RunResult:
    """Run the tool loop until the model answers without calls; see the module docstring."""
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
    tracing = _telemetry.active
    with (
        tracing.agent(pipeline) if tracing is not None else nullcontext(),
        anyio.CancelScope(deadline=loop.deadline()),
    ):
        for _ in range(max_turns):
            response = await pipeline._send(await loop.turn())
            step = loop.record(response)
            if not response.tool_calls:
                return await loop.result(pipeline, response)
            await loop.execute(pipeline, step, approve)
        raise loop.exhausted()
    raise loop.timed_out()  # reached only when the deadline cut the run short


def astream_run(
    llm: Any,
    prompt: str | Sequence[Any] | None = None,
    **options: Any,
) -> AsyncIterator[RunEvent]:
    """The tool loop as it happens: text deltas, each call, each result, then the ``RunResult``."""
    events = stream_run(llm, prompt, **options)
    tracing = _telemetry.active
    if tracing is None:
        return events
    return tracing.agent_stream(pipeline_of(llm), events)
