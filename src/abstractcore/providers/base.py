"""``AsyncProvider``: the one implementation behind every provider.

``agenerate`` / ``astream`` normalise input (prompt, messages, system prompt,
media, tools, parameters merged over the instance defaults), apply the
structured-output strategy and call the provider's two hooks, ``_complete``
and ``_stream``. The blocking twins (``generate``, ``stream``, ...) are
generated from this file by ``scripts/gen_sync.py`` into ``_sync.py``.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, TypeVar, overload

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import GENERATION_PARAMS, Timeout, validate_params
from abstractcore.core.errors import ConfigurationError
from abstractcore.core.retry import RetryConfig
from abstractcore.core.types import (
    ContentPart,
    GenerateResponse,
    Message,
    StreamChunk,
    TextPart,
    ToolSpec,
)
from abstractcore.features.tools.schema import normalise_tool_choice, to_tool_specs

__all__ = ["AsyncProvider", "Request"]

T = TypeVar("T")

#: Options every provider accepts at construction (besides generation parameters).
BASE_OPTIONS = frozenset({"retry_config"})


@dataclass(slots=True)
class Request:
    """A normalised request, as the provider hooks receive it."""

    model: str
    messages: list[Message]
    params: dict[str, Any] = field(default_factory=dict)
    timeout: Timeout = field(default_factory=Timeout)
    tools: list[ToolSpec] = field(default_factory=list)
    #: "auto", "none", "required" or the name of the tool to call (validated against ``tools``).
    tool_choice: str | None = None
    json_schema: dict[str, Any] | None = None

    @property
    def system(self) -> str | None:
        """The system prompt (all system messages joined), or None."""
        texts = [m.text for m in self.messages if m.role == "system"]
        return "\n\n".join(texts) if texts else None


class AsyncProvider(abc.ABC):
    """Base of every provider. Subclasses write ``_complete`` and ``_stream``."""

    #: The name ``create_llm`` knows this provider by.
    name: ClassVar[str] = ""
    #: The model used when none is given (None: a model is required).
    default_model: ClassVar[str | None] = None
    #: Generation parameters this provider accepts beyond the common ones.
    extra_params: ClassVar[frozenset[str]] = frozenset()
    #: Construction options this provider accepts (api_key, base_url, ...).
    options: ClassVar[frozenset[str]] = frozenset()
    capabilities: Capabilities = Capabilities()

    def __init__(self, model: str | None = None, **config: Any) -> None:
        params = self._params = GENERATION_PARAMS | self.extra_params
        validate_params(config, params | BASE_OPTIONS | self.options, where=f"create_llm({self.name!r})")
        model = model or self.default_model
        if not model:
            raise ConfigurationError(f"{self.name} needs a model: create_llm({self.name!r}, model='...').")
        if not isinstance(model, str):
            raise ConfigurationError(f"model must be a string; got {model!r}.")
        self.model: str = model
        retry = config.pop("retry_config", None)
        if retry is not None and not isinstance(retry, RetryConfig):
            raise ConfigurationError(f"retry_config must be a RetryConfig(...); got {type(retry).__name__}.")
        self.retry_config: RetryConfig = retry or RetryConfig()
        self.timeout: Timeout = Timeout.of(config.pop("timeout")) if "timeout" in config else Timeout()
        self.defaults: dict[str, Any] = {k: config.pop(k) for k in list(config) if k in params}
        self._configure(config)

    def _configure(self, options: dict[str, Any]) -> None:
        """Take the construction options (``self.options``). Called once by ``__init__``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"

    # -- public API (the sync twins are generated from these) -------------------

    @overload
    async def agenerate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message | dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        response_model: None = None,
        media: Sequence[Any] | None = None,
        stream: Literal[False] = False,
        **params: Any,
    ) -> GenerateResponse: ...

    @overload
    async def agenerate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message | dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        response_model: type[T],
        media: Sequence[Any] | None = None,
        stream: Literal[False] = False,
        **params: Any,
    ) -> T: ...

    @overload
    async def agenerate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message | dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        response_model: None = None,
        media: Sequence[Any] | None = None,
        stream: Literal[True],
        **params: Any,
    ) -> AsyncIterator[StreamChunk]: ...

    @overload
    async def agenerate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message | dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        response_model: type[Any] | None = None,
        media: Sequence[Any] | None = None,
        stream: bool = False,
        **params: Any,
    ) -> Any: ...

    async def agenerate(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message | dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        response_model: type[Any] | None = None,
        media: Sequence[Any] | None = None,
        stream: bool = False,
        **params: Any,
    ) -> Any:
        """Generate an answer.

        Give a ``prompt`` or ``messages`` (dicts or ``Message``), optionally a
        ``system_prompt``, ``media`` (image paths, bytes or URLs) and ``tools``
        (functions, dicts or ``ToolSpec``). Parameters such as
        ``temperature``, ``max_tokens``, ``top_p``, ``stop``, ``seed`` and
        ``timeout`` override the defaults given to ``create_llm`` for this call.

        Returns a ``GenerateResponse``; an instance of ``response_model`` when
        one is given; an async iterator of ``StreamChunk`` when ``stream=True``.
        """
        if stream:
            if response_model is not None:
                raise ConfigurationError("response_model cannot be combined with stream=True.")
            return self.astream(
                prompt,
                messages=messages,
                system_prompt=system_prompt,
                tools=tools,
                tool_choice=tool_choice,
                media=media,
                **params,
            )
        request = self._build_request(prompt, messages, system_prompt, tools, tool_choice, media, params)
        if response_model is None:
            return await self._complete(request)
        from abstractcore.features.structured import instruction_for, parse_structured, schema_for

        schema = schema_for(response_model)
        request = self._with_schema(request, schema, instruction_for(schema))
        response = await self._complete(request)
        return parse_structured(response_model, response.content, finish_reason=response.finish_reason)

    def astream(
        self,
        prompt: str | None = None,
        *,
        messages: Sequence[Message | dict[str, Any]] | None = None,
        system_prompt: str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        media: Sequence[Any] | None = None,
        **params: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Stream an answer as ``StreamChunk``s (text deltas; usage on the last chunk).

        Takes the same arguments as ``agenerate``. Bad arguments raise here,
        before anything is sent. Leaving the loop early closes the stream.
        """
        request = self._build_request(prompt, messages, system_prompt, tools, tool_choice, media, params)
        return self._stream(request)

    async def aunload(self) -> None:
        """Free what this provider holds (local weights, pooled connections).

        The object stays usable: the next call reloads or reconnects.
        """
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections of the event loop this runs on.

        The blocking ``close()`` runs on the background loop of the blocking
        methods, so it closes theirs; ``await aclose()`` closes your loop's.
        """

    async def alist_models(self) -> list[str]:
        """The models this provider offers."""
        return [self.model]

    # -- provider hooks ---------------------------------------------------------

    @abc.abstractmethod
    async def _complete(self, request: Request) -> GenerateResponse:
        """Send ``request`` and return the whole answer."""

    @abc.abstractmethod
    def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        """Send ``request`` and yield the answer as it is produced."""

    def _with_schema(self, request: Request, schema: dict[str, Any], instruction: str) -> Request:
        """Ask for JSON matching ``schema``. Default: an instruction in the system prompt,
        plus ``request.json_schema`` for providers that constrain decoding natively."""
        messages = [Message("system", instruction), *request.messages]
        return replace(request, messages=messages, json_schema=schema)

    # -- normalisation ----------------------------------------------------------

    def _build_request(
        self,
        prompt: str | None,
        messages: Sequence[Message | dict[str, Any]] | None,
        system_prompt: str | None,
        tools: Sequence[Any] | None,
        tool_choice: str | dict[str, Any] | None,
        media: Sequence[Any] | None,
        params: dict[str, Any],
    ) -> Request:
        if params:
            validate_params(params, self._params, where=f"{self.name}.generate()")
            merged = {**self.defaults, **{k: v for k, v in params.items() if v is not None}}
        else:
            merged = dict(self.defaults)
        merged.pop("timeout", None)
        # an explicit timeout=None on the call means "no limit", not "the default"
        timeout = Timeout.of(params["timeout"]) if "timeout" in params else self.timeout
        built = _messages(prompt, messages, system_prompt, media)
        specs = to_tool_specs(tools) if tools else []
        return Request(
            model=self.model,
            messages=built,
            params=merged,
            timeout=timeout,
            tools=specs,
            tool_choice=normalise_tool_choice(tool_choice, specs),
        )


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
