"""The structured-output strategy: which constraint a ``response_model`` gets on a provider, the
re-asks of an invalid answer, and partial objects as a stream's JSON arrives.

Functions over ``ProviderHooks``, called by the provider pipeline (``AsyncProvider._send`` /
``_send_stream``). An answer is wanted either as a value (``structured_answer``,
``structured_stream``: ``response_model``) or as its JSON text (``structured_text``,
``structured_text_stream``: ``Request.output_as_text``, what the server sends back for a
``response_format`` / ``output_config`` schema). Both read the same attempts and the same
stream of the answer's text (``_answer_chunks``); a value's partials are built on that text.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pydantic_core import to_jsonable_python

from abstractcore.core.errors import ConfigurationError, StructuredOutputError
from abstractcore.core.types import GenerateResponse, Message, StreamChunk, Usage
from abstractcore.features.hooks import ProviderHooks
from abstractcore.features.request import Request
from abstractcore.features.structured import (
    STRUCTURED_MODES,
    STRUCTURED_TOOL,
    WRAP_KEY,
    OutputSpec,
    StructuredMode,
    ValidationFailure,
    reask_messages,
    structured_tool,
)
from abstractcore.features.tools.strategy import generate, tool_stream

__all__ = [
    "structured_answer",
    "structured_request",
    "structured_stream",
    "structured_text",
    "structured_text_stream",
    "structured_value",
]

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


@dataclass(slots=True)
class _Attempts:
    """What the attempts at a structured answer came to."""

    response: GenerateResponse  # the last attempt's
    text: str  # the last attempt's answer
    usage: Usage | None  # summed over the attempts
    value: Any = None
    error: StructuredOutputError | None = None  # no attempt validated (or the last was cut)


async def _attempts(
    provider: ProviderHooks, request: Request, output: OutputSpec[Any], retries: int
) -> _Attempts:
    answers: list[str] = []
    errors: list[Any] = []
    usage: Usage | None = None
    messages = request.messages
    response = GenerateResponse()
    tool_mode = request.structured_mode == "tool"  # a forced call: prompted where tools are ignored
    for _ in range(retries + 1):
        attempt = replace(request, messages=messages)
        response = await (
            generate(provider, attempt, enforce=False) if tool_mode else provider._complete(attempt)
        )
        if response.usage:
            usage = usage + response.usage if usage else response.usage
        answer = _answer_text(response)
        answers.append(answer)
        if response.finish_reason == "length":
            break  # a cut answer: asking again with the same max_tokens cuts it again
        try:
            return _Attempts(response, answer, usage, value=output.parse(answer))
        except ValidationFailure as failure:
            errors = failure.errors
            reask = reask_messages(answer, failure.errors, cut=False)
            messages = [*messages, *(Message.from_dict(m) for m in reask)]
    error = _structured_error(output, answers, errors, response.finish_reason, usage or Usage())
    return _Attempts(response, answers[-1], usage, error=error)


async def structured_answer(
    provider: ProviderHooks, request: Request, output: OutputSpec[T], retries: int
) -> T:
    """The validated value of ``output`` (repaired, re-asked up to ``retries`` times), else
    ``StructuredOutputError``."""
    done = await _attempts(provider, request, output, retries)
    if done.error is not None:
        raise done.error
    value: T = done.value
    return value


def structured_value(output: OutputSpec[T], response: GenerateResponse) -> T:
    """The validated value of one answer that cannot be asked again (a provider batch's item),
    repaired when it is near-JSON, else ``StructuredOutputError``."""
    answer = _answer_text(response)
    if response.finish_reason != "length":
        try:
            return output.parse(answer)
        except ValidationFailure as failure:
            raise _structured_error(
                output, [answer], failure.errors, response.finish_reason, response.usage or Usage()
            ) from None
    raise _structured_error(output, [answer], [], response.finish_reason, response.usage or Usage())


async def structured_text(
    provider: ProviderHooks, request: Request, output: OutputSpec[Any], retries: int
) -> GenerateResponse:
    """The answer as a ``GenerateResponse`` whose content is the validated value's JSON (unwrapped
    when ``output`` is), finish "stop", usage summed over the re-asks; a cut answer is its text so
    far with finish "length" (as the APIs end it). ``StructuredOutputError`` when no attempt holds
    a valid answer."""
    done = await _attempts(provider, request, output, retries)
    if done.error is not None and done.error.finish_reason != "length":
        raise done.error
    if done.error is not None:
        text = _Unwrapping().whole(done.text, complete=False) if output.wrapped else done.text
        finish = "length"
    else:
        # a typed value (OutputSpec.of(Model): the Ray stage's response_model) dumps as its JSON
        text, finish = json.dumps(to_jsonable_python(done.value), ensure_ascii=False), "stop"
    return replace(done.response, content=text, tool_calls=[], finish_reason=finish, usage=done.usage)


async def _answer_chunks(provider: ProviderHooks, request: Request) -> AsyncGenerator[StreamChunk, None]:
    """The constrained answer's JSON text as it arrives: each chunk's content a delta (the text,
    or in "tool" mode the arguments of the structured-output call, whole when the back end
    delivers the call whole); finish ("stop" for the call's "tool_calls") and usage as they come."""
    tool_mode = request.structured_mode == "tool"
    chunks = tool_stream(provider, request, enforce=False) if tool_mode else provider._stream(request)
    tool_index: int | None = None
    streamed = False  # "tool" mode: some of the call's arguments arrived as fragments
    try:
        async for chunk in chunks:
            piece = "" if tool_mode else chunk.content
            for delta in chunk.tool_call_deltas:
                if delta.name == STRUCTURED_TOOL:
                    tool_index = delta.index
                if delta.index == tool_index and delta.arguments_fragment:
                    piece += delta.arguments_fragment
                    streamed = True
            if not chunk.tool_call_deltas and not streamed:
                for call in chunk.tool_calls:  # delivered whole (no fragments were streamed)
                    if call.name == STRUCTURED_TOOL:
                        piece += call.arguments_json()
                        streamed = True
            finish = "stop" if chunk.finish_reason == "tool_calls" else chunk.finish_reason
            if piece or finish or chunk.usage:
                yield replace(chunk, content=piece, finish_reason=finish, tool_calls=[], tool_call_deltas=[])
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def structured_stream(
    provider: ProviderHooks, request: Request, output: OutputSpec[T]
) -> AsyncIterator[T]:
    """Partial values of ``output`` as its JSON arrives, then the validated value (else
    ``StructuredOutputError`` after the last text)."""
    text: list[str] = []
    last: Any = None
    finish: str | None = None
    usage: Usage | None = None
    chunks = _answer_chunks(provider, request)
    try:
        async for chunk in chunks:
            if chunk.content:
                text.append(chunk.content)
                value = output.partial("".join(text))
                if value is not None and value != last:
                    last = value
                    yield value
            finish = chunk.finish_reason or finish
            usage = chunk.usage or usage
    finally:
        await chunks.aclose()
    answer = "".join(text)
    if finish != "length":
        try:
            yield output.parse(answer)
            return
        except ValidationFailure as failure:
            raise _structured_error(output, [answer], failure.errors, finish, usage) from None
    raise _structured_error(output, [answer], [], finish, usage)


async def structured_text_stream(
    provider: ProviderHooks, request: Request, output: OutputSpec[Any]
) -> AsyncIterator[StreamChunk]:
    """The answer's JSON text as ``StreamChunk`` deltas as it arrives (unwrapped when ``output``
    is), the last chunk with finish ("stop", or "length" for a cut answer) and usage. An answer
    that ends invalid raises ``StructuredOutputError`` after its last text."""
    text: list[str] = []
    unwrapping = _Unwrapping() if output.wrapped else None
    chunks = _answer_chunks(provider, request)
    try:
        async for chunk in chunks:
            text.append(chunk.content)
            piece = unwrapping.feed(chunk.content) if unwrapping is not None else chunk.content
            finish = chunk.finish_reason
            if finish is not None:
                if unwrapping is not None:
                    piece += unwrapping.end(complete=finish != "length")
                if finish != "length":
                    answer = "".join(text)
                    try:
                        output.parse(answer)
                    except ValidationFailure as failure:
                        raise _structured_error(
                            output, [answer], failure.errors, finish, chunk.usage
                        ) from None
            if piece or finish or chunk.usage:
                yield replace(chunk, content=piece)
    finally:
        await chunks.aclose()


_WRAP_START = re.compile(r'\s*\{\s*"' + WRAP_KEY + r'"\s*:\s*')
_WRAP_OPENING = '{"' + WRAP_KEY + '":'
_CLOSING = "}" + " \t\r\n"


class _Unwrapping:
    """A wrapped answer's text (``{"value": X}``) as X's text, delta by delta: the wrapper's start
    dropped once it has arrived, a run of closing braces and blanks held back until the end (the
    last brace is the wrapper's). Text that does not start as the wrapper passes as it is."""

    __slots__ = ("_as_is", "_held", "_inside")

    def __init__(self) -> None:
        self._held = ""
        self._inside = False
        self._as_is = False

    def feed(self, piece: str) -> str:
        held = self._held + piece
        if not self._inside and not self._as_is:
            found = _WRAP_START.match(held)
            if found is None or found.end() == len(held):
                if found is None and not _WRAP_OPENING.startswith(re.sub(r"\s+", "", held)):
                    self._as_is = True
                    self._held = ""
                    return held
                self._held = held
                return ""
            self._inside = True
            held = held[found.end() :]
        if self._as_is:
            return held
        body = held.rstrip(_CLOSING)
        self._held = held[len(body) :]
        return body

    def end(self, *, complete: bool) -> str:
        held, self._held = self._held, ""
        if not self._inside and not self._as_is:
            return ""  # cut inside the wrapper's start: nothing of the value arrived
        if self._inside and complete:
            held = held.rstrip()
            held = held[:-1].rstrip() if held.endswith("}") else held
        return held

    def whole(self, text: str, *, complete: bool) -> str:
        return self.feed(text) + self.end(complete=complete)


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
