"""Ollama's native API: ``POST /api/chat`` (NDJSON stream), ``GET /api/tags``.

Translation only: ``Message``s become Ollama chat messages (images as base64
``images``, tool calls with object ``arguments``), generation parameters go
to ``options`` (``max_tokens`` is ``num_predict``), ``keep_alive`` and
``format`` (a JSON schema for ``response_model``) are top-level. Each NDJSON
line of a stream becomes a ``StreamChunk``; the ``done`` line carries the
finish reason and the token counts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import Timeout
from abstractcore.core.errors import (
    ConfigurationError,
    ModelNotFoundError,
    ProviderConnectionError,
    ResponseFormatError,
    ServerError,
)
from abstractcore.core.types import (
    EmbeddingResponse,
    GenerateResponse,
    ImagePart,
    Message,
    StreamChunk,
    ToolCall,
    Usage,
)
from abstractcore.features.media import base64_image
from abstractcore.features.openai_chat import tools_to_openai
from abstractcore.features.structured import StructuredMode
from abstractcore.features.tools.accumulator import as_arguments
from abstractcore.providers.base import Request
from abstractcore.providers.http import HttpProvider
from abstractcore.transport.error_mapping import ErrorRule, ErrorTable

__all__ = ["OLLAMA_ERRORS", "OllamaProvider", "to_ollama_message", "to_ollama_messages"]

logger = logging.getLogger("abstractcore.ollama")

DEFAULT_PORT = 11434
#: Common parameter -> name in Ollama's ``options``.
_OPTIONS = {
    "temperature": "temperature",
    "max_tokens": "num_predict",
    "top_p": "top_p",
    "seed": "seed",
    "num_ctx": "num_ctx",
    "top_k": "top_k",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}


#: Ollama answers ``{"error": "..."}``; a missing model says how to pull it.
OLLAMA_ERRORS: ErrorTable = (
    ErrorRule(
        ModelNotFoundError,
        message=r"model.*not found|not found.*model",
        advice="Download it with `ollama pull {model}` (`ollama list` shows the models this server has).",
    ),
    ErrorRule(
        ServerError,
        status=(500, 502, 503, 504),
        advice="Ollama failed. Requests are retried automatically (retry_config=); a stream "
        "that had started is not. Try again; `ollama ps` and the server log show "
        "what the runner is doing.",
    ),
)


def _host_url(value: str) -> str:
    """``OLLAMA_HOST``-style values (``host``, ``host:port``, ``:port``) as a URL."""
    value = value.strip()
    if "://" in value:
        return value
    if value.startswith(":"):
        value = "127.0.0.1" + value
    host, slash, path = value.partition("/")
    has_port = "]:" in host if host.startswith("[") else ":" in host
    if not has_port:
        host = f"{host}:{DEFAULT_PORT}"
    return f"http://{host}{slash}{path}"


def _image_data(part: ImagePart) -> str:
    encoded = base64_image(part)
    if encoded is None:
        raise ConfigurationError(
            "Ollama takes images as bytes: pass a file path, bytes or a base64 data: URL "
            f"in media=, not a link ({(part.url or '')[:80]!r})."
        )
    return encoded[1]


def to_ollama_message(message: Message) -> dict[str, Any]:
    """One ``Message`` in Ollama's chat form."""
    out: dict[str, Any] = {"role": message.role, "content": message.text}
    if not isinstance(message.content, str):
        images = [_image_data(p) for p in message.content if isinstance(p, ImagePart)]
        if images:
            out["images"] = images
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": call.id, "function": {"index": index, "name": call.name, "arguments": call.arguments}}
            for index, call in enumerate(message.tool_calls)
        ]
    if message.role == "tool":
        if message.name:
            out["tool_name"] = message.name
        if message.tool_call_id:
            out["tool_call_id"] = message.tool_call_id
    return out


