"""The tool loop's cost, and what a grammar does for a small model's tool calls.

    .venv/bin/python benchmarks/tools.py overhead        # arun vs a hand-written loop (fake server)
    .venv/bin/python benchmarks/tools.py success         # SmolLM2's valid calls, prompted vs constrained

``overhead``: a 3-step conversation (two tool calls, then an answer) against
a small fake OpenAI server in another process; ``llm.arun`` against the loop
a user would write by hand (``agenerate``, run the function, append the
messages, repeat), interleaved rounds, median of 3. Target: arun <= 1.05x.

``success``: 20 fixed prompts to SmolLM2-135M on llama.cpp's C++
``llama-server`` (its chat template has no tools, so they are prompted):
with ``tool_choice="auto"`` the call is only asked for in the prompt; with a
named ``tool_choice`` it is also constrained by the server's JSON-schema
grammar. Counted: answers holding a call to the right tool whose arguments
validate. Target: the constraint makes it 100 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROUNDS = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fake_server(port: int) -> None:
    """A Chat Completions server: a tool call while fewer than 2 tool results came back, then text."""
    from aiohttp import web

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        results = sum(1 for m in body["messages"] if m.get("role") == "tool")
        if results < 2:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": f"call_{results}",
                        "type": "function",
                        "function": {"name": "add", "arguments": json.dumps({"a": results, "b": 2})},
                    }
                ],
            }
            reason = "tool_calls"
        else:
            message, reason = {"role": "assistant", "content": "The sum is 5."}, "stop"
        return web.json_response(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": reason}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, handle_signals=False)


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def add_async(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def _overhead(url: str, conversations: int) -> dict[str, Any]:
    from abstractcore import Message, create_llm

    llm = create_llm("openai-compatible", base_url=url, model="m")

    async def by_hand(tool: Any) -> None:
        messages: list[Any] = [Message("user", "Add things.")]
        while True:
            r = await llm.agenerate(messages=messages, tools=[tool])
            messages.append(Message("assistant", r.content, tool_calls=r.tool_calls))
            if not r.tool_calls:
                return
            for call in r.tool_calls:
                if asyncio.iscoroutinefunction(tool):
                    value = await tool(**call.arguments)
                else:  # a blocking tool belongs in a thread, so the loop keeps serving (arun does that)
                    value = await asyncio.to_thread(tool, **call.arguments)
                messages.append(Message("tool", str(value), tool_call_id=call.id, name=call.name))

    async def with_run(tool: Any) -> None:
        result = await llm.arun("Add things.", tools=[tool])
        assert result.content == "The sum is 5." and len(result.steps) == 3

    async def timed(fn: Any, concurrency: int) -> float:
        start = time.perf_counter()
        for _ in range(conversations // concurrency):
            await asyncio.gather(*(fn() for _ in range(concurrency)))
        return time.perf_counter() - start

    out: dict[str, Any] = {"conversations": conversations}
    for concurrency in (1, 50):
        for label, tool in (("async tool", add_async), ("blocking tool, in a thread", add)):
            await timed(lambda t=tool: by_hand(t), concurrency)  # warm the pool
            hand: list[float] = []
            run: list[float] = []
            for i in range(ROUNDS):  # alternate which goes first: the machine's load drifts
                order = [(hand, by_hand), (run, with_run)]
                for sink, fn in order if i % 2 == 0 else reversed(order):
                    sink.append(await timed(lambda t=tool, f=fn: f(t), concurrency))
            out[f"concurrency {concurrency}, {label}"] = {
                "arun / by hand": statistics.median(a / b for a, b in zip(run, hand)),
                "ms per conversation, arun": statistics.median(run) / conversations * 1000,
                "ms per conversation, by hand": statistics.median(hand) / conversations * 1000,
            }
    await llm.aclose()
    return out


def overhead(conversations: int) -> None:
    port = _free_port()
    server = mp.get_context("spawn").Process(target=_fake_server, args=(port,), daemon=True)
    server.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        result = asyncio.run(_overhead(f"http://127.0.0.1:{port}/v1", conversations))
    finally:
        server.terminate()
    print(json.dumps(result, indent=2))


PROMPTS = [
    "What is the weather in {}?",
    "Is it raining in {} right now?",
    "Tell me the weather for {}.",
    "How warm is it in {} today?",
    "Weather report for {}, please.",
]
CITIES = ["Paris", "Tokyo", "Lima", "Oslo"]


def get_weather(city: str, unit: str = "celsius") -> str:
    """The current weather in a city.

    Args:
        city: the city's name
        unit: celsius or fahrenheit
    """
    return f"sunny in {city}"


def success() -> None:
    sys.path.insert(0, str(HERE.parent))
    from tests.support.cpp_llama_server import cpp_llama_server
    from tests.support.model import smollm2_gguf

    from abstractcore import create_llm
    from abstractcore.features.tools.schema import to_tool

    tool = to_tool(get_weather)
    prompts = [p.format(c) for p in PROMPTS for c in CITIES]
    with cpp_llama_server(smollm2_gguf()) as url:
        llm = create_llm("openai-compatible", base_url=url, temperature=0, max_tokens=48)
        counts: dict[str, int] = {}
        for label, choice in (
            ("prompted, unconstrained (auto)", "auto"),
            ("prompted + grammar", "get_weather"),
        ):
            good = 0
            for prompt in prompts:
                r = llm.generate(prompt, tools=[get_weather], tool_choice=choice)
                calls = [c for c in r.tool_calls if c.name == "get_weather"]
                try:
                    valid = bool(calls) and bool(tool.validate(calls[0].arguments))
                except Exception:
                    valid = False
                good += valid
            counts[label] = good
            print(f"{label}: {good}/{len(prompts)} valid calls")
    print(json.dumps(counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["overhead", "success"])
    parser.add_argument("--conversations", type=int, default=200)
    args = parser.parse_args()
    if args.what == "overhead":
        overhead(args.conversations)
    else:
        success()


if __name__ == "__main__":
    main()
