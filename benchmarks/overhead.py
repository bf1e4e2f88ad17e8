"""What does abstractcore cost on top of a bare HTTP client?

    .venv/bin/python benchmarks/overhead.py            # full run (~2-5 min; aiohttp+abstractcore ~1 min)
    .venv/bin/python benchmarks/overhead.py --quick    # fewer requests (~1-3 min)
    .venv/bin/python benchmarks/overhead.py --profile stream   # or stream-ollama, stream-anthropic,
                                                               # generate, sequential
    PYTHONPATH=/path/to/other/src .venv/bin/python benchmarks/overhead.py   # another abstractcore

Starts a cheap fake server (raw asyncio Protocol, HTTP/1.1 keep-alive,
Content-Length replies, chunked streams, canned bytes) in a *separate process*
on 127.0.0.1 that speaks three wire formats: OpenAI Chat Completions
(``POST /v1/chat/completions``, SSE stream), Ollama (``POST /api/chat``, NDJSON
stream) and Anthropic Messages (``POST /v1/messages``, SSE stream with named
events). It then measures in this process, median of 3 runs (round-robin over
the clients), every client driven the same way and given the same pool size
(100 connections, abstractcore's default):

- microseconds per sequential request, and requests/s with 100 and 500
  requests in flight (N workers gathered, each looping over its share of a
  fixed number of requests), OpenAI format;
- text deltas/s over a 5,000-delta stream in each of the three formats
  (HTTP-chunked, one chunk per SSE event / NDJSON line; the same bytes for
  every client), each abstractcore path against a bare-aiohttp reader of the
  same format and against the bare-aiohttp OpenAI SSE reader; streams are
  measured one at a time with the clients back to back, and the ratios are
  medians of these paired samples;
- the blocking ``llm.generate`` (runs on abstractcore's background loop);
- ``import abstractcore`` time in a fresh interpreter minus ``python -c pass``,
  and which heavy modules that import pulls in.

Clients: bare aiohttp (the reference), bare httpx.AsyncClient, httpx driven
by the ``httpx-aiohttp`` transport, abstractcore ``agenerate``/``astream``
(aiohttp transport, the default on asyncio), abstractcore handed an
``httpx_aiohttp.HttpxAiohttpClient`` and, on request (``--clients``),
abstractcore handed a plain ``httpx.AsyncClient``. Clients whose package is
not installed (httpx-aiohttp) are skipped with a note.

The peers, on request (``--clients default,openai-sdk,anthropic-sdk``; ``benchmarks/peers.py``
says how each is driven): the official ``openai`` SDK (requests, the OpenAI SSE stream and its
blocking client in the sync rows), the official ``anthropic`` SDK (Messages requests and the
Anthropic SSE stream), each also on its aiohttp backend (``openai-sdk+aiohttp``,
``anthropic-sdk+aiohttp``), LiteLLM (``litellm``: requests and all three streams) and any-llm
(``any-llm``). A peer speaks only its own formats ("-" in the others); one that is not
importable is skipped with a line saying so, never an error. After every client is built and
warmed up the heap is frozen (``gc.freeze()``), so no client pays the full collections over
another library's import-time objects.

abstractcore is used through its public API only (``create_llm``,
``agenerate``, ``astream``, ``generate``, ``aclose``, ``close``), so the same
file measures any version put first on ``PYTHONPATH``.

Nothing here imports abstractcore at module level: the server process (spawned)
re-imports this file and must stay light.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

import coldstart
import peers
from coldstart import HEAVY_MODULES, IMPORT_TARGET_MS

HERE = Path(__file__).resolve().parent
MODEL = "fake-model"
API_KEY = "sk-bench-not-a-secret"
PROMPT = "hi"
ANSWER = "Hello! How can I help you today?"
DELTA = "tok "  # content of every stream delta
ANTHROPIC_VERSION = "2023-06-01"

#: Stream wire formats, one per abstractcore stream path. The OpenAI SSE reader of bare
#: aiohttp is the reference of the issue ("bare aiohttp N deltas/s; Ollama path 1.07x ...").
FORMATS = {"openai": "OpenAI SSE", "ollama": "Ollama NDJSON", "anthropic": "Anthropic SSE"}
REFERENCE_FORMAT = "openai"

TARGETS = {  # ratio vs bare aiohttp in the same run
    "c100": ("≥", 0.95),
    "c500": ("≥", 0.8),
    "seq": ("≤", 1.3),
    "stream": ("≥", 0.85),  # the OpenAI SSE path against the bare-aiohttp OpenAI SSE reader
}


# ---------------------------------------------------------------------------
# The fake server (runs in its own process)
# ---------------------------------------------------------------------------


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _reply(body: bytes, content_type: bytes = b"application/json") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nx-request-id: req_bench\r\n" % content_type
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (the servers imitated here send one per event or line)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _stream_head(content_type: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
        b"x-request-id: req_bench\r\nTransfer-Encoding: chunked\r\n\r\n" % content_type
    )


_LAST_CHUNK = b"0\r\n\r\n"


def _openai_completion() -> bytes:
    return _reply(
        _dumps(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": 1700000000,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": ANSWER},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
            }
        )
    )


def _openai_stream(chunks: int) -> bytes:
    """Chat Completions SSE: role chunk, N content deltas, finish chunk, usage chunk, [DONE]."""

    def event(obj: Any) -> bytes:
        return _chunk(b"data: " + _dumps(obj) + b"\n\n")

    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL}
    parts = [_stream_head(b"text/event-stream")]
    parts.append(
        event(
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                ],
            }
        )
    )
    one = event({**base, "choices": [{"index": 0, "delta": {"content": DELTA}, "finish_reason": None}]})
    parts.append(one * chunks)
    parts.append(event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    parts.append(
        event(
            {
                **base,
                "choices": [],
                "usage": {"prompt_tokens": 9, "completion_tokens": chunks, "total_tokens": 9 + chunks},
            }
        )
    )
    parts.append(_chunk(b"data: [DONE]\n\n"))
    parts.append(_LAST_CHUNK)
    return b"".join(parts)


_OLLAMA_CREATED = "2026-11-24T12:00:00.000000000Z"


def _ollama_done(eval_count: int, content: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "created_at": _OLLAMA_CREATED,
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": "stop",
        "total_duration": 1_000_000_000,
        "load_duration": 1_000_000,
        "prompt_eval_count": 9,
        "prompt_eval_duration": 1_000_000,
        "eval_count": eval_count,
        "eval_duration": 900_000_000,
    }


def _ollama_completion() -> bytes:
    return _reply(_dumps(_ollama_done(9, ANSWER)))


def _ollama_stream(chunks: int) -> bytes:
    """Ollama ``/api/chat`` NDJSON: N message lines, then the ``done`` line with the counts."""
    one = _dumps(
        {
            "model": MODEL,
            "created_at": _OLLAMA_CREATED,
            "message": {"role": "assistant", "content": DELTA},
            "done": False,
        }
    )
    done = _dumps(_ollama_done(chunks, ""))
    return (
        _stream_head(b"application/x-ndjson")
        + _chunk(one + b"\n") * chunks
        + _chunk(done + b"\n")
        + _LAST_CHUNK
    )


def _anthropic_completion() -> bytes:
    return _reply(
        _dumps(
            {
                "id": "msg_bench",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [{"type": "text", "text": ANSWER}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 9, "output_tokens": 9},
            }
        )
    )


def _anthropic_stream(chunks: int) -> bytes:
    """Messages API SSE, the documented sequence: message_start, content_block_start,
    N content_block_delta, content_block_stop, message_delta, message_stop."""

    def event(name: bytes, obj: Any) -> bytes:
        return _chunk(b"event: " + name + b"\ndata: " + _dumps(obj) + b"\n\n")

    parts = [_stream_head(b"text/event-stream; charset=utf-8")]
    parts.append(
        event(
            b"message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_bench",
                    "type": "message",
                    "role": "assistant",
                    "model": MODEL,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 9, "output_tokens": 1},
                },
            },
        )
    )
    parts.append(
        event(
            b"content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
    )
    one = event(
        b"content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": DELTA}},
    )
    parts.append(one * chunks)
    parts.append(event(b"content_block_stop", {"type": "content_block_stop", "index": 0}))
    parts.append(
        event(
            b"message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": chunks},
            },
        )
    )
    parts.append(event(b"message_stop", {"type": "message_stop"}))
    parts.append(_LAST_CHUNK)
    return b"".join(parts)


_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
_NEED_LENGTH = b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _FakeServer(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive server. Same canned bytes for every client."""

    #: request path -> (plain reply, stream reply), filled in by ``serve``
    routes: ClassVar[dict[bytes, tuple[bytes, bytes]]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            elif b"\r\ntransfer-encoding:" in head:
                self.transport.write(_NEED_LENGTH)  # no client here sends a chunked body
                self.transport.close()
                return
            total = end + 4 + length
            if len(buffer) < total:
                return
            body = bytes(buffer[end + 4 : total])
            del buffer[:total]
            method, _, rest = head[: head.find(b"\r\n")].partition(b" ")
            route = self.routes.get(rest.partition(b" ")[0]) if method == b"post" else None
            if route is None:
                self.transport.write(_NOT_FOUND)
            elif b'"stream":true' in body or b'"stream": true' in body:
                self.transport.write(route[1])
            else:
                self.transport.write(route[0])


def serve(conn: Any, chunks: int, cpu: int | None) -> None:
    """Server process entry point: bind a free port, report it, serve forever."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass
    _FakeServer.routes = {
        b"/v1/chat/completions": (_openai_completion(), _openai_stream(chunks)),
        b"/api/chat": (_ollama_completion(), _ollama_stream(chunks)),
        b"/v1/messages": (_anthropic_completion(), _anthropic_stream(chunks)),
    }

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_FakeServer, "127.0.0.1", 0, backlog=2048)
        conn.send(server.sockets[0].getsockname()[1])
        conn.close()
        await server.serve_forever()

    asyncio.run(main())


# ---------------------------------------------------------------------------
# Clients: each gives one request, one stream per format, and close
# ---------------------------------------------------------------------------


def _payload(stream: bool) -> dict[str, Any]:
    # Byte-for-byte the body abstractcore's openai-compatible provider builds.
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


_HEADERS = {"authorization": f"Bearer {API_KEY}", "accept": "application/json"}


def _stream_request(fmt: str, root: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """URL, JSON body and headers of a bare client's stream request in format ``fmt``."""
    messages = [{"role": "user", "content": PROMPT}]
    if fmt == "openai":
        return f"{root}/v1/chat/completions", _payload(True), _HEADERS
    if fmt == "ollama":
        return (
            f"{root}/api/chat",
            {"model": MODEL, "messages": messages, "stream": True},
            {"accept": "application/json"},
        )
    return (
        f"{root}/v1/messages",
        {"model": MODEL, "max_tokens": 4096, "messages": messages, "stream": True},
        {"x-api-key": API_KEY, "anthropic-version": ANTHROPIC_VERSION, "accept": "application/json"},
    )


# The readers a bare-client user would write: split the body on "\n", json.loads each data
# line (SSE) or each line (NDJSON), count the text deltas, stop at the format's end marker.


def _sse_deltas(lines: list[bytes]) -> tuple[int, bool]:
    """OpenAI SSE: data lines -> json -> content."""
    n = 0
    for line in lines:
        if not line.startswith(b"data: "):
            continue
        data = line[6:].rstrip(b"\r")
        if data == b"[DONE]":
            return n, True
        obj = json.loads(data)
        for choice in obj["choices"]:
            if choice["delta"].get("content"):
                n += 1
    return n, False


async def _read_openai(chunks: AsyncIterator[bytes]) -> int:
    n, buf = 0, b""
    async for chunk in chunks:
        lines = (buf + chunk).split(b"\n")
        buf = lines.pop()
        got, done = _sse_deltas(lines)
        n += got
        if done:
            break
    return n


async def _read_ollama(chunks: AsyncIterator[bytes]) -> int:
    """Ollama NDJSON: every line is one JSON object; ``done`` ends the stream."""
    n, buf = 0, b""
    async for chunk in chunks:
        lines = (buf + chunk).split(b"\n")
        buf = lines.pop()
        for line in lines:
            if not line:
                continue
            obj = json.loads(line)
            if obj["message"]["content"]:
                n += 1
            if obj["done"]:
                return n
    return n


async def _read_anthropic(chunks: AsyncIterator[bytes]) -> int:
    """Anthropic SSE: json.loads each data line; text_delta events count; message_stop ends."""
    n, buf = 0, b""
    async for chunk in chunks:
        lines = (buf + chunk).split(b"\n")
        buf = lines.pop()
        for line in lines:
            if not line.startswith(b"data: "):
                continue
            obj = json.loads(line[6:])
            kind = obj["type"]
            if kind == "content_block_delta":
                delta = obj["delta"]
                if delta["type"] == "text_delta" and delta["text"]:
                    n += 1
            elif kind == "message_stop":
                return n
    return n


READERS: dict[str, Callable[[AsyncIterator[bytes]], Awaitable[int]]] = {
    "openai": _read_openai,
    "ollama": _read_ollama,
    "anthropic": _read_anthropic,
}


@dataclass
class Client:
    name: str
    request: Callable[[], Awaitable[None]]
    streams: dict[str, Callable[[], Awaitable[int]]]  # the formats it speaks (a peer: not all)
    close: Callable[[], Awaitable[None]]
    note: str = ""
    request_format: str = "openai"  # the anthropic SDK's requests are Messages
    #: awaited inside every timed section, after the last request: work a client defers to the
    #: background (LiteLLM's logging callbacks) is charged to it, not to the next client measured
    settle: Callable[[], Awaitable[None]] | None = None


async def make_aiohttp(root: str, pool: int) -> Client:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=pool))
    endpoint = f"{root}/v1/chat/completions"
    req_body = _payload(False)

    async def request() -> None:
        async with session.post(endpoint, json=req_body, headers=_HEADERS) as resp:
            data = await resp.json()
        assert data["choices"][0]["message"]["content"] == ANSWER

    def stream_of(fmt: str) -> Callable[[], Awaitable[int]]:
        url, body, headers = _stream_request(fmt, root)
        read = READERS[fmt]

        async def stream() -> int:
            async with session.post(url, json=body, headers=headers) as resp:
                return await read(resp.content.iter_any())

        return stream

    return Client(
        "bare aiohttp",
        request,
        {fmt: stream_of(fmt) for fmt in FORMATS},
        session.close,
        f"ClientSession(TCPConnector(limit={pool})), json=, resp.json()",
    )


