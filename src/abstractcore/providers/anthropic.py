"""Anthropic's Messages API (``POST /v1/messages``), plain and streamed.

Translation only: ``Message``s become Anthropic turns (the system prompt goes
to the top-level ``system``, tool results become ``tool_result`` blocks of a
user turn, images become base64 ``image`` blocks), and the reply, or each
server-sent event of a stream, becomes a ``GenerateResponse`` /
``StreamChunk``. Retries (429, 5xx including 529 "overloaded"), timeouts and
error bodies are handled by the transport; ``AnthropicErrorMapper`` only says
which error ``type`` is which class.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContextLengthExceededError,
    ModelNotFoundError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderStatusError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from abstractcore.core.types import (
    GenerateResponse,
    ImagePart,
    Message,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from abstractcore.providers._http import HttpProvider
from abstractcore.providers.base import Request
from abstractcore.tools.accumulator import ToolCallAccumulator
from abstractcore.transport.errors import ErrorDetail, ErrorMapper
from abstractcore.transport.sse import SSEDecoder, parse_json_data

__all__ = ["AnthropicErrorMapper", "AnthropicProvider", "finish_reason", "to_anthropic_messages"]

#: The API version this module speaks (sent as ``anthropic-version``).
API_VERSION = "2023-06-01"
#: ``max_tokens`` is required by the Messages API; this is sent when the caller gives none.
DEFAULT_MAX_TOKENS = 4096
#: Name of the tool used to get JSON for ``response_model`` (forced with ``tool_choice``).
STRUCTURED_TOOL = "structured_output"

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: Error ``type`` -> class; the HTTP status alone cannot tell e.g. 529 from 500.
_ERROR_TYPES: dict[str, type[ProviderStatusError]] = {
    "invalid_request_error": BadRequestError,
    "request_too_large": BadRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "billing_error": PermissionDeniedError,
    "not_found_error": ModelNotFoundError,
    "rate_limit_error": RateLimitError,
    "overloaded_error": ServerError,
    "api_error": ServerError,
    "timeout_error": ServerError,
}

#: The status an ``error`` event of a stream would have had as an HTTP reply.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_SERVER_ADVICE = ("The provider failed. Requests are retried automatically (see retry_config=); "
                  "a stream that had started is not. Try again later.")
_CONTEXT_MESSAGES = ("prompt is too long", "exceed context limit", "context window",
                     "too many total text bytes")


def finish_reason(stop_reason: str | None) -> str | None:
    """Anthropic's ``stop_reason`` in the common vocabulary (stop, length, tool_calls, ...)."""
    if stop_reason is None:
        return None
    return _STOP_REASONS.get(stop_reason, stop_reason)


class AnthropicErrorMapper(ErrorMapper):
    """Maps Anthropic's ``{"type": "error", "error": {"type", "message"}}`` bodies."""

    def refine(self, detail: ErrorDetail, default: type[ProviderStatusError]) -> type[ProviderStatusError]:
        """The class for the error ``type`` (prompt too long: ``ContextLengthExceededError``)."""
        kind = (detail.type or "").lower()
        message = detail.message.lower()
        if kind in ("invalid_request_error", "request_too_large") and any(
                text in message for text in _CONTEXT_MESSAGES):
            return ContextLengthExceededError
        cls = _ERROR_TYPES.get(kind)
        if cls is not None:
            return cls
        return super().refine(detail, default)

    def advice(self, cls: type[ProviderStatusError], detail: ErrorDetail, model: str | None) -> str:
        """What to do, in Anthropic's terms."""
        kind = (detail.type or "").lower()
        if kind == "overloaded_error":
            return ("Anthropic is temporarily overloaded (HTTP 529). Requests are retried "
                    "automatically (raise retry_config=RetryConfig(max_attempts=...)); "
                    "a stream that had started is not: try again in a moment.")
        if kind == "billing_error":
            return "Check the billing settings and credit balance of your Anthropic account."
        if issubclass(cls, ModelNotFoundError):
            return (f"Check the model name {model!r} (e.g. 'claude-sonnet-4-5' or "
                    "'claude-3-5-haiku-latest'); list_models() shows the models your key can use.")
        if issubclass(cls, ServerError):
            return _SERVER_ADVICE
        return super().advice(cls, detail, model)


