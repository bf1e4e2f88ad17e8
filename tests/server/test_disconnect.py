"""A client that goes away stops the generation: the in-process model is idle again within a
token or so, streamed or not, through either API, and the server goes on serving."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse

import httpx
import pytest

from abstractcore import LLM
from tests.server.support import KEY, MODEL, RunningServer, wait_until

pytestmark = pytest.mark.slow  # the real model or a server process throughout

LONG = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]
HEADERS = {"authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}


def _idle(llm: LLM) -> None:
    assert wait_until(lambda: not llm.provider.busy, 30) is not None


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_leaving_a_stream_stops_the_generation_at_once(
    local_server: RunningServer, local_llm: LLM, path: str
) -> None:
    _idle(local_llm)
    body = {"model": MODEL, "messages": LONG, "max_tokens": 400, "stream": True, "temperature": 0}
    arrivals: list[float] = []
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", local_server.url + path, json=body, headers=HEADERS) as r,
    ):
        assert r.status_code == 200
        for line in r.iter_lines():
            if '"content"' in line or "text_delta" in line:
                arrivals.append(time.monotonic())
            if len(arrivals) == 6:
                break
        assert local_llm.provider.busy  # still generating when the client leaves
    left = time.monotonic()
    took = wait_until(lambda: not local_llm.provider.busy, 10)
    assert took is not None, "the generation went on after the client left"
    per_token = (arrivals[-1] - arrivals[1]) / 4
    # 400 tokens would take ~400 * per_token; the model is free within a few tokens' time
    assert took < max(10 * per_token, 0.5), (took, per_token)
    assert time.monotonic() - left < 100 * per_token


def test_leaving_a_plain_request_stops_the_generation(local_server: RunningServer, local_llm: LLM) -> None:
    _idle(local_llm)
    body = {"model": MODEL, "messages": LONG, "max_tokens": 400, "temperature": 0}
    payload = json.dumps(body).encode()
    host, port = urllib.parse.urlsplit(local_server.url).netloc.split(":")
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\n"
        f"authorization: {HEADERS['authorization']}\r\ncontent-length: {len(payload)}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(head.encode() + payload)
        assert wait_until(lambda: local_llm.provider.busy, 10) is not None, "the generation never started"
        started = time.monotonic()
        time.sleep(0.3)  # a few tokens in
        assert local_llm.provider.busy
    # the client has gone (its socket closed) long before 400 tokens
    took = wait_until(lambda: not local_llm.provider.busy, 10)
    assert took is not None and took < 0.5, took
    assert time.monotonic() - started < 2.0
    r = httpx.post(
        local_server.url + "/v1/chat/completions", json={**body, "max_tokens": 3}, headers=HEADERS, timeout=60
    )
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 3