async def make_httpx(root: str, pool: int, *, aiohttp_transport: bool) -> Client:
    import httpx

    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    if aiohttp_transport:
        from httpx_aiohttp import HttpxAiohttpClient

        client: httpx.AsyncClient = HttpxAiohttpClient(limits=limits, timeout=120)
        name = "httpx + httpx-aiohttp"
    else:
        client = httpx.AsyncClient(limits=limits, timeout=120)
        name = "bare httpx"
    endpoint = f"{root}/v1/chat/completions"
    req_body = _payload(False)

    async def request() -> None:
        resp = await client.post(endpoint, json=req_body, headers=_HEADERS)
        data = resp.json()
        assert data["choices"][0]["message"]["content"] == ANSWER

    def stream_of(fmt: str) -> Callable[[], Awaitable[int]]:
        url, body, headers = _stream_request(fmt, root)
        read = READERS[fmt]

        async def stream() -> int:
            async with client.stream("POST", url, json=body, headers=headers) as resp:
                return await read(resp.aiter_raw())

        return stream

    return Client(
        name,
        request,
        {fmt: stream_of(fmt) for fmt in FORMATS},
        client.aclose,
        f"{type(client).__name__}(Limits({pool}, {pool})), json=, resp.json()",
    )


async def make_abstractcore(root: str, pool: int, *, http_client: str | None = None) -> Client:
    from abstractcore import create_llm

    name = "abstractcore"
    note = "agenerate / astream, default transport (aiohttp on asyncio)"
    user_clients: list[Any] = []

    def options() -> dict[str, Any]:
        if http_client is None:
            return {}
        import httpx

        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        if http_client == "httpx-aiohttp":
            from httpx_aiohttp import HttpxAiohttpClient

            client: httpx.AsyncClient = HttpxAiohttpClient(limits=limits, timeout=None)
        else:
            client = httpx.AsyncClient(limits=limits, timeout=None)
        user_clients.append(client)
        return {"http_client": client}

    if http_client is not None:
        name = f"abstractcore (http_client={http_client})"
        note = "HttpxTransport path, as on trio"
    common: dict[str, Any] = {"model": MODEL, "max_connections": pool}
    llms = {
        "openai": create_llm("openai", base_url=f"{root}/v1", api_key=API_KEY, **common, **options()),
        "ollama": create_llm("ollama", base_url=root, **common, **options()),
        "anthropic": create_llm("anthropic", base_url=root, api_key=API_KEY, **common, **options()),
    }
    openai = llms["openai"]

    async def request() -> None:
        r = await openai.agenerate(PROMPT)
        assert r.content == ANSWER

    def stream_of(llm: Any) -> Callable[[], Awaitable[int]]:
        async def stream() -> int:
            n, last = 0, None
            async for chunk in llm.astream(PROMPT):
                if chunk.content:
                    n += 1
                last = chunk
            assert last is not None and last.usage is not None and last.finish_reason == "stop", last
            return n

        return stream

    async def close() -> None:
        for llm in llms.values():
            await llm.aclose()
        for client in user_clients:
            await client.aclose()

    return Client(name, request, {fmt: stream_of(llm) for fmt, llm in llms.items()}, close, note)