# -- request translation ----------------------------------------------------------


def _image_block(part: ImagePart) -> dict[str, Any]:
    if part.data is not None:
        return {"type": "image", "source": {"type": "base64", "media_type": part.mime_type,
                                           "data": base64.b64encode(part.data).decode("ascii")}}
    url = part.url or ""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        mime = header[5:].split(";", 1)[0] or part.mime_type
        if ";base64" not in header:
            raise ConfigurationError("Anthropic takes data: URLs of images only base64-encoded.")
        try:
            base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError("The image data: URL holds invalid base64.") from None
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": payload}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: str | list[TextPart | ImagePart]) -> list[dict[str, Any]]:
    parts = [TextPart(content)] if isinstance(content, str) else content
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            if part.text:  # the API rejects empty text blocks
                blocks.append({"type": "text", "text": part.text})
        else:
            blocks.append(_image_block(part))
    return blocks


def _turn(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id or ""}
        if isinstance(message.content, str):
            result["content"] = message.content
        else:
            result["content"] = _blocks(message.content)
        return "user", [result]
    blocks = _blocks(message.content)
    if message.role == "assistant":
        blocks += [{"type": "tool_use", "id": call.id, "name": call.name,
                    "input": call.arguments} for call in message.tool_calls]
    return message.role, blocks


def to_anthropic_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The ``messages`` array: system turns left out (they go to ``system``), tool results
    as ``tool_result`` blocks of a user turn, consecutive turns of one role merged."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role, blocks = _turn(message)
        if out and out[-1]["role"] == role:
            previous = out[-1]
            if isinstance(previous["content"], str):
                previous["content"] = _blocks(previous["content"])
            content = previous["content"]
            if blocks and blocks[0]["type"] == "tool_result":
                # tool results must come first in the user turn that answers the calls
                at = 0
                while at < len(content) and content[at]["type"] == "tool_result":
                    at += 1
                content[at:at] = blocks
            else:
                content.extend(blocks)
            continue
        if role == "assistant" and not blocks:
            continue  # an empty assistant turn is rejected; it says nothing anyway
        simple = (role == "user" and isinstance(message.content, str) and message.role == "user")
        out.append({"role": role, "content": message.content if simple else blocks})
    return out


