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

import inspect
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from abstractcore.core.errors import (
    ConfigurationError,
    MCPConnectionError,
    RunTimeoutError,
    ToolCallError,
    ToolLoopError,
)
from abstractcore.core.types import GenerateResponse, Message, StreamChunk, ToolCall, Usage
from abstractcore.features.request import Pipeline, Request, build_request, pipeline_of
from abstractcore.features.telemetry import state as _telemetry
from abstractcore.features.tools.results import image_parts, tool_content
from abstractcore.features.tools.schema import Tool, to_tools
from abstractcore.features.tools.sources import refresh_sources

__all__ = [
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

#: ``approve(call)``: True to run the call, False to refuse it (the model is told).
Approve = Callable[[ToolCall], "bool | Awaitable[bool]"]


@dataclass(slots=True)
class ToolExecution:
    """One tool call of a step: the call, its result (or error) as the model saw it, its duration."""

    call: ToolCall
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    #: An error that ends the run (an MCP server died), raised once every call of the step is done.
    fatal: Exception | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when the tool ran and returned."""
        return self.error is None

    def as_message(self, *, images: bool = True) -> Message:
        """The ``tool`` turn that hands this result back to the model (a result's images only
        when ``images``: the model takes them; a note in their place otherwise)."""
        parts = image_parts(self.result) if self.error is None else None
        content: str | list[Any]
        if parts is not None:
            content = tool_content(parts, images=images)
        else:
            content = f"Error: {self.error}" if self.error is not None else as_text(self.result)
        return Message("tool", content, tool_call_id=self.call.id, name=self.call.name)


@dataclass(slots=True)
class RunStep:
    """One model call of the loop and the tool calls it asked for."""

    response: GenerateResponse
    executions: list[ToolExecution] = field(default_factory=list)


@dataclass(slots=True)
class RunResult:
    """What ``arun`` returns: the final answer, every step, the whole transcript and the summed usage.

    ``messages`` is the transcript (the input, every assistant turn and tool
    result, the final answer), reusable as the next call's ``messages``.
    ``output`` is the final text, or the validated ``response_model`` value.
    """

    output: Any
    response: GenerateResponse
    messages: list[Message]
    steps: list[RunStep]
    usage: Usage

    @property
    def content(self) -> str:
        """The final answer's text."""
        return self.response.content

    @property
    def cost(self) -> float | None:
        """USD summed over the steps (None when no step's price is known: local or unpriced models)."""
        known = [s.response.cost for s in self.steps if s.response.cost is not None]
        return sum(known) if known else None

    def __str__(self) -> str:
        return self.response.content


@dataclass(slots=True)
class RunEvent:
    """One event of ``astream_run``.

    ``kind`` is "text" (``text`` holds a delta of the model's answer),
    "reasoning" (a delta of its thinking), "tool_call" (``call`` is about to
    run), "tool_result" (``execution`` finished) or "done" (``result`` is the
    ``RunResult``).
    """

    kind: str
    text: str = ""
    call: ToolCall | None = None
    execution: ToolExecution | None = None
    result: RunResult | None = None


def as_text(value: Any) -> str:
    """A tool result or answer as the text a model reads (str as is, pydantic as JSON, else JSON)."""
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


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


async def _execute_all(
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


async def _takes_images(llm: Pipeline) -> bool:
    capabilities = getattr(llm, "acapabilities", None)
    return callable(capabilities) and (await capabilities()).vision is True


def _start(
    prompt: str | Sequence[Any] | None, messages: Sequence[Any] | None, system_prompt: str | None
) -> list[Message]:
    if isinstance(prompt, (list, tuple)):  # arun(messages_list, ...) reads naturally too
        if messages is not None:
            raise ConfigurationError("Give the conversation once: as the first argument or as messages=.")
        prompt, messages = None, prompt
    out = [m if isinstance(m, Message) else Message.from_dict(m) for m in messages or []]
    if system_prompt:
        out.insert(0, Message("system", system_prompt))
    if prompt is not None:
        if not isinstance(prompt, str):
            raise ConfigurationError(f"prompt must be a string or a list of messages; got {prompt!r}.")
        out.append(Message("user", prompt))
    if not any(m.role != "system" for m in out):
        raise ConfigurationError("Nothing to answer: give a prompt or messages with a user turn.")
    return out


async def _final_output(
    llm: Pipeline, response: GenerateResponse, transcript: list[Message], request: Request
) -> Any:
    """The run's output: the answer's text, or the ``response_model`` value (the final text when
    it validates, else one structured call over the transcript, without the tools)."""
    output = request.output
    if output is None:
        return response.content
    from abstractcore.features.structured import ValidationFailure

    try:
        return output.parse(response.content)
    except ValidationFailure:
        final = replace(request, messages=list(transcript), tools=[], tool_choice=None)
        return await llm._send(final)


def _check_seconds(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(
            f"{name} must be a number of seconds > 0, or None for no limit; got {value!r}."
        )
    return float(value)


def _check(tools: Sequence[Any] | None, max_turns: int) -> dict[str, Tool]:
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise ConfigurationError(f"max_turns must be an integer >= 1; got {max_turns!r}.")
    if not tools:
        raise ConfigurationError("run() needs tools=[...] (without tools, use generate()).")
    return {t.name: t for t in to_tools(tools)}


class _Loop:
    """The state of one tool loop, shared by ``arun`` and ``astream_run``."""

    def __init__(
        self,
        tools: Sequence[Any] | None,
        max_turns: int,
        prompt: str | Sequence[Any] | None,
        messages: Sequence[Any] | None,
        system_prompt: str | None,
        tool_choice: Any,
        tool_timeout: float | None,
        run_timeout: float | None,
        response_model: Any,
        params: dict[str, Any],
    ) -> None:
        self.tool_timeout = _check_seconds("tool_timeout", tool_timeout)
        self.run_timeout = _check_seconds("run_timeout", run_timeout)
        self.by_name = _check(tools, max_turns)
        self.tools = list(tools or [])
        self.transcript = _start(prompt, messages, system_prompt)
        #: The call, built once (tools as specs, parameters checked); each turn changes its messages.
        self.request = build_request(
            messages=self.transcript,
            tools=tools,
            tool_choice=tool_choice,
            response_model=response_model,
            **params,
        )
        self.steps: list[RunStep] = []
        self.usage = Usage()
        self.max_turns = max_turns

    async def turn(self) -> Request:
        """The request of the next model call: the transcript so far, the tools (a tool source
        whose list changed listed again), no output spec."""
        if await refresh_sources(self.tools):
            self.by_name = {t.name: t for t in to_tools(self.tools)}
            self.request = replace(self.request, tools=[t.spec for t in self.by_name.values()])
        return replace(self.request, messages=list(self.transcript), output=None, structured_mode=None)

    def record(self, response: GenerateResponse) -> RunStep:
        """Keep the model's answer (usage, transcript); the step it opens."""
        if response.usage:
            self.usage = self.usage + response.usage
        step = RunStep(response)
        self.steps.append(step)
        self.transcript.append(response.message())  # thinking blocks included: the provider needs them back
        return step

    async def execute(self, llm: Pipeline, step: RunStep, approve: Approve | None) -> None:
        """Run the step's calls and add their results to the transcript."""
        step.executions = await _execute_all(
            step.response.tool_calls, self.by_name, approve, self.tool_timeout
        )
        fatal = next((e.fatal for e in step.executions if e.fatal is not None), None)
        if fatal is not None:
            raise fatal
        images = any(image_parts(e.result) for e in step.executions) and await _takes_images(llm)
        self.transcript.extend(e.as_message(images=images) for e in step.executions)
        if self.request.tool_choice not in (None, "auto", "none"):
            self.request = replace(self.request, tool_choice="auto")  # a forced first call: once

    async def result(self, llm: Pipeline, response: GenerateResponse) -> RunResult:
        output = await _final_output(llm, response, self.transcript, self.request)
        return RunResult(output, response, self.transcript, self.steps, self.usage)

    def deadline(self) -> float:
        """When the run must end (``anyio.current_time()`` clock; infinite without ``run_timeout``)."""
        import anyio

        return math.inf if self.run_timeout is None else anyio.current_time() + self.run_timeout

    def timed_out(self) -> RunTimeoutError:
        return RunTimeoutError(
            f"The run did not finish within run_timeout={self.run_timeout:g} s; raise run_timeout, or "
            "see .steps for what it did so far (tool_timeout= bounds each tool call).",
            messages=self.transcript,
            steps=self.steps,
            usage=self.usage,
        )

    def exhausted(self) -> ToolLoopError:
        return ToolLoopError(
            f"The model still asked for tools after max_turns={self.max_turns} turns; raise max_turns, "
            "or check the tools' results (error results are shown in .steps).",
            messages=self.transcript,
            steps=self.steps,
            usage=self.usage,
        )


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
    loop = _Loop(
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
    events = _stream_run(llm, prompt, **options)
    tracing = _telemetry.active
    if tracing is None:
        return events
    return tracing.agent_stream(pipeline_of(llm), events)


async def _stream_run(
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
    loop = _Loop(
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
