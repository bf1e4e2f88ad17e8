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

from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import quote

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthExceededError,
    ModelNotFoundError,
    PermissionDeniedError,
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
from abstractcore.features.hosted_models import hosted_capabilities
from abstractcore.features.media import base64_image
from abstractcore.features.structured import StructuredMode
from abstractcore.features.tools.accumulator import ToolCallAccumulator, as_arguments
from abstractcore.providers.base import Request
from abstractcore.providers.http import HttpProvider
from abstractcore.transport.error_mapping import ErrorRule, ErrorTable

__all__ = ["ANTHROPIC_ERRORS", "AnthropicProvider", "finish_reason", "to_anthropic_messages"]

#: The API version this module speaks (sent as ``anthropic-version``).
API_VERSION = "2023-06-01"
#: ``max_tokens`` is required by the Messages API; this is sent when the caller gives none.
DEFAULT_MAX_TOKENS = 4096
#: Models with native JSON output (``output_format``, beta header below); others get a forced tool.
NATIVE_JSON_MODELS = ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1", "claude-opus-4-5")
STRUCTURED_OUTPUTS_BETA = "structured-outputs-2025-11-13"

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_CONTEXT = r"prompt is too long|exceed context limit|context window|too many total text bytes"
_OVERLOADED = (
    "Anthropic is temporarily overloaded. Requests are retried automatically (raise "
    "retry_config=RetryConfig(max_attempts=...)); a stream that had started is not: "
    "try again in a moment."
)

#: Anthropic's error ``type`` -> class (the status alone cannot tell e.g. 529 "overloaded" from
#: 500), the same for an HTTP reply and for an ``error`` event inside a stream.
ANTHROPIC_ERRORS: ErrorTable = (
    ErrorRule(
        ContextLengthExceededError, type=("invalid_request_error", "request_too_large"), message=_CONTEXT
    ),
    ErrorRule(BadRequestError, type=("invalid_request_error", "request_too_large")),
    ErrorRule(AuthenticationError, type="authentication_error"),
    ErrorRule(
        PermissionDeniedError,
        type="billing_error",
        advice="Check the billing settings and credit balance of your Anthropic account.",
    ),
    ErrorRule(PermissionDeniedError, type="permission_error"),
    ErrorRule(
        ModelNotFoundError,
        type="not_found_error",
        message=r"model",
        advice="Check the model name {model!r} (e.g. 'claude-sonnet-4-5' or "
        "'claude-3-5-haiku-latest'); list_models() shows the models your key can use.",
    ),
    ErrorRule(RateLimitError, type="rate_limit_error"),
    ErrorRule(ServerError, type="overloaded_error", advice=_OVERLOADED),
    ErrorRule(ServerError, type=("api_error", "timeout_error")),
)


def finish_reason(stop_reason: str | None) -> str | None:
    """Anthropic's ``stop_reason`` in the common vocabulary (stop, length, tool_calls, ...)."""
    if stop_reason is None:
        return None
    return _STOP_REASONS.get(stop_reason, stop_reason)


# -- request translation ----------------------------------------------------------


def _image_block(part: ImagePart) -> dict[str, Any]:
    encoded = base64_image(part)
    if encoded is None:
        return {"type": "image", "source": {"type": "url", "url": part.url or ""}}
    mime, data = encoded
    return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}


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
        blocks += [
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
            for call in message.tool_calls
        ]
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
        simple = role == "user" and isinstance(message.content, str) and message.role == "user"
        out.append({"role": role, "content": message.content if simple else blocks})
    return out


def _tool_choice(choice: str) -> dict[str, Any]:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def _stop_sequences(stop: Any) -> list[str]:
    return [stop] if isinstance(stop, str) else list(stop)


def _is_error_event(data: Any) -> bool:
    return not isinstance(data, dict) or data.get("type") == "error"