def _tool_choice(choice: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(choice, dict):
        function = choice.get("function")
        if choice.get("type") == "function" and isinstance(function, dict):
            return {"type": "tool", "name": function.get("name")}
        return choice
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice in ("required", "any"):
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def _stop_sequences(stop: Any) -> list[str]:
    return [stop] if isinstance(stop, str) else list(stop)


class _StreamState:
    """Turns the events of one Messages stream into ``StreamChunk``s."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.done = False
        self.stop_reason: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self._tools = ToolCallAccumulator()
        self._tool_blocks: dict[int, int] = {}  # content block index -> tool call index

    def on_event(self, data: dict[str, Any]) -> list[StreamChunk]:
        """The chunks one event yields (ping and unknown event types yield none)."""
        kind = data.get("type")
        if kind == "message_start":
            message = data.get("message") or {}
            self.model = message.get("model") or self.model
            self._usage(message.get("usage"))
        elif kind == "content_block_start":
            return self._block_start(int(data.get("index", 0)), data.get("content_block") or {}, data)
        elif kind == "content_block_delta":
            return self._block_delta(int(data.get("index", 0)), data.get("delta") or {}, data)
        elif kind == "content_block_stop":
            if int(data.get("index", 0)) in self._tool_blocks and self._tools:
                # the call is complete with its block: deliver it whole now
                return [StreamChunk(tool_calls=self._tools.finish(), model=self.model, raw=data)]
        elif kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            self._usage(data.get("usage"))
        elif kind == "message_stop":
            self.done = True
        return []

    def _usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            if usage.get("input_tokens") is not None:
                self.input_tokens = int(usage["input_tokens"])
            if usage.get("output_tokens") is not None:
                self.output_tokens = int(usage["output_tokens"])  # cumulative, per the docs

    def _block_start(self, index: int, block: dict[str, Any], data: dict[str, Any]) -> list[StreamChunk]:
        if block.get("type") == "tool_use":
            position = len(self._tool_blocks)
            self._tool_blocks[index] = position
            delta = ToolCallDelta(index=position, id=block.get("id"), name=block.get("name"))
            self._tools.add(delta)
            return [StreamChunk(tool_call_deltas=[delta], model=self.model, raw=data)]
        if block.get("type") == "text" and block.get("text"):
            return [StreamChunk(content=str(block["text"]), model=self.model, raw=data)]
        return []

    def _block_delta(self, index: int, delta: dict[str, Any], data: dict[str, Any]) -> list[StreamChunk]:
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [StreamChunk(content=str(delta["text"]), model=self.model, raw=data)]
        position = self._tool_blocks.get(index)
        if delta.get("type") == "input_json_delta" and position is not None and delta.get("partial_json"):
            fragment = ToolCallDelta(index=position, arguments_fragment=str(delta["partial_json"]))
            self._tools.add(fragment)
            return [StreamChunk(tool_call_deltas=[fragment], model=self.model, raw=data)]
        return []  # thinking, signature and citation deltas carry no answer text

    def last_chunk(self) -> StreamChunk:
        """The closing chunk: finish reason, usage and any call not delivered yet."""
        usage = (Usage.of(self.input_tokens, self.output_tokens)
                 if self.input_tokens is not None or self.output_tokens is not None else None)
        return StreamChunk(finish_reason=finish_reason(self.stop_reason) or "stop", usage=usage,
                           tool_calls=self._tools.finish(), model=self.model)


class AnthropicProvider(HttpProvider):
    """``create_llm("anthropic", model="claude-sonnet-4-5")``; key from ``ANTHROPIC_API_KEY``.

    ``base_url`` (or ``ANTHROPIC_BASE_URL``) may be given with or without the
    trailing ``/v1``; a server other than api.anthropic.com may go without a
    key. ``max_tokens`` defaults to 4096 (the API requires it). ``seed``,
    ``presence_penalty`` and ``frequency_penalty`` do not exist in this API and
    are not sent. ``response_model`` is answered through a forced tool call, so
    the JSON is produced by the tool-input machinery rather than free text.
    """

    name: ClassVar[str] = "anthropic"
    default_model: ClassVar[str | None] = "claude-haiku-4-5"
    extra_params: ClassVar[frozenset[str]] = frozenset({"top_k"})
    api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    base_url_env: ClassVar[str | None] = "ANTHROPIC_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://api.anthropic.com"
    capabilities: Capabilities = Capabilities(vision=True)

    # -- configuration ------------------------------------------------------------

    def _normalise_base_url(self, url: str) -> str:
        return url[:-3] if url.endswith("/v1") else url

    def _check_key(self) -> None:
        host = urlsplit(self.base_url).hostname or ""
        if self._api_key is None and (host == "anthropic.com" or host.endswith(".anthropic.com")):
            raise ConfigurationError(
                "Anthropic needs an API key: set ANTHROPIC_API_KEY or pass "
                "api_key='sk-ant-...'. (A compatible server elsewhere needs base_url=... "
                "and may go without a key.)")

    def _default_headers(self) -> dict[str, str]:
        return {"anthropic-version": API_VERSION}

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def _error_mapper(self) -> ErrorMapper:
        return AnthropicErrorMapper(self.name, key_env=self.api_key_env)

    # -- request ------------------------------------------------------------------

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        params = request.params
        max_tokens = params.get("max_tokens")
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
            "messages": to_anthropic_messages(request.messages),
        }
        system = request.system
        if system:
            body["system"] = system
        for name in ("temperature", "top_p", "top_k"):
            if params.get(name) is not None:
                body[name] = params[name]
        if params.get("stop"):
            body["stop_sequences"] = _stop_sequences(params["stop"])
        if request.tools:
            body["tools"] = [
                {"name": t.name, **({"description": t.description} if t.description else {}),
                 "input_schema": dict(t.parameters)}
                for t in request.tools]
            if request.tool_choice is not None:
                body["tool_choice"] = _tool_choice(request.tool_choice)
        elif request.json_schema is not None:
            body["tools"] = [{"name": STRUCTURED_TOOL,
                              "description": "Give the answer as this JSON object.",
                              "input_schema": request.json_schema}]
            body["tool_choice"] = {"type": "tool", "name": STRUCTURED_TOOL}
        if stream:
            body["stream"] = True
        return body

    def _with_schema(self, request: Request, schema: dict[str, Any], instruction: str) -> Request:
        """Ask for JSON through a forced tool whose ``input_schema`` is ``schema``."""
        if schema.get("type") != "object" or request.tools:
            return super()._with_schema(request, schema, instruction)
        return replace(request, json_schema=schema)

    # -- reply --------------------------------------------------------------------

    def _response(self, data: Any, request: Request) -> GenerateResponse:
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise ResponseFormatError(
                f"{self.name} reply has no content: {str(data)[:200]!r}",
                provider=self.name, model=request.model)
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in data["content"]:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(str(block.get("text") or ""))
            elif block.get("type") == "tool_use":
                arguments = block.get("input")
                calls.append(ToolCall(id=str(block.get("id") or f"call_{len(calls)}"),
                                      name=str(block.get("name") or ""),
                                      arguments=arguments if isinstance(arguments, dict)
                                      else {"value": arguments}))
        reason = finish_reason(data.get("stop_reason"))
        if request.json_schema is not None and not request.tools:
            structured = [c for c in calls if c.name == STRUCTURED_TOOL]
            if structured:
                texts, calls, reason = [structured[0].arguments_json()], [], "stop"
        usage = data.get("usage")
        return GenerateResponse(
            content="".join(texts), tool_calls=calls,
            usage=Usage.of(usage.get("input_tokens"), usage.get("output_tokens"))
            if isinstance(usage, dict) else None,
            finish_reason=reason, model=data.get("model") or request.model,
            provider=self.name, raw=data)

    def _stream_error(self, data: dict[str, Any], raw: str, model: str) -> ProviderStatusError:
        error = data.get("error")
        kind = error.get("type") if isinstance(error, dict) else None
        status = _ERROR_STATUS.get(str(kind), 500)
        return self._http.errors.to_error(status, {}, raw.encode(), model=model)

    # -- hooks --------------------------------------------------------------------

    async def _complete(self, request: Request) -> GenerateResponse:
        data = await self._http.request_json("POST", "v1/messages", self._body(request, stream=False),
                                             model=request.model, timeout=request.timeout)
        return self._response(data, request)

    async def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        decoder = SSEDecoder()
        state = _StreamState(request.model)
        async with self._http.stream("POST", "v1/messages", self._body(request, stream=True),
                                     model=request.model, timeout=request.timeout) as chunks:
            async for raw in chunks:
                for event in decoder.feed(raw):
                    data = parse_json_data(event.data)
                    if not isinstance(data, dict):
                        raise ResponseFormatError(f"unexpected stream event {event.data[:200]!r}",
                                                  provider=self.name, model=request.model)
                    if (data.get("type") or event.event) == "error":
                        raise self._stream_error(data, event.data, request.model)
                    for chunk in state.on_event(data):
                        yield chunk
                    if state.done:
                        break
                if state.done:
                    break
        if not state.done:
            raise ProviderConnectionError(
                f"{self.name} stream ended before message_stop: the answer is incomplete. "
                "Try again.", provider=self.name, model=request.model)
        yield state.last_chunk()

    async def alist_models(self) -> list[str]:
        """Model ids from ``GET /v1/models``."""
        ids: list[str] = []
        path = "v1/models?limit=1000"
        while True:
            data = await self._http.request_json("GET", path, model=self.model)
            if not isinstance(data, dict):
                raise ResponseFormatError(f"{self.name} model list is not an object: {str(data)[:200]!r}",
                                          provider=self.name, model=self.model)
            ids += [str(m["id"]) for m in data.get("data") or [] if isinstance(m, dict) and m.get("id")]
            if not data.get("has_more") or not data.get("last_id"):
                return ids
            path = f"v1/models?limit=1000&after_id={quote(str(data['last_id']))}"
