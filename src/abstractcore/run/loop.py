"""The state of one tool loop (``Loop``), shared by ``arun`` and ``astream_run``: the checked
options, the transcript, the request each turn sends, the steps and usage so far, and the errors
that end a run (``max_turns`` reached, ``run_timeout`` passed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from abstractcore.core.errors import ConfigurationError, RunTimeoutError, ToolLoopError
from abstractcore.core.types import GenerateResponse, Message, Usage
from abstractcore.features.request import Pipeline, Request, build_request
from abstractcore.features.tools.results import image_parts
from abstractcore.features.tools.schema import Tool, to_tools
from abstractcore.features.tools.sources import refresh_sources
from abstractcore.run.results import Approve, RunResult, RunStep
from abstractcore.run.tools import execute_all

__all__ = ["Loop"]


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


class Loop:
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
        step.executions = await execute_all(
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