def _is_message_stop(data: Any) -> bool:
    return isinstance(data, dict) and data.get("type") == "message_stop"


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
        usage = (
            Usage.of(self.input_tokens, self.output_tokens)
            if self.input_tokens is not None or self.output_tokens is not None
            else None
        )
        return StreamChunk(
            finish_reason=finish_reason(self.stop_reason) or "stop",
            usage=usage,
            tool_calls=self._tools.finish(),
            model=self.model,
        )


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
    key_required_hosts: ClassVar[tuple[str, ...]] = ("anthropic.com",)
    key_example: ClassVar[str] = "sk-ant-..."
    display_name: ClassVar[str] = "Anthropic"
    api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    base_url_env: ClassVar[str | None] = "ANTHROPIC_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://api.anthropic.com"
    capabilities: Capabilities = Capabilities(
        tools=True, structured_output=True, vision=True, stream_usage=True
    )
    error_table: ClassVar[ErrorTable] = ANTHROPIC_ERRORS

    # -- configuration ------------------------------------------------------------

    def _normalise_base_url(self, url: str) -> str:
        return url[:-3] if url.endswith("/v1") else url

    def _default_headers(self) -> dict[str, str]:
        return {"anthropic-version": API_VERSION}

    def _auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

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
                {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "input_schema": dict(t.parameters),
                }
                for t in request.tools
            ]
            if request.tool_choice is not None:
                body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.structured_mode == "native" and request.output is not None:
            body["output_format"] = {"type": "json_schema", "schema": request.output.strict_schema}
        if stream:
            body["stream"] = True
        return body

    async def _fetch_capabilities(self) -> Capabilities:
        """From the table of hosted models (the Models API does not say what a model can do)."""
        return hosted_capabilities("anthropic", self.model, self.capabilities)

    def _structured_modes(self, request: Request) -> tuple[StructuredMode, ...]:
        """Native JSON output on the models that have it (and a schema it takes), else a forced tool."""
        native = request.model.startswith(NATIVE_JSON_MODELS) and (
            request.output is None or request.output.strict_schema is not None
        )
        return ("native", "tool", "prompt") if native else ("tool", "prompt")

    def _request_headers(self, request: Request) -> dict[str, str] | None:
        return {"anthropic-beta": STRUCTURED_OUTPUTS_BETA} if request.structured_mode == "native" else None

    # -- reply --------------------------------------------------------------------

    def _response(self, data: Any, request: Request) -> GenerateResponse:
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise ResponseFormatError(
                f"{self.name} reply has no content: {str(data)[:200]!r}",
                provider=self.name,
                model=request.model,
            )
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in data["content"]:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(str(block.get("text") or ""))
            elif block.get("type") == "tool_use":
                calls.append(
                    ToolCall(
                        id=str(block.get("id") or f"call_{len(calls)}"),
                        name=str(block.get("name") or ""),
                        arguments=as_arguments(block.get("input")),
                    )
                )
        reason = finish_reason(data.get("stop_reason"))
        usage = data.get("usage")
        return GenerateResponse(
            content="".join(texts),
            tool_calls=calls,
            usage=Usage.of(usage.get("input_tokens"), usage.get("output_tokens"))
            if isinstance(usage, dict)
            else None,
            finish_reason=reason,
            model=data.get("model") or request.model,
            provider=self.name,
            raw=data,
        )

    # -- hooks --------------------------------------------------------------------

    async def _complete(self, request: Request) -> GenerateResponse:
        data = await self._http.request_json(
            "POST",
            "v1/messages",
            self._body(request, stream=False),
            model=request.model,
            timeout=request.timeout,
            headers=self._request_headers(request),
        )
        return self._response(data, request)

    async def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        state = _StreamState(request.model)
        events = self._http.events(
            "v1/messages",
            self._body(request, stream=True),
            model=request.model,
            timeout=request.timeout,
            is_error=_is_error_event,
            is_last=_is_message_stop,
            end_name="the message_stop event",
            headers=self._request_headers(request),
        )
        try:
            async for batch in events:
                for data in batch:
                    for chunk in state.on_event(data):
                        yield chunk
        finally:
            await events.aclose()
        yield state.last_chunk()

    async def alist_models(self) -> list[str]:
        """Model ids from ``GET /v1/models``."""
        ids: list[str] = []
        path = "v1/models?limit=1000"
        while True:
            data = await self._http.request_json("GET", path, model=self.model)
            if not isinstance(data, dict):
                raise ResponseFormatError(
                    f"{self.name} model list is not an object: {str(data)[:200]!r}",
                    provider=self.name,
                    model=self.model,
                )
            ids += [str(m["id"]) for m in data.get("data") or [] if isinstance(m, dict) and m.get("id")]
            if not data.get("has_more") or not data.get("last_id"):
                return ids
            path = f"v1/models?limit=1000&after_id={quote(str(data['last_id']))}"
