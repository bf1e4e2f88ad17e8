"""One call, built once: the public keyword arguments (``CallKwargs``) and the ``Request`` they
become (``build_request``).

Every public entry point (``agenerate``, ``astream``, ``acount_tokens``, ``arun``,
``Session.asend``, ``abatch``, the router, the server) turns its arguments into a ``Request``
with ``build_request`` and hands it down; nothing below re-parses them. A provider *binds* the
request at its entry point (``AsyncProvider._send``): its model, its parameter names checked,
its instance defaults merged under the call's parameters. A request not bound yet has
an empty ``model``: the router hands that one to each deployment in turn.

A new public parameter is one line in ``CallKwargs`` (and, for a generation parameter, its name
in a provider's ``extra_params`` or ``core.config.GENERATION_PARAMS``): every public method and
its blocking twin take ``**kwargs: Unpack[CallKwargs]``.

``Request`` lives in features, not core: building one needs features (tool specs, media,
the structured-output spec), and nothing below features holds one (engines take plain
callables, the transport takes bodies).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, cast

from abstractcore.core.config import Timeout
from abstractcore.core.errors import ConfigurationError
from abstractcore.core.types import ContentPart, Message, TextPart, ToolSpec

if TYPE_CHECKING:  # structured output and tools are imported by the first call that uses them
    from abstractcore.core.config import TimeoutLike
    from abstractcore.features.structured import OutputSpec, StructuredMode

__all__ = ["EXTRAS", "CallKwargs", "Pipeline", "Request", "build_request", "pipeline_of"]

#: The escape hatch's keyword arguments (``extra_body``, ``extra_headers``, ``extra_query``).
EXTRAS = ("extra_body", "extra_headers", "extra_query")


class CallKwargs(TypedDict, total=False):
    """The keyword arguments of every call (``generate``, ``stream``, ``count_tokens``, ``run``,
    ``Session.send``, ``batch``), declared once. ``response_model`` and ``stream`` are spelled
    out on each method: they decide what it returns."""

    #: The conversation: dicts such as ``{"role": "user", "content": "Hi"}`` or ``Message``s.
    messages: Sequence[Message | dict[str, Any]] | None
    #: A system prompt put before the messages.
    system_prompt: str | None
    #: Functions, dicts in OpenAI's or Anthropic's shape, or ``ToolSpec``s.
    tools: Sequence[Any] | None
    #: "auto", "none", "required", a tool's name, or OpenAI's ``{"type": "function", ...}``.
    tool_choice: str | dict[str, Any] | None
    #: Images (paths, bytes, URLs) attached to the last user message.
    media: Sequence[Any] | None
    #: How ``response_model`` is applied: "native", "tool", "grammar" or "prompt".
    structured_mode: StructuredMode | None
    #: How many times an invalid ``response_model`` answer is asked again (default 2).
    max_retries: int | None
    temperature: float | None
    max_tokens: int | None
    #: How hard a thinking model thinks: "none", "minimal", "low", "medium" or "high", mapped per
    #: provider (OpenAI's ``reasoning_effort``, Anthropic's thinking budget, Ollama's ``think``).
    reasoning_effort: str | None
    #: The thinking's token budget (Anthropic's ``budget_tokens``; an effort elsewhere).
    thinking_budget: int | None
    #: False turns thinking off where the model can (True turns it on at its default effort).
    reasoning: bool | None
    #: Prompt caching: True places the cache breakpoints where the provider needs them
    #: (Anthropic); on providers that cache by themselves it changes nothing. False: none.
    cache: bool | None
    #: How long a cache entry lives where the provider takes it: "5m" or "1h" (Anthropic).
    cache_ttl: str | None
    top_p: float | None
    #: Stop sequences: a string or a list of strings.
    stop: str | Sequence[str] | None
    seed: int | None
    presence_penalty: float | None
    frequency_penalty: float | None
    #: Seconds, a ``Timeout``, or None for no limit.
    timeout: TimeoutLike
    #: Ollama, Anthropic, llama.cpp, vLLM, OpenRouter and in process.
    top_k: int | None
    #: In process only.
    min_p: float | None
    #: In process only.
    repeat_penalty: float | None
    #: Ollama only: the context size to load the model with.
    num_ctx: int | None
    #: Ollama only: how long the model stays loaded ("5m", seconds, -1).
    keep_alive: str | int | float | None
    #: OpenAI's Responses API only (``api="responses"``): whether OpenAI keeps the response
    #: (default False: nothing kept, reasoning goes back encrypted with the next turn).
    store: bool | None
    #: OpenAI's Responses API only: continue the stored response with this id (``raw["id"]``).
    previous_response_id: str | None
    #: Fields merged into the wire body as they are (llama.cpp's ``grammar``, vLLM's
    #: ``guided_json``, OpenRouter's ``provider``); in process, the engine's own options.
    extra_body: Mapping[str, Any] | None
    #: HTTP headers added to the request (HTTP providers only).
    extra_headers: Mapping[str, str] | None
    #: Query parameters added to the URL (HTTP providers only).
    extra_query: Mapping[str, Any] | None


_DEFAULT_TIMEOUT = Timeout()  # frozen: one instance serves every request built without one


@dataclass(slots=True)
class Request:
    """A call, normalised once; what the pipeline and the provider hooks receive."""

    messages: list[Message]
    #: The model; empty until a provider binds the request (``AsyncProvider._send``).
    model: str = ""
    #: Generation parameters: the call's until bound, then merged over the instance defaults.
    params: dict[str, Any] = field(default_factory=dict)
    timeout: Timeout = _DEFAULT_TIMEOUT
    tools: list[ToolSpec] = field(default_factory=list)
    #: "auto", "none", "required" or the name of the tool to call (validated against ``tools``).
    tool_choice: str | None = None
    #: Tools offered in the prompt (the model has no native tools); their calls are parsed from text.
    prompted_tools: list[ToolSpec] = field(default_factory=list)
    #: The structured output asked for (``response_model``), and how it is applied.
    output: OutputSpec[Any] | None = None
    structured_mode: StructuredMode | None = None
    #: Re-asks of an invalid structured answer (``output`` only).
    max_retries: int = 2
    #: The structured answer wanted as a response, not a value (the server): ``_send`` returns a
    #: ``GenerateResponse`` whose content is the answer's JSON text, ``_send_stream`` yields that
    #: text as ``StreamChunk`` deltas (``features.structured_strategy.structured_text``).
    output_as_text: bool = False
    extra_body: dict[str, Any] = field(default_factory=dict)
    extra_headers: dict[str, str] = field(default_factory=dict)
    extra_query: dict[str, Any] = field(default_factory=dict)

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The schema to constrain the answer with: set in "native" and "grammar" modes only."""
        if self.output is None or self.structured_mode not in ("native", "grammar"):
            return None
        return self.output.schema

    @property
    def system(self) -> str | None:
        """The system prompt (all system messages joined), or None."""
        texts = [m.text for m in self.messages if m.role == "system"]
        return "\n\n".join(texts) if texts else None

    @property
    def bound(self) -> bool:
        """Whether a provider has bound the request (its model and defaults are in)."""
        return bool(self.model)

    def with_messages(self, messages: list[Message]) -> Request:
        """The same call over other messages (a tool loop's next turn, a session's history)."""
        return self.copy_with(messages=messages)

    def copy_with(self, **changes: Any) -> Request:
        """A copy with ``changes`` (``dataclasses.replace`` without its per-field checks)."""
        copied: Request = _copy_request(self, changes)
        return copied