def to_ollama_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The ``messages`` array; a tool result is named after the call it answers (``tool_name``)."""
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    out: list[dict[str, Any]] = []
    for message in messages:
        item = to_ollama_message(message)
        if message.role == "tool" and "tool_name" not in item and message.tool_call_id in names:
            item["tool_name"] = names[message.tool_call_id]
        out.append(item)
    return out


def _tool_calls(raw: Any) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for position, call in enumerate(raw or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        index = function.get("index", position)
        calls.append(
            ToolCall(
                id=str(call.get("id") or f"call_{index}"),
                name=str(function.get("name") or ""),
                arguments=as_arguments(function.get("arguments")),
            )
        )
    return calls


def _usage(data: dict[str, Any]) -> Usage | None:
    if data.get("prompt_eval_count") is None and data.get("eval_count") is None:
        return None
    return Usage.of(data.get("prompt_eval_count"), data.get("eval_count"))


def _finish_reason(data: dict[str, Any], had_tool_calls: bool) -> str:
    if had_tool_calls:
        return "tool_calls"
    reason = data.get("done_reason")
    return str(reason) if reason else "stop"


def _is_error_line(line: Any) -> bool:
    return not isinstance(line, dict) or "error" in line  # Ollama reports a failure mid-stream so


def _is_done(line: Any) -> bool:
    return bool(line.get("done"))


class OllamaProvider(HttpProvider):
    """``create_llm("ollama", model="qwen2.5-coder:7b")``; server from ``OLLAMA_HOST``.

    ``base_url`` / ``OLLAMA_HOST`` may be a URL or Ollama's ``host:port`` form
    (default ``http://localhost:11434``). Extra parameters: ``num_ctx``,
    ``top_k`` (in ``options``) and ``keep_alive`` (how long the server keeps
    the model loaded). ``unload()`` asks the server to free the model now.
    Ollama has no ``tool_choice``: tools are offered and the model decides
    (``tool_choice="none"`` leaves them out).
    """

    name: ClassVar[str] = "ollama"
    extra_params: ClassVar[frozenset[str]] = frozenset({"num_ctx", "top_k", "keep_alive"})
    base_url_env: ClassVar[str | None] = "OLLAMA_HOST"
    default_base_url: ClassVar[str | None] = f"http://localhost:{DEFAULT_PORT}"
    default_scheme: ClassVar[str | None] = "http"
    # tools and images depend on the model (Ollama answers 400 for a model without them)
    capabilities: Capabilities = Capabilities(structured_output=True, stream_usage=True, local=True)
    error_table: ClassVar[ErrorTable] = OLLAMA_ERRORS
    connect_hint: ClassVar[str | None] = (
        "Is Ollama running? Start it with `ollama serve`, or point base_url= / OLLAMA_HOST at "
        "the machine that runs it"
    )

    # -- configuration ------------------------------------------------------------

    def _structured_modes(self, request: Request) -> tuple[StructuredMode, ...]:
        """``format`` = the JSON schema (constrained by Ollama's grammar), or the prompt.

        (No "tool": Ollama has no ``tool_choice``, so a call cannot be forced.)
        """
        return ("native", "prompt")

    def _parse_base_url(self, raw: str) -> str:
        return _host_url(raw)

    def _normalise_base_url(self, url: str) -> str:
        for suffix in ("/api", "/v1"):  # the native API lives under /api; /v1 is the OpenAI one
            if url.endswith(suffix):
                return url[: -len(suffix)]
        return url

    # -- request ------------------------------------------------------------------

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        params = request.params
        body: dict[str, Any] = {
            "model": request.model,
            "messages": to_ollama_messages(request.messages),
            "stream": stream,
        }
        options: dict[str, Any] = {}
        for name, option in _OPTIONS.items():
            if params.get(name) is not None:
                options[option] = params[name]
        if params.get("stop"):
            stop = params["stop"]
            options["stop"] = [stop] if isinstance(stop, str) else list(stop)
        if options:
            body["options"] = options
        if params.get("keep_alive") is not None:
            body["keep_alive"] = params["keep_alive"]
        if request.tools and request.tool_choice != "none":
            body["tools"] = tools_to_openai(request.tools)
        if request.json_schema is not None:
            body["format"] = request.json_schema
        return body

    # -- hooks --------------------------------------------------------------------

    async def _complete(self, request: Request) -> GenerateResponse:
        data = await self._http.request_json(
            "POST",
            "api/chat",
            self._body(request, stream=False),
            model=request.model,
            timeout=request.timeout,
        )
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise ResponseFormatError(
                f"{self.name} reply has no message: {str(data)[:200]!r}",
                provider=self.name,
                model=request.model,
            )
        message = data["message"]
        calls = _tool_calls(message.get("tool_calls"))
        return GenerateResponse(
            content=str(message.get("content") or ""),
            tool_calls=calls,
            usage=_usage(data),
            finish_reason=_finish_reason(data, bool(calls)),
            model=data.get("model") or request.model,
            provider=self.name,
            raw=data,
        )

    async def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        had_calls = False
        final: dict[str, Any] = {}
        events = self._http.events(
            "api/chat",
            self._body(request, stream=True),
            model=request.model,
            timeout=request.timeout,
            framing="ndjson",
            is_error=_is_error_line,
            is_last=_is_done,
            end_name="its done line",
        )
        try:
            async for batch in events:
                for line in batch:
                    message = line.get("message") or {}
                    calls = _tool_calls(message.get("tool_calls"))
                    had_calls = had_calls or bool(calls)
                    if message.get("content") or calls:
                        yield StreamChunk(
                            content=str(message.get("content") or ""),
                            tool_calls=calls,
                            model=line.get("model") or request.model,
                            raw=line,
                        )
                    if line.get("done"):
                        final = line
        finally:
            await events.aclose()
        yield StreamChunk(
            finish_reason=_finish_reason(final, had_calls),
            usage=_usage(final),
            model=final.get("model") or request.model,
        )

    # -- lifecycle ----------------------------------------------------------------

    async def aunload(self) -> None:
        """Ask the server to unload the model now (``keep_alive: 0``), then close the pool.

        Nothing to do when the server is down or never had the model. The
        object stays usable: the next call loads the model again.
        """
        try:
            await self._http.request_json(
                "POST", "api/chat", {"model": self.model, "messages": [], "keep_alive": 0}, model=self.model
            )
        except (ProviderConnectionError, ModelNotFoundError) as exc:
            logger.debug("ollama unload of %s: nothing to unload (%s)", self.model, type(exc).__name__)
        finally:
            await self.aclose()

    async def _embed(
        self, texts: list[str], *, dimensions: int | None, timeout: Timeout
    ) -> EmbeddingResponse:
        """``POST /api/embed`` (Ollama normalises the vectors), in batches."""
        vectors: list[list[float]] = []
        usage = Usage()
        for start in range(0, len(texts), 256):
            body: dict[str, Any] = {"model": self.model, "input": texts[start : start + 256]}
            if dimensions is not None:
                body["dimensions"] = dimensions
            data = await self._http.request_json("POST", "api/embed", body, model=self.model, timeout=timeout)
            rows = data.get("embeddings") if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise ResponseFormatError(
                    f"{self.name} embed reply has no embeddings: {str(data)[:200]!r}",
                    provider=self.name,
                    model=self.model,
                )
            vectors += [[float(x) for x in row] for row in rows]
            usage = usage + Usage.of(data.get("prompt_eval_count"), 0)
        return EmbeddingResponse(vectors, usage, self.model, self.name)

    async def _fetch_capabilities(self) -> Capabilities:
        """From ``POST /api/show``: the model's ``capabilities`` (tools, vision, embedding) and context."""
        data = await self._http.request_json("POST", "api/show", {"model": self.model}, model=self.model)
        listed = data.get("capabilities") if isinstance(data, dict) else None
        info = data.get("model_info") if isinstance(data, dict) else None
        context = next((v for k, v in (info or {}).items() if k.endswith(".context_length")), None)
        if not isinstance(listed, list):
            return self.capabilities.merged(context_window=context, source="server")
        return self.capabilities.merged(
            tools="tools" in listed,
            vision="vision" in listed,
            embeddings="embedding" in listed,
            context_window=context,
            source="server",
        )

    async def alist_models(self) -> list[str]:
        """Model names from ``GET /api/tags``."""
        data = await self._http.request_json("GET", "api/tags", model=self.model)
        models = data.get("models") if isinstance(data, dict) else None
        return [
            str(m.get("name") or m.get("model"))
            for m in (models or [])
            if isinstance(m, dict) and (m.get("name") or m.get("model"))
        ]