def _canned() -> peers.Canned:
    return peers.Canned(model=MODEL, api_key=API_KEY, prompt=PROMPT, answer=ANSWER)


async def make_peer(name: str, root: str, pool: int) -> Client:
    """An official SDK or LiteLLM / any-llm (``benchmarks/peers.py``) as a client of this harness."""
    p = await peers.FACTORIES[name](root, pool, _canned())
    return Client(p.name, p.request, p.streams, p.close, p.note, p.request_format, p.settle)


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------


@dataclass
class Sizes:
    sequential: int
    concurrent_total: int
    streams_per_run: int
    stream_chunks: int
    import_runs: int
    runs: int = 3


@dataclass
class Result:
    name: str
    note: str = ""
    request_format: str = "openai"
    seq_us: list[float] = field(default_factory=list)
    c100: list[float] = field(default_factory=list)
    c500: list[float] = field(default_factory=list)
    streams: dict[str, list[float]] = field(default_factory=lambda: {fmt: [] for fmt in FORMATS})
    server_busy: list[float] = field(default_factory=list)  # fraction of one CPU during @100

    def median(self, key: str) -> float | None:
        """Median of a measurement; ``stream:<format>`` for the stream rates."""
        values = self.streams[key[7:]] if key.startswith("stream:") else getattr(self, key)
        return statistics.median(values) if values else None