def _request_copier() -> Any:
    """``copy(request, changes)``, written out field by field once at import.

    By hand (as ``dataclasses`` writes ``__init__``) because it is on the path of every call
    (``_bind``): ``dataclasses.replace`` took 3x as long, a dict of the fields 2x."""
    names = [f.name for f in fields(Request)]
    arguments = ", ".join(f"changes.pop({n!r}) if {n!r} in changes else request.{n}" for n in names)
    source = f"def copy(request, changes):\n    return Request({arguments})\n"
    namespace: dict[str, Any] = {"Request": Request}
    exec(source, namespace)
    return namespace["copy"]


_copy_request = _request_copier()


def build_request(
    prompt: str | None = None,
    *,
    response_model: Any = None,
    stream: bool = False,
    **kwargs: Any,
) -> Request:
    """The ``Request`` of a public call; ``ConfigurationError`` for bad arguments, before anything
    is sent. Generation parameters are checked against the provider when it binds the request."""
    params = kwargs  # a new dict on every call: popped from as it is read
    messages = params.pop("messages", None)
    system_prompt = params.pop("system_prompt", None)
    tools = params.pop("tools", None)
    tool_choice = params.pop("tool_choice", None)
    media = params.pop("media", None)
    mode = params.pop("structured_mode", None)
    retries = params.pop("max_retries", None)
    body, headers, query = (params.pop(name, None) for name in EXTRAS)
    if response_model is None and (mode is not None or (retries is not None and not stream)):
        raise ConfigurationError("structured_mode and max_retries need a response_model.")
    if retries is not None and stream:
        raise ConfigurationError("max_retries applies to response_model, not to streams.")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
        raise ConfigurationError(f"max_retries must be an integer >= 0; got {retries!r}.")
    if mode is not None:
        from abstractcore.features.structured import STRUCTURED_MODES

        if mode not in STRUCTURED_MODES:
            raise ConfigurationError(
                f"structured_mode must be one of {', '.join(STRUCTURED_MODES)}; got {mode!r}."
            )
    specs: list[ToolSpec] = []
    choice = None
    if tools or tool_choice is not None:
        from abstractcore.features.tools.schema import normalise_tool_choice, to_tool_specs

        specs = to_tool_specs(tools) if tools else []
        choice = normalise_tool_choice(tool_choice, specs)
    output = None
    if response_model is not None:
        from abstractcore.features.structured import OutputSpec

        output = OutputSpec.of(response_model)
    # None is "the default" for a generation parameter; timeout=None is "no limit" (bound later)
    call_params = {k: v for k, v in params.items() if v is not None or k == "timeout"}
    return Request(
        messages=_messages(prompt, messages, system_prompt, media),
        params=call_params,
        tools=specs,
        tool_choice=choice,
        output=output,
        structured_mode=mode,
        max_retries=2 if retries is None else retries,
        extra_body=_mapping("extra_body", body) if body is not None else {},
        extra_headers=_mapping("extra_headers", headers) if headers is not None else {},
        extra_query=_mapping("extra_query", query) if query is not None else {},
    )


