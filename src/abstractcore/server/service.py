"""The server's work, independent of the HTTP framework: check a request, route it, answer it.

An adapter (``app.py`` for aiohttp) calls ``check`` with the method, path and headers before it
reads the body (CORS preflight, unknown route, the server's key), then ``handle`` with the body.
A ``Reply`` is a status, headers and either a body or ``stream``, an async iterator of
server-sent-event bytes; closing ``stream`` closes the back end's stream, which stops the
generation (in-process models stop within a token and are free at once).

A chat request is parsed by its wire module (``wire/openai_chat``, ``wire/anthropic_messages``)
into a ``ParsedCall`` and built once into a ``Request`` (``_request_of``), which goes to the
LLM's request-level entry points (``pipeline_of(llm)._send`` / ``_send_stream`` / ``_count``):
the same pipeline as ``agenerate``, a router's included, without going back up through the
keyword API. A JSON answer (``response_format`` / ``output_config``) is the library's own
structured output asked for as text (``Request.output_as_text``), so each back end gets its best
constraint; see ``_request_of``.

The first chunk of a stream is awaited before the reply is made, so a back end that fails at
once (unknown model, 429, 5xx, a bad argument) gives a real HTTP status, not an error event.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from abstractcore.core.errors import ConfigurationError, StructuredOutputError
from abstractcore.core.types import GenerateResponse, Message, StreamChunk
from abstractcore.features.request import Request, build_request
from abstractcore.features.structured import OutputSpec, instruction_for
from abstractcore.run import pipeline_of
from abstractcore.server.backends import Backends
from abstractcore.server.config import ServerConfig
from abstractcore.server.embeddings import embedding_list, parse_embeddings
from abstractcore.server.errors import ApiError, anthropic_body, from_exception, openai_body
from abstractcore.server.responses import ResponseStore, kept_after
from abstractcore.wire import anthropic_messages, openai_chat, openai_responses
from abstractcore.wire.encoding import JSON_HEADERS, SSE_HEADERS, dumps, new_id
from abstractcore.wire.fields import ParsedCall, parse_json_object

if TYPE_CHECKING:
    from abstractcore import LLM

__all__ = ["Reply", "Service"]

log = logging.getLogger("abstractcore.server")

Headers = Mapping[str, str]
_Handler = Callable[[Headers, bytes, str], Awaitable["Reply"]]
_CORS_METHODS = "GET, POST, OPTIONS"


@dataclass(slots=True)
class Reply:
    """An answer: a JSON ``body``, or an SSE ``stream`` (close it when the client goes away)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: AsyncGenerator[bytes, None] | None = None


class _Stream(Protocol):
    def start(self) -> bytes: ...
    def chunk(self, chunk: StreamChunk) -> bytes: ...
    def end(self) -> bytes: ...
    def error(self, body: dict[str, Any]) -> bytes: ...


