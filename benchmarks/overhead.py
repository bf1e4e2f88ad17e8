"""What does abstractcore cost on top of a bare HTTP client?

    /work/venv/bin/python benchmarks/overhead.py            # full run (~1-2.5 min)
    /work/venv/bin/python benchmarks/overhead.py --quick    # fewer requests (~30-45 s)
    /work/venv/bin/python benchmarks/overhead.py --what-if  # preview the recommended fixes
    /work/venv/bin/python benchmarks/overhead.py --profile generate|sequential|stream

Starts a cheap fake OpenAI Chat Completions server (raw asyncio Protocol,
HTTP/1.1 keep-alive, Content-Length replies, chunked SSE streams, canned bytes)
in a *separate process* on 127.0.0.1, then measures in this process, median of
3 runs (round-robin over the clients), every client driven the same way and
given the same pool size (100 connections, abstractcore's default):

- microseconds per sequential request, and requests/s with 100 and 500
  requests in flight (N workers gathered, each looping over its share of a
  fixed number of requests);
- text deltas/s over a 5,000-chunk SSE stream (plus a usage chunk and
  ``data: [DONE]``);
- the blocking ``llm.generate`` (runs on abstractcore's background loop);
- ``import abstractcore`` time in a fresh interpreter minus ``python -c pass``,
  and which heavy modules that import pulls in.

Clients: bare aiohttp (the reference), bare httpx.AsyncClient, httpx driven
by the ``httpx-aiohttp`` transport, abstractcore ``agenerate``/``astream``
(aiohttp transport, the default on asyncio), abstractcore handed an
``httpx_aiohttp.HttpxAiohttpClient`` and, on request (``--clients``),
abstractcore handed a plain ``httpx.AsyncClient``.

``--what-if`` monkeypatches abstractcore in memory (never on disk) with the
changes recommended in benchmarks/README.md, so their effect can be measured
before src/ changes; the output is labelled WHAT-IF.

Nothing here imports abstractcore at module level: the server process (spawned)
re-imports this file and must stay light.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL = "fake-model"
API_KEY = "sk-bench-not-a-secret"
PROMPT = "hi"
ANSWER = "Hello! How can I help you today?"
DELTA = "tok "  # content of every stream delta
HEAVY_MODULES = ("httpx", "aiohttp", "pydantic", "anyio", "backoff", "asyncio", "sniffio")

TARGETS = {  # ratio vs bare aiohttp in the same run
    "c100": ("≥", 0.8),
    "c500": ("≥", 0.8),
    "seq": ("≤", 1.3),
    "stream": ("≥", 0.7),
}
IMPORT_TARGET_MS = 100.0


# ---------------------------------------------------------------------------
# The fake server (runs in its own process)
# ---------------------------------------------------------------------------


def _completion_response() -> bytes:
    body = json.dumps(
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
        },
        separators=(",", ":"),
    ).encode()
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"x-request-id: req_bench\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


def _stream_response(chunks: int) -> bytes:
    """A whole SSE reply, HTTP-chunked with one chunk per event (as real servers send it)."""

    def event(obj: Any) -> bytes:
        data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
        return b"%x\r\n%s\r\n" % (len(data), data)

    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL}
    parts = [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"x-request-id: req_bench\r\nTransfer-Encoding: chunked\r\n\r\n"
    ]
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
    parts.extend([one] * chunks)
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
    done = b"data: [DONE]\n\n"
    parts.append(b"%x\r\n%s\r\n" % (len(done), done))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
_NEED_LENGTH = b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _FakeOpenAI(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive server. Same canned bytes for every client."""

    completion = b""
    stream = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
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
            line = head[: head.find(b"\r\n")]
            if line.startswith(b"post ") and b"/chat/completions " in line:
                if b'"stream":true' in body or b'"stream": true' in body:
                    self.transport.write(self.stream)
                else:
                    self.transport.write(self.completion)
            else:
                self.transport.write(_NOT_FOUND)


