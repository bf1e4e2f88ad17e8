"""The tool strategy: native tools, or tools prompted (the forced call under a grammar) for a model
or server that ignores them; and the promise of a forced choice kept (a cut call, or prose, raises).

Functions over ``ProviderHooks``, called by the provider pipeline (``AsyncProvider._send``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from abstractcore.core.types import GenerateResponse, StreamChunk
from abstractcore.features.hooks import ProviderHooks
from abstractcore.features.request import Request
from abstractcore.features.structured import OutputSpec
from abstractcore.features.tools.forced import cut_call_error, forced_kind, no_call_error
from abstractcore.features.tools.prompted import TOOL_CALL_OUTPUT, call_schema, prompted_messages
from abstractcore.features.tools.text_calls import TextCallStream, parse_text_calls

__all__ = ["forced_kept", "generate", "prompted_request", "strategy_of", "tool_stream", "tools_prompted"]


async def tools_prompted(provider: ProviderHooks, request: Request) -> bool:
    if not request.tools or request.tool_choice == "none":
        return False
    kind = forced_kind(request.tool_choice)
    if kind is not None and (kind not in provider.forced_choices or kind in provider._ignored_choices):
        return True
    return (await provider.acapabilities()).tools is False


def prompted_request(provider: ProviderHooks, request: Request) -> Request:
    """The request rewritten for prompted tools (the forced call constrained where possible)."""
    messages = prompted_messages(request.messages, request.tools, request.tool_choice)
    out = replace(request, messages=messages, tools=[], tool_choice=None, prompted_tools=list(request.tools))
    schema = call_schema(request.tools, request.tool_choice)
    if schema is not None:
        modes = [m for m in provider._structured_modes(out) if m in ("native", "grammar")]
        if modes:
            out = replace(
                out, output=OutputSpec.from_schema(schema, TOOL_CALL_OUTPUT), structured_mode=modes[0]
            )
    return out


def strategy_of(request: Request) -> str:
    if not request.prompted_tools:
        return "native"
    return "prompted+grammar" if request.structured_mode in ("native", "grammar") else "prompted"


async def generate(provider: ProviderHooks, request: Request, *, enforce: bool = True) -> GenerateResponse:
    """``_complete``, with tools prompted and parsed back for a model that ignores them.

    A forced choice answered natively without a call (the server ignored it) is asked again
    with prompted tools and the call under the grammar, and that strategy is kept for later
    calls. With ``enforce``, a forced choice that still has no whole call raises
    (``features.tools.forced``): a cut call, or prose, is never returned as the answer.
    """
    if not request.tools:
        return await provider._complete(request)
    kind = forced_kind(request.tool_choice)
    ignored: GenerateResponse | None = None
    if not await tools_prompted(provider, request):
        response = await provider._complete(request)
        response.tool_strategy = "native"
        if kind is None or response.tool_calls:
            return forced_kept(provider, request, response, constrained=True) if enforce else response
        provider._ignored_choices.add(kind)  # prose to a forced choice: this server ignores it
        ignored = response
    prompted = prompted_request(provider, request)
    response = await provider._complete(prompted)
    prose, calls = parse_text_calls(response.content)
    if calls:
        response.content, response.tool_calls, response.finish_reason = prose.strip(), calls, "tool_calls"
    response.tool_strategy = strategy_of(prompted)
    if ignored is not None and ignored.usage and response.usage:
        response.usage = ignored.usage + response.usage
    if not enforce:
        return response
    return forced_kept(provider, request, response, constrained=response.tool_strategy == "prompted+grammar")


def forced_kept(
    provider: ProviderHooks, request: Request, response: GenerateResponse, *, constrained: bool
) -> GenerateResponse:
    """``response``, or the typed error when it breaks the promise of a forced choice."""
    if forced_kind(request.tool_choice) is None:
        return response
    if response.finish_reason == "length":
        text = response.content + "".join(c.arguments_json() for c in response.tool_calls)
        raise cut_call_error(request.tool_choice, text, response.usage)
    if not response.tool_calls:
        raise no_call_error(
            provider.name,
            provider.model,
            request.tool_choice,
            response.content,
            response.finish_reason,
            constrained,
        )
    return response


async def tool_stream(
    provider: ProviderHooks, request: Request, *, enforce: bool = True
) -> AsyncIterator[StreamChunk]:
    """``_stream`` with tools; prompted ones stream their prose and hand each call over whole.

    A forced choice streamed natively holds its text back until a call shows (a server that
    ignores the choice is then asked again prompted, as in ``_generate``); with ``enforce``,
    a forced choice that ends without a whole call raises after the last text.
    """
    if await tools_prompted(provider, request):
        chunks = _prompted_stream(provider, request, enforce=enforce)
    elif forced_kind(request.tool_choice) is not None:
        chunks = _forced_stream(provider, request, enforce=enforce)
    else:
        chunks = provider._stream(request)
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def _prompted_stream(
    provider: ProviderHooks, request: Request, *, enforce: bool
) -> AsyncIterator[StreamChunk]:
    prompted = prompted_request(provider, request)
    chunks = provider._stream(prompted)
    parser = TextCallStream()
    written: list[str] = []
    try:
        async for chunk in chunks:
            written.append(chunk.content)
            if chunk.finish_reason is not None:
                tail = parser.finish()
                if tail:
                    yield StreamChunk(content=tail, model=chunk.model)
                chunk.tool_calls = parser.take()
                if chunk.tool_calls:
                    chunk.finish_reason = "tool_calls"
                elif enforce:  # the text of the answer was handed on: now say what it lacks
                    answer = GenerateResponse(
                        content="".join(written), finish_reason=chunk.finish_reason, usage=chunk.usage
                    )
                    forced_kept(
                        provider, request, answer, constrained=strategy_of(prompted) == "prompted+grammar"
                    )
                yield chunk
            elif chunk.content:
                text = parser.feed(chunk.content)
                if text:
                    chunk.content = text
                    yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def _forced_stream(
    provider: ProviderHooks, request: Request, *, enforce: bool
) -> AsyncIterator[StreamChunk]:
    held: list[StreamChunk] = []
    called = False
    arguments: list[str] = []
    chunks = provider._stream(request)
    try:
        async for chunk in chunks:
            arguments += [d.arguments_fragment for d in chunk.tool_call_deltas]
            called = called or bool(chunk.tool_call_deltas or chunk.tool_calls)
            if not called:
                held.append(chunk)
                continue
            for earlier in held:
                yield earlier
            held.clear()
            if enforce and chunk.finish_reason == "length":
                raise cut_call_error(request.tool_choice, "".join(arguments), chunk.usage)
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    if called:
        return
    kind = forced_kind(request.tool_choice)
    assert kind is not None
    provider._ignored_choices.add(kind)  # prose to a forced choice: this server ignores it
    again = _prompted_stream(provider, request, enforce=enforce)
    try:
        async for chunk in again:
            yield chunk
    finally:
        aclose = getattr(again, "aclose", None)
        if aclose is not None:
            await aclose()
