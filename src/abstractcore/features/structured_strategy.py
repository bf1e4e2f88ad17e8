"""The structured-output strategy: which constraint a ``response_model`` gets on a provider, the
re-asks of an invalid answer, and partial objects as a stream's JSON arrives.

Functions over ``ProviderHooks``, called by the provider pipeline (``AsyncProvider._send``) and
by the server's structured-output path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, TypeVar

from abstractcore.core.errors import ConfigurationError, StructuredOutputError
from abstractcore.core.types import GenerateResponse, Message, Usage
from abstractcore.features.hooks import ProviderHooks
from abstractcore.features.request import Request
from abstractcore.features.structured import (
    STRUCTURED_MODES,
    STRUCTURED_TOOL,
    OutputSpec,
    StructuredMode,
    ValidationFailure,
    reask_messages,
    structured_tool,
)
from abstractcore.features.tools.strategy import generate, tool_stream

__all__ = ["structured_answer", "structured_request", "structured_stream"]

T = TypeVar("T")


def structured_request(
    provider: ProviderHooks, request: Request, output: OutputSpec[Any], mode: StructuredMode | None
) -> Request:
    supported = provider._structured_modes(request)
    if mode is None:
        mode = supported[0]
    elif mode not in STRUCTURED_MODES:
        raise ConfigurationError(
            f"structured_mode must be one of {', '.join(STRUCTURED_MODES)}; got {mode!r}."
        )
    elif mode not in supported:
        raise ConfigurationError(
            f"{provider.name} (model {provider.model!r}) cannot apply structured_mode={mode!r}; "
            f"it can: {', '.join(supported)}."
        )
    if mode == "tool":  # the answer comes as the arguments of a forced tool call
        tools = [*request.tools, structured_tool(output)]
        choice = STRUCTURED_TOOL if not request.tools else "required"
        return replace(request, tools=tools, tool_choice=choice, output=output, structured_mode=mode)
    messages = [Message("system", output.instruction), *request.messages]
    return replace(request, messages=messages, output=output, structured_mode=mode)


async def structured_answer(
    provider: ProviderHooks, request: Request, output: OutputSpec[T], retries: int
) -> T:
    answers: list[str] = []
    errors: list[Any] = []
    usage = Usage()
    messages = request.messages
    response = GenerateResponse()
    tool_mode = request.structured_mode == "tool"  # a forced call: prompted where tools are ignored
    for _ in range(retries + 1):
        attempt = replace(request, messages=messages)
        response = await (
            generate(provider, attempt, enforce=False) if tool_mode else provider._complete(attempt)
        )
        usage = usage + response.usage if response.usage else usage
        answer = _answer_text(response)
        answers.append(answer)
        if response.finish_reason == "length":
            break  # a cut answer: asking again with the same max_tokens cuts it again
        try:
            return output.parse(answer)
        except ValidationFailure as failure:
            errors = failure.errors
            reask = reask_messages(answer, failure.errors, cut=False)
            messages = [*messages, *(Message.from_dict(m) for m in reask)]
    raise _structured_error(output, answers, errors, response.finish_reason, usage)


async def structured_stream(
    provider: ProviderHooks, request: Request, output: OutputSpec[T]
) -> AsyncIterator[T]:
    text: list[str] = []
    last: Any = None
    finish: str | None = None
    usage: Usage | None = None
    chunks = (
        tool_stream(provider, request, enforce=False)
        if request.structured_mode == "tool"
        else provider._stream(request)
    )
    tool_index: int | None = None  # "tool" mode: the answer streams as the call's arguments
    try:
        async for chunk in chunks:
            piece = chunk.content
            for delta in chunk.tool_call_deltas:
                if delta.name == STRUCTURED_TOOL:
                    tool_index = delta.index
                if delta.index == tool_index:
                    piece += delta.arguments_fragment
            if not chunk.tool_call_deltas:
                for call in chunk.tool_calls:  # delivered whole (no fragments were streamed)
                    if call.name == STRUCTURED_TOOL and not text:
                        piece += call.arguments_json()
            if piece:
                text.append(piece)
                value = output.partial("".join(text))
                if value is not None and value != last:
                    last = value
                    yield value
            finish = chunk.finish_reason or finish
            usage = chunk.usage or usage
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    answer = "".join(text)
    if finish != "length":
        try:
            yield output.parse(answer)
            return
        except ValidationFailure as failure:
            raise _structured_error(output, [answer], failure.errors, finish, usage) from None
    raise _structured_error(output, [answer], [], finish, usage)


def _answer_text(response: GenerateResponse) -> str:
    """The answer to validate: the text, or the arguments of the structured-output tool call."""
    for call in response.tool_calls:
        if call.name == STRUCTURED_TOOL:
            return call.arguments_json()
    return response.content


def _structured_error(
    output: OutputSpec[Any], answers: list[str], errors: list[Any], finish: str | None, usage: Usage | None
) -> StructuredOutputError:
    cut = finish == "length"
    if cut:
        message = (
            f"The model's answer was cut by max_tokens before the {output.name} was complete "
            f"({len(answers[-1]) if answers else 0} characters); raise max_tokens."
        )
    else:
        tries = f" after {len(answers)} attempts" if len(answers) > 1 else ""
        message = (
            f"The model's answer is not a valid {output.name}{tries}: {errors[:3]!r}. Try a larger "
            "model, a lower temperature, a clearer prompt or a larger max_retries."
        )
    return StructuredOutputError(
        message,
        raw=answers[-1] if answers else None,
        attempts=answers,
        validation_errors=errors,
        finish_reason=finish,
        usage=usage,
    )