SERVER_PID: int | None = None


def _server_cpu_seconds() -> float | None:
    """CPU time the fake server process has used (Linux /proc), to show it is not the limit."""
    if SERVER_PID is None:
        return None
    try:
        fields = Path(f"/proc/{SERVER_PID}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def _sequential(client: Client, n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        await client.request()
    if client.settle is not None:
        await client.settle()
    return (time.perf_counter() - start) / n * 1e6


async def _concurrent(client: Client, total: int, concurrency: int) -> float:
    per_worker, extra = divmod(total, concurrency)

    async def worker(count: int) -> None:
        for _ in range(count):
            await client.request()

    gc.collect()
    start = time.perf_counter()
    await asyncio.gather(*(worker(per_worker + (i < extra)) for i in range(concurrency)))
    if client.settle is not None:
        await client.settle()
    return total / (time.perf_counter() - start)


async def _streams(client: Client, fmt: str, streams: int, chunks: int) -> float:
    stream = client.streams[fmt]
    gc.collect()
    start = time.perf_counter()
    for _ in range(streams):
        got = await stream()
        if got != chunks:
            raise AssertionError(f"{client.name} {FORMATS[fmt]}: {got} deltas, expected {chunks}")
    if client.settle is not None:
        await client.settle()
    return streams * chunks / (time.perf_counter() - start)


CLIENTS = (
    "aiohttp",
    "httpx",
    "httpx-aiohttp",
    "abstractcore",
    "abstractcore+httpx-aiohttp",
    "abstractcore+httpx",
    *peers.FACTORIES,  # openai-sdk, anthropic-sdk, their +aiohttp variants, litellm, any-llm
)
#: The peers are opt-in (``--clients default,openai-sdk,anthropic-sdk``): at 0.1x bare aiohttp's
#: rates the two SDKs alone would add ~2-3 min to a full run.
DEFAULT_CLIENTS = ("aiohttp", "httpx", "httpx-aiohttp", "abstractcore", "abstractcore+httpx-aiohttp")


async def run_async(root: str, pool: int, sizes: Sizes, names: list[str]) -> list[Result]:
    factories: dict[str, Callable[[], Awaitable[Client]]] = {
        "aiohttp": lambda: make_aiohttp(root, pool),
        "httpx": lambda: make_httpx(root, pool, aiohttp_transport=False),
        "httpx-aiohttp": lambda: make_httpx(root, pool, aiohttp_transport=True),
        "abstractcore": lambda: make_abstractcore(root, pool),
        "abstractcore+httpx-aiohttp": lambda: make_abstractcore(root, pool, http_client="httpx-aiohttp"),
        "abstractcore+httpx": lambda: make_abstractcore(root, pool, http_client="httpx"),
        **{name: functools.partial(make_peer, name, root, pool) for name in peers.FACTORIES},
    }
    clients: list[Client] = []
    try:
        for n in names:
            clients.append(await factories[n]())
        return await _measure(clients, pool, sizes)
    finally:
        for client in clients:
            await client.close()


async def _measure(clients: list[Client], pool: int, sizes: Sizes) -> list[Result]:
    results = [Result(c.name, c.note, c.request_format) for c in clients]
    formats = list(FORMATS)
    # Warm up: open the pool's connections, fill caches; nothing measured.
    for client in clients:
        await _concurrent(client, min(pool, 200) * 2, min(pool, 200))
        for fmt in formats if sizes.streams_per_run else ():
            if fmt in client.streams:
                await client.streams[fmt]()
    # Every import (and the warm-up's lazy ones) is done: freeze what they left on the heap, so
    # the full collections during one client's turn do not rescan another library's modules
    # (LiteLLM leaves ~370k objects, the two SDKs ~180k: a full collection of 0.25-0.4 s here,
    # which made abstractcore measured after LiteLLM 0.44x instead of ~0.95x bare aiohttp).
    gc.collect()
    gc.freeze()
    # Round-robin the runs so drift (thermal, other load) hits every client alike.
    for run in range(sizes.runs):
        for client, result in zip(clients, results):
            result.seq_us.append(await _sequential(client, sizes.sequential))
            cpu0, t0 = _server_cpu_seconds(), time.perf_counter()
            result.c100.append(await _concurrent(client, sizes.concurrent_total, 100))
            cpu1 = _server_cpu_seconds()
            if cpu0 is not None and cpu1 is not None:
                result.server_busy.append((cpu1 - cpu0) / (time.perf_counter() - t0))
            result.c500.append(await _concurrent(client, sizes.concurrent_total, 500))
            print(
                f"  run {run + 1}/{sizes.runs} {client.name:34s} seq {result.seq_us[-1]:6.0f} µs"
                f"  c100 {result.c100[-1]:6.0f}/s  c500 {result.c500[-1]:6.0f}/s",
                flush=True,
            )
    # Streams: one stream per client back to back, so each sample of a client has a sample of
    # the reference taken a fraction of a second before or after it (ratios are paired); the
    # client order alternates and the formats rotate, so none is always measured first.
    for run in range(sizes.runs if sizes.streams_per_run else 0):
        for rep in range(sizes.streams_per_run):
            turn = run * sizes.streams_per_run + rep
            order = formats[turn % len(formats) :] + formats[: turn % len(formats)]
            for fmt in order:
                pairs = list(zip(clients, results))
                for client, result in pairs if turn % 2 == 0 else pairs[::-1]:
                    if fmt in client.streams:  # a peer speaks only its own format(s)
                        result.streams[fmt].append(await _streams(client, fmt, 1, sizes.stream_chunks))
        for result in results:
            rates = "  ".join(
                f"{fmt} {statistics.median(result.streams[fmt][-sizes.streams_per_run :]):7.0f}/s"
                if result.streams[fmt]
                else f"{fmt} {'-':>7s}  "
                for fmt in formats
            )
            print(f"  run {run + 1}/{sizes.runs} {result.name:34s} streams {rates}", flush=True)
    return results


def paired_ratio(values: list[float], reference: list[float]) -> float | None:
    """Median of the per-sample ratios (sample i of both measured back to back)."""
    if not values or len(values) != len(reference):
        return None
    return statistics.median(v / r for v, r in zip(values, reference))


def run_sync_generate(root: str, pool: int, sizes: Sizes) -> list[float]:
    """The blocking face: ``llm.generate`` from a plain thread (runs on the portal loop)."""
    from abstractcore import create_llm

    llm = create_llm("openai", model=MODEL, base_url=f"{root}/v1", api_key=API_KEY, max_connections=pool)

    def request() -> None:
        assert llm.generate(PROMPT).content == ANSWER

    try:
        return _sync_sequential(request, sizes)
    finally:
        llm.close()


def run_sync_openai_sdk(root: str, pool: int, sizes: Sizes) -> list[float]:
    """The openai SDK's blocking ``OpenAI().chat.completions.create``, the same sequential loop."""
    request, close = peers.sync_openai_sdk(root, pool, _canned())
    try:
        return _sync_sequential(request, sizes)
    finally:
        close()


def _sync_sequential(request: Callable[[], None], sizes: Sizes) -> list[float]:
    for _ in range(50):
        request()
    out = []
    for _ in range(sizes.runs):
        gc.collect()
        start = time.perf_counter()
        for _ in range(sizes.sequential):
            request()
        out.append((time.perf_counter() - start) / sizes.sequential * 1e6)
    return out


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _ratio(key: str, value: float | None, ref: float | None) -> tuple[str, bool | None]:
    if value is None or not ref:
        return "-", None
    r = value / ref
    op, target = TARGETS.get(key, ("≥", 0.0))
    ok = r <= target if op == "≤" else r >= target
    return f"{r:.2f}x", ok


_REQUEST_FORMATS = {"openai": "Chat Completions", "ollama": "Ollama", "anthropic": "Anthropic Messages"}


def request_label(name: str, request_format: str) -> str:
    """A requests-table row's name: the client, and its wire format when it is not OpenAI's."""
    if request_format == REFERENCE_FORMAT:
        return name
    return f"{name}: {_REQUEST_FORMATS[request_format]} requests"


def report(
    results: list[Result],
    sync_us: list[float] | None,
    imp: dict[str, Any] | None,
    meta: dict[str, Any],
    first: dict[str, Any] | None = None,
    sync_sdk_us: list[float] | None = None,
) -> str:
    ref = results[0]
    assert ref.name == "bare aiohttp"
    ref_vals = {
        "seq": ref.median("seq_us"),
        "c100": ref.median("c100"),
        "c500": ref.median("c500"),
        **{f"stream:{fmt}": ref.median(f"stream:{fmt}") for fmt in FORMATS},
    }
    reference = ref_vals[f"stream:{REFERENCE_FORMAT}"]
    out = []
    out.append(
        f"### Requests, OpenAI format unless said (median of {meta['runs']} runs; ratio vs bare aiohttp)\n"
    )
    out.append("| client | µs/request seq | req/s @100 | req/s @500 |")
    out.append("|---|---:|---:|---:|")
    for r in results:
        cells = []
        for key, attr in (("seq", "seq_us"), ("c100", "c100"), ("c500", "c500")):
            v = r.median(attr)
            cell = _fmt(v)
            if r is not ref:
                cell += f" ({_ratio(key, v, ref_vals[key])[0]})"
            cells.append(cell)
        out.append(f"| {request_label(r.name, r.request_format)} | " + " | ".join(cells) + " |")
    for label, samples_us in (
        ("abstractcore sync `generate`", sync_us),
        ("openai SDK sync `create`", sync_sdk_us),
    ):
        if samples_us:
            v = statistics.median(samples_us)
            out.append(f"| {label} | {_fmt(v)} ({_ratio('seq', v, ref_vals['seq'])[0]}) | - | - |")
    out.append("")
    samples = meta["runs"] * meta["streams_per_run"]
    out.append(
        f"### Streams: text deltas/s (median of {samples} streams of {meta['stream_chunks']:,} deltas "
        "per client and format, interleaved; in brackets the median of the paired ratios vs bare "
        "aiohttp reading the same format)\n"
    )
    out.append("| client | " + " | ".join(FORMATS.values()) + " |")
    out.append("|---|" + "---:|" * len(FORMATS))
    for r in results:
        cells = []
        for fmt in FORMATS:
            cell = _fmt(r.median(f"stream:{fmt}"))
            if r is not ref and r.streams[fmt]:
                cell += f" ({_fmt_ratio(paired_ratio(r.streams[fmt], ref.streams[fmt]))})"
            cells.append(cell)
        out.append(f"| {r.name} | " + " | ".join(cells) + " |")
    out.append("")
    out.append(
        f"Against the bare-aiohttp {FORMATS[REFERENCE_FORMAT]} reader ({_fmt(reference)} deltas/s; "
        "paired ratios):"
    )
    for r in results:
        paths = "; ".join(
            f"{FORMATS[fmt]} {_fmt_ratio(paired_ratio(r.streams[fmt], ref.streams[REFERENCE_FORMAT]))}"
            for fmt in ("ollama", "anthropic", "openai")
        )
        out.append(f"- {r.name}: {paths}")
    out.append("")
    ac = next((r for r in results if r.name == "abstractcore"), None)
    if ac is not None:
        out.append("### abstractcore vs targets\n")
        out.append("| metric | abstractcore | bare aiohttp | ratio | target | met |")
        out.append("|---|---:|---:|---:|---:|:-:|")
        rows: list[tuple[str, str, str]] = [
            ("c100", "c100", "req/s @100"),
            ("c500", "c500", "req/s @500"),
            ("seq", "seq_us", "µs/request seq"),
        ]
        for key, attr, label in rows:
            v = ac.median(attr)
            text, ok = _ratio(key, v, ref_vals[key])
            op, t = TARGETS[key]
            out.append(
                f"| {label} | {_fmt(v)} | {_fmt(ref_vals[key])} | {text} | {op} {t}x "
                f"| {'yes' if ok else 'NO'} |"
            )
        for fmt, label in FORMATS.items():
            v = ac.median(f"stream:{fmt}")
            base = ref_vals[f"stream:{fmt}"]
            paired = paired_ratio(ac.streams[fmt], ref.streams[fmt])
            if fmt == REFERENCE_FORMAT:
                op, t = TARGETS["stream"]
                ok = paired is not None and paired >= t
                out.append(
                    f"| deltas/s {label} (paired) | {_fmt(v)} | {_fmt(base)} | {_fmt_ratio(paired)} "
                    f"| {op} {t}x | {'yes' if ok else 'NO'} |"
                )
            else:
                out.append(
                    f"| deltas/s {label} (paired) | {_fmt(v)} | {_fmt(base)} | {_fmt_ratio(paired)} | - | - |"
                )
        if imp is not None:
            ok = imp["import_cost_ms"] <= IMPORT_TARGET_MS
            out.append(
                f"| import abstractcore | {imp['import_cost_ms']:.0f} ms | - | - "
                f"| ≤ {IMPORT_TARGET_MS:.0f} ms | {'yes' if ok else 'NO'} |"
            )
        out.append("")
    ac_c100 = ac.median("c100") if ac is not None else None
    c100 = ac_c100 / ref_vals["c100"] if ac_c100 and ref_vals["c100"] else None
    out.extend(coldstart.report(imp, first, c100))
    if imp is not None:
        out.append("### import abstractcore (fresh interpreter)\n")
        out.append(
            f"- `python -c pass`: {imp['python_pass_ms']:.1f} ms; "
            f"`python -c 'import abstractcore'`: {imp['import_abstractcore_ms']:.1f} ms; "
            f"difference **{imp['import_cost_ms']:.1f} ms** (median of {meta['import_runs']}); "
            f"from {imp['abstractcore_file']}"
        )
        heavy = ", ".join(imp["heavy_modules_loaded"]) or "none"
        absent = ", ".join(m for m in HEAVY_MODULES if m not in imp["heavy_modules_loaded"])
        out.append(
            f"- heavy modules in sys.modules after import: **{heavy}** (absent: {absent}); "
            f"{imp['modules_added']} modules added in all"
        )
        tops = ", ".join(f"{n} {us / 1000:.1f} ms" for n, us in imp["importtime_top_cumulative_us"])
        out.append(f"- largest cumulative imports (-X importtime): {tops}")
        out.append("")
    busy = ref.median("server_busy")
    if busy is not None:
        out.append(
            f"Fake server CPU while bare aiohttp ran @100: {busy * 100:.0f}% of one core "
            "(the client, not the server, is the limit).\n"
        )
    out.append(f"Setup: {meta['setup']}")
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Profiling helper (abstractcore only)
# ---------------------------------------------------------------------------

_PROFILE_FORMATS = {"stream": "openai", "stream-ollama": "ollama", "stream-anthropic": "anthropic"}


async def _profile(root: str, pool: int, what: str, sizes: Sizes) -> None:
    import cProfile
    import pstats

    client = await make_abstractcore(root, pool)
    await _concurrent(client, 400, 100)
    for name in FORMATS:
        await client.streams[name]()
    fmt = _PROFILE_FORMATS.get(what)
    streams = 4
    prof = cProfile.Profile()
    prof.enable()
    if what == "generate":
        await _concurrent(client, sizes.concurrent_total, 100)
    elif what == "sequential":
        await _sequential(client, sizes.sequential)
    else:
        assert fmt is not None
        await _streams(client, fmt, streams, sizes.stream_chunks)
    prof.disable()
    await client.close()
    stats = pstats.Stats(prof)
    if fmt is None:
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats("abstractcore", 30)
        return
    # Per delta: own time (tottime) and time including callees (cumtime), in µs, under cProfile
    # (which inflates every Python call, so compare the rows with each other, not with wall time).
    deltas = streams * sizes.stream_chunks
    rows = []
    for (file, line, func), (_cc, calls, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{line}({func})" if line else func
        rows.append((tt, ct, calls, where))
    total = sum(r[0] for r in rows)
    per_delta = total / deltas * 1e6
    print(f"cProfile, abstractcore {FORMATS[fmt]} path, {deltas:,} deltas: {per_delta:.2f} µs/delta")
    print(f"{'own µs/delta':>12} {'cum µs/delta':>12} {'calls/delta':>11}  function")
    for tt, ct, calls, where in sorted(rows, reverse=True)[:30]:
        print(f"{tt / deltas * 1e6:12.3f} {ct / deltas * 1e6:12.3f} {calls / deltas:11.2f}  {where}")
    print()
    stats.sort_stats("cumulative").print_stats("abstractcore", 25)


# ---------------------------------------------------------------------------


def reproducing_command(argv: list[str]) -> str:
    """The command line of this run without its output path (for the figures' captions)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg.startswith("--json="):
            skip = False
            continue
        if arg == "--json":
            skip = True
            continue
        kept.append(arg)
    return " ".join(["python benchmarks/overhead.py", *kept])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (smoke run)")
    parser.add_argument(
        "--pool",
        type=int,
        default=100,
        help="connection pool size for every client (abstractcore's default: 100)",
    )
    parser.add_argument(
        "--clients",
        default=None,
        help=f"comma list of {', '.join(CLIENTS)} and 'default' (= {','.join(DEFAULT_CLIENTS)}, "
        "leaving out those whose package is missing; abstractcore+httpx, the trio / user-client path, "
        "and the peers are slow and not run by default; a peer that is not importable is skipped "
        "with a note); 'aiohttp', the reference, always runs first",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client to separate CPUs")
    parser.add_argument("--no-import", action="store_true", help="skip the import-time probe")
    parser.add_argument("--no-cold", action="store_true", help="skip the first call in fresh processes")
    parser.add_argument("--no-streams", action="store_true", help="skip the stream measurements")
    parser.add_argument("--no-sync", action="store_true", help="skip the blocking generate measurement")
    parser.add_argument(
        "--json", default=None, help="write results to this file (default benchmarks/results/overhead-*.json)"
    )
    parser.add_argument(
        "--profile",
        choices=("generate", "sequential", *_PROFILE_FORMATS),
        help="cProfile abstractcore only and print the hot spots (stream: OpenAI SSE path)",
    )
    args = parser.parse_args()

    sizes = (
        Sizes(sequential=300, concurrent_total=1000, streams_per_run=3, stream_chunks=5000, import_runs=5)
        if args.quick
        else Sizes(
            sequential=1000, concurrent_total=2000, streams_per_run=7, stream_chunks=5000, import_runs=9
        )
    )
    sizes.runs = max(1, args.runs)
    if args.no_streams:
        sizes.streams_per_run = 0
    names = [n.strip() for n in (args.clients or "default").split(",") if n.strip()]
    if "default" in names:
        default = list(DEFAULT_CLIENTS)
        if importlib.util.find_spec("httpx_aiohttp") is None:
            default = [n for n in default if "httpx-aiohttp" not in n]
            print("httpx-aiohttp is not installed: its clients are left out", flush=True)
        at = names.index("default")
        names[at : at + 1] = default
    names = ["aiohttp"] + [n for n in dict.fromkeys(names) if n != "aiohttp"]
    unknown = set(names) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown client(s) {', '.join(sorted(unknown))}; choose from {', '.join(CLIENTS)}")
    skipped = {n: peers.missing(n) for n in names if n in peers.NEEDS and peers.missing(n)}
    for n, module in skipped.items():  # a peer that is not installed is skipped, never fatal
        print(f"skipping {n}: {module} is not importable here (see benchmarks/README.md)", flush=True)
    names = [n for n in names if n not in skipped]

    pin = not args.no_pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    if pin:
        cpus = sorted(os.sched_getaffinity(0))
        client_cpu, server_cpu = cpus[0], cpus[-1]
        os.sched_setaffinity(0, {client_cpu})
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    server = ctx.Process(
        target=serve, args=(child, sizes.stream_chunks, server_cpu if pin else None), daemon=True
    )
    server.start()
    global SERVER_PID
    SERVER_PID = server.pid
    try:
        if not parent.poll(30):
            raise SystemExit("fake server did not start")
        port = parent.recv()
        root = f"http://127.0.0.1:{port}"
        if args.profile:
            asyncio.run(_profile(root, args.pool, args.profile, sizes))
            return
        started = time.perf_counter()
        imp = None if args.no_import else coldstart.measure_import(sizes.import_runs)
        first = (
            None
            if args.no_cold
            else coldstart.measure_first_call(
                root, sizes.import_runs, model=MODEL, api_key=API_KEY, prompt=PROMPT
            )
        )
        print(
            f"fake server pid {server.pid} at {root}; abstractcore from {coldstart.abstractcore_root()}; "
            f"clients: {', '.join(names)}",
            flush=True,
        )
        results = asyncio.run(run_async(root, args.pool, sizes, names))
        sync_us = None if args.no_sync else run_sync_generate(root, args.pool, sizes)
        sync_sdk_us = (
            None if args.no_sync or "openai-sdk" not in names else run_sync_openai_sdk(root, args.pool, sizes)
        )
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.join(5)

    import aiohttp
    import httpx

    import abstractcore

    versions = {
        "python": platform.python_version(),
        "abstractcore": str(getattr(abstractcore, "__version__", "?")),
        "aiohttp": aiohttp.__version__,
        "httpx": httpx.__version__,
    }
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("httpx-aiohttp", "openai", "anthropic", "litellm", "any-llm-sdk"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    setup = (
        f"{'quick' if args.quick else 'full'} run in {elapsed:.0f} s; abstractcore "
        f"{versions['abstractcore']} from {coldstart.abstractcore_root()}; "
        f"{sizes.sequential} sequential requests, {sizes.concurrent_total} requests per "
        f"concurrency level, {sizes.streams_per_run} x {sizes.stream_chunks}-delta streams "
        f"per client and format per run (interleaved); pool {args.pool} connections for every "
        f"client; fake server = raw asyncio Protocol in its own process"
        f"{' (client and server pinned to separate CPUs)' if pin else ''}; "
        f"Python {versions['python']}, aiohttp {versions['aiohttp']}, httpx {versions['httpx']}, "
        f"httpx-aiohttp {versions.get('httpx-aiohttp', 'not installed')}"
        + "".join(
            f", {d} {versions[d]}" for d in ("openai", "anthropic", "litellm", "any-llm-sdk") if d in versions
        )
        + f", stock asyncio loop, {os.cpu_count()} CPUs."
        + (f" Skipped (not importable): {', '.join(skipped)}." if skipped else "")
    )
    meta = {
        "command": reproducing_command(sys.argv[1:]),
        "runs": sizes.runs,
        "import_runs": sizes.import_runs,
        "streams_per_run": sizes.streams_per_run,
        "stream_chunks": sizes.stream_chunks,
        "setup": setup,
    }
    text = report(results, sync_us, imp, meta, first, sync_sdk_us)
    print()
    print(text)

    stamp = time.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    out_path = Path(args.json) if args.json else HERE / "results" / f"overhead-{stamp}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(
        json.dumps(
            {
                "meta": {
                    **meta,
                    "versions": versions,
                    "abstractcore_root": coldstart.abstractcore_root(),
                    "pool": args.pool,
                    "quick": args.quick,
                    "sizes": sizes.__dict__,
                },
                "clients": [
                    {
                        "name": r.name,
                        "note": r.note,
                        "request_format": r.request_format,
                        "seq_us": r.seq_us,
                        "c100_rps": r.c100,
                        "c500_rps": r.c500,
                        "stream_deltas_per_s": r.streams,
                        "server_cpu_fraction_at_100": r.server_busy,
                        "median": {
                            "seq_us": r.median("seq_us"),
                            "c100_rps": r.median("c100"),
                            "c500_rps": r.median("c500"),
                            "stream_deltas_per_s": {fmt: r.median(f"stream:{fmt}") for fmt in FORMATS},
                        },
                        "stream_paired_ratio_same_format": {
                            fmt: paired_ratio(r.streams[fmt], results[0].streams[fmt]) for fmt in FORMATS
                        },
                        "stream_paired_ratio_vs_openai_reference": {
                            fmt: paired_ratio(r.streams[fmt], results[0].streams[REFERENCE_FORMAT])
                            for fmt in FORMATS
                        },
                    }
                    for r in results
                ],
                "sync_generate_us": sync_us,
                "sync_openai_sdk_us": sync_sdk_us,
                "skipped_clients": skipped,
                "import": imp,
                "first_call": first,
                "markdown": text,
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    print(f"\nJSON: {out_path}")


if __name__ == "__main__":
    main()
