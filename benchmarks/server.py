"""What does ``abstractcore serve`` cost, and how does it compare with LiteLLM's proxy?

    .venv/bin/python benchmarks/server.py                 # ~3-5 min
    .venv/bin/python benchmarks/server.py --quick         # fewer requests
    .venv/bin/python benchmarks/server.py --litellm /tmp/litellm/.venv/bin/litellm \\
        --starlette-python /tmp/starlette/.venv/bin/python

One cheap fake upstream (the raw-asyncio OpenAI server of ``overhead.py``, in its own process)
and, each in its own process in front of it, on 127.0.0.1:

- ``abstractcore serve`` (aiohttp.web), started through its real command line;
- the same service on Starlette + uvicorn (this file, ``--role starlette``), with the
  interpreter's uvicorn (h11 when httptools is missing) and, with ``--starlette-python``, with
  another interpreter's (e.g. a venv holding ``uvicorn[standard]``: httptools);
- LiteLLM's proxy (``--litellm``: its command, installed in a SEPARATE venv:
  ``python -m venv /tmp/litellm/.venv && /tmp/litellm/.venv/bin/pip install "litellm[proxy]==1.106.2"``).

Measured from this process with a bare aiohttp client (100 connections), against each server
and against the upstream itself ("direct": the floor), and with abstractcore's provider called
directly (``agenerate`` / ``astream``: what the server adds to it is the server's overhead):

- microseconds per sequential request (added latency = that minus direct);
- requests/s with 100 in flight;
- text deltas/s of one 2,000-delta stream, OpenAI format (``/v1/chat/completions``) and
  Anthropic format (``/v1/messages``, translated from the OpenAI upstream).

Rounds are interleaved (every target once per round, the order rotating) and each figure is the
median of the rounds; the machine is shared, so read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import overhead  # noqa: E402  (the fake upstream and the stream readers)

MODEL = overhead.MODEL
KEY = overhead.API_KEY
#: The key every server under test requires of its clients (LiteLLM refuses to start without one).
SERVER_KEY = "sk-" + "0123456789abcdef" * 4
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": overhead.PROMPT}]}
MESSAGES = {**CHAT, "max_tokens": 256}
TARGETS = {"throughput": 3.0, "added_latency": 0.1}  # vs LiteLLM: >= 3x req/s, <= 1/10 added latency


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------
# Roles run in child processes
# ---------------------------------------------------------------------------


class _PrintPort:
    """Stands in for the pipe ``overhead.serve`` reports its port through."""

    def send(self, port: int) -> None:
        print(f"PORT {port}", flush=True)

    def close(self) -> None:
        pass


def role_upstream(chunks: int) -> None:
    overhead.serve(_PrintPort(), chunks, None)


def role_starlette(upstream: str, port: int, http: str) -> None:
    """The server's own ``Service`` on Starlette + uvicorn: the alternative that was measured."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    from abstractcore.core.secrets import Secret
    from abstractcore.server import Backends, ModelEntry, ServerConfig
    from abstractcore.server.service import Service

    entry = ModelEntry("openai-compatible", MODEL, MODEL, (), {"base_url": upstream, "api_key": KEY})
    config = ServerConfig(port=port, api_key=Secret(SERVER_KEY))
    service = Service(Backends.from_entries([entry]), config)

    async def handle(request: Request) -> Response:
        method, path, headers = request.method, request.url.path, request.headers
        early = service.check(method, path, headers)
        if early is not None:
            return Response(early.body, early.status, early.headers)
        body = await request.body()
        if len(body) > config.max_request_bytes:
            reply = service.too_large(path, headers)
        else:
            reply = await service.handle(method, path, headers, body)
        if reply.stream is None:
            return Response(reply.body, reply.status, reply.headers)
        return StreamingResponse(reply.stream, reply.status, reply.headers)

    app = Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST", "OPTIONS"])])
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, http=http, loop="asyncio"
    )


# ---------------------------------------------------------------------------
# Servers under test
# ---------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str  # root, without /v1
    proc: subprocess.Popen[str] | None = None
    note: str = ""


