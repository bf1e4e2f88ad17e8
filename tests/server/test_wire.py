"""The bytes on the wire: SSE framing and event order of both formats, compared with the
published formats (the sequences tests/servers encode), for text and for tool calls."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from abstractcore import create_llm
from tests.server.support import KEY, MODEL, RunningServer, running_server
from tests.servers.anthropic_server import API_KEY as ANTHROPIC_KEY
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.common import Fault

pytestmark = pytest.mark.slow  # the real model or a server process throughout

QUESTION = [{"role": "user", "content": "Tell me a story."}]
CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris"}},
    {"name": "get_time", "arguments": {"zone": "Europe/Paris", "format": "24h"}},
]
TOOLS = [
    {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
    {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}},
]


def _post(server: RunningServer, path: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=60)


def _openai_events(raw: str) -> list[str]:
    """The data of each event; every event is exactly ``data: ...`` and a blank line."""
    assert raw.endswith("\n\n")
    blocks = raw[:-2].split("\n\n")
    for block in blocks:
        assert re.fullmatch(r"data: [^\n]+", block), block
    return [b.removeprefix("data: ") for b in blocks]


def _anthropic_events(raw: str) -> list[dict[str, Any]]:
    """Each event's data; every event is ``event: NAME``, ``data: {...}`` (type NAME), a blank line."""
    assert raw.endswith("\n\n")
    out = []
    for block in raw[:-2].split("\n\n"):
        match = re.fullmatch(r"event: ([a-z_]+)\ndata: ([^\n]+)", block)
        assert match, block
        data = json.loads(match.group(2))
        assert data["type"] == match.group(1)
        out.append(data)
    return out


def test_openai_stream_framing_and_order(local_server: RunningServer) -> None:
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 6, "stream": True}
    r = _post(local_server, "/v1/chat/completions", {**body, "stream_options": {"include_usage": True}})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    data = _openai_events(r.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]} and chunks[0]["id"].startswith("chatcmpl-")
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    *content, finish, usage = chunks[1:]
    assert content and all(c["choices"][0]["delta"]["content"] for c in content)
    assert all(c["choices"][0]["finish_reason"] is None for c in content)
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 6
    without = _openai_events(_post(local_server, "/v1/chat/completions", body).text)
    assert all("usage" not in json.loads(d) for d in without[:-1])  # no usage chunk unless asked for
    assert json.loads(without[-2])["choices"][0]["finish_reason"] == "length"


def test_anthropic_stream_framing_and_order(local_server: RunningServer) -> None:
    r = _post(
        local_server, "/v1/messages", {"model": MODEL, "messages": QUESTION, "max_tokens": 6, "stream": True}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["request-id"].startswith("req_")
    events = _anthropic_events(r.text)
    kinds = " ".join(e["type"] for e in events)
    assert re.fullmatch(
        r"message_start ping content_block_start( content_block_delta)+ content_block_stop"
        r" message_delta message_stop",
        kinds,
    ), kinds
    start = events[0]["message"]
    assert start["role"] == "assistant" and start["content"] == [] and start["stop_reason"] is None
    assert events[2] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert all(e["delta"]["type"] == "text_delta" for e in events if e["type"] == "content_block_delta")
    delta = events[-2]
    assert delta["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}
    usage = delta["usage"]  # input_tokens excludes what the back end's prefix cache read
    assert usage["output_tokens"] == 6
    assert usage["input_tokens"] + usage.get("cache_read_input_tokens", 0) > 5


def _scripted_backend(server: AnthropicServer) -> Any:
    script = server.script(Fault("tool_calls", calls=CALLS))
    return create_llm(
        "anthropic",
        model="claude-haiku-4-5",
        base_url=server.url,
        api_key=ANTHROPIC_KEY,
        headers=script.headers,
    )


def test_two_streamed_tool_calls_in_the_anthropic_format(anthropic_test_server: AnthropicServer) -> None:
    with running_server({"claude": _scripted_backend(anthropic_test_server)}) as server:
        body = {"model": "claude", "messages": QUESTION, "max_tokens": 50, "stream": True, "tools": TOOLS}
        events = _anthropic_events(_post(server, "/v1/messages", body).text)
    kinds = " ".join(e["type"] for e in events)
    block = r"content_block_start( content_block_delta)+ content_block_stop"
    assert re.fullmatch(rf"message_start ping {block} {block} message_delta message_stop", kinds), kinds
    for index, call in enumerate(CALLS):
        start = next(e for e in events if e["type"] == "content_block_start" and e["index"] == index)
        block_ = start["content_block"]
        assert block_["type"] == "tool_use" and block_["name"] == call["name"] and block_["input"] == {}
        assert block_["id"].startswith("toolu_")
        pieces = [
            e["delta"]["partial_json"]
            for e in events
            if e["type"] == "content_block_delta" and e["index"] == index
        ]
        assert len(pieces) == 2  # streamed as the back end streamed it
        assert json.loads("".join(pieces)) == call["arguments"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_two_streamed_tool_calls_in_the_openai_delta_format(anthropic_test_server: AnthropicServer) -> None:
    tools = [
        {"type": "function", "function": {"name": t["name"], "parameters": t["input_schema"]}} for t in TOOLS
    ]
    with running_server({"claude": _scripted_backend(anthropic_test_server)}) as server:
        body = {"model": "claude", "messages": QUESTION, "max_tokens": 50, "stream": True, "tools": tools}
        data = _openai_events(_post(server, "/v1/chat/completions", body).text)
    chunks = [json.loads(d) for d in data[:-1]]
    fragments = [
        c["choices"][0]["delta"]["tool_calls"] for c in chunks if "tool_calls" in c["choices"][0]["delta"]
    ]
    for index, call in enumerate(CALLS):
        mine = [f for group in fragments for f in group if f["index"] == index]
        first, rest = mine[0], mine[1:]
        assert first["type"] == "function" and first["id"] and first["function"]["name"] == call["name"]
        assert rest and all(
            set(f) == {"index", "function"} and set(f["function"]) == {"arguments"} for f in rest
        )
        assert json.loads("".join(f["function"]["arguments"] for f in mine)) == call["arguments"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_calls_delivered_whole_are_one_fragment_each(local_server: RunningServer) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": TOOLS[0]["input_schema"]}}
    body = {
        "model": MODEL,
        "messages": QUESTION,
        "max_tokens": 30,
        "stream": True,
        "tools": [tool],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    chunks = [
        json.loads(d) for d in _openai_events(_post(local_server, "/v1/chat/completions", body).text)[:-1]
    ]
    calls = [
        c["choices"][0]["delta"]["tool_calls"] for c in chunks if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert len(calls) == 1 and len(calls[0]) == 1
    call = calls[0][0]
    assert call["index"] == 0 and call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"]), dict)