async def _cut_as_length(chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[StreamChunk]:
    """``chunks``, a forced call cut by ``max_tokens`` ending as the APIs end it: finish "length"
    (the library raises ``StructuredOutputError`` for it after the last text)."""
    try:
        async for chunk in chunks:
            yield chunk
    except StructuredOutputError as exc:
        if exc.finish_reason != "length":
            raise
        yield StreamChunk(finish_reason="length", usage=exc.usage)
    finally:
        await _aclose(chunks)


async def _aclose(chunks: AsyncIterator[Any]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


async def _events(
    stream: _Stream,
    first: StreamChunk | None,
    chunks: AsyncIterator[StreamChunk],
    error_body: Callable[[ApiError], dict[str, Any]],
) -> AsyncGenerator[bytes, None]:
    try:
        head = stream.start()
        yield head + stream.chunk(first) if first is not None else head
        async for chunk in chunks:
            data = stream.chunk(chunk)
            if data:
                yield data
        yield stream.end()
    except Exception as exc:  # the stream has begun: the error becomes an event (never a traceback)
        error = from_exception(exc)
        log.warning("stream failed after it began: %s", error.message)
        yield stream.error(error_body(error))
    finally:
        await _aclose(chunks)


def _request_of(parsed: ParsedCall) -> Request:
    """The ``Request`` of a parsed chat request, built once.

    A JSON answer without tools in the request is ``output`` (``OutputSpec.from_schema``, a
    schema whose root is not an object wrapped as ``{"value": ...}`` and unwrapped again) with
    ``output_as_text``: the back end's own structured-output strategy applies its best
    constraint (a grammar in process, ``response_format`` json_schema on OpenAI-compatible
    servers, ``format`` on Ollama, a forced tool on Anthropic), repairs and re-asks, and the
    answer comes back as the JSON's text. A request that also offers ``tools`` gets the schema
    as a system instruction instead and nothing else: the model may still call its tools, and
    the answer is not constrained (a constraint would forbid the calls)."""
    answer = parsed.answer
    messages = parsed.messages
    if answer is not None and parsed.tools:
        messages = [Message("system", instruction_for(answer.schema)), *messages]
    tools = parsed.tools or None
    request = build_request(
        messages=messages,
        tools=tools,
        tool_choice=parsed.tool_choice if tools else None,
        **parsed.params,
    )
    if answer is None or tools:
        return request
    output = OutputSpec.from_schema(answer.schema, answer.name, wrap=True)
    return replace(request, output=output, output_as_text=True)


async def _input_tokens(llm: LLM, request: Request) -> int | None:
    """The input tokens of ``request`` as its back end counts them, before it answers (None when
    it cannot: the answer's usage has them)."""
    try:
        return await pipeline_of(llm)._count(request)
    except ConfigurationError:
        return None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {**JSON_HEADERS, **(headers or {})}, dumps(body))


def _anthropic_path(path: str) -> bool:
    return path.startswith(("/v1/messages", "/messages"))


class Service:
    """Answers the OpenAI and Anthropic endpoints for the models of ``backends``."""

    def __init__(self, backends: Backends, config: ServerConfig | None = None) -> None:
        config = config or ServerConfig()
        self.backends = backends
        self.config = config
        key = config.api_key
        self._key = hashlib.sha256(key.reveal().encode()).digest() if key else None
        self._origins = frozenset(config.cors_origins)
        #: The responses kept for ``previous_response_id`` (``store`` true, the default).
        self.responses = ResponseStore(config.responses_store_size, config.responses_store_ttl)
        self._routes: dict[tuple[str, str], _Handler] = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/messages"): self._messages,
            ("POST", "/v1/responses"): self._responses,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("GET", "/v1/models"): self._models,
        }

    # -- before the body -----------------------------------------------------------------

    def route(self, method: str, path: str) -> tuple[str, _Handler | None]:
        """The canonical path (``/v1`` added when a client left it out) and its handler."""
        path = path.rstrip("/") or "/"
        handler = self._routes.get((method, path))
        if handler is None and not path.startswith("/v1/"):
            v1 = "/v1" + path
            handler = self._routes.get((method, v1))
            if handler is not None:
                return v1, handler
        if handler is None and method == "GET" and path.startswith("/v1/models/"):
            return path, self._model
        if handler is None and method == "GET" and path.startswith("/v1/responses/"):
            return path, self._response
        return path, handler

    def check(self, method: str, path: str, headers: Headers) -> Reply | None:
        """A reply to send without reading the body (preflight, health, unknown route, wrong
        key), or None to go on with ``handle``."""
        if method == "OPTIONS" and self._origins:
            return self._preflight(headers)
        if path == "/health" and method in ("GET", "HEAD"):
            return _json({"status": "ok"})
        canonical, handler = self.route(method, path)
        if handler is None:
            known = any(p == canonical for _, p in self._routes) or canonical.startswith(
                ("/v1/models/", "/v1/responses/")
            )
            status, what = (
                (405, f"{method} is not allowed on {canonical}") if known else (404, f"No route {path}")
            )
            return self.error(path, ApiError(status, what, kind="not_found"), headers)
        if self._key is not None and not self._authorised(headers):
            error = ApiError(
                401,
                "Invalid or missing API key: send the server's key as 'Authorization: Bearer <key>' "
                "or 'x-api-key: <key>'.",
                kind="authentication",
            )
            return self.error(path, error, headers)
        return None

    def _authorised(self, headers: Headers) -> bool:
        given = headers.get("x-api-key")
        if given is None:
            auth = headers.get("authorization") or ""
            scheme, _, token = auth.partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else None
        if not given or self._key is None:
            return False
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._key)

    def _cors_headers(self, headers: Headers) -> dict[str, str]:
        origin = headers.get("origin")
        if not origin or not self._origins or not ({origin, "*"} & self._origins):
            return {}
        return {"access-control-allow-origin": origin, "vary": "Origin"}

    def _preflight(self, headers: Headers) -> Reply:
        allow = self._cors_headers(headers)
        if not allow:
            return Reply(403, {"vary": "Origin"})
        asked = headers.get("access-control-request-headers") or "authorization, content-type, x-api-key"
        return Reply(
            204,
            {
                **allow,
                "access-control-allow-methods": _CORS_METHODS,
                "access-control-allow-headers": asked,
                "access-control-max-age": "600",
            },
        )

    def error(self, path: str, error: ApiError, headers: Headers | None = None) -> Reply:
        """``error`` in the shape of the API ``path`` belongs to (Anthropic's for /v1/messages and
        for a client that sent ``anthropic-version``, OpenAI's otherwise)."""
        extra = {**error.headers(), **(self._cors_headers(headers) if headers else {})}
        if _anthropic_path(path) or (headers is not None and "anthropic-version" in headers):
            request_id = new_id("req_")
            return _json(anthropic_body(error, request_id), error.status, {**extra, "request-id": request_id})
        return _json(openai_body(error), error.status, extra)

    def too_large(self, path: str, headers: Headers) -> Reply:
        """The reply to a body over ``max_request_bytes``."""
        limit = self.config.max_request_bytes
        error = ApiError(
            413, f"The request body is larger than this server's limit ({limit} bytes).", kind="too_large"
        )
        return self.error(path, error, headers)

    # -- with the body ---------------------------------------------------------------------

    async def handle(self, method: str, path: str, headers: Headers, body: bytes) -> Reply:
        """Answer a request that ``check`` let through."""
        canonical, handler = self.route(method, path)
        assert handler is not None, "check() first"
        try:
            reply = await handler(headers, body, canonical)
        except Exception as exc:
            error = from_exception(exc)
            if error.status >= 500:
                log.warning("%s %s failed: %s", method, path, error.message)
            return self.error(canonical, error, headers)
        if self._origins:
            reply.headers.update(self._cors_headers(headers))
        return reply

    async def _generate(self, llm: LLM, request: Request) -> GenerateResponse:
        try:
            response = await pipeline_of(llm)._send(request)
        except StructuredOutputError as exc:  # the client's forced tool call cut by max_tokens
            if exc.finish_reason != "length":
                raise
            response = GenerateResponse(content=exc.raw or "", usage=exc.usage, finish_reason="length")
        assert isinstance(response, GenerateResponse)  # no response_model: a response, text or JSON
        return response

    async def _stream(
        self, llm: LLM, request: Request, stream: _Stream, error_body: Callable[[ApiError], dict[str, Any]]
    ) -> Reply:
        if isinstance(stream, anthropic_messages.MessageStream):  # message_start says the input tokens
            stream.input_tokens = await _input_tokens(llm, request)
        chunks: AsyncIterator[StreamChunk] = _cut_as_length(pipeline_of(llm)._send_stream(request))
        try:
            first: StreamChunk | None = await chunks.__anext__()
        except StopAsyncIteration:
            first = None
        except BaseException:
            await _aclose(chunks)
            raise
        return Reply(200, dict(SSE_HEADERS), stream=_events(stream, first, chunks, error_body))

    async def _chat(self, headers: Headers, body: bytes, path: str) -> Reply:
        fields = parse_json_object(body)
        parsed = openai_chat.parse_chat(fields)
        name, llm = self.backends.resolve(parsed.model)
        request = _request_of(parsed)
        if parsed.stream:
            stream = openai_chat.ChatStream(name, include_usage=openai_chat.include_usage(fields))
            return await self._stream(llm, request, stream, openai_body)
        return _json(openai_chat.completion(name, await self._generate(llm, request)))

    async def _messages(self, headers: Headers, body: bytes, path: str) -> Reply:
        parsed = anthropic_messages.parse_messages(parse_json_object(body))
        name, llm = self.backends.resolve(parsed.model)
        if "cache" not in getattr(pipeline_of(llm), "extra_params", ()):  # caches by itself, or not
            parsed.params = {k: v for k, v in parsed.params.items() if k not in ("cache", "cache_ttl")}
        request = _request_of(parsed)
        request_id = new_id("req_")
        if parsed.stream:
            stream = anthropic_messages.MessageStream(name)
            reply = await self._stream(llm, request, stream, lambda error: anthropic_body(error, request_id))
        else:
            reply = _json(anthropic_messages.message(name, await self._generate(llm, request)))
        reply.headers["request-id"] = request_id
        return reply

    async def _responses(self, headers: Headers, body: bytes, path: str) -> Reply:
        call = openai_responses.parse_responses(parse_json_object(body))
        history = self.responses.conversation(call.previous_response_id)
        name, llm = self.backends.resolve(call.call.model)
        given = call.call.messages
        call.call.messages = call.messages(history)
        request = _request_of(call.call)
        response_id = new_id("resp_")

        def keep(answer: dict[str, Any] | None) -> None:
            if call.store and answer is not None:
                output = openai_responses.conversation_of(answer["output"])
                self.responses.put(response_id, answer, [*history, *given, *output])

        if call.call.stream:
            stream = openai_responses.ResponseStream(response_id, name, call.echo)
            reply = await self._stream(llm, request, stream, openai_body)
            assert reply.stream is not None
            reply.stream = kept_after(reply.stream, lambda: keep(stream.final))
            return reply
        answer = openai_responses.completed(response_id, name, call.echo, await self._generate(llm, request))
        keep(answer)
        return _json(answer)

    async def _response(self, headers: Headers, body: bytes, path: str) -> Reply:
        return _json(self.responses.body(path.removeprefix("/v1/responses/")))

    async def _embeddings(self, headers: Headers, body: bytes, path: str) -> Reply:
        call = parse_embeddings(parse_json_object(body))
        name, llm = self.backends.resolve(call.model)
        response = await llm.aembed(call.texts, dimensions=call.dimensions)
        return _json(embedding_list(name, response, as_base64=call.base64))

    async def _models(self, headers: Headers, body: bytes, path: str) -> Reply:
        listing = self.backends.listing()
        if "anthropic-version" in headers:
            return _json(anthropic_messages.model_list(listing))
        return _json(openai_chat.model_list(listing))

    async def _model(self, headers: Headers, body: bytes, path: str) -> Reply:
        name, _ = self.backends.resolve(path.removeprefix("/v1/models/"))
        entry = next(e for e in self.backends.listing() if e[0] == name)
        if "anthropic-version" in headers:
            return _json(anthropic_messages.model_list([entry])["data"][0])
        return _json(openai_chat.model_list([entry])["data"][0])