class Pipeline(Protocol):
    """The request-level entry points of a provider (``AsyncProvider._send``), a router included."""

    async def _send(self, request: Request) -> Any: ...

    def _send_stream(self, request: Request) -> AsyncIterator[Any]: ...

    async def _count(self, request: Request) -> int: ...


def pipeline_of(llm: Any) -> Pipeline:
    """The provider behind ``llm`` (an ``LLM``, or an ``AsyncProvider`` itself), whose
    ``_send`` / ``_send_stream`` take a built ``Request``."""
    provider = getattr(llm, "provider", llm)
    if not callable(getattr(provider, "_send", None)):
        raise ConfigurationError(f"This needs an LLM made by create_llm(...); got {type(llm).__name__}.")
    return cast(Pipeline, provider)


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigurationError(f"{name} must be a dict with string keys; got {type(value).__name__}.")
    if name == "extra_headers" and not all(isinstance(v, str) for v in value.values()):
        raise ConfigurationError("extra_headers values must be strings.")
    return dict(value)


_MESSAGE_SHAPE = "a list of messages such as [{'role': 'user', 'content': 'Hi'}] (dicts or Message objects)"


def _message_list(messages: Any) -> list[Message]:
    if messages is None:
        return []
    if isinstance(messages, (str, bytes, Mapping, Message)) or not isinstance(messages, Sequence):
        raise ConfigurationError(
            f"messages must be {_MESSAGE_SHAPE}; got {type(messages).__name__}"
            + (" (pass a prompt string as the first argument instead)" if isinstance(messages, str) else "")
            + "."
        )
    built: list[Message] = []
    for index, item in enumerate(messages):
        if isinstance(item, Message):
            built.append(item)
        elif isinstance(item, Mapping):
            built.append(Message.from_dict(item, where=f"messages[{index}]"))
        else:
            raise ConfigurationError(
                f"messages[{index}] is a {type(item).__name__}; messages must be {_MESSAGE_SHAPE}."
            )
    return built


def _messages(
    prompt: str | None,
    messages: Sequence[Message | dict[str, Any]] | None,
    system_prompt: str | None,
    media: Sequence[Any] | None,
) -> list[Message]:
    if prompt is not None and not isinstance(prompt, str):
        raise ConfigurationError(f"prompt must be a string; got {type(prompt).__name__}.")
    built = _message_list(messages)
    if system_prompt:
        built.insert(0, Message("system", system_prompt))
    if prompt is not None:
        built.append(Message("user", prompt))
    if not any(m.role != "system" for m in built):
        raise ConfigurationError("Nothing to answer: give a prompt or messages with a user turn.")
    if media:
        from abstractcore.features.media import load_media

        images = load_media(media)
        for index in range(len(built) - 1, -1, -1):
            if built[index].role == "user":
                message = built[index]
                parts: list[ContentPart] = (
                    [TextPart(message.content)] if isinstance(message.content, str) else list(message.content)
                )
                built[index] = replace(message, content=[*parts, *images])
                break
        else:
            raise ConfigurationError("media needs a user message to attach to.")
    return built