def serve(conn: Any, chunks: int, cpu: int | None) -> None:
    """Server process entry point: bind a free port, report it, serve forever."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass
    _FakeOpenAI.completion = _completion_response()
    _FakeOpenAI.stream = _stream_response(chunks)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_FakeOpenAI, "127.0.0.1", 0, backlog=2048)
        conn.send(server.sockets[0].getsockname()[1])
        conn.close()
        await server.serve_forever()

    asyncio.run(main())


# ---------------------------------------------------------------------------
# Clients: each gives one request, one stream, and close
# ---------------------------------------------------------------------------


def _payload(stream: bool) -> dict[str, Any]:
    # Byte-for-byte the body abstractcore's openai-compatible provider builds.
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


_HEADERS = {"authorization": f"Bearer {API_KEY}", "accept": "application/json"}


def _sse_deltas(lines: list[bytes]) -> tuple[int, bool]:
    """Minimal SSE handling a bare-client user would write: data lines -> json -> content."""
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


@dataclass
class Client:
    name: str
    request: Callable[[], Awaitable[None]]
    stream: Callable[[], Awaitable[int]]
    close: Callable[[], Awaitable[None]]
    note: str = ""


async def make_aiohttp(url: str, pool: int) -> Client:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=pool))
    endpoint = f"{url}/chat/completions"
    req_body, stream_body = _payload(False), _payload(True)

    async def request() -> None:
        async with session.post(endpoint, json=req_body, headers=_HEADERS) as resp:
            data = await resp.json()
        assert data["choices"][0]["message"]["content"] == ANSWER

    async def stream() -> int:
        n, buf = 0, b""
        async with session.post(endpoint, json=stream_body, headers=_HEADERS) as resp:
            async for chunk in resp.content.iter_any():
                lines = (buf + chunk).split(b"\n")
                buf = lines.pop()
                got, done = _sse_deltas(lines)
                n += got
                if done:
                    break
        return n

    return Client(
        "bare aiohttp",
        request,
        stream,
        session.close,
        f"ClientSession(TCPConnector(limit={pool})), json=, resp.json()",
    )


async def make_httpx(url: str, pool: int, *, aiohttp_transport: bool) -> Client:
    import httpx

    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    if aiohttp_transport:
        from httpx_aiohttp import HttpxAiohttpClient

        client: httpx.AsyncClient = HttpxAiohttpClient(limits=limits, timeout=120)
        name = "httpx + httpx-aiohttp"
    else:
        client = httpx.AsyncClient(limits=limits, timeout=120)
        name = "bare httpx"
    endpoint = f"{url}/chat/completions"
    req_body, stream_body = _payload(False), _payload(True)

    async def request() -> None:
        resp = await client.post(endpoint, json=req_body, headers=_HEADERS)
        data = resp.json()
        assert data["choices"][0]["message"]["content"] == ANSWER

    async def stream() -> int:
        n, buf = 0, b""
        async with client.stream("POST", endpoint, json=stream_body, headers=_HEADERS) as resp:
            async for chunk in resp.aiter_raw():
                lines = (buf + chunk).split(b"\n")
                buf = lines.pop()
                got, done = _sse_deltas(lines)
                n += got
                if done:
                    break
        return n

    return Client(
        name,
        request,
        stream,
        client.aclose,
        f"{type(client).__name__}(Limits({pool}, {pool})), json=, resp.json()",
    )


async def make_abstractcore(url: str, pool: int, *, http_client: str | None = None) -> Client:
    from abstractcore import create_llm

    options: dict[str, Any] = {}
    name = "abstractcore"
    note = "agenerate / astream, default transport (aiohttp on asyncio)"
    if http_client is not None:
        import httpx

        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        if http_client == "httpx-aiohttp":
            from httpx_aiohttp import HttpxAiohttpClient

            options["http_client"] = HttpxAiohttpClient(limits=limits, timeout=None)
        else:
            options["http_client"] = httpx.AsyncClient(limits=limits, timeout=None)
        name = f"abstractcore (http_client={http_client})"
        note = "HttpxTransport path, as on trio"
    llm = create_llm("openai", model=MODEL, base_url=url, api_key=API_KEY, max_connections=pool, **options)

    async def request() -> None:
        r = await llm.agenerate(PROMPT)
        assert r.content == ANSWER

    async def stream() -> int:
        n, last = 0, None
        async for chunk in llm.astream(PROMPT):
            if chunk.content:
                n += 1
            last = chunk
        assert last is not None and last.usage is not None and last.finish_reason == "stop"
        return n

    async def close() -> None:
        await llm.aclose()
        if "http_client" in options:
            await options["http_client"].aclose()

    return Client(name, request, stream, close, note)


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
    seq_us: list[float] = field(default_factory=list)
    c100: list[float] = field(default_factory=list)
    c500: list[float] = field(default_factory=list)
    stream: list[float] = field(default_factory=list)
    server_busy: list[float] = field(default_factory=list)  # fraction of one CPU during @100

    def median(self, key: str) -> float | None:
        values = getattr(self, key)
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
    return (time.perf_counter() - start) / n * 1e6


async def _concurrent(client: Client, total: int, concurrency: int) -> float:
    per_worker, extra = divmod(total, concurrency)

    async def worker(count: int) -> None:
        for _ in range(count):
            await client.request()

    gc.collect()
    start = time.perf_counter()
    await asyncio.gather(*(worker(per_worker + (i < extra)) for i in range(concurrency)))
    return total / (time.perf_counter() - start)


async def _streams(client: Client, streams: int, chunks: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(streams):
        got = await client.stream()
        if got != chunks:
            raise AssertionError(f"{client.name}: {got} deltas, expected {chunks}")
    return streams * chunks / (time.perf_counter() - start)


CLIENTS = (
    "aiohttp",
    "httpx",
    "httpx-aiohttp",
    "abstractcore",
    "abstractcore+httpx-aiohttp",
    "abstractcore+httpx",
)


async def run_async(url: str, pool: int, sizes: Sizes, names: list[str]) -> list[Result]:
    factories: dict[str, Callable[[], Awaitable[Client]]] = {
        "aiohttp": lambda: make_aiohttp(url, pool),
        "httpx": lambda: make_httpx(url, pool, aiohttp_transport=False),
        "httpx-aiohttp": lambda: make_httpx(url, pool, aiohttp_transport=True),
        "abstractcore": lambda: make_abstractcore(url, pool),
        "abstractcore+httpx-aiohttp": lambda: make_abstractcore(url, pool, http_client="httpx-aiohttp"),
        "abstractcore+httpx": lambda: make_abstractcore(url, pool, http_client="httpx"),
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
    results = [Result(c.name, c.note) for c in clients]
    # Warm up: open the pool's connections, fill caches; nothing measured.
    for client in clients:
        await _concurrent(client, min(pool, 200) * 2, min(pool, 200))
        await client.stream()
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
            result.stream.append(await _streams(client, sizes.streams_per_run, sizes.stream_chunks))
            print(
                f"  run {run + 1}/{sizes.runs} {client.name:34s} seq {result.seq_us[-1]:7.0f} µs"
                f"  c100 {result.c100[-1]:7.0f}/s  c500 {result.c500[-1]:7.0f}/s"
                f"  stream {result.stream[-1]:8.0f}/s",
                flush=True,
            )
    return results


def run_sync_generate(url: str, pool: int, sizes: Sizes) -> list[float]:
    """The blocking face: ``llm.generate`` from a plain thread (runs on the portal loop)."""
    from abstractcore import create_llm

    llm = create_llm("openai", model=MODEL, base_url=url, api_key=API_KEY, max_connections=pool)
    for _ in range(50):
        llm.generate(PROMPT)
    out = []
    for _ in range(sizes.runs):
        gc.collect()
        start = time.perf_counter()
        for _ in range(sizes.sequential):
            r = llm.generate(PROMPT)
        out.append((time.perf_counter() - start) / sizes.sequential * 1e6)
        assert r.content == ANSWER
    llm.close()
    return out


def measure_import(runs: int) -> dict[str, Any]:
    """Wall time of a fresh interpreter importing abstractcore, minus a bare one."""
    exe = sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}

    def wall(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([exe, "-c", code], check=True, env=env)
        return (time.perf_counter() - start) * 1000

    wall("import abstractcore")  # warm the page cache and .pyc files
    bare, full = [], []
    for _ in range(runs):  # interleaved
        bare.append(wall("pass"))
        full.append(wall("import abstractcore"))
    probe = (
        "import sys, json; before = set(sys.modules); import abstractcore; "
        f"heavy = {list(HEAVY_MODULES)!r}; "
        "print(json.dumps({'heavy': [m for m in heavy if m in sys.modules], "
        "'added': len(set(sys.modules) - before)}))"
    )
    info = json.loads(
        subprocess.run([exe, "-c", probe], check=True, env=env, capture_output=True, text=True).stdout
    )
    # Top cumulative self-imports (from -X importtime; its own overhead inflates them a bit).
    trace = subprocess.run(
        [exe, "-X", "importtime", "-c", "import abstractcore"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stderr
    rows = []
    for line in trace.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumul_us, raw_name = line[len("import time:") :].split("|")
        depth = (len(raw_name) - len(raw_name.lstrip()) - 1) // 2  # 0 = imported by -c
        rows.append((int(cumul_us), raw_name.strip(), depth))
    top_level = sorted((r for r in rows if 1 <= r[2] <= 2), reverse=True)[:8]
    return {
        "python_pass_ms": statistics.median(bare),
        "import_abstractcore_ms": statistics.median(full),
        "import_cost_ms": statistics.median(full) - statistics.median(bare),
        "heavy_modules_loaded": info["heavy"],
        "modules_added": info["added"],
        "importtime_top_cumulative_us": [(name, us) for us, name, _ in top_level],
    }


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(key: str, value: float | None, ref: float | None) -> tuple[str, bool | None]:
    if value is None or not ref:
        return "-", None
    if key == "seq":
        r = value / ref
        ok = r <= TARGETS[key][1]
    else:
        r = value / ref
        ok = r >= TARGETS[key][1]
    return f"{r:.2f}x", ok


def report(
    results: list[Result], sync_us: list[float] | None, imp: dict[str, Any] | None, meta: dict[str, Any]
) -> str:
    ref = results[0]
    assert ref.name == "bare aiohttp"
    ref_vals = {
        "seq": ref.median("seq_us"),
        "c100": ref.median("c100"),
        "c500": ref.median("c500"),
        "stream": ref.median("stream"),
    }
    out = []
    out.append(f"### Client overhead (median of {meta['runs']} runs; ratio vs bare aiohttp)\n")
    out.append("| client | µs/request seq | req/s @100 | req/s @500 | deltas/s stream |")
    out.append("|---|---:|---:|---:|---:|")
    for r in results:
        cells = []
        for key, attr, digits in (
            ("seq", "seq_us", 0),
            ("c100", "c100", 0),
            ("c500", "c500", 0),
            ("stream", "stream", 0),
        ):
            v = r.median(attr)
            cell = _fmt(v, digits)
            if r is not ref:
                cell += f" ({_ratio(key, v, ref_vals[key])[0]})"
            cells.append(cell)
        out.append(f"| {r.name} | " + " | ".join(cells) + " |")
    if sync_us:
        v = statistics.median(sync_us)
        out.append(f"| abstractcore sync `generate` | {_fmt(v)} ({v / ref_vals['seq']:.2f}x) | - | - | - |")
    out.append("")
    ac = next((r for r in results if r.name == "abstractcore"), None)
    if ac is not None:
        out.append("### abstractcore vs targets\n")
        out.append("| metric | abstractcore | bare aiohttp | ratio | target | met |")
        out.append("|---|---:|---:|---:|---:|:-:|")
        for key, attr, label in (
            ("c100", "c100", "req/s @100"),
            ("c500", "c500", "req/s @500"),
            ("seq", "seq_us", "µs/request seq"),
            ("stream", "stream", "deltas/s stream"),
        ):
            v = ac.median(attr)
            text, ok = _ratio(key, v, ref_vals[key])
            op, t = TARGETS[key]
            out.append(
                f"| {label} | {_fmt(v)} | {_fmt(ref_vals[key])} | {text} | {op} {t}x "
                f"| {'yes' if ok else 'NO'} |"
            )
        if imp is not None:
            ok = imp["import_cost_ms"] <= IMPORT_TARGET_MS
            out.append(
                f"| import abstractcore | {imp['import_cost_ms']:.0f} ms | - | - "
                f"| ≤ {IMPORT_TARGET_MS:.0f} ms | {'yes' if ok else 'NO'} |"
            )
        out.append("")
    if imp is not None:
        out.append("### import abstractcore (fresh interpreter)\n")
        out.append(
            f"- `python -c pass`: {imp['python_pass_ms']:.1f} ms; "
            f"`python -c 'import abstractcore'`: {imp['import_abstractcore_ms']:.1f} ms; "
            f"difference **{imp['import_cost_ms']:.1f} ms** (median of {meta['import_runs']})"
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
# --what-if: the recommended src/ changes, applied in this process only
# ---------------------------------------------------------------------------


def apply_what_if() -> list[str]:
    """Monkeypatch abstractcore *in memory* to preview the recommended fixes.

    Nothing under src/ is touched. Each patch mirrors one recommendation of
    benchmarks/README.md; a patch whose target moved is skipped and reported.
    """
    applied: list[str] = []
    try:  # 1. aiohttp session without trust_env (no netrc + proxy lookups in threads per request)
        import aiohttp

        from abstractcore.transport import aiohttp_transport as at

        class _NoTrustEnv:
            def __getattr__(self, name: str) -> Any:
                return getattr(aiohttp, name)

            @staticmethod
            def ClientSession(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
                kwargs["trust_env"] = False
                # An explicit User-Agent instead of skip_auto_headers=("User-Agent",), which
                # sends aiohttp down its slow path in ClientRequest.update_auto_headers.
                if "User-Agent" in (kwargs.pop("skip_auto_headers", None) or ()):
                    kwargs["headers"] = {"User-Agent": "abstractcore", **(kwargs.get("headers") or {})}
                return aiohttp.ClientSession(*args, **kwargs)

        at.aiohttp = _NoTrustEnv()  # type: ignore[assignment]
        applied.append("AiohttpTransport: ClientSession(trust_env=False), explicit User-Agent")
    except Exception as exc:  # pragma: no cover - depends on src/ at the time
        applied.append(f"trust_env patch skipped ({exc!r})")
    try:  # 2. SSE decoder: split on LF when the text has no CR (no rescans of the buffer)
        from abstractcore.transport import sse

        slow = sse.SSEDecoder._consume

        def _consume(self: Any, text: str) -> list[Any]:
            if "\r" in text or self._skip_lf or self._first:
                return slow(self, text)
            lines = (self._buffer + text).split("\n")
            self._buffer = lines.pop()
            events = []
            for line in lines:
                event = self._line(line)
                if event is not None:
                    events.append(event)
            return events

        class _Event:  # SSEEvent without frozen-dataclass __init__ (object.__setattr__ x4)
            __slots__ = ("data", "event", "id", "retry")

            def __init__(
                self, data: str, event: str = "message", id: str | None = None, retry: int | None = None
            ) -> None:
                self.data, self.event, self.id, self.retry = data, event, id, retry

        slow_line = sse.SSEDecoder._line

        def _line(self: Any, line: str) -> Any:
            if line.startswith("data: "):  # the common case: no partition, no name dispatch
                self._data.append(line[6:])
                return None
            return slow_line(self, line)

        def _dispatch(self: Any) -> Any:
            data, event, retry = self._data, self._event, self._retry
            self._data, self._event, self._retry = [], "", None
            if not data:
                return None
            return _Event(
                data[0] if len(data) == 1 else "\n".join(data), event or "message", self._last_id, retry
            )

        sse.SSEDecoder._consume = _consume  # type: ignore[method-assign]
        sse.SSEDecoder._line = _line  # type: ignore[method-assign]
        sse.SSEDecoder._dispatch = _dispatch  # type: ignore[method-assign]
        applied.append("SSEDecoder: LF-only split fast path, 'data: ' fast path, slotted event")
    except Exception as exc:  # pragma: no cover
        applied.append(f"SSE patch skipped ({exc!r})")
    try:  # 3. per-request micro-costs: one ClientTimeout per Timeout, one cached JSON encoder
        import functools
        import types

        from abstractcore.transport import aiohttp_transport as at2
        from abstractcore.transport import http as http_mod

        slow_timeout = at2._client_timeout

        @functools.lru_cache(maxsize=64)
        def _client_timeout(timeout: Any, *, stream: bool) -> Any:
            if (
                not stream
                and timeout.read is not None
                and timeout.total is not None
                and timeout.read >= timeout.total
            ):  # sock_read is redundant: total bounds it
                return aiohttp.ClientTimeout(total=timeout.total, sock_connect=timeout.connect)
            return slow_timeout(timeout, stream=stream)

        at2._client_timeout = _client_timeout
        encoder = json.JSONEncoder(ensure_ascii=False)

        def dumps(obj: Any, **kwargs: Any) -> str:
            return encoder.encode(obj) if kwargs == {"ensure_ascii": False} else json.dumps(obj, **kwargs)

        http_mod.json = types.SimpleNamespace(dumps=dumps, loads=json.loads)  # type: ignore[assignment]

        slow_loop_key = http_mod._loop_key

        def _loop_key() -> tuple[str, object]:  # asyncio first, sniffio only when not on asyncio
            loop = asyncio._get_running_loop()
            return ("asyncio", loop) if loop is not None else slow_loop_key()

        http_mod._loop_key = _loop_key

        from abstractcore.providers import openai_compatible as oc

        slow_tool_calls = oc._tool_calls
        oc._tool_calls = lambda raw: slow_tool_calls(raw) if raw else []
        applied.append(
            "cached ClientTimeout per Timeout (no sock_read when read >= total, "
            "non-stream); cached JSONEncoder; _loop_key asyncio fast path; "
            "_tool_calls(None) fast path"
        )
    except Exception as exc:  # pragma: no cover
        applied.append(f"micro-cost patch skipped ({exc!r})")
    try:  # 4. sync face: hand coroutines to the portal loop with run_coroutine_threadsafe
        from abstractcore import _portal

        loops: list[asyncio.AbstractEventLoop] = []

        async def _running_loop() -> asyncio.AbstractEventLoop:
            return asyncio.get_running_loop()

        def call(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
            if not loops:
                loops.append(_portal.portal().call(_running_loop))
            result = asyncio.run_coroutine_threadsafe(fn(*args), loops[0]).result()
            if isinstance(result, AsyncIterator):
                return _portal.iterate(result)
            return result

        _portal.call = call  # type: ignore[assignment]
        applied.append("_portal.call: asyncio.run_coroutine_threadsafe instead of BlockingPortal.call")
    except Exception as exc:  # pragma: no cover
        applied.append(f"portal patch skipped ({exc!r})")
    return applied


# ---------------------------------------------------------------------------
# Profiling helper (abstractcore only)
# ---------------------------------------------------------------------------


async def _profile(url: str, pool: int, what: str, sizes: Sizes) -> None:
    import cProfile
    import pstats

    client = await make_abstractcore(url, pool)
    await _concurrent(client, 400, 100)
    await client.stream()
    prof = cProfile.Profile()
    prof.enable()
    if what == "generate":
        await _concurrent(client, sizes.concurrent_total, 100)
    elif what == "sequential":
        await _sequential(client, sizes.sequential)
    else:
        await _streams(client, 2, sizes.stream_chunks)
    prof.disable()
    await client.close()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats("abstractcore", 30)


# ---------------------------------------------------------------------------


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
        default="aiohttp,httpx,httpx-aiohttp,abstractcore,abstractcore+httpx-aiohttp",
        help="comma list of aiohttp, httpx, httpx-aiohttp, abstractcore, "
        "abstractcore+httpx-aiohttp, abstractcore+httpx (the trio / "
        "user-client path; slow, so not run by default); 'aiohttp', the "
        "reference, always runs first",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client to separate CPUs")
    parser.add_argument("--no-import", action="store_true", help="skip the import-time probe")
    parser.add_argument(
        "--json", default=None, help="write results to this file (default benchmarks/results/overhead-*.json)"
    )
    parser.add_argument(
        "--profile",
        choices=("generate", "sequential", "stream"),
        help="cProfile abstractcore only and print the hot spots",
    )
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="preview the recommended src/ fixes, monkeypatched in memory "
        "(src/ untouched; results labelled WHAT-IF)",
    )
    args = parser.parse_args()
    what_if = apply_what_if() if args.what_if else []
    if what_if:
        print("WHAT-IF run, abstractcore patched in memory: " + "; ".join(what_if), flush=True)

    sizes = (
        Sizes(sequential=300, concurrent_total=1000, streams_per_run=1, stream_chunks=5000, import_runs=5)
        if args.quick
        else Sizes(
            sequential=1000, concurrent_total=2000, streams_per_run=3, stream_chunks=5000, import_runs=9
        )
    )
    sizes.runs = max(1, args.runs)
    names = [n.strip() for n in args.clients.split(",") if n.strip()]
    names = ["aiohttp"] + [n for n in names if n != "aiohttp"]
    unknown = set(names) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown client(s) {', '.join(sorted(unknown))}; choose from {', '.join(CLIENTS)}")

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
        url = f"http://127.0.0.1:{port}/v1"
        if args.profile:
            asyncio.run(_profile(url, args.pool, args.profile, sizes))
            return
        started = time.perf_counter()
        imp = None if args.no_import else measure_import(sizes.import_runs)
        print(f"fake server pid {server.pid} at {url}; clients: {', '.join(names)}", flush=True)
        results = asyncio.run(run_async(url, args.pool, sizes, names))
        sync_us = run_sync_generate(url, args.pool, sizes)
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.join(5)

    import aiohttp
    import httpx

    versions = {
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "httpx": httpx.__version__,
    }
    try:
        from importlib.metadata import version

        versions["httpx-aiohttp"] = version("httpx-aiohttp")
    except Exception:
        pass
    setup = (
        f"{'quick' if args.quick else 'full'} run in {elapsed:.0f} s; "
        f"{sizes.sequential} sequential requests, {sizes.concurrent_total} requests per "
        f"concurrency level, {sizes.streams_per_run} x {sizes.stream_chunks}-delta streams "
        f"per run; pool {args.pool} connections for every client; fake server = raw asyncio "
        f"Protocol in its own process{' (client and server pinned to separate CPUs)' if pin else ''}; "
        f"Python {versions['python']}, aiohttp {versions['aiohttp']}, httpx {versions['httpx']}, "
        f"httpx-aiohttp {versions.get('httpx-aiohttp', '?')}, stock asyncio loop, "
        f"{os.cpu_count()} CPUs."
    )
    if what_if:
        setup = "**WHAT-IF** (abstractcore patched in memory: " + "; ".join(what_if) + "). " + setup
    meta = {"runs": sizes.runs, "import_runs": sizes.import_runs, "setup": setup, "what_if": what_if}
    text = report(results, sync_us, imp, meta)
    print()
    print(text)

    out_path = (
        Path(args.json)
        if args.json
        else (
            HERE / "results" / f"overhead-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}"
            f"{'-whatif' if what_if else ''}.json"
        )
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(
        json.dumps(
            {
                "meta": {
                    **meta,
                    "versions": versions,
                    "pool": args.pool,
                    "quick": args.quick,
                    "sizes": sizes.__dict__,
                },
                "clients": [
                    {
                        "name": r.name,
                        "note": r.note,
                        "seq_us": r.seq_us,
                        "c100_rps": r.c100,
                        "c500_rps": r.c500,
                        "stream_deltas_per_s": r.stream,
                        "server_cpu_fraction_at_100": r.server_busy,
                        "median": {
                            "seq_us": r.median("seq_us"),
                            "c100_rps": r.median("c100"),
                            "c500_rps": r.median("c500"),
                            "stream_deltas_per_s": r.median("stream"),
                        },
                    }
                    for r in results
                ],
                "sync_generate_us": sync_us,
                "import": imp,
                "markdown": text,
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    print(f"\nJSON: {out_path}")


if __name__ == "__main__":
    main()