def _spawn(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def start_upstream(chunks: int) -> Server:
    proc = _spawn([sys.executable, __file__, "--role", "upstream", "--chunks", str(chunks)])
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        raise SystemExit(f"the fake upstream did not start: {line}{proc.stdout.read()}")
    return Server("upstream", f"http://127.0.0.1:{int(line.split()[1])}", proc)


async def _ready(server: Server, seconds: float) -> None:
    import aiohttp

    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.proc is not None and server.proc.poll() is not None:
                out = server.proc.stdout.read() if server.proc.stdout else ""
                raise RuntimeError(f"{server.name} exited: {out[-2000:]}")
            headers = {"authorization": f"Bearer {SERVER_KEY}"}
            try:
                async with session.post(
                    f"{server.url}/v1/chat/completions", json=CHAT, headers=headers
                ) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{server.name} did not answer within {seconds:.0f} s")


def start_abstractcore(upstream: Server) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "abstractcore.server", "--provider", "openai-compatible"]
    cmd += ["--base-url", f"{upstream.url}/v1", "--model", MODEL, "--name", MODEL]
    cmd += ["--port", str(port), "--api-key", SERVER_KEY, "--log-level", "warning"]
    proc = _spawn(cmd, {"OPENAI_COMPATIBLE_API_KEY": KEY})
    return Server("abstractcore serve (aiohttp)", f"http://127.0.0.1:{port}", proc, "the real command line")


def start_starlette(upstream: Server, python: str, label: str) -> Server:
    port = free_port()
    probe = "import importlib.util as u; print('httptools' if u.find_spec('httptools') else 'h11')"
    http = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    cmd = [python, __file__, "--role", "starlette", "--upstream", f"{upstream.url}/v1"]
    cmd += ["--port", str(port), "--http", http]
    return Server(f"same service, Starlette+uvicorn ({http}{label})", f"http://127.0.0.1:{port}", _spawn(cmd))


