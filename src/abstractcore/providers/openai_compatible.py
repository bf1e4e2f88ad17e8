"""The OpenAI Chat Completions wire format, for any server that speaks it.

``OpenAICompatibleProvider`` ("openai-compatible") needs a ``base_url``;
OpenAI, LM Studio, vLLM and OpenRouter are small subclasses of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from abstractcore.core.errors import (
    BadRequestError,
    ProviderConnectionError,
    ProviderStatusError,
    ResponseFormatError,
)
from abstractcore.core.types import (
    GenerateResponse,
    StreamChunk,
    Usage,
)
from abstractcore.openai_format import (
    message_to_openai,
    parse_tool_calls,
    tool_call_deltas,
    tool_choice_to_openai,
    tools_to_openai,
)
from abstractcore.providers._http import HttpProvider
from abstractcore.providers.base import Request
from abstractcore.tools.accumulator import ToolCallAccumulator
from abstractcore.transport.errors import ErrorDetail, ErrorMapper
from abstractcore.transport.sse import SSEDecoder, parse_json_data

__all__ = ["OpenAICompatibleProvider", "with_v1"]

_PARAMS = ("temperature", "max_tokens", "top_p", "top_k", "stop", "seed", "presence_penalty",
           "frequency_penalty")


def with_v1(url: str) -> str:
    """``url`` ending in ``/v1`` (servers documented as host:port accept both forms)."""
    return url if url.rstrip("/").endswith("/v1") else f"{url.rstrip('/')}/v1"


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage.of(data.get("prompt_tokens"), data.get("completion_tokens"))


class OpenAICompatibleErrors(ErrorMapper):
    """OpenAI's error codes, plus servers that report a rejected request as a 500."""

    def refine(self, detail: ErrorDetail, default: type[ProviderStatusError]) -> type[ProviderStatusError]:
        # llama-cpp-python answers a request its schema rejects with HTTP 500 and a pydantic
        # "validation error" on ('body', ...): retrying it can never succeed.
        if detail.status == 500 and "validation error" in detail.message and "'body'" in detail.message:
            return BadRequestError
        return super().refine(detail, default)


class OpenAICompatibleProvider(HttpProvider):
    """Any server speaking OpenAI's Chat Completions API (``base_url`` required)."""

    name: ClassVar[str] = "openai-compatible"
    default_model: ClassVar[str | None] = "default"
    extra_params: ClassVar[frozenset[str]] = frozenset({"top_k"})
    base_url_env: ClassVar[str | None] = "OPENAI_COMPATIBLE_BASE_URL"
    api_key_env: ClassVar[str | None] = "OPENAI_COMPATIBLE_API_KEY"
    #: How ``response_model`` asks for JSON: "json_schema" (OpenAI) or "json_object" with a
    #: schema (llama.cpp's server, which answers json_schema with HTTP 500).
    json_mode: ClassVar[str] = "json_schema"

    def _configure(self, options: dict[str, Any]) -> None:
        super()._configure(options)
        self._json_mode = self.json_mode

    def _error_mapper(self) -> ErrorMapper:
        return OpenAICompatibleErrors(self.name, key_env=self.api_key_env)

    # -- request ----------------------------------------------------------------

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model,
                                "messages": [message_to_openai(m) for m in request.messages]}
        for name in _PARAMS:
            value = request.params.get(name)
            if value is not None:
                body[name] = value
        if request.tools:
            body["tools"] = tools_to_openai(request.tools)
            if request.tool_choice is not None:
                body["tool_choice"] = tool_choice_to_openai(request.tool_choice)
        if request.json_schema is not None:
            if self._json_mode == "json_object":
                body["response_format"] = {"type": "json_object", "schema": request.json_schema}
            else:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "response", "schema": request.json_schema}}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    # -- hooks ------------------------------------------------------------------

    async def _complete(self, request: Request) -> GenerateResponse:
        try:
            data = await self._http.request_json("POST", "chat/completions",
                                                 self._body(request, stream=False),
                                                 model=request.model, timeout=request.timeout)
        except BadRequestError as exc:
            # A server that rejects OpenAI's json_schema response_format (llama.cpp's) gets
            # {"type": "json_object", "schema": ...} instead, for this and later calls.
            if (request.json_schema is None or self._json_mode != "json_schema"
                    or "response_format" not in str(exc.body)):
                raise
            self._json_mode = "json_object"
            data = await self._http.request_json("POST", "chat/completions",
                                                 self._body(request, stream=False),
                                                 model=request.model, timeout=request.timeout)
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError):
            raise ResponseFormatError(
                f"{self.name} reply has no choices: {str(data)[:200]!r}",
                provider=self.name, model=request.model) from None
        return GenerateResponse(
            content=message.get("content") or "", tool_calls=parse_tool_calls(message.get("tool_calls")),
            usage=_usage(data.get("usage")), finish_reason=choice.get("finish_reason"),
            model=data.get("model") or request.model, provider=self.name, raw=data)

    async def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        decoder = SSEDecoder()
        tools = ToolCallAccumulator()
        finish_reason: str | None = None
        usage: Usage | None = None
        model = request.model
        done = False
        async with self._http.stream("POST", "chat/completions", self._body(request, stream=True),
                                     model=request.model, timeout=request.timeout) as chunks:
            async for raw in chunks:
                for event in decoder.feed(raw):
                    if event.data.strip() == "[DONE]":
                        done = True
                        break
                    data = parse_json_data(event.data)
                    if not isinstance(data, dict):
                        raise ResponseFormatError(f"unexpected stream event {event.data[:200]!r}",
                                                  provider=self.name, model=request.model)
                    if "error" in data:
                        raise self._http.errors.to_error(
                            int(data.get("status") or 500), {}, event.data.encode(),
                            model=request.model)
                    model = data.get("model") or model
                    if data.get("usage"):
                        usage = _usage(data["usage"])
                    for choice in data.get("choices") or []:
                        delta = choice.get("delta") or {}
                        for tool_delta in tool_call_deltas(delta):
                            tools.add(tool_delta)
                            yield StreamChunk(tool_call_deltas=[tool_delta], model=model)
                        if delta.get("content"):
                            yield StreamChunk(content=delta["content"], model=model, raw=data)
                        finish_reason = choice.get("finish_reason") or finish_reason
                if done:
                    break
        if not done and finish_reason is None:
            raise ProviderConnectionError(
                f"{self.name} stream ended before the answer was complete.",
                provider=self.name, model=request.model)
        yield StreamChunk(finish_reason=finish_reason or "stop", usage=usage,
                          tool_calls=tools.finish(), model=model)

    async def alist_models(self) -> list[str]:
        """Model ids from ``GET /models``."""
        data = await self._http.request_json("GET", "models", model=self.model)
        return [str(m.get("id")) for m in (data.get("data") or []) if isinstance(m, dict)]
