"""The OpenAI Chat Completions wire format, for any server that speaks it.

``OpenAICompatibleProvider`` ("openai-compatible") needs a ``base_url``;
OpenAI, LM Studio, vLLM and OpenRouter are small subclasses of it. This
module translates: ``Request`` -> request body, reply / stream event ->
``GenerateResponse`` / ``StreamChunk``, plus the error table of the servers
behind it (llama.cpp's report errors as text only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from abstractcore.core.capabilities import Capabilities
from abstractcore.core.config import AUTOMATIC_CACHE_PARAMS, Timeout
from abstractcore.core.errors import (
    BadRequestError,
    ContextLengthExceededError,
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    ResponseFormatError,
)
from abstractcore.core.types import EmbeddingResponse, GenerateResponse, StreamChunk, Usage
from abstractcore.providers.base import Request
from abstractcore.providers.http import HttpProvider
from abstractcore.transport.error_mapping import ErrorRule, ErrorTable
from abstractcore.wire.openai_chat import ChunkReader, reply_to_response, request_body, response_format
from abstractcore.wire.openai_chat.reasoning import Dialect, reasoning_controls

if TYPE_CHECKING:
    from abstractcore.features.structured import StructuredMode

__all__ = ["LLAMA_CPP_ERRORS", "REASONING_PARAMS", "OpenAICompatibleProvider", "with_v1"]

#: The one reasoning control, accepted by every provider of the family (mapped by its dialect).
REASONING_PARAMS = frozenset({"reasoning_effort", "thinking_budget", "reasoning"})

#: llama.cpp's servers (llama-server, also inside Ollama and LM Studio, and llama-cpp-python's)
#: report errors as text only; each pattern is tested against a body captured from them.
LLAMA_CPP_ERRORS: ErrorTable = (
    # llama-server: 400 {"type": "exceed_context_size_error", "message": "request (6030 tokens)
    # exceeds the available context size (4096 tokens), try increasing it", "n_ctx": 4096, ...}
    ErrorRule(ContextLengthExceededError, type="exceed_context_size_error"),
    ErrorRule(ContextLengthExceededError, message=r"exceeds the available context size"),
    # llama-server without --embeddings: 501 "This server does not support embeddings. Start it with
    # `--embeddings`" (type not_supported_error): a request the server will never take
    ErrorRule(
        BadRequestError,
        type="not_supported_error",
        advice="This server cannot do that as started; its message says how to start it.",
    ),
    # llama-server: 500 "image input is not supported - hint: ... you may need to provide the mmproj"
    ErrorRule(
        BadRequestError,
        message=r"image input is not supported",
        advice="This model takes no images (it has no vision projector): send text only, use "
        "a vision model, or start llama-server with --mmproj.",
    ),
    # llama-cpp-python's server answers a body its schema rejects with HTTP 500 and a pydantic
    # "validation error" on ('body', ...): retrying it can never succeed.
    ErrorRule(BadRequestError, status=500, message=r"validation error.*'body'"),
)


log = logging.getLogger("abstractcore.providers")

_PROBE_TIMEOUT = Timeout(connect=5, read=10, total=10)
#: Prompt counts kept per provider (the server counts a stream's prompt before it starts, the
#: stream counts it again at its end when the back end reported none: the second is free).
_COUNTS_KEPT = 32
#: Inputs per embeddings request (OpenAI's limit is 2,048).
EMBED_BATCH = 256


def llama_server_capabilities(props: dict[str, Any], defaults: Capabilities) -> Capabilities:
    """Capabilities from llama-server's ``GET /props`` (its chat template's caps, modalities, n_ctx)."""
    template = props.get("chat_template_caps") or {}
    modalities = props.get("modalities") or {}
    settings = props.get("default_generation_settings") or {}
    tools = template.get("supports_tools")
    return defaults.merged(
        tools=bool(tools) if tools is not None else None,
        vision=bool(modalities.get("vision")) if "vision" in modalities else None,
        context_window=settings.get("n_ctx"),
        stream_usage=True,
        source="server",
    )


def with_v1(url: str) -> str:
    """``url`` ending in ``/v1`` (servers documented as host:port accept both forms)."""
    return url if url.rstrip("/").endswith("/v1") else f"{url.rstrip('/')}/v1"


class OpenAICompatibleProvider(HttpProvider):
    """Any server speaking OpenAI's Chat Completions API (``base_url`` required)."""

    name: ClassVar[str] = "openai-compatible"
    default_model: ClassVar[str | None] = "default"
    extra_params: ClassVar[frozenset[str]] = frozenset({"top_k"}) | REASONING_PARAMS | AUTOMATIC_CACHE_PARAMS
    base_url_env: ClassVar[str | None] = "OPENAI_COMPATIBLE_BASE_URL"
    api_key_env: ClassVar[str | None] = "OPENAI_COMPATIBLE_API_KEY"
    error_table: ClassVar[ErrorTable] = LLAMA_CPP_ERRORS
    # images and usage in streams depend on the server and its model (llama-cpp-python's sends none)
    capabilities: Capabilities = Capabilities(tools=True, structured_output=True, prompt_caching=True)
    #: How ``response_model`` asks for JSON: "json_schema" (OpenAI) or "json_object" with a
    #: schema (llama.cpp's server, which answers json_schema with HTTP 500).
    json_mode: ClassVar[str] = "json_schema"
    #: How the server takes ``reasoning_effort`` / ``thinking_budget`` / ``reasoning``: vLLM and
    #: llama.cpp's servers take ``reasoning_effort`` and the template's ``enable_thinking``.
    reasoning_dialect: ClassVar[Dialect] = "server"
    #: Whether ``<think>`` at the start of the content is thinking (servers that pass it through).
    think_tags: ClassVar[bool] = True
    #: Whether a tool-call turn's thinking goes back as ``reasoning_content`` (DeepSeek's thinking
    #: mode requires it; llama-server and vLLM read it).
    echo_reasoning: ClassVar[bool] = True
    #: The body field of ``max_tokens`` (OpenAI's reasoning models take only max_completion_tokens).
    max_tokens_field: ClassVar[str] = "max_tokens"

    def _configure(self, options: dict[str, Any]) -> None:
        super()._configure(options)
        self._json_mode = self.json_mode
        self._max_tokens_field = self.max_tokens_field
        self._counts: OrderedDict[bytes, int] = OrderedDict()  # body digest -> prompt tokens
        self._counts_lock = threading.Lock()  # the provider serves several event loops
        self._templates: bool | None = None  # whether the server has /apply-template (llama-server)
        self._llama_cpp_python: bool | None = None  # whether it has /extras/tokenize/count
        self._bos_tokens = 0  # what that endpoint counts for no text

    # -- request ----------------------------------------------------------------

    def _bind(self, request: Request) -> Request:
        """The bound request, its reasoning control checked before anything is sent."""
        bound = super()._bind(request)
        reasoning_controls(bound.params, self.reasoning_dialect, self.name)
        return bound

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        output = request.output
        native = output is not None and request.structured_mode == "native"
        return request_body(
            request.model,
            request.messages,
            request.params,
            tools=request.tools,
            tool_choice=request.tool_choice,
            answer_format=response_format(output, self._json_mode) if native and output else None,
            stream=stream,
            controls=reasoning_controls(request.params, self.reasoning_dialect, self.name),
            reasoning_source=self.name if self.echo_reasoning else None,
            max_tokens_field=self._max_tokens_field,
        )

    def _structured_modes(self, request: Request) -> tuple[StructuredMode, ...]:
        """``response_format`` json_schema (strict where the schema allows), a forced tool, or the prompt."""
        return ("native", "tool", "prompt")

    # -- reply ------------------------------------------------------------------

    def _response(self, data: Any, request: Request) -> GenerateResponse:
        return reply_to_response(
            data,
            provider=self.name,
            model=request.model,
            max_tokens=request.params.get("max_tokens"),
            think_tags=self.think_tags,
        )

    # -- hooks ------------------------------------------------------------------

    async def _complete(self, request: Request) -> GenerateResponse:
        try:
            data = await self._http.request_json(
                "POST",
                "chat/completions",
                self._body(request, stream=False),
                model=request.model,
                timeout=request.timeout,
                extras=self._extras(request),
            )
        except BadRequestError as exc:
            if not self._refused_json_schema(request, exc):
                raise
            data = await self._http.request_json(
                "POST",
                "chat/completions",
                self._body(request, stream=False),
                model=request.model,
                timeout=request.timeout,
                extras=self._extras(request),
            )
        return self._response(data, request)

    def _refused_json_schema(self, request: Request, exc: BadRequestError) -> bool:
        """True when ``exc`` is a server refusing OpenAI's json_schema ``response_format``
        (llama-cpp-python's); it then gets ``{"type": "json_object", "schema": ...}`` instead,
        for this and later calls."""
        if request.json_schema is None or self._json_mode != "json_schema":
            return False
        if "response_format" not in str(exc.body):
            return False
        self._json_mode = "json_object"
        return True

    async def _stream(self, request: Request) -> AsyncIterator[StreamChunk]:
        chunks = self._stream_once(request)
        started = False
        try:
            try:
                async for chunk in chunks:
                    started = True
                    yield chunk
                return
            except BadRequestError as exc:  # refused before any event: asked again in json_object form
                if started or not self._refused_json_schema(request, exc):
                    raise
        finally:
            await chunks.aclose()
        again = self._stream_once(request)
        try:
            async for chunk in again:
                yield chunk
        finally:
            await again.aclose()

    async def _stream_once(self, request: Request) -> AsyncGenerator[StreamChunk, None]:
        reader = ChunkReader(request.model, provider=self.name, think_tags=self.think_tags)
        seen_any = False
        events = self._http.events(
            "chat/completions",
            self._body(request, stream=True),
            model=request.model,
            timeout=request.timeout,
            extras=self._extras(request),
            done_marker="[DONE]",
            require_end=False,
        )
        try:
            async for batch in events:
                seen_any = True
                for data in batch:
                    for chunk in reader.on_event(data):
                        yield chunk
        finally:
            await events.aclose()
        if reader.finish_reason is None:
            if not seen_any:
                # llama-server answers a prompt longer than its context with an empty stream
                raise await self._empty_stream_error(request)
            raise ProviderConnectionError(
                f"{self.name} stream ended before the answer was complete. Try again.",
                provider=self.name,
                model=request.model,
            )
        usage = reader.usage
        if usage is None:  # llama-cpp-python's server reports none, even with include_usage
            usage = await self._counted_usage(request, reader.tokens, reader.text)
        yield reader.last_chunk(usage, request.params.get("max_tokens"))

    # -- counting, for servers that report no usage in streams ---------------------------

    async def _counted_usage(self, request: Request, events: int, text: str) -> Usage | None:
        """Usage counted by the server's tokenizer: the prompt as ``_count_tokens`` counts it, the
        answer as its text tokenizes, or as many tokens as it came in events where that is more
        (an event holds one token, or the several that end a character split across tokens: the
        text then tokenizes to what was generated)."""
        try:
            prompt = await self._count_tokens(request, ask=True)
            answer = await self._count_text(text, request.model) if text else 0
        except ProviderError as exc:  # the answer is in: without a count it keeps usage=None
            log.warning("%s: counting the tokens of a stream failed: %s", self.name, exc)
            return None
        if prompt is None:
            return None
        return Usage.of(prompt, max(events, answer or 0), counted=True)

    async def _count_tokens(self, request: Request, *, ask: bool = False) -> int | None:
        """The prompt tokens of ``request`` as the server counts them.

        llama-server renders the chat template (``/apply-template``) and tokenizes the result
        (``/tokenize``): exact, nothing generated. llama-cpp-python's server tokenizes text only
        (``/extras/tokenize``) and does not show its template, so it is asked the request itself
        unstreamed with ``max_tokens=1`` (its prompt cache makes that one token of work, not a
        second prefill). ``ask`` allows that on any server (one that sent a stream without usage),
        else only on llama-cpp-python's. None: this server cannot count.
        """
        body = self._body(request, stream=False)
        key = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest()
        with self._counts_lock:
            known = self._counts.get(key)
        if known is not None:
            return known
        count = await self._count_by_template(body, request.model)
        if count is None and (ask or await self._is_llama_cpp_python(request.model)):
            count = await self._count_by_asking(body, request)
        if count is not None:
            with self._counts_lock:
                self._counts[key] = count
                while len(self._counts) > _COUNTS_KEPT:
                    self._counts.popitem(last=False)
        return count

    async def _post_root(self, path: str, body: dict[str, Any], model: str) -> Any:
        """POST to a server endpoint outside ``/v1``; None when the server has no such endpoint."""
        try:
            return await self._http.request_json(
                "POST", f"{self._root}/{path}", body, model=model, timeout=_PROBE_TIMEOUT
            )
        except ProviderStatusError as exc:
            if exc.status_code in (404, 405, 501):
                return None
            raise
        except ResponseFormatError:  # not JSON: not the endpoint meant
            return None

    async def _count_by_template(self, body: dict[str, Any], model: str) -> int | None:
        """llama-server's count: its chat template applied, the prompt tokenized as its chat
        endpoint does (special tokens added and parsed)."""
        if self._templates is False:
            return None
        rendered = await self._post_root("apply-template", body, model)
        prompt = rendered.get("prompt") if isinstance(rendered, dict) else None
        found = None
        if isinstance(prompt, str):
            reply = await self._post_root(
                "tokenize", {"content": prompt, "add_special": True, "parse_special": True}, model
            )
            found = reply.get("tokens") if isinstance(reply, dict) else None
        self._templates = isinstance(found, list)
        return len(found) if isinstance(found, list) else None

    async def _is_llama_cpp_python(self, model: str) -> bool:
        """Whether the server is llama-cpp-python's (it has ``/extras/tokenize/count``)."""
        if self._llama_cpp_python is None:
            reply = await self._post_root("extras/tokenize/count", {"input": ""}, model)
            count = reply.get("count") if isinstance(reply, dict) else None
            self._bos_tokens = count if isinstance(count, int) else 0
            self._llama_cpp_python = isinstance(count, int)
        return self._llama_cpp_python

    async def _count_by_asking(self, body: dict[str, Any], request: Request) -> int | None:
        one_token = {**body, self._max_tokens_field: 1}
        data = await self._http.request_json(
            "POST", "chat/completions", one_token, model=request.model, timeout=request.timeout
        )
        usage = data.get("usage") if isinstance(data, dict) else None
        count = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        return count if isinstance(count, int) else None

    async def _count_text(self, text: str, model: str) -> int | None:
        """The tokens of plain ``text`` by the server's tokenizer (None: it has no endpoint)."""
        if self._templates:
            reply = await self._post_root("tokenize", {"content": text}, model)
            found = reply.get("tokens") if isinstance(reply, dict) else None
            return len(found) if isinstance(found, list) else None
        if await self._is_llama_cpp_python(model):
            reply = await self._post_root("extras/tokenize/count", {"input": text}, model)
            count = reply.get("count") if isinstance(reply, dict) else None
            # that endpoint adds the model's BOS where the model has one: no part of an answer
            return count - self._bos_tokens if isinstance(count, int) else None
        return None

    async def _empty_stream_error(self, request: Request) -> Exception:
        """Why a stream ended with no event at all: the same request unstreamed tells."""
        try:
            await self._http.request_json(
                "POST",
                "chat/completions",
                self._body(request, stream=False),
                model=request.model,
                timeout=request.timeout,
                extras=self._extras(request),
            )
        except Exception as exc:  # the typed error the server gives the plain request
            return exc
        return ProviderConnectionError(
            f"{self.name} sent an empty stream (no event, no [DONE]). Try again.",
            provider=self.name,
            model=request.model,
        )

    # -- embeddings -------------------------------------------------------------

    async def _embed(
        self, texts: list[str], *, dimensions: int | None, timeout: Timeout
    ) -> EmbeddingResponse:
        """``POST /embeddings`` (float vectors), in batches of ``EMBED_BATCH`` inputs."""
        vectors: list[list[float]] = []
        usage = Usage()
        model = self.model
        for start in range(0, len(texts), EMBED_BATCH):
            body: dict[str, Any] = {
                "model": self.model,
                "input": texts[start : start + EMBED_BATCH],
                "encoding_format": "float",
            }
            if dimensions is not None:
                body["dimensions"] = dimensions
            data = await self._http.request_json(
                "POST", "embeddings", body, model=self.model, timeout=timeout
            )
            try:
                rows = sorted(data["data"], key=lambda row: row.get("index", 0))
                vectors += [[float(x) for x in row["embedding"]] for row in rows]
            except (KeyError, TypeError, ValueError):
                raise ResponseFormatError(
                    f"{self.name} embeddings reply is malformed: {str(data)[:200]!r}",
                    provider=self.name,
                    model=self.model,
                ) from None
            model = data.get("model") or model
            if isinstance(data.get("usage"), dict):
                usage = usage + Usage.of(data["usage"].get("prompt_tokens"), 0)
        return EmbeddingResponse(vectors, usage, model, self.name)

    # -- capabilities -----------------------------------------------------------

    @property
    def _root(self) -> str:
        return self.base_url.removesuffix("/v1")

    async def _probe(self, url_or_path: str) -> Any:
        """A GET that tells something about the server, or None when it has no such endpoint."""
        try:
            return await self._http.request_json("GET", url_or_path, model=self.model, timeout=_PROBE_TIMEOUT)
        except (ProviderStatusError, ResponseFormatError):
            return None

    async def _fetch_capabilities(self) -> Capabilities:
        """llama.cpp's ``/props`` (what the loaded model and its chat template can do), else the
        model's entry in ``/models`` (vLLM's ``max_model_len``, llama-server's ``meta.n_ctx``)."""
        props = await self._probe(f"{self._root}/props")
        if isinstance(props, dict) and "chat_template_caps" in props:
            return llama_server_capabilities(props, self.capabilities)
        return await self._models_entry_capabilities()

    async def _models_entry_capabilities(self) -> Capabilities:
        data = await self._probe("models")
        entries = data.get("data") if isinstance(data, dict) else None
        for entry in entries or []:
            if isinstance(entry, dict) and entry.get("id") == self.model:
                found = entry.get("meta")
                meta: dict[str, Any] = found if isinstance(found, dict) else {}
                context = entry.get("max_model_len") or entry.get("context_length") or meta.get("n_ctx")
                return self.capabilities.merged(context_window=context, source="server")
        return self.capabilities

    async def alist_models(self) -> list[str]:
        """Model ids from ``GET /models``."""
        data = await self._http.request_json("GET", "models", model=self.model)
        return [str(m.get("id")) for m in (data.get("data") or []) if isinstance(m, dict)]