def start_litellm(upstream: Server, command: str, workdir: Path) -> Server:
    port = free_port()
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream.url}/v1\n"
        f"      api_key: {KEY}\n"
        "general_settings:\n"
        f"  master_key: {SERVER_KEY}\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  telemetry: false\n"
    )
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
    cmd = [command, "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    version = subprocess.run(
        [
            str(Path(command).with_name("python")),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return Server(f"LiteLLM proxy {version}", f"http://127.0.0.1:{port}", _spawn(cmd, env), "1 worker")


def stop(server: Server) -> None:
    if server.proc is not None and server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()


# ---------------------------------------------------------------------------
# Clients and measurements
# ---------------------------------------------------------------------------


@dataclass
class Client:
    name: str
    request: Callable[[], Awaitable[None]]
    streams: dict[str, Callable[[], Awaitable[int]]]
    note: str = ""


@dataclass
class Result:
    name: str
    note: str = ""
    seq_us: list[float] = field(default_factory=list)
    c100: list[float] = field(default_factory=list)
    streams: dict[str, list[float]] = field(default_factory=lambda: {"openai": [], "anthropic": []})
    failures: list[str] = field(default_factory=list)

    def median(self, values: list[float]) -> float | None:
        return statistics.median(values) if values else None


def http_client(session: Any, server: Server) -> Client:
    """Bare aiohttp against a server: the same requests whatever is behind the URL."""
    chat = f"{server.url}/v1/chat/completions"
    messages = f"{server.url}/v1/messages"
    stream_chat = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    stream_messages = {**MESSAGES, "stream": True}
    headers = {
        "authorization": f"Bearer {SERVER_KEY}",
        "x-api-key": SERVER_KEY,
        "anthropic-version": "2023-06-01",
    }

    async def request() -> None:
        async with session.post(chat, json=CHAT, headers=headers) as resp:
            data = await resp.json(content_type=None)
        if data["choices"][0]["message"]["content"] != overhead.ANSWER:
            raise AssertionError(f"{server.name}: unexpected answer {data!r}"[:300])

    async def openai_stream() -> int:
        async with session.post(chat, json=stream_chat, headers=headers) as resp:
            return await overhead._read_openai(resp.content.iter_any())

    async def anthropic_stream() -> int:
        async with session.post(messages, json=stream_messages, headers=headers) as resp:
            return await overhead._read_anthropic(resp.content.iter_any())

    streams = {"openai": openai_stream}
    if server.name != "upstream":  # the upstream speaks the OpenAI format only
        streams["anthropic"] = anthropic_stream
    return Client(
        server.name if server.name != "upstream" else "direct (bare aiohttp to the upstream)",
        request,
        streams,
    )


def provider_client(upstream: Server) -> Client:
    from abstractcore import create_llm

    llm = create_llm("openai-compatible", model=MODEL, base_url=f"{upstream.url}/v1", api_key=KEY)

    async def request() -> None:
        r = await llm.agenerate(overhead.PROMPT)
        assert r.content == overhead.ANSWER

    async def stream() -> int:
        return sum([1 async for c in llm.astream(overhead.PROMPT) if c.content])

    return Client(
        "abstractcore provider, called directly", request, {"openai": stream}, "agenerate / astream"
    )


async def _sequential(client: Client, n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        await client.request()
    return (time.perf_counter() - start) / n * 1e6


async def _concurrent(client: Client, total: int, concurrency: int = 100) -> float:
    per_worker, extra = divmod(total, concurrency)

    async def worker(count: int) -> None:
        for _ in range(count):
            await client.request()

    gc.collect()
    start = time.perf_counter()
    await asyncio.gather(*(worker(per_worker + (i < extra)) for i in range(concurrency)))
    return total / (time.perf_counter() - start)


async def _stream(client: Client, fmt: str, chunks: int) -> float:
    gc.collect()
    start = time.perf_counter()
    got = await client.streams[fmt]()
    took = time.perf_counter() - start
    if got != chunks:
        raise AssertionError(f"{client.name} {fmt} stream: {got} deltas, expected {chunks}")
    return chunks / took


async def measure(clients: list[Client], sizes: argparse.Namespace) -> list[Result]:
    results = [Result(c.name, c.note) for c in clients]
    for client, result in zip(clients, results):  # warm up: connections, caches, lazy imports
        await _concurrent(client, 200)
        for fmt in list(client.streams):
            try:
                await _stream(client, fmt, sizes.chunks)
            except Exception as exc:  # a format this server cannot serve: left out, said why
                result.failures.append(f"{fmt} stream: {str(exc)[:200]}")
                del client.streams[fmt]
    for run in range(sizes.runs):
        order = list(zip(clients, results))
        shift = run % len(order)
        for client, result in order[shift:] + order[:shift]:
            result.seq_us.append(await _sequential(client, sizes.sequential))
            result.c100.append(await _concurrent(client, sizes.concurrent))
            for fmt in client.streams:
                rates = [await _stream(client, fmt, sizes.chunks) for _ in range(sizes.streams)]
                result.streams[fmt].append(statistics.median(rates))
            streams = "  ".join(f"{f} {v[-1]:7.0f}/s" for f, v in result.streams.items() if v)
            print(
                f"  round {run + 1}/{sizes.runs}  {result.name:52s} {result.seq_us[-1]:7.0f} µs"
                f"  {result.c100[-1]:6.0f} req/s  {streams}",
                flush=True,
            )
    return results


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def _f(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def report(results: list[Result], ours: str, litellm: str | None, sizes: argparse.Namespace) -> str:
    direct = results[0]
    base = direct.median(direct.seq_us) or 0.0
    lines = [
        f"{sizes.runs} interleaved rounds, medians; {sizes.sequential} sequential requests, "
        f"{sizes.concurrent} at 100 in flight, "
        f"{sizes.streams} x {sizes.chunks}-delta streams per round and format; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.",
        "",
        "| target | µs/request | added µs | req/s @100 | OpenAI deltas/s | Anthropic deltas/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        seq = r.median(r.seq_us)
        added = None if seq is None or r is direct else seq - base
        lines.append(
            f"| {r.name} | {_f(seq)} | {_f(added)} | {_f(r.median(r.c100))} | "
            f"{_f(r.median(r.streams['openai']))} | {_f(r.median(r.streams['anthropic']))} |"
        )
    by_name = {r.name: r for r in results}
    mine = by_name[ours]
    lines.append("")
    provider = by_name.get("abstractcore provider, called directly")
    if provider is not None:
        lines.append(
            "Server vs its provider called directly: "
            f"req/s {_ratio(mine.median(mine.c100), provider.median(provider.c100))}, "
            f"µs/request {_ratio(mine.median(mine.seq_us), provider.median(provider.seq_us))}, "
            f"deltas/s {_stream_ratio(mine, provider, 'openai')}."
        )
    for r in results:
        if r.name.startswith("same service"):
            lines.append(
                f"aiohttp vs {r.name.removeprefix('same service, ')}: req/s "
                f"{_ratio(mine.median(mine.c100), r.median(r.c100))}, added latency "
                f"{_ratio(_added(mine, base), _added(r, base))}, OpenAI deltas/s "
                f"{_ratio(mine.median(mine.streams['openai']), r.median(r.streams['openai']))}."
            )
    if litellm is not None:
        other = by_name[litellm]
        throughput = _div(mine.median(mine.c100), other.median(other.c100))
        latency = _div(_added(mine, base), _added(other, base))
        fast = _met(throughput, lambda v: v >= TARGETS["throughput"])
        lean = _met(latency, lambda v: v <= TARGETS["added_latency"])
        lines.append(
            f"abstractcore vs {litellm}: req/s {_f(throughput, 1)}x (target >= {TARGETS['throughput']:g}x: "
            f"{fast}), added latency {_f(latency, 3)}x (target <= {TARGETS['added_latency']:g}x: {lean}), "
            f"OpenAI deltas/s {_stream_ratio(mine, other, 'openai')}, "
            f"Anthropic deltas/s {_stream_ratio(mine, other, 'anthropic')}."
        )
    for r in results:
        for failure in r.failures:
            lines.append(f"{r.name}: left out: {failure}")
    return "\n".join(lines)


def _stream_ratio(a: Result, b: Result, fmt: str) -> str:
    return _ratio(a.median(a.streams[fmt]), b.median(b.streams[fmt]))


def _added(r: Result, base: float) -> float | None:
    seq = r.median(r.seq_us)
    return None if seq is None else seq - base


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _ratio(a: float | None, b: float | None) -> str:
    value = _div(a, b)
    return "-" if value is None else f"{value:.2f}x"


def _met(value: float | None, ok: Callable[[float], bool]) -> str:
    return "-" if value is None else ("met" if ok(value) else "MISSED")


# ---------------------------------------------------------------------------


async def run(args: argparse.Namespace, servers: list[Server], upstream: Server) -> list[Result]:
    import aiohttp

    for server in servers:
        await _ready(server, 120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        clients = [http_client(session, upstream), provider_client(upstream)]
        clients += [http_client(session, s) for s in servers]
        return await measure(clients, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=("upstream", "starlette"), help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--http", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer requests (smoke run)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--chunks", type=int, default=2000, help="deltas per stream")
    parser.add_argument(
        "--litellm",
        default="/tmp/litellm/.venv/bin/litellm",
        help="LiteLLM's proxy command (skipped when absent)",
    )
    parser.add_argument(
        "--starlette-python", help="another interpreter for the Starlette variant (uvicorn[standard])"
    )
    parser.add_argument("--no-starlette", action="store_true", help="skip the Starlette variants")
    parser.add_argument("--json", help="write the results here (default benchmarks/results/server-*.json)")
    args = parser.parse_args()
    if args.role == "upstream":
        role_upstream(args.chunks)
        return
    if args.role == "starlette":
        role_starlette(args.upstream, args.port, args.http)
        return
    args.sequential, args.concurrent, args.streams = (200, 1000, 1) if args.quick else (500, 3000, 3)
    upstream = start_upstream(args.chunks)
    servers: list[Server] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-server-"))
    try:
        ours = start_abstractcore(upstream)
        servers.append(ours)
        if not args.no_starlette:
            servers.append(start_starlette(upstream, sys.executable, ""))
            if args.starlette_python:
                servers.append(start_starlette(upstream, args.starlette_python, ", other venv"))
        litellm = None
        if args.litellm and Path(args.litellm).exists():
            server = start_litellm(upstream, args.litellm, workdir)
            servers.append(server)
            litellm = server.name
        else:
            print(f"LiteLLM not found at {args.litellm}: not compared", flush=True)
        print(f"upstream {upstream.url}; " + "; ".join(f"{s.name} {s.url}" for s in servers), flush=True)
        results = asyncio.run(run(args, servers, upstream))
    finally:
        for server in [*servers, upstream]:
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(results, ours.name, litellm, args)
    print()
    print(text)
    out = Path(args.json) if args.json else HERE / "results" / f"server-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": [r.__dict__ for r in results], "report": text}, indent=1))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
